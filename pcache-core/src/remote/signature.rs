//! Signed remote objects: the envelope a signature travels in with the
//! object, the statement it signs, and the form keys take in settings. The
//! cryptography (Ed25519 over the statement, SHA-256 of the body) is done by
//! `cargo pcache`, where the remote client runs; this module is what both
//! sides of the format, and its fuzz target, share.
//!
//! ```text
//! object    = MAGIC name_len:u8 name signature:[u8; 64] body
//! statement = DOMAIN name 0x00 remote_path 0x00 sha256(body)
//! ```
//!
//! The body is the entry file, byte for byte; an object without the magic
//! is an unsigned entry. The statement binds the key's name and the
//! object's remote path: a signed object copied to another path, or
//! presented under another key, does not verify.
//!
//! ```
//! use pcache_core::remote::signature::{Envelope, KeySpec, statement};
//!
//! let sealed = Envelope::seal("ci", &[7u8; 64], b"entry bytes");
//! let envelope = Envelope::parse(&sealed)?.expect("signed");
//! assert_eq!((envelope.name, envelope.body), ("ci", &b"entry bytes"[..]));
//! assert_eq!(Envelope::parse(b"PCE\x01 an unsigned entry")?, None);
//!
//! let message = statement("ci", "v3/app/0123456789abcdef0/00ff", &[0u8; 32]);
//! assert!(message.starts_with(b"pcache remote object signature v1\0ci\0"));
//!
//! let spec = KeySpec::parse("ci-2026:AAAA")?;
//! assert_eq!((spec.name, spec.material), ("ci-2026", "AAAA"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

/// The first bytes of a signed object.
pub const MAGIC: [u8; 8] = *b"PCSIG1\r\n";
/// What every statement starts with: a signature made for anything else
/// never verifies here.
pub const DOMAIN: &[u8] = b"pcache remote object signature v1\0";
/// An Ed25519 signature's length.
pub const SIGNATURE_LEN: usize = 64;
/// The longest key name.
pub const MAX_NAME_LEN: usize = 64;

/// Why an object's signature data is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The object ends inside its signature data.
    Truncated,
    /// The key name is empty, too long, or has characters other than
    /// letters, digits, `.`, `_` and `-`.
    BadName,
    /// The signature data holds no object.
    NoBody,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EnvelopeError::Truncated => "its signature data is truncated",
            EnvelopeError::BadName => "its signature names no valid key",
            EnvelopeError::NoBody => "it holds a signature and nothing else",
        })
    }
}

impl std::error::Error for EnvelopeError {}

/// A signed object, parsed (not verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The name of the key that signed it.
    pub name: &'a str,
    /// The signature over the [`statement`].
    pub signature: [u8; SIGNATURE_LEN],
    /// The entry file.
    pub body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// The signed object in `object`; `None` if it carries no signature
    /// (it does not start with [`MAGIC`]).
    ///
    /// # Errors
    ///
    /// When it starts like a signed object but is not a whole one.
    pub fn parse(object: &'a [u8]) -> Result<Option<Envelope<'a>>, EnvelopeError> {
        let Some(rest) = object.strip_prefix(&MAGIC[..]) else {
            return Ok(None);
        };
        let (&name_len, rest) = rest.split_first().ok_or(EnvelopeError::Truncated)?;
        let name_len = usize::from(name_len);
        if rest.len() < name_len + SIGNATURE_LEN {
            return Err(EnvelopeError::Truncated);
        }
        let (name, rest) = rest.split_at(name_len);
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|n| is_key_name(n))
            .ok_or(EnvelopeError::BadName)?;
        let (signature, body) = rest.split_at(SIGNATURE_LEN);
        debug_assert_eq!(body_offset(object), Some(object.len() - body.len()));
        if body.is_empty() {
            return Err(EnvelopeError::NoBody);
        }
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(signature);
        Ok(Some(Envelope {
            name,
            signature: sig,
            body,
        }))
    }

    /// A signed object: `body` with the signature data before it.
    ///
    /// # Panics
    ///
    /// When `name` is not a key name ([`is_key_name`]): names are checked
    /// when keys are read.
    pub fn seal(name: &str, signature: &[u8; SIGNATURE_LEN], body: &[u8]) -> Vec<u8> {
        assert!(is_key_name(name), "not a key name: {name:?}");
        let mut object =
            Vec::with_capacity(MAGIC.len() + 1 + name.len() + SIGNATURE_LEN + body.len());
        object.extend_from_slice(&MAGIC);
        // `is_key_name` bounds the length by MAX_NAME_LEN.
        object.push(name.len() as u8);
        object.extend_from_slice(name.as_bytes());
        object.extend_from_slice(signature);
        object.extend_from_slice(body);
        object
    }
}

