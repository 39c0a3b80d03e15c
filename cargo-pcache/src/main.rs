//! `cargo pcache`: see the crate docs of `cargo_pcache`.

fn main() -> std::process::ExitCode {
    cargo_pcache::run_process()
}
