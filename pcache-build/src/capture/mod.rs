//! Capturing what a step prints on stdout at the file-descriptor level, so
//! that its Cargo directives can be stored (see `directives` for what is
//! kept and how) and printed again on a hit.
//!
//! # How
//!
//! While a step's closure runs, file descriptor 1 — the build script's
//! stdout, which Cargo reads — is a pipe pcache reads from a thread of its
//! own. Everything written there is seen: Rust's `print!`, C code called
//! through FFI, and child processes that inherit stdout (a compiler run by
//! `cc` or `cmake`, `pkg-config`). The thread forwards every line to the
//! real stdout as it arrives, so Cargo sees the same output in the same
//! order; the lines that are Cargo directives (`cargo:` and `cargo::`) are
//! also recorded, with every path under the scratch directory, the
//! destination, `OUT_DIR` or the package directory written relative to it.
//! Directives naming the scratch directory are forwarded already rewritten to
//! the destination, so that path never reaches Cargo — in every mode: a
//! `cached_files` step that is not stored (`PCACHE=off`, `PCACHE=verify`,
//! an unusable cache) is still captured for that rewriting alone.
//!
//! # Limits
//!
//! - Unix only. Where capture cannot be set up (another platform, no free
//!   file descriptors, stdout closed), the step computes without the cache,
//!   with a warning: a lost link line is worse than a recompute.
//! - Every thread's output is captured while a closure runs, including
//!   threads that have nothing to do with the step. Steps computed on
//!   several threads at once capture one at a time: a step waits up to a
//!   minute for another thread's capture to end, then computes without the
//!   cache (with a warning) rather than risk waiting for a thread that waits
//!   for it.
//! - A child process that outlives the closure and keeps stdout open (a
//!   daemon that does not close its inherited descriptors) makes the capture
//!   incomplete: the step's value is used but not stored, with a warning.

use std::path::Path;

use pcache_core::record::KeyParts;

use crate::directives::{Captured, Place, Places};
use crate::notes;

/// Why a capture could not be used.
#[derive(Debug)]
pub(crate) enum CaptureError {
    /// Capture could not be set up: the step must not be cached.
    Setup(std::io::Error),
    /// Output may have been missed (a child process kept stdout open).
    Incomplete,
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Setup(e) => write!(
                f,
                "cannot capture the step's Cargo directives ({e}); computed without the cache"
            ),
            CaptureError::Incomplete => f.write_str(
                "a process the step started kept stdout open, so its Cargo directives may be \
                 incomplete; computed, not stored",
            ),
        }
    }
}

pub(crate) use imp::Capture;

#[cfg(not(unix))]
mod other;
#[cfg(unix)]
mod unix;
#[cfg(not(unix))]
use other as imp;
#[cfg(unix)]
use unix as imp;

/// A step's computation under capture, from before the user's closure runs
/// to after it returns.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// `None` when not recording (the cache is off or unusable).
    capture: Option<Result<Capture, CaptureError>>,
}

/// How a recorded computation may be stored.
#[derive(Debug)]
pub(crate) enum Recorded {
    /// Store it with these notes.
    Store(Vec<u8>),
    /// The step printed `cargo::error=`: never store it.
    Failed,
    /// Capture failed: use the value, do not store it, warn.
    Unusable(CaptureError),
}

impl Recorder {
    pub(crate) fn start(places: Places) -> Recorder {
        Recorder {
            capture: Some(Capture::start(places)),
        }
    }

    /// A recorder that records nothing, for steps without a cache.
    pub(crate) fn idle() -> Recorder {
        Recorder { capture: None }
    }

    /// A recorder for a step that is computed but not stored: it only
    /// forwards the step's output with paths rewritten (a scratch directory
    /// to the destination). Where capture cannot be set up, the output goes
    /// to Cargo as it is.
    pub(crate) fn forwarding(places: Places) -> Recorder {
        Recorder {
            capture: Capture::start(places).ok().map(Ok),
        }
    }

