//! `PCACHE=verify`: the script has run; its stdout and `OUT_DIR` are
//! compared with the stored run's, and the first difference is named.

use std::process::ExitCode;

use pcache_core::record::{MissReason, Outcome, StepRecord};
use pcache_core::tree::Tree;

use super::{Launch, StoredRun, time};
use crate::key::Level2;
use crate::run::Finished;

impl Launch<'_> {
    /// `PCACHE=verify`: the run just made is compared with the stored one;
    /// a difference fails the build, naming the first one.
    pub(super) fn verify(
        &self,
        level2: &Level2,
        stored: StoredRun,
        stdout: &str,
        finished: &Finished,
    ) -> ExitCode {
        let places = self.places();
        let template = places.template(stdout);
        let difference = if template != stored.stdout {
            Some(first_line_difference(
                &places.render(&stored.stdout).unwrap_or_default(),
                stdout,
            ))
        } else {
            match self.out_dir_text().and_then(|place| {
                Tree::capture(&self.out_dir, Some(place)).map_err(|e| e.to_string())
            }) {
                Ok(now) => stored
                    .tree
                    .first_difference(&now)
                    .map(|d| format!("OUT_DIR: {d}")),
                Err(problem) => {
                    self.warn(&problem);
                    None
                }
            }
        };
        self.record(StepRecord::new(
            Outcome::Miss(MissReason::Verify),
            finished.took,
            finished.took,
        ));
        match difference {
            None => {
                eprintln!(
                    "pcache: verified {} build script: ran in {}, identical to its entry",
                    self.package,
                    time(finished.took)
                );
                ExitCode::SUCCESS
            }
            Some(difference) => {
                eprintln!(
                    "error: pcache: PCACHE=verify: the build script of {} produced another result than \
                     its stored run (key {}): {difference}; the script is nondeterministic, or reads \
                     something its declared inputs miss",
                    self.package, level2.key
                );
                ExitCode::from(101)
            }
        }
    }
}

/// Names the first line where `now` differs from `stored`.
fn first_line_difference(stored: &str, now: &str) -> String {
    let mut a = stored.lines();
    let mut b = now.lines();
    for n in 1.. {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => return format!("stdout line {n} was `{x}`, is `{y}`"),
            (Some(x), None) => return format!("stdout line {n} `{x}` is missing"),
            (None, Some(y)) => return format!("stdout line {n} `{y}` is new"),
            (None, None) => break,
        }
    }
    "stdout differs in its line endings".to_owned()
}
