//! Streams and notes: written item by item, read back lazily, checked frame by frame.

mod support;

use std::fs;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pcache_core::{Error, Key, Store};

use support::*;

#[test]
fn streams_round_trip_and_uncommitted_streams_leave_nothing() {
    let (_dir, store) = store();
    let key = Key::new("stream").unwrap();
    let mut writer = store.stream_writer(&key).unwrap();
    for i in 0..100_000u64 {
        writer.push(&(i, format!("row {i}"))).unwrap();
    }
    drop(writer);
    assert!(
        store
            .stream_reader::<(u64, String)>(&key)
            .unwrap()
            .is_none()
    );
    assert!(store.scan().unwrap().temps.is_empty());

    let mut writer = store.stream_writer(&key).unwrap();
    for i in 0..100_000u64 {
        writer.push(&(i, format!("row {i}"))).unwrap();
    }
    writer.commit(Duration::from_millis(3)).unwrap();
    let reader = store.stream_reader::<(u64, String)>(&key).unwrap().unwrap();
    assert_eq!(reader.info().compute_time, Duration::from_millis(3));
    for (i, item) in reader.enumerate() {
        assert_eq!(item.unwrap(), (i as u64, format!("row {i}")));
    }
}

#[test]
fn a_corrupt_stream_is_reported_before_any_item() {
    let (_dir, store) = store();
    let key = Key::new("stream").unwrap();
    let mut writer = store.stream_writer(&key).unwrap();
    for i in 0..10_000u32 {
        writer.push(&i).unwrap();
    }
    let path = writer.commit(Duration::ZERO).unwrap().path;
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() - 7;
    bytes[at] ^= 1;
    fs::write(&path, bytes).unwrap();
    assert!(matches!(
        store.stream_reader::<u32>(&key),
        Err(Error::Corrupt { .. })
    ));
    assert!(store.stream_reader::<u32>(&key).unwrap().is_none());
}

#[test]
fn stream_items_larger_than_the_read_block_round_trip() {
    let (_dir, store) = store();
    let key = Key::new("big items").unwrap();
    let mut writer = store.stream_writer(&key).unwrap();
    let items: Vec<String> = (0..20).map(|i| "x".repeat(1000 + i * 50_000)).collect();
    for item in &items {
        writer.push(item).unwrap();
    }
    writer.commit(Duration::ZERO).unwrap();
    let read: Vec<String> = store
        .stream_reader::<String>(&key)
        .unwrap()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(read, items);
}

#[test]
fn a_stream_read_as_the_wrong_type_is_a_decode_error_not_garbage() {
    let (_dir, store) = store();
    let key = Key::new("typed").unwrap();
    let mut writer = store.stream_writer(&key).unwrap();
    for i in 0..10u32 {
        writer.push(&format!("item {i}")).unwrap();
    }
    writer.commit(Duration::ZERO).unwrap();
    let mut reader = store.stream_reader::<u64>(&key).unwrap().unwrap();
    assert!(matches!(reader.next(), Some(Err(Error::Decode { .. }))));
    assert!(reader.next().is_none());
}

#[test]
fn a_stream_changed_in_place_after_it_was_verified_yields_an_error_never_a_wrong_item() {
    use std::io::{Seek, SeekFrom, Write};
    let (_dir, store) = store();
    let key = Key::new("stream").unwrap();
    let mut writer = store.stream_writer(&key).unwrap();
    for i in 0..200_000u32 {
        writer.push(&(i, i.wrapping_mul(7))).unwrap();
    }
    let path = writer.commit(Duration::ZERO).unwrap().path;
    let len = fs::metadata(&path).unwrap().len();
    // Verified on open...
    let reader = store.stream_reader::<(u32, u32)>(&key).unwrap().unwrap();
    // ...then a byte near the end changes in place (same inode), as a disk
    // error or another program could do.
    let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(len - 100)).unwrap();
    file.write_all(&[0xff]).unwrap();
    drop(file);
    let mut good = 0u32;
    let mut failed = false;
    for item in reader {
        match item {
            Ok(item) => {
                assert!(!failed, "an item after the error");
                assert_eq!(item, (good, good.wrapping_mul(7)), "a wrong item");
                good += 1;
            }
            Err(Error::Corrupt { .. }) => failed = true,
            Err(other) => panic!("{other}"),
        }
    }
    assert!(failed, "the change went unnoticed");
    assert!(good > 100_000, "frames before the change are read: {good}");
    assert!(!path.exists(), "the changed entry is removed");
}

#[test]
fn flush_keeps_a_stream_refreshed_after_planning() {
    let (dir, _) = store();
    let (offset, clock) = manual_clock();
    let store = Store::open(dir.path().join("cache"))
        .unwrap()
        .with_clock(clock);
    let key = Key::new("stream").unwrap();
    let write = |n: u32| {
        let mut writer = store.stream_writer(&key).unwrap();
        for i in 0..n {
            writer.push(&i).unwrap();
        }
        writer.commit(Duration::ZERO).unwrap();
    };
    write(10);
    offset.store(1000, Ordering::SeqCst);
    let plan = store.plan_flush(Some(Duration::from_secs(500))).unwrap();
    assert_eq!(plan.entries.len(), 1);
    write(20);
    assert_eq!(store.apply(&plan).unwrap().entries, 0);
    assert_eq!(store.stream_reader::<u32>(&key).unwrap().unwrap().len(), 20);
}

#[test]
fn notes_round_trip_with_values_bytes_and_streams() {
    use pcache_core::Computed;
    let (_dir, store) = store();
    let notes = b"cargo:rustc-link-lib=static=x".to_vec();
    for (i, size) in [10usize, 200_000].into_iter().enumerate() {
        let key = Key::new(&("bytes", i)).unwrap();
        let value = pattern(size, 3);
        store
            .set_with_notes(&key, &value, Duration::from_millis(5), &notes)
            .unwrap();
        let hit = store
            .try_get_or_compute_with(&key, &|_| true, || -> Result<Computed<Vec<u8>>, ()> {
                unreachable!("stored")
            })
            .unwrap();
        assert_eq!((hit.value, &hit.notes), (value, &notes), "{size} bytes");
    }
    let key = Key::new("stream").unwrap();
    let mut writer = store.stream_writer(&key).unwrap();
    for i in 0..70_000u32 {
        writer.push(&i).unwrap();
    }
    writer.commit_with_notes(Duration::ZERO, &notes).unwrap();
    let reader = store.stream_reader::<u32>(&key).unwrap().unwrap();
    assert_eq!(reader.notes(), notes);
    assert_eq!(reader.map(Result::unwrap).count(), 70_000);
}
