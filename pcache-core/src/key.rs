//! Entry keys: XXH3-128 of canonical MessagePack, plus its length.
//!
//! Key material is serialized by a MessagePack writer of our own rather than
//! `rmp-serde`, because keys must be *canonical*: a `HashMap` or `HashSet`
//! iterates in a per-process random order, so map entries and set elements
//! are serialized one by one and written in sorted byte order. Sequences keep
//! their order (a reversed `Vec` is a different key).

use std::fmt;
use std::str::FromStr;

use rmp::encode;
use serde::ser::{self, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// The key of one entry: the XXH3-128 digest of the canonical MessagePack
/// serialization of some key material, plus the length of that serialization.
///
/// Its text form (used as the entry's file name) is the digest as 32 hex
/// digits followed by the length in hex, as persist-cache's `hash` does.
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

    /// The key of bytes that are already a canonical serialization.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Key {
        Key {
            digest: xxh3_128(bytes),
            len: bytes.len() as u64,
        }
    }

    /// The 128-bit digest.
    pub fn digest(&self) -> u128 {
        self.digest
    }

    /// The length in bytes of the serialized key material.
    pub fn material_len(&self) -> u64 {
        self.len
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

/// Serializes `material` to canonical MessagePack.
///
/// Maps are written with their entries sorted by the serialized key; sets
/// (any collection serialized through `collect_seq` whose type name ends in
/// `Set`, such as `HashSet` and `BTreeSet`) with their elements sorted.
/// Everything else keeps its order. Structs are arrays of their fields, enum
/// variants are their name (unit) or a one-entry map `{name: content}`.
///
/// # Errors
///
/// Fails only if `material`'s `Serialize` implementation reports an error.
pub fn canonical_bytes<M: Serialize + ?Sized>(material: &M) -> Result<Vec<u8>, KeyError> {
    let mut out = KeyWriter { out: Vec::new() };
    material.serialize(&mut out)?;
    Ok(out.out)
}

/// A 128-bit digest of a value's canonical serialization: equal for equal
/// values in every process (maps and sets sorted), computed in bulk for byte
/// values. Used to compare a stored value with a recomputed one.
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
    if let Some(bytes) = crate::bytes::as_bytes(value) {
        return Ok(xxh3_128(bytes));
    }
    Ok(xxh3_128(&canonical_bytes(value)?))
}

/// The error for key material whose `Serialize` implementation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        KeyError(msg.to_string())
    }
}

struct KeyWriter {
    out: Vec<u8>,
}

// `rmp::encode` writing into a `Vec<u8>` cannot fail; its `Result`s are
// ignored throughout.
impl KeyWriter {
    fn nested<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, KeyError> {
        canonical_bytes(value)
    }

    fn array_len(&mut self, len: usize) -> Result<(), KeyError> {
        let len = u32::try_from(len).map_err(|_| KeyError("sequence too long".into()))?;
        let _ = encode::write_array_len(&mut self.out, len);
        Ok(())
    }

    fn map_len(&mut self, len: usize) -> Result<(), KeyError> {
        let len = u32::try_from(len).map_err(|_| KeyError("map too long".into()))?;
        let _ = encode::write_map_len(&mut self.out, len);
        Ok(())
    }

    fn write_sorted(&mut self, mut items: Vec<Vec<u8>>, as_map: bool) -> Result<(), KeyError> {
        items.sort_unstable();
        if as_map {
            self.map_len(items.len())?;
        } else {
            self.array_len(items.len())?;
        }
        for item in items {
            self.out.extend_from_slice(&item);
        }
        Ok(())
    }
}

/// Whether a type serialized through `collect_seq` is an unordered set.
fn is_set(type_name: &str) -> bool {
    let base = type_name.trim_start_matches('&');
    let base = base.split('<').next().unwrap_or(base);
    base.ends_with("Set")
}

/// A compound being serialized: either straight into the output (`len` known
/// up front), or buffered because its length is unknown or it must be sorted.
struct Compound<'a> {
    writer: &'a mut KeyWriter,
    mode: Mode,
}

enum Mode {
    /// Elements go straight to the output.
    Direct,
    /// Elements are counted into a side buffer; the header is written at the end.
    Counted { buf: Vec<u8>, count: usize },
    /// Map entries, each serialized apart and sorted at the end.
    Map {
        entries: Vec<Vec<u8>>,
        pending_key: Option<Vec<u8>>,
    },
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        match &mut self.mode {
            Mode::Direct => value.serialize(&mut *self.writer),
            Mode::Counted { buf, count } => {
                buf.extend_from_slice(&KeyWriter::nested(value)?);
                *count += 1;
                Ok(())
            }
            Mode::Map { .. } => Err(KeyError("sequence element inside a map".into())),
        }
    }

    fn finish(self) -> Result<(), KeyError> {
        match self.mode {
            Mode::Direct => Ok(()),
            Mode::Counted { buf, count } => {
                self.writer.array_len(count)?;
                self.writer.out.extend_from_slice(&buf);
                Ok(())
            }
            Mode::Map { entries, .. } => self.writer.write_sorted(entries, true),
        }
    }
}

macro_rules! seq_like {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = KeyError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
                self.element(value)
            }
            fn end(self) -> Result<(), KeyError> {
                self.finish()
            }
        }
    };
}
seq_like!(SerializeSeq, serialize_element);
seq_like!(SerializeTuple, serialize_element);
seq_like!(SerializeTupleStruct, serialize_field);
seq_like!(SerializeTupleVariant, serialize_field);

