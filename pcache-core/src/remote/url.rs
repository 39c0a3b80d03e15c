//! Remote URLs: parsed once, shown only without their credentials.

use std::fmt;

use super::{Backend, RemoteConfigError, truncate};

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
        // The GitHub Actions cache needs no address: `gha` alone will do.
        let text = if text.eq_ignore_ascii_case("gha") {
            "gha://"
        } else {
            text
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| err("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let backend = match scheme.as_str() {
            "gha" => Backend::Gha,
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
            Backend::Gha if userinfo.is_some() || !query.is_empty() => {
                return Err(err(
                    "a gha remote takes a prefix only (gha or gha://prefix); the Actions runner provides the rest",
                ));
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
    /// S3, the database for Redis, the directory for WebDAV and files. For
    /// the GitHub Actions cache, the prefix is [`host`](RemoteUrl::host)
    /// and this path together.
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
        if self.backend == Backend::Gha && self.host.is_empty() && self.path.is_empty() {
            return "gha".to_owned();
        }
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
        let gha = parse("GHA");
        assert_eq!(
            (gha.backend(), gha.redacted()),
            (Backend::Gha, "gha".to_owned())
        );
        let gha = parse("gha://team/pcache/");
        assert_eq!((gha.host(), gha.path()), ("team", "/pcache"));
        assert_eq!(gha.redacted(), "gha://team/pcache");
        assert_eq!(file.path(), "/srv/shared/pcache");
    }

    #[test]
    fn bad_urls_are_refused_without_their_secrets() {
        for (text, expected) in [
            ("bucket/prefix", "no scheme"),
            ("ftp://user:hunter22@host/x", "unknown scheme `ftp`"),
            (
                "gha://user:hunter22@prefix",
                "a gha remote takes a prefix only",
            ),
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
    fn percent_decoding_keeps_what_is_malformed() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
    }
}
