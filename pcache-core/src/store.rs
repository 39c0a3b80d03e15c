//! [`Store`]: get, set, remove and get-or-compute on one cache directory.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::atomic::TempFile;
use crate::entry::{self, HEADER_LEN, Header, Kind};
use crate::error::{Corruption, Error, IoResultExt, Result};
use crate::layout::{FileKind, Layout};
use crate::meta::CacheMeta;
use crate::read::{self, Check, Opened};
use crate::{Key, bytes, lock};

/// Byte values up to this size are read in one go and copied out of the
/// file buffer; larger ones are read straight into their final allocation.
const SMALL_BYTES: u64 = 64 * 1024;

/// Temporary files older than this belong to a dead writer and are swept by
/// [`Store::flush`] and [`Store::clear`]. Live writers touch theirs far more
/// often.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A cache directory holding one file per entry.
///
/// Cheap to clone; every method takes `&self` and may be called from many
/// threads and processes at once. See the [crate docs](crate) for the
/// guarantees.
#[derive(Clone)]
pub struct Store {
    layout: Layout,
    expiry: Option<Duration>,
    clock: Option<Clock>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.layout.dir())
            .field("expiry", &self.expiry)
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
}

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

/// The result of [`Store::get_or_compute`]: the value, where it came from,
/// and the cache problems met on the way (which never prevent a value).
#[derive(Debug)]
#[non_exhaustive]
pub struct Fetched<T> {
    /// The value.
    pub value: T,
    /// Whether it was read from the store (possibly after waiting for another
    /// process to compute it) rather than computed here.
    pub hit: bool,
    /// Whether another thread or process was computing the key and we waited.
    pub waited: bool,
    /// The size of the entry read or written, if any.
    pub size_bytes: Option<u64>,
    /// On a miss, how long computing took; on a hit, what the writer recorded.
    pub compute_time: Duration,
    /// Cache failures met on the way: a corrupt entry that was discarded, a
    /// write that failed… The value is correct regardless.
    pub errors: Vec<Error>,
}

impl Store {
    /// Opens the store in `dir`, creating the directory if it is missing.
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
    pub fn at(dir: impl Into<PathBuf>) -> Store {
        Store {
            layout: Layout::new(dir.into()),
            expiry: None,
            clock: None,
        }
    }

    /// Sets the expiry: entries older than this are misses and are removed.
    pub fn with_expiry(mut self, expiry: Option<Duration>) -> Store {
        self.expiry = expiry;
        self
    }

    /// Replaces the system clock, for tests and tools that judge expiry as
    /// of another instant.
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

    /// Reads the value stored under `key`.
    ///
    /// Returns `Ok(None)` on a miss: no entry, or an expired one (which is
    /// removed).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] and [`Error::Decode`] when an entry exists but
    /// fails its checks or does not deserialize as `T`; it has been removed,
    /// so callers may treat these as a miss (after warning). [`Error::Io`]
    /// when the file cannot be read.
    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>> {
        Ok(self.lookup(key)?.map(|(value, _)| value))
    }

    /// Like [`get`](Store::get), also returning the entry's header facts.
    pub(crate) fn lookup<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<(T, EntryInfo)>> {
        let path = self.layout.entry(key);
        let (mut file, len) = match read::open(&path)? {
            Opened::Missing => return Ok(None),
            Opened::NotAFile => return Err(self.discard(&path, None, Corruption::NotAFile)),
            Opened::File { file, len } => (file, len),
        };
        let result = if bytes::is_byte_type::<T>() && len > SMALL_BYTES {
            self.read_large_bytes(&mut file, len, &path)
        } else {
            self.read_value(&mut file, len, &path)
        };
        match result {
            Ok(Some((value, header))) => {
                let info = self.info(*key, path, len, &header, None);
                Ok(Some((value, info)))
            }
            Ok(None) => Ok(None),
            Err(Check::Io(e)) => {
                if matches!(e, Error::Decode { .. }) {
                    read::remove_if_same(&path, Some(&file));
                }
                Err(e)
            }
            Err(Check::Corrupt(reason)) => Err(self.discard(&path, Some(&file), reason)),
        }
    }

