//! [`Cache`]: the options builder, and the value entry points.

use std::any::type_name;
use std::cell::RefCell;
use std::convert::Infallible;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use pcache_core::Computed;

use crate::capture::{Recorded, Recorder};
use crate::env::Mode;
use pcache_core::tree::Tree;

use crate::files::{self, GeneratedFiles};
use crate::iter::CachedIter;
use crate::notes;
use crate::parts;
use crate::step::{self, Expiry, Options, Step, Summary};

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
    /// package's `[package.metadata.pcache] expiry` applies, else the
    /// workspace's `[workspace.metadata.pcache] expiry`, if any.
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
        self.value_step("value", inputs, None, |_| compute(), |value, _| Ok(value))
    }

    /// A step whose value is stored whole: `cached`, `try_cached` and
    /// `cached_files` (whose value is the file tree restored into `dest`).
    /// `compute` makes the value on a miss; `then` turns it, stored or
    /// fresh, into what the caller gets (told whether it was a hit) before
    /// the step is reported, so that its time counts in the step's.
    pub(crate) fn value_step<T, R, E, I, F, G>(
        &self,
        entry_point: &'static str,
        inputs: I,
        dest: Option<&Path>,
        compute: F,
        then: G,
    ) -> Result<R, E>
    where
        I: Serialize,
        T: Serialize + DeserializeOwned,
        F: FnOnce(&Recorder) -> Result<T, E>,
        G: FnOnce(T, bool) -> Result<R, E>,
    {
        let inputs = parts::inputs(&inputs);
        let (step, prepared) = Step::start(self.options(), entry_point, type_name::<T>(), inputs);
        // Whatever the mode, a step with a destination forwards its output
        // with the scratch directory's paths rewritten to `dest`: cc's link
        // lines must name where the library ends up, stored or not.
        let forward = || match dest {
            Some(_) => Recorder::forwarding(step.places(dest)),
            None => Recorder::idle(),
        };
        let Some(prepared) = prepared else {
            let recorder = forward();
            return then(step.uncached(|| recorder.run_unstored(compute))?, false);
        };
        if step.mode() == Mode::Verify {
            let recorder = forward();
            let value = verify(step, &prepared, || recorder.run_unstored(compute))?;
            return then(value, false);
        }
        let places = step.places(dest);
        let mut recorded = Recorded::Failed;
        // What a hit prints, worked out once while the hit is accepted.
        let replay = RefCell::new(Vec::new());
        let fetched = prepared.store.try_get_or_compute_with(
            &prepared.key,
            &|notes| match notes::replay_lines(notes, &places) {
                Some(lines) => {
                    *replay.borrow_mut() = lines;
                    true
                }
                None => false,
            },
            || {
                let recorder = Recorder::start(places.clone());
                let value = compute(&recorder);
                recorded = recorder.finish(Some(prepared.parts()));
                let value = value?;
                Ok(match &mut recorded {
                    Recorded::Store(notes) => Computed::new(value, std::mem::take(notes)),
                    Recorded::Failed | Recorded::Unusable(_) => Computed::unstored(value),
                })
            },
        )?;
        let summary = Summary::of(&fetched);
        let value = then(fetched.value, fetched.hit);
        if dest.is_some() {
            step.mark("restore");
        }
        step.finish_fetched(
            &prepared,
            summary,
            fetched.errors,
            &replay.into_inner(),
            recorded,
        );
        value
    }

    /// See [`cached_iter`](crate::cached_iter).
    pub fn cached_iter<T, I, F, It>(&self, inputs: I, produce: F) -> CachedIter<T, F, It>
    where
        I: Serialize,
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> It,
        It: IntoIterator<Item = T>,
    {
        let inputs = parts::inputs(&inputs);
        let (step, prepared) = Step::start(self.options(), "iter", type_name::<T>(), inputs);
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
        self.value_step(
            "files",
            inputs,
            Some(dest),
            |recorder| files::generate(&self.name, dest, recorder, Box::new(generate)),
            |tree: Tree, hit| files::restore(&tree, dest, hit),
        )
    }
}

/// `PCACHE=verify`: compute even on a hit, and fail the build when the fresh
/// value differs from the stored one.
fn verify<T, E>(
    step: Step,
    prepared: &step::Prepared,
    compute: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
{
    let stored = prepared
        .store
        .get::<T>(&prepared.key)
        .map(|stored| stored.map(|value| pcache_core::value_digest(&value)));
    let started = Instant::now();
    let value = compute()?;
    let computed = started.elapsed();
    let stored_bytes = match stored {
        // Nothing to compare with: store what was computed.
        Ok(None) => Some(
            prepared
                .store
                .set_timed(&prepared.key, &value, computed)
                .map(|info| info.size_bytes),
        ),
        _ => None,
    };
    step::finish_verify(
        step,
        prepared,
        stored,
        pcache_core::value_digest(&value),
        stored_bytes,
        computed,
    );
    Ok(value)
}
