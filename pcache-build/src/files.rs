//! File trees for [`cached_files`](crate::cached_files): captured from a
//! scratch directory, stored as one entry, restored into the destination.
//!
//! A tree is stored as one MessagePack `bin`: a magic tag, the length of an
//! index, the index (every directory, file and link, with each file's mode
//! and length), then the files' contents one after the other. A hit reads it
//! in one go and writes each file from its slice: bulk copies by std, fast
//! whatever the build profile. Files already in `dest` with the same
//! contents and mode are left alone, so their mtimes do not change and rustc
//! does not rebuild the crate that `include!`s them.
//!
//! A stored tree is validated when it is decoded, whoever wrote it: an
//! absolute path, a `..` or empty component, a symlink whose target leaves
//! the tree, or lengths that do not add up make the entry fail to decode,
//! which pcache treats as a corrupt entry (a miss and a warning). Restoring
//! never writes outside `dest` and never writes through a symlink.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

use crate::capture::Recorder;
use crate::error::{Error, IoResultExt};

/// What [`cached_files`](crate::cached_files) put into the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GeneratedFiles {
    /// Whether the files came from the cache rather than the generator.
    pub hit: bool,
    /// Every file, directory and link restored, relative to the destination,
    /// parents before children.
    pub paths: Vec<PathBuf>,
}

/// One node of a tree; paths are relative, `/`-separated. A file's
/// contents are the next `len` bytes of the tree's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Node {
    Dir {
        path: String,
    },
    File {
        path: String,
        executable: bool,
        len: u64,
    },
    Symlink {
        path: String,
        target: String,
    },
}

const TREE_MAGIC: [u8; 8] = *b"pctree1\0";

impl Node {
    fn path(&self) -> &str {
        match self {
            Node::Dir { path } | Node::File { path, .. } | Node::Symlink { path, .. } => path,
        }
    }
}

/// A validated file tree: its index, and its encoding, in which the files'
/// contents start at `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    bytes: Vec<u8>,
    data: usize,
}

impl Tree {
    /// A tree of `nodes`, with each file's contents in `contents` (in the
    /// order of the file nodes).
    fn new(nodes: Vec<Node>, contents: &[Vec<u8>]) -> Tree {
        // Plain data always serializes.
        let index = rmp_serde::to_vec(&nodes).expect("tree index serializes");
        let data_len: usize = contents.iter().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(12 + index.len() + data_len);
        bytes.extend_from_slice(&TREE_MAGIC);
        bytes.extend_from_slice(&(index.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&index);
        let data = bytes.len();
        for file in contents {
            bytes.extend_from_slice(file);
        }
        Tree { nodes, bytes, data }
    }

    /// Parses and validates an encoded tree.
    fn decode(bytes: Vec<u8>) -> Result<Tree, String> {
        let bad = |what: &str| format!("invalid stored file tree: {what}");
        if bytes.get(..8) != Some(&TREE_MAGIC[..]) {
            return Err(bad("no tree tag"));
        }
        let index_len = bytes
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("truncated"))? as usize;
        let data = 12usize
            .checked_add(index_len)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| bad("index past the end"))?;
        let nodes: Vec<Node> =
            rmp_serde::from_slice(&bytes[12..data]).map_err(|e| bad(&e.to_string()))?;
        validate(&nodes).map_err(|e| e.to_string())?;
        let lengths = nodes.iter().try_fold(0u64, |sum, node| match node {
            Node::File { len, .. } => sum.checked_add(*len),
            _ => Some(sum),
        });
        if lengths != Some((bytes.len() - data) as u64) {
            return Err(bad("file lengths do not add up"));
        }
        Ok(Tree { nodes, bytes, data })
    }

    /// Every node, with each file's contents.
    fn entries(&self) -> impl Iterator<Item = (&Node, &[u8])> {
        let mut at = self.data;
        self.nodes.iter().map(move |node| {
            let contents = match node {
                // `decode` checked that the lengths add up to the data.
                Node::File { len, .. } => {
                    let start = at;
                    at += *len as usize;
                    &self.bytes[start..at]
                }
                _ => &[][..],
            };
            (node, contents)
        })
    }
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.bytes)
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        let bytes = ByteBuf::deserialize(d)?.into_vec();
        Tree::decode(bytes).map_err(serde::de::Error::custom)
    }
}

