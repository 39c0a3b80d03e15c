//! `cargo pcache push` and `cargo pcache pull`: move entries between this
//! workspace's caches and the remote, leaving alone those already on the
//! other side.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use pcache_core::record::EntryNotes;
use pcache_core::remote::{self, Access, EntryName, RemoteSettings};
use pcache_core::{conventions, short_id};
use serde::Serialize;

use super::Ctx;
use crate::caches::Cache;
use crate::cli::{Selection, TransferArgs};
use crate::output;
use crate::remote::{Remote, RemoteError, Transfer};
use pcache_core::config::Env;

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
    /// Remote objects not signed by a trusted key: refused (pull) or
    /// replaced by a signed copy (push).
    refused: Counts,
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
    /// `moved`, `present`, `failed`, `invalid` or `refused`.
    status: &'static str,
    /// Why it failed, for `failed`, `invalid` and `refused`.
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

    fn progress(self) -> &'static str {
        match self {
            Direction::Push => "Pushing",
            Direction::Pull => "Pulling",
        }
    }
}

/// The remote as configured where `cargo pcache` runs (the environment
/// with what Cargo's configuration adds).
pub(crate) fn configured(env: &Env) -> Result<RemoteSettings> {
    match RemoteSettings::from_vars(|name| env.get(name))? {
        Some(settings) => Ok(settings),
        None => bail!(
            "no remote configured: set {} (s3://bucket/prefix, redis://host:port/db, webdav+http(s)://host/path, file:///dir, or gha in GitHub Actions), in the environment or in .cargo/config.toml [env]",
            remote::REMOTE_VAR
        ),
    }
}

/// The client for `settings`, with the credentials in `env`.
pub(crate) fn connect(settings: &RemoteSettings, env: &Env) -> Result<Remote> {
    Remote::open(settings, env)
        .map_err(|e| anyhow::anyhow!("remote {}: {e}", settings.url.redacted()))
}

/// `cargo pcache push`.
pub(crate) fn push(ctx: &mut Ctx<'_>, args: &TransferArgs, caches: Vec<Cache>) -> Result<()> {
    let settings = configured(&ctx.env)?;
    if settings.access == Access::Read && !args.dry_run {
        bail!(
            "{}=read: this remote is read-only here; push needs read-write",
            remote::MODE_VAR
        );
    }
    let remote = connect(&settings, &ctx.env)?
        .for_pushing(&ctx.env)
        .map_err(|e| anyhow::anyhow!("remote {}: {e}", settings.url.redacted()))?;
    if remote.trust().is_some() && remote.signer().is_none() && !args.dry_run {
        bail!(
            "{} is set, so readers refuse unsigned objects: push needs the signing key in {} or {} (`cargo pcache keygen` makes one)",
            remote::TRUSTED_KEYS_VAR,
            remote::SIGNING_KEY_VAR,
            remote::SIGNING_KEY_FILE_VAR
        );
    }
    let mut planned = Vec::new();
    for cache in &caches {
        let root = &cache.root;
        let Some(dir) = CacheDir::of(&cache.path, root) else {
            continue;
        };
        let store = cache.store();
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
            // An entry naming this machine's own paths never leaves it.
            let notes = store.entry_notes(&info.key).unwrap_or_default();
            if EntryNotes::is_local_only(&notes) {
                continue;
            }
            let listed = match &there {
                Some(keys) => keys.contains(&entry.remote_key()),
                None => remote
                    .size(&entry.remote_key())
                    .map_err(|e| remote_failed(&remote, &e))?
                    .is_some(),
            };
            // With trusted keys, an object there counts only if readers
            // would take it: anything else is replaced.
            let unverified = listed && unverifiable(&remote, &entry.remote_key())?;
            let present = listed && !unverified;
            if present {
                // Nothing left to send for it.
                let _ = std::fs::remove_file(remote::outbox_dir(root).join(entry.outbox_item()));
            }
            planned.push(Planned {
                package: cache.package.clone(),
                root: root.clone(),
                entry,
                bytes: info.size_bytes,
                present,
                unverified,
            });
        }
    }
    let roots: BTreeSet<PathBuf> = caches.iter().map(|c| c.root.clone()).collect();
    let mut sent = HashSet::new();
    let report = move_entries(
        ctx,
        args,
        &remote,
        planned,
        Direction::Push,
        |root, entry| {
            let size = crate::remote::upload(&remote, root, entry, &mut sent)?;
            let _ = std::fs::remove_file(remote::outbox_dir(root).join(entry.outbox_item()));
            Ok(size)
        },
    )?;
    if !args.dry_run && report.failed.entries == 0 {
        for root in roots {
            let _ = std::fs::remove_file(remote::upload_error(&root));
        }
    }
    finish(ctx, args, Direction::Push, &report)
}

