//! One cached step from start to report: where its cache is, its key, the
//! problems met on the way, and the lines it prints.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcache_core::record::{
    self, CodeParts, InputPart, KeyParts, LastMiss, MissReason, StatsLog, StepRecord,
};
use pcache_core::trace::Trace;
use pcache_core::{CacheMeta, Key, KeyError, Store, conventions, gc};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::capture::Recorded;
use crate::directives::{Place, Places};
use crate::env::Mode;
use crate::parts;
use crate::remote;
use crate::report::{self, Outcome, Problem};
use crate::session::Session;

/// Where a step's value lives, and what its key is made of.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) store: Store,
    pub(crate) key: Key,
    entry_point: &'static str,
    type_name: &'static str,
    target: String,
    code: Option<&'static CodeParts>,
    inputs: Vec<u8>,
    helpers: Vec<InputPart>,
}

impl Prepared {
    /// The key's parts, for a stored entry's notes and the last miss (only
    /// worked out on a miss).
    pub(crate) fn parts(&self) -> KeyParts {
        KeyParts {
            format: pcache_core::FORMAT_VERSION,
            entry_point: self.entry_point.to_owned(),
            type_name: self.type_name.to_owned(),
            target: self.target.clone(),
            code: self.code.cloned(),
            inputs_digest: xxh3_128(&self.inputs),
            inputs: parts::input_parts(&self.inputs, &self.helpers),
        }
    }
}

/// A step in progress. Reports its warnings (one line) and outcome when
/// finished; a step abandoned by an error or a panic in the user's closure
/// still reports its warnings.
#[derive(Debug)]
pub(crate) struct Step {
    name: String,
    problems: Vec<Problem>,
    started: Instant,
    finished: bool,
    /// Where the step's outcome is recorded (its cache's statistics).
    stats: Option<StatsLog>,
    /// Why it missed, once known.
    miss: Option<MissReason>,
    /// What the remote tier did for the step.
    remote: remote::Visit,
    /// Where the step's time went, with `PCACHE_TRACE=1`.
    trace: Arc<Trace>,
}

/// How long values live in a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The package's metadata expiry, else the workspace's, else never.
    FromManifest,
    Never,
    After(Duration),
}

/// The options a step is prepared with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options<'a> {
    pub(crate) name: &'a str,
    pub(crate) expiry: Expiry,
    pub(crate) code_independent: bool,
}

/// The key material: everything a stored value depends on.
#[derive(Serialize)]
struct Material<'a> {
    format: u16,
    entry_point: &'static str,
    name: &'a str,
    type_name: &'static str,
    target: &'a str,
    code: Option<u128>,
    inputs: &'a serde_bytes::Bytes,
}

/// The key of a step: everything its value depends on. Not the profile, so
/// a debug build's value serves the release build.
pub(crate) fn material_key(
    entry_point: &'static str,
    name: &str,
    type_name: &'static str,
    target: &str,
    code: Option<u128>,
    inputs: &[u8],
) -> Result<Key, KeyError> {
    Key::new(&Material {
        format: pcache_core::FORMAT_VERSION,
        entry_point,
        name,
        type_name,
        target,
        code,
        inputs: serde_bytes::Bytes::new(inputs),
    })
}

/// What a fetch did, without its value: what a step reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Summary {
    hit: bool,
    waited: bool,
    expired: bool,
    size_bytes: Option<u64>,
    compute_time: Duration,
}

impl Summary {
    pub(crate) fn of<T>(fetched: &pcache_core::Fetched<T>) -> Summary {
        Summary {
            hit: fetched.hit,
            waited: fetched.waited,
            expired: fetched.expired,
            size_bytes: fetched.size_bytes,
            compute_time: fetched.compute_time,
        }
    }
}

/// Whether a cache error means the stored entry was unusable.
pub(crate) fn is_corruption(e: &pcache_core::Error) -> bool {
    matches!(
        e,
        pcache_core::Error::Corrupt { .. } | pcache_core::Error::Decode { .. }
    )
}

