//! [`CachedIter`]: the iterator [`cached_iter`](crate::cached_iter) returns.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pcache_core::record::KeyParts;
use pcache_core::{Lookup, StreamReader, StreamWriter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::Xxh3;

use crate::capture::{Recorded, Recorder};
use crate::directives::Places;
use crate::env::Mode;
use crate::notes;
use crate::report::{self, Outcome, Problem};
use crate::step::{self, Prepared, Step};

/// Items decoded ahead on a hit.
const BATCH: usize = 256;

/// Items produced ahead on a miss, while the producer's output is captured:
/// the capture pauses while the caller uses them, so the caller's own
/// directives are not mistaken for the step's.
const PRODUCED_AHEAD: usize = 64;

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
            State::Hit(_) => "hit",
            State::Recording(_) => "recording",
            State::Verifying(_) => "verifying",
            State::Passing(_) => "passing",
            State::Done => "done",
        };
        f.debug_struct("CachedIter")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

enum State<T, F, I> {
    /// Reading a stored entry.
    Hit(Box<Hit<T, F>>),
    /// A miss: passing items through and recording them. Boxed, like a
    /// hit: both dwarf the other states.
    Recording(Box<Recording<T, I>>),
    /// `PCACHE=verify` with a stored entry: passing fresh items through and
    /// comparing their digest with the stored items' at the end.
    Verifying(Verifying<I>),
    /// No cache (off, unusable, or a fallback): items pass through.
    Passing(Passing<I>),
    Done,
}

/// What a state's `next` decided.
enum Flow<T> {
    Item(T),
    /// The items are over: report this outcome.
    End(Outcome),
    /// A stored item failed to decode: produce afresh instead.
    Broken(pcache_core::Error),
}

/// Reading a stored entry. Boxed: the reader and its buffers dwarf the
/// other states.
struct Hit<T, F> {
    reader: StreamReader<T>,
    /// Items decoded ahead, a batch at a time (so the clock is read per
    /// batch, not per item).
    decoded: VecDeque<T>,
    /// A decode error met while filling `decoded`, raised once the items
    /// before it are yielded.
    failed: Option<pcache_core::Error>,
    /// Kept to fall back on, should an item fail to decode midway.
    produce: Option<F>,
    yielded: u64,
    /// Time spent in pcache: opening and verifying, then decoding.
    busy: Duration,
}

struct Recording<T, I> {
    inner: I,
    writer: Option<Box<StreamWriter>>,
    /// Captures the producer's directives; paused between batches.
    recorder: Recorder,
    /// The key's parts, stored in the entry's notes.
    parts: Option<KeyParts>,
    /// Items produced and recorded, not yet yielded.
    produced: VecDeque<T>,
    /// Items the caller has taken.
    yielded: u64,
    exhausted: bool,
    busy: Duration,
}

struct Verifying<I> {
    inner: I,
    stored: u128,
    stored_bytes: u64,
    fresh: Box<Xxh3>,
    busy: Duration,
}

struct Passing<I> {
    inner: I,
    busy: Duration,
    off: bool,
}

impl<T: DeserializeOwned, F> Hit<T, F> {
    fn next(&mut self) -> Flow<T> {
        if self.decoded.is_empty() && self.failed.is_none() {
            let started = Instant::now();
            for item in self.reader.by_ref().take(BATCH) {
                match item {
                    Ok(item) => self.decoded.push_back(item),
                    Err(e) => {
                        self.failed = Some(e);
                        break;
                    }
                }
            }
            self.busy += started.elapsed();
        }
        if let Some(item) = self.decoded.pop_front() {
            self.yielded += 1;
            return Flow::Item(item);
        }
        match self.failed.take() {
            Some(e) => Flow::Broken(e),
            None => Flow::End(self.outcome()),
        }
    }

    fn outcome(&self) -> Outcome {
        Outcome::Hit {
            size_bytes: self.reader.info().size_bytes,
            elapsed: self.busy,
            saved: self.reader.info().compute_time,
            waited: false,
        }
    }
}

