//! The real binary against target directories made with pcache-core.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use pcache_core::{CacheMeta, Key, Store};
use serde_json::Value;
use support::{BIN, Project, command};

fn caches(listing: &Value) -> &Vec<Value> {
    listing["caches"].as_array().unwrap()
}

fn find<'a>(listing: &'a Value, name: &str) -> &'a Value {
    caches(listing)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {listing}"))
}

#[test]
fn ls_of_an_empty_target_is_an_empty_table() {
    let p = Project::new();
    let out = p.run(&["ls"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("PACKAGE"));
    let listing = p.json(&[]);
    assert_eq!(caches(&listing).len(), 0);
    let target = listing["target_dir"].as_str().unwrap();
    assert_eq!(
        fs::canonicalize(target).ok(),
        None,
        "target dir need not exist"
    );
    assert!(target.ends_with("target"), "{target}");
}

#[test]
fn ls_reports_every_cache_with_the_json_fields() {
    let p = Project::new();
    p.cache("app", "table", None, 3, Duration::ZERO);
    p.cache(
        "app-sys",
        "bindings",
        Some(Duration::from_secs(3600)),
        2,
        Duration::from_secs(7200),
    );
    let listing = p.json(&[]);
    assert_eq!(caches(&listing).len(), 2);
    let table = find(&listing, "table");
    assert_eq!(table["package"], "app");
    assert_eq!(table["entries"], 3);
    assert_eq!(table["expired"], 0);
    assert_eq!(table["expiry_secs"], Value::Null);
    assert_eq!(table["in_workspace"], true);
    assert!(table["bytes"].as_u64().unwrap() > 3000);
    assert!(
        Path::new(table["path"].as_str().unwrap())
            .join("cache.toml")
            .is_file()
    );
    let bindings = find(&listing, "bindings");
    assert_eq!(bindings["expired"], 2);
    assert_eq!(bindings["expiry_secs"], 3600);

    let table_text = p.ok(&["ls"]);
    assert!(
        table_text.contains("bindings") && table_text.contains("table"),
        "{table_text}"
    );
    assert!(table_text.contains("KiB"), "{table_text}");
}

#[test]
fn ls_entries_lists_each_entry_with_rfc3339_times() {
    let p = Project::new();
    let store = p.cache("app", "table", None, 2, Duration::from_secs(90));
    let listing = p.json(&["--entries"]);
    let list = find(&listing, "table")["entry_list"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 2);
    for entry in &list {
        let key: Key = entry["key"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            Path::new(entry["path"].as_str().unwrap()),
            store.entry_path(&key)
        );
        let modified = humantime::parse_rfc3339(entry["modified"].as_str().unwrap()).unwrap();
        let age = SystemTime::now().duration_since(modified).unwrap();
        // Written 90 s back; generous for a loaded machine.
        assert!((89..=180).contains(&age.as_secs()), "{age:?}");
        assert_eq!(entry["expired"], false);
        assert!(entry["bytes"].as_u64().unwrap() > 1000);
    }
    let text = p.ok(&["ls", "--entries"]);
    assert_eq!(text.lines().count(), 1 + 1 + 2, "{text}");
}

#[test]
fn flush_removes_expired_entries_and_dry_run_removes_nothing() {
    let p = Project::new();
    // Expiry recorded by the cache.
    p.cache(
        "app",
        "old",
        Some(Duration::from_secs(60)),
        4,
        Duration::from_secs(120),
    );
    p.cache(
        "app",
        "fresh",
        Some(Duration::from_secs(60)),
        2,
        Duration::ZERO,
    );
    // No recorded expiry: the package metadata's (1h) applies.
    p.cache("app-sys", "meta-expiry", None, 3, Duration::from_secs(7200));
    let dry = p.ok(&["flush", "--dry-run"]);
    assert!(dry.contains("Would flush 7 entries"), "{dry}");
    assert_eq!(find(&p.json(&[]), "old")["entries"], 4);

    let done = p.ok(&["flush"]);
    assert!(done.contains("Flushed 7 entries"), "{done}");
    let listing = p.json(&[]);
    assert_eq!(find(&listing, "old")["entries"], 0);
    assert_eq!(find(&listing, "meta-expiry")["entries"], 0);
    assert_eq!(find(&listing, "fresh")["entries"], 2);
}

#[test]
fn flush_expiry_flag_wins_over_the_recorded_one() {
    let p = Project::new();
    p.cache(
        "app",
        "c",
        Some(Duration::from_secs(86_400)),
        3,
        Duration::from_secs(3 * 3600),
    );
    assert!(p.ok(&["flush"]).contains("Flushed 0 entries"));
    assert!(
        p.ok(&["flush", "--expiry", "1h30m"])
            .contains("Flushed 3 entries")
    );
}

#[test]
fn clear_keeps_caches_and_delete_removes_them() {
    let p = Project::new();
    let a = p.cache("app", "a", None, 3, Duration::ZERO);
    p.cache("app", "b", None, 2, Duration::ZERO);
    let dry = p.ok(&["clear", "a", "--dry-run"]);
    assert!(dry.contains("Would clear 3 entries"), "{dry}");
    assert!(p.ok(&["clear", "a"]).contains("Cleared 3 entries"));
    assert!(a.dir().join("cache.toml").is_file());
    let listing = p.json(&[]);
    assert_eq!(find(&listing, "a")["entries"], 0);
    assert_eq!(find(&listing, "b")["entries"], 2);

    assert!(
        p.ok(&["delete", "--dry-run"])
            .contains("Would delete 2 caches (2 entries")
    );
    assert!(a.dir().exists());
    let deleted = p.ok(&["delete", "-p", "app"]);
    assert!(deleted.contains("Deleted 2 caches (2 entries"), "{deleted}");
    assert!(!p.target().join("pcache/app").exists());
    assert_eq!(caches(&p.json(&[])).len(), 0);
}

#[test]
fn unknown_packages_and_names_are_errors_listing_what_exists() {
    let p = Project::new();
    p.cache("app", "table", None, 1, Duration::ZERO);
    let out = p.run(&["ls", "-p", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("package `nope` not found"), "{stderr}");
    assert!(stderr.contains("app, app-sys"), "{stderr}");
    // A workspace member without caches is a valid, empty selection.
    assert_eq!(caches(&p.json(&["-p", "app-sys"])).len(), 0);

    let out = p.run(&["clear", "tabel"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("no cache named `tabel`; caches: `table`"),
        "{stderr}"
    );
}

#[test]
fn bad_durations_are_usage_errors_showing_the_forms() {
    let p = Project::new();
    for bad in ["soon", "5x", ""] {
        let out = p.run(&["flush", "--expiry", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("1h30m"), "{stderr}");
    }
    assert_eq!(p.run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(p.run(&[]).status.code(), Some(2));
    let help = p.run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .contains("Examples:")
    );
}

#[test]
fn outside_a_project_is_an_error_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(BIN, dir.path())
        .args(["pcache", "ls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no Cargo project at"), "{stderr}");
    assert!(
        stderr.contains(&dir.path().display().to_string()),
        "{stderr}"
    );
    // With a target dir it works anywhere.
    let out = Command::new(BIN)
        .args(["pcache", "ls", "--target-dir"])
        .arg(dir.path().join("t"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn target_dir_flag_env_and_pcache_dir_are_honoured() {
    let p = Project::new();
    let other = tempfile::tempdir().unwrap();
    let store = Store::open(other.path().join("pcache/app/x")).unwrap();
    store
        .write_meta(&CacheMeta::new("moved").package("app"))
        .unwrap();
    let flag = p.json(&["--target-dir", other.path().to_str().unwrap()]);
    assert_eq!(caches(&flag).len(), 1);
    let out = Command::new(BIN)
        .args(["pcache", "ls", "--json"])
        .current_dir(p.root())
        .env("CARGO_TARGET_DIR", other.path())
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(find(&env, "moved")["package"], "app");
    let out = Command::new(BIN)
        .args(["pcache", "ls", "--json"])
        .current_dir(p.root())
        .env("PCACHE_DIR", other.path().join("pcache"))
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(caches(&env).len(), 1);
}

#[test]
fn stale_packages_are_marked_and_foreign_files_are_warnings() {
    let p = Project::new();
    p.cache("removed-crate", "old", None, 1, Duration::ZERO);
    fs::write(p.target().join("pcache/notes.txt"), "hi").unwrap();
    let out = p.run(&["ls"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("removed-crate*"), "{stdout}");
    assert!(stdout.contains("not in this workspace"), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert_eq!(find(&p.json(&[]), "old")["in_workspace"], false);
    // -q silences the warning.
    let quiet = p.run(&["ls", "-q"]);
    assert!(quiet.stderr.is_empty());
    // And the stale package can be deleted by name.
    assert!(
        p.ok(&["delete", "-p", "removed-crate"])
            .contains("Deleted 1 cache")
    );
}

#[test]
fn quiet_flush_prints_nothing_and_verbose_names_each_cache() {
    let p = Project::new();
    p.cache("app", "alpha", None, 2, Duration::ZERO);
    assert_eq!(p.ok(&["clear", "-q"]), "");
    p.cache("app", "alpha", None, 2, Duration::ZERO);
    let verbose = p.ok(&["clear", "-v"]);
    assert!(verbose.contains("app  alpha  2 entries"), "{verbose}");
}

#[test]
fn color_always_paints_and_never_does_not() {
    let p = Project::new();
    p.cache(
        "app",
        "alpha",
        Some(Duration::from_secs(1)),
        2,
        Duration::from_secs(10),
    );
    assert!(p.ok(&["ls", "--color", "always"]).contains("\x1b["));
    assert!(!p.ok(&["ls", "--color", "never"]).contains("\x1b["));
}

#[test]
fn runs_as_a_cargo_subcommand() {
    let p = Project::new();
    p.cache("app", "table", None, 1, Duration::ZERO);
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_owned())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["pcache", "ls", "--json"])
        .current_dir(p.root())
        .env("PATH", path)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(find(&listing, "table")["entries"], 1);
}

#[test]
fn ls_and_flush_are_safe_beside_a_concurrent_writer() {
    let p = Project::new();
    let store = p.cache(
        "app",
        "busy",
        Some(Duration::from_secs(1)),
        50,
        Duration::ZERO,
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let old = store
                .clone()
                .with_clock(|| SystemTime::now() - Duration::from_secs(10));
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = Key::new(&("busy", i % 200)).unwrap();
                if i % 3 == 0 {
                    store.remove(&key).unwrap();
                } else {
                    old.set(&key, &vec![1u8; 5000]).unwrap();
                }
                i += 1;
            }
        });
        for round in 0..15 {
            let listing = p.json(&["--entries"]);
            let busy = find(&listing, "busy");
            let list = busy["entry_list"].as_array().unwrap();
            assert!(
                list.iter().all(|e| e["bytes"].as_u64().unwrap() > 0),
                "round {round}"
            );
            let out = p.run(&["flush"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // Every entry left is whole.
    for entry in store.entries().unwrap() {
        assert!(entry.corrupt.is_none(), "{entry:?}");
    }
}

/// Runs the binary on a pseudo-terminal (util-linux `script`), returning
/// everything it wrote there; `None` where `script` is missing.
fn on_terminal(p: &Project, args: &str, env: &[(&str, &str)]) -> Option<String> {
    let command = format!("{BIN} pcache {args}");
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(p.root())
        .env_remove("NO_COLOR")
        .env_remove("CARGO_TARGET_DIR")
        // CI sets CARGO_TERM_COLOR=never, which `cargo pcache` honours.
        .env_remove("CARGO_TERM_COLOR")
        .envs(env.iter().copied())
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_a_terminal_colours_follow_no_color_and_progress_bars_show() {
    let p = Project::new();
    p.cache("app", "many", None, 10_000, Duration::ZERO);
    let Some(colored) = on_terminal(&p, "ls", &[]) else {
        return eprintln!("skipped: util-linux `script` is not installed");
    };
    assert!(colored.contains("\x1b[1mPACKAGE"), "{colored:?}");
    let plain = on_terminal(&p, "ls", &[("NO_COLOR", "1")]).unwrap();
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("PACKAGE"));
    let never = on_terminal(&p, "ls --color never", &[]).unwrap();
    assert!(!never.contains('\x1b'), "{never:?}");

    let cleared = on_terminal(&p, "clear", &[]).unwrap();
    assert!(
        cleared.contains("/10000 entries"),
        "a progress bar: {cleared:?}"
    );
    assert!(cleared.contains("Cleared 10000 entries"), "{cleared:?}");

    p.cache("app", "many", None, 10_000, Duration::ZERO);
    let quiet = on_terminal(&p, "clear -q", &[]).unwrap();
    assert!(quiet.trim().is_empty(), "-q prints nothing: {quiet:?}");
}

#[test]
fn with_a_separate_build_dir_the_cache_lives_there_and_ls_finds_it() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = dir.path();
    // Unique per run: the shared build dir keeps caches across runs.
    let suffix: String = root
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let package = format!("pcache-build-dir-{suffix}");
    let pcache_build =
        fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../pcache-build")).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [build-dependencies]\npcache-build = {{ path = \"{}\" }}\n\n[workspace]\n",
            pcache_build.display()
        ),
    )
    .unwrap();
    fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();
    fs::create_dir_all(root.join("src")).unwrap();
    fs::write(root.join("src/lib.rs"), "").unwrap();
    fs::write(
        root.join("build.rs"),
        "fn main() { let v: Vec<u32> = pcache_build::cached(\"squares\", 10u32, || (0..10).map(|i| i * i).collect()); assert_eq!(v[3], 9); }\n",
    )
    .unwrap();
    // The build dir is the one the end-to-end fixtures share, so the
    // dependencies are compiled once for both suites.
    let build_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures-target");
    fs::create_dir_all(root.join(".cargo")).unwrap();
    fs::write(
        root.join(".cargo/config.toml"),
        format!("[build]\nbuild-dir = \"{}\"\n", build_dir.display()),
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = command(&cargo, root)
        .args(["build", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        build_dir.join("pcache").join(&package).is_dir(),
        "the cache is in the build dir"
    );
    assert!(
        !root.join("target/pcache").exists(),
        "and not in the target dir"
    );

    let out = command(BIN, root)
        .args(["pcache", "ls", "--json", "-p", &package])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        Path::new(listing["pcache_dir"].as_str().unwrap()),
        build_dir.join("pcache")
    );
    assert_eq!(
        Path::new(listing["target_dir"].as_str().unwrap()),
        root.join("target")
    );
    let cache = find(&listing, "squares");
    assert_eq!(cache["entries"], 1);
    assert_eq!(cache["in_workspace"], true);
}

#[test]
fn ls_counts_temporary_and_lock_files_beside_the_entries() {
    let p = Project::new();
    let store = p.cache("app", "alpha", None, 2, Duration::ZERO);
    let key = pcache_core::Key::new("k").unwrap();
    fs::write(store.dir().join(format!(".tmp.{key}.1.0")), vec![0u8; 3000]).unwrap();
    fs::write(store.dir().join(format!("{key}.lock")), b"").unwrap();
    let listing = p.json(&[]);
    let leftovers = &find(&listing, "alpha")["leftovers"];
    assert_eq!(leftovers["temp_files"], 1, "{listing}");
    assert_eq!(leftovers["temp_bytes"], 3000, "{listing}");
    assert_eq!(leftovers["lock_files"], 1, "{listing}");
    let table = p.ok(&["ls"]);
    assert!(
        table.contains("1 temporary files (2.9 KiB) and 1 lock files"),
        "{table}"
    );
}
