//! Hits end to end inside fresh build-script processes, compiled as Cargo
//! compiles build dependencies by default (opt-level 0), in a workspace
//! whose `Cargo.lock` has 500+ packages.
//!
//! Run with `cargo bench -p pcache-build --bench build_hit`. It builds a
//! generated workspace whose build script runs these steps, fills the
//! caches, then re-runs the script and reads the time each step reports
//! (everything pcache does for it after the process started):
//!
//! - `probe`: the first step, a small value: locating the cache, reading the
//!   package metadata, computing the code identity, building the key,
//!   reading and decoding the value;
//! - `plain` and `directives`: later small steps, without and with 20 stored
//!   Cargo directives to replay;
//! - `bytes32` and `text32`: a 32 MiB `Vec<u8>` and a 32 MiB `String`;
//! - `phf`: an 8.7 MB `String` of generated code (a 200,000-key map's size);
//! - `bindgen`: `cached_files` keyed by a 650 KB header through `file()`,
//!   restoring one 125 KB generated file, timed as a whole (input included);
//! - `dir`: a `dir()` input of 200 files, 1 MiB in all;
//! - `big`: a 64 MiB `Vec<u8>`.
//!
//! The small steps are measured again with `PCACHE_STATS=off`: the
//! difference is what recording a step's outcome costs a hit.
//!
//! The large values are each set beside a `std::fs::read` of their entry
//! file, timed in the same process right after the hit: the floor.
//!
//! Then the hit users meet most: the *first* one, right after the miss (a
//! `cargo build` followed at once by `cargo check` or a release build). For
//! each of a few fresh keys, one build computes `bytes32`, `text32`, `phf`
//! and `bindgen`, and the next build, started as soon as the first ends,
//! hits them.
//!
//! It then repeats everything with `[profile.dev.build-override]
//! opt-level = 3`.
//!
//! With `PCACHE_TRACE=1`, it also prints where the time of the last first
//! hit and the last later hit of those steps went, phase by phase.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const MEMBERS: usize = 500;
const RERUNS: usize = 15;
/// Fresh keys whose first hit is measured right after their miss.
const FIRSTS: usize = 7;
/// The steps whose first hit is measured.
const FIRST_HIT: [&str; 4] = ["bytes32", "text32", "phf", "bindgen"];

/// Steps whose hit time is set beside a read of their entry file.
const AGAINST_READ: [&str; 4] = ["bytes32", "text32", "phf", "big"];

