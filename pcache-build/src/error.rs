//! The crate's one error type, for [`cached_files`](crate::cached_files).
//!
//! [`cached`](crate::cached) and [`cached_iter`](crate::cached_iter) have no
//! error of their own: cache failures become warnings, and
//! [`try_cached`](crate::try_cached) returns the closure's own error.

use std::io;
use std::path::{Path, PathBuf};

/// An error from [`cached_files`](crate::cached_files): the generator failed,
/// or the files could not be put into the destination.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The generating closure returned an error.
    #[error("generating files for cache `{name}` failed: {source}")]
    Generate {
        /// The cache name.
        name: String,
        /// The closure's error.
        #[source]
        source: io::Error,
    },
    /// A file-system operation on the scratch or destination directory failed.
    #[error("failed to {op} `{path}`: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The generated tree, or the destination, holds something pcache will
    /// not restore: a link out of the tree, a special file, or a symlink in
    /// the destination where a directory is expected.
    #[error("refusing `{path}`: {reason}")]
    Unsafe {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
}

impl From<pcache_core::Error> for Error {
    /// A file tree's trouble, from capturing or restoring it.
    fn from(e: pcache_core::Error) -> Error {
        match e {
            pcache_core::Error::Unsafe { path, reason } => Error::Unsafe { path, reason },
            pcache_core::Error::Io { op, path, source } => Error::Io { op, path, source },
            other => Error::Io {
                op: "store files",
                path: other.path().map(Path::to_owned).unwrap_or_default(),
                source: io::Error::other(other.cause().to_string()),
            },
        }
    }
}

pub(crate) trait IoResultExt<T> {
    fn op(self, op: &'static str, path: &std::path::Path) -> Result<T, Error>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn op(self, op: &'static str, path: &std::path::Path) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_owned(),
            source,
        })
    }
}
