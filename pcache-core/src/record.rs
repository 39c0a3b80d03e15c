//! What build-script steps record about themselves in their cache
//! directory, for `cargo pcache stats` and `cargo pcache why`: one outcome
//! per step (statistics), the parts of the key of every entry (in its
//! notes) and of the last miss, and the keys eviction removed.
//!
//! ```text
//! <dir>/stats.log     64-byte step records, appended
//! <dir>/stats.sum     older records folded into daily totals
//! <dir>/last-miss     the parts of the last miss's key, and why it missed
//! <dir>/evicted       keys removed to keep the size cap
//! ```
//!
//! # Statistics
//!
//! Each step appends one 64-byte record with a single `write` on a file
//! opened for appending, under a shared `flock`: records of concurrent
//! processes never interleave. When the log passes [`LOG_FOLD_BYTES`], the
//! step that notices folds it into per-day totals in `stats.sum` under an
//! exclusive lock it only tries to take, then empties the log: disk use is
//! bounded, and no step waits for another's fold. Totals are exact for what
//! was recorded; `--since` is exact for the log and by whole days for what
//! was folded.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use pcache_core::record::{MissReason, Outcome, StepRecord};
//!
//! # let dir = tempfile::tempdir()?;
//! let store = pcache_core::Store::open(dir.path())?;
//! let log = store.stats_log();
//! log.append(&StepRecord::new(Outcome::Miss(MissReason::NewKey), Duration::from_secs(3), Duration::from_secs(3)))?;
//! log.append(&StepRecord::new(Outcome::Hit, Duration::from_secs(3), Duration::from_millis(2)))?;
//! let totals = log.read()?.totals(None);
//! assert_eq!((totals.hits, totals.misses()), (1, 1));
//! assert_eq!(totals.saved, Duration::from_millis(2998));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fd_lock::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoResultExt, Result};
use crate::{Key, Store};

/// The log is folded into daily totals when it grows past this size
/// (16,384 records).
pub const LOG_FOLD_BYTES: u64 = 1 << 20;

/// At most this many evicted keys are remembered per cache.
const EVICTED_KEEP: usize = 4096;

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
        write_atomically(
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

fn checksummed(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// The body of a checksummed file, if its CRC-32 holds.
fn unchecksummed(bytes: &[u8]) -> Option<&[u8]> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    (crc32fast::hash(body).to_le_bytes() == *crc).then_some(body)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("own");
    let mut tmp =
        crate::atomic::TempFile::create(&crate::layout::Layout::new(dir.to_owned()), name)?;
    tmp.write_parts(&[bytes])?;
    tmp.persist(path, SystemTime::now())
}

/// A file an input covers: its path (relative to the input) and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileDigest {
    /// The path, relative to the input (empty for `file()` itself).
    pub path: String,
    /// The XXH3-128 digest of its contents.
    pub digest: u128,
}

/// One part of a step's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum InputPart {
    /// A `file()` input: its path and content digest (`None`: unreadable).
    File {
        /// As given to `file()`.
        path: String,
        /// Its content's digest.
        digest: Option<u128>,
    },
    /// A `dir()` input: its path, digest and every file in it.
    Dir {
        /// As given to `dir()`.
        path: String,
        /// The whole tree's digest.
        digest: u128,
        /// Every file, with its digest.
        files: Vec<FileDigest>,
    },
    /// An `env()` input: its name and the digest of its value (variables
    /// may hold secrets: never the value itself).
    Env {
        /// The variable's name.
        name: String,
        /// The digest of its value, `None` when unset.
        value_digest: Option<u128>,
    },
    /// Another input, by position among the top-level inputs.
    Other {
        /// Its position (0 for inputs that are not a tuple or a sequence).
        index: u32,
        /// The digest of its canonical serialization.
        digest: u128,
    },
}

