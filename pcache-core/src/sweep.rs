//! Listing a cache and removing from it: scan, plan, apply. `flush`,
//! `clear` and `delete` are a plan and its application, so a `--dry-run`
//! reports exactly what the real run would do.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::entry::{HEADER_LEN, Header};
use crate::error::{Corruption, IoResultExt, Result};
use crate::get::{self, Opened};
use crate::layout::{FileKind, Layout};
use crate::lock;
use crate::store::EntryInfo;
use crate::{Key, Store};

/// Temporary files older than this belong to a dead writer, whatever their
/// pid says (it may have been reused). Live writers touch theirs far more
/// often.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// A temporary file whose writer's pid is not running is abandoned once it
/// has not changed for this long. The wait covers a writer whose pid this
/// process cannot see (another pid namespace, another host on a shared
/// directory) while it is still writing; were such a writer's file removed
/// anyway, its rename would fail: a lost write, never a wrong value.
const ABANDONED_TEMP_IDLE: Duration = Duration::from_secs(5);

/// How often one process looks for abandoned temporary files in one cache
/// directory, on writes.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What a cache directory holds besides entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Scan {
    /// Every entry, sorted by key.
    pub entries: Vec<EntryInfo>,
    /// Lock files (present while a key is being computed, or left by a
    /// killed process).
    pub locks: Vec<PathBuf>,
    /// Temporary files (writes in progress, or left by a killed process).
    pub temps: Vec<PathBuf>,
    /// `.seen` sidecars whose entry is gone.
    pub orphans: Vec<PathBuf>,
    /// Files pcache did not write.
    pub foreign: Vec<PathBuf>,
}

/// What a [`Store::flush`], [`Store::clear`] or [`Store::delete`] would
/// remove (a plan) or did remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The entries to remove.
    pub entries: Vec<EntryInfo>,
    /// Stale lock and temporary files to remove.
    pub leftovers: Vec<PathBuf>,
    /// For a flush: an entry is only removed if it is still older than this
    /// when the plan is applied (a build may have refreshed it meanwhile).
    max_age: Option<Duration>,
}

impl Plan {
    /// The total size of the planned entries.
    pub fn size_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size_bytes).sum()
    }

    /// What applying the plan would remove, at most (a `--dry-run` report):
    /// entries refreshed or removed meanwhile are skipped when it is applied.
    pub fn would_remove(&self) -> Removed {
        Removed {
            entries: self.entries.len() as u64,
            bytes: self.size_bytes(),
            leftovers: self.leftovers.len() as u64,
        }
    }
}

/// What was removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removed {
    /// Entries removed.
    pub entries: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Stale lock and temporary files removed.
    pub leftovers: u64,
}

impl std::ops::AddAssign for Removed {
    fn add_assign(&mut self, other: Removed) {
        self.entries += other.entries;
        self.bytes += other.bytes;
        self.leftovers += other.leftovers;
    }
}

impl Store {
    /// Lists the directory: entries (from their headers, not their payloads,
    /// with their last use when recorded), lock files, temporary files,
    /// sidecars left without their entry, and foreign files. Entries that
    /// vanish while being listed are skipped. A missing directory lists as
    /// empty.
    ///
    /// # Errors
    ///
    /// Fails if the directory exists but cannot be read.
    pub fn scan(&self) -> Result<Scan> {
        let dir = self.layout().dir();
        let mut scan = Scan::default();
        let read_dir = match fs::read_dir(dir) {
            Ok(read_dir) => read_dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(e).op("read cache directory", dir),
        };
        let mut seen = std::collections::BTreeMap::new();
        for dirent in read_dir {
            let dirent = dirent.op("read cache directory", dir)?;
            let path = dirent.path();
            let Some(name) = dirent.file_name().to_str().map(str::to_owned) else {
                scan.foreign.push(path);
                continue;
            };
            match Layout::classify(&name) {
                FileKind::Entry(key) => {
                    if let Some(info) = self.inspect(key, path)? {
                        scan.entries.push(info);
                    }
                }
                FileKind::Lock(_) => scan.locks.push(path),
                FileKind::Seen(key) => {
                    seen.insert(key, path);
                }
                FileKind::Temp => scan.temps.push(path),
                FileKind::Own => {}
                FileKind::Foreign => scan.foreign.push(path),
            }
        }
        scan.entries.sort_by_key(|e| e.key);
        for entry in &mut scan.entries {
            if let Some(path) = seen.remove(&entry.key) {
                entry.last_used = crate::seen::last_used(&path);
            }
        }
        scan.orphans = seen.into_values().collect();
        Ok(scan)
    }

    /// Lists the entries; see [`scan`](Store::scan).
    ///
    /// # Errors
    ///
    /// As [`scan`](Store::scan).
    pub fn entries(&self) -> Result<Vec<EntryInfo>> {
        Ok(self.scan()?.entries)
    }

