//! What a build step prints: one plain line per step on stdout (shown by
//! `cargo build -vv`), and at most one `cargo:warning=` line per step when
//! the cache had trouble.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use pcache_core::conventions;

/// A cache failure met by a step: reported, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) cause: String,
    pub(crate) path: Option<PathBuf>,
}

impl Problem {
    pub(crate) fn new(cause: impl Into<String>, path: Option<PathBuf>) -> Problem {
        Problem {
            cause: cause.into(),
            path,
        }
    }
}

impl From<pcache_core::Error> for Problem {
    fn from(e: pcache_core::Error) -> Problem {
        Problem {
            cause: e.cause().to_string(),
            path: e.path().map(ToOwned::to_owned),
        }
    }
}

/// Writes one line to stdout, where Cargo reads build-script directives.
/// A closed stdout is not worth failing a build over.
pub(crate) fn emit(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Writes lines to stdout in one write: a hit's replayed directives.
pub(crate) fn emit_all(lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// `cargo:warning=pcache: <name>: <cause> (<path>)`, all problems of a step
/// on one line.
pub(crate) fn warning_line(name: &str, problems: &[Problem]) -> String {
    let mut line = format!("cargo:warning=pcache: {}: ", display_name(name));
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            line.push_str("; ");
        }
        line.push_str(&p.cause);
        if let Some(path) = &p.path {
            let _ = write!(line, " ({})", path.display());
        }
    }
    one_line(line)
}

/// The name as shown in messages: one line, at most 80 characters.
pub(crate) fn display_name(name: &str) -> String {
    conventions::display_name(name, 80)
}

fn one_line(text: String) -> String {
    if text.contains(['\n', '\r']) {
        text.replace(['\n', '\r'], " ")
    } else {
        text
    }
}

/// How a step ended, for its stdout line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Hit {
        size_bytes: u64,
        elapsed: Duration,
        saved: Duration,
        waited: bool,
    },
    Miss {
        stored_bytes: Option<u64>,
        computed: Duration,
    },
    Verified {
        size_bytes: u64,
        computed: Duration,
    },
    Off {
        computed: Duration,
    },
    Abandoned {
        items: u64,
    },
}

pub(crate) fn step_line(name: &str, outcome: Outcome) -> String {
    let name = display_name(name);
    match outcome {
        Outcome::Hit {
            size_bytes,
            elapsed,
            saved,
            waited,
        } => format!(
            "pcache: hit {name}: read {} in {}, saved {}{}",
            size(size_bytes),
            time(elapsed),
            time(saved),
            if waited {
                " (waited for another build computing it)"
            } else {
                ""
            }
        ),
        Outcome::Miss {
            stored_bytes: Some(bytes),
            computed,
        } => format!(
            "pcache: miss {name}: computed in {}, stored {}",
            time(computed),
            size(bytes)
        ),
        Outcome::Miss {
            stored_bytes: None,
            computed,
        } => format!(
            "pcache: miss {name}: computed in {}, not stored",
            time(computed)
        ),
        Outcome::Verified {
            size_bytes,
            computed,
        } => format!(
            "pcache: verified {name}: computed in {}, identical to the stored {}",
            time(computed),
            size(size_bytes)
        ),
        Outcome::Off { computed } => {
            format!(
                "pcache: off {name}: computed in {} (PCACHE=off)",
                time(computed)
            )
        }
        Outcome::Abandoned { items } => {
            format!("pcache: miss {name}: iterator dropped after {items} items, nothing stored")
        }
    }
}

fn size(bytes: u64) -> String {
    conventions::format_size(bytes)
}

pub(crate) fn time(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 0.001 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{:.0} µs", secs * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_is_one_line_naming_cache_cause_and_path() {
        let line = warning_line(
            "bindings\nv2",
            &[
                Problem::new(
                    "failed to write: disk full",
                    Some(PathBuf::from("/t/pcache/x")),
                ),
                Problem::new("lock trouble", None),
            ],
        );
        assert_eq!(
            line,
            "cargo:warning=pcache: bindings v2: failed to write: disk full (/t/pcache/x); lock trouble"
        );
    }

    #[test]
    fn long_and_empty_names_are_shown_briefly() {
        assert_eq!(display_name(&"x".repeat(10_000)).chars().count(), 81);
        assert_eq!(display_name(""), "\"\"");
    }

    #[test]
    fn step_lines() {
        let hit = Outcome::Hit {
            size_bytes: 1536,
            elapsed: Duration::from_micros(300),
            saved: Duration::from_millis(1520),
            waited: false,
        };
        assert_eq!(
            step_line("t", hit),
            "pcache: hit t: read 1.5 KiB in 300 µs, saved 1.52 s"
        );
        let miss = Outcome::Miss {
            stored_bytes: Some(3 << 20),
            computed: Duration::from_millis(12),
        };
        assert_eq!(
            step_line("t", miss),
            "pcache: miss t: computed in 12.0 ms, stored 3.0 MiB"
        );
    }
}