    fn read_value<T: DeserializeOwned>(
        &self,
        file: &mut fs::File,
        len: u64,
        path: &Path,
    ) -> Result<Option<(T, Header)>, Check> {
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len)
            .read_to_end(&mut buf)
            .op("read entry", path)?;
        let header = Header::decode(&buf)?;
        header.check(Kind::Value, buf.len() as u64)?;
        if self.is_expired(header.created) {
            read::remove_if_same(path, Some(file));
            return Ok(None);
        }
        let payload = &buf[HEADER_LEN..];
        if crc32fast::hash(payload) != header.payload_crc {
            return Err(Corruption::PayloadChecksum.into());
        }
        if bytes::is_byte_type::<T>() {
            if let Some((marker_len, data_len)) = entry::parse_bin_marker(payload) {
                if marker_len as u64 + data_len != payload.len() as u64 {
                    return Err(Corruption::BadPayload("bin length mismatch").into());
                }
                buf.drain(..HEADER_LEN + marker_len);
                if let Some(value) = bytes::from_vec(buf) {
                    return Ok(Some((value, header)));
                }
                unreachable!("is_byte_type and from_vec agree");
            }
        }
        let value = rmp_serde::from_slice(payload).map_err(|source| Error::Decode {
            path: path.to_owned(),
            type_name: std::any::type_name::<T>(),
            source,
        })?;
        Ok(Some((value, header)))
    }

    /// Reads a large byte value straight into its final buffer: one
    /// allocation, one bulk read, one checksum pass.
    fn read_large_bytes<T: DeserializeOwned>(
        &self,
        file: &mut fs::File,
        len: u64,
        path: &Path,
    ) -> Result<Option<(T, Header)>, Check> {
        let header = read::header(file, len, Kind::Value, path)?;
        if self.is_expired(header.created) {
            read::remove_if_same(path, Some(file));
            return Ok(None);
        }
        let mut marker = [0u8; 5];
        let n = read::read_up_to(file, &mut marker).op("read entry", path)?;
        let Some((marker_len, data_len)) = entry::parse_bin_marker(&marker[..n]) else {
            // Not a `bin`: an integer array written by other means. Decode it
            // generically.
            return self.read_value_from_start(file, len, path);
        };
        if marker_len as u64 + data_len != header.payload_len {
            return Err(Corruption::BadPayload("bin length mismatch").into());
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&marker[..marker_len]);
        // The 5-byte read may have taken the first data bytes.
        let mut data = Vec::with_capacity(usize::try_from(data_len).unwrap_or(0));
        data.extend_from_slice(&marker[marker_len..n]);
        file.take(data_len - (n - marker_len) as u64)
            .read_to_end(&mut data)
            .op("read entry", path)?;
        if data.len() as u64 != data_len {
            return Err(Corruption::Truncated.into());
        }
        crc.update(&data);
        if crc.finalize() != header.payload_crc {
            return Err(Corruption::PayloadChecksum.into());
        }
        let value = bytes::from_vec(data).expect("is_byte_type and from_vec agree");
        Ok(Some((value, header)))
    }

    fn read_value_from_start<T: DeserializeOwned>(
        &self,
        file: &mut fs::File,
        len: u64,
        path: &Path,
    ) -> Result<Option<(T, Header)>, Check> {
        use std::io::Seek;
        file.rewind().op("seek in entry", path)?;
        self.read_value(file, len, path)
    }

    fn discard(&self, path: &Path, opened: Option<&fs::File>, reason: Corruption) -> Error {
        read::remove_if_same(path, opened);
        Error::Corrupt {
            path: path.to_owned(),
            reason,
        }
    }

    fn info(
        &self,
        key: Key,
        path: PathBuf,
        size_bytes: u64,
        header: &Header,
        corrupt: Option<Corruption>,
    ) -> EntryInfo {
        EntryInfo {
            key,
            path,
            size_bytes,
            created: header.created,
            compute_time: header.compute_time,
            expired: corrupt.is_some() || self.is_expired(header.created),
            corrupt,
        }
    }

    /// Stores `value` under `key`, replacing any previous entry atomically.
    ///
    /// Byte values (`Vec<u8>`, `[u8]`, `Box<[u8]>`, `serde_bytes::ByteBuf`)
    /// are written as one MessagePack `bin` without per-byte work.
    ///
    /// # Errors
    ///
    /// Fails if the value cannot be serialized or the file cannot be written;
    /// no partial entry is ever visible.
    pub fn set<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<EntryInfo> {
        self.set_timed(key, value, Duration::ZERO)
    }

    /// Like [`set`](Store::set), recording how long the value took to compute
    /// (reported as the time a hit saves).
    ///
    /// # Errors
    ///
    /// As [`set`](Store::set).
    pub fn set_timed<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        value: &T,
        compute_time: Duration,
    ) -> Result<EntryInfo> {
        let path = self.layout.entry(key);
        let created = self.now();
        let mut header = Header {
            kind: Kind::Value,
            payload_crc: 0,
            created,
            payload_len: 0,
            items: 0,
            compute_time,
        };
        let mut tmp;
        if let Some(data) = bytes::as_bytes(value) {
            let (marker, n) = entry::bin_marker(data.len()).ok_or_else(|| Error::TooLarge {
                path: path.clone(),
                size_bytes: data.len() as u64,
            })?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&marker[..n]);
            crc.update(data);
            header.payload_crc = crc.finalize();
            header.payload_len = (n + data.len()) as u64;
            tmp = TempFile::create(&self.layout, &key.to_string())?;
            tmp.write_parts(&[&header.encode(), &marker[..n], data])?;
        } else {
            let mut buf = vec![0u8; HEADER_LEN];
            rmp_serde::encode::write(&mut buf, value).map_err(|source| Error::Encode {
                path: path.clone(),
                source,
            })?;
            header.payload_crc = crc32fast::hash(&buf[HEADER_LEN..]);
            header.payload_len = (buf.len() - HEADER_LEN) as u64;
            buf[..HEADER_LEN].copy_from_slice(&header.encode());
            tmp = TempFile::create(&self.layout, &key.to_string())?;
            tmp.write_parts(&[&buf])?;
        }
        tmp.persist(&path, created)?;
        Ok(self.info(*key, path, header.file_len(), &header, None))
    }

    /// Removes `key`'s entry (and its lock file, unless someone holds it).
    /// Returns whether there was an entry.
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
        Ok(removed)
    }

    /// Returns the value under `key`, computing and storing it on a miss.
    ///
    /// Single flight: when several threads or processes miss the same key at
    /// once, one computes while the others wait for its entry and read it.
    /// Cache failures never stop a value from being returned: they degrade
    /// to computing (or to not storing) and are collected in
    /// [`Fetched::errors`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = pcache_core::Store::open(dir.path())?;
    /// let key = pcache_core::Key::new(&("squares", 10))?;
    /// let first = store.get_or_compute(&key, || (0..10).map(|i| i * i).collect::<Vec<u64>>());
    /// let again = store.get_or_compute(&key, || -> Vec<u64> { unreachable!("stored") });
    /// assert!(!first.hit && again.hit);
    /// assert_eq!(first.value, again.value);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_or_compute<T, F>(&self, key: &Key, compute: F) -> Fetched<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        match self.try_get_or_compute(key, || Ok::<T, std::convert::Infallible>(compute())) {
            Ok(fetched) => fetched,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_compute`](Store::get_or_compute) for a fallible
    /// computation. An `Err` from `compute` is returned as is and nothing is
    /// stored.
    ///
    /// # Errors
    ///
    /// Only `compute`'s own error.
    pub fn try_get_or_compute<T, E, F>(&self, key: &Key, compute: F) -> Result<Fetched<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T, E>,
    {
        let mut errors = Vec::new();
        match self.lookup::<T>(key) {
            Ok(Some((value, info))) => return Ok(Fetched::hit(value, info, false, errors)),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        let mut compute = Some(compute);
        let locked = lock::with_lock(&self.layout.lock(key), |waited| {
            if waited {
                // Whoever held the lock has probably stored the value.
                match self.lookup::<T>(key) {
                    Ok(Some((value, info))) => {
                        return Ok(Some(Fetched::hit(value, info, true, Vec::new())));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Ok(Some(self.compute_and_store(
                            key,
                            compute.take(),
                            vec![e],
                        )?));
                    }
                }
            }
            self.compute_and_store(key, compute.take(), Vec::new())
                .map(Some)
        });
        let mut fetched = match locked {
            Ok(result) => result?,
            Err(lock_error) => {
                // No lock (unwritable directory, lock trouble): compute anyway.
                errors.push(lock_error);
                None
            }
        };
        if fetched.is_none() {
            fetched = Some(self.compute_and_store(key, compute.take(), Vec::new())?);
        }
        let mut fetched = fetched.expect("computed above");
        errors.append(&mut fetched.errors);
        fetched.errors = errors;
        Ok(fetched)
    }

    fn compute_and_store<T, E, F>(
        &self,
        key: &Key,
        compute: Option<F>,
        mut errors: Vec<Error>,
    ) -> Result<Fetched<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T, E>,
    {
        // Each path above takes `compute` at most once.
        let compute = compute.expect("compute called once");
        let start = Instant::now();
        let value = compute()?;
        let compute_time = start.elapsed();
        let size_bytes = match self.set_timed(key, &value, compute_time) {
            Ok(info) => Some(info.size_bytes),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        Ok(Fetched {
            value,
            hit: false,
            waited: false,
            size_bytes,
            compute_time,
            errors,
        })
    }

    /// Lists the directory: entries (from their headers, not their payloads),
    /// lock files, temporary files and foreign files. Entries that vanish
    /// while being listed are skipped. A missing directory lists as empty.
    ///
    /// # Errors
    ///
    /// Fails if the directory exists but cannot be read.
    pub fn scan(&self) -> Result<Scan> {
        let dir = self.layout.dir();
        let mut scan = Scan::default();
        let read_dir = match fs::read_dir(dir) {
            Ok(read_dir) => read_dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(e).op("read cache directory", dir),
        };
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
                FileKind::Temp => scan.temps.push(path),
                FileKind::Meta => {}
                FileKind::Foreign => scan.foreign.push(path),
            }
        }
        scan.entries.sort_by_key(|e| e.key);
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
            }
        };
        let (mut file, len) = match read::open(&path)? {
            Opened::Missing => return Ok(None),
            Opened::NotAFile => return Ok(Some(corrupt_info(path, Corruption::NotAFile))),
            Opened::File { file, len } => (file, len),
        };
        let mut bytes = [0u8; HEADER_LEN];
        let n = read::read_up_to(&mut file, &mut bytes).op("read entry", &path)?;
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
        let max_age = max_age.or(self.expiry);
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
        let stale_temps = scan.temps.iter().filter(|path| {
            fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|mtime| self.is_older_than(mtime, STALE_TEMP_AGE))
        });
        scan.locks.iter().chain(stale_temps).cloned().collect()
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
                    lock::remove_if_unlocked(&self.layout.lock(&entry.key));
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

    fn still_older_than(&self, path: &Path, max_age: Duration) -> bool {
        let Ok(Opened::File { mut file, len }) = read::open(path) else {
            return true;
        };
        match read::any_header(&mut file, len, path) {
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
        let dir = self.layout.dir();
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

    /// Reads `cache.toml`; `Ok(None)` if there is none.
    ///
    /// # Errors
    ///
    /// Fails if it exists but cannot be read or parsed.
    pub fn meta(&self) -> Result<Option<CacheMeta>> {
        let path = self.layout.meta();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).op("read cache metadata", &path),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|source| Error::Meta { path, source })
    }

    /// Writes `cache.toml` atomically, unless it already says the same.
    ///
    /// # Errors
    ///
    /// Fails if it cannot be written.
    pub fn write_meta(&self, meta: &CacheMeta) -> Result<()> {
        let path = self.layout.meta();
        // Serializing a struct of strings and integers to TOML cannot fail.
        let text = toml::to_string(meta).expect("CacheMeta serializes to TOML");
        // Comparing bytes is cheaper than parsing, and this runs on every
        // build-script step.
        if fs::read(&path).is_ok_and(|current| current == text.as_bytes()) {
            return Ok(());
        }
        let mut tmp = TempFile::create(&self.layout, crate::layout::META_FILE)?;
        tmp.write_parts(&[text.as_bytes()])?;
        tmp.persist(&path, self.now())
    }
}

impl<T> Fetched<T> {
    fn hit(value: T, info: EntryInfo, waited: bool, errors: Vec<Error>) -> Fetched<T> {
        Fetched {
            value,
            hit: true,
            waited,
            size_bytes: Some(info.size_bytes),
            compute_time: info.compute_time,
            errors,
        }
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