/// A node that would leave the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Escape {
    path: String,
    reason: &'static str,
}

impl std::fmt::Display for Escape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` in a stored file tree: {}", self.path, self.reason)
    }
}

/// Checks that every path stays inside the tree.
fn validate(nodes: &[Node]) -> Result<(), Escape> {
    for node in nodes {
        let path = node.path();
        let reason = if !is_safe_relative(path) {
            "not a plain relative path (absolute, `..`, `.`, empty part or separator)"
        } else if matches!(node, Node::Symlink { target, .. } if !link_stays_inside(path, target)) {
            "a symlink that points out of the tree"
        } else {
            continue;
        };
        return Err(Escape {
            path: path.to_owned(),
            reason,
        });
    }
    Ok(())
}

/// Non-empty, relative, `/`-separated, with no `.`, `..` or empty component
/// and no backslash, colon or NUL (which other platforms read as separators
/// or drive prefixes).
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains(['\\', ':', '\0'])
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Whether `target`, resolved from the directory holding `link`, stays
/// inside the tree.
fn link_stays_inside(link: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains(['\\', ':', '\0']) {
        return false;
    }
    let mut depth = link.split('/').count() - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

/// Runs `generate` in a scratch directory beside `dest` and captures what
/// it wrote.
/// A user's generator, boxed so that the code around it is compiled once.
pub(crate) type Generator<'a> = Box<dyn FnOnce(&Path) -> io::Result<()> + 'a>;

pub(crate) fn generate(
    name: &str,
    dest: &Path,
    recorder: &Recorder,
    generate: Generator<'_>,
) -> Result<Tree, Error> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(std::env::temp_dir, Path::to_owned);
    fs::create_dir_all(&parent).op("create directory", &parent)?;
    let scratch = tempfile::Builder::new()
        .prefix(".pcache-scratch-")
        .tempdir_in(&parent)
        .op("create scratch directory in", &parent)?;
    // Directives naming the scratch directory name the destination: that is
    // where the files will be.
    recorder.alias(scratch.path());
    generate(scratch.path()).map_err(|source| Error::Generate {
        name: name.to_owned(),
        source,
    })?;
    let (mut nodes, mut contents) = (Vec::new(), Vec::new());
    capture(scratch.path(), scratch.path(), &mut nodes, &mut contents)?;
    validate(&nodes).map_err(|escape| Error::Unsafe {
        path: dest.join(&escape.path),
        reason: escape.reason,
    })?;
    Ok(Tree::new(nodes, &contents))
}

fn capture(
    root: &Path,
    dir: &Path,
    nodes: &mut Vec<Node>,
    contents: &mut Vec<Vec<u8>>,
) -> Result<(), Error> {
    let mut children = fs::read_dir(dir)
        .and_then(|rd| {
            rd.map(|e| e.map(|e| e.path()))
                .collect::<io::Result<Vec<_>>>()
        })
        .op("read directory", dir)?;
    children.sort();
    for child in children {
        let meta = fs::symlink_metadata(&child).op("read metadata of", &child)?;
        let rel = relative_string(root, &child)?;
        if meta.is_dir() {
            nodes.push(Node::Dir { path: rel });
            capture(root, &child, nodes, contents)?;
        } else if meta.is_file() {
            let bytes = fs::read(&child).op("read generated file", &child)?;
            nodes.push(Node::File {
                path: rel,
                executable: is_executable(&meta),
                len: bytes.len() as u64,
            });
            contents.push(bytes);
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&child).op("read symlink", &child)?;
            let target = target.to_str().ok_or(Error::Unsafe {
                path: child.clone(),
                reason: "symlink target is not UTF-8",
            })?;
            nodes.push(Node::Symlink {
                path: rel,
                target: target.to_owned(),
            });
        } else {
            return Err(Error::Unsafe {
                path: child,
                reason: "not a regular file, directory or symlink",
            });
        }
    }
    Ok(())
}

fn relative_string(root: &Path, path: &Path) -> Result<String, Error> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Option<Vec<&str>> = rel
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    parts.map(|p| p.join("/")).ok_or_else(|| Error::Unsafe {
        path: path.to_owned(),
        reason: "file name is not UTF-8",
    })
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

/// Writes `tree` into `dest`.
pub(crate) fn restore(tree: &Tree, dest: &Path, hit: bool) -> Result<GeneratedFiles, Error> {
    fs::create_dir_all(dest).op("create directory", dest)?;
    let mut paths = Vec::with_capacity(tree.nodes.len());
    for (node, contents) in tree.entries() {
        let rel = node.path();
        let target = dest.join(rel);
        ensure_real_dirs(dest, rel)?;
        match node {
            Node::Dir { .. } => match fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Unsafe {
                        path: target,
                        reason: "a directory is expected here",
                    });
                }
                Err(_) => fs::create_dir(&target).op("create directory", &target)?,
            },
            Node::File { executable, .. } => write_file(&target, contents, *executable)?,
            Node::Symlink { target: link, .. } => write_symlink(&target, link)?,
        }
        paths.push(PathBuf::from(rel));
    }
    Ok(GeneratedFiles { hit, paths })
}

/// Every directory between `dest` and `dest/rel` must be a real directory,
/// not a symlink that could lead the write elsewhere.
fn ensure_real_dirs(dest: &Path, rel: &str) -> Result<(), Error> {
    let mut dir = dest.to_owned();
    let mut parts = rel.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            break;
        }
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::Unsafe {
                    path: dir,
                    reason: "a directory is expected here, not a file or symlink",
                });
            }
            Err(_) => fs::create_dir(&dir).op("create directory", &dir)?,
        }
    }
    Ok(())
}

/// Writes atomically, so a reader (rustc `include!`ing the file) never sees
/// half of it. A file already there with the same contents and mode is left
/// as it is: rewriting it would only move its mtime and make rustc rebuild.
fn write_file(target: &Path, contents: &[u8], executable: bool) -> Result<(), Error> {
    if is_already(target, contents, executable) {
        return Ok(());
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".pcache-restore-")
        .tempfile_in(dir)
        .op("create temporary file in", dir)?;
    io::Write::write_all(&mut tmp, contents).op("write", tmp.path())?;
    set_mode(tmp.as_file(), tmp.path(), executable)?;
    if fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Unsafe {
            path: target.to_owned(),
            reason: "a file is expected here, not a directory",
        });
    }
    tmp.persist(target).map_err(|e| Error::Io {
        op: "rename restored file to",
        path: target.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// Whether `target` is a regular file (not a link) with exactly these
/// contents and the mode a restore would give it.
fn is_already(target: &Path, contents: &[u8], executable: bool) -> bool {
    let Ok(meta) = fs::symlink_metadata(target) else {
        return false;
    };
    if !meta.is_file() || meta.len() != contents.len() as u64 || !has_mode(&meta, executable) {
        return false;
    }
    // A comparison by std (memcmp), fast whatever the build profile.
    fs::read(target).is_ok_and(|current| current == contents)
}

/// Regular files get the mode a newly created file gets under the user's
/// umask; executables additionally get `x` wherever they have `r`, as
/// `chmod +x` would. Setuid, setgid and sticky bits are never restored.
#[cfg(unix)]
fn mode(executable: bool) -> u32 {
    let mut mode = 0o666 & !current_umask();
    if executable {
        mode |= (mode & 0o444) >> 2;
    }
    mode
}

#[cfg(unix)]
fn set_mode(file: &fs::File, path: &Path, executable: bool) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode(executable)))
        .op("set permissions of", path)
}

#[cfg(unix)]
fn has_mode(meta: &fs::Metadata, executable: bool) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777 == mode(executable)
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _path: &Path, _executable: bool) -> Result<(), Error> {
    Ok(())
}

#[cfg(not(unix))]
fn has_mode(_meta: &fs::Metadata, _executable: bool) -> bool {
    true
}

/// The process umask, read once from `/proc` where available (reading it
/// with `umask(2)` means setting it, which races with other threads); 022
/// else.
#[cfg(unix)]
fn current_umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022)
    })
}

#[cfg(unix)]
fn write_symlink(target: &Path, link: &str) -> Result<(), Error> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::Unsafe {
                path: target.to_owned(),
                reason: "a symlink is expected here, not a directory",
            });
        }
        Ok(_) => fs::remove_file(target).op("replace", target)?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(link, target).op("create symlink", target)
}

#[cfg(not(unix))]
fn write_symlink(target: &Path, _link: &str) -> Result<(), Error> {
    Err(Error::Unsafe {
        path: target.to_owned(),
        reason: "symlinks are restored on Unix only",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_rejected() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            "c:\\x",
            "a\\..\\b",
        ] {
            assert!(!is_safe_relative(bad), "{bad:?}");
        }
        for good in ["a", "a/b/c.rs", "..a", "a..b/c"] {
            assert!(is_safe_relative(good), "{good:?}");
        }
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(link_stays_inside("a/link", "../b"));
        assert!(link_stays_inside("a/b/link", "../../c"));
        assert!(link_stays_inside("link", "a/./b"));
        assert!(!link_stays_inside("link", "../x"));
        assert!(!link_stays_inside("a/link", "../../x"));
        assert!(!link_stays_inside("a/link", "/etc"));
        assert!(!link_stays_inside("a/link", ""));
    }

    #[cfg(unix)]
    #[test]
    fn each_refusal_says_what_is_wrong_with_which_path() {
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("out");
        let err = generate(
            "t",
            &dest,
            &Recorder::idle(),
            Box::new(|dir: &Path| std::os::unix::fs::symlink("../../etc", dir.join("up"))),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("points out of the tree"), "{message}");
        assert!(
            message.contains(&dest.join("up").display().to_string()),
            "{message}"
        );

        let nodes = vec![Node::Dir {
            path: "/abs".into(),
        }];
        let e = rmp_serde::from_slice::<Tree>(&stored(nodes, &[])).unwrap_err();
        assert!(e.to_string().contains("not a plain relative path"), "{e}");
        assert!(!e.to_string().contains("symlink"), "{e}");
    }

    /// The stored form of a tree, valid or not.
    fn stored(nodes: Vec<Node>, contents: &[Vec<u8>]) -> Vec<u8> {
        rmp_serde::to_vec(&Tree::new(nodes, contents)).unwrap()
    }

    fn file(path: &str, len: u64) -> Node {
        Node::File {
            path: path.into(),
            executable: false,
            len,
        }
    }

    #[test]
    fn decoding_a_tree_with_an_escaping_path_fails() {
        let bytes = stored(vec![file("../../escape", 1)], &[b"x".to_vec()]);
        assert!(rmp_serde::from_slice::<Tree>(&bytes).is_err());
        let nodes = vec![Node::Symlink {
            path: "l".into(),
            target: "../../etc/passwd".into(),
        }];
        assert!(rmp_serde::from_slice::<Tree>(&stored(nodes, &[])).is_err());
    }

    #[test]
    fn lengths_that_do_not_add_up_are_refused() {
        let ok = stored(
            vec![file("a", 2), file("b", 1)],
            &[b"xy".to_vec(), b"z".to_vec()],
        );
        let tree = rmp_serde::from_slice::<Tree>(&ok).unwrap();
        let contents: Vec<&[u8]> = tree.entries().map(|(_, c)| c).collect();
        assert_eq!(contents, [&b"xy"[..], b"z"]);
        for (lens, data) in [
            ((2, 2), &b"xyz"[..]),
            ((2, 0), b"xyz"),
            ((u64::MAX, 4), b"xyz"),
        ] {
            let bad = stored(vec![file("a", lens.0), file("b", lens.1)], &[data.to_vec()]);
            assert!(rmp_serde::from_slice::<Tree>(&bad).is_err(), "{lens:?}");
        }
        let mut no_tag = Tree::new(vec![], &[]).bytes;
        no_tag[0] = b'x';
        let bytes = rmp_serde::to_vec(&serde_bytes::ByteBuf::from(no_tag)).unwrap();
        assert!(rmp_serde::from_slice::<Tree>(&bytes).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn identical_files_in_dest_are_left_alone() {
        let dest = tempfile::tempdir().unwrap();
        let tree = Tree::new(
            vec![file("same.rs", 3), file("changed.rs", 3)],
            &[b"abc".to_vec(), b"new".to_vec()],
        );
        fs::write(dest.path().join("same.rs"), "abc").unwrap();
        fs::write(dest.path().join("changed.rs"), "old").unwrap();
        for name in ["same.rs", "changed.rs"] {
            use std::os::unix::fs::PermissionsExt;
            let path = dest.path().join(name);
            fs::set_permissions(&path, fs::Permissions::from_mode(mode(false))).unwrap();
            filetime::set_file_mtime(&path, filetime::FileTime::from_unix_time(1_000_000, 0))
                .unwrap();
        }
        restore(&tree, dest.path(), true).unwrap();
        let mtime = |name: &str| {
            filetime::FileTime::from_last_modification_time(
                &fs::metadata(dest.path().join(name)).unwrap(),
            )
            .unix_seconds()
        };
        assert_eq!(mtime("same.rs"), 1_000_000, "untouched");
        assert_ne!(mtime("changed.rs"), 1_000_000);
        assert_eq!(fs::read(dest.path().join("changed.rs")).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn capture_and_restore_round_trip_with_modes() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("out");
        let tree = generate(
            "t",
            &dest,
            &Recorder::idle(),
            Box::new(|dir: &Path| {
                fs::create_dir_all(dir.join("a/b"))?;
                fs::write(dir.join("a/b/deep.rs"), "pub const X: u8 = 1;")?;
                fs::write(dir.join("top.bin"), [0u8, 255, 7])?;
                fs::write(dir.join("run.sh"), "#!/bin/sh\n")?;
                fs::set_permissions(dir.join("run.sh"), fs::Permissions::from_mode(0o4755))?;
                std::os::unix::fs::symlink("a/b/deep.rs", dir.join("link.rs"))?;
                fs::create_dir(dir.join("empty"))
            }),
        )
        .unwrap();
        drop(src);
        let restored = restore(&tree, &dest, false).unwrap();
        assert_eq!(restored.paths.len(), 7);
        assert_eq!(
            fs::read(dest.join("a/b/deep.rs")).unwrap(),
            b"pub const X: u8 = 1;"
        );
        assert_eq!(fs::read(dest.join("top.bin")).unwrap(), [0, 255, 7]);
        assert_eq!(
            fs::read_link(dest.join("link.rs")).unwrap(),
            Path::new("a/b/deep.rs")
        );
        assert!(dest.join("empty").is_dir());
        let mode = fs::metadata(dest.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o100, 0, "executable bit restored");
        assert_eq!(mode & 0o6000, 0, "setuid/setgid never restored");
        assert_eq!(
            mode & 0o022 & !(0o666 & !current_umask()),
            0,
            "no write bits beyond the umask"
        );
        // The scratch directory is gone.
        let leftovers: Vec<_> = fs::read_dir(out.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, ["out"]);
    }

    #[cfg(unix)]
    #[test]
    fn restore_never_writes_through_a_symlinked_directory() {
        let outside = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dest.path().join("sub")).unwrap();
        let tree = Tree::new(vec![file("sub/x", 1)], &[b"x".to_vec()]);
        assert!(matches!(
            restore(&tree, dest.path(), true),
            Err(Error::Unsafe { .. })
        ));
        assert!(!outside.path().join("x").exists());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Mostly ordinary names, so most trees are accepted and restored;
        /// sometimes a part that must be rejected.
        fn path_part() -> impl Strategy<Value = String> {
            prop_oneof![
                12 => prop::sample::select(vec!["a", "b", "d.rs"]),
                1 => prop::sample::select(vec!["..", ".", "", "/", "\\", "c:", "\0"]),
            ]
            .prop_map(str::to_owned)
        }

        fn path() -> impl Strategy<Value = String> {
            prop::collection::vec(path_part(), 1..5).prop_map(|parts| parts.join("/"))
        }

        /// A node, and its contents if it is a file.
        fn node() -> impl Strategy<Value = (Node, Option<Vec<u8>>)> {
            prop_oneof![
                path().prop_map(|path| (Node::Dir { path }, None)),
                (
                    path(),
                    any::<bool>(),
                    prop::collection::vec(any::<u8>(), 0..8)
                )
                    .prop_map(|(path, executable, bytes)| (
                        Node::File {
                            path,
                            executable,
                            len: bytes.len() as u64,
                        },
                        Some(bytes)
                    )),
                (path(), path()).prop_map(|(path, target)| (Node::Symlink { path, target }, None)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Whatever a stored tree holds, restoring it writes nothing
            /// outside the destination.
            #[test]
            fn no_stored_tree_writes_outside_its_destination(nodes in prop::collection::vec(node(), 0..8)) {
                let (nodes, contents): (Vec<Node>, Vec<Option<Vec<u8>>>) = nodes.into_iter().unzip();
                let contents: Vec<Vec<u8>> = contents.into_iter().flatten().collect();
                let bytes = rmp_serde::to_vec(&Tree::new(nodes.clone(), &contents)).unwrap();
                let Ok(tree) = rmp_serde::from_slice::<Tree>(&bytes) else {
                    prop_assert!(validate(&nodes).is_err());
                    return Ok(());
                };
                let root = tempfile::tempdir().unwrap();
                let dest = root.path().join("sandbox/dest");
                fs::create_dir_all(&dest).unwrap();
                let _ = restore(&tree, &dest, true);
                let outside: Vec<_> = walk(root.path())
                    .into_iter()
                    .filter(|p| !p.starts_with(&dest) && p != &dest && !dest.starts_with(p))
                    .collect();
                prop_assert!(outside.is_empty(), "{outside:?} from {nodes:?}");
                for link in walk(&dest).into_iter().filter(|p| p.is_symlink()) {
                    let resolved = fs::canonicalize(&link);
                    if let Ok(resolved) = resolved {
                        let dest = fs::canonicalize(&dest).unwrap();
                        prop_assert!(resolved.starts_with(&dest), "{link:?} -> {resolved:?}");
                    }
                }
            }

            #[test]
            fn arbitrary_bytes_never_decode_into_an_unsafe_tree(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                if let Ok(tree) = rmp_serde::from_slice::<Tree>(&bytes) {
                    prop_assert!(validate(&tree.nodes).is_ok());
                }
            }
        }

        fn walk(dir: &Path) -> Vec<PathBuf> {
            let mut out = Vec::new();
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    out.extend(walk(&path));
                }
                out.push(path);
            }
            out
        }
    }
}
