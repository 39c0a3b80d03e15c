//! Statistics: one 64-byte record per step, appended to `stats.log`, folded
//! into daily totals in `stats.sum` (see the module docs of `record`).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fd_lock::RwLock;
use serde::{Deserialize, Serialize};

use super::{checksummed, unchecksummed};
use crate::Store;
use crate::atomic::write_file;
use crate::error::{IoResultExt, Result};

/// The log is folded into daily totals when it grows past this size
/// (16,384 records).
pub const LOG_FOLD_BYTES: u64 = 1 << 20;

const RECORD_LEN: usize = 64;
const RECORD_MAGIC: [u8; 2] = *b"ps";
const RECORD_VERSION: u8 = 1;

/// Why a step missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MissReason {
    /// Never computed before in this cache, or only with another value type,
    /// target or format.
    NewKey,
    /// The inputs differ from the last computation's.
    InputsChanged,
    /// The build script's code (its sources or build-dependencies) changed.
    CodeChanged,
    /// The entry was older than the cache's expiry.
    Expired,
    /// The entry failed its checks or no longer decoded.
    Corrupt,
    /// The entry was evicted to keep the size cap.
    Evicted,
    /// `PCACHE=off`.
    Disabled,
    /// `PCACHE=verify` computed the step although it was stored.
    Verify,
}

impl MissReason {
    /// Every reason, in the order reports list them.
    pub const ALL: [MissReason; 8] = [
        MissReason::NewKey,
        MissReason::InputsChanged,
        MissReason::CodeChanged,
        MissReason::Expired,
        MissReason::Corrupt,
        MissReason::Evicted,
        MissReason::Disabled,
        MissReason::Verify,
    ];

    /// How reports name it: `new key`, `inputs changed`…
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::NewKey => "new key",
            MissReason::InputsChanged => "inputs changed",
            MissReason::CodeChanged => "code changed",
            MissReason::Expired => "expired",
            MissReason::Corrupt => "corrupt",
            MissReason::Evicted => "evicted",
            MissReason::Disabled => "disabled",
            MissReason::Verify => "verify",
        }
    }

    fn code(self) -> u8 {
        MissReason::ALL
            .iter()
            .position(|r| *r == self)
            .map_or(0, |i| i as u8 + 1)
    }

    fn from_code(code: u8) -> Option<MissReason> {
        MissReason::ALL
            .get(usize::from(code).checked_sub(1)?)
            .copied()
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Read from the cache.
    Hit,
    /// Computed, for this reason.
    Miss(MissReason),
}

/// One step, as recorded in `stats.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRecord {
    /// When the step ended.
    pub time: SystemTime,
    /// Hit or miss, and why.
    pub outcome: Outcome,
    /// Bytes read from the cache.
    pub bytes_read: u64,
    /// Bytes written to the cache.
    pub bytes_written: u64,
    /// On a miss, how long computing took; on a hit, what the stored entry's
    /// computation took (what the hit saved, before its own time).
    pub compute_time: Duration,
    /// How long the step took in pcache (the whole hit, on a hit).
    pub elapsed: Duration,
}

impl StepRecord {
    /// A record of a step ending now.
    pub fn new(outcome: Outcome, compute_time: Duration, elapsed: Duration) -> StepRecord {
        StepRecord {
            time: SystemTime::now(),
            outcome,
            bytes_read: 0,
            bytes_written: 0,
            compute_time,
            elapsed,
        }
    }

    /// Sets the bytes read and written.
    pub fn bytes(mut self, read: u64, written: u64) -> StepRecord {
        self.bytes_read = read;
        self.bytes_written = written;
        self
    }