/// The build script's code identity, in parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeParts {
    /// The whole identity, as in the key.
    pub digest: u128,
    /// Every source file of the build script, relative to the package.
    pub sources: Vec<FileDigest>,
    /// Locked versions of the build-dependencies.
    pub build_deps: Vec<(String, String)>,
    /// The digest of the `env!` values the build script was compiled with.
    pub env_digest: u128,
}

/// Everything a step's key is made of, by digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParts {
    /// pcache's entry format version.
    pub format: u16,
    /// `value`, `iter` or `files`.
    pub entry_point: String,
    /// The value's Rust type.
    pub type_name: String,
    /// The `TARGET` triple.
    pub target: String,
    /// The code identity; `None` for code-independent caches.
    pub code: Option<CodeParts>,
    /// The digest of all inputs.
    pub inputs_digest: u128,
    /// The inputs, part by part.
    pub inputs: Vec<InputPart>,
}

/// What pcache-build keeps in an entry's notes: the Cargo directives the
/// step printed, and its key's parts.
///
/// Encoded as a MessagePack map with named fields (so later versions can
/// add fields), the parts nested as an opaque `bin`: a hit, which needs the
/// directives alone, skips them without decoding them
/// ([`EntryNotes::directives`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryNotes {
    /// The directives, with paths made relative (pcache-build's encoding).
    pub directives: Vec<String>,
    /// The parts of the entry's key.
    pub parts: Option<KeyParts>,
}

/// The notes as stored.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default)]
    directives: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parts: Option<serde_bytes::ByteBuf>,
}

/// The notes' directives alone; any other field is skipped undecoded.
#[derive(Deserialize)]
struct DirectivesOnly {
    #[serde(default)]
    directives: Vec<String>,
}

impl EntryNotes {
    /// Notes with these directives and parts.
    pub fn new(directives: Vec<String>, parts: Option<KeyParts>) -> EntryNotes {
        EntryNotes { directives, parts }
    }

    /// The notes' bytes.
    pub fn encode(&self) -> Vec<u8> {
        let wire = Wire {
            directives: self.directives.clone(),
            // Plain data always serializes.
            parts: self.parts.as_ref().map(|parts| {
                serde_bytes::ByteBuf::from(
                    rmp_serde::to_vec_named(parts).expect("key parts serialize"),
                )
            }),
        };
        rmp_serde::to_vec_named(&wire).expect("entry notes serialize")
    }

    /// Notes from their bytes; empty bytes are empty notes. `None` if they
    /// do not decode.
    pub fn decode(bytes: &[u8]) -> Option<EntryNotes> {
        if bytes.is_empty() {
            return Some(EntryNotes::default());
        }
        let wire: Wire = rmp_serde::from_slice(bytes).ok()?;
        let parts = match wire.parts {
            Some(bytes) => Some(rmp_serde::from_slice(&bytes).ok()?),
            None => None,
        };
        Some(EntryNotes {
            directives: wire.directives,
            parts,
        })
    }

    /// The directives alone, without decoding the key's parts: what a hit
    /// needs.
    pub fn directives(bytes: &[u8]) -> Option<Vec<String>> {
        if bytes.is_empty() {
            return Some(Vec::new());
        }
        rmp_serde::from_slice::<DirectivesOnly>(bytes)
            .ok()
            .map(|d| d.directives)
    }
}

/// The last miss of a cache: what `cargo pcache why` explains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastMiss {
    /// When it happened.
    pub time: SystemTime,
    /// The key it missed (and then stored, unless storing failed).
    pub key: String,
    /// Why, as judged when it happened.
    pub reason: MissReason,
    /// Its key's parts.
    pub parts: KeyParts,
}

impl LastMiss {
    /// A miss of `key` now.
    pub fn new(key: &Key, reason: MissReason, parts: KeyParts) -> LastMiss {
        LastMiss {
            time: SystemTime::now(),
            key: key.to_string(),
            reason,
            parts,
        }
    }
}

