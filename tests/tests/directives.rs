//! Cargo directives printed inside cached steps are captured on a miss and
//! replayed on hits, so Cargo sees the same build-script output either way.
//! See `fixture-directives/pkg/build.rs` for the steps.

mod support;

use std::path::Path;

use support::{Build, Fixture, directives_in, latest_output, shared_target};

const STEPS: [&str; 5] = ["value", "fallible", "items", "clib", "builder"];

fn assert_computed_once(f: &Fixture) {
    for step in STEPS {
        assert_eq!(f.count(step), 1, "computations of {step}");
    }
}

/// Sets `path`'s mtime to now: newer than the last build-script run, older
/// than the next (a time in the future would keep the script dirty).
fn touch(path: &Path) {
    filetime::set_file_mtime(path, filetime::FileTime::now()).unwrap();
}

/// The fixture package's directives after its newest build-script run, with
/// paths made comparable across profiles and target directories.
fn recorded(f: &Fixture, target: &Path, profile: &str) -> Vec<String> {
    let (output, out_dir) = latest_output(target, profile, &f.package);
    directives_in(&output, &out_dir, &f.root().join("pkg"))
}

fn assert_all_hits(build: &Build) {
    for step in STEPS {
        assert!(
            build.has_step(&format!("hit {step}")),
            "{step}: {:?}",
            build.steps()
        );
    }
}

/// What the dependent crate's build script reported about the metadata.
fn dependent_saw(build: &Build) -> String {
    build
        .stderr
        .lines()
        .find_map(|l| {
            l.split_once("dependent saw ")
                .map(|(_, rest)| rest.to_owned())
        })
        .unwrap_or_else(|| panic!("the dependent did not report:\n{}", build.stderr))
}

#[test]
fn cargo_sees_the_same_directives_after_a_miss_and_after_hits() {
    let target = shared_target();
    let f = Fixture::directives("directives", target.clone());
    let args = ["build", "--workspace", "--all-targets"];

    let miss = f.build_with(&args, &[]);
    assert_computed_once(&f);
    let expected = recorded(&f, &target, "debug");
    // Every kind of directive the steps print reached Cargo, with the
    // scratch directory already rewritten to the destination.
    for wanted in [
        "cargo:rustc-cfg=fx_value",
        "cargo::rustc-check-cfg=cfg(fx_value)",
        "cargo:rustc-env=FX_VALUE_FILE=[OUT]/value.txt",
        "cargo:rerun-if-changed=watched.txt",
        "cargo:rerun-if-env-changed=FX_WATCHED_ENV",
        "cargo:warning=fx: the value step computed",
        "cargo:answer=42",
        "cargo::metadata=origin=[OUT]",
        "cargo:rustc-cfg=fx_iter_produce",
        "cargo:rustc-cfg=fx_iter_item",
        "cargo:rustc-cfg=fx_child",
        "cargo:rustc-link-search=native=[OUT]",
        "cargo:rustc-link-lib=static=fxanswer",
        "cargo:rustc-link-arg=-Wl,--as-needed",
        "cargo:rustc-flags=-l dylib=c",
    ] {
        assert!(
            expected.iter().any(|d| d == wanted),
            "{wanted} missing from {expected:#?}"
        );
    }
    assert!(
        !expected.iter().any(|d| d.contains(".pcache-scratch")),
        "a scratch path reached Cargo: {expected:#?}"
    );
    // The script's own directive outside any step is printed once.
    let outside = expected
        .iter()
        .filter(|d| *d == "cargo:rustc-cfg=fx_outside");
    assert_eq!(outside.count(), 1);
    let out_dir = latest_output(&target, "debug", &f.package).1;
    assert_eq!(
        dependent_saw(&miss),
        format!("answer=42 origin={}", out_dir.display())
    );

    // A re-run: every step hits and Cargo records the same directives, in
    // the same order.
    let rerun = f.build_with(&args, &[("FIXTURE_RERUN", "1")]);
    assert_all_hits(&rerun);
    assert_computed_once(&f);
    assert_eq!(recorded(&f, &target, "debug"), expected);
    assert_eq!(
        dependent_saw(&rerun),
        format!("answer=42 origin={}", out_dir.display()),
        "the dependent sees the metadata on a hit"
    );

    // The release profile: hits, with paths in the release OUT_DIR, and the
    // binary links the C library restored there.
    let release = f.build_with(
        &["run", "--release", "-p", &f.package, "--bin", "fx-probe"],
        &[],
    );
    assert_all_hits(&release);
    assert_computed_once(&f);
    assert_eq!(recorded(&f, &target, "release"), expected);
    assert!(
        release.stdout.contains("fx-probe: answer 42"),
        "{}",
        release.stdout
    );

    // `cargo check` runs the build script too.
    let check = f.build_with(&["check", "--workspace"], &[("FIXTURE_RERUN", "2")]);
    assert_all_hits(&check);
    assert_computed_once(&f);
    assert_eq!(recorded(&f, &target, "debug"), expected);
    assert!(
        check.pcache_warnings().is_empty(),
        "{:?}",
        check.pcache_warnings()
    );
}

