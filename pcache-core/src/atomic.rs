//! Atomic file creation: write a temporary file in the destination's
//! directory, then rename it over the destination.
//!
//! Nothing is `fsync`ed: rename is atomic with respect to other processes and
//! to a process being killed, which is what a build cache must survive. After
//! a power loss a file may be torn; the entry checksum turns that into a miss.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use filetime::FileTime;

use crate::error::{IoResultExt, Result};
use crate::layout::Layout;

/// A temporary file that is removed on drop unless it was persisted.
#[derive(Debug)]
pub(crate) struct TempFile {
    file: Option<File>,
    path: PathBuf,
}

impl TempFile {
    /// Creates a new temporary file for `stem` in the layout's directory,
    /// re-creating the directory if it was removed underneath us.
    pub(crate) fn create(layout: &Layout, stem: &str) -> Result<TempFile> {
        let mut recreated = false;
        loop {
            let path = layout.temp(stem);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        file: Some(file),
                        path,
                    });
                }
                // Left behind by a dead process that had our pid: pick another name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !recreated => {
                    recreated = true;
                    fs::create_dir_all(layout.dir()).op("create cache directory", layout.dir())?;
                }
                Err(e) => return Err(e).op("create temporary file", &path),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&mut self) -> &mut File {
        // Only `persist` takes the file, and it consumes `self`.
        self.file
            .as_mut()
            .expect("temporary file used after persist")
    }

    /// Writes all of `parts`, in order, with as few system calls as possible.
    pub(crate) fn write_parts(&mut self, parts: &[&[u8]]) -> Result<()> {
        let path = self.path.clone();
        // An empty slice would make `write_vectored` return 0, which reads
        // as `WriteZero`.
        let mut slices: Vec<IoSlice<'_>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| IoSlice::new(p))
            .collect();
        let mut slices = &mut slices[..];
        let file = self.file();
        while !slices.is_empty() {
            match file.write_vectored(slices) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)).op("write", &path),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).op("write", &path),
            }
        }
        Ok(())
    }

    /// Sets the file's mtime to `created` and renames it to `dest`.
    pub(crate) fn persist(self, dest: &Path, created: SystemTime) -> Result<()> {
        self.persist_open(dest, created).map(drop)
    }

    /// As [`persist`](TempFile::persist), returning the file still open
    /// where the platform allows renaming an open file (Unix), to learn its
    /// identity after the rename.
    pub(crate) fn persist_open(mut self, dest: &Path, created: SystemTime) -> Result<Option<File>> {
        let file = self.file.take().expect("temporary file persisted twice");
        filetime::set_file_handle_times(&file, None, Some(FileTime::from_system_time(created)))
            .op("set modification time of", &self.path)?;
        let file = if cfg!(unix) {
            Some(file)
        } else {
            drop(file);
            None
        };
        fs::rename(&self.path, dest).map_err(|source| crate::Error::Io {
            op: "rename temporary file to",
            path: dest.to_owned(),
            source,
        })?;
        // Renamed: nothing left to clean up.
        self.path = PathBuf::new();
        Ok(file)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            self.file = None;
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, then a
/// rename): a reader sees the old file, the new one or none.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("own");
    let mut tmp = TempFile::create(&Layout::new(dir.to_owned()), name)?;
    tmp.write_parts(&[bytes])?;
    tmp.persist(path, SystemTime::now())
}
