//! `cargo pcache push` and `cargo pcache pull`: move entries between this
//! workspace's caches and the remote, leaving alone those already on the
//! other side.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use anyhow::{Result, bail};
use pcache_core::remote::{self, Access, EntryName, RemoteSettings};
use pcache_core::{conventions, short_id};
use serde::Serialize;

use super::Ctx;
use crate::caches::Cache;
use crate::cli::{Selection, TransferArgs};
use crate::output;
use crate::remote::{Remote, RemoteError, Transfer, Vars};

/// The `--json` document. Fields may be added, never renamed or removed.
#[derive(Serialize)]
struct Report {
    /// The remote, credentials redacted.
    remote: String,
    dry_run: bool,
    /// Entries copied (or, with `--dry-run`, that would be).
    moved: Counts,
    /// Entries already on the other side.
    present: Counts,
    /// Entries the remote refused or failed on.
    failed: Counts,
    /// Remote entries that failed the checks (pull only): not kept.
    invalid: Counts,
    entries: Vec<Row>,
}

#[derive(Serialize, Default, Clone, Copy)]
struct Counts {
    entries: u64,
    bytes: u64,
}

impl Counts {
    fn add(&mut self, bytes: u64) {
        self.entries += 1;
        self.bytes += bytes;
    }
}

#[derive(Serialize)]
struct Row {
    package: String,
    /// The cache name, when known (`cache.toml`).
    name: Option<String>,
    key: String,
    bytes: u64,
    /// `moved`, `present`, `failed` or `invalid`.
    status: &'static str,
    /// Why it failed, for `failed` and `invalid`.
    error: Option<String>,
}

/// Which way entries go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Push,
    Pull,
}

impl Direction {
    fn words(self, dry_run: bool) -> (&'static str, &'static str) {
        match (self, dry_run) {
            (Direction::Push, false) => ("Pushed", "to"),
            (Direction::Push, true) => ("Would push", "to"),
            (Direction::Pull, false) => ("Pulled", "from"),
            (Direction::Pull, true) => ("Would pull", "from"),
        }
    }
}

/// The remote as configured where `cargo pcache` runs, with what Cargo's
/// configuration adds.
pub(crate) fn configured(mut warn: impl FnMut(&str)) -> Result<RemoteSettings> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let vars = Vars::cargo(&cwd);
    for warning in &vars.warnings {
        warn(warning);
    }
    match vars.settings()? {
        Some(settings) => Ok(settings),
        None => bail!(
            "no remote configured: set {} (s3://bucket/prefix, redis://host:port/db, webdav+http(s)://host/path or file:///dir), in the environment or in .cargo/config.toml [env]",
            remote::REMOTE_VAR
        ),
    }
}

/// The client for `settings`, with the credentials Cargo's configuration
/// may add.
pub(crate) fn connect(settings: &RemoteSettings) -> Result<Remote> {
    let cwd = std::env::current_dir().unwrap_or_default();
    Remote::open(settings, &Vars::cargo(&cwd))
        .map_err(|e| anyhow::anyhow!("remote {}: {e}", settings.url.redacted()))
}

