//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::canonical::KeyError;

/// A specialized [`Result`](std::result::Result) for store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a store operation.
///
/// Every variant but [`Error::Key`] names the path it concerns (see
/// [`Error::path`]). A cache *miss* is never an error: lookups return
/// `Ok(None)` for it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    Io {
        /// What was being done, e.g. `"read entry"`.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry file failed a check (magic, version, length or checksum).
    ///
    /// The file has already been removed when this is returned: the next
    /// lookup of the same key is a plain miss.
    Corrupt {
        /// The entry file.
        path: PathBuf,
        /// Which check failed.
        reason: Corruption,
    },
    /// A value could not be serialized.
    Encode {
        /// The entry the value was meant for.
        path: PathBuf,
        /// The serializer's error.
        source: rmp_serde::encode::Error,
    },
    /// A stored value passed every integrity check but does not deserialize
    /// into the requested type (usually: the type changed since it was stored).
    ///
    /// The entry has already been removed when this is returned.
    Decode {
        /// The entry file.
        path: PathBuf,
        /// The requested Rust type.
        type_name: &'static str,
        /// The deserializer's error.
        source: rmp_serde::decode::Error,
    },
    /// A value is too large for the entry format (a byte value over 4 GiB).
    TooLarge {
        /// The entry the value was meant for.
        path: PathBuf,
        /// The value's size.
        size_bytes: u64,
    },
    /// Key material could not be serialized (a `Serialize` impl failed).
    /// The only variant without a path: no file was involved yet.
    Key(KeyError),
    /// `cache.toml` exists but cannot be parsed.
    Meta {
        /// The `cache.toml` file.
        path: PathBuf,
        /// The parser's error.
        source: toml::de::Error,
    },
    /// A file tree holds something pcache will not store or restore: a link
    /// out of the tree, a special file, a name that is not UTF-8, or, where
    /// a tree is restored, a symlink where a directory is expected.
    Unsafe {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
}

impl Error {
    /// The path the error concerns; `None` only for [`Error::Key`].
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::Corrupt { path, .. }
            | Error::Encode { path, .. }
            | Error::Decode { path, .. }
            | Error::TooLarge { path, .. }
            | Error::Meta { path, .. }
            | Error::Unsafe { path, .. } => Some(path),
            Error::Key(_) => None,
        }
    }

    /// What went wrong, without the path: for messages that print the path
    /// apart, such as `pcache: <cache>: <cause> (<path>)`.
    ///
    /// ```
    /// use std::path::PathBuf;
    /// let e = pcache_core::Error::Corrupt {
    ///     path: PathBuf::from("/c/0123"),
    ///     reason: pcache_core::Corruption::Truncated,
    /// };
    /// assert_eq!(e.to_string(), "corrupt entry `/c/0123`: file is truncated");
    /// assert_eq!(e.cause().to_string(), "corrupt entry: file is truncated");
    /// ```
    pub fn cause(&self) -> impl fmt::Display + '_ {
        Message {
            error: self,
            with_path: false,
        }
    }

    /// The underlying I/O error, if this is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The one place each message is written, with or without its path.
