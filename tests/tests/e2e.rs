//! End-to-end: real `cargo build`s of fixture crates whose build script uses
//! pcache-build. See `fixture/build.rs` for the steps they run.

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Fixture, assert_counts, assert_generated_tree, touch, walk};

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
    for step in support::FIXTURE_STEPS {
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
