//! Content digests of files, remembered while the files are provably
//! unchanged, so a 650 KB header (a `file()` input of pcache-build) or a
//! package's sources (a dependency's build script's input) are not hashed
//! again on every run (hashing runs unoptimized in build scripts, at about
//! 100 MB/s).
//!
//! For each input, `<pcache root>/.inputs/<short id of its absolute path>`
//! records every file it covers: its relative path, its identity (device,
//! inode, size, mtime and ctime) and the digest of its content. A file whose
//! identity matches is not read again. As with entries (see pcache-core's
//! `seen` module), ctime is what user code cannot set, and a file is only
//! recorded once its last change is older than the racy window at the
//! hashing (one tick of the kernel's clock, measured, on local file
//! systems; see the `racy` module), so a change within the same clock tick
//! as the previous build is never missed: such a file is hashed on every
//! run until it settles. On network file systems nothing is remembered.
//!
//! The record carries a CRC-32; one that fails it, or does not decode, is
//! ignored (the input is hashed). Without a pcache root (outside a build
//! script), nothing is recorded.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::racy;

/// The identity of one version of a file: device, inode, size, mtime and
/// ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, u32),
    ctime: (i64, u32),
}

impl FileStamp {
    /// The identity of the file `meta` describes; `None` where there is no
    /// change time that user code cannot set (then nothing is remembered).
    #[cfg(unix)]
    pub fn of(meta: &fs::Metadata) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        Some(FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), u32::try_from(meta.mtime_nsec()).ok()?),
            ctime: (meta.ctime(), u32::try_from(meta.ctime_nsec()).ok()?),
        })
    }

    /// Without a change time that user code cannot set, nothing is
    /// remembered: always `None`.
    #[cfg(not(unix))]
    pub fn of(_meta: &fs::Metadata) -> Option<FileStamp> {
        None
    }

    /// Whether a digest of the file at `path` taken at `now` may be
    /// remembered.
    fn settled(&self, now: SystemTime, path: &Path) -> bool {
        let changed = self.ctime.max(self.mtime);
        let Ok(changed) = u64::try_from(changed.0).map(|s| Duration::new(s, changed.1)) else {
            return false;
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        racy::settled(changed, now, racy::window(dir, self.ctime.1))
    }
}

/// One file an input covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    path: String,
    stamp: FileStamp,
    digest: u128,
}

/// What was remembered for one input (a file, or a tree of them).
///
/// ```
/// use pcache_core::digests::Memo;
/// # let root = tempfile::tempdir()?;
/// # let dir = tempfile::tempdir()?;
/// let header = dir.path().join("wrapper.h");
/// std::fs::write(&header, "int answer(void);")?;
/// let mut memo = Memo::load(Some(root.path()), "file", &header);
/// let digest = memo.digest("", &header, &std::fs::metadata(&header)?)?;
/// memo.save();
/// assert_eq!(digest, xxhash_rust::xxh3::xxh3_128(b"int answer(void);"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Memo {
    record: Option<PathBuf>,
    known: Vec<Known>,
    /// Files hashed or confirmed this time, settled ones only.
    fresh: Vec<Known>,
    changed: bool,
    now: Option<SystemTime>,
}

impl Memo {
    /// The memo of the input `kind` (`"file"`, `"dir"`) at `path`, kept
    /// under `root` (`None`: nothing remembered).
    pub fn load(root: Option<&Path>, kind: &str, path: &Path) -> Memo {
        let Some(root) = root else {
            return Memo::default();
        };
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let name = crate::short_id(&format!("{kind}:{}", absolute.display()));
        let record = crate::conventions::inputs_dir(root).join(name);
        let known = fs::read(&record)
            .ok()
            .and_then(|bytes| decode(&bytes))
            .unwrap_or_default();
        Memo {
            record: Some(record),
            known,
            fresh: Vec::new(),
            changed: false,
            now: None,
        }
    }

    /// The digest of the file at `path` (`rel` within the input): the
    /// remembered one if its identity is unchanged, else its content's.
    pub fn digest(&mut self, rel: &str, path: &Path, meta: &fs::Metadata) -> std::io::Result<u128> {
        let stamp = FileStamp::of(meta);
        if let Some(stamp) = stamp {
            if let Some(known) = self
                .known
                .iter()
                .find(|k| k.path == rel && k.stamp == stamp)
            {
                let known = known.clone();
                let digest = known.digest;
                self.fresh.push(known);
                return Ok(digest);
            }
        }
        let digest = xxh3_128(&fs::read(path)?);
        let now = *self.now.get_or_insert_with(SystemTime::now);
        if let Some(stamp) = stamp.filter(|s| s.settled(now, path)) {
            self.fresh.push(Known {
                path: rel.to_owned(),
                stamp,
                digest,
            });
            self.changed = true;
        }
        Ok(digest)
    }

