//! Restoring a tree: in place (file by file, leaving identical files alone)
//! or exactly (the destination replaced as a whole by the tree).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::format::{Node, Tree};
use crate::error::{Error, IoResultExt, Result};

/// How a tree is restored.
///
/// ```
/// use pcache_core::tree::{Restore, Tree};
/// # let src = tempfile::tempdir()?;
/// # let out = tempfile::tempdir()?;
/// std::fs::write(src.path().join("lib.pc"), format!("prefix={}\n", src.path().display()))?;
/// let tree = Tree::capture(src.path(), src.path().to_str())?;
///
/// let dest = out.path().join("out");
/// std::fs::create_dir(&dest)?;
/// std::fs::write(dest.join("stale.o"), "from an older run")?;
/// Restore::exact().place(dest.to_str().unwrap()).run(&tree, &dest)?;
/// assert_eq!(std::fs::read_to_string(dest.join("lib.pc"))?, format!("prefix={}\n", dest.display()));
/// assert!(!dest.join("stale.o").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Restore<'a> {
    exact: bool,
    place: Option<&'a str>,
}

impl<'a> Restore<'a> {
    /// Writes the tree's nodes into the destination, keeping whatever else
    /// is there; a file already there with the same contents and mode is left
    /// alone (its mtime stays, so nothing that includes it rebuilds), and
    /// every other file is written atomically, so a reader never sees half of
    /// it.
    pub fn in_place() -> Restore<'a> {
        Restore::default()
    }

    /// Replaces the destination by the tree: the tree is written into a new
    /// directory beside it, which is then swapped in (atomically where the
    /// platform can exchange two paths, as Linux can). A process killed
    /// meanwhile leaves the old destination or the new, never a mix, and a
    /// directory beside it that the next exact restore removes.
    pub fn exact() -> Restore<'a> {
        Restore {
            exact: true,
            place: None,
        }
    }

    /// Writes `place` where the tree's text files named the place they were
    /// captured from.
    pub fn place(mut self, place: &'a str) -> Restore<'a> {
        self.place = Some(place.trim_end_matches('/'));
        self
    }

    /// Restores `tree` into `dest`; returns every path written, relative to
    /// `dest`, parents before children.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when writing fails; [`Error::Unsafe`] when the
    /// destination holds a file or symlink where the tree has a directory
    /// (nothing is written through it).
    pub fn run(self, tree: &Tree, dest: &Path) -> Result<Vec<PathBuf>> {
        self.run_from(
            &tree.nodes,
            Contents::Memory(tree.data()),
            dest,
            &mut || Ok(()),
        )
    }

    /// Restores the tree of `nodes`, whose files' contents come from
    /// `contents`, into `dest`. `before_use` runs once everything is
    /// written and before an exact restore swaps it in: its error (the
    /// source found changed) leaves the destination as it was.
    pub(crate) fn run_from(
        self,
        nodes: &[Node],
        contents: Contents<'_>,
        dest: &Path,
        before_use: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Vec<PathBuf>> {
        if !self.exact {
            fs::create_dir_all(dest).op("create directory", dest)?;
            let paths = write_nodes(nodes, contents, dest, self.place, true)?;
            before_use()?;
            return Ok(paths);
        }
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).op("create directory", parent)?;
        let name = dest
            .file_name()
            .map_or_else(|| "dest".into(), |n| n.to_string_lossy().into_owned());
        remove_abandoned(parent, &name);
        let staging = parent.join(format!(
            "{}{name}.{}.{}",
            STAGING,
            std::process::id(),
            next()
        ));
        fs::create_dir(&staging).op("create directory", &staging)?;
        let written = write_nodes(nodes, contents, &staging, self.place, false).and_then(|paths| {
            before_use()?;
            swap(&staging, dest)?;
            Ok(paths)
        });
        // The old destination after a swap; the half-written one on failure.
        let _ = fs::remove_dir_all(&staging);
        written
    }
}

/// The prefix of the directories exact restores write into.
const STAGING: &str = ".pcache-restore-";

