//! Large entries are checksummed once per version of their file, and no change to the file goes unseen.

mod support;

use std::fs;
use std::time::Duration;

use pcache_core::{Corruption, Error, Key};

use support::*;

#[test]
fn a_large_entry_is_verified_once_and_trusted_while_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = settled_store(dir.path());
    let key = Key::new("large").unwrap();
    let value = pattern(300_000, 9);
    store.set(&key, &value).unwrap();
    assert!(
        seen_file(&store, &key).is_file(),
        "the writer recorded what it wrote"
    );
    fs::remove_file(seen_file(&store, &key)).unwrap();
    assert_eq!(store.get::<Vec<u8>>(&key).unwrap().unwrap(), value);
    assert!(seen_file(&store, &key).is_file(), "verification recorded");
    for _ in 0..3 {
        assert_eq!(store.get::<Vec<u8>>(&key).unwrap().unwrap(), value);
    }
    // Text and other values take the same path.
    let text_key = Key::new("text").unwrap();
    let text = "é".repeat(100_000);
    store.set(&text_key, &text).unwrap();
    for _ in 0..2 {
        assert_eq!(store.get::<String>(&text_key).unwrap().unwrap(), text);
    }
    // Removing the entry removes its sidecar.
    assert!(store.remove(&key).unwrap());
    assert!(!seen_file(&store, &key).exists());
}

#[test]
fn a_bit_flipped_in_place_with_the_mtime_restored_is_caught_after_trust() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let store = settled_store(dir.path());
    for (i, offset) in [70u64, 150_000, 299_000].into_iter().enumerate() {
        let key = Key::new(&("flip", i)).unwrap();
        store.set(&key, &pattern(300_000, 1)).unwrap();
        store.get::<Vec<u8>>(&key).unwrap().unwrap();
        store.get::<Vec<u8>>(&key).unwrap().unwrap();
        let path = store.entry_path(&key);
        let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&path).unwrap());
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut byte = [0u8; 1];
        file.seek(SeekFrom::Start(offset)).unwrap();
        std::io::Read::read_exact(&mut file, &mut byte).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(&[byte[0] ^ 0x10]).unwrap();
        drop(file);
        filetime::set_file_mtime(&path, mtime).unwrap();
        assert!(
            matches!(
                store.get::<Vec<u8>>(&key),
                Err(Error::Corrupt {
                    reason: Corruption::PayloadChecksum,
                    ..
                })
            ),
            "offset {offset}"
        );
        assert_eq!(store.get::<Vec<u8>>(&key).unwrap(), None);
    }
}

#[test]
fn a_file_replaced_by_another_of_the_same_size_is_caught_after_trust() {
    let dir = tempfile::tempdir().unwrap();
    let store = settled_store(dir.path());
    let key = Key::new("replaced").unwrap();
    store.set(&key, &pattern(300_000, 2)).unwrap();
    store.get::<Vec<u8>>(&key).unwrap().unwrap();
    let path = store.entry_path(&key);
    let mut bytes = fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[len / 2] ^= 0xff;
    // Renamed over it (a new inode)…
    let other = dir.path().join("other");
    fs::write(&other, &bytes).unwrap();
    fs::rename(&other, &path).unwrap();
    assert!(store.get::<Vec<u8>>(&key).is_err());
    // …or rewritten in place, same size, same mtime.
    store.set(&key, &pattern(300_000, 2)).unwrap();
    store.get::<Vec<u8>>(&key).unwrap().unwrap();
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&path).unwrap());
    fs::write(&path, &bytes).unwrap();
    filetime::set_file_mtime(&path, mtime).unwrap();
    assert!(store.get::<Vec<u8>>(&key).is_err());
    assert_eq!(store.get::<Vec<u8>>(&key).unwrap(), None);
}

#[test]
fn an_entry_changed_within_the_racy_window_is_never_trusted() {
    use std::io::{Seek, SeekFrom, Write};
    // The real clock: the entry was just written, so its verification is
    // not recorded, and a change right after it is checked like any other.
    let (dir, store) = store();
    let key = Key::new("racy").unwrap();
    store.set(&key, &pattern(300_000, 4)).unwrap();
    store.get::<Vec<u8>>(&key).unwrap().unwrap();
    let path = store.entry_path(&key);
    let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(1000)).unwrap();
    file.write_all(b"!").unwrap();
    drop(file);
    assert!(store.get::<Vec<u8>>(&key).is_err());
    drop(dir);
}