    fn encode(&self) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[..2].copy_from_slice(&RECORD_MAGIC);
        r[2] = RECORD_VERSION;
        r[3] = match self.outcome {
            Outcome::Hit => 0,
            Outcome::Miss(reason) => reason.code(),
        };
        r[8..16].copy_from_slice(&nanos_since_epoch(self.time).to_le_bytes());
        r[16..24].copy_from_slice(&self.bytes_read.to_le_bytes());
        r[24..32].copy_from_slice(&self.bytes_written.to_le_bytes());
        r[32..40].copy_from_slice(&nanos(self.compute_time).to_le_bytes());
        r[40..48].copy_from_slice(&nanos(self.elapsed).to_le_bytes());
        let crc = crc32fast::hash(&r[..60]);
        r[60..64].copy_from_slice(&crc.to_le_bytes());
        r
    }

    fn decode(r: &[u8]) -> Option<StepRecord> {
        let r: &[u8; RECORD_LEN] = r.try_into().ok()?;
        let u64_at = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().unwrap_or([0; 8]));
        if r[..2] != RECORD_MAGIC
            || r[2] != RECORD_VERSION
            || crc32fast::hash(&r[..60]).to_le_bytes() != r[60..64]
        {
            return None;
        }
        let outcome = match r[3] {
            0 => Outcome::Hit,
            code => Outcome::Miss(MissReason::from_code(code)?),
        };
        Some(StepRecord {
            time: UNIX_EPOCH + Duration::from_nanos(u64_at(8)),
            outcome,
            bytes_read: u64_at(16),
            bytes_written: u64_at(24),
            compute_time: Duration::from_nanos(u64_at(32)),
            elapsed: Duration::from_nanos(u64_at(40)),
        })
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn nanos_since_epoch(t: SystemTime) -> u64 {
    nanos(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn day_of(t: SystemTime) -> u32 {
    (t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400) as u32
}

/// Sums of step records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Totals {
    /// Steps read from the cache.
    pub hits: u64,
    /// Steps computed, by reason (in the order of [`MissReason::ALL`]).
    pub misses_by_reason: [u64; 8],
    /// Bytes read from the cache.
    pub bytes_read: u64,
    /// Bytes written to the cache.
    pub bytes_written: u64,
    /// Time spent computing (misses).
    pub compute_time: Duration,
    /// Time saved: each hit's recorded compute time minus the hit's own time.
    pub saved: Duration,
    /// Time spent on hits.
    pub hit_time: Duration,
}

impl Totals {
    /// All misses.
    pub fn misses(&self) -> u64 {
        self.misses_by_reason.iter().sum()
    }

    /// Misses for `reason`.
    pub fn misses_for(&self, reason: MissReason) -> u64 {
        self.misses_by_reason[usize::from(reason.code() - 1)]
    }

    /// Hits over all steps; `None` without steps.
    pub fn hit_rate(&self) -> Option<f64> {
        let steps = self.hits + self.misses();
        (steps > 0).then(|| self.hits as f64 / steps as f64)
    }

    /// Adds one record.
    pub fn add(&mut self, record: &StepRecord) {
        match record.outcome {
            Outcome::Hit => {
                self.hits += 1;
                self.saved += record.compute_time.saturating_sub(record.elapsed);
                self.hit_time += record.elapsed;
            }
            Outcome::Miss(reason) => {
                self.misses_by_reason[usize::from(reason.code() - 1)] += 1;
                self.compute_time += record.compute_time;
            }
        }
        self.bytes_read += record.bytes_read;
        self.bytes_written += record.bytes_written;
    }

    /// Adds other totals.
    pub fn merge(&mut self, other: &Totals) {
        self.hits += other.hits;
        for (a, b) in self.misses_by_reason.iter_mut().zip(other.misses_by_reason) {
            *a += b;
        }
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.compute_time += other.compute_time;
        self.saved += other.saved;
        self.hit_time += other.hit_time;
    }
}

/// What a cache's statistics hold: recent records, and daily totals of the
/// folded ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records not folded yet, oldest first.
    pub records: Vec<StepRecord>,
    /// Totals of folded records, by day (days since the Unix epoch).
    pub days: BTreeMap<u32, Totals>,
}

