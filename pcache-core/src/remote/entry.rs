//! Entry names: an entry's place under the pcache directory, the same on
//! every machine, and where it lives on the remote.

use std::fmt;
use std::path::{Path, PathBuf};

use super::truncate;
use crate::{FORMAT_VERSION, Key};

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

    /// The name of the entry `key` of the cache directory `cache_dir`, which
    /// lies under the pcache directory `root`; `None` when it does not, or
    /// its directory names are not ones pcache makes.
    pub fn in_root(root: &Path, cache_dir: &Path, key: Key) -> Option<EntryName> {
        let rel = cache_dir.strip_prefix(root).ok()?;
        let mut parts = rel.iter().filter_map(|p| p.to_str());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(package_dir), Some(cache_id), None) => {
                EntryName::new(package_dir, cache_id, key).ok()
            }
            _ => None,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