#[test]
fn a_trusted_stream_still_checks_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let store = settled_store(dir.path());
    let key = Key::new("stream").unwrap();
    let mut writer = store.stream_writer(&key).unwrap();
    for i in 0..100_000u64 {
        writer.push(&i).unwrap();
    }
    writer.commit(Duration::ZERO).unwrap();
    for _ in 0..2 {
        let sum: u64 = store
            .stream_reader::<u64>(&key)
            .unwrap()
            .unwrap()
            .map(Result::unwrap)
            .sum();
        assert_eq!(sum, (0..100_000u64).sum());
    }
    assert!(seen_file(&store, &key).is_file());
    let path = store.entry_path(&key);
    let mut bytes = fs::read(&path).unwrap();
    bytes[200_000] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let result: Result<Vec<u64>, _> = match store.stream_reader::<u64>(&key) {
        Ok(Some(reader)) => reader.collect(),
        Ok(None) => panic!("the entry is there"),
        Err(e) => Err(e),
    };
    assert!(result.is_err());
}

/// The real clock, a real file system: the writer records the entry it
/// wrote (after the racy window), and then a change made as soon as the
/// test can make it, keeping the size and the mtime, is still caught.
#[test]
fn a_bit_flipped_in_place_right_after_the_write_is_caught() {
    use std::io::{Seek, SeekFrom, Write};
    let (dir, store) = store();
    for round in 0..20u8 {
        let key = Key::new(&("flip-right-after", round)).unwrap();
        store.set(&key, &pattern(200_000, round)).unwrap();
        assert!(seen_file(&store, &key).is_file(), "recorded at write time");
        let path = store.entry_path(&key);
        let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&path).unwrap());
        let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(100_000)).unwrap();
        file.write_all(&[round ^ 0x5a]).unwrap();
        drop(file);
        filetime::set_file_mtime(&path, mtime).unwrap();
        assert!(
            matches!(
                store.get::<Vec<u8>>(&key),
                Err(Error::Corrupt {
                    reason: Corruption::PayloadChecksum,
                    ..
                })
            ),
            "round {round}"
        );
    }
    drop(dir);
}

/// A valid-looking file of the same size renamed over the entry as soon as
/// it is written (a new inode, within the same tick): checked, and caught.
#[test]
fn a_file_of_the_same_size_renamed_over_a_fresh_entry_is_caught() {
    let (dir, store) = store();
    for round in 0..20u8 {
        let key = Key::new(&("replaced-right-after", round)).unwrap();
        store.set(&key, &pattern(200_000, round)).unwrap();
        let path = store.entry_path(&key);
        let mut bytes = fs::read(&path).unwrap();
        let len = bytes.len();
        bytes[len / 2] ^= 0x01;
        let other = dir.path().join("other");
        fs::write(&other, &bytes).unwrap();
        fs::rename(&other, &path).unwrap();
        assert!(store.get::<Vec<u8>>(&key).is_err(), "round {round}");
    }
}

/// The racy window is the coarse clock's tick: the writer waits for it
/// before recording, so the record never names a ctime a later change
/// could repeat.
#[test]
fn the_record_is_written_only_once_the_entry_has_settled() {
    let (dir, store) = store();
    let key = Key::new("settled").unwrap();
    store.set(&key, &pattern(200_000, 7)).unwrap();
    let ctime = {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(store.entry_path(&key)).unwrap();
        std::time::UNIX_EPOCH + Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32)
    };
    let recorded = fs::metadata(seen_file(&store, &key))
        .unwrap()
        .modified()
        .unwrap();
    assert!(
        recorded > ctime,
        "recorded at {recorded:?}, the entry changed at {ctime:?}"
    );
    drop(dir);
}

#[test]
fn the_trace_shows_a_checksum_skipped_only_for_a_trusted_entry() {
    use pcache_core::trace::Trace;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("traced").unwrap();
    let value = pattern(300_000, 5);
    settled_store(dir.path()).set(&key, &value).unwrap();
    let traced_get = || {
        let trace = Arc::new(Trace::new(true));
        let store = settled_store(dir.path()).with_trace(Arc::clone(&trace));
        assert_eq!(store.get::<Vec<u8>>(&key).unwrap().unwrap(), value);
        trace.summary("traced").unwrap()
    };
    let trusted = traced_get();
    assert!(
        trusted.contains(", identity check (checksum skipped) "),
        "{trusted}"
    );
    assert!(!trusted.contains(", checksum "), "{trusted}");

    // Without its record, the entry is checksummed, and the check recorded.
    fs::remove_file(seen_file(&settled_store(dir.path()), &key)).unwrap();
    let checked = traced_get();
    assert!(checked.contains(", checksum "), "{checked}");
    assert!(checked.contains(", record the check "), "{checked}");
    assert!(!checked.contains("skipped"), "{checked}");
    assert!(traced_get().contains("(checksum skipped)"));
}