fn main() {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures-target");
    write_workspace(root.path());
    for (label, opt) in [
        ("opt-level 0 (default)", None),
        ("build-override opt-level 3", Some("3")),
    ] {
        let run_first = |rerun: usize, reads: &str, stats: &str, first: usize| -> String {
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["build", "-p", "hitprobe", "-vv"])
                .current_dir(root.path())
                .env("CARGO_TARGET_DIR", &target)
                .env("HITPROBE_RERUN", rerun.to_string())
                .env("HITPROBE_FIRST", first.to_string())
                .env("HITPROBE_READ", reads)
                .env("PCACHE_STATS", stats)
                .env_remove("PCACHE")
                .env_remove("PCACHE_DIR");
            if let Some(opt) = opt {
                cmd.env("CARGO_PROFILE_DEV_BUILD_OVERRIDE_OPT_LEVEL", opt);
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{stderr}");
            // Cargo -vv shows build-script output on stdout or stderr,
            // depending on its version.
            stderr + &String::from_utf8_lossy(&out.stdout)
        };
        let run = |rerun: usize, reads: &str, stats: &str| run_first(rerun, reads, stats, 0);
        // Compile and fill the caches, then wait out the racy window in
        // which an entry is verified on every read.
        run(0, "", "on");
        std::thread::sleep(Duration::from_secs(3));
        let reads = entry_files(&target.join("pcache/hitprobe"));
        let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        let mut later_output = String::new();
        for i in 1..=RERUNS {
            // The same hits without recording statistics, interleaved so
            // that both see the same machine: the cost of recording.
            let output = run(RERUNS + i, &reads, "off");
            for (step, key) in [("probe", "probe, no stats"), ("plain", "plain, no stats")] {
                times
                    .entry(key)
                    .or_default()
                    .push(step_time(&output, &format!("hit {step}")));
            }
            let output = run(i, &reads, "on");
            later_output.clone_from(&output);
            for step in [
                "probe",
                "plain",
                "directives",
                "bytes32",
                "text32",
                "phf",
                "big",
            ] {
                times
                    .entry(step)
                    .or_default()
                    .push(step_time(&output, &format!("hit {step}")));
            }
            for (name, line) in [
                ("bindgen", "hitprobe: bindgen total"),
                ("dir", "hitprobe: dir input"),
            ] {
                times
                    .entry(name)
                    .or_default()
                    .push(probe_time(&output, line));
            }
            for step in AGAINST_READ {
                let key: &'static str = Box::leak(format!("read {step}").into_boxed_str());
                times
                    .entry(key)
                    .or_default()
                    .push(probe_time(&output, &format!("hitprobe: fs-read {step}")));
            }
        }
        let lock = fs::read_to_string(root.path().join("Cargo.lock")).unwrap();
        let packages = lock.matches("[[package]]").count();
        println!(
            "{label}: Cargo.lock with {packages} packages, {RERUNS} fresh build-script processes"
        );
        for (name, what) in [
            ("probe", "first step, small value (whole hit path)"),
            ("plain", "later step, small value"),
            (
                "plain, no stats",
                "later step, small value, PCACHE_STATS=off",
            ),
            (
                "probe, no stats",
                "first step, small value, PCACHE_STATS=off",
            ),
            (
                "directives",
                "later step, small value, 20 directives replayed",
            ),
            (
                "bindgen",
                "cached_files, 650 KB file() input, 125 KB file restored",
            ),
            ("dir", "dir() input, 200 files, 1 MiB"),
        ] {
            let mut samples = times[name].clone();
            samples.sort();
            println!(
                "  {what}: p50 {:?}, p90 {:?}",
                samples[samples.len() / 2],
                samples[samples.len() * 9 / 10]
            );
        }
        for (step, what) in [
            ("bytes32", "32 MiB Vec<u8>"),
            ("text32", "32 MiB String"),
            ("phf", "8.7 MB String"),
            ("big", "64 MiB Vec<u8>"),
        ] {
            let hit = median(times.get_mut(step).unwrap());
            let read = median(times.get_mut(format!("read {step}").as_str()).unwrap());
            println!(
                "  {what}: hit p50 {hit:?}, fs::read of the entry p50 {read:?}, ratio {:.2}",
                hit.as_secs_f64() / read.as_secs_f64()
            );
        }

        // The first hit, right after the miss.
        let mut first: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        let mut first_output = String::new();
        for round in 1..=FIRSTS {
            run_first(10_000 + 2 * round, "", "on", round);
            let output = run_first(10_001 + 2 * round, "", "on", round);
            first_output.clone_from(&output);
            for step in FIRST_HIT {
                let time = if step == "bindgen" {
                    probe_time(&output, "hitprobe: bindgen total")
                } else {
                    step_time(&output, &format!("hit {step}"))
                };
                first.entry(step).or_default().push(time);
            }
        }
        println!("  first hit, right after the miss ({FIRSTS} fresh keys), against later hits:");
        for (step, what) in [
            ("bytes32", "32 MiB Vec<u8>"),
            ("text32", "32 MiB String"),
            ("phf", "8.7 MB String"),
            (
                "bindgen",
                "cached_files, 650 KB file() input, 125 KB file restored",
            ),
        ] {
            let first = median(first.get_mut(step).unwrap());
            let later = median(times.get_mut(step).unwrap());
            let floor = times
                .get_mut(format!("read {step}").as_str())
                .map(|reads| median(reads));
            let against = floor.map_or_else(String::new, |read| {
                format!(
                    ", first/fs::read {:.2}",
                    first.as_secs_f64() / read.as_secs_f64()
                )
            });
            println!(
                "    {what}: first p50 {first:?}, later p50 {later:?}, first/later {:.2}{against}",
                first.as_secs_f64() / later.as_secs_f64()
            );
        }
        for (which, output) in [("first hit", &first_output), ("later hit", &later_output)] {
            for line in traces(output, &FIRST_HIT) {
                println!("    {which}: {line}");
            }
        }
    }
}

