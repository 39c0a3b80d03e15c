//! `<key>.seen`: what pcache knows about an entry file beyond the file
//! itself — that it was verified, and when it was last used.
//!
//! # Verified once per version of the file
//!
//! Checking a large entry's CRC-32 costs more than reading it when the
//! checksum code runs unoptimized, as it does in build scripts under Cargo's
//! default profiles. So once an entry has been read and found whole, its
//! identity is recorded: device, inode, size and ctime. As long as the file
//! still has that identity, it is the very file that was verified, and its
//! payload is read without checksumming it again (the header's own checksum
//! is still checked on every read, and streams still check every frame).
//!
//! ctime cannot be set by user code: every write, truncation, rename over
//! the path or timestamp change (even one that restores the mtime) moves it
//! to the current time. Three cases need care, as git's index does:
//!
//! - **Racy entries.** The kernel's clock for ctime ticks coarsely, so a
//!   change within the same tick as the entry's creation could leave ctime
//!   unchanged. A record is therefore only written once the entry's ctime is
//!   older than the racy window (see the `racy` module: one tick of the
//!   clock, measured, on local file systems with fine timestamps; never on
//!   network file systems).
//! - **Written here.** The process that writes a large entry saw every byte
//!   of it: once the window has passed (a few milliseconds, waited for
//!   after the rename) and the renamed file still has the identity it had,
//!   it records it, so the first hit is as fast as the later ones.
//! - **Changes during the read.** The file's identity is taken again after
//!   the payload is read; if it moved, the bytes read are checksummed after
//!   all.
//!
//! # Last use
//!
//! The sidecar's mtime is the entry's last use, when the store records use
//! ([`Store::with_use_recording`](crate::Store::with_use_recording)):
//! eviction ranks by it without rewriting the entry.
//!
//! The record is 48 bytes: magic `pcs1`, four reserved bytes, device, inode,
//! size, ctime seconds (all u64 LE), ctime nanoseconds (u32 LE) and a CRC-32
//! of the 44 bytes before it. A torn or foreign record is simply not trusted.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::racy;

/// The longest racy window a writer waits for before recording what it
/// wrote; beyond it (whole-second timestamps), the first read verifies.
const WRITER_WAITS_AT_MOST: Duration = Duration::from_millis(50);

/// Entries at least this large are worth a record: below it, checksumming
/// costs less than reading the record.
pub(crate) const TRUST_MIN_BYTES: u64 = 64 * 1024;

const MAGIC: [u8; 4] = *b"pcs1";
const RECORD_LEN: usize = 48;

/// The identity of one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    ctime_secs: i64,
    ctime_nanos: u32,
}

impl Stamp {
    #[cfg(unix)]
    pub(crate) fn of(meta: &fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            ctime_secs: meta.ctime(),
            ctime_nanos: u32::try_from(meta.ctime_nsec()).ok()?,
        })
    }

    /// Without a change time that user code cannot set, nothing is trusted.
    #[cfg(not(unix))]
    pub(crate) fn of(_meta: &fs::Metadata) -> Option<Stamp> {
        None
    }

    fn ctime(&self) -> Duration {
        Duration::new(self.ctime_secs.max(0) as u64, self.ctime_nanos)
    }

    /// Whether a verification at `now` may be recorded for an entry in
    /// `dir`: the file's last change is older than the racy window.
    pub(crate) fn settled(&self, now: SystemTime, dir: &Path) -> bool {
        racy::settled(self.ctime(), now, racy::window(dir, self.ctime_nanos))
    }

    fn encode(&self) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[..4].copy_from_slice(&MAGIC);
        r[8..16].copy_from_slice(&self.dev.to_le_bytes());
        r[16..24].copy_from_slice(&self.ino.to_le_bytes());
        r[24..32].copy_from_slice(&self.size.to_le_bytes());
        r[32..40].copy_from_slice(&self.ctime_secs.to_le_bytes());
        r[40..44].copy_from_slice(&self.ctime_nanos.to_le_bytes());
        let crc = crc32fast::hash(&r[..44]);
        r[44..48].copy_from_slice(&crc.to_le_bytes());
        r
    }

    fn decode(r: &[u8]) -> Option<Stamp> {
        let r: &[u8; RECORD_LEN] = r.try_into().ok()?;
        let u64_at = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().unwrap_or([0; 4]));
        if r[..4] != MAGIC || crc32fast::hash(&r[..44]) != u32_at(44) {
            return None;
        }
        Some(Stamp {
            dev: u64_at(8),
            ino: u64_at(16),
            size: u64_at(24),
            ctime_secs: u64_at(32) as i64,
            ctime_nanos: u32_at(40),
        })
    }
}

/// An entry's sidecar, opened for one read of the entry.
#[derive(Debug)]
pub(crate) struct Seen {
    path: std::path::PathBuf,
    file: Option<File>,
    recorded: Option<Stamp>,
}

