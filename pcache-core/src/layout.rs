//! The only code that builds paths inside a cache directory.
//!
//! ```text
//! <dir>/cache.toml                 metadata (readable name, package, expiry)
//! <dir>/<key>                      one entry
//! <dir>/<key>.lock                 present only while a key is being computed
//! <dir>/<key>.seen                 verification record and last use (the `seen` module)
//! <dir>/.tmp.<key>.<pid>.<n>       a write in progress (or abandoned by a crash)
//! ```

use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Key;

/// The metadata file's name.
pub(crate) const META_FILE: &str = "cache.toml";
/// The cache's own files besides `cache.toml`: statistics and records (see
/// the `record` module).
const OWN_FILES: [&str; 4] = ["stats.log", "stats.sum", "last-miss", "evicted"];
const LOCK_SUFFIX: &str = ".lock";
const SEEN_SUFFIX: &str = ".seen";
const TEMP_PREFIX: &str = ".tmp.";

/// What a file found in a cache directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Entry(Key),
    Lock(Key),
    Seen(Key),
    Temp,
    /// `cache.toml` and the records of the `record` module.
    Own,
    Foreign,
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub(crate) fn new(dir: PathBuf) -> Layout {
        Layout { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn entry(&self, key: &Key) -> PathBuf {
        self.dir.join(key.to_string())
    }

    pub(crate) fn lock(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{key}{LOCK_SUFFIX}"))
    }

    pub(crate) fn seen(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{key}{SEEN_SUFFIX}"))
    }

    pub(crate) fn meta(&self) -> PathBuf {
        self.dir.join(META_FILE)
    }

    /// One of the cache's own files (see `OWN_FILES`).
    pub(crate) fn own(&self, name: &str) -> PathBuf {
        debug_assert!(OWN_FILES.contains(&name), "{name}");
        self.dir.join(name)
    }

    /// A fresh temporary path for a write of `stem`. Unique within this
    /// process; the pid separates processes, and a clash with a file left by
    /// a dead process of the same pid is caught by `create_new`.
    pub(crate) fn temp(&self, stem: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("{TEMP_PREFIX}{stem}.{}.{n}", process::id()))
    }

    /// The pid of the process that made the temporary file `name`.
    pub(crate) fn temp_writer(name: &str) -> Option<u32> {
        let rest = name.strip_prefix(TEMP_PREFIX)?;
        let mut parts = rest.rsplitn(3, '.');
        let (_n, pid, _stem) = (parts.next()?, parts.next()?, parts.next()?);
        pid.parse().ok()
    }

    pub(crate) fn classify(name: &str) -> FileKind {
        if name == META_FILE || OWN_FILES.contains(&name) {
            FileKind::Own
        } else if name.starts_with(TEMP_PREFIX) {
            FileKind::Temp
        } else if let Some(stem) = name.strip_suffix(LOCK_SUFFIX) {
            stem.parse().map_or(FileKind::Foreign, FileKind::Lock)
        } else if let Some(stem) = name.strip_suffix(SEEN_SUFFIX) {
            stem.parse().map_or(FileKind::Foreign, FileKind::Seen)
        } else {
            name.parse().map_or(FileKind::Foreign, FileKind::Entry)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_file_it_makes() {
        let layout = Layout::new(PathBuf::from("/c"));
        let key = Key::new("k").unwrap();
        let name = |p: PathBuf| p.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            Layout::classify(&name(layout.entry(&key))),
            FileKind::Entry(key)
        );
        assert_eq!(
            Layout::classify(&name(layout.lock(&key))),
            FileKind::Lock(key)
        );
        assert_eq!(
            Layout::classify(&name(layout.seen(&key))),
            FileKind::Seen(key)
        );
        assert_eq!(Layout::classify(&name(layout.temp("x"))), FileKind::Temp);
        assert_eq!(
            Layout::temp_writer(&name(layout.temp("stats.sum"))),
            Some(std::process::id())
        );
        assert_eq!(Layout::temp_writer(".tmp.x"), None);
        assert_eq!(Layout::temp_writer("abc"), None);
        assert_eq!(Layout::classify(&name(layout.meta())), FileKind::Own);
        assert_eq!(
            Layout::classify(&name(layout.own("stats.log"))),
            FileKind::Own
        );
        assert_eq!(Layout::classify("notes.txt"), FileKind::Foreign);
    }
}