impl Store {
    /// The cache's last miss, if one was recorded (and the record is whole).
    ///
    /// # Errors
    ///
    /// When the record exists but cannot be read.
    pub fn last_miss(&self) -> Result<Option<LastMiss>> {
        let path = self.layout().own("last-miss");
        match fs::read(&path) {
            Ok(bytes) => Ok(unchecksummed(&bytes).and_then(|b| rmp_serde::from_slice(b).ok())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).op("read last miss", &path),
        }
    }

    /// Records the cache's last miss (atomically replacing the previous).
    ///
    /// # Errors
    ///
    /// When it cannot be written.
    pub fn set_last_miss(&self, miss: &LastMiss) -> Result<()> {
        let bytes = rmp_serde::to_vec_named(miss).map_err(|source| Error::Encode {
            path: self.layout().own("last-miss"),
            source,
        })?;
        write_atomically(&self.layout().own("last-miss"), &checksummed(bytes))
    }

    /// Reads the notes of an entry without its payload: its key's parts and
    /// directives, for `why` (`None` if the entry is gone or damaged).
    pub fn entry_notes(&self, key: &Key) -> Option<Vec<u8>> {
        let path = self.entry_path(key);
        let crate::get::Opened::File { mut file, len, .. } = crate::get::open(&path).ok()? else {
            return None;
        };
        let header = crate::get::read_header(&mut file, len, None, &path).ok()?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(header.notes_offset())).ok()?;
        crate::get::read_notes(&mut file, &header, &path).ok()
    }

    /// Whether `key` was evicted (and not stored again since).
    pub fn was_evicted(&self, key: &Key) -> bool {
        let text = key.to_string();
        fs::read_to_string(self.layout().own("evicted"))
            .is_ok_and(|list| list.lines().any(|l| l == text))
    }

    /// Remembers that these keys were evicted, keeping the newest
    /// [`EVICTED_KEEP`].
    pub(crate) fn note_evicted(&self, keys: &[Key]) -> Result<()> {
        let path = self.layout().own("evicted");
        let mut list: Vec<String> = fs::read_to_string(&path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        list.extend(keys.iter().map(Key::to_string));
        let start = list.len().saturating_sub(EVICTED_KEEP);
        let mut text = list[start..].join("\n");
        text.push('\n');
        write_atomically(&path, text.as_bytes())
    }

    /// Forgets that `key` was evicted (it was stored again).
    pub fn forget_evicted(&self, key: &Key) {
        let path = self.layout().own("evicted");
        let Ok(list) = fs::read_to_string(&path) else {
            return;
        };
        let text = key.to_string();
        if list.lines().any(|l| l == text) {
            let kept: String = list
                .lines()
                .filter(|l| *l != text)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = write_atomically(&path, kept.as_bytes());
        }
    }
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

    #[test]
    fn notes_and_the_last_miss_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let parts = KeyParts {
            format: 3,
            entry_point: "value".into(),
            type_name: "u32".into(),
            target: "x".into(),
            code: Some(CodeParts::default()),
            inputs_digest: 7,
            inputs: vec![InputPart::Env {
                name: "SECRET".into(),
                value_digest: Some(9),
            }],
        };
        let notes = EntryNotes::new(vec!["cargo:rustc-cfg=x".into()], Some(parts.clone()));
        assert_eq!(EntryNotes::decode(&notes.encode()), Some(notes.clone()));
        assert_eq!(
            EntryNotes::directives(&notes.encode()),
            Some(vec!["cargo:rustc-cfg=x".to_owned()])
        );
        assert_eq!(EntryNotes::directives(b"\xc1garbage"), None);
        let key = Key::new("k").unwrap();
        assert_eq!(store.last_miss().unwrap(), None);
        let miss = LastMiss::new(&key, MissReason::InputsChanged, parts);
        store.set_last_miss(&miss).unwrap();
        assert_eq!(store.last_miss().unwrap(), Some(miss));
        assert!(!store.was_evicted(&key));
        store.note_evicted(&[key]).unwrap();
        assert!(store.was_evicted(&key));
        store.forget_evicted(&key);
        assert!(!store.was_evicted(&key));
    }
}

