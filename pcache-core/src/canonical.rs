//! The canonical MessagePack serialization of key material.
//!
//! Keys must be the same in every process for the same material, and
//! different whenever a step could produce something different. Two rules
//! follow:
//!
//! - **Hash-ordered collections are sorted.** std's and hashbrown's
//!   `HashMap` and `HashSet` iterate in an order that depends on a
//!   per-process random seed (whatever the hasher). Their entries and
//!   elements, and those of their iterators (`iter()`, `keys()`,
//!   `values()`), are serialized one by one and written in sorted byte
//!   order. serde gives no other way to tell them apart than the type name of
//!   what is passed to `collect_map` / `collect_seq`, which is what this
//!   module checks, exactly: `indexmap::IndexMap`, a user type called
//!   `FooSet` or a `BTreeMap` are *not* hash-ordered.
//! - **Everything else keeps its order.** A `Vec`, an `IndexMap`, an
//!   `IndexSet`, a `BTreeMap` or a user type is written in the order it is
//!   serialized, because code generated from it may depend on that order: a
//!   different order is a different key.
//!
//! The limit: a hash-ordered collection that reaches the serializer any other
//! way (a hand-written `Serialize` looping over a `HashMap` into
//! `serialize_map`, or a hash map from another crate) keeps whatever order it
//! arrives in. The result is a miss on every run, never a wrong hit: put such
//! material in a `BTreeMap` or a std `HashMap` first.
//!
//! Structs are arrays of their fields (names are fixed by the type), enum
//! variants are their name (unit) or a one-entry map `{name: content}`, and
//! `Some(x)` is a one-element array so that `Some(None)` and `None` differ.

use std::fmt;

use rmp::encode;
use serde::ser::{self, Serialize};

/// The error for key material whose `Serialize` implementation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        KeyError(msg.to_string())
    }
}

/// Serializes `material` to canonical MessagePack (see the module docs of
/// [`Key`](crate::Key) for the rules).
///
/// ```
/// use std::collections::{BTreeSet, HashSet};
/// let a: HashSet<u32> = (0..50).collect();
/// let b: HashSet<u32> = (0..50).rev().collect();
/// assert_eq!(pcache_core::canonical_bytes(&a)?, pcache_core::canonical_bytes(&b)?);
/// // Ordered collections keep their order.
/// assert_ne!(pcache_core::canonical_bytes(&[1, 2])?, pcache_core::canonical_bytes(&[2, 1])?);
/// # Ok::<(), pcache_core::KeyError>(())
/// ```
///
/// # Errors
///
/// Fails only if `material`'s `Serialize` implementation reports an error.
pub fn canonical_bytes<M: Serialize + ?Sized>(material: &M) -> Result<Vec<u8>, KeyError> {
    let mut out = KeyWriter { out: Vec::new() };
    material.serialize(&mut out)?;
    Ok(out.out)
}

/// The collections (and their iterators) whose iteration order is the
/// hasher's: their elements are sorted. Paths as `std::any::type_name`
/// spells them, without generic arguments.
const HASH_ORDERED: &[&str] = &[
    "std::collections::hash::map::HashMap",
    "std::collections::hash::map::Iter",
    "std::collections::hash::map::IterMut",
    "std::collections::hash::map::IntoIter",
    "std::collections::hash::map::Keys",
    "std::collections::hash::map::Values",
    "std::collections::hash::set::HashSet",
    "std::collections::hash::set::Iter",
    "std::collections::hash::set::IntoIter",
    "hashbrown::map::HashMap",
    "hashbrown::map::Iter",
    "hashbrown::map::IterMut",
    "hashbrown::map::IntoIter",
    "hashbrown::map::Keys",
    "hashbrown::map::Values",
    "hashbrown::set::HashSet",
    "hashbrown::set::Iter",
    "hashbrown::set::IntoIter",
];

/// Whether iterating an `I` visits elements in hash order.
fn is_hash_ordered<I>() -> bool {
    let mut name = std::any::type_name::<I>();
    loop {
        let stripped = name
            .trim_start_matches('&')
            .trim_start_matches("mut ")
            .trim_start();
        if stripped == name {
            break;
        }
        name = stripped;
    }
    let path = name.split('<').next().unwrap_or(name);
    HASH_ORDERED.contains(&path)
}

