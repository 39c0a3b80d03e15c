//! `cargo pcache ls`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use pcache_core::{EntryInfo, Scan, conventions};
use serde::Serialize;

use super::Ctx;
use crate::caches::{Cache, Kind};
use crate::cli::LsArgs;
use crate::output::{self, Cell, Paint};

/// The `--json` document. Field order is fixed; new fields may be added.
#[derive(Serialize)]
struct Listing {
    target_dir: PathBuf,
    pcache_dir: PathBuf,
    caches: Vec<CacheRow>,
}

#[derive(Serialize)]
struct CacheRow {
    package: String,
    name: String,
    path: PathBuf,
    entries: u64,
    bytes: u64,
    expired: u64,
    expiry_secs: Option<u64>,
    /// `false` for caches of packages no longer in the workspace; `null`
    /// outside a workspace.
    in_workspace: Option<bool>,
    oldest: Option<String>,
    newest: Option<String>,
    /// The most recent read of any entry; `null` if none was recorded.
    last_used: Option<String>,
    /// Time saved by hits, from the cache's statistics.
    saved_secs: f64,
    /// Files beside the entries: writes in progress or left by killed
    /// processes, and lock files.
    leftovers: Leftovers,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_list: Option<Vec<EntryRow>>,
    #[serde(skip)]
    entry_infos: Vec<EntryInfo>,
    #[serde(skip)]
    oldest_time: Option<SystemTime>,
    #[serde(skip)]
    newest_time: Option<SystemTime>,
    #[serde(skip)]
    last_used_time: Option<SystemTime>,
    #[serde(skip)]
    saved: Duration,
}

#[derive(Serialize, Default, Clone, Copy)]
struct Leftovers {
    temp_files: u64,
    temp_bytes: u64,
    lock_files: u64,
}

impl Leftovers {
    fn of(scan: &Scan) -> Leftovers {
        let size = |p: &std::path::PathBuf| std::fs::symlink_metadata(p).map_or(0, |m| m.len());
        Leftovers {
            temp_files: scan.temps.len() as u64,
            temp_bytes: scan.temps.iter().map(size).sum(),
            lock_files: scan.locks.len() as u64,
        }
    }

    fn add(mut self, other: Leftovers) -> Leftovers {
        self.temp_files += other.temp_files;
        self.temp_bytes += other.temp_bytes;
        self.lock_files += other.lock_files;
        self
    }
}

#[derive(Serialize)]
struct EntryRow {
    key: String,
    path: PathBuf,
    bytes: u64,
    modified: String,
    expired: bool,
    corrupt: Option<String>,
    /// When the entry was last read; `null` if never (or not recorded).
    last_used: Option<String>,
    /// What computing it took: what a hit saves.
    compute_secs: f64,
}

pub(crate) fn run(ctx: &mut Ctx<'_>, args: &LsArgs, caches: Vec<Cache>) -> Result<()> {
    let mut rows = Vec::with_capacity(caches.len());
    for cache in caches {
        let expiry = ctx.expiry_of(&cache);
        let mut scan = match cache.store().with_expiry(expiry).scan() {
            Ok(scan) => scan,
            Err(e) => {
                ctx.warn(&e.to_string());
                continue;
            }
        };
        let leftovers = Leftovers::of(&scan);
        let entries = std::mem::take(&mut scan.entries);
        let saved = super::stats::totals(ctx, &cache, None).saved;
        rows.push(summarize(
            ctx,
            cache,
            expiry.map(|d| d.as_secs()),
            entries,
            args.entries,
            saved,
            leftovers,
        ));
    }
    if args.json {
        let listing = Listing {
            target_dir: ctx.workspace.target_dir.clone(),
            pcache_dir: ctx.workspace.pcache_root.clone(),
            caches: rows,
        };
        serde_json::to_writer_pretty(&mut *ctx.out, &listing)?;
        writeln!(ctx.out)?;
        return Ok(());
    }
    print_table(ctx, &rows, args.entries)?;
    if rows.is_empty() && !ctx.style.quiet {
        let root = ctx.workspace.pcache_root.display().to_string();
        ctx.warn(&format!("no caches in `{root}`"));
    }
    Ok(())
}

