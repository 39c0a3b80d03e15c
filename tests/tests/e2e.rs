//! End-to-end: real `cargo build`s of fixture crates whose build script uses
//! pcache-build. See `fixture/build.rs` for the steps they run.

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use support::{Fixture, entries_under};

const STEPS: [&str; 3] = ["table", "rows", "generated"];

fn assert_counts(fixture: &Fixture, expected: usize) {
    for step in STEPS {
        assert_eq!(fixture.count(step), expected, "computations of {step}");
    }
}

fn touch(path: &Path) {
    let later = SystemTime::now() + Duration::from_secs(2);
    filetime::set_file_mtime(path, filetime::FileTime::from_system_time(later)).unwrap();
}

fn assert_generated_tree(out: &Path) {
    assert_eq!(
        fs::read_to_string(out.join("nested/deeper/consts.rs")).unwrap(),
        "pub const DEEP: u32 = 7;\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("top.txt")).unwrap(),
        "top level\n"
    );
    assert_eq!(
        fs::read(out.join("nested/blob.bin")).unwrap(),
        (0..=255u8).collect::<Vec<u8>>()
    );
}

#[test]
fn reruns_touches_and_profile_switches_read_from_the_cache() {
    let f = Fixture::new("rerun");
    let first = f.build(&[]);
    assert_counts(&f, 1);
    assert!(first.has_step("miss table"), "{:?}", first.steps());
    assert!(
        first.pcache_warnings().is_empty(),
        "{:?}",
        first.pcache_warnings()
    );

    // A watched environment variable changes: Cargo re-runs the script.
    let rerun = f.build(&[("FIXTURE_RERUN", "1")]);
    assert_counts(&f, 1);
    for step in STEPS {
        assert!(
            rerun.has_step(&format!("hit {step}")),
            "{step}: {:?}",
            rerun.steps()
        );
    }

    // build.rs touched but unchanged: recompiled and re-run, still hits.
    touch(&f.root().join("build.rs"));
    let touched = f.build(&[("FIXTURE_RERUN", "1")]);
    assert!(touched.has_step("hit table"), "{:?}", touched.steps());
    assert_counts(&f, 1);

    // The release profile reuses the debug build's results.
    let release = f.build_with(&["build", "--release"], &[("FIXTURE_RERUN", "1")]);
    assert!(release.has_step("hit generated"), "{:?}", release.steps());
    assert_counts(&f, 1);
    for profile in ["debug", "release"] {
        let outs = f.out_dirs(profile);
        assert!(!outs.is_empty(), "no OUT_DIR for {profile}");
        for out in outs {
            assert_generated_tree(&out);
        }
    }
    assert!(
        release.pcache_warnings().is_empty(),
        "{:?}",
        release.pcache_warnings()
    );
}

#[test]
fn changed_inputs_recompute_and_old_inputs_still_hit() {
    let f = Fixture::new("inputs");
    f.build(&[("FIXTURE_INPUT", "a")]);
    assert_counts(&f, 1);
    f.build(&[("FIXTURE_INPUT", "b")]);
    assert_counts(&f, 2);
    let back = f.build(&[("FIXTURE_INPUT", "a")]);
    assert_counts(&f, 2);
    assert!(back.has_step("hit rows"), "{:?}", back.steps());
}

#[test]
fn editing_build_script_code_recomputes_touching_does_not() {
    let f = Fixture::new("edit");
    f.build(&[]);
    assert_counts(&f, 1);
    // An edit to build.rs itself (even a comment: identity is by content).
    let build_rs = f.root().join("build.rs");
    let mut code = fs::read_to_string(&build_rs).unwrap();
    code.push_str("\n// edited\n");
    fs::write(&build_rs, &code).unwrap();
    f.build(&[]);
    assert_counts(&f, 2);
    // An edit to a module the build script includes.
    let helper = f.root().join("build_support/helper.rs");
    let edited = fs::read_to_string(&helper)
        .unwrap()
        .replace("OFFSET: u64 = 0", "OFFSET: u64 = 1");
    fs::write(&helper, edited).unwrap();
    f.build(&[]);
    assert_counts(&f, 3);
    // Touching it is not an edit.
    touch(&helper);
    let touched = f.build(&[]);
    assert_counts(&f, 3);
    assert!(touched.has_step("hit table"), "{:?}", touched.steps());
}

fn host_triple() -> String {
    let out = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .unwrap()
}

