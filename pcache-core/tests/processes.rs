//! Several processes on one cache: single flight, SIGKILL mid-write, EFBIG.
//!
//! The test binary doubles as the helper process: `helper` runs the role
//! named by `PCACHE_TEST_ROLE` when spawned by a test, and does nothing
//! otherwise.
#![cfg(unix)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pcache_core::{Key, Store};

const ROLE: &str = "PCACHE_TEST_ROLE";
const DIR: &str = "PCACHE_TEST_DIR";

fn spawn(role: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(DIR, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "entry point of the helper processes the other tests spawn"]
fn helper() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(DIR).unwrap());
    match role.as_str() {
        "single-flight" => single_flight_worker(&dir),
        "writer" => endless_writer(&dir),
        "mib-writer" => mib_writer(&dir),
        "efbig" => efbig_writer(&dir),
        other => panic!("unknown role {other}"),
    }
}

const KEYS: u32 = 8;

fn single_flight_worker(dir: &Path) {
    let store = Store::open(dir.join("cache")).unwrap();
    let pid = std::process::id();
    for i in 0..KEYS {
        // Different processes walk the keys in different orders.
        let k = (i + pid) % KEYS;
        let key = Key::new(&k).unwrap();
        let fetched = store.get_or_compute(&key, || {
            let mut log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("computations"))
                .unwrap();
            writeln!(log, "{k}").unwrap();
            std::thread::sleep(Duration::from_millis(150));
            format!("value of {k}").repeat(100)
        });
        assert!(fetched.errors.is_empty(), "{:?}", fetched.errors);
        assert_eq!(fetched.value, format!("value of {k}").repeat(100));
    }
}

#[test]
fn processes_missing_the_same_keys_compute_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..6).map(|_| spawn("single-flight", dir.path())).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let log = fs::read_to_string(dir.path().join("computations")).unwrap();
    let mut counts = vec![0; KEYS as usize];
    for line in log.lines() {
        counts[line.parse::<usize>().unwrap()] += 1;
    }
    assert_eq!(counts, vec![1; KEYS as usize], "computations per key");
    let scan = Store::at(dir.path().join("cache")).scan().unwrap();
    assert_eq!(scan.entries.len(), KEYS as usize);
    assert!(scan.locks.is_empty(), "lock files left: {:?}", scan.locks);
}

#[test]
fn threads_missing_the_same_key_compute_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = Key::new("k").unwrap();
    let computed = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let fetched = store.get_or_compute(&key, || {
                    computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    vec![42u64; 1000]
                });
                assert_eq!(fetched.value, vec![42u64; 1000]);
            });
        }
    });
    assert_eq!(computed.into_inner(), 1);
}

const BIG: usize = 8 << 20;

fn endless_writer(dir: &Path) {
    let store = Store::open(dir.join("cache")).unwrap();
    let key = Key::new("big").unwrap();
    for i in 0u64.. {
        let fill = (i % 251) as u8;
        // Alternate byte values and structured values through the same key.
        if i % 2 == 0 {
            store.set(&key, &vec![fill; BIG]).unwrap();
        } else {
            store
                .set(&Key::new("list").unwrap(), &vec![u32::from(fill); 100_000])
                .unwrap();
        }
    }
}

#[test]
fn a_writer_killed_mid_write_leaves_a_whole_value_or_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    let mut seen_values = 0;
    for round in 0..12u64 {
        let mut child = spawn("writer", dir.path());
        // Kill at a different moment each round, mid-write most of the time.
        std::thread::sleep(Duration::from_millis(20 + round * 17 % 90));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if let Some(v) = store.get::<Vec<u8>>(&Key::new("big").unwrap()).unwrap() {
            assert_eq!(v.len(), BIG);
            assert!(v.iter().all(|&b| b == v[0]), "torn byte value");
            seen_values += 1;
        }
        if let Some(v) = store.get::<Vec<u32>>(&Key::new("list").unwrap()).unwrap() {
            assert_eq!(v.len(), 100_000);
            assert!(v.iter().all(|&x| x == v[0]), "torn list value");
        }
    }
    assert!(seen_values > 0, "the writer never completed a write");
    // Temp files from killed writers are all that is left over, and are
    // swept once stale.
    let later = store
        .clone()
        .with_clock(|| std::time::SystemTime::now() + Duration::from_secs(7200));
    let scan = later.scan().unwrap();
    assert!(scan.entries.iter().all(|e| e.corrupt.is_none()));
    later.flush().unwrap();
    assert!(later.scan().unwrap().temps.is_empty());
}

