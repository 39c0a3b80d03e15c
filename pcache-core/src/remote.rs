//! The remote tier's rules, which pcache-build (deciding when to go to the
//! remote) and `cargo pcache` (talking to it) must apply identically: the
//! configuration variables, how a remote is named without its secrets,
//! where an entry lives remotely, and the files under the pcache directory
//! through which builds share what they learned about the remote.
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

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{FORMAT_VERSION, Key};

/// The remote's URL: `s3://bucket/prefix`, `redis://host:port/db`,
/// `webdav+http(s)://host/path` or `file:///dir`.
pub const REMOTE_VAR: &str = "PCACHE_REMOTE";
/// `read-write` (the default) or `read`.
pub const MODE_VAR: &str = "PCACHE_REMOTE_MODE";
/// `1` turns remote failures into build failures.
pub const REQUIRED_VAR: &str = "PCACHE_REMOTE_REQUIRED";
/// The `cargo-pcache` binary build scripts run to reach the remote, when
/// not the one on `PATH`.
pub const HELPER_VAR: &str = "PCACHE_REMOTE_HELPER";

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
}

impl Backend {
    /// The backend's name, as shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Backend::S3 => "s3",
            Backend::Redis => "redis",
            Backend::Webdav => "webdav",
            Backend::File => "file",
        }
    }
}

/// Why the remote configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteConfigError {
    /// `PCACHE_REMOTE` is not a remote URL pcache understands.
    #[error(
        "{REMOTE_VAR}: {reason} (expected s3://bucket/prefix, redis://host:port/db, webdav+http(s)://host/path or file:///dir)"
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

/// A parsed remote URL. Its [`Display`](fmt::Display) is the redacted
/// form: credentials never leave it except through [`password`].
///
/// [`password`]: RemoteUrl::password
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    backend: Backend,
    scheme: String,
    user: Option<String>,
    password: Option<String>,
    host: String,
    path: String,
    query: Vec<(String, String)>,
}

impl fmt::Debug for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RemoteUrl").field(&self.redacted()).finish()
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Query parameters that are settings, shown in the redacted form; any
/// other parameter is left out of it.
const SHOWN_PARAMETERS: &[&str] = &["endpoint", "region"];