/// One way two keys differ, in a step's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "part", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Difference {
    /// pcache's entry format version.
    Format {
        /// In the stored entry.
        before: u16,
        /// In the miss.
        after: u16,
    },
    /// `value`, `iter` or `files`.
    EntryPoint {
        /// In the stored entry.
        before: String,
        /// In the miss.
        after: String,
    },
    /// The value's Rust type.
    TypeName {
        /// In the stored entry.
        before: String,
        /// In the miss.
        after: String,
    },
    /// The `TARGET` triple.
    Target {
        /// In the stored entry.
        before: String,
        /// In the miss.
        after: String,
    },
    /// One side was code-independent, the other not.
    CodeIndependence {
        /// Whether the miss was.
        independent: bool,
    },
    /// A build-script source file: changed, added or removed.
    Source {
        /// Relative to the package.
        path: String,
        /// Its digest in the stored entry (`None`: not a source then).
        #[serde(with = "hex_opt")]
        before: Option<u128>,
        /// Its digest in the miss (`None`: not a source any more).
        #[serde(with = "hex_opt")]
        after: Option<u128>,
    },
    /// A build-dependency's locked version.
    BuildDependency {
        /// The package.
        name: String,
        /// Its version in the stored entry.
        before: Option<String>,
        /// Its version in the miss.
        after: Option<String>,
    },
    /// The `env!` values the build script was compiled with.
    CompileEnv,
    /// A `file()` input's content (`None`: unreadable, or not an input).
    File {
        /// As given to `file()`.
        path: String,
        /// The content digest in the stored entry.
        #[serde(with = "hex_opt")]
        before: Option<u128>,
        /// The content digest in the miss.
        #[serde(with = "hex_opt")]
        after: Option<u128>,
    },
    /// A `dir()` input and the files in it that changed.
    Dir {
        /// As given to `dir()`.
        path: String,
        /// Each changed, added or removed file.
        files: Vec<FileChange>,
    },
    /// An `env()` input's value, by digest.
    Env {
        /// The variable.
        name: String,
        /// The value's digest in the stored entry (`None`: unset).
        #[serde(with = "hex_opt")]
        before: Option<u128>,
        /// The value's digest in the miss (`None`: unset).
        #[serde(with = "hex_opt")]
        after: Option<u128>,
    },
    /// Another input, by position among the top-level inputs.
    Input {
        /// Its position.
        index: u32,
        /// Its digest in the stored entry (`None`: absent).
        #[serde(with = "hex_opt")]
        before: Option<u128>,
        /// Its digest in the miss (`None`: absent).
        #[serde(with = "hex_opt")]
        after: Option<u128>,
    },
}

/// A file of a `dir()` input that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Relative to the directory.
    pub path: String,
    /// Its digest in the stored entry (`None`: absent).
    #[serde(with = "hex_opt")]
    pub before: Option<u128>,
    /// Its digest in the miss (`None`: absent).
    #[serde(with = "hex_opt")]
    pub after: Option<u128>,
}

mod hex_opt {
    pub(super) fn serialize<S: serde::Serializer>(
        v: &Option<u128>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&format!("{d:032x}")),
            None => s.serialize_none(),
        }
    }
}

