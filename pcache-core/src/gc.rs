//! Keeping a pcache directory (`<root>/<package>/<cache>/…`) under a size
//! cap, evicting what saves the least time per byte.
//!
//! # Ranking
//!
//! An entry is worth what it saves per byte it occupies, discounted by how
//! long it has gone unused:
//!
//! ```text
//! value = compute time / size / (1 + days since last use)
//! ```
//!
//! Its compute time is what a hit saves (recorded by the writer); its size
//! is what keeping it costs; last use (see
//! [`Store::with_use_recording`](crate::Store::with_use_recording)) says
//! whether it still pays. A 2-second step of 1 KiB is worth ten million
//! times more than a 1-millisecond step of 100 MiB, so the big cheap one
//! goes first; among entries of equal cost, the one unused for a month is
//! worth a thirty-first of the one used today. Expired and corrupt entries go
//! before anything else. Trimming removes entries in rising order of value
//! until the directory is at about 90% of the cap, so a steady stream of new
//! entries does not trim on every store.
//!
//! # When
//!
//! [`after_store`] keeps a running estimate of the directory's size in
//! `<root>/.usage`, so a store only scans the directory when the estimate
//! says the cap may be crossed; it then trims under `<root>/.trim.lock`,
//! taken without waiting: a build never waits for another's trim. Removing an
//! entry never breaks a reader that has it open, and never yields a wrong
//! value: a removed entry is a miss.
//!
//! ```
//! use std::time::Duration;
//! use pcache_core::{Key, Store, gc};
//!
//! # let root = tempfile::tempdir()?;
//! let store = Store::open(root.path().join("pkg/cache"))?;
//! store.set_timed(&Key::new("slow-small")?, &vec![1u8; 1024], Duration::from_secs(2))?;
//! store.set_timed(&Key::new("fast-big")?, &vec![2u8; 100_000], Duration::from_millis(1))?;
//! let plan = gc::plan_trim(root.path(), 50_000)?;
//! assert_eq!(plan.evict.len(), 1);
//! assert_eq!(plan.evict[0].info.key, Key::new("fast-big")?);
//! gc::apply(&plan)?;
//! assert!(store.get::<Vec<u8>>(&Key::new("slow-small")?)?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fd_lock::RwLock;

use crate::conventions;
use crate::error::{IoResultExt, Result};
use crate::store::EntryInfo;
use crate::sweep::Removed;
use crate::{Key, Store};

/// Trimming stops at this share of the cap.
const TRIM_TO: f64 = 0.9;
/// `.inputs` records unused for this long are swept by a full trim.
const INPUTS_STALE: Duration = Duration::from_secs(30 * 86_400);

/// An entry that may be evicted, and its worth.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Candidate {
    /// The cache directory holding it.
    pub cache_dir: PathBuf,
    /// The entry.
    pub info: EntryInfo,
    /// Seconds saved per byte, discounted by disuse (see the module docs);
    /// negative for expired and corrupt entries.
    pub value: f64,
}

/// What a trim would remove.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrimPlan {
    /// The directory's size before the trim, every file counted.
    pub total_bytes: u64,
    /// The cap.
    pub max_bytes: u64,
    /// Entries to remove, least valuable first.
    pub evict: Vec<Candidate>,
    /// Every entry seen.
    pub entries: u64,
}

impl TrimPlan {
    /// The bytes the planned evictions free.
    pub fn evict_bytes(&self) -> u64 {
        self.evict.iter().map(|c| c.info.size_bytes).sum()
    }
}

/// How much an entry is worth keeping (see the module docs).
pub fn value(info: &EntryInfo, now: SystemTime) -> f64 {
    if info.corrupt.is_some() || info.expired {
        return -1.0;
    }
    let last_used = info.last_used.unwrap_or(info.created).max(info.created);
    let idle_days = now
        .duration_since(last_used)
        .unwrap_or_default()
        .as_secs_f64()
        / 86_400.0;
    info.compute_time.as_secs_f64() / info.size_bytes.max(1) as f64 / (1.0 + idle_days)
}

