//! [`CachedIter`]: the iterator [`cached_iter`](crate::cached_iter) returns.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pcache_core::{StreamReader, StreamWriter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::Xxh3;

use crate::env::Mode;
use crate::report::Outcome;
use crate::step::{self, Prepared, Step};

/// Items decoded ahead on a hit.
const BATCH: usize = 256;

/// The iterator returned by [`cached_iter`](crate::cached_iter).
///
/// On a hit it decodes items lazily from the stored entry; on a miss it
/// passes the produced items through while recording them, and stores them
/// once the producer is exhausted. Memory stays constant in the number of
/// items either way.
pub struct CachedIter<T, F, It>
where
    It: IntoIterator<Item = T>,
{
    step: Option<Step>,
    state: State<T, F, It::IntoIter>,
}

impl<T, F, It> std::fmt::Debug for CachedIter<T, F, It>
where
    It: IntoIterator<Item = T>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Hit { .. } => "hit",
            State::Recording { .. } => "recording",
            State::Verifying { .. } => "verifying",
            State::Passing { .. } => "passing",
            State::Done => "done",
        };
        f.debug_struct("CachedIter")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

enum State<T, F, I> {
    /// Reading a stored entry. `produce` is kept to fall back on, should an
    /// item fail to decode midway.
    Hit {
        // Boxed: the reader and its buffers dwarf the other states.
        reader: Box<StreamReader<T>>,
        /// Items decoded ahead, a batch at a time (so the clock is read per
        /// batch, not per item).
        decoded: VecDeque<T>,
        /// A decode error met while filling `decoded`, raised once the items
        /// before it are yielded.
        failed: Option<pcache_core::Error>,
        produce: Option<F>,
        yielded: u64,
        /// Time spent in pcache: opening and verifying, then decoding.
        busy: Duration,
    },
    /// A miss: passing items through and recording them.
    Recording {
        inner: I,
        writer: Option<Box<StreamWriter>>,
        busy: Duration,
    },
    /// `PCACHE=verify` with a stored entry: passing fresh items through and
    /// comparing their digest with the stored items' at the end.
    Verifying {
        inner: I,
        stored: u128,
        stored_bytes: u64,
        fresh: Box<Xxh3>,
        busy: Duration,
    },
    /// No cache (off, unusable, or a fallback): items pass through.
    Passing {
        inner: I,
        busy: Duration,
    },
    Done,
}

