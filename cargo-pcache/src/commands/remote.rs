//! `cargo pcache remote`: the configured remote, credentials redacted, and
//! whether it answers, can be read and (in read-write mode) written.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use pcache_core::config::Env;
use pcache_core::remote::{self, Access};
use serde::Serialize;

use super::transfer::{configured, connect};
use crate::cli::RemoteArgs;
use crate::output::{Paint, Style};
use crate::remote::{Remote, RemoteError};

/// The `--json` document. Fields may be added, never renamed or removed.
#[derive(Serialize)]
struct Report {
    /// The remote, credentials redacted.
    remote: String,
    backend: &'static str,
    /// `read-write` or `read`.
    mode: &'static str,
    required: bool,
    /// Whether `pull` can list its entries.
    can_list: bool,
    checks: Vec<Check>,
}

#[derive(Serialize)]
struct Check {
    /// `connect`, `reach`, `read` or `write`.
    name: &'static str,
    ok: bool,
    /// How long it took, in milliseconds.
    millis: f64,
    error: Option<String>,
}

/// Runs the checks and reports; fails if one failed.
pub(crate) fn run(style: Style, env: &Env, out: &mut dyn Write, args: &RemoteArgs) -> Result<()> {
    let settings = configured(env)?;
    let mut report = Report {
        remote: settings.url.redacted(),
        backend: settings.url.backend().name(),
        mode: settings.access.as_str(),
        required: settings.required,
        can_list: false,
        checks: Vec::new(),
    };
    let started = Instant::now();
    match connect(&settings, env) {
        Ok(remote) => {
            report.can_list = remote.can_list();
            probe(&remote, settings.access, &mut report.checks);
        }
        Err(e) => report.checks.push(Check {
            name: "connect",
            ok: false,
            millis: millis(started.elapsed()),
            error: Some(format!("{e:#}")),
        }),
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        let required = if report.required { "yes" } else { "no" };
        for (field, value) in [
            ("remote", report.remote.as_str()),
            ("backend", report.backend),
            ("mode", report.mode),
            ("required", required),
        ] {
            writeln!(out, "{field:<9} {value}")?;
        }
        for check in &report.checks {
            // Padded before painting, so escapes never count as width.
            let (status, paint) = if check.ok {
                ("ok    ", Paint::Green)
            } else {
                ("failed", Paint::Red)
            };
            let detail = match &check.error {
                Some(e) => e.clone(),
                None => format!("{:.1} ms", check.millis),
            };
            writeln!(
                out,
                "{:<9} {} {detail}",
                check.name,
                style.paint(paint, status)
            )?;
        }
    }
    if let Some(failed) = report.checks.iter().find(|c| !c.ok) {
        bail!(
            "remote {}: the {} check failed: {}",
            report.remote,
            failed.name,
            failed.error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(())
}

/// Reach, read and (read-write) write, each after the last succeeded.
fn probe(remote: &Remote, access: Access, checks: &mut Vec<Check>) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let probe = format!(
        "{}.probe-{}-{nanos:x}",
        remote::remote_prefix(),
        std::process::id()
    );
    // The best of three round trips: the latency, not the first
    // connection's set-up.
    let reach = timed("reach", || {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            remote.size(&probe)?;
            best = best.min(started.elapsed());
        }
        Ok(best)
    });
    let mut ok = reach.ok;
    checks.push(reach);
    if ok {
        let read = timed("read", || {
            let started = Instant::now();
            if remote.can_list() {
                remote.list(&format!("{probe}/"))?;
            } else {
                remote.get_small(&probe)?;
            }
            Ok(started.elapsed())
        });
        ok = read.ok;
        checks.push(read);
    }
    if ok && access == Access::ReadWrite {
        checks.push(timed("write", || {
            let started = Instant::now();
            let bytes = b"pcache remote probe".to_vec();
            remote.put(&probe, bytes.clone())?;
            let elapsed = started.elapsed();
            let back = remote.get_small(&probe)?;
            let _ = remote.delete(&probe);
            if back.as_deref() != Some(&bytes[..]) {
                return Err(RemoteError::Failed(
                    "the probe object read back differs from what was written".to_owned(),
                ));
            }
            Ok(elapsed)
        }));
    }
}

fn timed(name: &'static str, check: impl FnOnce() -> Result<Duration, RemoteError>) -> Check {
    match check() {
        Ok(took) => Check {
            name,
            ok: true,
            millis: millis(took),
            error: None,
        },
        Err(e) => Check {
            name,
            ok: false,
            millis: 0.0,
            error: Some(e.to_string()),
        },
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
