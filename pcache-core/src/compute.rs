//! Get-or-compute with cross-process single flight.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::get::Found;
use crate::lock::{self, Acquired};
use crate::store::Lookup;
use crate::{Key, Store};

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
    /// The entry's notes: stored ones on a hit, the computation's on a miss.
    pub notes: Vec<u8>,
    /// On a miss, whether a stored entry was found past its expiry (and
    /// removed).
    pub expired: bool,
}

impl<T> Fetched<T> {
    fn hit(found: Found<T>, waited: bool, errors: Vec<Error>) -> Fetched<T> {
        Fetched {
            value: found.value,
            hit: true,
            waited,
            size_bytes: Some(found.info.size_bytes),
            compute_time: found.info.compute_time,
            errors,
            notes: found.notes,
            expired: false,
        }
    }
}

/// What a computation for [`Store::try_get_or_compute_with`] produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct Computed<T> {
    /// The value.
    pub value: T,
    /// Notes to store with it (see [`Store::set_with_notes`]).
    pub notes: Vec<u8>,
    /// Whether to store it at all: `false` returns the value uncached.
    pub store: bool,
}

impl<T> Computed<T> {
    /// A value to store with `notes`.
    pub fn new(value: T, notes: Vec<u8>) -> Computed<T> {
        Computed {
            value,
            notes,
            store: true,
        }
    }

    /// A value to return without storing it.
    pub fn unstored(value: T) -> Computed<T> {
        Computed {
            value,
            notes: Vec::new(),
            store: false,
        }
    }
}

impl Store {
    /// Returns the value under `key`, computing and storing it on a miss.
    ///
    /// Single flight: when several threads or processes miss the same key at
    /// once, one computes while the others wait for its entry and read it
    /// (for at most the [lock timeout](Store::with_lock_timeout), after
    /// which they compute too). Cache failures never stop a value from being
    /// returned: they degrade to computing (or to not storing) and are
    /// collected in [`Fetched::errors`].
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
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = pcache_core::Store::open(dir.path())?;
    /// let key = pcache_core::Key::new("config")?;
    /// let failed = store.try_get_or_compute(&key, || "x".parse::<u32>());
    /// assert!(failed.is_err());
    /// assert_eq!(store.get::<u32>(&key)?, None, "errors are never stored");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Only `compute`'s own error.
    pub fn try_get_or_compute<T, E, F>(&self, key: &Key, compute: F) -> Result<Fetched<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T, E>,
    {
        self.try_get_or_compute_with(key, &|_| true, || {
            compute().map(|v| Computed::new(v, Vec::new()))
        })
    }

    /// Like [`try_get_or_compute`](Store::try_get_or_compute) for a
    /// computation that also says what notes to store with its value, or
    /// that it must not be stored. [`Fetched::notes`] holds the stored notes
    /// on a hit. An entry whose notes `accept` refuses is treated as corrupt:
    /// removed, reported in [`Fetched::errors`], and computed afresh.
    ///
    /// ```
    /// use pcache_core::Computed;
    /// # let dir = tempfile::tempdir()?;
    /// let store = pcache_core::Store::open(dir.path())?;
    /// let key = pcache_core::Key::new("with-notes")?;
    /// let any = &|_: &[u8]| true;
    /// let miss = store.try_get_or_compute_with(&key, any, || {
    ///     Ok::<_, std::io::Error>(Computed::new(42u32, b"made by hand".to_vec()))
    /// })?;
    /// let hit = store.try_get_or_compute_with(&key, any, || -> Result<Computed<u32>, std::io::Error> {
    ///     unreachable!("stored")
    /// })?;
    /// assert_eq!((hit.value, hit.notes), (42, b"made by hand".to_vec()));
    ///
    /// // Notes the caller cannot use make the entry a miss.
    /// let fresh = store.try_get_or_compute_with(&key, &|notes| notes.is_empty(), || {
    ///     Ok::<_, std::io::Error>(Computed::new(43u32, Vec::new()))
    /// })?;
    /// assert_eq!((fresh.hit, fresh.value, fresh.errors.len()), (false, 43, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Only `compute`'s own error.
    pub fn try_get_or_compute_with<T, E, F>(
        &self,
        key: &Key,
        accept: &dyn Fn(&[u8]) -> bool,
        compute: F,
    ) -> Result<Fetched<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<Computed<T>, E>,
    {
        let mut errors = Vec::new();
        let mut expired = false;
        match self.lookup_accepted::<T>(key, accept) {
            Ok(Lookup::Found(found)) => return Ok(Fetched::hit(found, false, errors)),
            Ok(Lookup::Expired) => expired = true,
            Ok(Lookup::Absent) => {}
            Err(e) => errors.push(e),
        }
        let lock = self.lock_key(key, &mut errors);
        self.mark("lock");
        if lock.as_ref().is_some_and(Acquired::waited) {
            // Whoever held the lock has probably stored the value.
            match self.lookup_accepted::<T>(key, accept) {
                Ok(Lookup::Found(found)) => return Ok(Fetched::hit(found, true, errors)),
                Ok(Lookup::Absent | Lookup::Expired) => {}
                Err(e) => errors.push(e),
            }
        }
        let started = Instant::now();
        let computed = compute()?;
        let compute_time = started.elapsed();
        self.mark("compute");
        let size_bytes = if computed.store {
            match self.set_with_notes(key, &computed.value, compute_time, &computed.notes) {
                Ok(info) => Some(info.size_bytes),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        } else {
            None
        };
        drop(lock);
        self.mark("store");
        Ok(Fetched {
            value: computed.value,
            hit: false,
            waited: false,
            size_bytes,
            compute_time,
            errors,
            notes: computed.notes,
            expired,
        })
    }

    /// [`lookup`](Store::lookup), treating an entry whose notes `accept`
    /// refuses as corrupt.
    fn lookup_accepted<T: DeserializeOwned>(
        &self,
        key: &Key,
        accept: &dyn Fn(&[u8]) -> bool,
    ) -> crate::Result<Lookup<Found<T>>> {
        match self.lookup::<T>(key)? {
            Lookup::Found(found) => {
                let accepted = accept(&found.notes);
                self.mark("notes");
                if accepted {
                    Ok(Lookup::Found(found))
                } else {
                    Err(self.reject(found.info))
                }
            }
            other => Ok(other),
        }
    }

    /// Takes `key`'s lock for a computation. Trouble (an unwritable
    /// directory, a timeout) is recorded and the computation goes on
    /// without it.
    fn lock_key(&self, key: &Key, errors: &mut Vec<Error>) -> Option<Acquired> {
        lock::lock(&self.layout().lock(key), self.lock_timeout())
            .map_err(|e| errors.push(e))
            .ok()
    }
}