struct Message<'a> {
    error: &'a Error,
    with_path: bool,
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |f: &mut fmt::Formatter<'_>, path: &Path| {
            if self.with_path {
                write!(f, " `{}`", path.display())
            } else {
                Ok(())
            }
        };
        match self.error {
            Error::Io { op, path, source } => {
                write!(f, "failed to {op}")?;
                at(f, path)?;
                write!(f, ": {source}")
            }
            Error::Corrupt { path, reason } => {
                f.write_str("corrupt entry")?;
                at(f, path)?;
                write!(f, ": {reason}")
            }
            Error::Encode { path, source } => {
                f.write_str("failed to serialize the value")?;
                if self.with_path {
                    write!(f, " for `{}`", path.display())?;
                }
                write!(f, ": {source}")
            }
            Error::Decode {
                path,
                type_name,
                source,
            } => {
                f.write_str("stored value")?;
                at(f, path)?;
                write!(f, " does not deserialize as `{type_name}`: {source}")
            }
            Error::TooLarge { path, size_bytes } => {
                f.write_str("value")?;
                if self.with_path {
                    write!(f, " for `{}`", path.display())?;
                }
                write!(f, " is too large to store ({size_bytes} bytes)")
            }
            Error::Key(e) => write!(f, "failed to serialize key material: {e}"),
            Error::Meta { path, source } => {
                f.write_str("invalid cache metadata")?;
                at(f, path)?;
                write!(f, ": {}", source.message())
            }
            Error::Unsafe { path, reason } => {
                f.write_str("refusing")?;
                at(f, path)?;
                write!(f, ": {reason}")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Message {
            error: self,
            with_path: true,
        }
        .fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Encode { source, .. } => Some(source),
            Error::Decode { source, .. } => Some(source),
            Error::Meta { source, .. } => Some(source),
            Error::Key(e) => Some(e),
            Error::Corrupt { .. } | Error::TooLarge { .. } | Error::Unsafe { .. } => None,
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Error {
        Error::Key(e)
    }
}

/// Which integrity check an entry file failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The file is shorter than its header says.
    Truncated,
    /// The file is longer than its header says.
    TrailingData,
    /// The file does not start with the entry magic.
    BadMagic,
    /// The header's own checksum does not match.
    HeaderChecksum,
    /// The payload's checksum does not match.
    PayloadChecksum,
    /// The entry was written by a newer (or unknown) format version.
    UnsupportedVersion(u16),
    /// The entry holds a different kind of payload than the caller asked for.
    WrongKind {
        /// The kind the caller asked for.
        expected: u8,
        /// The kind the header records.
        found: u8,
    },
    /// The path is not a regular file (a directory, a symlink, a device…).
    NotAFile,
    /// The payload is structurally invalid for its kind.
    BadPayload(&'static str),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Truncated => f.write_str("file is truncated"),
            Corruption::TrailingData => f.write_str("file has trailing data"),
            Corruption::BadMagic => f.write_str("not a pcache entry (bad magic)"),
            Corruption::HeaderChecksum => f.write_str("header checksum mismatch"),
            Corruption::PayloadChecksum => f.write_str("payload checksum mismatch"),
            Corruption::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Corruption::WrongKind { expected, found } => {
                write!(f, "entry kind {found} where kind {expected} was expected")
            }
            Corruption::NotAFile => f.write_str("not a regular file"),
            Corruption::BadPayload(what) => write!(f, "invalid payload: {what}"),
        }
    }
}

/// Attaches an operation and a path to `io::Error`s.
pub(crate) trait IoResultExt<T> {
    fn op(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn op(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_names_its_path_once_and_its_cause_without_it() {
        let path = PathBuf::from("/cache/dir/entry");
        let errors = [
            Error::Io {
                op: "read entry",
                path: path.clone(),
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            },
            Error::Corrupt {
                path: path.clone(),
                reason: Corruption::Truncated,
            },
            Error::TooLarge {
                path: path.clone(),
                size_bytes: 5,
            },
            Error::Meta {
                path: path.clone(),
                source: toml::from_str::<toml::Table>("x = ").unwrap_err(),
            },
            Error::Unsafe {
                path: path.clone(),
                reason: "a symlink that points out of the tree",
            },
        ];
        for e in errors {
            let full = e.to_string();
            let cause = e.cause().to_string();
            assert_eq!(full.matches("/cache/dir/entry").count(), 1, "{full}");
            assert!(!cause.contains("/cache/dir/entry"), "{cause}");
            assert_eq!(e.path(), Some(path.as_path()));
        }
        let key = Error::Key(<KeyError as serde::ser::Error>::custom("bad"));
        assert_eq!(key.path(), None);
        assert_eq!(key.to_string(), key.cause().to_string());
    }
}