    /// Runs `compute` under this recorder and ends the capture once its
    /// output has been forwarded; nothing is kept.
    pub(crate) fn run_unstored<T>(self, compute: impl FnOnce(&Recorder) -> T) -> T {
        let value = compute(&self);
        if let Some(Ok(capture)) = self.capture {
            // Nothing is stored: an incomplete capture only means a child
            // still holds stdout, which then writes to Cargo directly.
            let _ = capture.finish();
        }
        value
    }

    /// Recognises `dir` (a scratch directory) as the destination.
    pub(crate) fn alias(&self, dir: &Path) {
        if let Some(Ok(capture)) = &self.capture {
            capture.add_alias(dir, Place::Dest);
        }
    }

    /// Stops capturing for a while (the caller's own code runs).
    pub(crate) fn pause(&mut self) {
        if let Some(Ok(capture)) = &mut self.capture {
            if !capture.pause() {
                self.capture = Some(Err(CaptureError::Incomplete));
            }
        }
    }

    /// Captures again after [`pause`](Recorder::pause).
    pub(crate) fn resume(&mut self) {
        if let Some(Ok(capture)) = &mut self.capture {
            if let Err(e) = capture.resume() {
                self.capture = Some(Err(CaptureError::Setup(e)));
            }
        }
    }

    /// Stops recording; the notes to store say what was captured and what
    /// the key is made of (`parts`).
    pub(crate) fn finish(self, parts: Option<KeyParts>) -> Recorded {
        match self.capture.map(|c| c.and_then(Capture::finish)) {
            None => Recorded::Failed,
            Some(Ok(captured)) if captured.error => Recorded::Failed,
            Some(Ok(captured)) => Recorded::Store(notes::encode(captured, parts)),
            Some(Err(e)) => Recorded::Unusable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn sh(script: &str) {
        let status = std::process::Command::new("sh")
            .args(["-c", script])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[cfg(unix)]
    #[test]
    fn directives_from_child_processes_are_captured_with_places() {
        // Rust's test harness captures `print!`, so only output written to
        // fd 1 by other means (here, child processes) reaches the pipe.
        let out = tempfile::tempdir().unwrap();
        let scratch = out.path().join(".pcache-scratch-x");
        let mut places = Places::new(Some(out.path()), None);
        places.add(&out.path().join("gen"), Place::Dest);
        let mut capture = Capture::start(places.clone()).unwrap();
        capture.add_alias(&scratch, Place::Dest);
        sh(&format!(
            "echo 'cargo:rustc-link-search=native={}/lib'; echo plain output; echo 'cargo::rustc-cfg=x'",
            scratch.display()
        ));
        // Paused: what runs now is not the step's.
        assert!(capture.pause());
        sh("echo 'cargo:rustc-cfg=not_the_step'");
        capture.resume().unwrap();
        sh("echo 'cargo:warning=pcache: nested: noise'; printf 'cargo:rustc-cfg=unterminated'");
        let captured = capture.finish().unwrap();
        let lines: Vec<String> = captured
            .directives
            .iter()
            .map(|d| places.render(d).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                format!(
                    "cargo:rustc-link-search=native={}/gen/lib",
                    out.path().display()
                ),
                "cargo::rustc-cfg=x".to_owned(),
            ]
        );
        assert!(!captured.error);
    }

    #[cfg(unix)]
    #[test]
    fn captures_on_several_threads_take_turns_and_keep_their_own_lines() {
        let threads: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let capture = Capture::start(Places::default()).unwrap();
                    for _ in 0..3 {
                        sh(&format!("echo 'cargo:rustc-cfg=thread_{i}'"));
                    }
                    let places = Places::default();
                    let lines: Vec<String> = capture
                        .finish()
                        .unwrap()
                        .directives
                        .iter()
                        .map(|d| places.render(d).unwrap())
                        .collect();
                    (i, lines)
                })
            })
            .collect();
        for thread in threads {
            let (i, lines) = thread.join().unwrap();
            assert_eq!(lines, vec![format!("cargo:rustc-cfg=thread_{i}"); 3]);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_child_that_keeps_stdout_open_makes_the_capture_incomplete() {
        let capture = Capture::start(Places::default()).unwrap();
        sh("(sleep 4) &");
        let started = std::time::Instant::now();
        assert!(matches!(capture.finish(), Err(CaptureError::Incomplete)));
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
    }
}
