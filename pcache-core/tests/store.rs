//! Round-trips, expiry, flush/clear/delete, metadata and temporary files, in one process.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use pcache_core::{CacheMeta, Key, Store};
use serde::{Deserialize, Serialize};

use support::*;

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
