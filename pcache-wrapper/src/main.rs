//! `pcache-wrapper`: see the crate docs of `pcache_wrapper`.

fn main() -> std::process::ExitCode {
    pcache_wrapper::main()
}
