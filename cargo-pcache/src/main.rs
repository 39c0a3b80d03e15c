//! `cargo pcache`: see the crate docs of `cargo_pcache`.

use std::process::ExitCode;

fn main() -> ExitCode {
    cargo_pcache::run(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}
