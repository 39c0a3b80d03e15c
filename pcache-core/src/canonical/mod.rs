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

#[cfg(test)]
mod tests;
mod writer;

use std::fmt;

use serde::ser::{self, Serialize};

use writer::KeyWriter;

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
    let mut writer = KeyWriter::default();
    material.serialize(&mut writer)?;
    Ok(writer.into_bytes())
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
pub(crate) fn is_hash_ordered<I>() -> bool {
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

/// The number of items left, when the iterator knows it exactly.
pub(crate) fn exact_len<I: Iterator>(iter: &I) -> Option<usize> {
    match iter.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    }
}

/// An iterator whose exact `size_hint` was wrong wrote a header that does
/// not match its items: refuse the material rather than key ambiguous bytes.
pub(crate) fn check_len(promised: usize, written: usize) -> Result<(), KeyError> {
    if promised == written {
        Ok(())
    } else {
        Err(KeyError(format!(
            "an iterator promised {promised} items and yielded {written}"
        )))
    }
}
