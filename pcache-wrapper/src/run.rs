//! Running the real build script as Cargo would have: same environment
//! (but for `RUSTC_WRAPPER`, which is the user's own again), working
//! directory, stdin, stderr and inherited jobserver descriptors; its stdout
//! passed through to Cargo as it comes, and kept.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A finished run of the real script.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) took: Duration,
}

/// The command that runs the real script at `real`: the build script sees
/// `rustc_wrapper` (the user's own wrapper) as `RUSTC_WRAPPER`, or none, as
/// it would without pcache (cc-rs, for one, wraps C compilers with it).
pub(crate) fn command(real: &Path, rustc_wrapper: Option<&OsString>) -> Command {
    let mut command = Command::new(real);
    match rustc_wrapper {
        Some(wrapper) => command.env("RUSTC_WRAPPER", wrapper),
        None => command.env_remove("RUSTC_WRAPPER"),
    };
    command
}

/// Runs `command`, passing its stdout through and keeping it.
///
/// # Errors
///
/// When the script cannot be started, or its stdout cannot be read or
/// passed on.
pub(crate) fn run_teeing(mut command: Command) -> io::Result<Finished> {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    let mut pipe = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout pipe"))?;
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let out = io::stdout();
    let mut out = out.lock();
    let copied = loop {
        match pipe.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if let Err(e) = out.write_all(&buf[..n]).and_then(|()| out.flush()) {
                    break Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    // Whatever happened to stdout, the script is waited for.
    let status = child.wait()?;
    copied?;
    Ok(Finished {
        status,
        stdout: kept,
        took: started.elapsed(),
    })
}

/// Replaces this process by `command` (the real script, uncached) where
/// the platform can, else runs it and exits as it did.
pub(crate) fn exec(mut command: Command) -> ExitCode {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = command.exec();
        eprintln!("error: pcache: failed to run the build script {command:?}: {e}");
        ExitCode::from(101)
    }
    #[cfg(not(unix))]
    {
        match command.status() {
            Ok(status) => exit_like(status),
            Err(e) => {
                eprintln!("error: pcache: failed to run the build script {command:?}: {e}");
                ExitCode::from(101)
            }
        }
    }
}

/// Ends as the script ended: its exit code, or, killed by a signal, the
/// same signal.
pub(crate) fn exit_like(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            // SAFETY: restoring the default action and raising the signal
            // the script died of; the process ends as it did.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                libc::raise(signal);
            }
            return ExitCode::from(128u8.saturating_add(signal as u8));
        }
    }
    ExitCode::from(101)
}
