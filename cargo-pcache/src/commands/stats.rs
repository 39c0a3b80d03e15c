//! `cargo pcache stats`: hits, misses by reason, hit rate, compute time
//! spent and time saved, per cache and in total.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use pcache_core::record::{MissReason, Totals};
use serde::Serialize;

use super::Ctx;
use crate::caches::Cache;
use crate::cli::StatsArgs;
use crate::output::{self, Cell, Paint};

/// The `--json` document. Fields may be added, never renamed or removed.
#[derive(Serialize)]
struct Report {
    pcache_dir: PathBuf,
    /// The window, if `--since` was given.
    since_secs: Option<u64>,
    caches: Vec<CacheStats>,
    total: Figures,
    /// Remote objects refused for their signature (not signed by a trusted
    /// key), in the window: each was a miss instead.
    refused: u64,
}

#[derive(Serialize)]
struct CacheStats {
    package: String,
    name: String,
    path: PathBuf,
    #[serde(flatten)]
    figures: Figures,
}

/// One cache's figures, or the total.
#[derive(Serialize)]
pub(crate) struct Figures {
    hits: u64,
    misses: u64,
    /// By reason: `new_key`, `inputs_changed`, `code_changed`, `expired`,
    /// `corrupt`, `evicted`, `disabled`, `verify`.
    misses_by_reason: BTreeMap<MissReason, u64>,
    /// Hits over all steps; `null` without steps.
    hit_rate: Option<f64>,
    /// Time spent computing (misses).
    compute_secs: f64,
    /// Each hit's recorded compute time minus the hit's own time.
    saved_secs: f64,
    /// Time spent on hits.
    hit_secs: f64,
    bytes_read: u64,
    bytes_written: u64,
}

impl Figures {
    pub(crate) fn of(totals: &Totals) -> Figures {
        Figures {
            hits: totals.hits,
            misses: totals.misses(),
            misses_by_reason: MissReason::ALL
                .into_iter()
                .map(|r| (r, totals.misses_for(r)))
                .collect(),
            hit_rate: totals.hit_rate(),
            compute_secs: totals.compute_time.as_secs_f64(),
            saved_secs: totals.saved.as_secs_f64(),
            hit_secs: totals.hit_time.as_secs_f64(),
            bytes_read: totals.bytes_read,
            bytes_written: totals.bytes_written,
        }
    }
}

/// A cache's totals, since `since` if given. Unreadable statistics are a
/// warning and count as none.
pub(crate) fn totals(ctx: &mut Ctx<'_>, cache: &Cache, since: Option<SystemTime>) -> Totals {
    match cache.store().stats_log().read() {
        Ok(stats) => stats.totals(since),
        Err(e) => {
            ctx.warn(&e.to_string());
            Totals::default()
        }
    }
}

pub(crate) fn run(ctx: &mut Ctx<'_>, args: &StatsArgs, caches: Vec<Cache>) -> Result<()> {
    if args.reset {
        return reset(ctx, &caches);
    }
    let since = args.since.map(|d| SystemTime::now() - d);
    let refused = std::iter::once(&ctx.workspace.pcache_root)
        .chain(&ctx.workspace.home_root)
        .map(|root| crate::remote::refused_count(root, since))
        .sum();
    let mut total = Totals::default();
    let mut rows = Vec::with_capacity(caches.len());
    for cache in caches {
        let totals = totals(ctx, &cache, since);
        total.merge(&totals);
        rows.push((cache, totals));
    }
    if args.json {
        let report = Report {
            pcache_dir: ctx.workspace.pcache_root.clone(),
            since_secs: args.since.map(|d| d.as_secs()),
            caches: rows
                .iter()
                .map(|(cache, totals)| CacheStats {
                    package: cache.package.clone(),
                    name: cache.name(),
                    path: cache.path.clone(),
                    figures: Figures::of(totals),
                })
                .collect(),
            total: Figures::of(&total),
            refused,
        };
        serde_json::to_writer_pretty(&mut *ctx.out, &report)?;
        writeln!(ctx.out)?;
        return Ok(());
    }
    print_table(ctx, &rows, &total)?;
    if refused > 0 && !ctx.style.quiet {
        writeln!(
            ctx.out,
            "remote: {refused} {} refused, not signed by a trusted key",
            if refused == 1 { "object" } else { "objects" }
        )?;
    }
    Ok(())
}

fn print_table(ctx: &mut Ctx<'_>, rows: &[(Cache, Totals)], total: &Totals) -> Result<()> {
    let header = [
        "PACKAGE", "CACHE", "HITS", "MISSES", "HIT RATE", "COMPUTED", "SAVED", "READ", "WRITTEN",
    ];
    let mut table: Vec<Vec<Cell>> = vec![header.map(Cell::from).to_vec()];
    let row = |package: Cell, name: String, t: &Totals| -> Vec<Cell> {
        vec![
            package,
            name.into(),
            t.hits.to_string().into(),
            t.misses().to_string().into(),
            t.hit_rate()
                .map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0))
                .into(),
            seconds(t.compute_time).into(),
            seconds(t.saved).into(),
            output::size(t.bytes_read).into(),
            output::size(t.bytes_written).into(),
        ]
    };
    for (cache, totals) in rows {
        table.push(row(
            cache.package.clone().into(),
            output::display_name(&cache.name()),
            totals,
        ));
    }
    if rows.len() > 1 {
        table.push(row(
            Cell::painted("total", Paint::Bold),
            format!("{} caches", rows.len()),
            total,
        ));
    }
    let style = ctx.style;
    output::table(ctx.out, &style, &table, &[2, 3, 4, 5, 6, 7, 8])?;
    let reasons: Vec<String> = MissReason::ALL
        .into_iter()
        .filter(|r| total.misses_for(*r) > 0)
        .map(|r| format!("{} {}", total.misses_for(r), r.as_str()))
        .collect();
    if !reasons.is_empty() && !ctx.style.quiet {
        writeln!(ctx.out, "misses: {}", reasons.join(", "))?;
    }
    Ok(())
}

/// `1.5 ms`, `2.30 s`, `3m12s`: short, for tables.
pub(crate) fn seconds(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        pcache_core::conventions::format_duration(Duration::from_secs(d.as_secs()))
    } else if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 0.001 {
        format!("{:.1} ms", secs * 1e3)
    } else if d.is_zero() {
        "0 s".to_owned()
    } else {
        format!("{:.0} µs", secs * 1e6)
    }
}

fn reset(ctx: &mut Ctx<'_>, caches: &[Cache]) -> Result<()> {
    let mut failures = Vec::new();
    for cache in caches {
        if let Err(e) = cache.store().stats_log().reset() {
            failures.push(e.to_string());
        }
    }
    if !ctx.style.quiet {
        let word = if caches.len() == 1 { "cache" } else { "caches" };
        writeln!(
            ctx.out,
            "Reset the statistics of {} {word}",
            caches.len() - failures.len()
        )?;
    }
    match failures.as_slice() {
        [] => Ok(()),
        many => anyhow::bail!("{}", many.join("\n")),
    }
}
