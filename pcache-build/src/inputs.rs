//! Input helpers: make keys follow what a step reads, and tell Cargo to
//! re-run the build script when it changes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Serialize, Serializer};
use xxhash_rust::xxh3::Xxh3;

use pcache_core::record::{FileDigest, InputPart};

use crate::env::Mode;
use crate::parts;
use crate::report::{self, Problem};
use crate::session::Session;
use pcache_core::digests::Memo;

/// A file's content as a key input; see [`file()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInput {
    path: PathBuf,
    digest: Option<u128>,
}

/// A directory tree's content as a key input; see [`dir()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirInput {
    path: PathBuf,
    digest: u128,
    /// Every file, with its digest: what `cargo pcache why` compares.
    files: Vec<FileDigest>,
}

/// An environment variable's value as a key input; see [`env()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvInput {
    name: String,
    value: Option<String>,
}

/// The content of the file at `path`, as a key input. Prints
/// `cargo:rerun-if-changed=<path>`.
///
/// The key follows the file's bytes, not its modification time and not its
/// path: a file generated into `OUT_DIR` (which differs between profiles)
/// keys the same wherever it is. A step whose output depends on the path
/// itself should add the path to its inputs. A missing file is an input too
/// (distinct from any content), and a warning.
///
/// The digest is remembered with the file's identity (device, inode, size,
/// mtime and ctime) under the pcache directory, so an unchanged file is not
/// read and hashed again on the next run; any change moves its ctime, and a
/// file changed within one tick of the kernel's file clock before being
/// hashed (a few milliseconds; always on network file systems) is hashed
/// again every time until it settles.
///
/// ```no_run
/// // build.rs
/// let header = pcache_build::file("wrapper.h");
/// let bindings: String = pcache_build::cached("bindings", (&header, "v1"), || {
///     std::fs::read_to_string("wrapper.h").unwrap().to_uppercase()
/// });
/// ```
pub fn file(path: impl AsRef<Path>) -> FileInput {
    let _timed = DigestTimer::start();
    let path = path.as_ref().to_owned();
    report::emit(&format!("cargo:rerun-if-changed={}", path.display()));
    let mut memo = Memo::load(memo_root().as_deref(), "file", &path);
    let digest = match fs::metadata(&path).and_then(|meta| memo.digest("", &path, &meta)) {
        Ok(digest) => Some(digest),
        Err(e) => {
            warn_input("file", &path, &e);
            None
        }
    };
    memo.save();
    FileInput { path, digest }
}

/// The content of every file under `path`, recursively, as a key input.
/// Prints `cargo:rerun-if-changed=<path>` (which Cargo applies to the whole
/// tree).
///
/// Paths relative to the directory and contents are hashed in sorted order,
/// so the key does not depend on directory listing order or on where the
/// directory is; symlinks count by their target, not followed.
pub fn dir(path: impl AsRef<Path>) -> DirInput {
    let _timed = DigestTimer::start();
    let path = path.as_ref().to_owned();
    report::emit(&format!("cargo:rerun-if-changed={}", path.display()));
    let mut hasher = Xxh3::new();
    let mut memo = Memo::load(memo_root().as_deref(), "dir", &path);
    let mut files = Vec::new();
    if let Err((at, e)) = hash_tree(&path, &path, &mut hasher, &mut memo, &mut files) {
        warn_input("dir", &at, &e);
        hasher.update(b"\0unreadable");
    }
    memo.save();
    DirInput {
        path,
        digest: hasher.digest128(),
        files,
    }
}

/// The value of the environment variable `name` (absent is a value too), as
/// a key input. Prints `cargo:rerun-if-env-changed=<name>`.
pub fn env(name: &str) -> EnvInput {
    report::emit(&format!("cargo:rerun-if-env-changed={name}"));
    EnvInput {
        name: name.to_owned(),
        value: crate::env::var(name),
    }
}

fn warn_input(helper: &str, path: &Path, e: &std::io::Error) {
    let problem = Problem::new(
        format!("{helper}() input unreadable: {e}"),
        Some(path.to_owned()),
    );
    report::emit(&report::warning_line(
        &format!("{helper}({})", path.display()),
        &[problem],
    ));
}

/// Where input digests are remembered: nowhere with `PCACHE=off` or
/// outside a build script.
fn memo_root() -> Option<PathBuf> {
    let session = Session::get();
    (session.mode != Mode::Off)
        .then(|| session.root.as_ref().ok().cloned())
        .flatten()
}