    /// Reads one entry's header; `None` if it vanished.
    fn inspect(&self, key: Key, path: PathBuf) -> Result<Option<EntryInfo>> {
        let corrupt_info = |path: PathBuf, reason: Corruption| {
            let meta = fs::symlink_metadata(&path).ok();
            EntryInfo {
                key,
                size_bytes: meta.as_ref().map_or(0, |m| m.len()),
                created: meta
                    .and_then(|m| m.modified().ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH),
                path,
                compute_time: Duration::ZERO,
                expired: true,
                corrupt: Some(reason),
                last_used: None,
            }
        };
        let (mut file, len) = match get::open(&path)? {
            Opened::Missing => return Ok(None),
            Opened::NotAFile => return Ok(Some(corrupt_info(path, Corruption::NotAFile))),
            Opened::File { file, len, .. } => (file, len),
        };
        let mut bytes = [0u8; HEADER_LEN];
        let n = get::read_up_to(&mut file, &mut bytes).op("read entry", &path)?;
        let header = match Header::decode(&bytes[..n]) {
            Ok(header) => header,
            Err(reason) => return Ok(Some(corrupt_info(path, reason))),
        };
        // A header with the wrong file length still says when it was written.
        let corrupt = header.check_len(len).err();
        Ok(Some(self.info(key, path, len, &header, corrupt)))
    }

    /// Plans a flush: the entries older than `max_age` (default: the store's
    /// expiry; with neither, none), every corrupt entry, unlocked lock files
    /// and stale temporary files.
    ///
    /// # Errors
    ///
    /// As [`scan`](Store::scan).
    pub fn plan_flush(&self, max_age: Option<Duration>) -> Result<Plan> {
        let max_age = max_age.or(self.expiry());
        let scan = self.scan()?;
        let leftovers = self.leftovers(&scan);
        let entries = scan
            .entries
            .into_iter()
            .filter(|e| {
                e.corrupt.is_some() || max_age.is_some_and(|age| self.is_older_than(e.created, age))
            })
            .map(|mut e| {
                e.expired = true;
                e
            })
            .collect();
        Ok(Plan {
            entries,
            leftovers,
            max_age: Some(max_age.unwrap_or(Duration::MAX)),
        })
    }

    /// Plans a clear: every entry, unlocked lock files and stale temporary
    /// files. Writes in progress are left to finish.
    ///
    /// # Errors
    ///
    /// As [`scan`](Store::scan).
    pub fn plan_clear(&self) -> Result<Plan> {
        let scan = self.scan()?;
        let leftovers = self.leftovers(&scan);
        Ok(Plan {
            entries: scan.entries,
            leftovers,
            max_age: None,
        })
    }

    fn leftovers(&self, scan: &Scan) -> Vec<PathBuf> {
        let stale_temps = scan.temps.iter().filter(|path| self.is_abandoned(path));
        scan.locks
            .iter()
            .chain(stale_temps)
            .chain(&scan.orphans)
            .cloned()
            .collect()
    }

    /// Carries out a plan from [`plan_flush`](Store::plan_flush) or
    /// [`plan_clear`](Store::plan_clear). Files that vanished meanwhile are
    /// skipped; for a flush, an entry rewritten since the plan was made is
    /// kept; held lock files are kept.
    ///
    /// # Errors
    ///
    /// Fails on the first file that exists but cannot be removed.
    pub fn apply(&self, plan: &Plan) -> Result<Removed> {
        self.apply_with(plan, || {})
    }

    /// Like [`apply`](Store::apply), calling `progress` after each planned
    /// entry (removed or skipped), for progress bars.
    ///
    /// # Errors
    ///
    /// As [`apply`](Store::apply).
    pub fn apply_with(&self, plan: &Plan, mut progress: impl FnMut()) -> Result<Removed> {
        let mut removed = Removed::default();
        for entry in &plan.entries {
            progress();
            if let Some(max_age) = plan.max_age {
                if entry.corrupt.is_none() && !self.still_older_than(&entry.path, max_age) {
                    continue;
                }
            }
            match remove_path(&entry.path) {
                Ok(true) => {
                    removed.entries += 1;
                    removed.bytes += entry.size_bytes;
                    lock::remove_if_unlocked(&self.layout().lock(&entry.key));
                    let _ = fs::remove_file(self.layout().seen(&entry.key));
                }
                Ok(false) => {}
                Err(e) => return Err(e).op("remove entry", &entry.path),
            }
        }
        for path in &plan.leftovers {
            let done =
                match Layout::classify(path.file_name().and_then(|n| n.to_str()).unwrap_or("")) {
                    FileKind::Lock(_) => lock::remove_if_unlocked(path),
                    _ => remove_path(path).op("remove temporary file", path)?,
                };
            removed.leftovers += u64::from(done);
        }
        Ok(removed)
    }

