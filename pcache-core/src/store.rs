//! [`Store`]: one cache directory, and the facts about its entries. The
//! verbs live one per module: `get` (reading), `put` (writing), `compute`
//! (get-or-compute with single flight), `sweep` (listing and removing),
//! `meta` (`cache.toml`) and `stream`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{Corruption, IoResultExt, Result};
use crate::layout::Layout;
use crate::trace::Trace;
use crate::{Key, lock};

/// How long [`Store::get_or_compute`] waits for another process computing
/// the same key before computing it too, unless
/// [`with_lock_timeout`](Store::with_lock_timeout) says otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A cache directory holding one file per entry.
///
/// Cheap to clone. Reading and writing methods take `&self` and may be
/// called from many threads and processes at once; [`delete`](Store::delete)
/// consumes the store. See the [crate docs](crate) for the guarantees.
#[derive(Clone)]
pub struct Store {
    layout: Layout,
    expiry: Option<Duration>,
    lock_timeout: Duration,
    record_use: bool,
    clock: Option<Clock>,
    trace: Option<Arc<Trace>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.layout.dir())
            .field("expiry", &self.expiry)
            .field("lock_timeout", &self.lock_timeout)
            .finish_non_exhaustive()
    }
}

/// Facts about one stored entry, read from its header (never its payload).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The entry's key.
    pub key: Key,
    /// The entry file.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub size_bytes: u64,
    /// When the entry was written, from its header (the file's mtime for a
    /// corrupt entry).
    pub created: SystemTime,
    /// How long the value took to compute, as recorded by the writer.
    pub compute_time: Duration,
    /// Whether the entry is past the expiry it was listed against (corrupt
    /// entries count as expired, so flushing removes them).
    pub expired: bool,
    /// Why the entry failed its checks, if it did.
    pub corrupt: Option<Corruption>,
    /// When the entry was last read, if the store records use (see
    /// [`Store::with_use_recording`]); listed by [`Store::scan`].
    pub last_used: Option<SystemTime>,
}

/// What looking up an entry found.
#[derive(Debug)]
pub enum Lookup<T> {
    /// The entry, checked.
    Found(T),
    /// No entry.
    Absent,
    /// An entry past the store's expiry: it has been removed.
    Expired,
}

impl<T> Lookup<T> {
    /// The entry, if one was found.
    pub fn found(self) -> Option<T> {
        match self {
            Lookup::Found(t) => Some(t),
            Lookup::Absent | Lookup::Expired => None,
        }
    }

    /// Applies `f` to a found entry.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        match self {
            Lookup::Found(t) => Lookup::Found(f(t)),
            Lookup::Absent => Lookup::Absent,
            Lookup::Expired => Lookup::Expired,
        }
    }
}