fn hash_tree(
    root: &Path,
    dir: &Path,
    hasher: &mut Xxh3,
    memo: &mut Memo,
    files: &mut Vec<FileDigest>,
) -> Result<(), (PathBuf, std::io::Error)> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .and_then(|rd| rd.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>())
        .map_err(|e| (dir.to_owned(), e))?;
    children.sort();
    for child in children {
        let rel = child.strip_prefix(root).unwrap_or(&child);
        let meta = fs::symlink_metadata(&child).map_err(|e| (child.clone(), e))?;
        hasher.update(rel.to_string_lossy().as_bytes());
        if meta.is_dir() {
            hasher.update(b"\0dir\0");
            hash_tree(root, &child, hasher, memo, files)?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&child).map_err(|e| (child.clone(), e))?;
            hasher.update(b"\0link\0");
            hasher.update(target.to_string_lossy().as_bytes());
        } else {
            let rel = rel.to_string_lossy().into_owned();
            let digest = memo
                .digest(&rel, &child, &meta)
                .map_err(|e| (child.clone(), e))?;
            hasher.update(b"\0file\0");
            hasher.update(&digest.to_le_bytes());
            files.push(FileDigest { path: rel, digest });
        }
    }
    Ok(())
}

// Each helper also tells the step it is among its inputs, so that a miss
// can name it.

impl Serialize for FileInput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        parts::note_helper(InputPart::File {
            path: self.path.display().to_string(),
            digest: self.digest,
        });
        ("file", self.digest).serialize(s)
    }
}

impl Serialize for DirInput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        parts::note_helper(InputPart::Dir {
            path: self.path.display().to_string(),
            digest: self.digest,
            files: self.files.clone(),
        });
        ("dir", self.digest).serialize(s)
    }
}

impl Serialize for EnvInput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The value may be a secret: only its digest leaves the key.
        parts::note_helper(InputPart::Env {
            name: self.name.clone(),
            value_digest: self
                .value
                .as_deref()
                .map(|v| xxhash_rust::xxh3::xxh3_128(v.as_bytes())),
        });
        ("env", &self.name, &self.value).serialize(s)
    }
}

/// Nanoseconds `file()` and `dir()` spent since the last step took them,
/// for `PCACHE_TRACE`'s "input digests".
static DIGEST_NANOS: AtomicU64 = AtomicU64::new(0);

/// Adds the time until it is dropped to [`DIGEST_NANOS`].
struct DigestTimer(std::time::Instant);

impl DigestTimer {
    fn start() -> DigestTimer {
        DigestTimer(std::time::Instant::now())
    }
}

impl Drop for DigestTimer {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        DIGEST_NANOS.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The time input digests took since the last call.
pub(crate) fn take_digest_time() -> std::time::Duration {
    std::time::Duration::from_nanos(DIGEST_NANOS.swap(0, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcache_core::Key;

    #[test]
    fn file_keys_follow_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.h");
        fs::write(&path, "int a;").unwrap();
        let a = Key::new(&file(&path)).unwrap();
        assert_eq!(Key::new(&file(&path)).unwrap(), a);
        fs::write(&path, "int b;").unwrap();
        assert_ne!(Key::new(&file(&path)).unwrap(), a);
        // The same bytes elsewhere are the same input.
        let copy = dir.path().join("copy.h");
        fs::write(&copy, "int b;").unwrap();
        assert_eq!(
            Key::new(&file(&copy)).unwrap(),
            Key::new(&file(&path)).unwrap()
        );
        fs::remove_file(&path).unwrap();
        assert_eq!(file(&path).digest, None);
    }

    #[test]
    fn dir_keys_follow_every_file_in_the_tree() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("sub/deeper")).unwrap();
        fs::write(tmp.path().join("sub/deeper/x.txt"), "1").unwrap();
        fs::write(tmp.path().join("top.txt"), "2").unwrap();
        let a = dir(tmp.path()).digest;
        assert_eq!(dir(tmp.path()).digest, a);
        fs::write(tmp.path().join("sub/deeper/x.txt"), "3").unwrap();
        let b = dir(tmp.path()).digest;
        assert_ne!(a, b);
        fs::rename(tmp.path().join("top.txt"), tmp.path().join("renamed.txt")).unwrap();
        assert_ne!(dir(tmp.path()).digest, b);
    }

    #[test]
    fn env_keys_follow_the_value() {
        // Read-only: setting variables races with other test threads.
        // Cargo sets CARGO_PKG_NAME for test binaries too.
        assert_eq!(env("CARGO_PKG_NAME").value.as_deref(), Some("pcache-build"));
        assert_eq!(env("PCACHE_BUILD_TEST_NEVER_SET").value, None);
        assert_ne!(
            Key::new(&env("CARGO_PKG_NAME")).unwrap(),
            Key::new(&env("PCACHE_BUILD_TEST_NEVER_SET")).unwrap()
        );
    }
}