fn next() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Removes staging directories beside `name` left by restores that were
/// killed (their pid is not running).
fn remove_abandoned(parent: &Path, name: &str) {
    let prefix = format!("{STAGING}{name}.");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !crate::sweep::process_running(pid)) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Puts `staging` where `dest` is, and what was at `dest` at `staging`.
fn swap(staging: &Path, dest: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        if let (Ok(from), Ok(to)) = (
            CString::new(staging.as_os_str().as_bytes()),
            CString::new(dest.as_os_str().as_bytes()),
        ) {
            // SAFETY: two NUL-terminated paths; renameat2 only reads them.
            let swapped = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            if swapped == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            // A missing destination, or a file system without exchange:
            // fall back to two renames.
            if !matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::EINVAL | libc::ENOSYS)
            ) {
                return Err(e).op("swap in restored directory", dest);
            }
        }
    }
    let old = staging.with_extension("old");
    match fs::rename(dest, &old) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).op("move aside", dest),
    }
    fs::rename(staging, dest).op("rename restored directory to", dest)?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Where the files' contents of a tree being restored are: one after the
/// other, in the order of the file nodes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Contents<'a> {
    /// In memory.
    Memory(&'a [u8]),
    /// In an open file, from `offset` on (an entry file: they are copied
    /// from it by the kernel where it can, never through this process).
    File { file: &'a fs::File, offset: u64 },
}

/// Writes every node under `dest`. `careful`: `dest` may hold files already
/// (leave identical ones, write atomically); else it is a new empty
/// directory of ours.
fn write_nodes(
    nodes: &[Node],
    contents: Contents<'_>,
    dest: &Path,
    place: Option<&str>,
    careful: bool,
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::with_capacity(nodes.len());
    let mut at = 0u64;
    for node in nodes {
        let rel = node.path();
        let target = dest.join(rel);
        if careful {
            ensure_real_dirs(dest, rel)?;
        }
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
            Node::File {
                executable,
                holes,
                len,
                ..
            } => {
                let start = at;
                at += len;
                let read;
                let bytes: &[u8] = match contents {
                    // `decode` checked that the lengths add up to the data.
                    Contents::Memory(data) => &data[start as usize..at as usize],
                    Contents::File { file, offset } if holes.is_empty() && !careful => {
                        copy_new_file(file, offset + start, *len, &target, *executable)?;
                        paths.push(PathBuf::from(rel));
                        continue;
                    }
                    Contents::File { file, offset } => {
                        read = read_range(file, offset + start, *len, &target)?;
                        &read
                    }
                };
                let filled;
                let bytes = if holes.is_empty() {
                    bytes
                } else {
                    filled = fill(bytes, holes, place.unwrap_or(""));
                    &filled[..]
                };
                if careful {
                    write_file_atomically(&target, bytes, *executable)?;
                } else {
                    write_new_file(&target, bytes, *executable)?;
                }
            }
            Node::Symlink { target: link, .. } => write_symlink(&target, link)?,
        }
        paths.push(PathBuf::from(rel));
    }
    Ok(paths)
}

/// `contents` with `place` written at each hole.
fn fill(contents: &[u8], holes: &[u64], place: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + holes.len() * place.len());
    let mut at = 0;
    for hole in holes {
        // `decode` checked that holes are in order and inside the file.
        let hole = *hole as usize;
        out.extend_from_slice(&contents[at..hole]);
        out.extend_from_slice(place.as_bytes());
        at = hole;
    }
    out.extend_from_slice(&contents[at..]);
    out
}

