//! [`Cache`]: the options builder, and the value entry points.

use std::any::type_name;
use std::convert::Infallible;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::env::Mode;
use crate::files::{self, GeneratedFiles, Tree};
use crate::iter::CachedIter;
use crate::report::Outcome;
use crate::step::{self, Expiry, Options, Step};

/// A named cache with options: the builder behind [`cached`](crate::cached)
/// and friends.
///
/// ```no_run
/// // build.rs
/// use std::time::Duration;
/// use pcache_build::Cache;
///
/// let table: Vec<u32> = Cache::new("crc-table")
///     .expiry(Duration::from_secs(30 * 86_400))
///     .cached("ieee", || (0..256).map(|i| i * 7).collect());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    name: String,
    expiry: Expiry,
    code_independent: bool,
}

impl Cache {
    /// A cache called `name`. Any string is a valid name: the directory is
    /// named by its hash, and `cache.toml` keeps the readable name.
    pub fn new(name: impl Into<String>) -> Cache {
        Cache {
            name: name.into(),
            expiry: Expiry::FromManifest,
            code_independent: false,
        }
    }

    /// Values older than `expiry` are recomputed. Without this, the
    /// package's `[package.metadata.pcache] expiry` applies, if any.
    pub fn expiry(mut self, expiry: Duration) -> Cache {
        self.expiry = Expiry::After(expiry);
        self
    }

    /// Values never expire, whatever the package metadata says.
    pub fn no_expiry(mut self) -> Cache {
        self.expiry = Expiry::Never;
        self
    }

    /// Keeps values across edits of the build script's own code (by default
    /// an edit to `build.rs` or a module it includes, or a build-dependency
    /// upgrade, recomputes). For steps whose result depends only on their
    /// inputs.
    pub fn code_independent(mut self) -> Cache {
        self.code_independent = true;
        self
    }

    /// The cache name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> Options<'_> {
        Options {
            name: &self.name,
            expiry: self.expiry,
            code_independent: self.code_independent,
        }
    }

    /// See [`cached`](crate::cached).
    pub fn cached<T, I, F>(&self, inputs: I, compute: F) -> T
    where
        I: Serialize,
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        match self.try_cached(inputs, || Ok::<T, Infallible>(compute())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// See [`try_cached`](crate::try_cached).
    ///
    /// # Errors
    ///
    /// Only `compute`'s own error.
    pub fn try_cached<T, E, I, F>(&self, inputs: I, compute: F) -> Result<T, E>
    where
        I: Serialize,
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T, E>,
    {
        self.value_step("value", inputs, compute)
    }

    pub(crate) fn value_step<T, E, I, F>(
        &self,
        entry_point: &'static str,
        inputs: I,
        compute: F,
    ) -> Result<T, E>
    where
        I: Serialize,
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T, E>,
    {
        let mut step = Step::new(&self.name);
        let inputs = pcache_core::canonical_bytes(&inputs);
        let Some(prepared) = step.prepare(self.options(), entry_point, type_name::<T>(), inputs)
        else {
            return step.uncached(compute);
        };
        if step.mode() == Mode::Verify {
            return verify(step, &prepared, compute);
        }
        let mut fetched = prepared.store.try_get_or_compute(&prepared.key, compute)?;
        step.warn_all(std::mem::take(&mut fetched.errors));
        let outcome = step::fetched_outcome(&fetched, step.elapsed());
        step.finish(outcome);
        Ok(fetched.value)
    }

    /// See [`cached_iter`](crate::cached_iter).
    pub fn cached_iter<T, I, F, It>(&self, inputs: I, produce: F) -> CachedIter<T, F, It>
    where
        I: Serialize,
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> It,
        It: IntoIterator<Item = T>,
    {
        let mut step = Step::new(&self.name);
        let inputs = pcache_core::canonical_bytes(&inputs);
        let prepared = step.prepare(self.options(), "iter", type_name::<T>(), inputs);
        CachedIter::start(step, prepared, produce)
    }

    /// See [`cached_files`](crate::cached_files).
    ///
    /// # Errors
    ///
    /// When `generate` fails, or the files cannot be written into `dest`.
    pub fn cached_files<I, F>(
        &self,
        inputs: I,
        dest: impl AsRef<Path>,
        generate: F,
    ) -> Result<GeneratedFiles, crate::Error>
    where
        I: Serialize,
        F: FnOnce(&Path) -> std::io::Result<()>,
    {
        let dest = dest.as_ref();
        let mut computed = false;
        let tree: Tree = self.value_step("files", inputs, || {
            computed = true;
            files::generate(&self.name, dest, generate)
        })?;
        files::restore(&tree, dest, !computed)
    }
}

/// `PCACHE=verify`: compute even on a hit, and fail the build when the fresh
/// value differs from the stored one.
fn verify<T, E>(
    mut step: Step,
    prepared: &step::Prepared,
    compute: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
{
    let stored = prepared.store.get::<T>(&prepared.key).unwrap_or_else(|e| {
        step.warn(e);
        None
    });
    let started = Instant::now();
    let value = compute()?;
    let computed = started.elapsed();
    let Some(stored) = stored else {
        let stored_bytes = match prepared.store.set_timed(&prepared.key, &value, computed) {
            Ok(info) => Some(info.size_bytes),
            Err(e) => {
                step.warn(e);
                None
            }
        };
        step.finish(Outcome::Miss {
            stored_bytes,
            computed,
        });
        return Ok(value);
    };
    match (
        pcache_core::value_digest(&stored),
        pcache_core::value_digest(&value),
    ) {
        (Ok(a), Ok(b)) if a != b => step::verify_failed(step.name(), a, b),
        (Err(e), _) | (_, Err(e)) => step.warn(pcache_core::Error::from(e)),
        _ => {}
    }
    let size_bytes = prepared
        .store
        .entry_path(&prepared.key)
        .metadata()
        .map_or(0, |m| m.len());
    step.finish(Outcome::Verified {
        size_bytes,
        computed,
    });
    Ok(value)
}