struct KeyWriter {
    out: Vec<u8>,
}

// `rmp::encode` writing into a `Vec<u8>` cannot fail; its `Result`s are
// ignored throughout.
impl KeyWriter {
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

    fn variant(&mut self, variant: &str) -> Result<(), KeyError> {
        self.map_len(1)?;
        let _ = encode::write_str(&mut self.out, variant);
        Ok(())
    }

    /// Writes a compound whose items were serialized apart.
    fn items(&mut self, shape: Shape, mut items: Vec<Vec<u8>>, sort: bool) -> Result<(), KeyError> {
        if sort {
            // MessagePack encodings are self-delimiting, so no item's bytes
            // are a prefix of another's: byte order is a total order on items.
            items.sort_unstable();
        }
        match shape {
            Shape::Seq => self.array_len(items.len())?,
            Shape::Map => self.map_len(items.len())?,
        }
        for item in items {
            self.out.extend_from_slice(&item);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Seq,
    Map,
}

/// A compound being serialized: straight into the output when its length is
/// known up front and its order kept, else item by item into a buffer.
struct Compound<'a> {
    writer: &'a mut KeyWriter,
    mode: Mode,
}

enum Mode {
    /// Elements go straight to the output.
    Direct,
    /// Items (elements, or map entries as key bytes then value bytes) are
    /// serialized apart; the header is written at the end, then the items,
    /// sorted if `sort`.
    Buffered {
        shape: Shape,
        sort: bool,
        items: Vec<Vec<u8>>,
        pending_key: Option<Vec<u8>>,
    },
}

impl Compound<'_> {
    fn buffered(writer: &mut KeyWriter, shape: Shape, sort: bool) -> Compound<'_> {
        Compound {
            writer,
            mode: Mode::Buffered {
                shape,
                sort,
                items: Vec::new(),
                pending_key: None,
            },
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        match &mut self.mode {
            Mode::Direct => value.serialize(&mut *self.writer),
            Mode::Buffered {
                shape: Shape::Seq,
                items,
                ..
            } => {
                items.push(canonical_bytes(value)?);
                Ok(())
            }
            Mode::Buffered { .. } => Err(KeyError("sequence element inside a map".into())),
        }
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), KeyError> {
        match &mut self.mode {
            Mode::Buffered {
                shape: Shape::Map,
                pending_key,
                ..
            } => {
                *pending_key = Some(canonical_bytes(key)?);
                Ok(())
            }
            _ => Err(KeyError("map key outside a map".into())),
        }
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        match &mut self.mode {
            Mode::Buffered {
                shape: Shape::Map,
                items,
                pending_key,
                ..
            } => {
                let mut entry = pending_key
                    .take()
                    .ok_or_else(|| KeyError("map value without a key".into()))?;
                entry.extend_from_slice(&canonical_bytes(value)?);
                items.push(entry);
                Ok(())
            }
            _ => Err(KeyError("map value outside a map".into())),
        }
    }