impl Step {
    /// Starts a step: locates and opens its cache and derives its key.
    /// The cache is `None` when off or unusable (the reason is among the
    /// step's problems): the step then just computes.
    pub(crate) fn start(
        options: Options<'_>,
        entry_point: &'static str,
        type_name: &'static str,
        inputs: parts::Inputs,
    ) -> (Step, Option<Prepared>) {
        let mut step = Step {
            name: options.name.to_owned(),
            problems: Vec::new(),
            started: Instant::now(),
            finished: false,
            stats: None,
            miss: None,
            remote: remote::Visit::default(),
            trace: Arc::new(Trace::new(Session::get().trace)),
        };
        step.trace
            .phase_took("input digests", crate::inputs::take_digest_time());
        let prepared = step.prepare(options, entry_point, type_name, inputs);
        (step, prepared)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn mode(&self) -> Mode {
        Session::get().mode
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the traced phase `name`, if tracing (`PCACHE_TRACE`).
    pub(crate) fn mark(&self, name: &'static str) {
        self.trace.phase(name);
    }

    pub(crate) fn warn(&mut self, problem: impl Into<Problem>) {
        self.problems.push(problem.into());
    }

    fn prepare(
        &mut self,
        options: Options<'_>,
        entry_point: &'static str,
        type_name: &'static str,
        inputs: parts::Inputs,
    ) -> Option<Prepared> {
        let session = Session::get();
        self.problems
            .extend_from_slice(session.take_setup_problems());
        let package = session.env.package.as_deref().unwrap_or("_");
        let dir = session
            .root
            .as_ref()
            .ok()
            .map(|root| conventions::cache_dir(root, package, options.name));
        if session.mode == Mode::Off {
            // Off touches nothing under the pcache directory, not even the
            // statistics: the step is not counted.
            self.miss = Some(MissReason::Disabled);
            return None;
        }
        let bytes = match inputs.bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                self.warn(Problem::new(
                    format!("failed to serialize the inputs: {e}"),
                    None,
                ));
                return None;
            }
        };
        let dir = match (dir, &session.root) {
            (Some(dir), _) => dir,
            (None, Err(e)) => {
                self.warn(Problem::new(format!("cannot locate the cache: {e}"), None));
                return None;
            }
            (None, Ok(_)) => return None,
        };
        let expiry = match options.expiry {
            Expiry::FromManifest => session.default_expiry(),
            Expiry::Never => None,
            Expiry::After(d) => Some(d),
        };
        self.trace.phase("locate");
        let store = match Store::open(dir) {
            Ok(store) => store
                .with_expiry(expiry)
                .with_use_recording(true)
                .with_trace(Arc::clone(&self.trace)),
            Err(e) => {
                self.warn(e);
                return None;
            }
        };
        if session.stats {
            self.stats = Some(store.stats_log());
        }
        // A read-only cache can still serve hits: a failed metadata write is
        // only a warning.
        let meta = CacheMeta::new(options.name).package(package).expiry(expiry);
        if session.meta_needs_write(store.dir(), &meta) {
            if let Err(e) = store.write_meta(&meta) {
                self.warn(e);
            }
        }
        self.trace.phase("open and metadata");
        let code = if options.code_independent {
            None
        } else {
            let (parts, problems) = session.code_identity();
            self.problems.extend(problems);
            Some(parts)
        };
        self.trace.phase("code identity");
        let target = session.env.target.as_deref().unwrap_or("");
        let digest = code.map(|c| c.digest);
        match material_key(entry_point, options.name, type_name, target, digest, &bytes) {
            Ok(key) => {
                self.trace.phase("key");
                self.remote = remote::read_through(options.name, &store, &key, &mut self.problems);
                self.trace.phase("remote check");
                Some(Prepared {
                    store,
                    key,
                    entry_point,
                    type_name,
                    target: target.to_owned(),
                    code,
                    inputs: bytes,
                    helpers: inputs.helpers,
                })
            }
            Err(e) => {
                self.warn(pcache_core::Error::from(e));
                None
            }
        }
    }

    /// Notes why the step missed — its entry expired, was corrupt or
    /// evicted, or its key differs from the last miss's in its code or its
    /// inputs — and records the miss for `cargo pcache why`.
    pub(crate) fn missed(&mut self, prepared: &Prepared, expired: bool, corrupt: bool) {
        let parts = prepared.parts();
        let reason = if self.mode() == Mode::Verify {
            MissReason::Verify
        } else if expired {
            MissReason::Expired
        } else if corrupt {
            MissReason::Corrupt
        } else if prepared.store.was_evicted(&prepared.key) {
            MissReason::Evicted
        } else {
            let previous = prepared.store.last_miss().ok().flatten();
            parts::miss_reason(&parts, previous.as_ref().map(|m| &m.parts))
        };
        prepared.store.forget_evicted(&prepared.key);
        // Only `why` depends on it.
        let _ = prepared
            .store
            .set_last_miss(&LastMiss::new(&prepared.key, reason, parts));
        self.miss = Some(reason);
    }