/// Every cache directory under `root` (`<root>/<package>/<cache>`), with
/// pcache's own entries (dot-names) left out.
pub fn cache_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for package in read_dir(root)? {
        let reserved = package
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(conventions::is_reserved);
        if reserved || !package.is_dir() {
            continue;
        }
        dirs.extend(read_dir(&package)?.into_iter().filter(|p| p.is_dir()));
    }
    dirs.sort();
    Ok(dirs)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd.flatten().map(|e| e.path()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).op("read directory", dir),
    }
}

/// The size of every file under `dir`, recursively (links not followed).
fn tree_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Plans removing every expired or corrupt entry under `root` (by each
/// cache's recorded expiry), and, if `root` is over `max_bytes`, entries in
/// rising order of [`value`] until it is at about 90% of it.
///
/// # Errors
///
/// When a directory exists but cannot be read.
pub fn plan_trim(root: &Path, max_bytes: u64) -> Result<TrimPlan> {
    let now = SystemTime::now();
    let total_bytes = tree_size(root);
    let mut candidates = Vec::new();
    let mut entries = 0;
    for dir in cache_dirs(root)? {
        let store = Store::at(&dir);
        let expiry = store
            .meta()
            .ok()
            .flatten()
            .and_then(|m| m.expiry_duration());
        for info in store.with_expiry(expiry).entries()? {
            entries += 1;
            candidates.push(Candidate {
                cache_dir: dir.clone(),
                value: value(&info, now),
                info,
            });
        }
    }
    let mut plan = TrimPlan {
        total_bytes,
        max_bytes,
        evict: Vec::new(),
        entries,
    };
    // Least valuable first (expired and corrupt ones before all others);
    // ties go to the least recently used, then the largest.
    candidates.sort_by(|a, b| {
        a.value
            .total_cmp(&b.value)
            .then_with(|| last_use(&a.info).cmp(&last_use(&b.info)))
            .then_with(|| b.info.size_bytes.cmp(&a.info.size_bytes))
    });
    let target = if total_bytes > max_bytes {
        (max_bytes as f64 * TRIM_TO) as u64
    } else {
        u64::MAX
    };
    let mut remaining = total_bytes;
    for candidate in candidates {
        if candidate.value >= 0.0 && remaining <= target {
            break;
        }
        remaining = remaining.saturating_sub(candidate.info.size_bytes);
        plan.evict.push(candidate);
    }
    Ok(plan)
}

fn last_use(info: &EntryInfo) -> SystemTime {
    info.last_used.unwrap_or(info.created).max(info.created)
}

/// Removes the planned entries, and remembers them in their cache so that
/// their next miss is reported as evicted. Entries gone meanwhile are
/// skipped.
///
/// # Errors
///
/// On the first entry that exists but cannot be removed.
pub fn apply(plan: &TrimPlan) -> Result<Removed> {
    let mut removed = Removed::default();
    let mut by_cache: std::collections::BTreeMap<&Path, Vec<Key>> = Default::default();
    for candidate in &plan.evict {
        let store = Store::at(&candidate.cache_dir);
        if store.remove(&candidate.info.key)? {
            removed.entries += 1;
            removed.bytes += candidate.info.size_bytes;
            // Expired and corrupt entries would have been misses anyway.
            if candidate.value >= 0.0 {
                by_cache
                    .entry(&candidate.cache_dir)
                    .or_default()
                    .push(candidate.info.key);
            }
        }
    }
    for (dir, keys) in by_cache {
        // Only the report of a later miss depends on it.
        let _ = Store::at(dir).note_evicted(&keys);
    }
    Ok(removed)
}

/// Removes `.inputs` digest records unused for a month (a missing one only
/// costs hashing the input again). Returns how many went.
pub fn sweep_inputs(root: &Path) -> u64 {
    let now = SystemTime::now();
    let mut swept = 0;
    for record in read_dir(&conventions::inputs_dir(root)).unwrap_or_default() {
        let stale = fs::metadata(&record)
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > INPUTS_STALE));
        if stale && fs::remove_file(&record).is_ok() {
            swept += 1;
        }
    }
    swept
}

