//! `cargo pcache remote`: the configured remote, credentials redacted, and
//! whether it answers, can be read and (in read-write mode) written.

use std::io::Write;
use std::path::PathBuf;
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
    /// The names of the keys objects must be signed with; empty: the
    /// remote is unauthenticated (whoever can write it decides what builds
    /// use).
    trusted_keys: Vec<String>,
    /// The name of the key pushes are signed with, if one is set here.
    signing_key: Option<String>,
    /// Remote objects refused for their signature, as counted in this
    /// workspace's pcache directory and the per-user store.
    refused: u64,
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
/// `roots` are the pcache directories whose refused counts are shown.
pub(crate) fn run(
    style: Style,
    env: &Env,
    out: &mut dyn Write,
    args: &RemoteArgs,
    roots: &[PathBuf],
) -> Result<()> {
    let settings = configured(env)?;
    let mut report = Report {
        remote: settings.url.redacted(),
        backend: settings.url.backend().name(),
        mode: settings.access.as_str(),
        required: settings.required,
        can_list: false,
        trusted_keys: Vec::new(),
        signing_key: None,
        refused: roots
            .iter()
            .map(|root| crate::remote::refused_count(root, None))
            .sum(),
        checks: Vec::new(),
    };
    let started = Instant::now();
    match connect(&settings, env).and_then(|remote| {
        remote
            .for_pushing(env)
            .map_err(|e| anyhow::anyhow!("remote {}: {e}", settings.url.redacted()))
    }) {
        Ok(remote) => {
            report.can_list = remote.can_list();
            report.trusted_keys = remote.trust().map_or_else(Vec::new, |t| {
                t.names().into_iter().map(str::to_owned).collect()
            });
            report.signing_key = remote.signer().map(|s| s.name().to_owned());
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
        let signatures = if report.trusted_keys.is_empty() {
            format!(
                "none: the remote is unauthenticated, and whoever can write it decides what builds use; set {} (see `cargo pcache keygen`)",
                remote::TRUSTED_KEYS_VAR
            )
        } else {
            format!(
                "required, by {} ({} refused)",
                report.trusted_keys.join(", "),
                report.refused
            )
        };
        let signing = match &report.signing_key {
            Some(name) => format!("pushes are signed by {name}"),
            None => "none here".to_owned(),
        };
        for (field, value) in [
            ("remote", report.remote.as_str()),
            ("backend", report.backend),
            ("mode", report.mode),
            ("required", required),
            ("signatures", signatures.as_str()),
            ("signing", signing.as_str()),
        ] {
            writeln!(out, "{field:<10} {value}")?;
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
                "{:<10} {} {detail}",
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
    // Where objects stay once written (the Actions cache), one probe is
    // reused rather than leaving a new one behind each time.
    let probe = if remote.can_replace() {
        format!(
            "{}.probe-{}-{nanos:x}",
            remote::remote_prefix(),
            std::process::id()
        )
    } else {
        format!("{}.probe", remote::remote_prefix())
    };
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