#[test]
fn a_custom_target_dir_and_explicit_target_hold_the_cache() {
    let custom = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let target = custom.path().join("my-target");
    let f = Fixture::with_target("custom-target", target.clone());
    let triple = host_triple();
    f.build_with(&["build", "--target", &triple], &[]);
    assert_counts(&f, 1);
    assert_eq!(
        f.entries().len(),
        3,
        "entries under {}",
        f.cache_root().display()
    );
    assert!(target.join(&triple).join("debug").is_dir());
    // The shared target dir got nothing from this fixture.
    assert!(
        !support::shared_target()
            .join("pcache")
            .join(&f.package)
            .exists()
    );
    let again = f.build_with(&["build", "--target", &triple], &[("FIXTURE_RERUN", "1")]);
    assert!(again.has_step("hit table"), "{:?}", again.steps());
    assert_counts(&f, 1);
}

#[test]
fn pcache_dir_moves_the_cache_and_pcache_off_disables_it() {
    let f = Fixture::new("env");
    let elsewhere = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = elsewhere.path().to_str().unwrap();
    f.build(&[("PCACHE_DIR", dir)]);
    f.build(&[("PCACHE_DIR", dir), ("FIXTURE_RERUN", "1")]);
    assert_counts(&f, 1);
    assert_eq!(entries_under(&elsewhere.path().join(&f.package)).len(), 3);
    assert!(
        f.entries().is_empty(),
        "nothing in the target dir: {:?}",
        f.entries()
    );

    let off = f.build(&[("PCACHE", "off")]);
    assert_counts(&f, 2);
    assert!(off.has_step("off table"), "{:?}", off.steps());
    f.build(&[("PCACHE", "0"), ("FIXTURE_RERUN", "2")]);
    assert_counts(&f, 3);
    assert!(f.entries().is_empty(), "PCACHE=off writes nothing");
}

#[test]
fn pcache_off_creates_or_changes_no_file_under_the_pcache_dir() {
    let f = Fixture::new("off-untouched");
    let elsewhere = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = elsewhere.path().join("pcache");
    let dir_text = dir.to_str().unwrap();

    // Nothing there yet: off makes no directory at all.
    f.build(&[("PCACHE_DIR", dir_text), ("PCACHE", "off")]);
    assert!(!dir.exists(), "PCACHE=off created {}", dir.display());

    // Caches, statistics and input records there: off leaves every file,
    // its contents and its times as they were, however many steps run.
    f.build(&[("PCACHE_DIR", dir_text)]);
    f.build(&[("PCACHE_DIR", dir_text), ("FIXTURE_RERUN", "1")]);
    let before = support::tree_state(&dir);
    assert!(
        before.keys().any(|p| p.ends_with("stats.log")),
        "{before:#?}"
    );
    for (value, rerun) in [("off", "2"), ("0", "3"), ("false", "4")] {
        let off = f.build(&[
            ("PCACHE_DIR", dir_text),
            ("PCACHE", value),
            ("FIXTURE_RERUN", rerun),
        ]);
        assert!(off.has_step("off table"), "{:?}", off.steps());
        assert_eq!(support::tree_state(&dir), before, "PCACHE={value}");
    }
    // The first off build, the miss, and the three off builds.
    assert_counts(&f, 5);
}

