//! The remote tier's rules, which pcache-build (deciding when to go to the
//! remote) and `cargo pcache` (talking to it) must apply identically: the
//! configuration variables and settings (here), how a remote is named
//! without its secrets (`url`), where an entry lives remotely (`entry`), and
//! how a build script and the helper that holds the storage client talk,
//! including the files under the pcache directory through which builds
//! share what they learned about the remote (`protocol`).
//!
//! ```
//! use pcache_core::remote::{Access, Backend, EntryName, RemoteSettings};
//!
//! let vars = |name: &str| match name {
//!     "PCACHE_REMOTE" => Some("webdav+https://ci:s3cret@dav.example.com/pcache".to_owned()),
//!     "PCACHE_REMOTE_MODE" => Some("read".to_owned()),
//!     _ => None,
//! };
//! let settings = RemoteSettings::from_vars(vars)?.expect("configured");
//! assert_eq!(settings.url.backend(), Backend::Webdav);
//! assert_eq!(settings.access, Access::Read);
//! // Shown without its credentials, wherever it is shown.
//! assert_eq!(settings.url.redacted(), "webdav+https://***@dav.example.com/pcache");
//!
//! // An entry's remote key: its place under the pcache directory, with the
//! // format version, never a machine path.
//! let entry = EntryName::parse("my-sys/3f2a9c1d0b7e6a5f9/00112233445566778899aabbccddeeff2a")?;
//! assert_eq!(
//!     entry.remote_key(),
//!     "v3/my-sys/3f2a9c1d0b7e6a5f9/00112233445566778899aabbccddeeff2a"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod entry;
mod protocol;
pub mod signature;
mod url;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use client::RemoteClient;
pub use entry::{EntryName, EntryNameError, remote_cache_prefix, remote_prefix};
pub use protocol::{
    HELPER_PROTOCOL, HelperAction, HelperReply, HelperRequest, HelperStatus, Marker, NotAReply,
    ProtocolError,
};
pub use url::RemoteUrl;

/// The remote tier's variables, defined with every other setting in
/// [`config`](crate::config).
pub use crate::config::{
    HELPER_VAR, MODE_VAR, REMOTE_VAR, REQUIRED_VAR, SIGNING_KEY_FILE_VAR, SIGNING_KEY_VAR,
    TRUSTED_KEYS_VAR,
};

/// The event that started a GitHub Actions workflow run (`push`,
/// `pull_request`, …), as the runner sets it.
pub const GITHUB_EVENT_VAR: &str = "GITHUB_EVENT_NAME";

/// How long build scripts leave a remote alone after one of them found it
/// unavailable.
pub const DOWN_FOR: Duration = Duration::from_secs(60);

/// Whether computed entries go to the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read entries, and write the ones computed here (the default).
    ReadWrite,
    /// Only read: for jobs that must not write, such as pull requests.
    Read,
}

impl Access {
    /// `read-write` or `read`, as `PCACHE_REMOTE_MODE` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadWrite => "read-write",
            Access::Read => "read",
        }
    }
}

/// The kinds of storage a remote can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An S3 bucket or an S3-compatible server: `s3://bucket/prefix`.
    S3,
    /// A Redis server: `redis://host:port/db`, `rediss://` for TLS.
    Redis,
    /// A WebDAV server: `webdav+http://host/path`, `webdav+https://…`.
    Webdav,
    /// A directory, local or shared: `file:///dir`.
    File,
    /// The GitHub Actions cache, from inside a workflow run: `gha`, or
    /// `gha://prefix`.
    Gha,
}

impl Backend {
    /// The backend's name, as shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Backend::S3 => "s3",
            Backend::Redis => "redis",
            Backend::Webdav => "webdav",
            Backend::File => "file",
            Backend::Gha => "gha",
        }
    }
}

/// Why the remote configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteConfigError {
    /// `PCACHE_REMOTE` is not a remote URL pcache understands.
    #[error(
        "{REMOTE_VAR}: {reason} (expected s3://bucket/prefix, redis://host:port/db, webdav+http(s)://host/path, file:///dir or gha)"
    )]
    Url {
        /// What is wrong with it (without its credentials).
        reason: String,
    },
    /// A variable has a value pcache does not know.
    #[error("{name}: unknown value `{value}` (expected {expected})")]
    Value {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
}

/// The remote configuration: `PCACHE_REMOTE`, `PCACHE_REMOTE_MODE` and
/// `PCACHE_REMOTE_REQUIRED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSettings {
    /// Where the remote is.
    pub url: RemoteUrl,
    /// Whether computed entries go to it.
    pub access: Access,
    /// Whether remote failures fail the build.
    pub required: bool,
}

