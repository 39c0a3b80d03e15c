//! `cargo pcache stats`, `why` and `gc`, and the size cap, against real
//! builds of the fixture crate (see `fixture/build.rs`).

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Fixture;

/// Runs `cargo pcache` in this process on the fixture's workspace and
/// target directory; returns stdout, asserting success.
fn pcache(f: &Fixture, args: &[&str]) -> String {
    let manifest = f.root().join("Cargo.toml");
    let mut all = vec!["cargo-pcache", "pcache"];
    all.extend_from_slice(args);
    all.extend([
        "--manifest-path",
        manifest.to_str().unwrap(),
        "--target-dir",
        f.target.to_str().unwrap(),
        "-p",
        &f.package,
    ]);
    // Only this fixture's caches: the target directory is shared.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = cargo_pcache::run(all, &mut out, &mut err);
    assert_eq!(
        status,
        std::process::ExitCode::SUCCESS,
        "{args:?}: {}",
        String::from_utf8_lossy(&err)
    );
    String::from_utf8(out).unwrap()
}

fn json(f: &Fixture, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&pcache(f, &all)).unwrap()
}

fn cache<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["caches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

/// The summary and differences `why` gives for `name`.
fn why(f: &Fixture, name: &str) -> (String, Vec<String>) {
    let text = pcache(f, &["why", name, "--color", "never"]);
    let mut lines = text.lines().skip(1);
    let summary = lines.next().unwrap_or_default().trim().to_owned();
    let differences = lines.map(|l| l.trim().to_owned()).collect();
    (summary, differences)
}

fn rewrite_keeping_mtime(path: &Path, text: &str) {
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(path).unwrap());
    fs::write(path, text).unwrap();
    filetime::set_file_mtime(path, mtime).unwrap();
}