#[test]
fn a_hit_in_another_target_dir_prints_that_dirs_paths() {
    let shared_cache = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let pcache_dir = shared_cache.path().to_str().unwrap();
    let f = Fixture::directives("elsewhere", shared_target());
    f.build_with(&["build", "-p", &f.package], &[("PCACHE_DIR", pcache_dir)]);
    assert_computed_once(&f);
    let first = recorded(&f, &shared_target(), "debug");

    // A second target directory, as on another machine: only the cache is
    // shared. Its own OUT_DIR appears in the replayed paths.
    let other = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let g = Fixture {
        target: other.path().to_owned(),
        ..f
    };
    let hit = g.build_with(
        &["run", "-p", &g.package, "--bin", "fx-probe"],
        &[("PCACHE_DIR", pcache_dir)],
    );
    assert_all_hits(&hit);
    assert_computed_once(&g);
    assert_eq!(recorded(&g, other.path(), "debug"), first);
    let (output, out_dir) = latest_output(other.path(), "debug", &g.package);
    let raw = std::fs::read_to_string(output).unwrap();
    assert!(
        raw.lines()
            .any(|l| l == format!("cargo:rustc-link-search=native={}", out_dir.display())),
        "{raw}"
    );
    assert!(hit.stdout.contains("fx-probe: answer 42"), "{}", hit.stdout);
}

#[test]
fn a_hit_replays_rerun_if_changed_so_cargo_watches_the_same_files() {
    let target = shared_target();
    let f = Fixture::directives("rerun", target);
    let args = ["build", "-p", &f.package];
    f.build_with(&args, &[]);
    let hit = f.build_with(&args, &[("FIXTURE_RERUN", "1")]);
    assert_all_hits(&hit);
    assert_eq!(f.count("runs"), 2);

    // `watched.txt` was named only by the value step's closure: Cargo knows
    // it from the replay.
    touch(&f.root().join("pkg/watched.txt"));
    let rerun = f.build_with(&args, &[("FIXTURE_RERUN", "1")]);
    assert_eq!(
        f.count("runs"),
        3,
        "touching a watched file re-runs the script"
    );
    assert_all_hits(&rerun);

    // A file no directive names changes nothing: the replayed
    // rerun-if-changed lines replace Cargo's default of watching everything.
    touch(&f.root().join("pkg/unrelated.txt"));
    f.build_with(&args, &[("FIXTURE_RERUN", "1")]);
    assert_eq!(
        f.count("runs"),
        3,
        "touching an unrelated file re-runs nothing"
    );

    // So does a variable named by a replayed rerun-if-env-changed.
    f.build_with(&args, &[("FIXTURE_RERUN", "1"), ("FX_WATCHED_ENV", "x")]);
    assert_eq!(f.count("runs"), 4);
    assert_computed_once(&f);
}

#[test]
fn a_step_that_printed_cargo_error_is_not_stored() {
    let f = Fixture::directives("error", shared_target());
    let args = ["build", "-p", &f.package];
    for attempt in 1..=2 {
        let failed = f.try_build(&args, &[("FIXTURE_MODE", "error")]);
        assert!(!failed.success, "cargo::error fails the build");
        assert!(
            failed.stderr.contains("fx: this step reports an error"),
            "{}",
            failed.stderr
        );
        assert_eq!(f.count("erroring"), attempt, "computed again: never stored");
    }
    // The other steps were stored as usual.
    let ok = f.build_with(&args, &[]);
    assert_all_hits(&ok);
}

#[test]
fn a_step_whose_child_keeps_stdout_open_is_computed_not_stored() {
    let f = Fixture::directives("lingering", shared_target());
    let args = ["build", "-p", &f.package];
    for attempt in 1..=2 {
        let build = f.build_with(
            &args,
            &[
                ("FIXTURE_MODE", "lingering"),
                ("FIXTURE_RERUN", &attempt.to_string()),
            ],
        );
        assert_eq!(
            f.count("lingering"),
            attempt,
            "never stored, so computed again"
        );
        let warnings = build.pcache_warnings();
        assert_eq!(
            warnings
                .iter()
                .filter(|w| w.contains("lingering: a process the step started kept stdout open"))
                .count(),
            1,
            "{warnings:?}"
        );
    }
}
