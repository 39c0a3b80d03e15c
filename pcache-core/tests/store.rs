//! Round-trips, expiry, flush/clear/delete and corruption, in one process.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use pcache_core::{CacheMeta, Corruption, Error, Key, Store};
use serde::{Deserialize, Serialize};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    (dir, store)
}

fn round_trip<T>(store: &Store, value: T)
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let key = Key::new(&format!("{value:?}")).unwrap();
    store.set(&key, &value).unwrap();
    assert_eq!(store.get::<T>(&key).unwrap(), Some(value));
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Newtype(i64),
    Tuple(u8, String),
    Struct { x: f64, tags: Vec<String> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    scores: BTreeMap<String, Vec<f32>>,
    parent: Option<Box<Record>>,
    shape: Shape,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

#[test]
fn values_of_many_types_round_trip() {
    let (_dir, store) = store();
    round_trip(&store, String::from("héllo 🦀"));
    round_trip(&store, String::new());
    round_trip(&store, -42i64);
    round_trip(&store, u128::MAX);
    round_trip(&store, 3.5f64);
    round_trip(&store, f32::MIN_POSITIVE);
    round_trip(&store, (1u8, "two".to_owned(), 3.0f64));
    round_trip(&store, Some(vec![Some(1), None]));
    round_trip(&store, None::<String>);
    round_trip(&store, ());
    round_trip(
        &store,
        vec![Shape::Unit, Shape::Newtype(-1), Shape::Tuple(2, "t".into())],
    );
    round_trip(
        &store,
        Shape::Struct {
            x: 0.25,
            tags: vec!["a".into()],
        },
    );
    let nested: HashMap<String, BTreeMap<u32, Vec<String>>> = (0..20)
        .map(|i| {
            (
                format!("k{i}"),
                (0..i).map(|j| (j, vec![j.to_string(); 3])).collect(),
            )
        })
        .collect();
    round_trip(&store, nested);
    round_trip(
        &store,
        Record {
            id: 7,
            name: "root".into(),
            scores: [("a".to_owned(), vec![1.0, 2.5])].into(),
            parent: Some(Box::new(Record {
                id: 1,
                name: "p".into(),
                scores: BTreeMap::new(),
                parent: None,
                shape: Shape::Unit,
                blob: vec![],
            })),
            shape: Shape::Newtype(3),
            blob: vec![0, 1, 255],
        },
    );
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn byte_blobs_from_empty_to_64_mib_round_trip_as_msgpack_bin() {
    let (_dir, store) = store();
    for (i, len) in [
        0usize,
        1,
        255,
        256,
        65_535,
        65_536,
        65_537,
        1 << 20,
        64 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let key = Key::new(&len).unwrap();
        let value = pattern(len, i as u8);
        let info = store.set(&key, &value).unwrap();
        // Header, bin marker, bytes: never an integer array.
        assert!(
            info.size_bytes <= 64 + 5 + len as u64,
            "{len}: {}",
            info.size_bytes
        );
        let raw = fs::read(&info.path).unwrap();
        assert!(
            matches!(raw[64], 0xc4..=0xc6),
            "{len}: marker {:#x}",
            raw[64]
        );
        assert_eq!(
            store.get::<Vec<u8>>(&key).unwrap().as_deref(),
            Some(&value[..])
        );
        let buf = store.get::<serde_bytes::ByteBuf>(&key).unwrap().unwrap();
        assert_eq!(buf.as_slice(), &value[..]);
    }
}

#[test]
fn byte_slices_and_byte_bufs_share_the_representation() {
    let (_dir, store) = store();
    let key = Key::new("k").unwrap();
    store.set(&key, &b"abc"[..]).unwrap();
    assert_eq!(store.get::<Vec<u8>>(&key).unwrap(), Some(b"abc".to_vec()));
    store
        .set(&key, &serde_bytes::ByteBuf::from(vec![9; 100_000]))
        .unwrap();
    assert_eq!(
        store.get::<Box<[u8]>>(&key).unwrap().unwrap().len(),
        100_000
    );
}

#[test]
fn two_stores_on_one_directory_share_entries() {
    let (dir, a) = store();
    let b = Store::open(dir.path().join("cache")).unwrap();
    let key = Key::new(&("shared", 1)).unwrap();
    a.set(&key, &vec![1u32, 2, 3]).unwrap();
    assert_eq!(b.get::<Vec<u32>>(&key).unwrap(), Some(vec![1, 2, 3]));
    assert!(b.remove(&key).unwrap());
    assert_eq!(a.get::<Vec<u32>>(&key).unwrap(), None);
    assert!(!a.remove(&key).unwrap());
}

/// A clock the test moves by hand.
fn manual_clock() -> (
    Arc<AtomicU64>,
    impl Fn() -> SystemTime + Send + Sync + 'static,
) {
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    (offset, move || {
        SystemTime::now() + Duration::from_secs(o.load(Ordering::SeqCst))
    })
}

#[test]
fn expired_entry_is_a_miss_and_is_removed() {
    let (dir, _) = store();
    let (offset, clock) = manual_clock();
    let store = Store::open(dir.path().join("cache"))
        .unwrap()
        .with_expiry(Some(Duration::from_secs(60)))
        .with_clock(clock);
    let key = Key::new("k").unwrap();
    let info = store.set(&key, "v").unwrap();
    offset.store(59, Ordering::SeqCst);
    assert_eq!(store.get::<String>(&key).unwrap().as_deref(), Some("v"));
    offset.store(61, Ordering::SeqCst);
    assert_eq!(store.get::<String>(&key).unwrap(), None);
    assert!(!info.path.exists());
}

#[test]
fn short_real_expiry_recomputes() {
    let (_dir, store) = store();
    let expiry = Duration::from_secs(1);
    let store = store.with_expiry(Some(expiry));
    let key = Key::new("k").unwrap();
    let written = std::time::Instant::now();
    assert!(!store.get_or_compute(&key, || 1u8).hit);
    let second = store.get_or_compute(&key, || 2u8);
    // A machine stalled for the whole second would make this a miss.
    if written.elapsed() < expiry / 2 {
        assert!(second.hit);
    }
    std::thread::sleep(expiry + Duration::from_millis(100));
    let again = store.get_or_compute(&key, || 3u8);
    assert!(!again.hit);
    assert_eq!(again.value, 3);
}

#[test]
fn header_time_wins_over_a_rewritten_mtime() {
    let (_dir, store) = store();
    let store = store.with_expiry(Some(Duration::from_secs(3600)));
    let key = Key::new("k").unwrap();
    let info = store.set(&key, "fresh").unwrap();
    let mtime = fs::metadata(&info.path).unwrap().modified().unwrap();
    assert_eq!(mtime, info.created, "mtime mirrors the header");
    // A CI cache restore back-dates the file by a year: still fresh.
    let old = SystemTime::now() - Duration::from_secs(365 * 86_400);
    filetime::set_file_mtime(&info.path, filetime::FileTime::from_system_time(old)).unwrap();
    assert_eq!(store.get::<String>(&key).unwrap().as_deref(), Some("fresh"));
    assert!(!store.entries().unwrap()[0].expired);
    assert_eq!(store.flush().unwrap().entries, 0);
    // And a file touched just now but written long ago is expired.
    let later = store
        .clone()
        .with_clock(|| SystemTime::now() + Duration::from_secs(7200));
    filetime::set_file_mtime(&info.path, filetime::FileTime::now()).unwrap();
    assert!(later.entries().unwrap()[0].expired);
    assert_eq!(later.get::<String>(&key).unwrap(), None);
}

#[test]
fn flush_removes_only_expired_entries_and_reports_bytes() {
    let (dir, _) = store();
    let (offset, clock) = manual_clock();
    let store = Store::open(dir.path().join("cache"))
        .unwrap()
        .with_clock(clock);
    let old: Vec<_> = (0..3)
        .map(|i| store.set(&Key::new(&i).unwrap(), &vec![0u8; 100]).unwrap())
        .collect();
    offset.store(1000, Ordering::SeqCst);
    let fresh = store.set(&Key::new("fresh").unwrap(), "x").unwrap();
    let plan = store.plan_flush(Some(Duration::from_secs(500))).unwrap();
    assert_eq!(plan.entries.len(), 3);
    assert_eq!(
        plan.size_bytes(),
        old.iter().map(|e| e.size_bytes).sum::<u64>()
    );
    // Planning removes nothing.
    assert_eq!(store.entries().unwrap().len(), 4);
    let removed = store.apply(&plan).unwrap();
    assert_eq!((removed.entries, removed.bytes), (3, plan.size_bytes()));
    let left = store.entries().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, fresh.key);
}

#[test]
fn flush_keeps_an_entry_refreshed_after_planning() {
    let (dir, _) = store();
    let (offset, clock) = manual_clock();
    let store = Store::open(dir.path().join("cache"))
        .unwrap()
        .with_clock(clock);
    let key = Key::new("k").unwrap();
    store.set(&key, "old").unwrap();
    offset.store(1000, Ordering::SeqCst);
    let plan = store.plan_flush(Some(Duration::from_secs(500))).unwrap();
    store.set(&key, "new").unwrap();
    assert_eq!(store.apply(&plan).unwrap().entries, 0);
    assert_eq!(store.get::<String>(&key).unwrap().as_deref(), Some("new"));
}

#[test]
fn clear_keeps_the_cache_and_delete_removes_it() {
    let (_dir, store) = store();
    store
        .write_meta(&CacheMeta::new("my cache").package("pkg"))
        .unwrap();
    for i in 0..5 {
        store.set(&Key::new(&i).unwrap(), &i).unwrap();
    }
    // A lock file left by a killed process.
    let stale_lock = store
        .dir()
        .join(format!("{}.lock", Key::new("orphan").unwrap()));
    fs::write(&stale_lock, b"").unwrap();
    let removed = store.clear().unwrap();
    assert_eq!((removed.entries, removed.leftovers), (5, 1));
    assert!(store.entries().unwrap().is_empty());
    assert!(!stale_lock.exists());
    assert_eq!(store.meta().unwrap().unwrap().name, "my cache");
    store.set(&Key::new("x").unwrap(), "x").unwrap();
    let dir = store.dir().to_owned();
    assert_eq!(store.delete().unwrap().entries, 1);
    assert!(!dir.exists());
    assert_eq!(Store::at(&dir).entries().unwrap(), vec![]);
}

#[test]
fn lock_files_do_not_outlive_computations() {
    let (_dir, store) = store();
    for i in 0..50 {
        let key = Key::new(&i).unwrap();
        store.get_or_compute(&key, || i);
        store.remove(&key).unwrap();
        store.get_or_compute(&key, || i);
    }
    let scan = store.scan().unwrap();
    assert_eq!(scan.entries.len(), 50);
    assert!(scan.locks.is_empty() && scan.temps.is_empty(), "{scan:?}");
}

#[test]
fn metadata_round_trips_and_bad_metadata_is_an_error_naming_the_file() {
    let (_dir, store) = store();
    assert_eq!(store.meta().unwrap(), None);
    let meta = CacheMeta::new("../weird name 🦀")
        .package("p")
        .expiry(Some(Duration::from_secs(60)));
    store.write_meta(&meta).unwrap();
    assert_eq!(store.meta().unwrap(), Some(meta));
    fs::write(store.dir().join("cache.toml"), "name = [").unwrap();
    let err = store.meta().unwrap_err();
    assert!(err.to_string().contains("cache.toml"), "{err}");
}

/// Writes `value` under `key` and returns the entry's path.
fn entry(store: &Store, key: &Key) -> std::path::PathBuf {
    store
        .set(key, &vec!["some".to_owned(), "value".to_owned()])
        .unwrap()
        .path
}

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

/// Flips each bit of `key`'s entry, as stored, in turn: every read must
/// fail.
fn assert_every_bit_flip_is_detected(store: &Store, key: &Key) {
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
fn a_store_under_a_file_fails_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    let err = Store::open(file.join("cache")).unwrap_err();
    assert!(err.to_string().contains("file/cache"), "{err}");
    // get_or_compute on an unusable directory still gives the value.
    let store = Store::at(file.join("cache"));
    let fetched = store.get_or_compute(&Key::new("k").unwrap(), || 5u8);
    assert_eq!(fetched.value, 5);
    assert!(!fetched.errors.is_empty());
}

#[test]
fn the_cache_directory_removed_while_in_use_is_recreated() {
    let (_dir, store) = store();
    fs::remove_dir_all(store.dir()).unwrap();
    let key = Key::new("k").unwrap();
    store.set(&key, "v").unwrap();
    assert_eq!(store.get::<String>(&key).unwrap().as_deref(), Some("v"));
}

fn truncate(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn fix_header_crc(bytes: &mut [u8]) {
    let crc = crc32fast_hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

fn crc32fast_hash(bytes: &[u8]) -> u32 {
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

#[test]
fn a_computation_may_decline_to_be_stored() {
    use pcache_core::Computed;
    let (_dir, store) = store();
    let key = Key::new("declined").unwrap();
    let fetched = store
        .try_get_or_compute_with(&key, &|_| true, || Ok::<_, ()>(Computed::unstored(7u8)))
        .unwrap();
    assert_eq!(
        (fetched.value, fetched.hit, fetched.size_bytes),
        (7, false, None)
    );
    assert_eq!(store.get::<u8>(&key).unwrap(), None);
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

/// A store whose clock runs ahead, so entries written now count as settled
/// (older than the racy window) and their verification is recorded.
fn settled_store(dir: &Path) -> Store {
    Store::open(dir)
        .unwrap()
        .with_clock(|| SystemTime::now() + Duration::from_secs(60))
}

fn seen_file(store: &Store, key: &Key) -> std::path::PathBuf {
    let mut name = store.entry_path(key).into_os_string();
    name.push(".seen");
    name.into()
}

#[test]
fn a_large_entry_is_verified_once_and_trusted_while_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = settled_store(dir.path());
    let key = Key::new("large").unwrap();
    let value = pattern(300_000, 9);
    store.set(&key, &value).unwrap();
    assert!(!seen_file(&store, &key).exists());
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

#[test]
fn use_is_recorded_beside_entries_only_when_asked() {
    let (_dir, plain) = store();
    let key = Key::new("used").unwrap();
    plain.set(&key, &1u8).unwrap();
    plain.get::<u8>(&key).unwrap();
    assert!(!seen_file(&plain, &key).exists(), "not recorded by default");
    let recording = plain.clone().with_use_recording(true);
    let before = SystemTime::now() - Duration::from_secs(1);
    recording.get::<u8>(&key).unwrap();
    let used = recording.entries().unwrap()[0].last_used.unwrap();
    assert!(used >= before, "{used:?}");
    // An entry removed behind the store's back leaves a sidecar that flush
    // sweeps.
    fs::remove_file(recording.entry_path(&key)).unwrap();
    let scan = recording.scan().unwrap();
    assert_eq!(scan.orphans.len(), 1);
    assert_eq!(recording.flush().unwrap().leftovers, 1);
    assert!(!seen_file(&recording, &key).exists());
}

/// A pid that was a process of ours and is not running any more.
#[cfg(unix)]
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[cfg(unix)]
fn temp_file(store: &Store, key: &Key, pid: u32, n: u32, age: Duration) -> std::path::PathBuf {
    let path = store.dir().join(format!(".tmp.{key}.{pid}.{n}"));
    fs::write(&path, vec![7u8; 1000]).unwrap();
    let then = filetime::FileTime::from_system_time(SystemTime::now() - age);
    filetime::set_file_mtime(&path, then).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn temp_files_of_gone_writers_go_with_the_next_write_and_live_ones_stay() {
    let (_dir, store) = store();
    let key = Key::new("killed mid-write").unwrap();
    let dead = dead_pid();
    let me = std::process::id();
    let idle = Duration::from_secs(10);
    let abandoned = temp_file(&store, &key, dead, 0, idle);
    // A writer this process cannot see may still be writing a fresh file.
    let fresh = temp_file(&store, &key, dead, 1, Duration::ZERO);
    let live = temp_file(&store, &key, me, 2, idle);
    // Older than any write takes, whatever its pid says.
    let ancient = temp_file(&store, &key, me, 3, Duration::from_secs(7200));
    assert_eq!(store.scan().unwrap().temps.len(), 4);

    // Any write in the cache sweeps it, not only a write of that key.
    store.set(&Key::new("another").unwrap(), &1u32).unwrap();
    assert!(!abandoned.exists());
    assert!(!ancient.exists());
    assert!(fresh.exists());
    assert!(live.exists());
    assert_eq!(store.scan().unwrap().temps.len(), 2);
}
