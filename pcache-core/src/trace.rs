//! `PCACHE_TRACE=1`: where the time of one step went, phase by phase,
//! printed to stderr when the step ends. Off, a phase mark costs a branch.
//!
//! A [`Store`](crate::Store) given a trace ([`Store::with_trace`]) marks
//! the phases of its own reads and writes in it: `open`, `read`,
//! `checksum`, `decode`, `notes`, `restore`, `record the check` and
//! `record the use`, and on a miss `lock`, `compute` and `store`. When the
//! entry was verified before as this very file, the phase that skips its
//! checksum says so: `identity check (checksum skipped)`, `restore
//! (checksum skipped)`.
//!
//! [`Store::with_trace`]: crate::Store::with_trace
//!
//! ```
//! use pcache_core::trace::Trace;
//!
//! let trace = Trace::new(true);
//! trace.phase("key");
//! trace.phase("read");
//! let line = trace.summary("hit zstd-sys").unwrap();
//! assert!(line.starts_with("pcache trace: hit zstd-sys: "));
//! assert!(line.contains("key ") && line.contains("read "));
//! assert_eq!(Trace::new(false).summary("anything"), None);
//! ```

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Phases timed since the trace began, each from the end of the one before.
///
/// Shared by the step that prints it and the store it reads from (behind an
/// `Arc`), hence the mutex; it is only ever taken when tracing.
#[derive(Debug)]
pub struct Trace {
    on: bool,
    marks: Mutex<Marks>,
}

type Marks = (Instant, Vec<(&'static str, Duration)>);

impl Trace {
    /// A trace that records when `on` (see [`crate::config::trace`]).
    pub fn new(on: bool) -> Trace {
        Trace {
            on,
            marks: Mutex::new((Instant::now(), Vec::new())),
        }
    }

    /// Whether this trace records.
    pub fn is_on(&self) -> bool {
        self.on
    }

    fn marks(&self) -> MutexGuard<'_, Marks> {
        // A panic while marking leaves the marks as they were: still usable.
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a phase `name` that took `took`, measured elsewhere (before
    /// the trace began); the next phase still starts at the previous mark.
    pub fn phase_took(&self, name: &'static str, took: Duration) {
        if self.on {
            self.marks().1.push((name, took));
        }
    }

    /// Ends the phase `name`: the time since the previous mark.
    pub fn phase(&self, name: &'static str) {
        if !self.on {
            return;
        }
        let mut marks = self.marks();
        let now = Instant::now();
        let took = now - marks.0;
        marks.0 = now;
        marks.1.push((name, took));
    }

    /// The line to print, naming `what` the step was: every phase and its
    /// time, and the total; `None` when tracing is off.
    pub fn summary(&self, what: &str) -> Option<String> {
        if !self.on {
            return None;
        }
        let marks = self.marks();
        let total: Duration = marks.1.iter().map(|(_, d)| *d).sum();
        let phases: Vec<String> = marks
            .1
            .iter()
            .map(|(name, took)| format!("{name} {:.2} ms", took.as_secs_f64() * 1e3))
            .collect();
        Some(format!(
            "pcache trace: {what}: {} (total {:.2} ms)",
            phases.join(", "),
            total.as_secs_f64() * 1e3
        ))
    }

    /// Prints the summary to stderr, if tracing.
    pub fn print(&self, what: &str) {
        if let Some(line) = self.summary(what) {
            eprintln!("{line}");
        }
    }
}