impl<T: Serialize, I: Iterator<Item = T>> Recording<T, I> {
    fn next(&mut self, problems: &mut Vec<Problem>) -> Flow<T> {
        if self.produced.is_empty() && !self.exhausted {
            self.produce_batch(problems);
        }
        if let Some(item) = self.produced.pop_front() {
            self.yielded += 1;
            return Flow::Item(item);
        }
        let computed = self.busy;
        let writer = self.writer.take();
        let recorder = std::mem::replace(&mut self.recorder, Recorder::idle());
        let stored = match recorder.finish(self.parts.take()) {
            Recorded::Store(notes) => writer.map(|w| w.commit_with_notes(computed, &notes)),
            Recorded::Failed => None,
            Recorded::Unusable(e) => {
                problems.push(Problem::new(e.to_string(), None));
                None
            }
        };
        let stored_bytes = match stored {
            Some(Ok(info)) => Some(info.size_bytes),
            Some(Err(e)) => {
                problems.push(e.into());
                None
            }
            None => None,
        };
        Flow::End(Outcome::Miss {
            stored_bytes,
            computed,
        })
    }

    /// Produces and records up to `PRODUCED_AHEAD` items under capture.
    fn produce_batch(&mut self, problems: &mut Vec<Problem>) {
        self.recorder.resume();
        for _ in 0..PRODUCED_AHEAD {
            let Some(item) = timed_next(&mut self.inner, &mut self.busy) else {
                self.exhausted = true;
                break;
            };
            if let Some(writer) = &mut self.writer {
                if let Err(e) = writer.push(&item) {
                    // Nothing is stored; the items still pass through.
                    self.writer = None;
                    problems.push(e.into());
                }
            }
            self.produced.push_back(item);
        }
        self.recorder.pause();
    }
}

impl<I: Iterator> Verifying<I>
where
    I::Item: Serialize,
{
    fn next(&mut self, name: &str, problems: &mut Vec<Problem>) -> Flow<I::Item> {
        let Some(item) = timed_next(&mut self.inner, &mut self.busy) else {
            let computed = self.fresh.digest128();
            if self.stored != computed {
                step::verify_failed(name, self.stored, computed);
            }
            return Flow::End(Outcome::Verified {
                size_bytes: self.stored_bytes,
                computed: self.busy,
            });
        };
        match pcache_core::value_digest(&item) {
            Ok(d) => self.fresh.update(&d.to_le_bytes()),
            Err(e) => problems.push(pcache_core::Error::from(e).into()),
        }
        Flow::Item(item)
    }
}

impl<I: Iterator> Passing<I> {
    fn next(&mut self) -> Flow<I::Item> {
        match timed_next(&mut self.inner, &mut self.busy) {
            Some(item) => Flow::Item(item),
            None if self.off => Flow::End(Outcome::Off {
                computed: self.busy,
            }),
            None => Flow::End(Outcome::Miss {
                stored_bytes: None,
                computed: self.busy,
            }),
        }
    }
}

impl<T, F, It> CachedIter<T, F, It>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> It,
    It: IntoIterator<Item = T>,
{
    pub(crate) fn start(mut step: Step, prepared: Option<Prepared>, produce: F) -> Self {
        let places = step.places(None);
        let state = match prepared {
            None => State::Passing(Passing::new(produce, step.mode() == Mode::Off)),
            Some(prepared) => match prepared.store.lookup_stream::<T>(&prepared.key) {
                Ok(Lookup::Found(reader)) if step.mode() == Mode::Verify => {
                    step.missed(&prepared, false, false);
                    let stored_bytes = reader.info().size_bytes;
                    match stream_digest(reader) {
                        Ok(stored) => {
                            let (inner, busy) = timed(produce);
                            State::Verifying(Verifying {
                                inner,
                                stored,
                                stored_bytes,
                                fresh: Box::new(Xxh3::new()),
                                busy,
                            })
                        }
                        Err(e) => {
                            step.warn(e);
                            State::Passing(Passing::new(produce, false))
                        }
                    }
                }
                Ok(Lookup::Found(reader)) if replay(&mut step, &prepared, &reader, &places) => {
                    step.mark("notes");
                    State::Hit(Box::new(Hit {
                        reader,
                        decoded: VecDeque::with_capacity(BATCH),
                        failed: None,
                        produce: Some(produce),
                        yielded: 0,
                        busy: step.elapsed(),
                    }))
                }
                stored => {
                    let expired = matches!(stored, Ok(Lookup::Expired));
                    // A stream that failed to replay was reported (and
                    // removed) as corrupt by `replay`.
                    let corrupt = match stored {
                        Err(e) => {
                            let corrupt = step::is_corruption(&e);
                            step.warn(e);
                            corrupt
                        }
                        Ok(Lookup::Found(_)) => true,
                        Ok(_) => false,
                    };
                    step.missed(&prepared, expired, corrupt);
                    let writer = prepared
                        .store
                        .stream_writer(&prepared.key)
                        .map(Box::new)
                        .map_err(|e| step.warn(e))
                        .ok();
                    let mut recorder = Recorder::start(places);
                    let (inner, busy) = timed(produce);
                    recorder.pause();
                    State::Recording(Box::new(Recording {
                        inner,
                        writer,
                        recorder,
                        parts: Some(prepared.parts()),
                        produced: VecDeque::with_capacity(PRODUCED_AHEAD),
                        yielded: 0,
                        exhausted: false,
                        busy,
                    }))
                }
            },
        };
        CachedIter {
            step: Some(step),
            state,
        }
    }

    /// A stored item failed to decode although its checksum passed: warn,
    /// produce afresh, and skip what was already yielded.
    fn fall_back(&mut self, e: pcache_core::Error) -> Option<T> {
        self.warn(e);
        let State::Hit(hit) = std::mem::replace(&mut self.state, State::Done) else {
            return None;
        };
        let Hit {
            produce, yielded, ..
        } = *hit;
        let produce = produce?;
        let mut passing = Passing::new(produce, false);
        if yielded > 0 {
            passing
                .inner
                .nth(usize::try_from(yielded - 1).unwrap_or(usize::MAX));
        }
        self.state = State::Passing(passing);
        self.next()
    }

    fn finish(&mut self, outcome: Outcome) {
        self.state = State::Done;
        if let Some(step) = self.step.take() {
            step.mark("items");
            step.finish(outcome);
        }
    }

    fn warn(&mut self, problem: impl Into<Problem>) {
        if let Some(step) = &mut self.step {
            step.warn(problem);
        }
    }
}

