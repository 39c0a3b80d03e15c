//! `cache.toml`: what a cache is called and how long its entries live.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The metadata a cache directory records in its `cache.toml`, so that tools
/// such as `cargo pcache` can show readable names and flush by the right
/// expiry.
///
/// ```toml
/// name = "unicode-table"
/// package = "my-crate"
/// expiry_secs = 2592000
/// format = 1
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