/// Writes values of 1 to 2 MiB under a few keys, without end.
fn mib_writer(dir: &Path) {
    let store = Store::open(dir.join("cache")).unwrap();
    for i in 0u64.. {
        let len = (1 << 20) + (i as usize * 65_537) % (1 << 20);
        store
            .set(&Key::new(&(i % 3)).unwrap(), &vec![(i % 251) as u8; len])
            .unwrap();
    }
}

#[test]
fn writes_killed_twenty_times_leave_no_temporary_file_behind_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    let mut kills = 0;
    // Twenty kills at least, and until one of them lands mid-write.
    while kills < 20 || store.scan().unwrap().temps.is_empty() {
        assert!(kills < 200, "no kill ever landed during a write");
        let mut child = spawn("mib-writer", dir.path());
        std::thread::sleep(Duration::from_millis(30 + (kills * 13 % 70)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let left = store.scan().unwrap().temps.len();
    assert!(left > 0);
    // A normal write once the killed files have been idle a few seconds
    // (the clock says so) removes every one of them.
    let later = store
        .clone()
        .with_clock(|| std::time::SystemTime::now() + Duration::from_secs(10));
    later
        .set(&Key::new("normal").unwrap(), &vec![1u8; 1 << 20])
        .unwrap();
    let scan = later.scan().unwrap();
    assert!(
        scan.temps.is_empty(),
        "{left} before, {:?} after",
        scan.temps
    );
    assert!(scan.entries.iter().all(|e| e.corrupt.is_none()));
}

fn efbig_writer(dir: &Path) {
    // SAFETY: plain libc calls with valid arguments, before any threads.
    unsafe {
        let limit = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: 1 << 20,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        // Without this, exceeding the limit kills us with SIGXFSZ.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let store = Store::open(dir.join("cache")).unwrap();
    let key = Key::new("too big").unwrap();
    let err = store.set(&key, &vec![1u8; 4 << 20]).unwrap_err();
    assert_eq!(
        err.io_error().and_then(|e| e.raw_os_error()),
        Some(libc::EFBIG),
        "{err}"
    );
    assert!(err.to_string().contains(".tmp."), "names the file: {err}");
    let err = store.set(&key, &vec![u64::MAX; 1 << 18]).unwrap_err();
    assert_eq!(
        err.io_error().and_then(|e| e.raw_os_error()),
        Some(libc::EFBIG),
        "{err}"
    );
    // Nothing half-written is visible, nothing is left behind.
    assert_eq!(store.get::<Vec<u8>>(&key).unwrap(), None);
    let scan = store.scan().unwrap();
    assert!(scan.entries.is_empty() && scan.temps.is_empty(), "{scan:?}");
    // get_or_compute still returns the value, with the write error.
    let fetched = store.get_or_compute(&key, || vec![3u8; 2 << 20]);
    assert_eq!(fetched.value, vec![3u8; 2 << 20]);
    assert_eq!(fetched.errors.len(), 1);
    // Small values still fit under the limit.
    store.set(&Key::new("small").unwrap(), "fits").unwrap();
    fs::write(dir.join("efbig-ok"), "").unwrap();
}

#[test]
fn writes_over_the_file_size_limit_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let status = spawn("efbig", dir.path()).wait().unwrap();
    assert!(
        status.success(),
        "helper failed after {:?}",
        started.elapsed()
    );
    assert!(dir.path().join("efbig-ok").exists());
    let store = Store::open(dir.path().join("cache")).unwrap();
    assert_eq!(
        store
            .get::<String>(&Key::new("small").unwrap())
            .unwrap()
            .as_deref(),
        Some("fits")
    );
    assert_eq!(store.entries().unwrap().len(), 1);
}

#[test]
fn a_computation_asking_for_its_own_key_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let path = dir.path().to_owned();
    std::thread::spawn(move || {
        let store = Store::open(path).unwrap();
        let key = Key::new("k").unwrap();
        let outer = store.get_or_compute(&key, || {
            let inner = store.get_or_compute(&key, || 1u32);
            inner.value + 1
        });
        done.send(outer.value).unwrap();
    });
    let value = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("deadlocked");
    assert_eq!(value, 2);
}

#[test]
fn threads_still_wait_for_each_other_on_one_key() {
    // The re-entrancy allowance is per thread: another thread still waits.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = Key::new("k").unwrap();
    let computed = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                store.get_or_compute(&key, || {
                    computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    7u8
                })
            });
        }
    });
    assert_eq!(computed.into_inner(), 1);
}