impl<I> Passing<I> {
    fn new<F, It>(produce: F, off: bool) -> Passing<I>
    where
        F: FnOnce() -> It,
        It: IntoIterator<IntoIter = I>,
    {
        let (inner, busy) = timed(produce);
        Passing { inner, busy, off }
    }
}

/// Prints a hit's stored directives before its first item. A stream whose
/// directives cannot be replayed here is removed and read as a miss.
fn replay<T>(
    step: &mut Step,
    prepared: &Prepared,
    reader: &StreamReader<T>,
    places: &Places,
) -> bool {
    match notes::replay_lines(reader.notes(), places) {
        Some(lines) => {
            report::emit_all(&lines);
            true
        }
        None => {
            let _ = prepared.store.remove(&prepared.key);
            step.warn(pcache_core::Error::Corrupt {
                path: reader.info().path.clone(),
                reason: pcache_core::Corruption::BadPayload("directives this run cannot replay"),
            });
            false
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
        let mut problems = Vec::new();
        let flow = match &mut self.state {
            State::Hit(hit) => hit.next(),
            State::Recording(recording) => recording.next(&mut problems),
            State::Verifying(verifying) => {
                let name = self.step.as_ref().map_or("", Step::name);
                verifying.next(name, &mut problems)
            }
            State::Passing(passing) => passing.next(),
            State::Done => return None,
        };
        for e in problems {
            self.warn(e);
        }
        match flow {
            Flow::Item(item) => Some(item),
            Flow::End(outcome) => {
                self.finish(outcome);
                None
            }
            Flow::Broken(e) => self.fall_back(e),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.state {
            State::Hit(hit) => {
                let (lo, hi) = hit.reader.size_hint();
                let n = hit.decoded.len();
                (lo.saturating_add(n), hi.and_then(|h| h.checked_add(n)))
            }
            State::Recording(recording) => {
                // Items produced ahead are still to come.
                let (lo, hi) = recording.inner.size_hint();
                let n = recording.produced.len();
                (lo.saturating_add(n), hi.and_then(|h| h.checked_add(n)))
            }
            State::Verifying(Verifying { inner, .. }) | State::Passing(Passing { inner, .. }) => {
                inner.size_hint()
            }
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
        step.mark("items");
        match &self.state {
            State::Recording(recording) => {
                // The writer's temporary file goes with it: nothing stored.
                step.finish(Outcome::Abandoned {
                    items: recording.yielded,
                });
            }
            State::Hit(hit) => step.finish(Outcome::Hit {
                size_bytes: hit.reader.info().size_bytes,
                elapsed: hit.busy,
                saved: hit.reader.info().compute_time,
                waited: false,
            }),
            // Nothing read from or written to the cache: its problems (if
            // any) are reported when `step` drops.
            State::Verifying(_) | State::Passing(_) | State::Done => {}
        }
    }
}
