//! What the store's tests share: a store in a temporary directory, entry
//! files to damage, and an independent CRC-32.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use pcache_core::{Key, Store};

pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    (dir, store)
}

/// Writes `value` under `key` and returns the entry's path.
pub fn entry(store: &Store, key: &Key) -> std::path::PathBuf {
    store
        .set(key, &vec!["some".to_owned(), "value".to_owned()])
        .unwrap()
        .path
}

pub fn truncate(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

pub fn fix_header_crc(bytes: &mut [u8]) {
    let crc = crc32fast_hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

pub fn crc32fast_hash(bytes: &[u8]) -> u32 {
    // CRC-32 (IEEE), bitwise: the test does not trust the crate under test.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Flips each bit of `key`'s entry, as stored, in turn: every read must
/// fail.
pub fn assert_every_bit_flip_is_detected(store: &Store, key: &Key) {
    let path = store.entry_path(key);
    let original = fs::read(&path).unwrap();
    for bit in 0..original.len() * 8 {
        let mut bytes = original.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        fs::write(&path, &bytes).unwrap();
        assert!(
            store.get::<Vec<String>>(key).is_err(),
            "bit {bit} went unnoticed"
        );
    }
}

pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A store whose clock runs ahead, so entries written now count as settled
/// (older than the racy window) and their verification is recorded.
pub fn settled_store(dir: &Path) -> Store {
    Store::open(dir)
        .unwrap()
        .with_clock(|| SystemTime::now() + Duration::from_secs(60))
}

pub fn seen_file(store: &Store, key: &Key) -> std::path::PathBuf {
    let mut name = store.entry_path(key).into_os_string();
    name.push(".seen");
    name.into()
}

/// A clock the test moves by hand.
pub fn manual_clock() -> (
    Arc<AtomicU64>,
    impl Fn() -> SystemTime + Send + Sync + 'static,
) {
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    (offset, move || {
        SystemTime::now() + Duration::from_secs(o.load(Ordering::SeqCst))
    })
}