macro_rules! struct_like {
    ($trait:ident) => {
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = KeyError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                _key: &'static str,
                value: &T,
            ) -> Result<(), KeyError> {
                // Field names are fixed by the type: position is enough.
                self.element(value)
            }
            fn end(self) -> Result<(), KeyError> {
                self.finish()
            }
        }
    };
}
struct_like!(SerializeStruct);
struct_like!(SerializeStructVariant);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = KeyError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), KeyError> {
        match &mut self.mode {
            Mode::Map { pending_key, .. } => {
                *pending_key = Some(KeyWriter::nested(key)?);
                Ok(())
            }
            _ => Err(KeyError("map key outside a map".into())),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        match &mut self.mode {
            Mode::Map {
                entries,
                pending_key,
            } => {
                let mut entry = pending_key
                    .take()
                    .ok_or_else(|| KeyError("map value without a key".into()))?;
                entry.extend_from_slice(&KeyWriter::nested(value)?);
                entries.push(entry);
                Ok(())
            }
            _ => Err(KeyError("map value outside a map".into())),
        }
    }
    fn end(self) -> Result<(), KeyError> {
        self.finish()
    }
}

impl<'a> ser::Serializer for &'a mut KeyWriter {
    type Ok = ();
    type Error = KeyError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), KeyError> {
        let _ = encode::write_bool(&mut self.out, v);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), KeyError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), KeyError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), KeyError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), KeyError> {
        let _ = encode::write_sint(&mut self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), KeyError> {
        self.serialize_bytes(&v.to_be_bytes())
    }
    fn serialize_u8(self, v: u8) -> Result<(), KeyError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), KeyError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), KeyError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), KeyError> {
        let _ = encode::write_uint(&mut self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), KeyError> {
        self.serialize_bytes(&v.to_be_bytes())
    }
    fn serialize_f32(self, v: f32) -> Result<(), KeyError> {
        let _ = encode::write_f32(&mut self.out, v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), KeyError> {
        let _ = encode::write_f64(&mut self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), KeyError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), KeyError> {
        let _ = encode::write_str(&mut self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), KeyError> {
        let len = u32::try_from(v.len()).map_err(|_| KeyError("byte string too long".into()))?;
        let _ = encode::write_bin_len(&mut self.out, len);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), KeyError> {
        let _ = encode::write_nil(&mut self.out);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), KeyError> {
        // `Some(x)` is a one-element array so that `Some(None)` and `None` differ.
        self.array_len(1)?;
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), KeyError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), KeyError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), KeyError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        self.map_len(1)?;
        let _ = encode::write_str(&mut self.out, variant);
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, KeyError> {
        let mode = match len {
            Some(len) => {
                self.array_len(len)?;
                Mode::Direct
            }
            None => Mode::Counted {
                buf: Vec::new(),
                count: 0,
            },
        };
        Ok(Compound { writer: self, mode })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, KeyError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, KeyError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, KeyError> {
        self.map_len(1)?;
        let _ = encode::write_str(&mut self.out, variant);
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, KeyError> {
        Ok(Compound {
            writer: self,
            mode: Mode::Map {
                entries: Vec::new(),
                pending_key: None,
            },
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>, KeyError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, KeyError> {
        self.map_len(1)?;
        let _ = encode::write_str(&mut self.out, variant);
        self.serialize_seq(Some(len))
    }

    fn collect_seq<I>(self, iter: I) -> Result<(), KeyError>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        // serde serializes `HashSet` exactly like `Vec` (through `collect_seq`),
        // so the collection's type name is the only way to tell a set apart.
        if is_set(std::any::type_name::<I>()) {
            let items = iter
                .into_iter()
                .map(|item| KeyWriter::nested(&item))
                .collect::<Result<Vec<_>, _>>()?;
            return self.write_sorted(items, false);
        }
        let iter = iter.into_iter();
        let mut seq = ser::Serializer::serialize_seq(self, iter_len(&iter))?;
        for item in iter {
            ser::SerializeSeq::serialize_element(&mut seq, &item)?;
        }
        ser::SerializeSeq::end(seq)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), KeyError> {
        self.serialize_str(&value.to_string())
    }
}

fn iter_len<I: Iterator>(iter: &I) -> Option<usize> {
    match iter.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
    fn hash_containers_are_order_independent() {
        let a: HashSet<String> = (0..200).map(|i| i.to_string()).collect();
        let mut b = HashSet::with_capacity(1000);
        b.extend((0..200).rev().map(|i| i.to_string()));
        assert_eq!(Key::new(&a).unwrap(), Key::new(&b).unwrap());
        let sorted: BTreeSet<String> = a.iter().cloned().collect();
        assert_eq!(Key::new(&a).unwrap(), Key::new(&sorted).unwrap());

        let m: HashMap<u32, &str> = (0..100).map(|i| (i, "v")).collect();
        let n: BTreeMap<u32, &str> = (0..100).map(|i| (i, "v")).collect();
        assert_eq!(Key::new(&m).unwrap(), Key::new(&n).unwrap());
    }

    #[test]
    fn sequences_keep_their_order() {
        assert_ne!(
            Key::new(&vec![1, 2, 3]).unwrap(),
            Key::new(&vec![3, 2, 1]).unwrap()
        );
    }

    #[test]
    fn distinct_shapes_give_distinct_keys() {
        let keys = [
            Key::new(&None::<u8>).unwrap(),
            Key::new(&Some(None::<u8>)).unwrap(),
            Key::new(&()).unwrap(),
            Key::new(&0u8).unwrap(),
            Key::new(&"").unwrap(),
            Key::new(&Vec::<u8>::new()).unwrap(),
            Key::new(&(1, 2)).unwrap(),
            Key::new(&(2, 1)).unwrap(),
        ];
        let unique: BTreeSet<_> = keys.iter().collect();
        // `None` and `()` share MessagePack `nil`, as they do in rmp-serde.
        assert_eq!(unique.len(), keys.len() - 1);
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
