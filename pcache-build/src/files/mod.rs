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

mod restore;
#[cfg(test)]
mod tests;
mod tree;

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

pub(crate) use restore::restore;
pub(crate) use tree::Tree;
use tree::{Node, validate};

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