/// The `PCACHE_TRACE` lines of `steps` in a build's output.
fn traces<'a>(output: &'a str, steps: &[&str]) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|l| l.split_once("] pcache trace: ").map(|(_, rest)| rest))
        .filter(|rest| steps.iter().any(|s| rest.starts_with(&format!("{s}: "))))
        .collect()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `name=path;…` for the entry file of each cache in `AGAINST_READ`.
fn entry_files(package_dir: &Path) -> String {
    let mut pairs = Vec::new();
    for cache in fs::read_dir(package_dir).unwrap().flatten() {
        let meta = fs::read_to_string(cache.path().join("cache.toml")).unwrap();
        let Some(name) = AGAINST_READ
            .iter()
            .find(|n| meta.contains(&format!("name = \"{n}\"")))
        else {
            continue;
        };
        let entry: PathBuf = fs::read_dir(cache.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let file = p.file_name().unwrap().to_str().unwrap();
                file.len() > 32 && !file.contains('.')
            })
            .unwrap_or_else(|| panic!("no entry for {name}"));
        pairs.push(format!("{name}={}", entry.display()));
    }
    pairs.join(";")
}

/// The time in `pcache: hit <name>: read … in <time>, saved …`.
fn step_time(output: &str, prefix: &str) -> Duration {
    let line = output
        .lines()
        .find_map(|l| {
            l.split_once(&format!("] pcache: {prefix}:"))
                .map(|(_, rest)| rest)
        })
        .unwrap_or_else(|| panic!("no `{prefix}` step in:\n{output}"));
    parse_time(
        line.split(" in ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap(),
    )
}

/// The time the probe printed after `prefix`.
fn probe_time(output: &str, prefix: &str) -> Duration {
    let line = output
        .lines()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{output}"));
    Duration::from_nanos(line.trim().parse().unwrap())
}

fn parse_time(time: &str) -> Duration {
    let (number, unit) = time.split_once(' ').unwrap();
    let number: f64 = number.parse().unwrap();
    Duration::from_secs_f64(match unit {
        "µs" => number / 1e6,
        "ms" => number / 1e3,
        _ => number,
    })
}

fn write_workspace(root: &Path) {
    let pcache_build = fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"))).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"members/*\", \"hitprobe\"]\n",
    )
    .unwrap();
    fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();
    for i in 0..MEMBERS {
        let dir = root.join(format!("members/m{i:03}"));
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"m{i:03}\"\nversion = \"0.1.{i}\"\nedition = \"2021\"\n"),
        )
        .unwrap();
        fs::write(dir.join("src/lib.rs"), "").unwrap();
    }
    let probe = root.join("hitprobe");
    fs::create_dir_all(probe.join("src")).unwrap();
    fs::write(
        probe.join("Cargo.toml"),
        format!(
            "[package]\nname = \"hitprobe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [package.metadata.pcache]\nexpiry = \"30d\"\n\n\
             [build-dependencies]\npcache-build = {{ path = \"{}\" }}\nm250 = {{ path = \"../members/m250\" }}\n",
            pcache_build.display()
        ),
    )
    .unwrap();
    fs::write(probe.join("src/lib.rs"), "").unwrap();
    // A 650 KB header of C declarations, bindgen's usual input.
    let mut header = String::new();
    let mut i = 0;
    while header.len() < 650_000 {
        header.push_str(&format!(
            "/* Returns the {i}th value. */\nSQLITE_API int sqlite3_probe_{i}(sqlite3 *db, const char *zName, int nArg);\n"
        ));
        i += 1;
    }
    fs::write(probe.join("header.h"), header).unwrap();
    for i in 0..200 {
        let dir = probe.join(format!("assets/{}", i % 10));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("asset{i}.bin")), vec![i as u8; 5243]).unwrap();
    }
    fs::write(probe.join("build.rs"), PROBE_BUILD_RS).unwrap();
}

