//! What build-script steps record about themselves in their cache
//! directory, for `cargo pcache stats` and `cargo pcache why`: one outcome
//! per step (statistics, the `stats` part), the parts of the key of every
//! entry in its notes (`parts`) and of the last miss, and the keys eviction
//! removed (`misses`).
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

mod misses;
mod parts;
mod stats;

pub use misses::LastMiss;
pub use parts::{CodeParts, EntryNotes, FileDigest, InputPart, KeyParts};
pub use stats::{LOG_FOLD_BYTES, MissReason, Outcome, Stats, StatsLog, StepRecord, Totals};

/// `body` followed by its CRC-32: the records' files (other than the log)
/// are whole or ignored.
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