/// Where the body starts in a signed object whose first bytes are `head`:
/// `None` if `head` does not start with [`MAGIC`] and the name's length.
/// For hashing the body while the object is still arriving; [`Envelope::parse`]
/// checks the rest once it is whole.
///
/// ```
/// use pcache_core::remote::signature::{Envelope, body_offset};
///
/// let sealed = Envelope::seal("ci", &[7u8; 64], b"entry bytes");
/// let at = body_offset(&sealed[..9]).unwrap();
/// assert_eq!(&sealed[at..], b"entry bytes");
/// assert_eq!(body_offset(b"entry bytes"), None);
/// ```
pub fn body_offset(head: &[u8]) -> Option<usize> {
    let name_len = *head.strip_prefix(&MAGIC[..])?.first()?;
    Some(MAGIC.len() + 1 + usize::from(name_len) + SIGNATURE_LEN)
}

/// The message a key signs for the object at `remote_path` whose body has
/// the SHA-256 `body_sha256`.
pub fn statement(name: &str, remote_path: &str, body_sha256: &[u8; 32]) -> Vec<u8> {
    let mut message =
        Vec::with_capacity(DOMAIN.len() + name.len() + remote_path.len() + 2 + body_sha256.len());
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(name.as_bytes());
    message.push(0);
    message.extend_from_slice(remote_path.as_bytes());
    message.push(0);
    message.extend_from_slice(body_sha256);
    message
}

/// Whether `name` can name a key: 1 to [`MAX_NAME_LEN`] letters, digits,
/// `.`, `_` or `-`.
pub fn is_key_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One key as settings write it: `NAME:<base64>` (the material is decoded
/// where the key is used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec<'a> {
    /// The key's name.
    pub name: &'a str,
    /// The key, in base64.
    pub material: &'a str,
}

impl<'a> KeySpec<'a> {
    /// Parses `NAME:<base64>`.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong — never the key material itself.
    pub fn parse(text: &'a str) -> Result<KeySpec<'a>, String> {
        let text = text.trim();
        let (name, material) = text
            .split_once(':')
            .ok_or("a key is written NAME:<base64>, and this one has no `:`")?;
        if !is_key_name(name) {
            return Err(format!(
                "`{}` is not a key name (1 to {MAX_NAME_LEN} letters, digits, `.`, `_`, `-`)",
                name.escape_debug()
            ));
        }
        if material.is_empty() {
            return Err(format!("key `{name}` has no key after its `:`"));
        }
        Ok(KeySpec { name, material })
    }

    /// Parses a comma-separated list of keys (trusted keys: several at once
    /// while one replaces another).
    ///
    /// # Errors
    ///
    /// As [`parse`](KeySpec::parse), for the first bad key; an empty list.
    pub fn parse_list(text: &'a str) -> Result<Vec<KeySpec<'a>>, String> {
        let keys: Vec<KeySpec<'a>> = text
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(KeySpec::parse)
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Err("the list holds no key".to_owned());
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_objects_parse_back_and_damaged_ones_do_not() {
        let sealed = Envelope::seal("team.ci-1", &[9u8; 64], b"body");
        let envelope = Envelope::parse(&sealed).unwrap().unwrap();
        assert_eq!(envelope.name, "team.ci-1");
        assert_eq!(envelope.signature, [9u8; 64]);
        assert_eq!(envelope.body, b"body");
        // Every truncation of the signature data is an error, never a body.
        for len in MAGIC.len()..MAGIC.len() + 1 + 9 + SIGNATURE_LEN + 1 {
            assert!(Envelope::parse(&sealed[..len]).is_err(), "length {len}");
        }
        // A bad name.
        let mut bad = sealed.clone();
        bad[MAGIC.len() + 1] = b'/';
        assert_eq!(Envelope::parse(&bad), Err(EnvelopeError::BadName));
        let mut empty = sealed.clone();
        empty[MAGIC.len()] = 0;
        assert!(Envelope::parse(&empty).is_err());
        // Not signed at all.
        assert_eq!(Envelope::parse(b"anything else").unwrap(), None);
        assert_eq!(Envelope::parse(b"").unwrap(), None);
    }

    #[test]
    fn statements_bind_the_name_and_the_path() {
        let digest = [1u8; 32];
        let a = statement("ci", "v3/p/c/k", &digest);
        assert_ne!(a, statement("ci2", "v3/p/c/k", &digest));
        assert_ne!(a, statement("ci", "v3/p/c/k2", &digest));
        assert_ne!(a, statement("ci", "v3/p/c/k", &[2u8; 32]));
        // The separators keep name and path apart.
        assert_ne!(statement("a", "bc", &digest), statement("ab", "c", &digest));
    }

    #[test]
    fn key_lists_are_read_and_errors_name_no_material() {
        let keys = KeySpec::parse_list(" old:QUJD , new:REVG ").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[1],
            KeySpec {
                name: "new",
                material: "REVG"
            }
        );
        for bad in ["", ",", "nocolon", "bad name:QUJD", ":QUJD", "name:"] {
            let err = KeySpec::parse_list(bad).unwrap_err();
            assert!(!err.contains("QUJD"), "{err}");
        }
    }
}
