//! The size cap: what eviction keeps, and that it never breaks a reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pcache_core::{Key, Store, gc};

#[test]
fn a_two_second_step_of_one_kib_outlives_a_millisecond_step_of_100_mib() {
    let root = tempfile::tempdir().unwrap();
    let small = Store::open(root.path().join("pkg/small")).unwrap();
    let big = Store::open(root.path().join("pkg/big")).unwrap();
    let (small_key, big_key) = (Key::new("small").unwrap(), Key::new("big").unwrap());
    // The big one was even used more recently.
    small
        .set_timed(&small_key, &vec![1u8; 1024], Duration::from_secs(2))
        .unwrap();
    big.set_timed(&big_key, &vec![2u8; 100 << 20], Duration::from_millis(1))
        .unwrap();
    let plan = gc::plan_trim(root.path(), 50 << 20).unwrap();
    assert_eq!(plan.evict.len(), 1);
    assert_eq!(plan.evict[0].info.key, big_key);
    let removed = gc::apply(&plan).unwrap();
    assert_eq!(removed.entries, 1);
    assert!(small.get::<Vec<u8>>(&small_key).unwrap().is_some());
    assert_eq!(big.get::<Vec<u8>>(&big_key).unwrap(), None);
    assert!(big.was_evicted(&big_key));
    // Under the cap, nothing goes.
    assert!(
        gc::plan_trim(root.path(), 50 << 20)
            .unwrap()
            .evict
            .is_empty()
    );
}

#[test]
fn recent_use_keeps_an_entry_of_equal_cost() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path().join("pkg/c"))
        .unwrap()
        .with_use_recording(true);
    let keys: Vec<Key> = (0..4).map(|i| Key::new(&i).unwrap()).collect();
    for key in &keys {
        store
            .set_timed(key, &vec![0u8; 10_000], Duration::from_millis(100))
            .unwrap();
    }
    // Keys 0 and 1 were last used a month ago; 2 and 3 today.
    for (i, key) in keys.iter().enumerate() {
        store.get::<Vec<u8>>(key).unwrap();
        let mut seen = store.entry_path(key).into_os_string();
        seen.push(".seen");
        let when = if i < 2 {
            std::time::SystemTime::now() - Duration::from_secs(30 * 86_400)
        } else {
            std::time::SystemTime::now()
        };
        filetime::set_file_mtime(seen, filetime::FileTime::from_system_time(when)).unwrap();
    }
    let plan = gc::plan_trim(root.path(), 30_000).unwrap();
    let evicted: Vec<Key> = plan.evict.iter().map(|c| c.info.key).collect();
    assert_eq!(evicted.len(), 2, "{evicted:?}");
    assert!(evicted.contains(&keys[0]) && evicted.contains(&keys[1]));
}

#[test]
fn trimming_beside_readers_never_yields_a_wrong_value() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path().join("pkg/race"))
        .unwrap()
        .with_use_recording(true);
    let value = |i: u32| -> Vec<u8> { (0..50_000u32).map(|j| (i ^ j) as u8).collect() };
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let (store, stop) = (store.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut hits, mut misses) = (0u64, 0u64);
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let key = Key::new(&(i % 16)).unwrap();
                    let fetched = store.get_or_compute(&key, || value(i % 16));
                    assert_eq!(fetched.value, value(i % 16), "wrong value for {}", i % 16);
                    if fetched.hit {
                        hits += 1
                    } else {
                        misses += 1
                    }
                    i += 1;
                }
                (hits, misses)
            })
        })
        .collect();
    let mut trims = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        // Keeps about four entries of the sixteen.
        let plan = gc::plan_trim(root.path(), 220_000).unwrap();
        gc::apply(&plan).unwrap();
        trims += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut misses = 0;
    for reader in readers {
        let (_, m) = reader.join().unwrap();
        misses += m;
    }
    assert!(trims > 10 && misses > 16, "trims {trims}, misses {misses}");
}

#[test]
fn after_store_trims_only_when_the_estimate_passes_the_cap() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path().join("pkg/c")).unwrap();
    for i in 0..10u32 {
        let info = store
            .set_timed(
                &Key::new(&i).unwrap(),
                &vec![0u8; 10_000],
                Duration::from_millis(u64::from(i) + 1),
            )
            .unwrap();
        let trimmed = gc::after_store(root.path(), info.size_bytes, 60_000).unwrap();
        if i < 5 {
            assert_eq!(trimmed, None, "under the cap at {i}");
        }
    }
    // Trimmed to about 90% of the cap at some point, the most valuable kept.
    assert!(store.entries().unwrap().len() <= 6);
    assert!(
        store
            .get::<Vec<u8>>(&Key::new(&9u32).unwrap())
            .unwrap()
            .is_some()
    );
}

#[cfg(unix)]
#[test]
fn the_automatic_trim_removes_temporary_files_of_gone_writers_everywhere() {
    let root = tempfile::tempdir().unwrap();
    let idle = filetime::FileTime::from_system_time(
        std::time::SystemTime::now() - Duration::from_secs(7200),
    );
    let mut temps = Vec::new();
    for cache in ["a/one", "b/two"] {
        let store = Store::open(root.path().join(cache)).unwrap();
        store
            .set(&Key::new(cache).unwrap(), &vec![1u8; 50_000])
            .unwrap();
        let temp = store
            .dir()
            .join(format!(".tmp.{}.1.0", Key::new("x").unwrap()));
        std::fs::write(&temp, vec![0u8; 50_000]).unwrap();
        filetime::set_file_mtime(&temp, idle).unwrap();
        temps.push(temp);
    }
    let trimmed = gc::after_store(root.path(), 0, 120_000)
        .unwrap()
        .expect("over the cap: trimmed");
    assert_eq!(trimmed.removed.leftovers, 2);
    assert!(temps.iter().all(|t| !t.exists()));
}
