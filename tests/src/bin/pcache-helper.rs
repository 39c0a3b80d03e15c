//! `cargo-pcache`, under a name the end-to-end tests can find
//! (`CARGO_BIN_EXE_pcache-helper`): what fixture build scripts run to reach
//! the remote.

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    cargo_pcache::run_with(
        std::env::args_os(),
        cargo_pcache::Streams {
            stdout_is_terminal: stdout.is_terminal(),
            stderr_is_terminal: stderr.is_terminal(),
            stdout: &mut stdout.lock(),
            stderr: &mut stderr.lock(),
        },
    )
}
