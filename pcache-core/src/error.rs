//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A specialized [`Result`](std::result::Result) for store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a store operation.
///
/// Every variant names the path it concerns. A cache *miss* is never an
/// error: lookups return `Ok(None)` for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("failed to {op} `{path}`: {source}")]
    Io {
        /// What was being done, e.g. `"read entry"`.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An entry file failed a check (magic, version, length or checksum).
    ///
    /// The file has already been removed when this is returned: the next
    /// lookup of the same key is a plain miss.
    #[error("corrupt entry `{path}`: {reason}")]
    Corrupt {
        /// The entry file.
        path: PathBuf,
        /// Which check failed.
        reason: Corruption,
    },
    /// A value could not be serialized.
    #[error("failed to serialize a value for `{path}`: {source}")]
    Encode {
        /// The entry the value was meant for.
        path: PathBuf,
        /// The serializer's error.
        #[source]
        source: rmp_serde::encode::Error,
    },
    /// A stored value passed every integrity check but does not deserialize
    /// into the requested type (usually: the type changed since it was stored).
    ///
    /// The entry has already been removed when this is returned.
    #[error("failed to deserialize `{path}` as `{type_name}`: {source}")]
    Decode {
        /// The entry file.
        path: PathBuf,
        /// The requested Rust type.
        type_name: &'static str,
        /// The deserializer's error.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// A value is too large for the entry format (a byte value over 4 GiB).
    #[error("value for `{path}` is too large to store ({size_bytes} bytes)")]
    TooLarge {
        /// The entry the value was meant for.
        path: PathBuf,
        /// The value's size.
        size_bytes: u64,
    },
    /// Key material could not be serialized (a `Serialize` impl failed).
    #[error("failed to serialize key material: {0}")]
    Key(#[from] crate::key::KeyError),
    /// `cache.toml` exists but cannot be parsed.
    #[error("invalid cache metadata `{path}`: {source}")]
    Meta {
        /// The `cache.toml` file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
}

impl Error {
    /// The path the error concerns.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::Corrupt { path, .. }
            | Error::Encode { path, .. }
            | Error::Decode { path, .. }
            | Error::TooLarge { path, .. }
            | Error::Meta { path, .. } => path,
            Error::Key(_) => Path::new(""),
        }
    }

    /// What went wrong, without the path: for messages that print the path
    /// apart, such as `pcache: <cache>: <cause> (<path>)`.
    pub fn cause(&self) -> String {
        match self {
            Error::Io { op, source, .. } => format!("failed to {op}: {source}"),
            Error::Corrupt { reason, .. } => format!("corrupt entry discarded: {reason}"),
            Error::Encode { source, .. } => format!("failed to serialize the value: {source}"),
            Error::Decode {
                type_name, source, ..
            } => format!("stored value no longer deserializes as `{type_name}`: {source}"),
            Error::TooLarge { size_bytes, .. } => {
                format!("value too large to store ({size_bytes} bytes)")
            }
            Error::Key(e) => format!("failed to serialize key material: {e}"),
            Error::Meta { source, .. } => format!("invalid cache metadata: {source}"),
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
