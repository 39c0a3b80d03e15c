//! A step's key in parts, so that a miss can be explained in the step's own
//! terms: which `file()`, `dir()` or `env()` input changed, or which other
//! input, or the build script's code.
//!
//! The input helpers announce themselves while the inputs are serialized
//! (a thread-local collector); the other inputs are told apart by
//! splitting the canonical serialization at its top level: the elements of a
//! tuple, a struct or a sequence. The parts are only worked out on a miss:
//! a hit needs the key alone.

use std::cell::RefCell;

use pcache_core::record::{InputPart, KeyParts, MissReason};
use pcache_core::{KeyError, canonical_bytes};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

thread_local! {
    /// The helper inputs met while serializing a step's inputs.
    static HELPERS: RefCell<Option<Vec<InputPart>>> = const { RefCell::new(None) };
}

/// A step's inputs: their canonical serialization (the key material), and
/// the helper inputs among them.
#[derive(Debug)]
pub(crate) struct Inputs {
    pub(crate) bytes: Result<Vec<u8>, KeyError>,
    pub(crate) helpers: Vec<InputPart>,
}

/// Serializes `inputs` canonically, collecting the helper inputs in them.
pub(crate) fn inputs<I: Serialize>(inputs: &I) -> Inputs {
    let outer = HELPERS.with(|h| h.borrow_mut().replace(Vec::new()));
    let bytes = canonical_bytes(inputs);
    let helpers = HELPERS.with(|h| std::mem::replace(&mut *h.borrow_mut(), outer));
    Inputs {
        bytes,
        helpers: helpers.unwrap_or_default(),
    }
}

/// Called by the input helpers as they are serialized.
pub(crate) fn note_helper(part: InputPart) {
    HELPERS.with(|h| {
        if let Some(helpers) = h.borrow_mut().as_mut() {
            helpers.push(part);
        }
    });
}

/// The inputs' parts: the helpers, then every top-level input by position.
pub(crate) fn input_parts(bytes: &[u8], helpers: &[InputPart]) -> Vec<InputPart> {
    let mut parts = helpers.to_vec();
    parts.extend(
        top_level(bytes)
            .into_iter()
            .enumerate()
            .map(|(index, element)| InputPart::Other {
                index: index as u32,
                digest: xxh3_128(element),
            }),
    );
    parts
}

/// Why a step missed, judged by its key's parts against the last miss's.
pub(crate) fn miss_reason(parts: &KeyParts, previous: Option<&KeyParts>) -> MissReason {
    let Some(previous) = previous else {
        return MissReason::NewKey;
    };
    let digest = |p: &KeyParts| p.code.as_ref().map(|c| c.digest);
    if digest(parts) != digest(previous) {
        MissReason::CodeChanged
    } else if parts.inputs_digest != previous.inputs_digest {
        MissReason::InputsChanged
    } else {
        MissReason::NewKey
    }
}

/// The top-level elements of a canonical serialization: a tuple's, a
/// struct's or a sequence's elements, else the whole.
fn top_level(bytes: &[u8]) -> Vec<&[u8]> {
    let whole = vec![bytes];
    let Some((count, mut at)) = array_header(bytes) else {
        return whole;
    };
    let mut elements = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let Some(end) = skip(bytes, at) else {
            return whole;
        };
        elements.push(&bytes[at..end]);
        at = end;
    }
    if at == bytes.len() { elements } else { whole }
}

fn array_header(bytes: &[u8]) -> Option<(usize, usize)> {
    match *bytes.first()? {
        b @ 0x90..=0x9f => Some((usize::from(b & 0x0f), 1)),
        0xdc => Some((
            usize::from(u16::from_be_bytes(bytes.get(1..3)?.try_into().ok()?)),
            3,
        )),
        0xdd => Some((
            u32::from_be_bytes(bytes.get(1..5)?.try_into().ok()?) as usize,
            5,
        )),
        _ => None,
    }
}

