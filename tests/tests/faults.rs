//! End-to-end: corrupt entries, full and size-limited disks, odd names and
//! commands racing builds never break a real build.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::{Fixture, assert_counts, assert_generated_tree, cargo_pcache, walk};

#[test]
fn corrupt_entries_give_a_green_build_and_one_warning_per_step() {
    let f = Fixture::new("corrupt");
    f.build(&[]);
    let entries = f.entries();
    assert_eq!(entries.len(), 3);
    for entry in &entries {
        let mut bytes = fs::read(entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        fs::write(entry, bytes).unwrap();
    }
    let build = f.build(&[("FIXTURE_RERUN", "1")]);
    assert_counts(&f, 2);
    let warnings = build.pcache_warnings();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    for step in support::FIXTURE_STEPS {
        assert_eq!(
            warnings
                .iter()
                .filter(|w| w.contains(&format!("pcache: {step}: corrupt entry")))
                .count(),
            1,
            "{step}: {warnings:#?}"
        );
    }
    let healed = f.build(&[("FIXTURE_RERUN", "2")]);
    assert!(healed.pcache_warnings().is_empty());
    assert_counts(&f, 2);
    for out in f.out_dirs("debug") {
        assert_generated_tree(&out);
    }
}

#[cfg(unix)]
#[test]
fn writes_past_the_file_size_limit_give_a_green_build_and_one_warning() {
    use std::os::unix::process::CommandExt;
    let f = Fixture::new("efbig");
    f.build(&[]);
    let mut cmd = f.cargo(&["build"]);
    cmd.env("FIXTURE_MODE", "big");
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 2 << 20,
                rlim_max: 2 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // An ignored signal stays ignored across exec: writes then fail
            // with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let build = support::Build::from(cmd.output().unwrap());
    assert!(build.success, "{}", build.stderr);
    let warnings = build.pcache_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("pcache: big: "), "{}", warnings[0]);
    assert!(
        warnings[0].to_lowercase().contains("file too large"),
        "{}",
        warnings[0]
    );
    assert_eq!(f.count("big"), 1);
    assert!(
        f.entries()
            .iter()
            .all(|e| fs::metadata(e).unwrap().len() < 1 << 20)
    );
    // Nothing half-written was left: the next run computes again and stores.
    f.build(&[("FIXTURE_MODE", "big"), ("FIXTURE_RERUN", "1")]);
    assert_eq!(f.count("big"), 2);
    f.build(&[("FIXTURE_MODE", "big"), ("FIXTURE_RERUN", "2")]);
    assert_eq!(f.count("big"), 2);
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_gives_a_green_build_with_one_warning_per_failing_step() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return eprintln!("skipped: needs root to mount a tmpfs");
    }
    let mount_point = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(mount_point.path())
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        return eprintln!("skipped: cannot mount a tmpfs here");
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mount_point.path());
    let f = Fixture::new("enospc");
    let dir = mount_point.path().to_str().unwrap();
    // `rows` (87 KiB) and `big` (4 MiB) cannot fit in 64 KiB; `table` and
    // `generated` can.
    let build = f.build(&[("PCACHE_DIR", dir), ("FIXTURE_MODE", "big")]);
    let warnings = build.pcache_warnings();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    for step in ["rows", "big"] {
        let line = warnings
            .iter()
            .find(|w| w.contains(&format!("pcache: {step}: ")))
            .unwrap();
        assert!(line.contains("No space left on device"), "{line}");
    }
    let again = f.build(&[
        ("PCACHE_DIR", dir),
        ("FIXTURE_MODE", "big"),
        ("FIXTURE_RERUN", "1"),
    ]);
    assert!(again.has_step("hit table"), "{:?}", again.steps());
    assert_eq!(
        (f.count("table"), f.count("rows"), f.count("big")),
        (1, 2, 2)
    );
    for out in f.out_dirs("debug") {
        assert_generated_tree(&out);
    }
}

#[test]
fn cargo_pcache_clear_and_delete_racing_builds_never_break_them() {
    let f = Fixture::new("race");
    f.build(&[]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let verb = if i % 2 == 0 { "clear" } else { "delete" };
                let (status, _) = cargo_pcache(&f, &[verb, "-q", "-p", &f.package]);
                assert_eq!(status, std::process::ExitCode::SUCCESS);
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        for rerun in 1..=5 {
            let build = f.build(&[("FIXTURE_RERUN", &rerun.to_string())]);
            assert!(build.success);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    for out in f.out_dirs("debug") {
        assert_generated_tree(&out);
    }
}

#[test]
fn odd_cache_names_write_nothing_outside_target_pcache() {
    let f = Fixture::new("names");
    let before = walk(f.root());
    f.build(&[("FIXTURE_MODE", "names")]);
    f.build(&[("FIXTURE_MODE", "names"), ("FIXTURE_RERUN", "1")]);
    assert_eq!(f.count("names"), 5);
    // Only the counters changed in the fixture's own directory.
    let after: Vec<_> = walk(f.root())
        .into_iter()
        .filter(|p| !p.starts_with(&f.counters))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|p| !p.starts_with(&f.counters))
        .collect();
    assert_eq!(after, before);
    // Every cache directory sits directly under target/pcache/<package>.
    let caches: Vec<_> = fs::read_dir(f.cache_root())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(caches.len(), 3 + 5);
    let mut names = Vec::new();
    for cache in &caches {
        let meta = fs::read_to_string(cache.join("cache.toml")).unwrap();
        let meta: toml::Table = meta.parse().unwrap();
        names.push(meta["name"].as_str().unwrap().to_owned());
    }
    for name in ["", "../../escape", "/etc/passwd", "🦀 crab\nnewline"] {
        assert!(names.iter().any(|n| n == name), "{name:?} in {names:?}");
    }
    assert!(names.iter().any(|n| n.len() == 10_000));
    assert!(!f.root().join("escape").exists() && !support::shared_target().join("escape").exists());
}
