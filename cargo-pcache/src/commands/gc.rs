//! `cargo pcache gc`: remove expired and corrupt entries and stale files,
//! and trim the pcache directory to its size cap, keeping what saves the
//! most time per byte (see `pcache_core::gc`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use pcache_core::config;
use pcache_core::gc::{self, Candidate};
use pcache_core::{Removed, Store};
use serde::Serialize;

use super::Ctx;
use crate::caches::{Cache, Kind};
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
    /// The per-user store of dependencies' build-script runs, collected
    /// the same way under its own cap; `null` when there is none.
    home: Option<Section>,
}

/// One pcache directory's collection.
#[derive(Serialize)]
struct Section {
    pcache_dir: PathBuf,
    max_bytes: Option<u64>,
    before_bytes: u64,
    after_bytes: u64,
    expired: Counts,
    evicted: Counts,
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
    let mut problems = Vec::new();
    let max_bytes = config::max_size(
        args.max_size,
        &ctx.env,
        &ctx.workspace.settings,
        &mut problems,
    );
    let home_cap = config::home_max_size(None, &ctx.env, &mut problems);
    for problem in &problems {
        ctx.warn(problem);
    }
    let (steps, runs): (Vec<Cache>, Vec<Cache>) =
        caches.into_iter().partition(|c| c.kind == Kind::Steps);
    let root = ctx.workspace.pcache_root.clone();
    let section = collect(ctx, &root, max_bytes, &steps, args.dry_run)?;
    let home = match ctx.workspace.home_root.clone() {
        Some(home) if home.is_dir() && home != root => {
            Some(collect(ctx, &home, Some(home_cap), &runs, args.dry_run)?)
        }
        _ => None,
    };
    if args.json {
        let report = Report {
            pcache_dir: section.pcache_dir,
            dry_run: args.dry_run,
            max_bytes: section.max_bytes,
            before_bytes: section.before_bytes,
            after_bytes: section.after_bytes,
            expired: section.expired,
            evicted: section.evicted,
            leftovers: section.leftovers,
            removed: section.removed,
            home,
        };
        serde_json::to_writer_pretty(&mut *ctx.out, &report)?;
        writeln!(ctx.out)?;
        return Ok(());
    }
    if !ctx.style.quiet {
        for section in std::iter::once(&section).chain(&home) {
            print_section(ctx, args.dry_run, section)?;
        }
    }
    Ok(())
}

/// Plans and (unless `dry_run`) applies the collection of `root`.
fn collect(
    ctx: &mut Ctx<'_>,
    root: &Path,
    max_bytes: Option<u64>,
    caches: &[Cache],
    dry_run: bool,
) -> Result<Section> {
    // Without a cap, nothing is over it: only expired and corrupt entries go.
    let plan = gc::plan_trim(root, max_bytes.unwrap_or(u64::MAX))?;
    let mut section = Section {
        pcache_dir: root.to_owned(),
        max_bytes,
        before_bytes: plan.total_bytes,
        after_bytes: plan.total_bytes.saturating_sub(plan.evict_bytes()),
        expired: Counts::default(),
        evicted: Counts::default(),
        leftovers: 0,
        removed: plan.evict.iter().map(|c| row(c, caches)).collect(),
    };
    for c in &plan.evict {
        let counts = if c.value < 0.0 {
            &mut section.expired
        } else {
            &mut section.evicted
        };
        counts.entries += 1;
        counts.bytes += c.info.size_bytes;
    }
    if !dry_run {
        let bar = ctx.style.progress_bar(plan.evict.len() as u64, "Collected");
        let removed = gc::apply(&plan)?;
        bar.inc(plan.evict.len() as u64, ctx.err);
        bar.finish(ctx.err);
        section.after_bytes = plan.total_bytes.saturating_sub(removed.bytes);
        section.leftovers = sweep_leftovers(caches)? + gc::sweep_inputs(root);
    }
    Ok(section)
}

fn print_section(ctx: &mut Ctx<'_>, dry_run: bool, section: &Section) -> Result<()> {
    let verb = if dry_run { "Would remove" } else { "Removed" };
    let cap = section.max_bytes.map_or_else(
        || "no size cap set".to_owned(),
        |cap| format!("cap {}", output::size(cap)),
    );
    writeln!(
        ctx.out,
        "{verb} {} expired or corrupt entries ({}) and {} entries to stay under the cap ({}); {}: {} → {}, {cap}",
        section.expired.entries,
        output::size(section.expired.bytes),
        section.evicted.entries,
        output::size(section.evicted.bytes),
        section.pcache_dir.display(),
        output::size(section.before_bytes),
        output::size(section.after_bytes),
    )?;
    if ctx.style.verbose {
        for r in &section.removed {
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