impl RemoteSettings {
    /// Reads the configuration through `var` (the environment, or a
    /// stand-in). `None` when `PCACHE_REMOTE` is unset or empty.
    ///
    /// # Errors
    ///
    /// When a variable has a value pcache does not understand.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<RemoteSettings>, RemoteConfigError> {
        let Some(url) = var(REMOTE_VAR).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let url = RemoteUrl::parse(&url)?;
        let access = match var(MODE_VAR)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            // A pull request's workflow reads the Actions cache and leaves
            // it to the branches' runs, unless told otherwise.
            None | Some("")
                if url.backend() == Backend::Gha
                    && var(GITHUB_EVENT_VAR).as_deref() == Some("pull_request") =>
            {
                Access::Read
            }
            None | Some("" | "read-write" | "rw") => Access::ReadWrite,
            Some("read" | "read-only" | "ro") => Access::Read,
            Some(other) => {
                return Err(RemoteConfigError::Value {
                    name: MODE_VAR,
                    value: truncate(other),
                    expected: "read-write or read",
                });
            }
        };
        let required = parse_required(var(REQUIRED_VAR).as_deref())?;
        Ok(Some(RemoteSettings {
            url,
            access,
            required,
        }))
    }

    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    ///
    /// As [`from_vars`](RemoteSettings::from_vars).
    pub fn from_env() -> Result<Option<RemoteSettings>, RemoteConfigError> {
        RemoteSettings::from_vars(|name| std::env::var(name).ok())
    }
}

/// Parses `PCACHE_REMOTE_REQUIRED` (unset is `false`).
///
/// # Errors
///
/// On a value other than `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
pub fn parse_required(value: Option<&str>) -> Result<bool, RemoteConfigError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(other) => Err(RemoteConfigError::Value {
            name: REQUIRED_VAR,
            value: truncate(other),
            expected: "1 or 0",
        }),
    }
}

/// At most 32 characters of `text`, for messages quoting what they refuse.
pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

/// The marker a build script leaves when it finds the remote unavailable;
/// the others skip the remote while it is younger than [`DOWN_FOR`]. It
/// holds the redacted remote and the cause.
pub fn down_marker(root: &Path) -> PathBuf {
    root.join(".remote-down")
}

/// Where build scripts leave the names of computed entries for the
/// uploader (and `cargo pcache push`).
pub fn outbox_dir(root: &Path) -> PathBuf {
    root.join(".outbox")
}

/// The lock an uploader holds while it empties the outbox.
pub fn outbox_lock(root: &Path) -> PathBuf {
    root.join(".outbox.lock")
}

/// The last upload failure, for the next build script to report; removed
/// by the next successful upload.
pub fn upload_error(root: &Path) -> PathBuf {
    root.join(".remote-upload-error")
}

/// Where remote objects refused for their signature are counted: one line
/// each (`<unix time>\t<redacted remote>\t<remote key>\t<reason>`).
pub fn refused_log(root: &Path) -> PathBuf {
    root.join(".remote-refused")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_mode_and_required() {
        let vars = |mode: &'static str, required: &'static str| {
            move |name: &str| match name {
                REMOTE_VAR => Some("file:///x".to_owned()),
                MODE_VAR => Some(mode.to_owned()),
                REQUIRED_VAR => Some(required.to_owned()),
                _ => None,
            }
        };
        let s = RemoteSettings::from_vars(vars("read", "1"))
            .unwrap()
            .unwrap();
        assert_eq!((s.access, s.required), (Access::Read, true));
        let s = RemoteSettings::from_vars(vars("", "")).unwrap().unwrap();
        assert_eq!((s.access, s.required), (Access::ReadWrite, false));
        assert!(RemoteSettings::from_vars(vars("write", "")).is_err());
        assert!(RemoteSettings::from_vars(vars("read", "maybe")).is_err());
        assert_eq!(RemoteSettings::from_vars(|_| None), Ok(None));
    }

    #[test]
    fn the_actions_cache_reads_only_in_pull_requests_unless_told() {
        let vars = |remote: &'static str, event: &'static str, mode: Option<&'static str>| {
            move |name: &str| match name {
                REMOTE_VAR => Some(remote.to_owned()),
                GITHUB_EVENT_VAR => Some(event.to_owned()),
                MODE_VAR => mode.map(str::to_owned),
                _ => None,
            }
        };
        let access = |remote, event, mode| {
            RemoteSettings::from_vars(vars(remote, event, mode))
                .unwrap()
                .unwrap()
                .access
        };
        assert_eq!(access("gha", "pull_request", None), Access::Read);
        assert_eq!(access("gha://team", "pull_request", Some("")), Access::Read);
        assert_eq!(access("gha", "push", None), Access::ReadWrite);
        assert_eq!(
            access("gha", "pull_request", Some("read-write")),
            Access::ReadWrite
        );
        // Other remotes keep their default.
        assert_eq!(access("file:///x", "pull_request", None), Access::ReadWrite);
    }
}