/// What [`after_store`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trimmed {
    /// The directory's size before.
    pub before_bytes: u64,
    /// What was removed.
    pub removed: Removed,
}

/// Notes that `stored_bytes` were just stored under `root`, and trims the
/// directory if that may have taken it over `max_bytes`. `Ok(None)` when it
/// is under the cap, or another process is trimming.
///
/// # Errors
///
/// When the usage record or the directory cannot be read or written.
pub fn after_store(root: &Path, stored_bytes: u64, max_bytes: u64) -> Result<Option<Trimmed>> {
    let usage = root.join(".usage");
    let estimate = match add_usage(&usage, stored_bytes)? {
        Some(estimate) => estimate,
        // No estimate yet: measure once.
        None => {
            let measured = tree_size(root);
            write_usage(&usage, measured)?;
            measured
        }
    };
    if estimate <= max_bytes {
        return Ok(None);
    }
    let lock_path = root.join(".trim.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .op("open lock file", &lock_path)?;
    let mut lock = RwLock::new(file);
    let Ok(_guard) = lock.try_write() else {
        return Ok(None);
    };
    let plan = plan_trim(root, max_bytes)?;
    let mut removed = apply(&plan)?;
    // Writes killed anywhere under the root leave temporary files that only
    // the next write of their cache would remove: the trim takes them too.
    for dir in cache_dirs(root)? {
        removed.leftovers += Store::at(&dir).remove_abandoned_temps();
    }
    write_usage(&usage, plan.total_bytes.saturating_sub(removed.bytes))?;
    Ok(Some(Trimmed {
        before_bytes: plan.total_bytes,
        removed,
    }))
}

/// Adds to the usage estimate under an exclusive lock; `None` when there is
/// no estimate yet.
fn add_usage(path: &Path, bytes: u64) -> Result<Option<u64>> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).op("open usage record", path),
    };
    let mut lock = RwLock::new(file);
    let mut file = lock.write().op("lock usage record", path)?;
    let mut current = [0u8; 8];
    if file.read_exact(&mut current).is_err() {
        return Ok(None);
    }
    let total = u64::from_le_bytes(current).saturating_add(bytes);
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&total.to_le_bytes()))
        .op("write usage record", path)?;
    Ok(Some(total))
}

fn write_usage(path: &Path, bytes: u64) -> Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .op("open usage record", path)?;
    file.write_all(&bytes.to_le_bytes())
        .op("write usage record", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(size: u64, compute: Duration, idle: Duration) -> EntryInfo {
        let now = SystemTime::now();
        EntryInfo {
            key: Key::new(&(size, compute.as_nanos() as u64)).unwrap(),
            path: PathBuf::new(),
            size_bytes: size,
            created: now - idle - Duration::from_secs(1),
            compute_time: compute,
            expired: false,
            corrupt: None,
            last_used: Some(now - idle),
        }
    }

    #[test]
    fn a_slow_small_step_outranks_a_fast_big_one() {
        let now = SystemTime::now();
        let slow_small = value(&info(1024, Duration::from_secs(2), Duration::ZERO), now);
        let fast_big = value(
            &info(100 << 20, Duration::from_millis(1), Duration::ZERO),
            now,
        );
        assert!(slow_small > fast_big * 1e6, "{slow_small} vs {fast_big}");
        // Disuse discounts.
        let month_old = value(
            &info(
                1024,
                Duration::from_secs(2),
                Duration::from_secs(30 * 86_400),
            ),
            now,
        );
        assert!(month_old < slow_small / 30.0);
        let mut expired = info(1, Duration::from_secs(9), Duration::ZERO);
        expired.expired = true;
        assert!(value(&expired, now) < fast_big);
    }
}