#[test]
fn pcache_dir_in_cargo_config_env_is_where_builds_write_and_cargo_pcache_looks() {
    let f = Fixture::new("config-env");
    fs::create_dir_all(f.root().join(".cargo")).unwrap();
    fs::write(
        f.root().join(".cargo/config.toml"),
        "[env]\nPCACHE_DIR = { value = \"cache-here\", relative = true }\n",
    )
    .unwrap();
    f.build(&[]);
    let moved = f.root().join("cache-here");
    assert_eq!(entries_under(&moved.join(&f.package)).len(), 3);
    assert!(f.entries().is_empty(), "{:?}", f.entries());

    // `cargo pcache`, run where the build ran, reads the same `[env]`.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pcache-helper"))
        .args(["pcache", "ls", "--json", "-p", &f.package])
        .current_dir(f.root())
        .env_remove("PCACHE_DIR")
        .env("CARGO_TARGET_DIR", &f.target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listing["pcache_dir"], moved.to_str().unwrap(), "{listing}");
    let mut names: Vec<_> = listing["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["generated", "rows", "table"]);
}

#[test]
fn the_workspace_expiry_applies_unless_the_package_sets_its_own() {
    let f = Fixture::in_workspace("ws-expiry");
    let root_manifest = f.root().join("Cargo.toml");
    let text = fs::read_to_string(&root_manifest).unwrap();
    fs::write(
        &root_manifest,
        format!("{text}\n[workspace.metadata.pcache]\nexpiry = \"1\"\n"),
    )
    .unwrap();
    f.build(&[]);
    std::thread::sleep(Duration::from_millis(1200));
    f.build(&[("FIXTURE_RERUN", "1")]);
    assert_counts(&f, 2);

    let package_manifest = f.root().join("pkg/Cargo.toml");
    let text = fs::read_to_string(&package_manifest).unwrap();
    fs::write(
        &package_manifest,
        format!("{text}\n[package.metadata.pcache]\nexpiry = \"1h\"\n"),
    )
    .unwrap();
    f.build(&[("FIXTURE_RERUN", "2")]);
    std::thread::sleep(Duration::from_millis(1200));
    f.build(&[("FIXTURE_RERUN", "3")]);
    assert_counts(&f, 2);
}

#[test]
fn expired_values_are_recomputed() {
    let f = Fixture::new("expiry");
    f.build(&[("FIXTURE_MODE", "expiry")]);
    assert_eq!(f.count("short-lived"), 1);
    // The entry expires one second after it was written.
    let written = Instant::now();
    std::thread::sleep(Duration::from_millis(1200).saturating_sub(written.elapsed()));
    f.build(&[("FIXTURE_MODE", "expiry"), ("FIXTURE_RERUN", "1")]);
    assert_eq!(f.count("short-lived"), 2);
    // The other caches have no expiry.
    assert_counts(&f, 1);
}

#[test]
fn an_iterator_dropped_early_stores_nothing() {
    let f = Fixture::new("drop-iter");
    let first = f.build(&[("FIXTURE_MODE", "drop-iter")]);
    assert!(
        first.has_step("miss partial: iterator dropped after 1 items"),
        "{:?}",
        first.steps()
    );
    f.build(&[("FIXTURE_MODE", "drop-iter"), ("FIXTURE_RERUN", "1")]);
    assert_eq!(f.count("partial"), 2);
    let leftovers: Vec<_> = walk(&f.cache_root())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_hit_dropped_early_still_reports_its_step() {
    let f = Fixture::new("drop-hit");
    let build = f.build(&[("FIXTURE_MODE", "drop-hit")]);
    // `rows` is computed in full, then read again and dropped after one item.
    let rows: Vec<_> = build
        .steps()
        .into_iter()
        .filter(|s| s.starts_with("hit rows") || s.starts_with("miss rows"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[1].starts_with("hit rows: read"), "{rows:?}");
    assert_eq!(f.count("rows"), 1);
}

#[test]
fn try_cached_errors_are_not_stored() {
    let f = Fixture::new("try");
    f.build(&[("FIXTURE_MODE", "try-fail")]);
    f.build(&[("FIXTURE_MODE", "try-fail"), ("FIXTURE_RERUN", "1")]);
    assert_eq!(f.count("fallible"), 2);
    f.build(&[("FIXTURE_MODE", "try-ok")]);
    f.build(&[("FIXTURE_MODE", "try-ok"), ("FIXTURE_RERUN", "1")]);
    assert_eq!(f.count("fallible"), 3);
}

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
    for step in STEPS {
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

#[test]
fn a_value_type_change_under_one_name_gives_the_right_value() {
    let f = Fixture::new("types");
    f.build(&[("FIXTURE_MODE", "type-number")]);
    // The fixture asserts the value it gets back.
    f.build(&[("FIXTURE_MODE", "type-text")]);
    assert_eq!(f.count("typed"), 2);
    let back = f.build(&[("FIXTURE_MODE", "type-number")]);
    assert_eq!(f.count("typed"), 2);
    assert!(back.has_step("hit typed"), "{:?}", back.steps());
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

#[test]
fn verify_passes_for_deterministic_steps_and_fails_for_nondeterministic_ones() {
    let f = Fixture::new("verify");
    f.build(&[]);
    let verified = f.build(&[("PCACHE", "verify")]);
    assert!(
        verified.has_step("verified table"),
        "{:?}",
        verified.steps()
    );
    assert!(
        verified.has_step("verified generated"),
        "{:?}",
        verified.steps()
    );
    assert_counts(&f, 2);

    f.build(&[("FIXTURE_MODE", "nondeterministic")]);
    let failed = f.try_build(
        &["build"],
        &[("FIXTURE_MODE", "nondeterministic"), ("PCACHE", "verify")],
    );
    assert!(!failed.success, "verify must fail the build");
    assert!(
        failed.stderr.contains("PCACHE=verify: cache clock"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("stored digest"), "{}", failed.stderr);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out.sort();
    out
}

/// Runs `cargo pcache` in-process on the fixture; returns (status, stdout).
fn cargo_pcache(f: &Fixture, args: &[&str]) -> (std::process::ExitCode, String) {
    let manifest = f.root().join("Cargo.toml");
    let mut argv = vec!["cargo-pcache", "pcache"];
    argv.extend_from_slice(args);
    argv.extend(["--manifest-path", manifest.to_str().unwrap()]);
    argv.extend(["--target-dir", f.target.to_str().unwrap()]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = cargo_pcache::run(argv, &mut out, &mut err);
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
    (status, String::from_utf8(out).unwrap())
}

#[test]
fn cargo_pcache_lists_and_clears_what_a_real_build_stored() {
    let f = Fixture::new("cli");
    f.build(&[]);
    let (status, out) = cargo_pcache(&f, &["ls", "--json", "--entries", "-p", &f.package]);
    assert_eq!(status, std::process::ExitCode::SUCCESS);
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    let caches = listing["caches"].as_array().unwrap();
    let mut names: Vec<_> = caches.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["generated", "rows", "table"]);
    for cache in caches {
        assert_eq!(cache["entries"], 1);
        assert_eq!(cache["in_workspace"], true);
        let entry = &cache["entry_list"][0];
        assert!(Path::new(entry["path"].as_str().unwrap()).is_file());
    }
    let (_, out) = cargo_pcache(&f, &["clear", "rows", "-p", &f.package]);
    assert!(out.contains("Cleared 1 entries"), "{out}");
    let rebuilt = f.build(&[("FIXTURE_RERUN", "1")]);
    assert!(rebuilt.has_step("miss rows"), "{:?}", rebuilt.steps());
    assert!(rebuilt.has_step("hit table"), "{:?}", rebuilt.steps());
    assert_eq!((f.count("rows"), f.count("table")), (2, 1));
    let (_, out) = cargo_pcache(&f, &["delete", "-p", &f.package]);
    assert!(out.contains("Deleted 3 caches"), "{out}");
    assert!(!f.cache_root().exists());
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
fn in_a_workspace_editing_a_member_build_script_recomputes_and_touching_does_not() {
    let f = Fixture::in_workspace("member");
    f.build(&[]);
    assert_counts(&f, 1);
    let build_rs = f.root().join("pkg/build.rs");
    touch(&build_rs);
    let touched = f.build(&[]);
    assert!(touched.has_step("hit table"), "{:?}", touched.steps());
    assert!(
        touched.pcache_warnings().is_empty(),
        "{:?}",
        touched.pcache_warnings()
    );
    let mut code = fs::read_to_string(&build_rs).unwrap();
    code.push_str("\n// edited\n");
    fs::write(&build_rs, code).unwrap();
    f.build(&[]);
    assert_counts(&f, 2);
}

/// Writes `text` to `path`, keeping its previous mtime, as an edit within
/// the same second as the previous build (or a tool restoring mtimes) would.
fn rewrite_keeping_mtime(path: &Path, text: &str) {
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(path).unwrap());
    fs::write(path, text).unwrap();
    filetime::set_file_mtime(path, mtime).unwrap();
}

#[test]
fn an_input_changed_within_the_same_second_is_never_missed() {
    let f = Fixture::new("racy-input");
    let input = f.root().join("input.txt");
    let deep = f.root().join("inputs/nested/deep.txt");
    fs::create_dir_all(deep.parent().unwrap()).unwrap();
    fs::write(&input, "aaaa").unwrap();
    fs::write(&deep, "1").unwrap();
    let mode = [("FIXTURE_MODE", "file-input")];
    let read_back = || {
        let outs = f.out_dirs("debug");
        fs::read_to_string(outs[0].join("from-file.txt")).unwrap()
    };

    f.build(&mode);
    assert_eq!((f.count("from-file"), read_back()), (1, "aaaa1".to_owned()));
    // Changed right away, same size, same mtime: the digests were not
    // remembered (the files had not settled), so they are hashed again.
    rewrite_keeping_mtime(&input, "bbbb");
    f.build(&[mode[0], ("FIXTURE_RERUN", "1")]);
    assert_eq!((f.count("from-file"), read_back()), (2, "bbbb1".to_owned()));

    // Settled files are remembered by identity; a change still moves their
    // ctime, whatever happens to their mtime.
    std::thread::sleep(Duration::from_millis(2100));
    f.build(&[mode[0], ("FIXTURE_RERUN", "2")]);
    assert_eq!(f.count("from-file"), 2, "unchanged inputs hit");
    rewrite_keeping_mtime(&deep, "2");
    f.build(&[mode[0], ("FIXTURE_RERUN", "3")]);
    assert_eq!((f.count("from-file"), read_back()), (3, "bbbb2".to_owned()));
    rewrite_keeping_mtime(&input, "cccc");
    f.build(&[mode[0], ("FIXTURE_RERUN", "4")]);
    assert_eq!((f.count("from-file"), read_back()), (4, "cccc2".to_owned()));
    // And back: the first entries are still there.
    rewrite_keeping_mtime(&input, "bbbb");
    rewrite_keeping_mtime(&deep, "1");
    let back = f.build(&[mode[0], ("FIXTURE_RERUN", "5")]);
    assert_eq!((f.count("from-file"), read_back()), (4, "bbbb1".to_owned()));
    assert!(back.has_step("hit from-file"), "{:?}", back.steps());
}