/// Every directory between `dest` and `dest/rel` must be a real directory,
/// not a symlink that could lead the write elsewhere.
fn ensure_real_dirs(dest: &Path, rel: &str) -> Result<()> {
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

/// Writes a file into a directory of our own, which nobody reads yet.
fn write_new_file(target: &Path, contents: &[u8], executable: bool) -> Result<()> {
    let mut file = create_new(target, executable)?;
    file.write_all(contents).op("write", target)
}

/// Writes a file into a directory of our own with the `len` bytes of `src`
/// at `offset`: copied by the kernel (`copy_file_range`) where it can.
fn copy_new_file(
    src: &fs::File,
    offset: u64,
    len: u64,
    target: &Path,
    executable: bool,
) -> Result<()> {
    let file = create_new(target, executable)?;
    let copied = copy_in_kernel(src, offset, len, &file).op("copy into", target)?;
    if copied < len {
        let rest = read_range(src, offset + copied, len - copied, target)?;
        (&file).write_all(&rest).op("write", target)?;
    }
    Ok(())
}

/// A new file with the mode a restore gives it, set as it is created (the
/// mode already excludes the umask's bits, which the kernel masks again).
fn create_new(target: &Path, executable: bool) -> Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode(executable));
    }
    #[cfg(not(unix))]
    let _ = executable;
    let file = options.open(target).op("create", target)?;
    // The kernel masks the umask's bits again: an `x` it masks (a umask
    // with 011, say) is set afterwards.
    #[cfg(unix)]
    if mode(executable) & current_umask() != 0 {
        set_mode(&file, target, executable)?;
    }
    Ok(file)
}

/// Copies up to `len` bytes of `src` at `offset` to the end of `dest`
/// without passing them through this process; returns how many were copied
/// (fewer when the kernel cannot: the caller copies the rest).
#[cfg(target_os = "linux")]
fn copy_in_kernel(src: &fs::File, offset: u64, len: u64, dest: &fs::File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut off_in = libc::loff_t::try_from(offset).map_err(io::Error::other)?;
    let mut copied = 0u64;
    while copied < len {
        let chunk = usize::try_from(len - copied)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        // SAFETY: two open descriptors, an offset we own, a null output
        // offset (the file position is used and advanced).
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dest.as_raw_fd(),
                std::ptr::null_mut(),
                chunk,
                0,
            )
        };
        match n {
            0 => break,
            n if n > 0 => copied += n as u64,
            _ => {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    // Not across these file systems, or not at all here:
                    // the caller copies the rest by reading.
                    Some(
                        libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::EPERM,
                    ) => break,
                    _ => return Err(e),
                }
            }
        }
    }
    Ok(copied)
}

#[cfg(not(target_os = "linux"))]
fn copy_in_kernel(_src: &fs::File, _offset: u64, _len: u64, _dest: &fs::File) -> io::Result<u64> {
    Ok(0)
}

/// The `len` bytes of `src` at `offset`; a short file is a truncated entry.
fn read_range(src: &fs::File, offset: u64, len: u64, target: &Path) -> Result<Vec<u8>> {
    let mut buf = vec![
        0u8;
        usize::try_from(len)
            .map_err(io::Error::other)
            .op("read for", target)?
    ];
    read_exact_at(src, &mut buf, offset).op("read entry for", target)?;
    Ok(buf)
}

#[cfg(unix)]
fn read_exact_at(src: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(src, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(src: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut src = src;
    src.seek(SeekFrom::Start(offset))?;
    src.read_exact(buf)
}

/// Writes atomically, so a reader (rustc `include!`ing the file) never sees
/// half of it. A file already there with the same contents and mode is left
/// as it is: rewriting it would only move its mtime and make rustc rebuild.
fn write_file_atomically(target: &Path, contents: &[u8], executable: bool) -> Result<()> {
    if is_already(target, contents, executable) {
        return Ok(());
    }
    if fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Unsafe {
            path: target.to_owned(),
            reason: "a file is expected here, not a directory",
        });
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".pcache-restore.{}.{}", std::process::id(), next()));
    let written = write_new_file(&tmp, contents, executable)
        .and_then(|()| fs::rename(&tmp, target).op("rename restored file to", target));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
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
fn set_mode(file: &fs::File, path: &Path, executable: bool) -> Result<()> {
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
fn set_mode(_file: &fs::File, _path: &Path, _executable: bool) -> Result<()> {
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
fn write_symlink(target: &Path, link: &str) -> Result<()> {
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
fn write_symlink(target: &Path, _link: &str) -> Result<()> {
    Err(Error::Unsafe {
        path: target.to_owned(),
        reason: "symlinks are restored on Unix only",
    })
}