    /// Computes without the cache and reports it.
    pub(crate) fn uncached<T, E>(self, compute: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let started = Instant::now();
        let value = compute()?;
        let computed = started.elapsed();
        let outcome = if self.mode() == Mode::Off {
            Outcome::Off { computed }
        } else {
            Outcome::Miss {
                stored_bytes: None,
                computed,
            }
        };
        self.finish(outcome);
        Ok(value)
    }

    /// The places directives are written relative to, with `dest` for
    /// `cached_files`.
    pub(crate) fn places(&self, dest: Option<&Path>) -> Places {
        let env = &Session::get().env;
        let mut places = Places::new(env.out_dir.as_deref(), env.manifest_dir.as_deref());
        if let Some(dest) = dest {
            places.add(dest, Place::Dest);
        }
        places
    }

    /// Reports a fetch: prints a hit's directives (`replay`), then reports
    /// problems and the outcome.
    pub(crate) fn finish_fetched(
        mut self,
        prepared: &Prepared,
        fetched: Summary,
        errors: Vec<pcache_core::Error>,
        replay: &[String],
        recorded: Recorded,
    ) {
        if !fetched.hit && !matches!(recorded, Recorded::Failed) {
            self.missed(prepared, fetched.expired, errors.iter().any(is_corruption));
        }
        self.problems.extend(errors.into_iter().map(Problem::from));
        if fetched.hit {
            report::emit_all(replay);
            self.trace.phase("directives");
        } else if let Recorded::Unusable(e) = recorded {
            self.warn(Problem::new(e.to_string(), None));
        }
        let outcome = if fetched.hit {
            Outcome::Hit {
                size_bytes: fetched.size_bytes.unwrap_or(0),
                elapsed: self.elapsed(),
                saved: fetched.compute_time,
                waited: fetched.waited,
            }
        } else {
            Outcome::Miss {
                stored_bytes: fetched.size_bytes,
                computed: fetched.compute_time,
            }
        };
        self.finish(outcome);
    }

    /// Records the outcome, keeps the pcache directory under its size cap
    /// after a store, and reports the outcome and, on one line, any
    /// problems.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        let record = match outcome {
            Outcome::Hit {
                size_bytes,
                elapsed,
                saved,
                ..
            } => StepRecord::new(record::Outcome::Hit, saved, elapsed).bytes(size_bytes, 0),
            Outcome::Miss {
                stored_bytes,
                computed,
            } => {
                if let Some(stored) = stored_bytes {
                    if let Some(upload) = &self.remote.upload {
                        remote::write_back(&self.name, upload, &mut self.problems);
                    }
                    self.trim(stored);
                }
                self.miss_record(computed)
                    .bytes(0, stored_bytes.unwrap_or(0))
            }
            Outcome::Verified { computed, .. } | Outcome::Off { computed } => {
                self.miss_record(computed)
            }
            Outcome::Abandoned { .. } => self.miss_record(self.elapsed()),
        };
        if let Some(stats) = &self.stats {
            if let Err(e) = stats.append(&record) {
                self.warn(e);
            }
        }
        self.trace.phase("stats");
        self.flush_problems();
        let mut line = report::step_line(&self.name, outcome);
        if self.remote.fetched && matches!(outcome, Outcome::Hit { .. }) {
            line.push_str(" (fetched from the remote)");
        }
        report::emit(&line);
        if let Some(trace) = self.trace.summary(&self.name) {
            eprintln!("{trace}");
        }
        self.finished = true;
    }

    fn miss_record(&self, computed: Duration) -> StepRecord {
        let reason = self.miss.unwrap_or(MissReason::NewKey);
        StepRecord::new(record::Outcome::Miss(reason), computed, self.elapsed())
    }

    /// After storing `stored` bytes: trims the pcache directory if that took
    /// it over the size cap (and no other build is trimming it).
    fn trim(&mut self, stored: u64) {
        let session = Session::get();
        let (Some(cap), Ok(root)) = (session.max_size(), &session.root) else {
            return;
        };
        match gc::after_store(root, stored, cap) {
            Ok(Some(trimmed)) => report::emit(&format!(
                "pcache: trimmed {}: removed {} entries ({}) to stay under {}",
                root.display(),
                trimmed.removed.entries,
                conventions::format_size(trimmed.removed.bytes),
                conventions::format_size(cap)
            )),
            Ok(None) => {}
            Err(e) => self.warn(e),
        }
    }

    fn flush_problems(&mut self) {
        if !self.problems.is_empty() {
            report::emit(&report::warning_line(&self.name, &self.problems));
            self.problems.clear();
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.finished {
            self.flush_problems();
        }
    }
}