fn short(d: Option<u128>) -> String {
    d.map_or_else(
        || "none".to_owned(),
        |d| format!("{:08x}", (d >> 96) as u32),
    )
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let change = |before: Option<u128>, after: Option<u128>, what: &str| match (before, after) {
            (None, Some(_)) => format!("{what} added"),
            (Some(_), None) => format!("{what} removed"),
            _ => format!("{what} changed ({} → {})", short(before), short(after)),
        };
        match self {
            Difference::Format { before, after } => {
                write!(f, "pcache's entry format changed ({before} → {after})")
            }
            Difference::EntryPoint { before, after } => {
                write!(f, "the step kind changed ({before} → {after})")
            }
            Difference::TypeName { before, after } => {
                write!(f, "the value type changed (`{before}` → `{after}`)")
            }
            Difference::Target { before, after } => {
                write!(f, "the target changed ({before} → {after})")
            }
            Difference::CodeIndependence { independent } => write!(
                f,
                "the cache became code-{}",
                if *independent {
                    "independent"
                } else {
                    "dependent"
                }
            ),
            Difference::Source {
                path,
                before,
                after,
            } => f.write_str(&change(
                *before,
                *after,
                &format!("build-script source `{path}`"),
            )),
            Difference::BuildDependency {
                name,
                before,
                after,
            } => match (before, after) {
                (Some(a), Some(b)) => write!(f, "build-dependency `{name}` {a} → {b}"),
                (None, Some(b)) => write!(f, "build-dependency `{name}` {b} added"),
                (Some(a), None) => write!(f, "build-dependency `{name}` {a} removed"),
                (None, None) => write!(f, "build-dependency `{name}` changed"),
            },
            Difference::CompileEnv => {
                f.write_str("the environment the build script was compiled with changed (env!)")
            }
            Difference::File {
                path,
                before,
                after,
            } => f.write_str(&change(*before, *after, &format!("file(\"{path}\")"))),
            Difference::Dir { path, files } => {
                write!(f, "dir(\"{path}\") changed: ")?;
                let listed: Vec<String> = files
                    .iter()
                    .take(10)
                    .map(|c| change(c.before, c.after, &c.path))
                    .collect();
                f.write_str(&listed.join(", "))?;
                if files.len() > 10 {
                    write!(f, " and {} more", files.len() - 10)?;
                }
                Ok(())
            }
            Difference::Env {
                name,
                before,
                after,
            } => match (before, after) {
                (None, Some(_)) => write!(f, "env(\"{name}\") is set now (unset before)"),
                (Some(_), None) => write!(f, "env(\"{name}\") is unset now"),
                _ => write!(
                    f,
                    "env(\"{name}\") changed (value digest {} → {})",
                    short(*before),
                    short(*after)
                ),
            },
            Difference::Input {
                index,
                before,
                after,
            } => f.write_str(&change(*before, *after, &format!("input #{index}"))),
        }
    }
}

/// How `after` (a miss's key) differs from `before` (a stored entry's).
/// The input helpers are named; other inputs are compared by position only
/// when no helper differs (a changed helper changes its position's digest
/// too).
pub fn differences(before: &KeyParts, after: &KeyParts) -> Vec<Difference> {
    let mut diffs = Vec::new();
    if before.format != after.format {
        diffs.push(Difference::Format {
            before: before.format,
            after: after.format,
        });
    }
    let mut text = |a: &String, b: &String, make: fn(String, String) -> Difference| {
        if a != b {
            diffs.push(make(a.clone(), b.clone()));
        }
    };
    text(&before.entry_point, &after.entry_point, |before, after| {
        Difference::EntryPoint { before, after }
    });
    text(&before.type_name, &after.type_name, |before, after| {
        Difference::TypeName { before, after }
    });
    text(&before.target, &after.target, |before, after| {
        Difference::Target { before, after }
    });
    match (&before.code, &after.code) {
        (Some(a), Some(b)) if a.digest != b.digest => code_differences(a, b, &mut diffs),
        (Some(_), None) => diffs.push(Difference::CodeIndependence { independent: true }),
        (None, Some(_)) => diffs.push(Difference::CodeIndependence { independent: false }),
        _ => {}
    }
    if before.inputs_digest != after.inputs_digest {
        input_differences(&before.inputs, &after.inputs, &mut diffs);
    }
    diffs
}

