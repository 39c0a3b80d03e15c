//! `cargo pcache gc`: remove expired and corrupt entries and stale files,
//! and trim the pcache directory to its size cap, keeping what saves the
//! most time per byte (see `pcache_core::gc`).

use std::path::PathBuf;

use anyhow::Result;
use pcache_core::config;
use pcache_core::gc::{self, Candidate};
use pcache_core::{Removed, Store};
use serde::Serialize;

use super::Ctx;
use crate::caches::Cache;
use crate::cli::GcArgs;
use crate::output;

/// The `--json` document. Fields may be added, never renamed or removed.
#[derive(Serialize)]
struct Report {
    pcache_dir: PathBuf,
    dry_run: bool,
    /// The cap trimmed to; `null` without one.
    max_bytes: Option<u64>,
    before_bytes: u64,
    after_bytes: u64,
    /// Expired and corrupt entries.
    expired: Counts,
    /// Entries removed to stay under the cap.
    evicted: Counts,
    /// Stale temporary, lock and sidecar files.
    leftovers: u64,
    removed: Vec<Row>,
}

#[derive(Serialize, Default)]
struct Counts {
    entries: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct Row {
    package: String,
    name: String,
    key: String,
    bytes: u64,
    expired: bool,
    /// Seconds saved per byte, discounted by days unused.
    value: f64,
}

pub(crate) fn run(ctx: &mut Ctx<'_>, args: &GcArgs, caches: Vec<Cache>) -> Result<()> {
    let root = ctx.workspace.pcache_root.clone();
    let mut problems = Vec::new();
    let max_bytes = config::max_size(
        args.max_size,
        &ctx.env,
        &ctx.workspace.settings,
        &mut problems,
    );
    for problem in &problems {
        ctx.warn(problem);
    }
    // Without a cap, nothing is over it: only expired and corrupt entries go.
    let plan = gc::plan_trim(&root, max_bytes.unwrap_or(u64::MAX))?;
    let mut report = Report {
        pcache_dir: root.clone(),
        dry_run: args.dry_run,
        max_bytes,
        before_bytes: plan.total_bytes,
        after_bytes: plan.total_bytes.saturating_sub(plan.evict_bytes()),
        expired: Counts::default(),
        evicted: Counts::default(),
        leftovers: 0,
        removed: plan.evict.iter().map(|c| row(c, &caches)).collect(),
    };
    for c in &plan.evict {
        let counts = if c.value < 0.0 {
            &mut report.expired
        } else {
            &mut report.evicted
        };
        counts.entries += 1;
        counts.bytes += c.info.size_bytes;
    }
    if !args.dry_run {
        let bar = ctx.style.progress_bar(plan.evict.len() as u64, "Collected");
        let removed = gc::apply(&plan)?;
        bar.inc(plan.evict.len() as u64, ctx.err);
        bar.finish(ctx.err);
        report.after_bytes = plan.total_bytes.saturating_sub(removed.bytes);
        report.leftovers = sweep_leftovers(&caches)? + gc::sweep_inputs(&root);
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *ctx.out, &report)?;
        writeln!(ctx.out)?;
        return Ok(());
    }
    if ctx.style.quiet {
        return Ok(());
    }
    let verb = if args.dry_run {
        "Would remove"
    } else {
        "Removed"
    };
    let cap = max_bytes.map_or_else(
        || "no size cap set".to_owned(),
        |cap| format!("cap {}", output::size(cap)),
    );
    writeln!(
        ctx.out,
        "{verb} {} expired or corrupt entries ({}) and {} entries to stay under the cap ({}); {}: {} → {}, {cap}",
        report.expired.entries,
        output::size(report.expired.bytes),
        report.evicted.entries,
        output::size(report.evicted.bytes),
        root.display(),
        output::size(report.before_bytes),
        output::size(report.after_bytes),
    )?;
    if ctx.style.verbose {
        for r in &report.removed {
            writeln!(
                ctx.out,
                "  {}  {}  {}  {}",
                r.package,
                output::display_name(&r.name),
                r.key,
                output::size(r.bytes)
            )?;
        }
    }
    Ok(())
}

fn row(c: &Candidate, caches: &[Cache]) -> Row {
    let cache = caches.iter().find(|cache| cache.path == c.cache_dir);
    Row {
        package: cache.map(|c| c.package.clone()).unwrap_or_default(),
        name: cache.map(Cache::name).unwrap_or_default(),
        key: c.info.key.to_string(),
        bytes: c.info.size_bytes,
        expired: c.value < 0.0,
        value: c.value,
    }
}

/// Stale temporary, lock and sidecar files of every cache.
fn sweep_leftovers(caches: &[Cache]) -> Result<u64> {
    let mut swept = Removed::default();
    for cache in caches {
        let store: Store = cache.store();
        let mut plan = store.plan_flush(Some(std::time::Duration::MAX))?;
        plan.entries.clear();
        swept += store.apply(&plan)?;
    }
    Ok(swept.leftovers)
}
