//! Per-key inter-process locks for single flight, in the manner of cargo's
//! `flock.rs`: try the lock first, wait only when another process holds it,
//! and treat a file system without lock support as "no locking" rather than
//! as an error.
//!
//! A key's lock file exists only while the key is being computed: the holder
//! removes it before unlocking. A process that was blocked on the removed
//! file notices (the path no longer names the file it locked) and starts
//! over on a fresh one. Lock files left by killed processes are unlocked (the
//! kernel releases `flock`s with the process) and are removed by the next
//! computation of the same key or by [`Store::flush`](crate::Store::flush).
//!
//! Waiting is bounded: after the store's lock timeout the caller computes
//! anyway, so a holder that hangs (stopped, or waiting itself for a key the
//! waiter holds) delays a build but never stalls it. Like every
//! `flock`-based scheme this relies on the file system honouring advisory
//! locks; some network file systems do not, and then two processes may both
//! compute (each write is still atomic).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fd_lock::RwLock;

use crate::error::{Error, IoResultExt, Result};

thread_local! {
    /// Lock files this thread holds. `flock` locks belong to open file
    /// descriptions, so a thread that locked a file and opens it again (a
    /// computation that asks for its own key) would wait for itself forever.
    static HELD: RefCell<HashSet<PathBuf>> = RefCell::new(HashSet::new());
}

/// The longest pause between two attempts while waiting.
const MAX_PAUSE: Duration = Duration::from_millis(32);

/// How taking a key's lock went.
#[derive(Debug)]
pub(crate) enum Acquired {
    /// We hold it until this is dropped.
    Held(KeyLock),
    /// This thread already holds it (a computation asking for its own key):
    /// the outer hold covers us.
    Reentrant,
    /// The file system does not support locks: no single flight, silently.
    Unsupported,
}

impl Acquired {
    /// Whether another holder had to finish first (so its value may now be
    /// stored).
    pub(crate) fn waited(&self) -> bool {
        matches!(self, Acquired::Held(lock) if lock.waited)
    }
}

/// A held key lock. Dropping it removes the lock file, then releases it.
#[derive(Debug)]
pub(crate) struct KeyLock {
    /// Never read: held for as long as it is open, since closing the file
    /// description releases the `flock`.
    _locked: File,
    path: PathBuf,
    waited: bool,
}

/// Takes the exclusive lock at `path`, waiting at most `max_wait` for
/// another holder.
///
/// # Errors
///
/// When the lock file cannot be opened, locking fails for another reason
/// than lack of support, or the wait times out.
pub(crate) fn lock(path: &Path, max_wait: Duration) -> Result<Acquired> {
    if HELD.with(|held| held.borrow().contains(path)) {
        return Ok(Acquired::Reentrant);
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
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
        loop {
            match lock.try_write() {
                // The lock lives as long as the file description: keep it
                // past the guard, and release it by closing the file.
                Ok(guard) => std::mem::forget(guard),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    waited = true;
                    if started.elapsed() >= max_wait {
                        return Err(timed_out(path, max_wait));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_PAUSE);
                    continue;
                }
                Err(e) if is_unsupported(&e) => return Ok(Acquired::Unsupported),
                Err(e) => return Err(e).op("lock", path),
            }
            break;
        }
        let file = lock.into_inner();
        // The previous holder removed the file after we opened it: the lock
        // we hold is on a file no one else will look at. Start over.
        if !still_at(&file, path) {
            continue;
        }
        HELD.with(|held| held.borrow_mut().insert(path.to_owned()));
        return Ok(Acquired::Held(KeyLock {
            _locked: file,
            path: path.to_owned(),
            waited,
        }));
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        HELD.with(|held| held.borrow_mut().remove(&self.path));
        // Remove while still holding it, so no one can lock the old file and
        // believe it is the current one. `flush` removes only unlocked lock
        // files, so the path still names ours.
        // `self._locked` closes after this, releasing the lock.
        let _ = fs::remove_file(&self.path);
    }
}

fn timed_out(path: &Path, max_wait: Duration) -> Error {
    Error::Io {
        op: "wait for the lock",
        path: path.to_owned(),
        source: io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "another process has been computing this entry for over {} s; computing it here too",
                max_wait.as_secs()
            ),
        ),
    }
}

/// Whether a lock error means the file system has no `flock` support.
fn is_unsupported(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOLCK | libc::ENOSYS | libc::EOPNOTSUPP)
        ) || e.kind() == io::ErrorKind::Unsupported
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::Unsupported
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

/// A key's lock, held until dropped: for computations that
/// [`get_or_compute`](crate::Store::get_or_compute) does not fit (several
/// entries written under one key's lock, for one). See
/// [`Store::lock`](crate::Store::lock).
#[derive(Debug)]
pub struct KeyGuard {
    acquired: Acquired,
}

impl KeyGuard {
    /// Whether another process held the lock first (and may have stored what
    /// the holder of this guard was about to compute).
    pub fn waited(&self) -> bool {
        self.acquired.waited()
    }
}

impl crate::Store {
    /// Takes the cross-process lock of `key`, as a computation of it does,
    /// waiting for another holder at most the [lock
    /// timeout](crate::Store::with_lock_timeout). Re-entrant within a thread;
    /// on a file system without `flock` support the guard holds nothing.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = pcache_core::Store::open(dir.path())?;
    /// let key = pcache_core::Key::new("two entries, one computation")?;
    /// let guard = store.lock(&key)?;
    /// if store.get::<u32>(&key)?.is_none() {
    ///     store.set(&key, &1u32)?;
    /// }
    /// drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the lock file cannot be created or locked, or the wait times
    /// out.
    pub fn lock(&self, key: &crate::Key) -> Result<KeyGuard> {
        lock(&self.layout().lock(key), self.lock_timeout()).map(|acquired| KeyGuard { acquired })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_thread_is_reentrant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let outer = lock(&path, Duration::from_secs(1)).unwrap();
        assert!(matches!(outer, Acquired::Held(_)));
        assert!(matches!(
            lock(&path, Duration::from_secs(1)).unwrap(),
            Acquired::Reentrant
        ));
        drop(outer);
        assert!(!path.exists(), "the holder removes its lock file");
    }

    #[test]
    fn waiting_for_a_holder_that_never_finishes_gives_up_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock(&path, Duration::from_secs(1)).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let result = lock(&path, Duration::from_millis(200));
                (result.map(|a| a.waited()), started.elapsed())
            })
        };
        let (result, took) = waiter.join().unwrap();
        let e = result.unwrap_err();
        assert_eq!(e.io_error().unwrap().kind(), io::ErrorKind::TimedOut);
        assert!(took >= Duration::from_millis(200), "{took:?}");
        drop(held);
    }

    #[test]
    fn a_waiter_gets_the_lock_once_the_holder_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock(&path, Duration::from_secs(1)).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || lock(&path, Duration::from_secs(30)).map(|a| a.waited()))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert!(waiter.join().unwrap().unwrap(), "waited for the holder");
    }

    #[cfg(unix)]
    #[test]
    fn lock_errors_from_file_systems_without_flock_mean_unsupported() {
        for errno in [libc::ENOLCK, libc::ENOSYS, libc::EOPNOTSUPP] {
            assert!(is_unsupported(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!is_unsupported(&io::Error::from_raw_os_error(libc::EACCES)));
    }
}
