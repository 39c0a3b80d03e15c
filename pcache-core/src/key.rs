//! Entry keys: XXH3-128 of the canonical MessagePack serialization of the
//! key material (see the `canonical` module for its rules), plus its length.

use std::fmt;
use std::str::FromStr;

use rmp::encode;
use serde::Serialize;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::canonical::{KeyError, canonical_bytes};

/// The key of one entry: the XXH3-128 digest of the canonical MessagePack
/// serialization of some key material, plus the length of that serialization.
///
/// Its text form (used as the entry's file name) is the digest as 32 hex
/// digits followed by the length in hex, as persist-cache's `hash` does.
///
/// Hash-ordered collections (std's and hashbrown's `HashMap` and `HashSet`)
/// are serialized in sorted order, so they key the same in every process;
/// every other collection keeps its order.
///
/// ```
/// use std::collections::HashMap;
/// use pcache_core::Key;
///
/// let a: HashMap<_, _> = (0..100).map(|i| (i, i * 2)).collect();
/// let b: HashMap<_, _> = (0..100).rev().map(|i| (i, i * 2)).collect();
/// assert_eq!(Key::new(&a)?, Key::new(&b)?);
/// assert_ne!(Key::new(&vec![1, 2])?, Key::new(&vec![2, 1])?);
/// # Ok::<(), pcache_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    digest: u128,
    len: u64,
}

impl Key {
    /// Derives the key of `material`.
    ///
    /// # Errors
    ///
    /// Fails only if `material`'s `Serialize` implementation reports an error.
    pub fn new<M: Serialize + ?Sized>(material: &M) -> Result<Key, KeyError> {
        let bytes = canonical_bytes(material)?;
        Ok(Key::from_canonical_bytes(&bytes))
    }

    fn from_canonical_bytes(bytes: &[u8]) -> Key {
        Key {
            digest: xxh3_128(bytes),
            len: bytes.len() as u64,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}{:x}", self.digest, self.len)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

/// The error for a string that is not a key's text form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a pcache key (32 hex digits and a hex length)")]
pub struct ParseKeyError(String);

impl FromStr for Key {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Key, ParseKeyError> {
        let err = || ParseKeyError(s.to_owned());
        // A length of up to 16 hex digits follows the 32-digit digest.
        if !(33..=48).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let (digest, len) = s.split_at(32);
        Ok(Key {
            digest: u128::from_str_radix(digest, 16).map_err(|_| err())?,
            len: u64::from_str_radix(len, 16).map_err(|_| err())?,
        })
    }
}

/// A short identifier for a name: XXH3-64 of its MessagePack serialization
/// followed by the serialization's length, in hex (persist-cache's
/// `shorthash`). Used for cache directory names, so any string is a valid
/// cache name.
///
/// ```
/// let id = pcache_core::short_id("../../etc");
/// assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
/// assert_ne!(id, pcache_core::short_id(""));
/// ```
pub fn short_id(name: &str) -> String {
    let mut bytes = Vec::with_capacity(name.len() + 5);
    // Writing to a Vec cannot fail.
    let _ = encode::write_str(&mut bytes, name);
    format!("{:016x}{:x}", xxh3_64(&bytes), bytes.len())
}

/// A 128-bit digest of a value's canonical serialization: equal for equal
/// values in every process (hash-ordered collections sorted), computed in
/// bulk for byte values. Used to compare a stored value with a recomputed one.
///
/// ```
/// let a = pcache_core::value_digest(&vec![1u8, 2, 3])?;
/// assert_eq!(a, pcache_core::value_digest(&vec![1u8, 2, 3])?);
/// assert_ne!(a, pcache_core::value_digest(&vec![3u8, 2, 1])?);
/// # Ok::<(), pcache_core::KeyError>(())
/// ```
///
/// # Errors
///
/// Fails only if `value`'s `Serialize` implementation reports an error.
pub fn value_digest<T: Serialize + ?Sized>(value: &T) -> Result<u128, KeyError> {
    if let Some((_, bytes)) = crate::bytes::as_single(value) {
        return Ok(xxh3_128(bytes));
    }
    Ok(xxh3_128(&canonical_bytes(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn text_form_round_trips() {
        let key = Key::new("hello").unwrap();
        let text = key.to_string();
        assert_eq!(text.len(), 32 + 1);
        assert_eq!(text.parse::<Key>().unwrap(), key);
        assert!("cache.toml".parse::<Key>().is_err());
        assert!("zz".repeat(20).parse::<Key>().is_err());
    }

    #[test]
    fn short_ids_differ_and_are_file_name_safe() {
        let names = ["", "../x", "🦀", &"n".repeat(10_000)];
        let ids: BTreeSet<_> = names.iter().map(|n| short_id(n)).collect();
        assert_eq!(ids.len(), names.len());
        assert!(
            ids.iter()
                .all(|id| id.len() < 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
}