/// Reports a `PCACHE=verify` step, failing the build when the stored and the
/// fresh value differ. `stored` is the stored value's digest (if there was
/// one); `stored_bytes`, the result of storing the fresh value when there
/// was none.
pub(crate) fn finish_verify(
    mut step: Step,
    prepared: &Prepared,
    stored: Result<Option<Result<u128, KeyError>>, pcache_core::Error>,
    fresh: Result<u128, KeyError>,
    stored_bytes: Option<Result<u64, pcache_core::Error>>,
    computed: Duration,
) {
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            step.warn(e);
            None
        }
    };
    step.miss = Some(MissReason::Verify);
    let Some(stored) = stored else {
        let stored_bytes = stored_bytes.and_then(|r| r.map_err(|e| step.warn(e)).ok());
        step.finish(Outcome::Miss {
            stored_bytes,
            computed,
        });
        return;
    };
    match (stored, fresh) {
        (Ok(a), Ok(b)) if a != b => verify_failed(step.name(), a, b),
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
}

/// Panics with the `PCACHE=verify` failure message: the one way pcache
/// fails a build, because the user asked it to.
pub(crate) fn verify_failed(name: &str, stored: u128, computed: u128) -> ! {
    panic!(
        "pcache: PCACHE=verify: cache {} holds a different value than the step just computed \
         (stored digest {stored:032x}, computed digest {computed:032x}); the step is \
         nondeterministic, or its inputs miss something it reads",
        report::display_name(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    fn key(
        entry: &'static str,
        name: &str,
        ty: &'static str,
        target: &str,
        code: Option<u128>,
        inputs: &[u8],
    ) -> Key {
        material_key(entry, name, ty, target, code, inputs).unwrap()
    }

    #[test]
    fn every_part_of_the_material_changes_the_key() {
        let inputs = pcache_core::canonical_bytes(&("a.h", 1)).unwrap();
        let base = key(
            "value",
            "t",
            "u32",
            "x86_64-unknown-linux-gnu",
            Some(1),
            &inputs,
        );
        #[rustfmt::skip]
        let variants = [
            key("iter",  "t",  "u32", "x86_64-unknown-linux-gnu", Some(1), &inputs),
            key("value", "t2", "u32", "x86_64-unknown-linux-gnu", Some(1), &inputs),
            key("value", "t",  "u64", "x86_64-unknown-linux-gnu", Some(1), &inputs),
            key("value", "t",  "u32", "aarch64-apple-darwin",     Some(1), &inputs),
            key("value", "t",  "u32", "x86_64-unknown-linux-gnu", Some(2), &inputs),
            key("value", "t",  "u32", "x86_64-unknown-linux-gnu", None,    &inputs),
            key("value", "t",  "u32", "x86_64-unknown-linux-gnu", Some(1), b"other"),
        ];
        let distinct: BTreeSet<_> = variants.iter().chain([&base]).collect();
        assert_eq!(distinct.len(), variants.len() + 1);
        // And nothing else: the same material gives the same key.
        assert_eq!(
            key(
                "value",
                "t",
                "u32",
                "x86_64-unknown-linux-gnu",
                Some(1),
                &inputs
            ),
            base
        );
    }

    #[test]
    fn hash_map_inputs_give_one_key_whatever_their_order() {
        let a: HashMap<String, u32> = (0..100).map(|i| (i.to_string(), i)).collect();
        let mut b = HashMap::with_capacity(500);
        b.extend((0..100).rev().map(|i| (i.to_string(), i)));
        let ka = key(
            "value",
            "t",
            "u32",
            "",
            None,
            &pcache_core::canonical_bytes(&a).unwrap(),
        );
        let kb = key(
            "value",
            "t",
            "u32",
            "",
            None,
            &pcache_core::canonical_bytes(&b).unwrap(),
        );
        assert_eq!(ka, kb);
    }
}
