//! `cargo pcache why NAME`: the last miss of a cache, explained in the
//! step's own terms.
//!
//! Expired, corrupt, evicted and `PCACHE=verify` misses say so. For the
//! others, the miss's key is compared, part by part, with the nearest
//! stored entry of the same cache (the one differing in the fewest parts;
//! the newest among equals), and each difference is named: a `file()` by
//! path, a `dir()` and the files in it, an `env()` by name (values only as
//! digests), another input by position, the build script's sources or a
//! build-dependency's version, the value type, the target, the format.

mod diff;

use std::path::PathBuf;

use anyhow::Result;
use pcache_core::Key;
use pcache_core::record::{EntryNotes, LastMiss, MissReason};
use serde::Serialize;

use self::diff::{Difference, differences};
use super::Ctx;
use crate::caches::Cache;
use crate::cli::WhyArgs;
use crate::output::{self, Paint};

/// The `--json` document: every cache of that name (one unless `-p` is
/// left out and several packages use it). Fields may be added, never
/// renamed or removed.
#[derive(Serialize)]
struct Report<'a> {
    pcache_dir: &'a std::path::Path,
    caches: &'a [Explanation],
}

#[derive(Serialize)]
struct Explanation {
    package: String,
    name: String,
    path: PathBuf,
    /// `null` when no miss was recorded.
    miss: Option<Miss>,
}

#[derive(Serialize)]
struct Miss {
    time: String,
    key: String,
    reason: MissReason,
    /// The stored entry the miss was compared with, if any.
    nearest: Option<String>,
    differences: Vec<Difference>,
    /// One line, as the text output says it.
    summary: String,
}

pub(crate) fn run(ctx: &mut Ctx<'_>, args: &WhyArgs, caches: Vec<Cache>) -> Result<()> {
    let explanations: Vec<Explanation> = caches.iter().map(explain).collect::<Result<_>>()?;
    if args.json {
        let report = Report {
            pcache_dir: &ctx.workspace.pcache_root,
            caches: &explanations,
        };
        serde_json::to_writer_pretty(&mut *ctx.out, &report)?;
        writeln!(ctx.out)?;
        return Ok(());
    }
    for e in &explanations {
        let style = ctx.style;
        let title = format!("{} {}", e.package, output::display_name(&e.name));
        writeln!(ctx.out, "{}", style.paint(Paint::Bold, &title))?;
        let Some(miss) = &e.miss else {
            writeln!(
                ctx.out,
                "  no miss recorded: every step since this version of pcache was a hit"
            )?;
            continue;
        };
        writeln!(ctx.out, "  last miss {}: {}", miss.time, miss.summary)?;
        for difference in &miss.differences {
            writeln!(ctx.out, "  - {difference}")?;
        }
    }
    Ok(())
}

fn explain(cache: &Cache) -> Result<Explanation> {
    let store = cache.store();
    let miss = store.last_miss()?.map(|last| {
        let (nearest, diffs) = match last.reason {
            MissReason::NewKey | MissReason::InputsChanged | MissReason::CodeChanged => {
                nearest(cache, &last)
            }
            _ => (None, Vec::new()),
        };
        let summary = summary(&last, nearest.is_some(), &diffs);
        Miss {
            time: output::rfc3339(last.time),
            key: last.key,
            reason: last.reason,
            nearest: nearest.map(|k| k.to_string()),
            differences: diffs,
            summary,
        }
    });
    Ok(Explanation {
        package: cache.package.clone(),
        name: cache.name(),
        path: cache.path.clone(),
        miss,
    })
}

/// The stored entry (other than the one the miss wrote) whose key differs
/// from the miss's in the fewest parts, and those differences.
fn nearest(cache: &Cache, last: &LastMiss) -> (Option<Key>, Vec<Difference>) {
    let store = cache.store();
    let Ok(entries) = store.entries() else {
        return (None, Vec::new());
    };
    let mut best: Option<(usize, std::time::SystemTime, Key, Vec<Difference>)> = None;
    for entry in entries {
        if entry.key.to_string() == last.key || entry.corrupt.is_some() {
            continue;
        }
        let Some(parts) = store
            .entry_notes(&entry.key)
            .and_then(|bytes| EntryNotes::decode(&bytes))
            .and_then(|notes| notes.parts)
        else {
            continue;
        };
        let diffs = differences(&parts, &last.parts);
        let better = best.as_ref().is_none_or(|(n, created, _, _)| {
            diffs.len() < *n || (diffs.len() == *n && entry.created > *created)
        });
        if better {
            best = Some((diffs.len(), entry.created, entry.key, diffs));
        }
    }
    match best {
        Some((_, _, key, diffs)) => (Some(key), diffs),
        None => (None, Vec::new()),
    }
}

fn summary(last: &LastMiss, compared: bool, diffs: &[Difference]) -> String {
    match last.reason {
        MissReason::Expired => "the stored entry had expired".to_owned(),
        MissReason::Corrupt => {
            "the stored entry was corrupt or no longer decoded, so it was computed again".to_owned()
        }
        MissReason::Evicted => "the entry had been evicted to keep the size cap".to_owned(),
        MissReason::Disabled => "pcache was off (PCACHE=off)".to_owned(),
        MissReason::Verify => "PCACHE=verify computed it to compare".to_owned(),
        _ if !compared => "never computed before: no other entry in this cache".to_owned(),
        _ if diffs.is_empty() => {
            "the nearest stored entry has the same key parts (it was stored after the miss)"
                .to_owned()
        }
        _ => format!(
            "{} ({} from the nearest stored entry)",
            last.reason.as_str(),
            if diffs.len() == 1 {
                "1 part differs".to_owned()
            } else {
                format!("{} parts differ", diffs.len())
            }
        ),
    }
}