impl Stats {
    /// The totals of steps since `since` (all with `None`): exact for
    /// recent records, by whole days for folded ones.
    pub fn totals(&self, since: Option<SystemTime>) -> Totals {
        let mut totals = Totals::default();
        let first_day = since.map_or(0, day_of);
        for (_, day) in self.days.range(first_day..) {
            totals.merge(day);
        }
        for record in &self.records {
            if since.is_none_or(|since| record.time >= since) {
                totals.add(record);
            }
        }
        totals
    }
}

/// A cache's statistics files.
#[derive(Debug, Clone)]
pub struct StatsLog {
    log: PathBuf,
    sum: PathBuf,
}

impl Store {
    /// This cache's statistics.
    pub fn stats_log(&self) -> StatsLog {
        StatsLog {
            log: self.layout().own("stats.log"),
            sum: self.layout().own("stats.sum"),
        }
    }
}

impl StatsLog {
    /// Appends a record; folds the log into daily totals when it is large
    /// and no one else is folding it.
    ///
    /// # Errors
    ///
    /// When the log cannot be opened or written.
    pub fn append(&self, record: &StepRecord) -> Result<()> {
        let len = self.append_locked(&record.encode())?;
        if len > LOG_FOLD_BYTES {
            // Best effort: another process may be folding, or the disk full.
            let _ = self.fold(false);
        }
        Ok(())
    }

    /// Writes `bytes` at the end of the log under a shared lock (a fold
    /// holds it exclusively while it empties the log). Returns the log's
    /// length after the write.
    fn append_locked(&self, bytes: &[u8]) -> Result<u64> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .op("open statistics log", &self.log)?;
        let lock = RwLock::new(file);
        let guard = lock.read().op("lock statistics log", &self.log)?;
        let mut file: &File = &guard;
        // One write: appends of 64 bytes are not split on local file systems.
        file.write_all(bytes)
            .op("write statistics log", &self.log)?;
        file.metadata()
            .map(|m| m.len())
            .op("read metadata of", &self.log)
    }

    /// Reads the records and the daily totals. Damaged records (a write cut
    /// short by a full disk) are skipped.
    ///
    /// # Errors
    ///
    /// When a file exists but cannot be read.
    pub fn read(&self) -> Result<Stats> {
        Ok(Stats {
            records: read_records(&self.log)?,
            days: self.read_days()?,
        })
    }

    fn read_days(&self) -> Result<BTreeMap<u32, Totals>> {
        match fs::read(&self.sum) {
            Ok(bytes) => Ok(unchecksummed(&bytes)
                .and_then(|body| rmp_serde::from_slice(body).ok())
                .unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).op("read statistics", &self.sum),
        }
    }

    /// Folds the log into the daily totals and empties it. With `wait`,
    /// waits for appenders; without, gives up if any holds the log.
    ///
    /// # Errors
    ///
    /// When the files cannot be read or written.
    pub fn fold(&self, wait: bool) -> Result<bool> {
        let file = match OpenOptions::new().read(true).write(true).open(&self.log) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).op("open statistics log", &self.log),
        };
        let mut lock = RwLock::new(file);
        let mut guard = if wait {
            lock.write().op("lock statistics log", &self.log)?
        } else {
            match lock.try_write() {
                Ok(guard) => guard,
                Err(_) => return Ok(false),
            }
        };
        let mut bytes = Vec::new();
        guard
            .read_to_end(&mut bytes)
            .op("read statistics log", &self.log)?;
        let mut days = self.read_days()?;
        for record in parse_records(&bytes) {
            days.entry(day_of(record.time)).or_default().add(&record);
        }
        write_file(
            &self.sum,
            &checksummed(
                // Plain data always serializes.
                rmp_serde::to_vec(&days).expect("daily totals serialize"),
            ),
        )?;
        // The totals now hold every record: empty the log while appenders
        // wait for the lock. (A crash between the two counts the folded
        // records twice; nothing is ever lost.)
        guard.set_len(0).op("empty statistics log", &self.log)?;
        Ok(true)
    }

    /// Removes every statistic.
    ///
    /// # Errors
    ///
    /// When a file exists but cannot be removed.
    pub fn reset(&self) -> Result<()> {
        for path in [&self.log, &self.sum] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).op("remove statistics", path),
            }
        }
        Ok(())
    }
}

