//! The remote tier, end to end: real builds of the directives fixture (a
//! value, a fallible value, an iterator, a file tree with a C library's
//! link lines, and a step printing link arguments) sharing results through
//! real remotes.
//!
//! "Machine A" is one checkout with its own target and pcache directories;
//! "machine B" a copy of the project at another path, built into another
//! target directory with an empty pcache directory. (Each side's target
//! directory is shared by the tests, so dependencies compile once per side.)
//!
//! Redis, S3 and WebDAV come from `.ci/services` (variables
//! `PCACHE_TEST_REDIS`, `PCACHE_TEST_S3`, `PCACHE_TEST_WEBDAV`); without
//! them those tests say so and pass, except under `CI=true`. The shared
//! directory and the faulty remotes (a closed port, a port that never
//! answers, a server that answers garbage or refuses writes) are made here.

mod support;

use std::fs;

use support::machines::{
    Machine, assert_all_from_the_remote, assert_same_tree, filled_file_remote,
};
use support::{Build, Fixture, latest_output, other_target, provided, shared_target};

/// Machine A computes and fills the remote; machine B, elsewhere, gets
/// every step from it: closures not run, files identical, tests passing.
fn steps_are_shared_across_machines(name: &str, remote: &str) {
    let a = Machine::new(Fixture::directives(name, shared_target()), remote);
    let built = a.build_package(&[]);
    a.assert_all_computed_once();
    assert_eq!(built.pcache_warnings(), Vec::<&str>::new());
    a.wait_for_uploads();
    let a_out = latest_output(&a.fixture.target, "debug", &a.fixture.package).1;

    let b = Machine::new(a.fixture.checkout_elsewhere(name, other_target()), remote);
    let tested = b.build(&["test", "-p", &b.fixture.package], &[]);
    assert_all_from_the_remote(&tested);
    assert!(
        b.computed().iter().all(|(_, n)| *n == 0),
        "{:?}",
        b.computed()
    );
    assert_eq!(tested.pcache_warnings(), Vec::<&str>::new());
    let b_out = latest_output(&b.fixture.target, "debug", &b.fixture.package).1;
    assert_ne!(a_out, b_out);
    assert_same_tree(&a_out, &b_out);

    let probe = b.build(&["run", "-p", &b.fixture.package, "--bin", "fx-probe"], &[]);
    assert!(
        probe.stdout.contains("fx-probe: answer 42"),
        "{}",
        probe.stdout
    );
    // Now local: the next build reads nothing from the remote.
    assert!(b.root().join(&b.fixture.package).is_dir());
}

/// Asserts that the newest build-script run of `machine`'s package gave
/// Cargo a link line naming its `OUT_DIR` (where `clib` compiled the C
/// library) and no scratch path, and that the binary linking it ran.
fn assert_links_from_out_dir(machine: &Machine, run: &Build, mode: &str) {
    let fixture = &machine.fixture;
    let (output, out_dir) = latest_output(&fixture.target, "debug", &fixture.package);
    let raw = fs::read_to_string(output).unwrap();
    assert!(!raw.contains(".pcache-scratch"), "{mode}: {raw}");
    let wanted = format!("cargo:rustc-link-search=native={}", out_dir.display());
    assert!(raw.lines().any(|l| l == wanted), "{mode}: {raw}");
    assert!(out_dir.join("libfxanswer.a").is_file(), "{mode}");
    assert!(
        run.stdout.contains("fx-probe: answer 42"),
        "{mode}: {}",
        run.stdout
    );
}

/// A C library compiled by cc into the scratch directory of a
/// `cached_files` step whose destination is `OUT_DIR`, with nothing printed
/// by hand: the binary links in every mode, stored or not.
#[test]
fn a_c_library_compiled_into_out_dir_links_off_miss_hit_verify_and_from_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let a = Machine::new(Fixture::directives("cc-modes", shared_target()), &url);
    let package = a.fixture.package.clone();
    let run = ["run", "-p", &package, "--bin", "fx-probe"];

    let off = a.build(&run, &[("PCACHE", "off")]);
    assert!(off.has_step("off clib"), "{:?}", off.steps());
    assert_links_from_out_dir(&a, &off, "off");

    let miss = a.build(&run, &[("FIXTURE_RERUN", "1")]);
    assert!(miss.has_step("miss clib"), "{:?}", miss.steps());
    assert_links_from_out_dir(&a, &miss, "miss");

    // A fresh OUT_DIR, restored from the entry.
    a.build(&["clean", "-p", &package], &[]);
    let hit = a.build(&run, &[("FIXTURE_RERUN", "1")]);
    assert!(hit.has_step("hit clib"), "{:?}", hit.steps());
    assert_links_from_out_dir(&a, &hit, "hit");

    let verify = a.build(&run, &[("PCACHE", "verify"), ("FIXTURE_RERUN", "2")]);
    assert!(verify.has_step("verified clib"), "{:?}", verify.steps());
    assert_links_from_out_dir(&a, &verify, "verify");
    assert_eq!(a.fixture.count("clib"), 3, "off, miss and verify computed");
    a.wait_for_uploads();

    let b = Machine::new(
        a.fixture.checkout_elsewhere("cc-modes", other_target()),
        &url,
    );
    let remote = b.build(&run, &[]);
    assert_all_from_the_remote(&remote);
    assert_eq!(b.fixture.count("clib"), 0);
    assert_links_from_out_dir(&b, &remote, "remote hit");
}

#[test]
fn a_shared_directory_shares_steps_across_machines() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    steps_are_shared_across_machines("remote-file", &url);
}

#[test]
fn redis_shares_steps_across_machines() {
    if let Some(url) = provided("PCACHE_TEST_REDIS") {
        steps_are_shared_across_machines("remote-redis", &url);
    }
}

#[test]
fn s3_shares_steps_across_machines() {
    if let Some(url) = provided("PCACHE_TEST_S3") {
        steps_are_shared_across_machines("remote-s3", &url);
    }
}

#[test]
fn webdav_shares_steps_across_machines() {
    if let Some(url) = provided("PCACHE_TEST_WEBDAV") {
        steps_are_shared_across_machines("remote-webdav", &url);
    }
}

#[test]
fn read_mode_reads_and_never_writes() {
    let (dir, _a, b) = filled_file_remote("remote-read");
    let built = b.build_package(&[("PCACHE_REMOTE_MODE", "read")]);
    assert_all_from_the_remote(&built);

    // A machine with new steps computes them and sends nothing.
    let empty = tempfile::tempdir().unwrap();
    let url = format!("file://{}", empty.path().display());
    let c = Machine::new(
        Fixture::directives("remote-read-new", shared_target()),
        &url,
    );
    c.build_package(&[("PCACHE_REMOTE_MODE", "read")]);
    c.assert_all_computed_once();
    assert!(!c.root().join(".outbox").exists());
    assert!(!empty.path().join("v3").exists());
    drop(dir);
}