impl RemoteUrl {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// When the scheme is unknown or a part the backend needs is missing.
    /// The message never contains the URL's credentials.
    pub fn parse(text: &str) -> Result<RemoteUrl, RemoteConfigError> {
        let text = text.trim();
        let err = |reason: &str| RemoteConfigError::Url {
            reason: reason.to_owned(),
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| err("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let backend = match scheme.as_str() {
            "s3" => Backend::S3,
            "redis" | "rediss" => Backend::Redis,
            "webdav+http" | "webdav+https" => Backend::Webdav,
            "file" => Backend::File,
            other => {
                return Err(RemoteConfigError::Url {
                    reason: format!("unknown scheme `{}`", truncate(other)),
                });
            }
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, parse_query(query)),
            None => (rest, Vec::new()),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((user, password)) => (user, Some(percent_decode(password))),
                    None => (info, None),
                };
                let user = Some(percent_decode(user)).filter(|u| !u.is_empty());
                (user, password)
            }
            None => (None, None),
        };
        let path = percent_decode(path.trim_end_matches('/'));
        match backend {
            Backend::File if !host.is_empty() => {
                return Err(err(
                    "a file remote needs an absolute path, as in file:///shared/pcache",
                ));
            }
            Backend::File if path.is_empty() => return Err(err("a file remote needs a path")),
            Backend::S3 if host.is_empty() => return Err(err("an s3 remote needs a bucket")),
            Backend::Redis | Backend::Webdav if host.is_empty() => {
                return Err(err("no host"));
            }
            _ => {}
        }
        if path.split('/').any(|part| part == "..") {
            return Err(err("the path has a `..` component"));
        }
        Ok(RemoteUrl {
            backend,
            scheme,
            user,
            password,
            host: host.to_owned(),
            path,
            query,
        })
    }

    /// The kind of storage.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The scheme as written, lowercased: `s3`, `redis`, `rediss`,
    /// `webdav+http`, `webdav+https` or `file`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// `host[:port]`; the bucket for S3; empty for a file remote.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The path, without a trailing slash (`""` for none): the prefix for
    /// S3, the database for Redis, the directory for WebDAV and files.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The user name, if the URL has one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password, if the URL has one. A secret: never show it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The value of query parameter `name` (`endpoint`, `region`).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The URL without credentials: `***@` stands for any user and
    /// password, and only the known settings among the query parameters
    /// are kept.
    pub fn redacted(&self) -> String {
        let mut shown = format!("{}://", self.scheme);
        if self.user.is_some() || self.password.is_some() {
            shown.push_str("***@");
        }
        shown.push_str(&self.host);
        shown.push_str(&self.path);
        let kept: Vec<String> = self
            .query
            .iter()
            .filter(|(k, _)| SHOWN_PARAMETERS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !kept.is_empty() {
            shown.push('?');
            shown.push_str(&kept.join("&"));
        }
        shown
    }

    /// `text` with every secret of the URL replaced by `***`: for messages
    /// from storage clients, which may quote what they were given.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        let secrets = self.password.iter().chain(
            self.query
                .iter()
                .filter(|(k, _)| !SHOWN_PARAMETERS.contains(&k.as_str()))
                .map(|(_, v)| v),
        );
        for secret in secrets.filter(|s| s.len() >= 3) {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

/// Decodes `%XX` escapes; anything malformed is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// Why an entry's name is not one pcache writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not a pcache entry name ({reason})", truncate(.name))]
pub struct EntryNameError {
    name: String,
    reason: &'static str,
}

/// An entry's place under the pcache directory: `<package dir>/<cache
/// id>/<key>`, the same on every machine. Parsing it checks every part, so
/// that a name from elsewhere (a remote listing, a command line) cannot
/// point outside the pcache directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryName {
    package_dir: String,
    cache_id: String,
    key: Key,
}

impl EntryName {
    /// The name of the entry `key` in the cache directory `<package
    /// dir>/<cache id>`.
    ///
    /// # Errors
    ///
    /// When the directory names are not ones pcache makes.
    pub fn new(package_dir: &str, cache_id: &str, key: Key) -> Result<EntryName, EntryNameError> {
        EntryName::parse(&format!("{package_dir}/{cache_id}/{key}"))
            .map(|name| EntryName { key, ..name })
    }

    /// Parses `<package dir>/<cache id>/<key>`.
    ///
    /// # Errors
    ///
    /// When it has other parts, or parts pcache never makes.
    pub fn parse(name: &str) -> Result<EntryName, EntryNameError> {
        let err = |reason| EntryNameError {
            name: name.to_owned(),
            reason,
        };
        let mut parts = name.split('/');
        let (Some(package_dir), Some(cache_id), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err("expected <package>/<cache id>/<key>"));
        };
        if package_dir.is_empty()
            || crate::conventions::package_dir_name(package_dir) != package_dir
            || crate::conventions::is_reserved(package_dir)
        {
            return Err(err("not a package directory name"));
        }
        if cache_id.is_empty()
            || cache_id.len() > 40
            || !cache_id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(err("not a cache id"));
        }
        let key = key
            .parse::<Key>()
            .ok()
            // One spelling per key, so that names compare as keys do.
            .filter(|parsed| parsed.to_string() == key)
            .ok_or_else(|| err("not a key"))?;
        Ok(EntryName {
            package_dir: package_dir.to_owned(),
            cache_id: cache_id.to_owned(),
            key,
        })
    }

    /// Parses a remote key (`v<format>/<package dir>/<cache id>/<key>`),
    /// as [`remote_key`](EntryName::remote_key) makes them.
    ///
    /// # Errors
    ///
    /// When it is not one, or is of another format version.
    pub fn from_remote_key(remote_key: &str) -> Result<EntryName, EntryNameError> {
        match remote_key.strip_prefix(&remote_prefix()) {
            Some(name) => EntryName::parse(name),
            None => Err(EntryNameError {
                name: remote_key.to_owned(),
                reason: "not under this format's prefix",
            }),
        }
    }

    /// The package directory's name.
    pub fn package_dir(&self) -> &str {
        &self.package_dir
    }

    /// The cache directory's name.
    pub fn cache_id(&self) -> &str {
        &self.cache_id
    }

    /// The entry's key.
    pub fn key(&self) -> Key {
        self.key
    }

    /// The cache directory under the pcache directory `root`.
    pub fn cache_dir(&self, root: &Path) -> PathBuf {
        root.join(&self.package_dir).join(&self.cache_id)
    }

    /// Where the entry lives on the remote: `v<format>/<package
    /// dir>/<cache id>/<key>`.
    pub fn remote_key(&self) -> String {
        format!("{}{self}", remote_prefix())
    }

    /// Where the cache's `cache.toml` lives on the remote.
    pub fn remote_meta_key(&self) -> String {
        remote_cache_prefix(&self.package_dir, Some(&self.cache_id)) + crate::layout::META_FILE
    }

    /// The name of the outbox item asking for this entry's upload.
    pub fn outbox_item(&self) -> String {
        format!("{}+{}+{}", self.package_dir, self.cache_id, self.key)
    }

    /// Parses an outbox item's name.
    ///
    /// # Errors
    ///
    /// When it is not one [`outbox_item`](EntryName::outbox_item) makes.
    pub fn from_outbox_item(item: &str) -> Result<EntryName, EntryNameError> {
        EntryName::parse(&item.replace('+', "/"))
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.package_dir, self.cache_id, self.key)
    }
}