/// `cargo pcache pull`.
pub(crate) fn pull(ctx: &mut Ctx<'_>, args: &TransferArgs) -> Result<()> {
    let settings = configured(&ctx.env)?;
    let remote = connect(&settings, &ctx.env)?;
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
    let run_id = short_id(pcache_wrapper::CACHE_NAME);
    let mut planned = Vec::new();
    // pcache-build's caches of the workspace's packages, into its pcache
    // directory; build-script runs of the dependencies, into the per-user
    // store.
    let mut wanted: Vec<(String, PathBuf, Option<String>)> = packages
        .iter()
        .map(|p| (p.clone(), root.clone(), None))
        .collect();
    if let Some(home) = ctx.workspace.home_root.clone() {
        let with_scripts = if args.selection.packages.is_empty() {
            crate::workspace::packages_with_build_scripts(&args.selection)
        } else {
            args.selection.packages.clone()
        };
        wanted.extend(
            with_scripts
                .into_iter()
                .map(|p| (p, home.clone(), Some(run_id.clone()))),
        );
    }
    for (package, root, only) in &wanted {
        let dir = conventions::package_dir_name(package);
        let prefix = remote::remote_cache_prefix(&dir, only.as_deref());
        let listed = remote
            .list(&prefix)
            .map_err(|e| remote_failed(&remote, &e))?;
        for item in listed {
            // Anything else there (`cache.toml`, foreign objects) is not
            // an entry.
            let Ok(entry) = EntryName::from_remote_key(&item.key) else {
                continue;
            };
            let is_run = entry.cache_id() == run_id;
            // Runs go to the per-user store, steps to the workspace's.
            if is_run != only.is_some() {
                continue;
            }
            let named = ids.is_empty()
                || ids.contains(entry.cache_id())
                || (is_run && args.selection.names.contains(package));
            if named {
                let present = entry
                    .cache_dir(root)
                    .join(entry.key().to_string())
                    .is_file();
                planned.push(Planned {
                    package: package.clone(),
                    root: root.clone(),
                    entry,
                    bytes: item.size,
                    present,
                    unverified: false,
                });
            }
        }
    }
    let mut metas = HashSet::new();
    let report = move_entries(
        ctx,
        args,
        &remote,
        planned,
        Direction::Pull,
        |root, entry| {
            let size = crate::remote::download(&remote, root, entry)?;
            if size.is_some() && metas.insert(entry.cache_dir(root)) {
                // A cache first seen here: its name, for `ls`.
                crate::remote::download_meta(&remote, root, entry)?;
            }
            Ok(size)
        },
    )?;
    finish(ctx, args, Direction::Pull, &report)
}

/// An entry `push` or `pull` considers.
struct Planned {
    package: String,
    /// The pcache directory it is (or goes) in.
    root: PathBuf,
    entry: EntryName,
    bytes: u64,
    /// Already on the other side.
    present: bool,
    /// On the remote, but not signed by a trusted key (push replaces it).
    unverified: bool,
}

