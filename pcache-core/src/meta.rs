//! `cache.toml`: what a cache is called and how long its entries live.

use std::fs;
use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Store;
use crate::atomic::TempFile;
use crate::error::{Error, IoResultExt, Result};
use crate::layout::META_FILE;

/// The metadata a cache directory records in its `cache.toml`, so that tools
/// such as `cargo pcache` can show readable names and flush by the right
/// expiry.
///
/// ```toml
/// name = "unicode-table"
/// package = "my-crate"
/// expiry_secs = 2592000
/// format = 2
/// ```
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use pcache_core::{CacheMeta, Store};
/// let store = Store::open(dir.path())?;
/// assert_eq!(store.meta()?, None);
/// let meta = CacheMeta::new("unicode-table").package("my-crate");
/// store.write_meta(&meta)?;
/// assert_eq!(store.meta()?, Some(meta));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CacheMeta {
    /// The readable cache name (the directory itself is named by its hash).
    pub name: String,
    /// The Cargo package whose build script owns the cache, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Entries older than this many seconds are expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_secs: Option<u64>,
    /// The entry format version of the writer.
    #[serde(default = "format_version")]
    pub format: u16,
}

fn format_version() -> u16 {
    crate::FORMAT_VERSION
}

impl CacheMeta {
    /// Metadata for a cache called `name`, with no package and no expiry.
    pub fn new(name: impl Into<String>) -> CacheMeta {
        CacheMeta {
            name: name.into(),
            package: None,
            expiry_secs: None,
            format: crate::FORMAT_VERSION,
        }
    }

    /// Sets the owning package.
    pub fn package(mut self, package: impl Into<String>) -> CacheMeta {
        self.package = Some(package.into());
        self
    }

    /// Sets the expiry.
    pub fn expiry(mut self, expiry: Option<Duration>) -> CacheMeta {
        self.expiry_secs = expiry.map(|d| d.as_secs());
        self
    }

    /// The expiry as a `Duration`.
    pub fn expiry_duration(&self) -> Option<Duration> {
        self.expiry_secs.map(Duration::from_secs)
    }
}

impl Store {
    /// Reads `cache.toml`; `Ok(None)` if there is none.
    ///
    /// # Errors
    ///
    /// Fails if it exists but cannot be read or parsed.
    pub fn meta(&self) -> Result<Option<CacheMeta>> {
        let path = self.layout().meta();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).op("read cache metadata", &path),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|source| Error::Meta { path, source })
    }

    /// Writes `cache.toml` atomically, unless it already says the same.
    ///
    /// # Errors
    ///
    /// Fails if it cannot be written.
    pub fn write_meta(&self, meta: &CacheMeta) -> Result<()> {
        let path = self.layout().meta();
        // Serializing a struct of strings and integers to TOML cannot fail.
        let text = toml::to_string(meta).expect("CacheMeta serializes to TOML");
        // Comparing bytes is cheaper than parsing, and this runs on every
        // build-script step.
        if fs::read(&path).is_ok_and(|current| current == text.as_bytes()) {
            return Ok(());
        }
        let mut tmp = TempFile::create(self.layout(), META_FILE)?;
        tmp.write_parts(&[text.as_bytes()])?;
        tmp.persist(&path, self.now())
    }
}
