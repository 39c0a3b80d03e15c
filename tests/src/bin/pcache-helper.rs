//! `cargo-pcache`, under a name the end-to-end tests can find
//! (`CARGO_BIN_EXE_pcache-helper`): what fixture build scripts run to reach
//! the remote.

fn main() -> std::process::ExitCode {
    cargo_pcache::run_process()
}