fn read_records(path: &Path) -> Result<Vec<StepRecord>> {
    match fs::read(path) {
        Ok(bytes) => Ok(parse_records(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).op("read statistics log", path),
    }
}

/// Every whole record in `bytes`: a damaged one is skipped by looking for
/// the next that checks out.
fn parse_records(bytes: &[u8]) -> Vec<StepRecord> {
    let mut records = Vec::with_capacity(bytes.len() / RECORD_LEN);
    let mut at = 0;
    while at + RECORD_LEN <= bytes.len() {
        match StepRecord::decode(&bytes[at..at + RECORD_LEN]) {
            Some(record) => {
                records.push(record);
                at += RECORD_LEN;
            }
            None => at += 1,
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome, compute_ms: u64, elapsed_ms: u64) -> StepRecord {
        StepRecord::new(
            outcome,
            Duration::from_millis(compute_ms),
            Duration::from_millis(elapsed_ms),
        )
        .bytes(10, 20)
    }

    #[test]
    fn records_round_trip_and_damage_is_skipped() {
        let r = record(Outcome::Miss(MissReason::CodeChanged), 5, 6);
        assert_eq!(StepRecord::decode(&r.encode()), Some(r.clone()));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&r.encode());
        bytes.extend_from_slice(&r.encode()[..30]); // a write cut short
        bytes.extend_from_slice(&r.encode());
        let mut flipped = r.encode();
        flipped[20] ^= 1;
        bytes.extend_from_slice(&flipped);
        assert_eq!(parse_records(&bytes).len(), 2);
    }

    #[test]
    fn totals_count_hits_misses_by_reason_and_time_saved() {
        let mut t = Totals::default();
        t.add(&record(Outcome::Miss(MissReason::NewKey), 2000, 2000));
        t.add(&record(Outcome::Hit, 2000, 3));
        t.add(&record(Outcome::Hit, 2000, 7));
        t.add(&record(Outcome::Miss(MissReason::Expired), 100, 100));
        assert_eq!(t.hits, 2);
        assert_eq!(t.misses(), 2);
        assert_eq!(t.misses_for(MissReason::Expired), 1);
        assert_eq!(t.saved, Duration::from_millis(3990));
        assert_eq!(t.compute_time, Duration::from_millis(2100));
        assert_eq!(t.hit_rate(), Some(0.5));
        assert_eq!(t.bytes_written, 80);
    }

    #[test]
    fn folding_keeps_the_totals_and_bounds_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let log = store.stats_log();
        let n = (LOG_FOLD_BYTES / RECORD_LEN as u64) as usize + 10;
        for i in 0..n {
            let outcome = if i % 3 == 0 {
                Outcome::Miss(MissReason::NewKey)
            } else {
                Outcome::Hit
            };
            log.append(&record(outcome, 10, 1)).unwrap();
        }
        let len = fs::metadata(&log.log).unwrap().len();
        assert!(len < LOG_FOLD_BYTES, "folded: {len}");
        let totals = log.read().unwrap().totals(None);
        assert_eq!(totals.hits + totals.misses(), n as u64);
        assert_eq!(totals.misses(), n.div_ceil(3) as u64);
        // Folded records count by day for --since.
        let tomorrow = SystemTime::now() + Duration::from_secs(86_400);
        assert_eq!(log.read().unwrap().totals(Some(tomorrow)).hits, 0);
        log.reset().unwrap();
        assert_eq!(log.read().unwrap().totals(None), Totals::default());
    }

    #[test]
    fn many_processes_worth_of_appends_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let log = store.stats_log();
                std::thread::spawn(move || {
                    for _ in 0..3000 {
                        log.append(&record(Outcome::Hit, 1, 1)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.stats_log().read().unwrap().totals(None).hits, 24_000);
    }
}