fn code_differences(a: &CodeParts, b: &CodeParts, diffs: &mut Vec<Difference>) {
    for (path, before, after) in by_path(&a.sources, &b.sources) {
        diffs.push(Difference::Source {
            path,
            before,
            after,
        });
    }
    let deps = |parts: &CodeParts| -> BTreeMap<String, String> {
        parts.build_deps.iter().cloned().collect()
    };
    let (da, db) = (deps(a), deps(b));
    for name in da
        .keys()
        .chain(db.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (before, after) = (da.get(name).cloned(), db.get(name).cloned());
        if before != after {
            diffs.push(Difference::BuildDependency {
                name: name.clone(),
                before,
                after,
            });
        }
    }
    if a.env_digest != b.env_digest {
        diffs.push(Difference::CompileEnv);
    }
}

/// The files of two lists that differ: `(path, before, after)`.
fn by_path(a: &[FileDigest], b: &[FileDigest]) -> Vec<(String, Option<u128>, Option<u128>)> {
    let index = |list: &[FileDigest]| -> BTreeMap<String, u128> {
        list.iter().map(|f| (f.path.clone(), f.digest)).collect()
    };
    let (ia, ib) = (index(a), index(b));
    let paths: std::collections::BTreeSet<&String> = ia.keys().chain(ib.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (before, after) = (ia.get(path).copied(), ib.get(path).copied());
            (before != after).then(|| (path.clone(), before, after))
        })
        .collect()
}

fn input_differences(before: &[InputPart], after: &[InputPart], diffs: &mut Vec<Difference>) {
    let start = diffs.len();
    let files = |parts: &[InputPart]| -> BTreeMap<String, Option<u128>> {
        parts
            .iter()
            .filter_map(|p| match p {
                InputPart::File { path, digest } => Some((path.clone(), *digest)),
                _ => None,
            })
            .collect()
    };
    let (fa, fb) = (files(before), files(after));
    for path in fa
        .keys()
        .chain(fb.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (b, a) = (
            fa.get(path).copied().flatten(),
            fb.get(path).copied().flatten(),
        );
        if fa.get(path) != fb.get(path) {
            diffs.push(Difference::File {
                path: path.clone(),
                before: b,
                after: a,
            });
        }
    }
    let dirs = |parts: &[InputPart]| -> BTreeMap<String, (u128, Vec<FileDigest>)> {
        parts
            .iter()
            .filter_map(|p| match p {
                InputPart::Dir {
                    path,
                    digest,
                    files,
                } => Some((path.clone(), (*digest, files.clone()))),
                _ => None,
            })
            .collect()
    };
    let (da, db) = (dirs(before), dirs(after));
    let empty = (0u128, Vec::new());
    for path in da
        .keys()
        .chain(db.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (a, b) = (
            da.get(path).unwrap_or(&empty),
            db.get(path).unwrap_or(&empty),
        );
        if a.0 != b.0 {
            let files = by_path(&a.1, &b.1)
                .into_iter()
                .map(|(path, before, after)| FileChange {
                    path,
                    before,
                    after,
                })
                .collect();
            diffs.push(Difference::Dir {
                path: path.clone(),
                files,
            });
        }
    }
    let envs = |parts: &[InputPart]| -> BTreeMap<String, Option<u128>> {
        parts
            .iter()
            .filter_map(|p| match p {
                InputPart::Env { name, value_digest } => Some((name.clone(), *value_digest)),
                _ => None,
            })
            .collect()
    };
    let (ea, eb) = (envs(before), envs(after));
    for name in ea
        .keys()
        .chain(eb.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if ea.get(name) != eb.get(name) {
            diffs.push(Difference::Env {
                name: name.clone(),
                before: ea.get(name).copied().flatten(),
                after: eb.get(name).copied().flatten(),
            });
        }
    }
    if diffs.len() > start {
        return;
    }
    let others = |parts: &[InputPart]| -> BTreeMap<u32, u128> {
        parts
            .iter()
            .filter_map(|p| match p {
                InputPart::Other { index, digest } => Some((*index, *digest)),
                _ => None,
            })
            .collect()
    };
    let (oa, ob) = (others(before), others(after));
    for index in oa
        .keys()
        .chain(ob.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (b, a) = (oa.get(index).copied(), ob.get(index).copied());
        if b != a {
            diffs.push(Difference::Input {
                index: *index,
                before: b,
                after: a,
            });
        }
    }
}

