//! Per-key inter-process locks for single flight.
//!
//! A key's lock file exists only while the key is being computed: the holder
//! removes it before unlocking. A process that was blocked on the removed
//! file notices (the path no longer names the file it locked) and starts
//! over on a fresh one. Lock files left by killed processes are unlocked (the
//! kernel releases `flock`s with the process) and are removed by the next
//! computation of the same key or by [`Store::flush`](crate::Store::flush).
//!
//! Like every `flock`-based scheme, this relies on the file system honouring
//! advisory locks; some network file systems do not.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use fd_lock::RwLock;

use crate::error::{IoResultExt, Result};

thread_local! {
    /// Lock files this thread holds. `flock` locks belong to open file
    /// descriptions, so a thread that locked a file and opens it again (a
    /// computation that asks for its own key) would wait for itself forever.
    static HELD: RefCell<HashSet<PathBuf>> = RefCell::new(HashSet::new());
}

/// Runs `f` while holding the exclusive lock at `path`, then removes the
/// lock file. `f` receives whether we had to wait for another holder.
///
/// Re-entrant on one thread: if this thread already holds the lock (a
/// computation asking for its own key), `f` runs under the outer hold.
pub(crate) fn with_lock<R>(path: &Path, f: impl FnOnce(bool) -> R) -> Result<R> {
    if HELD.with(|held| held.borrow().contains(path)) {
        return Ok(f(false));
    }
    let mut f = Some(f);
    let mut waited = false;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .op("open lock file", path)?;
        let mut lock = RwLock::new(file);
        let attempt = match lock.try_write() {
            Ok(guard) => Some(run_locked(guard, path, &mut f, waited)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => return Err(e).op("lock", path),
        };
        let outcome = match attempt {
            Some(outcome) => outcome,
            None => {
                waited = true;
                let guard = lock.write().op("lock", path)?;
                run_locked(guard, path, &mut f, waited)
            }
        };
        if let Some(out) = outcome {
            return Ok(out);
        }
    }
}

/// Runs `f` under `guard` unless the lock file was replaced (the previous
/// holder removed it after we opened it): then `None`, and the caller starts
/// over on the current file.
fn run_locked<R>(
    guard: fd_lock::RwLockWriteGuard<'_, File>,
    path: &Path,
    f: &mut Option<impl FnOnce(bool) -> R>,
    waited: bool,
) -> Option<R> {
    if !still_at(&guard, path) {
        return None;
    }
    HELD.with(|held| held.borrow_mut().insert(path.to_owned()));
    // Released even if `f` panics, so a caught panic leaves no stale entry.
    let _held = Held(path);
    // `f` is taken only here, and we return right after.
    let out = f.take().map(|f| f(waited))?;
    // Remove while still holding it, so no one can lock the old file and
    // believe it is the current one.
    let _ = fs::remove_file(path);
    drop(guard);
    Some(out)
}

/// Forgets this thread's hold on a lock file when dropped.
struct Held<'a>(&'a Path);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        HELD.with(|held| held.borrow_mut().remove(self.0));
    }
}

/// Removes the lock file at `path` if no one holds it. Returns whether it
/// was removed.
pub(crate) fn remove_if_unlocked(path: &Path) -> bool {
    let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
        return false;
    };
    let mut lock = RwLock::new(file);
    let Ok(guard) = lock.try_write() else {
        return false;
    };
    let removed = still_at(&guard, path) && fs::remove_file(path).is_ok();
    drop(guard);
    removed
}

#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_at(_file: &File, path: &Path) -> bool {
    // Windows refuses to remove a file that is open, so a lock file cannot
    // be swapped underneath a holder.
    path.exists()
}
