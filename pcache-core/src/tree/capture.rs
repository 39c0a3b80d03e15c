//! Capturing a directory as a tree.

use std::fs;
use std::io;
use std::path::{Component, Path};

use super::format::{Node, Tree, validate};
use crate::error::{Error, IoResultExt, Result};
use crate::places::continues_a_name;

impl Tree {
    /// Captures every directory, file and symlink under `root`, in sorted
    /// order. With a `place` (normally `root`'s own path as text), text files
    /// are stored without it, recording where it was, so that a restore can
    /// write its own place there; a symlink that points inside the tree by
    /// an absolute path starting with `place` is stored relative.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when reading fails, and [`Error::Unsafe`] for what a tree
    /// cannot hold: special files (sockets, devices, FIFOs), names that are
    /// not UTF-8, and symlinks that point out of the tree.
    pub fn capture(root: &Path, place: Option<&str>) -> Result<Tree> {
        let place = place
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty());
        let (mut nodes, mut contents) = (Vec::new(), Vec::new());
        walk(root, root, place, &mut nodes, &mut contents)?;
        validate(&nodes).map_err(|escape| Error::Unsafe {
            path: root.join(&escape.path),
            reason: escape.reason,
        })?;
        Ok(Tree::new(nodes, &contents))
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    place: Option<&str>,
    nodes: &mut Vec<Node>,
    contents: &mut Vec<Vec<u8>>,
) -> Result<()> {
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
            walk(root, &child, place, nodes, contents)?;
        } else if meta.is_file() {
            let bytes = fs::read(&child).op("read", &child)?;
            let (bytes, holes) = match place {
                Some(place) => cut_out(bytes, place),
                None => (bytes, Vec::new()),
            };
            nodes.push(Node::File {
                path: rel,
                executable: is_executable(&meta),
                len: bytes.len() as u64,
                holes,
            });
            contents.push(bytes);
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&child).op("read symlink", &child)?;
            let target = target.to_str().ok_or(Error::Unsafe {
                path: child.clone(),
                reason: "symlink target is not UTF-8",
            })?;
            let target = place
                .and_then(|place| relative_target(&rel, target, place))
                .unwrap_or_else(|| target.to_owned());
            nodes.push(Node::Symlink { path: rel, target });
        } else {
            return Err(Error::Unsafe {
                path: child,
                reason: "not a regular file, directory or symlink",
            });
        }
    }
    Ok(())
}

/// `bytes` without the occurrences of `place`, and where they were. Only
/// text (UTF-8 without NUL) is cut; only whole paths count (`/t/out` is not
/// in `/t/output`).
pub(super) fn cut_out(bytes: Vec<u8>, place: &str) -> (Vec<u8>, Vec<u64>) {
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return (bytes, Vec::new());
    };
    if text.contains('\0') || !text.contains(place) {
        return (bytes, Vec::new());
    }
    let mut kept = String::with_capacity(text.len());
    let mut holes = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(place) {
        let after = &rest[at + place.len()..];
        kept.push_str(&rest[..at]);
        if continues_a_name(after) {
            kept.push_str(place);
        } else {
            holes.push(kept.len() as u64);
        }
        rest = after;
    }
    kept.push_str(rest);
    (kept.into_bytes(), holes)
}

/// The target of the link at `link` (relative to the tree) made relative,
/// if it is an absolute path under `place`.
fn relative_target(link: &str, target: &str, place: &str) -> Option<String> {
    let inside = target.strip_prefix(place)?;
    let inside = match inside {
        "" => "",
        _ => inside.strip_prefix('/')?,
    };
    let depth = link.split('/').count() - 1;
    let mut relative = "../".repeat(depth);
    relative.push_str(inside);
    if relative.is_empty() {
        relative.push('.');
    }
    Some(relative.trim_end_matches('/').to_owned())
}

fn relative_string(root: &Path, path: &Path) -> Result<String> {
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