/// Whether the object at `key` is one readers would refuse: only with
/// trusted keys set, and then it is read and checked.
fn unverifiable(remote: &Remote, key: &str) -> Result<bool> {
    if remote.trust().is_none() {
        return Ok(false);
    }
    let object = remote
        .get_entry(key)
        .map_err(|e| remote_failed(remote, &e))?;
    Ok(object.is_some_and(|arrived| {
        crate::remote::signing::open(remote.trust(), key, &arrived).is_err()
    }))
}

/// Moves the entries not yet on the other side with `transfer` (unless
/// `--dry-run`), counting what happened to each. An unavailable remote
/// stops it; any other failure is counted and the rest go on.
fn move_entries(
    ctx: &mut Ctx<'_>,
    args: &TransferArgs,
    remote: &Remote,
    planned: Vec<Planned>,
    direction: Direction,
    mut transfer: impl FnMut(&Path, &EntryName) -> Result<Option<u64>, Transfer>,
) -> Result<Report> {
    let mut report = Report {
        remote: remote.url().redacted(),
        dry_run: args.dry_run,
        moved: Counts::default(),
        present: Counts::default(),
        failed: Counts::default(),
        invalid: Counts::default(),
        refused: Counts::default(),
        entries: Vec::new(),
    };
    let to_move = planned.iter().filter(|p| !p.present).count() as u64;
    let progress = ctx.style.progress_bar(to_move, direction.progress());
    for planned in planned {
        let (status, bytes, error) = if planned.present {
            ("present", planned.bytes, None)
        } else if planned.unverified && !remote.can_replace() {
            // Readers refuse it; nothing here can replace it.
            let why = format!(
                "the remote's object `{}` is not signed by a trusted key, and a {} remote cannot replace it",
                planned.entry.remote_key(),
                remote.url().backend().name()
            );
            ctx.warn(&why);
            ("refused", planned.bytes, Some(why))
        } else if args.dry_run {
            ("moved", planned.bytes, None)
        } else {
            let outcome = transfer(&planned.root, &planned.entry);
            progress.inc(1, ctx.err);
            match outcome {
                Ok(Some(size)) => {
                    if planned.unverified {
                        report.refused.add(size);
                    }
                    ("moved", size, None)
                }
                // Removed since it was listed.
                Ok(None) => continue,
                Err(Transfer::Remote(e @ RemoteError::Unavailable(_))) => {
                    progress.finish(ctx.err);
                    return Err(remote_failed(remote, &e));
                }
                Err(Transfer::Invalid(why)) => {
                    ctx.warn(&why);
                    ("invalid", planned.bytes, Some(why))
                }
                Err(Transfer::Refused(why)) => {
                    ctx.warn(&why);
                    ("refused", planned.bytes, Some(why))
                }
                Err(e) => ("failed", planned.bytes, Some(e.to_string())),
            }
        };
        match status {
            "present" => report.present.add(bytes),
            "moved" => report.moved.add(bytes),
            "invalid" => report.invalid.add(bytes),
            "refused" => report.refused.add(bytes),
            _ => report.failed.add(bytes),
        }
        report.entries.push(Row {
            package: planned.package,
            name: Cache::name_at(&planned.entry.cache_dir(&planned.root)),
            key: planned.entry.key().to_string(),
            bytes,
            status,
            error,
        });
    }
    progress.finish(ctx.err);
    Ok(report)
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
            if report.refused.entries > 0 {
                let left = report
                    .entries
                    .iter()
                    .filter(|r| r.status == "refused")
                    .count();
                line.push_str(&match direction {
                    Direction::Push if left > 0 => format!(
                        "; {} not signed by a trusted key there, {left} of them left (immutable)",
                        report.refused.entries
                    ),
                    Direction::Push => format!(
                        "; {} not signed by a trusted key there, replaced",
                        report.refused.entries
                    ),
                    Direction::Pull => format!(
                        "; {} not signed by a trusted key, refused",
                        report.refused.entries
                    ),
                });
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
