//! Damaged entries — truncated, zeroed, bit-flipped, symlinked, of another type or format — are misses, never values.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use pcache_core::{Corruption, Error, Key, Store};

use support::*;

fn assert_corrupt_then_miss(store: &Store, key: &Key, what: &str) {
    match store.get::<Vec<String>>(key) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, store.entry_path(key), "{what}"),
        other => panic!("{what}: expected a corrupt entry, got {other:?}"),
    }
    assert_eq!(
        store.get::<Vec<String>>(key).unwrap(),
        None,
        "{what}: removed"
    );
}

#[test]
fn corrupt_entries_are_misses_never_values() {
    let (_dir, store) = store();
    let key = Key::new("k").unwrap();
    type Mutation = fn(&Path);
    let mutations: [(&str, Mutation); 8] = [
        ("truncated header", |p| truncate(p, 20)),
        ("truncated payload", |p| {
            let len = fs::metadata(p).unwrap().len();
            truncate(p, len - 1)
        }),
        ("empty", |p| truncate(p, 0)),
        ("zeroed", |p| {
            let len = fs::metadata(p).unwrap().len() as usize;
            fs::write(p, vec![0u8; len]).unwrap()
        }),
        ("trailing data", |p| {
            let mut bytes = fs::read(p).unwrap();
            bytes.push(0);
            fs::write(p, bytes).unwrap()
        }),
        ("future format version", |p| {
            let mut bytes = fs::read(p).unwrap();
            bytes[8] = 99;
            fix_header_crc(&mut bytes);
            fs::write(p, bytes).unwrap()
        }),
        ("directory in its place", |p| {
            fs::remove_file(p).unwrap();
            fs::create_dir_all(p.join("sub")).unwrap()
        }),
        ("payload replaced, header kept", |p| {
            let mut bytes = fs::read(p).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x40;
            fs::write(p, bytes).unwrap()
        }),
    ];
    for (what, mutate) in mutations {
        let path = entry(&store, &key);
        mutate(&path);
        assert_corrupt_then_miss(&store, &key, what);
        let path = entry(&store, &key);
        mutate(&path);
        let fetched = store.get_or_compute(&key, || vec!["recomputed".to_owned()]);
        assert!(!fetched.hit, "{what}");
        assert_eq!(fetched.value, vec!["recomputed".to_owned()]);
        assert!(
            matches!(fetched.errors.as_slice(), [Error::Corrupt { .. }]),
            "{what}: {:?}",
            fetched.errors
        );
        assert_eq!(
            store.get::<Vec<String>>(&key).unwrap().unwrap()[0],
            "recomputed"
        );
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let (_dir, store) = store();
    let key = Key::new("k").unwrap();
    entry(&store, &key);
    assert_every_bit_flip_is_detected(&store, &key);
}

#[cfg(unix)]
#[test]
fn a_symlink_in_an_entrys_place_is_corrupt_and_never_followed() {
    let (dir, store) = store();
    let key = Key::new("k").unwrap();
    // A perfectly valid entry elsewhere...
    let other = Store::open(dir.path().join("other")).unwrap();
    let target = other.set(&key, &vec!["elsewhere".to_owned()]).unwrap().path;
    // ...linked into the cache.
    std::os::unix::fs::symlink(&target, store.entry_path(&key)).unwrap();
    match store.get::<Vec<String>>(&key) {
        Err(Error::Corrupt { reason, .. }) => assert_eq!(reason, Corruption::NotAFile),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(target.exists(), "the link's target is not touched");
    assert!(
        fs::symlink_metadata(store.entry_path(&key)).is_err(),
        "the link is removed"
    );
}

#[test]
fn a_value_of_another_type_is_a_decode_error_and_is_removed() {
    let (_dir, store) = store();
    let key = Key::new("k").unwrap();
    store.set(&key, &vec!["text".to_owned()]).unwrap();
    assert!(matches!(store.get::<u64>(&key), Err(Error::Decode { .. })));
    assert_eq!(store.get::<Vec<String>>(&key).unwrap(), None);
}

#[test]
fn listing_reads_headers_and_reports_corrupt_and_foreign_files() {
    let (_dir, store) = store();
    let good = store
        .set(&Key::new("good").unwrap(), &vec![1u8; 1000])
        .unwrap();
    let bad = entry(&store, &Key::new("bad").unwrap());
    truncate(&bad, 10);
    fs::write(store.dir().join("README.txt"), "hi").unwrap();
    let scan = store.scan().unwrap();
    assert_eq!(scan.entries.len(), 2);
    let listed_good = scan.entries.iter().find(|e| e.path == good.path).unwrap();
    assert_eq!(listed_good.size_bytes, good.size_bytes);
    assert_eq!(listed_good.created, good.created);
    assert!(listed_good.corrupt.is_none() && !listed_good.expired);
    let listed_bad = scan.entries.iter().find(|e| e.path == bad).unwrap();
    assert_eq!(listed_bad.corrupt, Some(Corruption::Truncated));
    assert_eq!(scan.foreign, vec![store.dir().join("README.txt")]);
    // flush removes corrupt entries even without an expiry, and leaves foreign files.
    assert_eq!(store.flush().unwrap().entries, 1);
    assert!(store.dir().join("README.txt").exists());
}

#[test]
fn every_single_bit_flip_of_an_entry_with_notes_is_detected() {
    let (_dir, store) = store();
    let key = Key::new("noted").unwrap();
    store
        .set_with_notes(&key, &vec!["a".to_owned()], Duration::ZERO, b"notes!")
        .unwrap();
    // The notes section is there to be flipped too.
    assert!(
        fs::read(store.entry_path(&key))
            .unwrap()
            .ends_with(b"notes!")
    );
    assert_every_bit_flip_is_detected(&store, &key);
}

#[test]
fn entries_of_an_older_format_are_misses_not_values() {
    let (_dir, store) = store();
    let key = Key::new("old").unwrap();
    store.set(&key, &1u32).unwrap();
    let path = store.entry_path(&key);
    let mut bytes = fs::read(&path).unwrap();
    // Format 2, the version before notes, with a valid header checksum.
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    fix_header_crc(&mut bytes);
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        store.get::<u32>(&key),
        Err(Error::Corrupt {
            reason: Corruption::UnsupportedVersion(2),
            ..
        })
    ));
    assert!(!path.exists());
    assert_eq!(store.get::<u32>(&key).unwrap(), None, "then a plain miss");
}