impl<T, F, It> CachedIter<T, F, It>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> It,
    It: IntoIterator<Item = T>,
{
    pub(crate) fn start(mut step: Step, prepared: Option<Prepared>, produce: F) -> Self {
        let Some(prepared) = prepared else {
            let (inner, busy) = timed(produce);
            return CachedIter {
                step: Some(step),
                state: State::Passing { inner, busy },
            };
        };
        let stored = match prepared.store.stream_reader::<T>(&prepared.key) {
            Ok(reader) => reader,
            Err(e) => {
                step.warn(e);
                None
            }
        };
        let state = match stored {
            Some(reader) if step.mode() == Mode::Verify => {
                match (reader.info().size_bytes, stream_digest(reader)) {
                    (stored_bytes, Ok(stored)) => {
                        let (inner, busy) = timed(produce);
                        State::Verifying {
                            inner,
                            stored,
                            stored_bytes,
                            fresh: Box::new(Xxh3::new()),
                            busy,
                        }
                    }
                    (_, Err(e)) => {
                        step.warn(e);
                        let (inner, busy) = timed(produce);
                        State::Passing { inner, busy }
                    }
                }
            }
            Some(reader) => State::Hit {
                reader: Box::new(reader),
                decoded: VecDeque::with_capacity(BATCH),
                failed: None,
                produce: Some(produce),
                yielded: 0,
                busy: step.elapsed(),
            },
            None => {
                let writer = prepared
                    .store
                    .stream_writer(&prepared.key)
                    .map(Box::new)
                    .map_err(|e| step.warn(e))
                    .ok();
                let (inner, busy) = timed(produce);
                State::Recording {
                    inner,
                    writer,
                    busy,
                }
            }
        };
        CachedIter {
            step: Some(step),
            state,
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.state = State::Done;
        if let Some(step) = self.step.take() {
            step.finish(outcome);
        }
    }

    fn warn(&mut self, e: pcache_core::Error) {
        if let Some(step) = &mut self.step {
            step.warn(e);
        }
    }
}

/// The next item, adding the time it took to `busy`: on both paths the
/// step reports the time spent producing or reading, not the caller's time
/// spent using the items.
fn timed_next<I: Iterator>(iter: &mut I, busy: &mut Duration) -> Option<I::Item> {
    let started = Instant::now();
    let item = iter.next();
    *busy += started.elapsed();
    item
}

fn timed<F: FnOnce() -> It, It: IntoIterator>(produce: F) -> (It::IntoIter, Duration) {
    let started = Instant::now();
    let inner = produce().into_iter();
    (inner, started.elapsed())
}

/// The digest of a sequence of items: of each item's canonical digest.
fn stream_digest<T: Serialize + DeserializeOwned>(
    reader: StreamReader<T>,
) -> Result<u128, pcache_core::Error> {
    let mut hasher = Xxh3::new();
    for item in reader {
        hasher.update(&pcache_core::value_digest(&item?)?.to_le_bytes());
    }
    Ok(hasher.digest128())
}

impl<T, F, It> Iterator for CachedIter<T, F, It>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> It,
    It: IntoIterator<Item = T>,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.state {
            State::Hit {
                reader,
                decoded,
                failed,
                produce,
                yielded,
                busy,
            } => {
                if decoded.is_empty() && failed.is_none() {
                    let started = Instant::now();
                    for item in reader.by_ref().take(BATCH) {
                        match item {
                            Ok(item) => decoded.push_back(item),
                            Err(e) => {
                                *failed = Some(e);
                                break;
                            }
                        }
                    }
                    *busy += started.elapsed();
                }
                if let Some(item) = decoded.pop_front() {
                    *yielded += 1;
                    return Some(item);
                }
                let Some(e) = failed.take() else {
                    let (size_bytes, saved) =
                        (reader.info().size_bytes, reader.info().compute_time);
                    let elapsed = *busy;
                    self.finish(Outcome::Hit {
                        size_bytes,
                        elapsed,
                        saved,
                        waited: false,
                    });
                    return None;
                };
                // The checksum passed but an item does not decode: produce
                // afresh and skip what was already yielded.
                let skip = *yielded;
                let produce = produce.take();
                self.warn(e);
                let Some(produce) = produce else {
                    self.state = State::Done;
                    return None;
                };
                let (mut inner, busy) = timed(produce);
                if skip > 0 {
                    inner.nth(usize::try_from(skip - 1).unwrap_or(usize::MAX));
                }
                self.state = State::Passing { inner, busy };
                self.next()
            }
            State::Recording {
                inner,
                writer,
                busy,
            } => {
                let started = Instant::now();
                let item = inner.next();
                *busy += started.elapsed();
                match item {
                    Some(item) => {
                        if let Some(w) = writer {
                            if let Err(e) = w.push(&item) {
                                *writer = None;
                                self.warn(e);
                            }
                        }
                        Some(item)
                    }
                    None => {
                        let computed = *busy;
                        let stored_bytes = match writer.take().map(|w| w.commit(computed)) {
                            Some(Ok(info)) => Some(info.size_bytes),
                            Some(Err(e)) => {
                                self.warn(e);
                                None
                            }
                            None => None,
                        };
                        self.finish(Outcome::Miss {
                            stored_bytes,
                            computed,
                        });
                        None
                    }
                }
            }
            State::Verifying {
                inner,
                stored,
                stored_bytes,
                fresh,
                busy,
            } => match timed_next(inner, busy) {
                Some(item) => {
                    match pcache_core::value_digest(&item) {
                        Ok(d) => fresh.update(&d.to_le_bytes()),
                        Err(e) => self.warn(e.into()),
                    }
                    Some(item)
                }
                None => {
                    let (stored, computed, busy, size_bytes) =
                        (*stored, fresh.digest128(), *busy, *stored_bytes);
                    if stored != computed {
                        let name = self
                            .step
                            .as_ref()
                            .map(|s| s.name().to_owned())
                            .unwrap_or_default();
                        step::verify_failed(&name, stored, computed);
                    }
                    self.finish(Outcome::Verified {
                        size_bytes,
                        computed: busy,
                    });
                    None
                }
            },
            State::Passing { inner, busy } => {
                let item = timed_next(inner, busy);
                if item.is_none() {
                    let computed = *busy;
                    let mode = self.step.as_ref().map(Step::mode);
                    self.finish(if mode == Some(Mode::Off) {
                        Outcome::Off { computed }
                    } else {
                        Outcome::Miss {
                            stored_bytes: None,
                            computed,
                        }
                    });
                }
                item
            }
            State::Done => None,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.state {
            State::Hit {
                reader, decoded, ..
            } => {
                let (lo, hi) = reader.size_hint();
                let n = decoded.len();
                (lo.saturating_add(n), hi.and_then(|h| h.checked_add(n)))
            }
            State::Recording { inner, .. }
            | State::Verifying { inner, .. }
            | State::Passing { inner, .. } => inner.size_hint(),
            State::Done => (0, Some(0)),
        }
    }
}

impl<T, F, It> Drop for CachedIter<T, F, It>
where
    It: IntoIterator<Item = T>,
{
    fn drop(&mut self) {
        // Dropped before the end: the step still reports.
        let Some(step) = self.step.take() else { return };
        match &self.state {
            State::Recording { writer, .. } => {
                // The writer's temporary file goes with it: nothing stored.
                let items = writer.as_ref().map_or(0, |w| w.items());
                step.finish(Outcome::Abandoned { items });
            }
            State::Hit { reader, busy, .. } => step.finish(Outcome::Hit {
                size_bytes: reader.info().size_bytes,
                elapsed: *busy,
                saved: reader.info().compute_time,
                waited: false,
            }),
            // Nothing read from or written to the cache: its problems (if
            // any) are reported when `step` drops.
            State::Verifying { .. } | State::Passing { .. } | State::Done => {}
        }
    }
}
