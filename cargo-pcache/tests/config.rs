//! One configuration, applied the same way by every command: a flag beats
//! the environment (with Cargo's `[env]`), which beats package metadata,
//! which beats workspace metadata, which beats the default.

mod support;

use std::fs;
use std::time::Duration;

use pcache_core::{CacheMeta, Key, Store};
use serde_json::Value;
use support::Project;

fn gc_cap(p: &Project, args: &[&str], envs: &[(&str, &str)]) -> Value {
    let mut all = vec!["gc", "--dry-run", "--json"];
    all.extend_from_slice(args);
    let out = p.run_with(&all, envs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report
}

fn with_workspace_metadata(p: &Project, table: &str) {
    let manifest = p.root().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        format!("{text}\n[workspace.metadata.pcache]\n{table}\n"),
    )
    .unwrap();
}

#[test]
fn gc_takes_the_flag_then_the_variable_then_the_workspace_metadata() {
    let p = Project::new();
    with_workspace_metadata(&p, "max-size = \"1KiB\"");
    p.cache("app", "big", None, 6, Duration::ZERO);

    let metadata = gc_cap(&p, &[], &[]);
    assert_eq!(metadata["max_bytes"], 1024, "{metadata}");
    assert!(metadata["evicted"]["entries"].as_u64().unwrap() > 0);

    // The variable beats the workspace metadata (builds do the same).
    let variable = gc_cap(&p, &[], &[("PCACHE_MAX_SIZE", "1MiB")]);
    assert_eq!(variable["max_bytes"], 1 << 20, "{variable}");
    assert_eq!(variable["evicted"]["entries"], 0);

    // So does the variable set in `.cargo/config.toml`'s `[env]`…
    p.cargo_config("[env]\nPCACHE_MAX_SIZE = \"2MiB\"\n");
    let config = gc_cap(&p, &[], &[]);
    assert_eq!(config["max_bytes"], 2 << 20, "{config}");
    // …unless the environment has its own, as Cargo applies `[env]`.
    let env = gc_cap(&p, &[], &[("PCACHE_MAX_SIZE", "3MiB")]);
    assert_eq!(env["max_bytes"], 3 << 20, "{env}");

    // The flag beats everything.
    let flag = gc_cap(&p, &["--max-size", "2KiB"], &[("PCACHE_MAX_SIZE", "1MiB")]);
    assert_eq!(flag["max_bytes"], 2048, "{flag}");
}

#[test]
fn a_bad_variable_is_a_warning_and_the_workspace_metadata_applies() {
    let p = Project::new();
    with_workspace_metadata(&p, "max-size = \"1KiB\"");
    let out = p.run_with(
        &["gc", "--dry-run", "--json"],
        &[("PCACHE_MAX_SIZE", "lots")],
    );
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["max_bytes"], 1024);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PCACHE_MAX_SIZE") && stderr.contains("lots"),
        "{stderr}"
    );
}

#[test]
fn every_command_finds_the_caches_where_cargo_config_env_puts_pcache_dir() {
    let p = Project::new();
    p.cargo_config("[env]\nPCACHE_DIR = { value = \"shared-cache\", relative = true }\n");
    let dir = p
        .root()
        .join("shared-cache/app")
        .join(pcache_core::short_id("moved"));
    let store = Store::open(&dir).unwrap();
    store
        .write_meta(&CacheMeta::new("moved").package("app"))
        .unwrap();
    store.set(&Key::new("k").unwrap(), &vec![1u8; 100]).unwrap();

    let listing = p.json(&[]);
    let caches = listing["caches"].as_array().unwrap();
    assert_eq!(caches.len(), 1, "{listing}");
    assert_eq!(caches[0]["name"], "moved");
    assert!(
        caches[0]["path"]
            .as_str()
            .unwrap()
            .starts_with(p.root().join("shared-cache").to_str().unwrap()),
        "{listing}"
    );
    // The environment's own value wins over `[env]`, as in builds.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = p.run_with(
        &["ls", "--json"],
        &[("PCACHE_DIR", elsewhere.path().to_str().unwrap())],
    );
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listing["caches"].as_array().unwrap().len(), 0);
    // stats and clear look in the same place.
    assert!(p.ok(&["stats"]).contains("moved"), "{}", p.ok(&["stats"]));
    assert!(p.ok(&["clear"]).contains("1 entr"), "cleared");
    assert_eq!(store.entries().unwrap().len(), 0);
}

#[test]
fn cargo_term_color_and_cargo_term_config_apply_under_the_color_flag() {
    let p = Project::new();
    p.cache(
        "app",
        "alpha",
        Some(Duration::from_secs(1)),
        2,
        Duration::from_secs(10),
    );
    let painted = |envs: &[(&str, &str)], args: &[&str]| {
        let mut all = vec!["ls"];
        all.extend_from_slice(args);
        let out = p.run_with(&all, envs);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().contains("\x1b[")
    };
    // Not a terminal: auto paints nothing.
    assert!(!painted(&[], &[]));
    assert!(painted(&[("CARGO_TERM_COLOR", "always")], &[]));
    // The flag beats the variable.
    assert!(!painted(
        &[("CARGO_TERM_COLOR", "always")],
        &["--color", "never"]
    ));
    assert!(painted(
        &[("CARGO_TERM_COLOR", "never")],
        &["--color", "always"]
    ));
    // Cargo's own `term.color` setting, under the variable.
    p.cargo_config("[term]\ncolor = \"always\"\n");
    assert!(painted(&[], &[]));
    assert!(!painted(&[("CARGO_TERM_COLOR", "never")], &[]));
    // A value Cargo does not know is named (cargo metadata refuses it too).
    let out = p.run_with(&["ls"], &[("CARGO_TERM_COLOR", "purple")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("purple"));
}

#[test]
fn workspace_expiry_applies_to_packages_that_set_none() {
    let p = Project::new();
    with_workspace_metadata(&p, "expiry = \"30m\"");
    // `app` sets no expiry; `app-sys` sets 1h, which beats the workspace's.
    p.cache("app", "alpha", None, 2, Duration::from_secs(45 * 60));
    p.cache("app-sys", "beta", None, 2, Duration::from_secs(45 * 60));
    let listing = p.json(&[]);
    let expiry = |name: &str| {
        listing["caches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["expired"]
            .clone()
    };
    assert_eq!(expiry("alpha"), 2, "{listing}");
    assert_eq!(expiry("beta"), 0, "{listing}");
    let flushed = p.ok(&["flush"]);
    assert!(flushed.contains("2 entries"), "{flushed}");
}