const PROBE_BUILD_RS: &str = r#"use std::time::Instant;

fn main() {
    println!("cargo:rerun-if-env-changed=HITPROBE_RERUN");
    let small: Vec<u32> = pcache_build::cached("probe", 1u8, || (0..64).collect());
    assert_eq!(small.len(), 64);
    let plain: Vec<u32> = pcache_build::cached("plain", 1u8, || (0..64).collect());
    assert_eq!(plain.len(), 64);
    let out = std::env::var("OUT_DIR").unwrap();
    let directives: Vec<u32> = pcache_build::cached("directives", 1u8, || {
        for i in 0..10 {
            println!("cargo:rustc-link-search=native={out}/lib{i}");
            println!("cargo:rustc-env=PROBE_{i}={out}/file{i}.rs");
        }
        (0..64).collect()
    });
    assert_eq!(directives.len(), 64);

    // A fresh key per round of the first-hit measurement; 0 otherwise.
    let first: u32 = std::env::var("HITPROBE_FIRST").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    println!("cargo:rerun-if-env-changed=HITPROBE_FIRST");
    let bytes: Vec<u8> = pcache_build::cached("bytes32", (1u8, first), || vec![7u8; 32 << 20]);
    assert_eq!(bytes.len(), 32 << 20);
    let text: String = pcache_build::cached("text32", (1u8, first), || "pub const X: u8 = 0;\n".repeat((32 << 20) / 21));
    assert!(text.len() > 30 << 20);
    let phf: String = pcache_build::cached("phf", (1u8, first), || {
        (0..200_000u32).map(|i| format!("    (\"key{i:06}\", {i}),\n")).collect::<String>()
            + &"/".repeat(8_700_000usize.saturating_sub(200_000 * 21))
    });
    assert!(phf.len() >= 8_700_000);

    let started = Instant::now();
    let header = pcache_build::file("header.h");
    let generated = pcache_build::cached_files("bindgen", (&header, "bindgen 0.72", first), &out, |dir| {
        let text = std::fs::read_to_string("header.h")?;
        let bindings: String = text
            .lines()
            .filter_map(|l| l.split_once("sqlite3_probe_"))
            .map(|(_, rest)| format!("extern \"C\" {{ pub fn sqlite3_probe_{}; }}\n", rest.split('(').next().unwrap()))
            .collect();
        let mut padded = bindings.clone();
        while padded.len() < 125_000 {
            padded.push_str(&bindings);
        }
        padded.truncate(125_000);
        std::fs::write(dir.join("bindings.rs"), padded)
    })
    .unwrap();
    assert_eq!(generated.paths.len(), 1);
    println!("hitprobe: bindgen total {}", started.elapsed().as_nanos());

    let started = Instant::now();
    let assets = pcache_build::dir("assets");
    println!("hitprobe: dir input {}", started.elapsed().as_nanos());
    let _: u8 = pcache_build::cached("dir", &assets, || 1);

    let big: Vec<u8> = pcache_build::cached("big", 1u8, || vec![7u8; 64 << 20]);
    assert_eq!(big.len(), 64 << 20);

    // The floor: the same entry files read with std.
    for pair in std::env::var("HITPROBE_READ").unwrap_or_default().split(';').filter(|p| !p.is_empty()) {
        let (name, path) = pair.split_once('=').unwrap();
        let started = Instant::now();
        let bytes = std::fs::read(path).unwrap();
        println!("hitprobe: fs-read {name} {}", started.elapsed().as_nanos());
        assert!(!bytes.is_empty());
    }
}
"#;