/// The remote prefix of every entry of this format: `v<format>/`. Another
/// format's entries live beside, under their own prefix.
pub fn remote_prefix() -> String {
    format!("v{FORMAT_VERSION}/")
}

/// The remote prefix of a package's caches (`v3/<package dir>/`), or of
/// one cache (`v3/<package dir>/<cache id>/`).
pub fn remote_cache_prefix(package_dir: &str, cache_id: Option<&str>) -> String {
    let mut prefix = format!("{}{package_dir}/", remote_prefix());
    if let Some(id) = cache_id {
        prefix.push_str(id);
        prefix.push('/');
    }
    prefix
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

/// How the helper (`cargo-pcache pcache remote-helper …`) ends, as its exit
/// status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HelperStatus {
    /// Done: the entry was imported, or uploaded.
    Done = 0,
    /// The remote has no such entry.
    Absent = 10,
    /// The remote's entry failed the checks and was not used.
    Invalid = 11,
    /// The remote did not answer, or not in time.
    Unavailable = 12,
    /// The remote answered with an error (refused a write, for one).
    Failed = 13,
    /// The helper writes another entry format than the build script.
    Incompatible = 14,
    /// The configuration is unusable, or the local cache failed.
    Error = 1,
}

impl HelperStatus {
    /// The status for an exit code; `None` for codes the helper never
    /// exits with (a crash, a signal).
    pub fn from_code(code: i32) -> Option<HelperStatus> {
        Some(match code {
            0 => HelperStatus::Done,
            10 => HelperStatus::Absent,
            11 => HelperStatus::Invalid,
            12 => HelperStatus::Unavailable,
            13 => HelperStatus::Failed,
            14 => HelperStatus::Incompatible,
            1 => HelperStatus::Error,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RemoteUrl {
        RemoteUrl::parse(text).unwrap()
    }

    #[test]
    fn every_backend_parses() {
        let s3 = parse("s3://bucket/team/cache/?endpoint=http://127.0.0.1:9000&region=eu-west-1");
        assert_eq!(s3.backend(), Backend::S3);
        assert_eq!(s3.host(), "bucket");
        assert_eq!(s3.path(), "/team/cache");
        assert_eq!(s3.parameter("endpoint"), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.parameter("region"), Some("eu-west-1"));

        let redis = parse("redis://:p%40ss@127.0.0.1:6379/2");
        assert_eq!(redis.backend(), Backend::Redis);
        assert_eq!(redis.host(), "127.0.0.1:6379");
        assert_eq!(redis.path(), "/2");
        assert_eq!(redis.user(), None);
        assert_eq!(redis.password(), Some("p@ss"));

        let dav = parse("webdav+http://u:pw@localhost:8080/dav/pcache");
        assert_eq!(dav.backend(), Backend::Webdav);
        assert_eq!(dav.scheme(), "webdav+http");
        assert_eq!(dav.user(), Some("u"));

        let file = parse("file:///srv/shared/pcache/");
        assert_eq!(file.backend(), Backend::File);
        assert_eq!(file.path(), "/srv/shared/pcache");
    }

    #[test]
    fn bad_urls_are_refused_without_their_secrets() {
        for (text, expected) in [
            ("bucket/prefix", "no scheme"),
            ("ftp://user:hunter22@host/x", "unknown scheme `ftp`"),
            ("file://relative/dir", "absolute path"),
            ("file://", "needs a path"),
            ("s3:///prefix", "needs a bucket"),
            ("redis://", "no host"),
            ("file:///a/../b", "`..`"),
        ] {
            let e = RemoteUrl::parse(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
            assert!(!e.contains("hunter22"), "{e}");
        }
    }

    #[test]
    fn redaction_hides_credentials_and_unknown_parameters() {
        let url = parse("s3://b/p?endpoint=http://h:9000&token=abcdef&region=r");
        assert_eq!(url.redacted(), "s3://b/p?endpoint=http://h:9000&region=r");
        assert_eq!(
            url.scrub("failed with token abcdef"),
            "failed with token ***"
        );
        let url = parse("redis://admin:hunter22@h:1/0");
        assert_eq!(url.redacted(), "redis://***@h:1/0");
        assert_eq!(format!("{url} {url:?}").matches("hunter22").count(), 0);
        assert_eq!(url.scrub("auth hunter22 refused"), "auth *** refused");
    }

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
    fn entry_names_cannot_point_elsewhere() {
        let key = "00112233445566778899aabbccddeeff1f";
        let good = EntryName::parse(&format!("pkg_a-1/0123abcd/{key}")).unwrap();
        assert_eq!(good.remote_key(), format!("v3/pkg_a-1/0123abcd/{key}"));
        assert_eq!(good.remote_meta_key(), "v3/pkg_a-1/0123abcd/cache.toml");
        assert_eq!(
            EntryName::from_remote_key(&good.remote_key()).unwrap(),
            good
        );
        assert!(EntryName::from_remote_key(&format!("v2/pkg_a-1/0123abcd/{key}")).is_err());
        assert!(EntryName::from_remote_key("v3/pkg_a-1/0123abcd/cache.toml").is_err());
        assert_eq!(
            EntryName::from_outbox_item(&good.outbox_item()).unwrap(),
            good
        );
        assert_eq!(
            good.cache_dir(Path::new("/r")),
            Path::new("/r/pkg_a-1/0123abcd")
        );
        for bad in [
            format!("../0123abcd/{key}"),
            format!("pkg/../{key}"),
            format!("pkg/0123abcd/../{key}"),
            format!(".inputs/0123abcd/{key}"),
            format!("pkg/0123abcd/{key}/x"),
            format!("/pkg/0123abcd/{key}"),
            "pkg/0123abcd/cache.toml".to_owned(),
            format!("pkg/0123abcd/{}", &key[..30]),
            format!("pkg/0123abcd/{}", key.to_uppercase()),
            format!("pkg/0123abcd/{key}g"),
        ] {
            assert!(EntryName::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percent_decoding_keeps_what_is_malformed() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
    }

    #[test]
    fn helper_statuses_round_trip() {
        for status in [
            HelperStatus::Done,
            HelperStatus::Absent,
            HelperStatus::Invalid,
            HelperStatus::Unavailable,
            HelperStatus::Failed,
            HelperStatus::Incompatible,
            HelperStatus::Error,
        ] {
            assert_eq!(HelperStatus::from_code(status as i32), Some(status));
        }
        assert_eq!(HelperStatus::from_code(101), None);
    }
}