impl Store {
    /// Opens the store in `dir`, creating the directory if it is missing.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = pcache_core::Store::open(dir.path().join("a/b"))?;
    /// assert!(store.dir().is_dir());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Fails if the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store> {
        let dir = dir.into();
        fs::create_dir_all(&dir).op("create cache directory", &dir)?;
        Ok(Store::at(dir))
    }

    /// A store in `dir` without touching the file system: for inspecting
    /// caches that may not exist (listing a missing directory gives nothing).
    ///
    /// ```
    /// let store = pcache_core::Store::at("/nonexistent/cache");
    /// assert!(store.entries()?.is_empty());
    /// # Ok::<(), pcache_core::Error>(())
    /// ```
    pub fn at(dir: impl Into<PathBuf>) -> Store {
        Store {
            layout: Layout::new(dir.into()),
            expiry: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            record_use: false,
            clock: None,
            trace: None,
        }
    }

    /// Sets the expiry: entries older than this are misses and are removed.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::time::Duration;
    /// let store = pcache_core::Store::open(dir.path())?.with_expiry(Some(Duration::from_secs(60)));
    /// assert_eq!(store.expiry(), Some(Duration::from_secs(60)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_expiry(mut self, expiry: Option<Duration>) -> Store {
        self.expiry = expiry;
        self
    }

    /// Sets how long [`get_or_compute`](Store::get_or_compute) waits for
    /// another thread or process computing the same key before computing it
    /// too (default [`DEFAULT_LOCK_TIMEOUT`]). A timeout is reported in
    /// [`Fetched::errors`](crate::Fetched::errors).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Store {
        self.lock_timeout = timeout;
        self
    }

    /// Records each entry's last use, on every read, in a small sidecar
    /// file beside it (`<key>.seen`, whose mtime it sets) rather than in the
    /// entry: [`EntryInfo::last_used`] reports it, and eviction ranks by it.
    /// Off by default: it costs a file open per read.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = pcache_core::Store::open(dir.path())?.with_use_recording(true);
    /// let key = pcache_core::Key::new("k")?;
    /// store.set(&key, &1u8)?;
    /// assert_eq!(store.entries()?[0].last_used, None);
    /// store.get::<u8>(&key)?;
    /// assert!(store.entries()?[0].last_used.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_use_recording(mut self, record: bool) -> Store {
        self.record_use = record;
        self
    }

    /// Marks the phases of this store's reads and writes in `trace` (see
    /// the [`trace`](crate::trace) module); a trace that is off is not
    /// kept, so marking costs nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use pcache_core::trace::Trace;
    /// # let dir = tempfile::tempdir()?;
    /// let trace = Arc::new(Trace::new(true));
    /// let store = pcache_core::Store::open(dir.path())?.with_trace(Arc::clone(&trace));
    /// let key = pcache_core::Key::new("k")?;
    /// store.get_or_compute(&key, || 1u8);
    /// store.get_or_compute(&key, || 2u8);
    /// let line = trace.summary("k").unwrap();
    /// assert!(line.contains("compute ") && line.contains("decode "), "{line}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_trace(mut self, trace: Arc<Trace>) -> Store {
        self.trace = trace.is_on().then_some(trace);
        self
    }

    /// Judges expiry as of the instant `now` returns instead of the system
    /// clock. For tests and tools that need entries of a given age.
    #[doc(hidden)]
    pub fn with_clock(mut self, now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Store {
        self.clock = Some(Arc::new(now));
        self
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        self.layout.dir()
    }

    /// The expiry, if any.
    pub fn expiry(&self) -> Option<Duration> {
        self.expiry
    }

    /// The path of `key`'s entry file (which may not exist).
    pub fn entry_path(&self, key: &Key) -> PathBuf {
        self.layout.entry(key)
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    pub(crate) fn records_use(&self) -> bool {
        self.record_use
    }

    /// Ends the traced phase `name`, if tracing.
    pub(crate) fn mark(&self, name: &'static str) {
        if let Some(trace) = &self.trace {
            trace.phase(name);
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock
            .as_ref()
            .map_or_else(SystemTime::now, |now| now())
    }

    pub(crate) fn is_older_than(&self, created: SystemTime, max_age: Duration) -> bool {
        // An entry from the future (clock skew, restored caches) is fresh.
        self.now()
            .duration_since(created)
            .is_ok_and(|age| age > max_age)
    }

    pub(crate) fn is_expired(&self, created: SystemTime) -> bool {
        self.expiry
            .is_some_and(|max_age| self.is_older_than(created, max_age))
    }

    /// Removes `key`'s entry (and its lock file, unless someone holds it).
    /// Returns whether there was an entry.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = pcache_core::Store::open(dir.path())?;
    /// let key = pcache_core::Key::new("k")?;
    /// store.set(&key, &1u8)?;
    /// assert!(store.remove(&key)?);
    /// assert!(!store.remove(&key)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Fails if the entry exists but cannot be removed.
    pub fn remove(&self, key: &Key) -> Result<bool> {
        let path = self.layout.entry(key);
        let removed = match fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).op("remove entry", &path),
        };
        lock::remove_if_unlocked(&self.layout.lock(key));
        let _ = fs::remove_file(self.layout.seen(key));
        Ok(removed)
    }
}