    /// Writes the record if anything new was learnt (or files went away).
    /// Best effort: a failure only costs hashing again next time.
    pub fn save(self) {
        let Some(record) = self.record else { return };
        if !self.changed && self.fresh.len() == self.known.len() {
            return;
        }
        let Some(dir) = record.parent() else { return };
        let _ = fs::create_dir_all(dir);
        let _ = crate::atomic::write_file(&record, &encode(&self.fresh));
    }
}

fn encode(known: &[Known]) -> Vec<u8> {
    // Plain data always serializes.
    let mut bytes = rmp_serde::to_vec(known).expect("digest records serialize");
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<Vec<Known>> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != *crc {
        return None;
    }
    rmp_serde::from_slice(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settled_files_are_remembered_and_records_are_checked() {
        let root = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.h");
        fs::write(&path, "int a;").unwrap();
        let meta = fs::metadata(&path).unwrap();

        // Just written: hashed, not remembered.
        let mut memo = Memo::load(Some(root.path()), "file", &path);
        let digest = memo.digest("", &path, &meta).unwrap();
        assert_eq!(digest, xxh3_128(b"int a;"));
        memo.save();
        assert!(
            Memo::load(Some(root.path()), "file", &path)
                .known
                .is_empty()
        );

        // Settled (as judged a minute later): remembered.
        let mut memo = Memo::load(Some(root.path()), "file", &path);
        memo.now = Some(SystemTime::now() + Duration::from_secs(60));
        memo.digest("", &path, &meta).unwrap();
        memo.save();
        let memo = Memo::load(Some(root.path()), "file", &path);
        assert_eq!(memo.known.len(), 1);
        assert_eq!(memo.known[0].digest, digest);

        // A damaged record is ignored.
        let record = memo.record.clone().unwrap();
        let mut bytes = fs::read(&record).unwrap();
        bytes[3] ^= 1;
        fs::write(&record, bytes).unwrap();
        assert!(
            Memo::load(Some(root.path()), "file", &path)
                .known
                .is_empty()
        );
    }

    #[test]
    fn an_input_changed_within_the_same_tick_as_the_last_build_is_hashed_again() {
        let root = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.h");
        for round in 0..20 {
            // A build hashes the file right after it was written…
            fs::write(&path, format!("int a{round:02};")).unwrap();
            let mtime =
                filetime::FileTime::from_last_modification_time(&fs::metadata(&path).unwrap());
            let mut memo = Memo::load(Some(root.path()), "file", &path);
            memo.digest("", &path, &fs::metadata(&path).unwrap())
                .unwrap();
            memo.save();
            // …and it changes again at once: same size, same mtime.
            fs::write(&path, format!("int b{round:02};")).unwrap();
            filetime::set_file_mtime(&path, mtime).unwrap();
            let mut memo = Memo::load(Some(root.path()), "file", &path);
            let digest = memo
                .digest("", &path, &fs::metadata(&path).unwrap())
                .unwrap();
            memo.save();
            assert_eq!(
                digest,
                xxh3_128(format!("int b{round:02};").as_bytes()),
                "round {round}"
            );
        }
    }

    #[test]
    fn a_file_changed_since_it_was_remembered_is_hashed_again() {
        let root = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.h");
        fs::write(&path, "int a;").unwrap();
        let mut memo = Memo::load(Some(root.path()), "file", &path);
        memo.now = Some(SystemTime::now() + Duration::from_secs(60));
        memo.digest("", &path, &fs::metadata(&path).unwrap())
            .unwrap();
        memo.save();
        // Same size, same mtime, new content: ctime moved.
        let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&path).unwrap());
        fs::write(&path, "int b;").unwrap();
        filetime::set_file_mtime(&path, mtime).unwrap();
        let mut memo = Memo::load(Some(root.path()), "file", &path);
        let digest = memo
            .digest("", &path, &fs::metadata(&path).unwrap())
            .unwrap();
        assert_eq!(digest, xxh3_128(b"int b;"));
    }
}