    fn finish(self) -> Result<(), KeyError> {
        match self.mode {
            Mode::Direct => Ok(()),
            Mode::Buffered {
                shape, sort, items, ..
            } => self.writer.items(shape, items, sort),
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
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        self.value(value)
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
        self.variant(variant)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, KeyError> {
        match len {
            Some(len) => {
                self.array_len(len)?;
                Ok(Compound {
                    writer: self,
                    mode: Mode::Direct,
                })
            }
            None => Ok(Compound::buffered(self, Shape::Seq, false)),
        }
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
        self.variant(variant)?;
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, KeyError> {
        // Entries are buffered even when the length is known: a map's length
        // counts entries, which are only known to be whole at the end.
        Ok(Compound::buffered(self, Shape::Map, false))
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
        self.variant(variant)?;
        self.serialize_seq(Some(len))
    }

    fn collect_seq<I>(self, iter: I) -> Result<(), KeyError>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let sort = is_hash_ordered::<I>();
        let iter = iter.into_iter();
        if let (false, Some(len)) = (sort, exact_len(&iter)) {
            self.array_len(len)?;
            let mut written = 0;
            for item in iter {
                item.serialize(&mut *self)?;
                written += 1;
            }
            return check_len(len, written);
        }
        let items = iter
            .map(|item| canonical_bytes(&item))
            .collect::<Result<Vec<_>, _>>()?;
        self.items(Shape::Seq, items, sort)
    }

    fn collect_map<K, V, I>(self, iter: I) -> Result<(), KeyError>
    where
        K: Serialize,
        V: Serialize,
        I: IntoIterator<Item = (K, V)>,
    {
        let sort = is_hash_ordered::<I>();
        let iter = iter.into_iter();
        if let (false, Some(len)) = (sort, exact_len(&iter)) {
            self.map_len(len)?;
            let mut written = 0;
            for (k, v) in iter {
                k.serialize(&mut *self)?;
                v.serialize(&mut *self)?;
                written += 1;
            }
            return check_len(len, written);
        }
        let items = iter
            .map(|(k, v)| {
                let mut entry = canonical_bytes(&k)?;
                entry.extend_from_slice(&canonical_bytes(&v)?);
                Ok(entry)
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        self.items(Shape::Map, items, sort)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), KeyError> {
        self.serialize_str(&value.to_string())
    }
}

/// The number of items left, when the iterator knows it exactly.
fn exact_len<I: Iterator>(iter: &I) -> Option<usize> {
    match iter.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    }
}

/// An iterator whose exact `size_hint` was wrong wrote a header that does
/// not match its items: refuse the material rather than key ambiguous bytes.
fn check_len(promised: usize, written: usize) -> Result<(), KeyError> {
    if promised == written {
        Ok(())
    } else {
        Err(KeyError(format!(
            "an iterator promised {promised} items and yielded {written}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

    fn bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        canonical_bytes(value).unwrap()
    }

    #[test]
    fn std_hash_containers_are_order_independent() {
        let a: HashSet<String> = (0..200).map(|i| i.to_string()).collect();
        let mut b = HashSet::with_capacity(1000);
        b.extend((0..200).rev().map(|i| i.to_string()));
        assert_eq!(bytes(&a), bytes(&b));

        let m: HashMap<u32, &str> = (0..100).map(|i| (i, "v")).collect();
        let mut n = HashMap::with_capacity(999);
        n.extend((0..100).rev().map(|i| (i, "v")));
        assert_eq!(bytes(&m), bytes(&n));
    }

    #[test]
    fn hash_containers_with_another_hasher_are_sorted_too() {
        type Fnv = std::hash::BuildHasherDefault<std::hash::DefaultHasher>;
        let a: HashMap<u32, u32, Fnv> = (0..100).map(|i| (i, i)).collect();
        let mut b: HashMap<u32, u32, Fnv> = HashMap::with_capacity_and_hasher(777, Fnv::default());
        b.extend((0..100).rev().map(|i| (i, i)));
        assert_eq!(bytes(&a), bytes(&b));
    }

    #[test]
    fn a_hash_set_serialized_through_its_iterator_is_sorted() {
        struct ViaIter(HashSet<u32>);
        impl Serialize for ViaIter {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter())
            }
        }
        struct ViaKeys(HashMap<u32, ()>);
        impl Serialize for ViaKeys {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.keys())
            }
        }
        let a: HashSet<u32> = (0..100).collect();
        let mut b = HashSet::with_capacity(500);
        b.extend((0..100).rev());
        assert_eq!(bytes(&ViaIter(a.clone())), bytes(&ViaIter(b.clone())));
        assert_eq!(bytes(&ViaIter(a.clone())), bytes(&a));
        let ka: HashMap<u32, ()> = a.iter().map(|&i| (i, ())).collect();
        let kb: HashMap<u32, ()> = b.iter().map(|&i| (i, ())).collect();
        assert_eq!(bytes(&ViaKeys(ka)), bytes(&ViaKeys(kb)));
    }

    #[test]
    fn ordered_collections_keep_their_order() {
        assert_ne!(bytes(&vec![1, 2, 3]), bytes(&vec![3, 2, 1]));
        // A BTreeMap is written in its own (sorted) order, entry by entry.
        let tree: BTreeMap<i32, u8> = [(-1, 0), (300, 1)].into_iter().collect();
        let mut expected = Vec::new();
        encode::write_map_len(&mut expected, 2).unwrap();
        encode::write_sint(&mut expected, -1).unwrap();
        encode::write_uint(&mut expected, 0).unwrap();
        encode::write_uint(&mut expected, 300).unwrap();
        encode::write_uint(&mut expected, 1).unwrap();
        assert_eq!(bytes(&tree), expected);
    }

    #[test]
    fn a_user_type_named_like_a_set_keeps_its_order() {
        #[derive(serde::Serialize)]
        struct FooSet(Vec<u32>);
        struct BarSet(Vec<u32>);
        impl Serialize for BarSet {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self)
            }
        }
        impl<'a> IntoIterator for &'a BarSet {
            type Item = &'a u32;
            type IntoIter = std::slice::Iter<'a, u32>;
            fn into_iter(self) -> Self::IntoIter {
                self.0.iter()
            }
        }
        assert_ne!(bytes(&FooSet(vec![1, 2])), bytes(&FooSet(vec![2, 1])));
        assert_ne!(bytes(&BarSet(vec![1, 2])), bytes(&BarSet(vec![2, 1])));
        assert_ne!(
            bytes(&BTreeSet::from([1])),
            bytes(&HashSet::from([1, 2])),
            "different contents"
        );
    }

