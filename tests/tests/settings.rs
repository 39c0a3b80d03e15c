//! End-to-end: where caches live and how settings reach builds and
//! `cargo pcache` (PCACHE, PCACHE_DIR, Cargo's `[env]`, metadata).

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::{Fixture, assert_counts, cargo_pcache, entries_under};

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