#[test]
fn stats_count_every_outcome_of_real_builds() {
    let f = Fixture::new("stats");
    f.build(&[]);
    f.build(&[("FIXTURE_RERUN", "1")]);
    f.build(&[("FIXTURE_INPUT", "b")]);
    f.build(&[("FIXTURE_RERUN", "2")]);
    // Off writes nothing, not even its statistics: it is not counted.
    f.build(&[("PCACHE", "off")]);
    f.build(&[("PCACHE", "verify")]);
    let helper = f.root().join("build_support/helper.rs");
    let edited = fs::read_to_string(&helper)
        .unwrap()
        .replace("OFFSET: u64 = 0", "OFFSET: u64 = 1");
    fs::write(&helper, edited).unwrap();
    f.build(&[]);

    let stats = json(&f, &["stats"]);
    for name in ["table", "rows", "generated"] {
        let c = cache(&stats, name);
        assert_eq!(c["hits"], 2, "{name}: {c}");
        assert_eq!(c["misses"], 4, "{name}: {c}");
        for (reason, n) in [
            ("new_key", 1),
            ("inputs_changed", 1),
            ("code_changed", 1),
            ("disabled", 0),
            ("verify", 1),
            ("expired", 0),
            ("corrupt", 0),
            ("evicted", 0),
        ] {
            assert_eq!(c["misses_by_reason"][reason], n, "{name} {reason}: {c}");
        }
        assert!(c["compute_secs"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["hit_secs"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["bytes_read"].as_u64().unwrap() > 0, "{c}");
        assert!(c["bytes_written"].as_u64().unwrap() > 0, "{c}");
    }
    assert_eq!(stats["total"]["hits"], 6);
    assert_eq!(stats["total"]["misses"], 12);
    // A window that ends before everything counts nothing recent… and all
    // of it with a window that covers it.
    assert_eq!(json(&f, &["stats", "--since", "1h"])["total"]["hits"], 6);
    let text = pcache(&f, &["stats", "--color", "never"]);
    assert!(
        text.contains("misses: 3 new key, 3 inputs changed, 3 code changed, 3 verify"),
        "{text}"
    );
    pcache(&f, &["stats", "--reset"]);
    assert_eq!(json(&f, &["stats"])["total"]["hits"], 0);
}

#[test]
fn why_names_what_changed_in_real_builds() {
    let f = Fixture::new("why");
    let input = f.root().join("input.txt");
    let deep = f.root().join("inputs/nested/deep.txt");
    fs::create_dir_all(deep.parent().unwrap()).unwrap();
    fs::write(&input, "aaaa").unwrap();
    fs::write(&deep, "1").unwrap();
    let mode = ("FIXTURE_MODE", "file-input");

    f.build(&[mode]);
    let (summary, _) = why(&f, "from-file");
    assert!(
        summary.ends_with("never computed before: no other entry in this cache"),
        "{summary}"
    );

    rewrite_keeping_mtime(&input, "bbbb");
    f.build(&[mode, ("FIXTURE_RERUN", "1")]);
    let (summary, diffs) = why(&f, "from-file");
    assert!(summary.contains("inputs changed"), "{summary}");
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(
        diffs[0].starts_with("- file(\"input.txt\") changed"),
        "{diffs:?}"
    );

    rewrite_keeping_mtime(&deep, "2");
    f.build(&[mode, ("FIXTURE_RERUN", "2")]);
    let (_, diffs) = why(&f, "from-file");
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(
        diffs[0].starts_with("- dir(\"inputs\") changed: nested/deep.txt changed ("),
        "only the file that changed is named: {diffs:?}"
    );

    // An env() input, by name only: values never appear.
    f.build(&[mode, ("FIXTURE_INPUT", "secret-value")]);
    let (summary, diffs) = why(&f, "table");
    assert!(summary.contains("inputs changed"), "{summary}");
    assert!(
        diffs[0].starts_with("- env(\"FIXTURE_INPUT\") is set now"),
        "{diffs:?}"
    );
    let document = pcache(&f, &["why", "table", "--json"]);
    assert!(!document.contains("secret-value"), "{document}");

    // The build script's code.
    let helper = f.root().join("build_support/helper.rs");
    let edited = fs::read_to_string(&helper)
        .unwrap()
        .replace("OFFSET: u64 = 0", "OFFSET: u64 = 1");
    fs::write(&helper, edited).unwrap();
    f.build(&[mode]);
    let (summary, diffs) = why(&f, "table");
    assert!(summary.contains("code changed"), "{summary}");
    assert!(
        diffs
            .iter()
            .any(|d| d.starts_with("- build-script source `build_support/helper.rs` changed")),
        "{diffs:?}"
    );

    // The value type.
    f.build(&[("FIXTURE_MODE", "type-number")]);
    f.build(&[("FIXTURE_MODE", "type-text")]);
    let (_, diffs) = why(&f, "typed");
    assert!(
        diffs
            .iter()
            .any(|d| d.starts_with("- the value type changed (`u64` → `alloc::string::String`)")),
        "{diffs:?}"
    );

    // Corrupt entries.
    for entry in f.entries() {
        let mut bytes = fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        fs::write(&entry, bytes).unwrap();
    }
    f.build(&[mode, ("FIXTURE_RERUN", "3")]);
    let (summary, _) = why(&f, "table");
    assert!(
        summary.ends_with(
            "the stored entry was corrupt or no longer decoded, so it was computed again"
        ),
        "{summary}"
    );
}

#[test]
fn why_names_a_build_dependency_upgrade_and_expiry() {
    let f = Fixture::new("why-deps");
    let dep = f.root().join("fxdep");
    fs::create_dir_all(dep.join("src")).unwrap();
    let manifest = |version: &str| {
        format!("[package]\nname = \"fxdep\"\nversion = \"{version}\"\nedition = \"2021\"\n")
    };
    fs::write(dep.join("Cargo.toml"), manifest("0.1.0")).unwrap();
    fs::write(dep.join("src/lib.rs"), "").unwrap();
    let root_manifest = f.root().join("Cargo.toml");
    let text = fs::read_to_string(&root_manifest).unwrap().replace(
        "[build-dependencies]\n",
        "[build-dependencies]\nfxdep = { path = \"fxdep\" }\n",
    );
    fs::write(&root_manifest, text).unwrap();
    f.build(&[("FIXTURE_MODE", "expiry")]);

    fs::write(dep.join("Cargo.toml"), manifest("0.1.1")).unwrap();
    f.build(&[("FIXTURE_MODE", "expiry")]);
    let (summary, diffs) = why(&f, "table");
    assert!(summary.contains("code changed"), "{summary}");
    assert!(
        diffs.contains(&"- build-dependency `fxdep` 0.1.0 → 0.1.1".to_owned()),
        "{diffs:?}"
    );

    // Expiry: the short-lived entry is a second old.
    let written = Instant::now();
    std::thread::sleep(Duration::from_millis(1200).saturating_sub(written.elapsed()));
    f.build(&[("FIXTURE_MODE", "expiry"), ("FIXTURE_RERUN", "1")]);
    assert!(
        why(&f, "short-lived")
            .0
            .ends_with("the stored entry had expired")
    );
    let stats = json(&f, &["stats"]);
    assert_eq!(
        cache(&stats, "short-lived")["misses_by_reason"]["expired"],
        1
    );
}

#[test]
fn the_size_cap_evicts_the_cheapest_bytes_first() {
    // A pcache directory of its own: trimming acts on the whole directory.
    let own = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = own.path().to_str().unwrap();
    let f = Fixture::new("cap");
    let envs = |rerun: &'static str| {
        [
            ("PCACHE_DIR", dir),
            ("PCACHE_MAX_SIZE", "1MiB"),
            ("FIXTURE_MODE", "big"),
            ("FIXTURE_RERUN", rerun),
        ]
    };
    let store = |name: &str| {
        pcache_core::Store::at(pcache_core::conventions::cache_dir(
            own.path(),
            &f.package,
            name,
        ))
    };
    // The 4 MiB value is computed in a millisecond: it is worth the least
    // per byte, and goes as soon as it is stored; the small entries stay.
    let first = f.build(&envs("0"));
    assert!(
        first.steps().iter().any(|s| s.starts_with("trimmed ")),
        "{:?}",
        first.steps()
    );
    assert!(store("big").entries().unwrap().is_empty());
    for name in ["table", "rows", "generated"] {
        assert_eq!(store(name).entries().unwrap().len(), 1, "{name}");
    }
    let again = f.build(&envs("1"));
    assert!(again.has_step("hit table"), "{:?}", again.steps());
    assert!(again.has_step("miss big"), "{:?}", again.steps());
    let big = store("big").stats_log().read().unwrap().totals(None);
    assert_eq!(big.misses_for(pcache_core::record::MissReason::Evicted), 1);
    assert_eq!(
        store("big").last_miss().unwrap().unwrap().reason,
        pcache_core::record::MissReason::Evicted
    );
    let table = store("table").stats_log().read().unwrap().totals(None);
    assert_eq!(table.hits, 1);
}

#[test]
fn racing_builds_under_a_tiny_cap_stay_green_and_correct() {
    // Two packages share one pcache directory whose cap is smaller than
    // their entries: every store trims, while the other build reads.
    let shared = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = shared.path().to_str().unwrap();
    let a = Fixture::new("race-a");
    let b = Fixture::new("race-b");
    for round in 0..3 {
        let rerun = round.to_string();
        let envs = [
            ("PCACHE_DIR", dir),
            ("PCACHE_MAX_SIZE", "64KiB"),
            ("FIXTURE_RERUN", rerun.as_str()),
        ];
        let (first, second) = std::thread::scope(|s| {
            let first = s.spawn(|| a.try_build(&["build"], &envs));
            let second = s.spawn(|| b.try_build(&["build"], &envs));
            (first.join().unwrap(), second.join().unwrap())
        });
        // The fixture asserts every value it gets back.
        assert!(first.success, "{}", first.stderr);
        assert!(second.success, "{}", second.stderr);
    }
    let size: u64 = walk(shared.path())
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    assert!(size < 1 << 20, "trimmed: {size} bytes");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The phases `PCACHE_TRACE=1` printed for `step`, in order.
fn traced_phases(build: &support::Build, step: &str) -> Vec<String> {
    let prefix = format!("pcache trace: {step}: ");
    let line = build
        .stderr
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no trace of {step}:\n{}", build.stderr));
    let (phases, total) = line.rsplit_once(" (total ").unwrap();
    assert!(total.ends_with(" ms)"), "{line}");
    phases
        .split(", ")
        .map(|phase| {
            let (name, took) = phase.rsplit_once(' ').unwrap().0.rsplit_once(' ').unwrap();
            assert!(took.parse::<f64>().is_ok(), "{phase} in {line}");
            name.to_owned()
        })
        .collect()
}

fn assert_in_order(phases: &[String], expected: &[&str]) {
    let mut rest = phases.iter();
    for want in expected {
        assert!(
            rest.any(|p| p == want),
            "{want} missing or out of order in {phases:?}"
        );
    }
}

#[test]
fn trace_names_every_phase_of_a_miss_and_a_hit_and_is_silent_when_off() {
    let f = Fixture::new("trace");
    let quiet = f.build(&[]);
    assert!(!quiet.stderr.contains("pcache trace"), "{}", quiet.stderr);

    let miss = f.build(&[("PCACHE_TRACE", "1"), ("FIXTURE_INPUT", "traced")]);
    let before = [
        "input digests",
        "locate",
        "open and metadata",
        "code identity",
        "key",
    ];
    for step in ["table", "generated"] {
        let phases = traced_phases(&miss, step);
        assert_in_order(&phases, &before);
        assert_in_order(
            &phases,
            &["remote check", "lock", "compute", "store", "stats"],
        );
    }

    let hit = f.build(&[
        ("PCACHE_TRACE", "1"),
        ("FIXTURE_INPUT", "traced"),
        ("FIXTURE_RERUN", "1"),
    ]);
    assert!(hit.has_step("hit table"), "{:?}", hit.steps());
    let value = traced_phases(&hit, "table");
    assert_in_order(&value, &before);
    assert_in_order(
        &value,
        &[
            "remote check",
            "open",
            "read",
            "checksum",
            "decode",
            "notes",
            "directives",
            "stats",
        ],
    );
    assert!(!value.iter().any(|p| p == "compute"), "{value:?}");
    let files = traced_phases(&hit, "generated");
    assert_in_order(
        &files,
        &["open", "read", "decode", "notes", "restore", "directives"],
    );
    let items = traced_phases(&hit, "rows");
    assert_in_order(
        &items,
        &[
            "remote check",
            "open",
            "checksum",
            "notes",
            "items",
            "stats",
        ],
    );
}