    #[test]
    fn index_maps_and_sets_keep_insertion_order() {
        let forward: indexmap::IndexMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
        let backward: indexmap::IndexMap<&str, u32> = [("b", 2), ("a", 1)].into_iter().collect();
        assert_ne!(bytes(&forward), bytes(&backward));
        let forward: indexmap::IndexSet<u32> = [1, 2, 3].into_iter().collect();
        let backward: indexmap::IndexSet<u32> = [3, 2, 1].into_iter().collect();
        assert_ne!(bytes(&forward), bytes(&backward));
        // And the same order is the same key.
        let again: indexmap::IndexSet<u32> = [3, 2, 1].into_iter().collect();
        assert_eq!(bytes(&backward), bytes(&again));
    }

    #[test]
    fn hashbrown_containers_are_sorted() {
        let a: hashbrown::HashMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
        let mut b = hashbrown::HashMap::with_capacity(900);
        b.extend((0..100).rev().map(|i| (i, i)));
        assert_eq!(bytes(&a), bytes(&b));
        let std_map: HashMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
        assert_eq!(bytes(&a), bytes(&std_map), "one rule for both");
        let s: hashbrown::HashSet<u32> = (0..100).collect();
        let t: hashbrown::HashSet<u32> = (0..100).rev().collect();
        assert_eq!(bytes(&s), bytes(&t));
    }

    #[test]
    fn nested_hash_containers_are_sorted_at_every_level() {
        let make = |rev: bool| {
            let mut outer: HashMap<String, HashSet<u32>> = HashMap::with_capacity(64);
            let mut keys: Vec<u32> = (0..20).collect();
            if rev {
                keys.reverse();
            }
            for k in keys {
                let mut inner = HashSet::with_capacity(if rev { 300 } else { 3 });
                inner.extend(if rev {
                    (0..k).rev().collect::<Vec<_>>()
                } else {
                    (0..k).collect()
                });
                outer.insert(format!("k{k}"), inner);
            }
            vec![outer]
        };
        assert_eq!(bytes(&make(false)), bytes(&make(true)));
    }

    #[test]
    fn type_names_are_matched_exactly() {
        assert!(is_hash_ordered::<HashMap<u8, u8>>());
        assert!(is_hash_ordered::<&HashSet<u8>>());
        assert!(is_hash_ordered::<&&mut HashSet<u8>>());
        assert!(is_hash_ordered::<std::collections::hash_set::Iter<'_, u8>>());
        assert!(!is_hash_ordered::<BTreeMap<u8, u8>>());
        assert!(!is_hash_ordered::<&BTreeSet<u8>>());
        assert!(!is_hash_ordered::<Vec<HashSet<u8>>>());
        assert!(!is_hash_ordered::<std::slice::Iter<'_, u8>>());
    }

    #[test]
    fn distinct_shapes_give_distinct_bytes() {
        let all = [
            bytes(&None::<u8>),
            bytes(&Some(None::<u8>)),
            bytes(&0u8),
            bytes(&""),
            bytes(&Vec::<u8>::new()),
            bytes(&(1, 2)),
            bytes(&(2, 1)),
        ];
        let unique: BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }
}
