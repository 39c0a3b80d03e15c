//! Resource faults: a full disk, an unwritable directory, a cache directory
//! deleted while in use. Every case ends with a correct value or a clean
//! miss, never a panic. Cases this machine cannot set up (no root, no
//! `mount`, no `setpriv`) are skipped with a printed reason.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pcache_core::{Error, Key, Store};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        if !is_root() {
            return Err("needs root to mount a tmpfs".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn raw_os_error(e: &Error) -> Option<i32> {
    e.io_error().and_then(std::io::Error::raw_os_error)
}

#[test]
fn a_full_disk_fails_writes_cleanly_and_keeps_serving_values() {
    let fs = match Tmpfs::mount("256k") {
        Ok(fs) => fs,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let store = Store::open(fs.path().join("cache")).unwrap();
    let small = Key::new("small").unwrap();
    store.set(&small, "fits").unwrap();
    let big = Key::new("big").unwrap();
    let err = store.set(&big, &vec![1u8; 1 << 20]).unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::ENOSPC), "{err}");
    assert!(
        err.to_string().contains(&fs.path().display().to_string()),
        "names the path: {err}"
    );
    // Nothing half-written is visible or left behind.
    assert_eq!(store.get::<Vec<u8>>(&big).unwrap(), None);
    let scan = store.scan().unwrap();
    assert!(scan.temps.is_empty(), "{scan:?}");
    assert_eq!(scan.entries.len(), 1);
    // get_or_compute still returns the value, with the error.
    let fetched = store.get_or_compute(&big, || vec![2u8; 1 << 20]);
    assert_eq!(fetched.value, vec![2u8; 1 << 20]);
    assert!(
        fetched
            .errors
            .iter()
            .any(|e| raw_os_error(e) == Some(libc::ENOSPC))
    );
    assert_eq!(
        store.get::<String>(&small).unwrap().as_deref(),
        Some("fits")
    );
    // Streams too.
    let mut writer = store.stream_writer(&Key::new("stream").unwrap()).unwrap();
    let pushed = (0..100_000u32).try_for_each(|i| writer.push(&vec![i; 4]));
    let result = pushed.and_then(|()| writer.commit(Duration::ZERO).map(drop));
    assert_eq!(
        result.map_err(|e| raw_os_error(&e)),
        Err(Some(libc::ENOSPC))
    );
    assert!(store.scan().unwrap().temps.is_empty());
}

const ROLE: &str = "PCACHE_FAULTS_ROLE";

#[test]
#[ignore = "entry point of the helper process the other tests spawn"]
fn helper() {
    if std::env::var(ROLE).as_deref() != Ok("unwritable") {
        return;
    }
    let dir = PathBuf::from(std::env::var_os("PCACHE_FAULTS_DIR").unwrap());
    // SAFETY: geteuid has no preconditions.
    assert_ne!(unsafe { libc::geteuid() }, 0, "must run as a non-root user");
    let store = Store::open(&dir).unwrap();
    // Readable: a hit still works.
    let existing = Key::new("existing").unwrap();
    assert_eq!(
        store.get::<String>(&existing).unwrap().as_deref(),
        Some("written by root")
    );
    // Not writable: an error naming the directory, never a panic.
    let err = store.set(&Key::new("new").unwrap(), "x").unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EACCES), "{err}");
    let fetched = store.get_or_compute(&Key::new("new").unwrap(), || 42u32);
    assert_eq!(fetched.value, 42);
    assert!(!fetched.hit && !fetched.errors.is_empty());
    assert!(store.flush().is_ok());
    assert!(
        store.clear().is_err(),
        "cannot remove entries of another user"
    );
    assert_eq!(
        store.get::<String>(&existing).unwrap().as_deref(),
        Some("written by root")
    );
    fs::write(dir.parent().unwrap().join("unwritable-ok"), "").unwrap();
}

#[test]
fn an_unwritable_cache_directory_serves_hits_and_computes_the_rest() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch to an unprivileged user");
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        return eprintln!("skipped: setpriv is not installed");
    }
    let root = tempfile::tempdir().unwrap();
    let results = root.path().join("results");
    fs::create_dir_all(&results).unwrap();
    // The helper writes its verdict here.
    fs::set_permissions(&results, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = results.join("cache");
    let store = Store::open(&dir).unwrap();
    store
        .set(&Key::new("existing").unwrap(), "written by root")
        .unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    for file in fs::read_dir(&dir).unwrap().flatten() {
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644)).unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    if !is_reachable_by_others(&exe) {
        return eprintln!("skipped: the test binary is not reachable by an unprivileged user");
    }
    let status = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "unwritable")
        .env("PCACHE_FAULTS_DIR", &dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the unprivileged helper failed");
    assert!(results.join("unwritable-ok").exists());
}

fn is_reachable_by_others(path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .all(|dir| fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

#[test]
fn a_cache_directory_deleted_while_in_use_never_yields_a_wrong_value() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cache");
    let store = Store::open(&dir).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::remove_dir_all(&dir);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let workers: Vec<_> = (0..3u32)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    for i in 0..300u32 {
                        let key = Key::new(&(t, i % 10)).unwrap();
                        let expected = vec![i % 10; 64];
                        let fetched = store.get_or_compute(&key, || expected.clone());
                        assert_eq!(fetched.value, expected);
                        if let Ok(Some(v)) = store.get::<Vec<u32>>(&key) {
                            assert_eq!(v, expected);
                        }
                        let _ = store.entries();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // Usable again once the deleting stops.
    store.set(&Key::new("after").unwrap(), "ok").unwrap();
    assert_eq!(
        store
            .get::<String>(&Key::new("after").unwrap())
            .unwrap()
            .as_deref(),
        Some("ok")
    );
}