#[cfg(test)]
mod difference_tests {
    use super::*;

    fn parts() -> KeyParts {
        KeyParts {
            format: 3,
            entry_point: "files".into(),
            type_name: "Tree".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            code: Some(CodeParts {
                digest: 1,
                sources: vec![FileDigest {
                    path: "build.rs".into(),
                    digest: 10,
                }],
                build_deps: vec![("bindgen".into(), "0.72.0".into())],
                env_digest: 0,
            }),
            inputs_digest: 100,
            inputs: vec![
                InputPart::File {
                    path: "wrapper.h".into(),
                    digest: Some(5),
                },
                InputPart::Dir {
                    path: "proto".into(),
                    digest: 6,
                    files: vec![FileDigest {
                        path: "a.proto".into(),
                        digest: 7,
                    }],
                },
                InputPart::Env {
                    name: "TOKEN".into(),
                    value_digest: Some(8),
                },
                InputPart::Other {
                    index: 0,
                    digest: 9,
                },
            ],
        }
    }

    #[test]
    fn each_part_that_differs_is_named() {
        let before = parts();
        assert!(differences(&before, &before).is_empty());

        let mut after = parts();
        after.inputs_digest = 101;
        after.inputs[0] = InputPart::File {
            path: "wrapper.h".into(),
            digest: Some(55),
        };
        let d = differences(&before, &after);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].to_string().starts_with("file(\"wrapper.h\") changed"),
            "{}",
            d[0]
        );

        let mut after = parts();
        after.inputs_digest = 101;
        after.inputs[1] = InputPart::Dir {
            path: "proto".into(),
            digest: 66,
            files: vec![
                FileDigest {
                    path: "a.proto".into(),
                    digest: 7,
                },
                FileDigest {
                    path: "b.proto".into(),
                    digest: 8,
                },
            ],
        };
        assert_eq!(
            differences(&before, &after)[0].to_string(),
            "dir(\"proto\") changed: b.proto added"
        );

        let mut after = parts();
        after.inputs_digest = 101;
        after.inputs[2] = InputPart::Env {
            name: "TOKEN".into(),
            value_digest: Some(88),
        };
        let text = differences(&before, &after)[0].to_string();
        assert!(
            text.starts_with("env(\"TOKEN\") changed (value digest"),
            "{text}"
        );

        let mut after = parts();
        after.inputs_digest = 101;
        after.inputs[3] = InputPart::Other {
            index: 0,
            digest: 99,
        };
        assert!(matches!(
            differences(&before, &after)[0],
            Difference::Input { index: 0, .. }
        ));

        let mut after = parts();
        let code = after.code.as_mut().unwrap();
        code.digest = 2;
        code.build_deps = vec![("bindgen".into(), "0.72.1".into())];
        assert_eq!(
            differences(&before, &after)[0].to_string(),
            "build-dependency `bindgen` 0.72.0 → 0.72.1"
        );

        let mut after = parts();
        after.code.as_mut().unwrap().digest = 2;
        after.code.as_mut().unwrap().sources[0].digest = 11;
        after.type_name = "String".into();
        let d = differences(&before, &after);
        assert_eq!(d.len(), 2);
        assert!(d.iter().any(|d| matches!(d, Difference::TypeName { .. })));
        assert!(d.iter().any(|d| {
            d.to_string()
                .starts_with("build-script source `build.rs` changed")
        }));
    }
}
