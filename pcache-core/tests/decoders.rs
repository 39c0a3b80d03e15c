//! Property tests: every reader of on-disk data, fed arbitrary bytes and
//! mutations of valid files, never panics and never returns a value other
//! than the one that was stored.

use std::fs;
use std::time::Duration;

use pcache_core::{Key, Store};
use proptest::prelude::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// A mutation of a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Truncate { len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let n = bytes.len().max(1);
        match m {
            Mutation::Flip { at, bit } => {
                if !bytes.is_empty() {
                    bytes[at % n] ^= 1 << bit;
                }
            }
            Mutation::Set { at, byte } => {
                if !bytes.is_empty() {
                    bytes[at % n] = *byte;
                }
            }
            Mutation::Truncate { len } => bytes.truncate(len % n),
            Mutation::Insert { at, bytes: new } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::Remove { at, len } => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    let end = (at + len).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_never_a_value(bytes in prop::collection::vec(any::<u8>(), 0..512), magic in any::<bool>()) {
        let (_dir, store) = store();
        let key = Key::new("k").unwrap();
        let mut bytes = bytes;
        if magic {
            // Give the decoder a chance past the first check.
            bytes.splice(0..0, *b"\x89pcache\n");
        }
        fs::write(store.entry_path(&key), &bytes).unwrap();
        prop_assert!(!matches!(store.get::<Vec<u32>>(&key), Ok(Some(_))));
        fs::write(store.entry_path(&key), &bytes).unwrap();
        prop_assert!(!matches!(store.get::<Vec<u8>>(&key), Ok(Some(_))));
        fs::write(store.entry_path(&key), &bytes).unwrap();
        prop_assert!(!matches!(store.stream_reader::<u64>(&key), Ok(Some(_))));
        fs::write(store.entry_path(&key), &bytes).unwrap();
        let _ = store.entries().unwrap();
        let _ = store.flush().unwrap();
    }

    #[test]
    fn a_mutated_value_entry_is_the_original_or_nothing(
        value in prop::collection::vec(any::<(u32, String)>(), 0..20),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let (_dir, store) = store();
        let key = Key::new("k").unwrap();
        let path = store.set(&key, &value).unwrap().path;
        let mut bytes = fs::read(&path).unwrap();
        let original = bytes.clone();
        apply(&mut bytes, &mutations);
        fs::write(&path, &bytes).unwrap();
        match store.get::<Vec<(u32, String)>>(&key) {
            Ok(Some(read)) => {
                prop_assert_eq!(&bytes, &original, "a changed file was accepted");
                prop_assert_eq!(read, value);
            }
            Ok(None) | Err(_) => prop_assert_ne!(bytes, original),
        }
    }

    #[test]
    fn a_mutated_byte_entry_is_the_original_or_nothing(
        len in prop::sample::select(vec![0usize, 1, 300, 70_000, 200_000]),
        mutations in prop::collection::vec(mutation(), 1..3),
    ) {
        let (_dir, store) = store();
        let key = Key::new("k").unwrap();
        let value: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let path = store.set(&key, &value).unwrap().path;
        let mut bytes = fs::read(&path).unwrap();
        let original = bytes.clone();
        apply(&mut bytes, &mutations);
        fs::write(&path, &bytes).unwrap();
        if let Ok(Some(read)) = store.get::<Vec<u8>>(&key) {
            prop_assert_eq!(&bytes, &original);
            prop_assert_eq!(read, value);
        }
    }

    #[test]
    fn a_mutated_stream_yields_the_original_items_or_fails_before_any(
        items in prop::collection::vec(any::<(u16, String)>(), 0..200),
        mutations in prop::collection::vec(mutation(), 1..3),
    ) {
        let (_dir, store) = store();
        let key = Key::new("s").unwrap();
        let mut writer = store.stream_writer(&key).unwrap();
        for item in &items {
            writer.push(item).unwrap();
        }
        let path = writer.commit(Duration::ZERO).unwrap().path;
        let mut bytes = fs::read(&path).unwrap();
        let original = bytes.clone();
        apply(&mut bytes, &mutations);
        fs::write(&path, &bytes).unwrap();
        if let Ok(Some(reader)) = store.stream_reader::<(u16, String)>(&key) {
            prop_assert_eq!(&bytes, &original);
            let read: Vec<_> = reader.map(Result::unwrap).collect();
            prop_assert_eq!(read, items);
        }
    }

    #[test]
    fn arbitrary_cache_toml_never_panics(text in "\\PC{0,200}", toml_like in "(name|package|expiry_secs|format) = (\"[a-z]{0,5}\"|-?[0-9]{1,20}|\\[\\]|true)") {
        let (_dir, store) = store();
        for text in [text, toml_like] {
            fs::write(store.dir().join("cache.toml"), &text).unwrap();
            let _ = store.meta();
        }
    }

    #[test]
    fn arbitrary_key_text_never_panics(text in "\\PC{0,60}", hex in "[0-9a-f]{30,50}") {
        let _ = text.parse::<Key>();
        if let Ok(key) = hex.parse::<Key>() {
            prop_assert_eq!(key.to_string().parse::<Key>().unwrap(), key);
        }
    }
}
