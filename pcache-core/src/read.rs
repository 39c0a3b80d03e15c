//! Opening and checking entry files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use crate::entry::{HEADER_LEN, Header, Kind};
use crate::error::{Corruption, Error, IoResultExt, Result};

/// What opening an entry found.
#[derive(Debug)]
pub(crate) enum Opened {
    Missing,
    /// The path exists but is not a regular file (a symlink, a directory…).
    NotAFile,
    File {
        file: File,
        len: u64,
    },
}

/// Opens an entry without following symlinks: a link in an entry's place is
/// corruption, never a redirect to some other file.
pub(crate) fn open(path: &Path) -> Result<Opened> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::Missing),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Opened::NotAFile),
        Err(e) => return Err(e).op("open entry", path),
    };
    let meta = file.metadata().op("read metadata of entry", path)?;
    if !meta.is_file() {
        return Ok(Opened::NotAFile);
    }
    Ok(Opened::File {
        file,
        len: meta.len(),
    })
}

/// Reads and checks the header of an open entry of `len` bytes; the file
/// position is left just after the header.
pub(crate) fn header(file: &mut File, len: u64, kind: Kind, path: &Path) -> Result<Header, Check> {
    let header = read_header(file, path)?;
    header.check(kind, len)?;
    Ok(header)
}

/// Like [`header`], for an entry of any kind.
pub(crate) fn any_header(file: &mut File, len: u64, path: &Path) -> Result<Header, Check> {
    let header = read_header(file, path)?;
    header.check_len(len)?;
    Ok(header)
}

fn read_header(file: &mut File, path: &Path) -> Result<Header, Check> {
    let mut bytes = [0u8; HEADER_LEN];
    let n = read_up_to(file, &mut bytes).op("read entry", path)?;
    Ok(Header::decode(&bytes[..n])?)
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A check that failed: either an I/O error or corruption.
#[derive(Debug)]
pub(crate) enum Check {
    Io(Error),
    Corrupt(Corruption),
}

impl From<Error> for Check {
    fn from(e: Error) -> Check {
        Check::Io(e)
    }
}

impl From<Corruption> for Check {
    fn from(c: Corruption) -> Check {
        Check::Corrupt(c)
    }
}

/// Removes the file at `path` if it is still the one that was opened as
/// `opened` (a concurrent writer may have renamed a fresh entry over it since).
pub(crate) fn remove_if_same(path: &Path, opened: Option<&File>) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let _ = fs::remove_dir_all(path);
        return;
    }
    if let Some(file) = opened {
        if !same_file(file, &meta) {
            return;
        }
    }
    let _ = fs::remove_file(path);
}

#[cfg(unix)]
fn same_file(file: &File, path_meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata()
        .is_ok_and(|m| m.dev() == path_meta.dev() && m.ino() == path_meta.ino())
}

#[cfg(not(unix))]
fn same_file(_file: &File, _path_meta: &fs::Metadata) -> bool {
    true
}
