//! Fuzzes every reader of entry files: raw bytes as an entry, and valid
//! entries with coverage-guided mutations, which must read back as the
//! original value or as nothing.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pcache_core::{Key, Store};

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        // Memory-backed where available: the target writes a file per run.
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let path = dir.path().to_owned();
        (dir, path)
    });
    path
}

/// Applies `(position, xor)` mutations to a file's bytes.
fn mutate(original: &[u8], mutations: &[(u16, u8)]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for (at, xor) in mutations {
        let at = usize::from(*at) % bytes.len();
        bytes[at] ^= xor;
    }
    bytes
}

fuzz_target!(|input: (Vec<(u32, String)>, Vec<(u16, u8)>, Vec<u8>)| {
    let (value, mutations, raw) = input;
    let store = Store::at(dir());
    let key = Key::new("fuzz").unwrap();
    let path = store.entry_path(&key);

    // Raw bytes, through each reader.
    for reader in 0..3 {
        std::fs::write(&path, &raw).unwrap();
        match reader {
            0 => assert!(!matches!(
                store.get::<Vec<(u32, String)>>(&key),
                Ok(Some(_))
            )),
            1 => assert!(!matches!(store.get::<Vec<u8>>(&key), Ok(Some(_)))),
            _ => assert!(!matches!(
                store.stream_reader::<(u32, String)>(&key),
                Ok(Some(_))
            )),
        }
    }

    // A valid value entry, mutated.
    store.set(&key, &value).unwrap();
    let original = std::fs::read(&path).unwrap();
    let bytes = mutate(&original, &mutations);
    std::fs::write(&path, &bytes).unwrap();
    if let Ok(Some(read)) = store.get::<Vec<(u32, String)>>(&key) {
        assert_eq!(bytes, original, "a changed entry was accepted");
        assert_eq!(read, value);
    }

    // A valid stream entry, mutated.
    let mut writer = store.stream_writer(&key).unwrap();
    for item in &value {
        writer.push(item).unwrap();
    }
    writer.commit(Duration::ZERO).unwrap();
    let original = std::fs::read(&path).unwrap();
    let bytes = mutate(&original, &mutations);
    std::fs::write(&path, &bytes).unwrap();
    if let Ok(Some(reader)) = store.stream_reader::<(u32, String)>(&key) {
        assert_eq!(bytes, original, "a changed stream was accepted");
        let read: Vec<_> = reader.map(Result::unwrap).collect();
        assert_eq!(read, value);
    }
    let _ = store.entries();
});
