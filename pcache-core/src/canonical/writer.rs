//! The serializer that writes key material as canonical MessagePack: maps
//! and sequences of hash-ordered collections are buffered item by item and
//! written sorted; everything else goes straight to the output.

use std::fmt;

use rmp::encode;
use serde::ser::{self, Serialize};

use super::{KeyError, canonical_bytes, check_len, exact_len, is_hash_ordered};

#[derive(Default)]
pub(super) struct KeyWriter {
    out: Vec<u8>,
}

impl KeyWriter {
    /// The canonical bytes written.
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.out
    }
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
pub(super) struct Compound<'a> {
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