impl Seen {
    /// Opens the sidecar at `path`: for reading its record if `read_record`,
    /// and created for recording use if `record_use`. Any trouble means an
    /// empty sidecar: nothing trusted, nothing recorded.
    pub(crate) fn open(path: &Path, read_record: bool, record_use: bool) -> Seen {
        if !read_record && !record_use {
            return Seen {
                path: path.to_owned(),
                file: None,
                recorded: None,
            };
        }
        let mut file = if record_use {
            create(path)
        } else {
            OpenOptions::new().read(true).write(true).open(path).ok()
        }
        .or_else(|| OpenOptions::new().read(true).open(path).ok())
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
        let recorded = match (&mut file, read_record) {
            (Some(file), true) => {
                let mut record = [0u8; RECORD_LEN];
                file.read_exact(&mut record)
                    .ok()
                    .and_then(|()| Stamp::decode(&record))
            }
            _ => None,
        };
        Seen {
            path: path.to_owned(),
            file,
            recorded,
        }
    }

    /// Whether `stamp` is the version of the entry that was verified.
    pub(crate) fn trusts(&self, stamp: Option<Stamp>) -> bool {
        stamp.is_some() && self.recorded == stamp
    }

    /// Records that the entry with `stamp` was verified at `now`, if it has
    /// settled. Best effort: a failed record only costs a verification.
    pub(crate) fn record(&mut self, stamp: Option<Stamp>, now: SystemTime) {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let Some(stamp) = stamp.filter(|s| s.settled(now, dir) && self.recorded != Some(*s)) else {
            return;
        };
        if self.file.is_none() {
            self.file = create(&self.path);
        }
        let Some(file) = &mut self.file else { return };
        // One small write at offset 0: a concurrent reader sees the old
        // record, the new one, or a torn one that fails its checksum.
        if file.seek(SeekFrom::Start(0)).is_ok() && file.write_all(&stamp.encode()).is_ok() {
            self.recorded = Some(stamp);
        }
    }

    /// Records, for an entry this process has just written and renamed into
    /// place (`file`, still open), that its contents are whole: once the
    /// racy window has passed — waited for when it is short — and if the
    /// file still has the identity it had. `now` is the store's clock.
    pub(crate) fn record_written(path: &Path, file: &File, now: &dyn Fn() -> SystemTime) {
        let Some(stamp) = file.metadata().ok().as_ref().and_then(Stamp::of) else {
            return;
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let Some(window) = racy::window(dir, stamp.ctime_nanos) else {
            return;
        };
        if window > WRITER_WAITS_AT_MOST {
            return;
        }
        // Until the window has passed, by the fine clock and by the one
        // files are stamped from; never longer than a writer may wait.
        let waited = std::time::Instant::now();
        while !stamp.settled(now(), dir) {
            if waited.elapsed() > WRITER_WAITS_AT_MOST {
                return;
            }
            std::thread::sleep(window.min(Duration::from_millis(1)));
        }
        if file.metadata().ok().as_ref().and_then(Stamp::of) != Some(stamp) {
            return;
        }
        let mut seen = Seen {
            path: path.to_owned(),
            file: None,
            recorded: None,
        };
        seen.record(Some(stamp), now());
    }

    /// Sets the sidecar's mtime to `now`: the entry's last use.
    pub(crate) fn touch(&self, now: SystemTime) {
        if let Some(file) = &self.file {
            let _ = filetime::set_file_handle_times(
                file,
                None,
                Some(filetime::FileTime::from_system_time(now)),
            );
        }
    }
}

fn create(path: &Path) -> Option<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).ok()
}

/// An entry's last use: its sidecar's mtime, if it has one.
pub(crate) fn last_used(path: &Path) -> Option<SystemTime> {
    fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .and_then(|m| m.modified().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            ctime_secs: 1_700_000_000,
            ctime_nanos: 5,
        }
    }

    #[test]
    fn records_round_trip_and_any_damage_is_distrust() {
        let record = stamp().encode();
        assert_eq!(Stamp::decode(&record), Some(stamp()));
        for bit in 0..RECORD_LEN * 8 {
            let mut flipped = record;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(Stamp::decode(&flipped), Some(stamp()), "bit {bit}");
        }
        assert_eq!(Stamp::decode(&record[..40]), None);
    }

    #[test]
    fn only_settled_files_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let window = racy::window(dir.path(), 5).unwrap();
        let ctime = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert!(!stamp().settled(ctime, dir.path()));
        assert!(!stamp().settled(ctime + window - Duration::from_nanos(1), dir.path()));
        assert!(stamp().settled(ctime + window, dir.path()));
        assert!(
            !stamp().settled(ctime - Duration::from_secs(60), dir.path()),
            "clock behind"
        );
    }
}