    /// Whether the temporary file at `path` was left by a writer that is
    /// gone: its process is not running (and the file has been idle a few
    /// seconds), or the file is older than any write takes.
    pub(crate) fn is_abandoned(&self, path: &Path) -> bool {
        let Ok(mtime) = fs::symlink_metadata(path).and_then(|m| m.modified()) else {
            return false;
        };
        if self.is_older_than(mtime, STALE_TEMP_AGE) {
            return true;
        }
        let writer = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(Layout::temp_writer);
        writer.is_some_and(|pid| !process_running(pid))
            && self.is_older_than(mtime, ABANDONED_TEMP_IDLE)
    }

    /// After a write of an entry: removes the temporary files left by
    /// writers that are gone, at most once a minute per cache directory and
    /// process (listing a directory of ten thousand entries on every write
    /// would make writing many entries quadratic). A build killed mid-write
    /// therefore leaves its files until the first write of a later build.
    pub(crate) fn after_write(&self) {
        static SWEPT: Mutex<BTreeMap<PathBuf, Instant>> = Mutex::new(BTreeMap::new());
        let due = {
            let mut swept = SWEPT.lock().unwrap_or_else(PoisonError::into_inner);
            let dir = self.layout().dir();
            match swept.get(dir) {
                Some(at) if at.elapsed() < SWEEP_EVERY => false,
                _ => {
                    swept.insert(dir.to_owned(), Instant::now());
                    true
                }
            }
        };
        if due {
            self.remove_abandoned_temps();
        }
    }

    /// Removes the temporary files of this cache left by writers that are
    /// gone (see [`Scan::temps`]); returns how many went. Best effort.
    pub(crate) fn remove_abandoned_temps(&self) -> u64 {
        let Ok(read_dir) = fs::read_dir(self.layout().dir()) else {
            return 0;
        };
        let mut removed = 0;
        for dirent in read_dir.flatten() {
            let name = dirent.file_name();
            let is_temp = name
                .to_str()
                .is_some_and(|n| Layout::classify(n) == FileKind::Temp);
            let path = dirent.path();
            if is_temp && self.is_abandoned(&path) && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    fn still_older_than(&self, path: &Path, max_age: Duration) -> bool {
        let Ok(Opened::File { mut file, len, .. }) = get::open(path) else {
            return true;
        };
        match get::read_header(&mut file, len, None, path) {
            Ok(header) => self.is_older_than(header.created, max_age),
            Err(_) => true,
        }
    }

    /// Removes expired entries (by the store's expiry), corrupt entries and
    /// stale lock and temporary files.
    ///
    /// # Errors
    ///
    /// As [`scan`](Store::scan) and [`apply`](Store::apply).
    pub fn flush(&self) -> Result<Removed> {
        self.apply(&self.plan_flush(None)?)
    }

    /// Removes every entry and stale lock and temporary files; keeps the
    /// directory and its `cache.toml`.
    ///
    /// # Errors
    ///
    /// As [`scan`](Store::scan) and [`apply`](Store::apply).
    pub fn clear(&self) -> Result<Removed> {
        self.apply(&self.plan_clear()?)
    }

    /// Removes the cache directory and everything in it.
    ///
    /// # Errors
    ///
    /// Fails if the directory cannot be listed or removed.
    pub fn delete(self) -> Result<Removed> {
        let scan = self.scan()?;
        let dir = self.layout().dir();
        // A build writing into the cache meanwhile can add a file between
        // the removal of the contents and of the directory: try again.
        let mut attempts = 0;
        loop {
            match fs::remove_dir_all(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removed::default()),
                Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty && attempts < 10 => {
                    attempts += 1
                }
                Err(e) => return Err(e).op("remove cache directory", dir),
            }
        }
        Ok(Removed {
            entries: scan.entries.len() as u64,
            bytes: scan.entries.iter().map(|e| e.size_bytes).sum(),
            leftovers: (scan.locks.len() + scan.temps.len()) as u64,
        })
    }
}

/// Whether process `pid` is running here. Without a way to tell, it is
/// taken to be running (only age then makes its files abandoned).
pub(crate) fn process_running(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: signal 0 sends nothing; it only checks that the process
        // exists (EPERM: it does, as another user's).
        let sent = unsafe { libc::kill(pid, 0) };
        let exists = sent == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        exists && !is_zombie(pid)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Whether `pid` has exited and only waits to be reaped (a killed writer
/// whose parent died too, until init reaps it).
#[cfg(unix)]
fn is_zombie(pid: libc::pid_t) -> bool {
    #[cfg(target_os = "linux")]
    {
        // `<pid> (<comm>) <state> …`; the command may hold spaces and `)`.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| matches!(state, 'Z' | 'X'))
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        false
    }
}

/// Removes a file, or a directory squatting on an entry's name. Returns
/// whether anything was there.
fn remove_path(path: &Path) -> io::Result<bool> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_exited_but_is_not_reaped_is_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie, once it has exited.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_running(pid) {
            assert!(std::time::Instant::now() < deadline, "{pid} still runs");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            fs::metadata(format!("/proc/{pid}")).is_ok(),
            "the zombie is still there"
        );
        child.wait().unwrap();
        assert!(process_running(std::process::id()));
    }
}