/// `cargo pcache push`.
pub(crate) fn push(ctx: &mut Ctx<'_>, args: &TransferArgs, caches: Vec<Cache>) -> Result<()> {
    let settings = configured(|w| ctx.warn(w))?;
    if settings.access == Access::Read && !args.dry_run {
        bail!(
            "{}=read: this remote is read-only here; push needs read-write",
            remote::MODE_VAR
        );
    }
    let remote = connect(&settings)?;
    let root = ctx.workspace.pcache_root.clone();
    let mut planned = Vec::new();
    for cache in &caches {
        let Some(dir) = CacheDir::of(&cache.path, &root) else {
            continue;
        };
        let entries = match cache.store().with_expiry(ctx.expiry_of(cache)).entries() {
            Ok(entries) => entries,
            Err(e) => {
                ctx.warn(&e.to_string());
                continue;
            }
        };
        let there = remote_keys(&remote, &dir)?;
        for info in entries.into_iter().filter(|e| !e.expired) {
            let Ok(entry) = EntryName::new(&dir.package, &dir.id, info.key) else {
                continue;
            };
            let present = match &there {
                Some(keys) => keys.contains(&entry.remote_key()),
                None => remote
                    .size(&entry.remote_key())
                    .map_err(|e| remote_failed(&remote, &e))?
                    .is_some(),
            };
            planned.push((cache, entry, info.size_bytes, present));
        }
    }
    let mut report = report(&remote, args.dry_run);
    let progress = ctx
        .style
        .progress_bar(planned.iter().filter(|p| !p.3).count() as u64, "Pushing");
    let mut sent = HashSet::new();
    for (cache, entry, bytes, present) in planned {
        let mut row = row(&cache.package, Some(cache.name()), &entry, bytes);
        if present {
            report.present.add(bytes);
            row.status = "present";
            let _ = std::fs::remove_file(remote::outbox_dir(&root).join(entry.outbox_item()));
        } else if args.dry_run {
            report.moved.add(bytes);
        } else {
            match crate::remote::upload(&remote, &root, &entry, &mut sent) {
                Ok(Some(size)) => {
                    report.moved.add(size);
                    row.bytes = size;
                    let _ =
                        std::fs::remove_file(remote::outbox_dir(&root).join(entry.outbox_item()));
                }
                // Removed since it was listed.
                Ok(None) => continue,
                Err(Transfer::Remote(e @ RemoteError::Unavailable(_))) => {
                    progress.finish(ctx.err);
                    return Err(remote_failed(&remote, &e));
                }
                Err(e) => {
                    report.failed.add(bytes);
                    row.status = "failed";
                    row.error = Some(e.to_string());
                }
            }
            progress.inc(1, ctx.err);
        }
        report.entries.push(row);
    }
    progress.finish(ctx.err);
    if !args.dry_run && report.failed.entries == 0 {
        let _ = std::fs::remove_file(remote::upload_error(&root));
    }
    finish(ctx, args, Direction::Push, &report)
}

/// `cargo pcache pull`.
pub(crate) fn pull(ctx: &mut Ctx<'_>, args: &TransferArgs) -> Result<()> {
    let settings = configured(|w| ctx.warn(w))?;
    let remote = connect(&settings)?;
    if !remote.can_list() {
        bail!(
            "remote {}: a {} remote cannot list its entries, so there is nothing to pull ahead of time; builds fetch the entries they miss",
            remote.url(),
            remote.url().backend().name()
        );
    }
    let root = ctx.workspace.pcache_root.clone();
    let packages = pull_packages(ctx, &args.selection)?;
    let ids: BTreeSet<String> = args.selection.names.iter().map(|n| short_id(n)).collect();
    let mut planned = Vec::new();
    for package in &packages {
        let dir = conventions::package_dir_name(package);
        let prefix = remote::remote_cache_prefix(&dir, None);
        let listed = remote
            .list(&prefix)
            .map_err(|e| remote_failed(&remote, &e))?;
        for item in listed {
            // Anything else there (`cache.toml`, foreign objects) is not
            // an entry.
            let Ok(entry) = EntryName::from_remote_key(&item.key) else {
                continue;
            };
            if ids.is_empty() || ids.contains(entry.cache_id()) {
                planned.push((package.clone(), entry, item.size));
            }
        }
    }
    let mut report = report(&remote, args.dry_run);
    let present = |entry: &EntryName| {
        entry
            .cache_dir(&root)
            .join(entry.key().to_string())
            .is_file()
    };
    let progress = ctx.style.progress_bar(
        planned.iter().filter(|p| !present(&p.1)).count() as u64,
        "Pulling",
    );
    let mut metas = HashSet::new();
    for (package, entry, bytes) in planned {
        let name = Cache::name_at(&entry.cache_dir(&root));
        let mut row = row(&package, name, &entry, bytes);
        if present(&entry) {
            report.present.add(bytes);
            row.status = "present";
        } else if args.dry_run {
            report.moved.add(bytes);
        } else {
            match crate::remote::download(&remote, &root, &entry) {
                Ok(Some(size)) => {
                    report.moved.add(size);
                    if metas.insert(entry.cache_dir(&root)) {
                        if let Err(e) = crate::remote::download_meta(&remote, &root, &entry) {
                            ctx.warn(&e.to_string());
                        }
                    }
                    row.name = Cache::name_at(&entry.cache_dir(&root));
                }
                // Removed since it was listed.
                Ok(None) => continue,
                Err(Transfer::Remote(e @ RemoteError::Unavailable(_))) => {
                    progress.finish(ctx.err);
                    return Err(remote_failed(&remote, &e));
                }
                Err(Transfer::Invalid(why)) => {
                    ctx.warn(&why);
                    report.invalid.add(bytes);
                    row.status = "invalid";
                    row.error = Some(why);
                }
                Err(e) => {
                    report.failed.add(bytes);
                    row.status = "failed";
                    row.error = Some(e.to_string());
                }
            }
            progress.inc(1, ctx.err);
        }
        report.entries.push(row);
    }
    progress.finish(ctx.err);
    finish(ctx, args, Direction::Pull, &report)
}

