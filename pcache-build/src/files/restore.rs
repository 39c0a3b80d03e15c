//! Restoring a file tree into its destination: atomically file by file,
//! leaving identical files alone, never through a symlink and never with
//! setuid or setgid bits.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::GeneratedFiles;
use super::tree::{Node, Tree};
use crate::error::{Error, IoResultExt};

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
pub(super) fn mode(executable: bool) -> u32 {
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
pub(super) fn current_umask() -> u32 {
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