fn summarize(
    ctx: &Ctx<'_>,
    cache: Cache,
    expiry_secs: Option<u64>,
    entries: Vec<EntryInfo>,
    with_entries: bool,
    saved: Duration,
    leftovers: Leftovers,
) -> CacheRow {
    let oldest_time = entries.iter().map(|e| e.created).min();
    let newest_time = entries.iter().map(|e| e.created).max();
    let last_used_time = entries.iter().filter_map(|e| e.last_used).max();
    let entry_list = with_entries.then(|| {
        entries
            .iter()
            .map(|e| EntryRow {
                key: e.key.to_string(),
                path: e.path.clone(),
                bytes: e.size_bytes,
                modified: output::rfc3339(e.created),
                expired: e.expired,
                corrupt: e.corrupt.as_ref().map(ToString::to_string),
                last_used: e.last_used.map(output::rfc3339),
                compute_secs: e.compute_time.as_secs_f64(),
            })
            .collect()
    });
    CacheRow {
        // A dependency's build script belongs to no workspace.
        in_workspace: match cache.kind {
            Kind::Steps => ctx.workspace.is_member(&cache.package),
            Kind::BuildScript => None,
        },
        name: cache.name(),
        package: cache.package,
        path: cache.path,
        entries: entries.len() as u64,
        bytes: entries.iter().map(|e| e.size_bytes).sum(),
        expired: entries.iter().filter(|e| e.expired).count() as u64,
        expiry_secs,
        oldest: oldest_time.map(output::rfc3339),
        newest: newest_time.map(output::rfc3339),
        last_used: last_used_time.map(output::rfc3339),
        saved_secs: saved.as_secs_f64(),
        leftovers,
        entry_list,
        entry_infos: if with_entries { entries } else { Vec::new() },
        oldest_time,
        newest_time,
        last_used_time,
        saved,
    }
}

fn print_table(ctx: &mut Ctx<'_>, rows: &[CacheRow], with_entries: bool) -> Result<()> {
    let now = SystemTime::now();
    let style = ctx.style;
    let mut table: Vec<Vec<Cell>> = vec![
        [
            "PACKAGE", "CACHE", "ENTRIES", "SIZE", "EXPIRED", "OLDEST", "NEWEST", "LAST USE",
            "SAVED", "EXPIRY",
        ]
        .map(Cell::from)
        .to_vec(),
    ];
    let mut stale = false;
    for row in rows {
        let mut package = row.package.clone();
        if row.in_workspace == Some(false) {
            package.push('*');
            stale = true;
        }
        let expired = if row.expired > 0 {
            Cell::painted(row.expired.to_string(), Paint::Yellow)
        } else {
            "0".into()
        };
        let age = |t: Option<SystemTime>| t.map_or_else(|| "-".to_owned(), |t| output::age(now, t));
        table.push(vec![
            package.into(),
            output::display_name(&row.name).into(),
            row.entries.to_string().into(),
            output::size(row.bytes).into(),
            expired,
            age(row.oldest_time).into(),
            age(row.newest_time).into(),
            age(row.last_used_time).into(),
            super::stats::seconds(row.saved).into(),
            row.expiry_secs
                .map_or_else(
                    || "never".to_owned(),
                    |s| conventions::format_duration(Duration::from_secs(s)),
                )
                .into(),
        ]);
        if with_entries {
            for entry in &row.entry_infos {
                let state = match (&entry.corrupt, entry.expired) {
                    (Some(_), _) => Cell::painted("corrupt", Paint::Yellow),
                    (None, true) => Cell::painted("yes", Paint::Yellow),
                    (None, false) => "".into(),
                };
                table.push(vec![
                    "".into(),
                    Cell::painted(format!("  {}", entry.key), Paint::Dim),
                    "".into(),
                    output::size(entry.size_bytes).into(),
                    state,
                    output::age(now, entry.created).into(),
                    "".into(),
                    age(entry.last_used).into(),
                    super::stats::seconds(entry.compute_time).into(),
                ]);
            }
        }
    }
    if rows.len() > 1 {
        table.push(vec![
            Cell::painted("total", Paint::Bold),
            format!("{} caches", rows.len()).into(),
            rows.iter()
                .map(|r| r.entries)
                .sum::<u64>()
                .to_string()
                .into(),
            output::size(rows.iter().map(|r| r.bytes).sum()).into(),
            rows.iter()
                .map(|r| r.expired)
                .sum::<u64>()
                .to_string()
                .into(),
        ]);
    }
    output::table(ctx.out, &style, &table, &[2, 3, 4, 8])?;
    let leftovers = rows
        .iter()
        .fold(Leftovers::default(), |sum, r| sum.add(r.leftovers));
    if (leftovers.temp_files > 0 || leftovers.lock_files > 0) && !style.quiet {
        writeln!(
            ctx.out,
            "{}",
            style.paint(
                Paint::Dim,
                &format!(
                    "besides the entries: {} temporary files ({}) and {} lock files, of writes in progress or killed; `cargo pcache flush` removes those of dead writers",
                    leftovers.temp_files,
                    output::size(leftovers.temp_bytes),
                    leftovers.lock_files
                )
            )
        )?;
    }
    if stale && !style.quiet {
        writeln!(
            ctx.out,
            "{}",
            style.paint(
                Paint::Dim,
                "* not in this workspace any more: `cargo pcache delete -p <package>` removes its caches"
            )
        )?;
    }
    Ok(())
}