/// The packages `pull` looks for: the ones named, else the workspace's.
fn pull_packages(ctx: &Ctx<'_>, selection: &Selection) -> Result<Vec<String>> {
    if !selection.packages.is_empty() {
        return Ok(selection.packages.clone());
    }
    match &ctx.workspace.members {
        Some(members) => Ok(members.keys().cloned().collect()),
        None => bail!("not in a Cargo workspace: name the packages to pull with -p"),
    }
}

/// A cache directory's place under the pcache directory.
struct CacheDir {
    package: String,
    id: String,
}

impl CacheDir {
    fn of(path: &Path, root: &Path) -> Option<CacheDir> {
        let rel = path.strip_prefix(root).ok()?;
        let mut parts = rel.iter().map(|p| p.to_string_lossy().into_owned());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(package), Some(id), None) => Some(CacheDir { package, id }),
            _ => None,
        }
    }
}

/// The remote keys under a cache's prefix, or `None` when the remote
/// cannot list (then each entry is asked about).
fn remote_keys(remote: &Remote, dir: &CacheDir) -> Result<Option<HashSet<String>>> {
    if !remote.can_list() {
        return Ok(None);
    }
    let prefix = remote::remote_cache_prefix(&dir.package, Some(&dir.id));
    let listed = remote
        .list(&prefix)
        .map_err(|e| remote_failed(remote, &e))?;
    Ok(Some(listed.into_iter().map(|l| l.key).collect()))
}

fn remote_failed(remote: &Remote, e: &RemoteError) -> anyhow::Error {
    anyhow::anyhow!("remote {}: {e}", remote.url())
}

fn report(remote: &Remote, dry_run: bool) -> Report {
    Report {
        remote: remote.url().redacted(),
        dry_run,
        moved: Counts::default(),
        present: Counts::default(),
        failed: Counts::default(),
        invalid: Counts::default(),
        entries: Vec::new(),
    }
}

fn row(package: &str, name: Option<String>, entry: &EntryName, bytes: u64) -> Row {
    Row {
        package: package.to_owned(),
        name,
        key: entry.key().to_string(),
        bytes,
        status: "moved",
        error: None,
    }
}

fn finish(
    ctx: &mut Ctx<'_>,
    args: &TransferArgs,
    direction: Direction,
    report: &Report,
) -> Result<()> {
    if args.json {
        serde_json::to_writer_pretty(&mut *ctx.out, report)?;
        writeln!(ctx.out)?;
    } else {
        if ctx.style.verbose {
            for row in report.entries.iter().filter(|r| r.status != "present") {
                let name = row
                    .name
                    .as_deref()
                    .map_or_else(String::new, output::display_name);
                writeln!(
                    ctx.out,
                    "{:<8} {} {name} {} ({})",
                    row.status,
                    row.package,
                    row.key,
                    output::size(row.bytes)
                )?;
            }
        }
        if !ctx.style.quiet {
            let (done, preposition) = direction.words(args.dry_run);
            let noun = |n: u64| if n == 1 { "entry" } else { "entries" };
            let mut line = format!(
                "{done} {} {} ({}) {preposition} {}",
                report.moved.entries,
                noun(report.moved.entries),
                output::size(report.moved.bytes),
                report.remote
            );
            if report.present.entries > 0 {
                line.push_str(&format!("; {} already there", report.present.entries));
            }
            if report.invalid.entries > 0 {
                line.push_str(&format!(
                    "; {} invalid on the remote, not kept",
                    report.invalid.entries
                ));
            }
            writeln!(ctx.out, "{line}")?;
        }
    }
    if let Some(failed) = report.entries.iter().find(|r| r.status == "failed") {
        bail!(
            "{} of {} entries failed; the first: {}",
            report.failed.entries,
            report.entries.len(),
            failed.error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(())
}