/// The end of the MessagePack value starting at `at`.
fn skip(bytes: &[u8], at: usize) -> Option<usize> {
    let marker = *bytes.get(at)?;
    let be = |from: usize, len: usize| -> Option<usize> {
        let raw = bytes.get(at + from..at + from + len)?;
        Some(raw.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)))
    };
    let end = match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => at + 1,
        0xcc | 0xd0 => at + 2,
        0xcd | 0xd1 => at + 3,
        0xca | 0xce | 0xd2 => at + 5,
        0xcb | 0xcf | 0xd3 => at + 9,
        0xa0..=0xbf => at + 1 + usize::from(marker & 0x1f),
        0xc4 | 0xd9 => at + 2 + be(1, 1)?,
        0xc5 | 0xda => at + 3 + be(1, 2)?,
        0xc6 | 0xdb => at + 5 + be(1, 4)?,
        0x90..=0x9f | 0xdc | 0xdd | 0x80..=0x8f | 0xde | 0xdf => {
            let (count, header) = match marker {
                0x90..=0x9f => (usize::from(marker & 0x0f), 1),
                0x80..=0x8f => (2 * usize::from(marker & 0x0f), 1),
                0xdc => (be(1, 2)?, 3),
                0xdd => (be(1, 4)?, 5),
                0xde => (2 * be(1, 2)?, 3),
                _ => (2 * be(1, 4)?, 5),
            };
            let mut end = at + header;
            for _ in 0..count {
                end = skip(bytes, end)?;
            }
            end
        }
        // Extensions: never written by the canonical serializer.
        _ => return None,
    };
    (end <= bytes.len()).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn top_level_inputs_are_split_by_position() {
        let map: HashMap<&str, Vec<Option<f64>>> = [("a", vec![Some(1.5), None])].into();
        let value = (
            "header.h",
            7u64,
            map,
            vec![u128::MAX],
            (-3i8, "é".repeat(40)),
        );
        let bytes = canonical_bytes(&value).unwrap();
        let parts = top_level(&bytes);
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[0], canonical_bytes(&"header.h").unwrap());
        assert_eq!(parts[1], canonical_bytes(&7u64).unwrap());
        assert_eq!(parts[4], canonical_bytes(&(-3i8, "é".repeat(40))).unwrap());
        // A scalar is one part; damaged bytes are one part too.
        assert_eq!(top_level(&canonical_bytes(&5u8).unwrap()).len(), 1);
        assert_eq!(top_level(&bytes[..bytes.len() - 1]).len(), 1);
    }

    #[test]
    fn helpers_are_collected_while_serializing() {
        let env = crate::env("PCACHE_PARTS_TEST_UNSET");
        let collected = inputs(&("x", &env));
        assert!(collected.bytes.is_ok());
        assert_eq!(collected.helpers.len(), 1);
        assert!(matches!(
            &collected.helpers[0],
            InputPart::Env { name, value_digest: None } if name == "PCACHE_PARTS_TEST_UNSET"
        ));
        // Outside a step's inputs, nothing is collected.
        let _ = canonical_bytes(&env);
        assert_eq!(inputs(&1u8).helpers.len(), 0);
    }

    #[test]
    fn misses_are_explained_by_what_differs_from_the_last() {
        let base = KeyParts {
            inputs_digest: 1,
            code: Some(pcache_core::record::CodeParts::default()),
            ..KeyParts::default()
        };
        assert_eq!(miss_reason(&base, None), MissReason::NewKey);
        let mut inputs = base.clone();
        inputs.inputs_digest = 2;
        assert_eq!(miss_reason(&inputs, Some(&base)), MissReason::InputsChanged);
        let mut code = inputs.clone();
        code.code = None;
        assert_eq!(miss_reason(&code, Some(&base)), MissReason::CodeChanged);
        let mut other = base.clone();
        other.type_name = "u64".into();
        assert_eq!(miss_reason(&other, Some(&base)), MissReason::NewKey);
    }
}
