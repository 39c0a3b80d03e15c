//! A `cached` hit end to end inside a fresh build-script process, compiled
//! as Cargo compiles build dependencies by default (opt-level 0), in a
//! workspace whose `Cargo.lock` has 500+ packages.
//!
//! Run with `cargo bench -p pcache-build --bench build_hit`. It builds a
//! generated workspace, then re-runs its build script repeatedly and reads
//! the time each step reports (locating the cache, reading the package
//! metadata, computing the code identity, building the key, reading and
//! decoding the value: everything after the process started). A later step
//! with 20 stored Cargo directives, against one without, gives the cost of
//! replaying them. It then repeats the measurement with
//! `[profile.dev.build-override] opt-level = 3`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MEMBERS: usize = 500;
const RERUNS: usize = 15;

fn main() {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures-target");
    write_workspace(root.path());
    for (label, opt) in [
        ("opt-level 0 (default)", None),
        ("build-override opt-level 3", Some("3")),
    ] {
        let run = |rerun: usize| -> String {
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["build", "-p", "hitprobe", "-vv"])
                .current_dir(root.path())
                .env("CARGO_TARGET_DIR", &target)
                .env("HITPROBE_RERUN", rerun.to_string())
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
        run(0); // compile and fill the cache
        let mut small = Vec::new();
        let mut plain = Vec::new();
        let mut directives = Vec::new();
        let mut big = Vec::new();
        for i in 1..=RERUNS {
            let stderr = run(i);
            small.push(step_time(&stderr, "hit probe"));
            plain.push(step_time(&stderr, "hit plain"));
            directives.push(step_time(&stderr, "hit directives"));
            big.push(step_time(&stderr, "hit big"));
        }
        let lock = fs::read_to_string(root.path().join("Cargo.lock")).unwrap();
        let packages = lock.matches("[[package]]").count();
        println!(
            "{label}: Cargo.lock with {packages} packages, {RERUNS} fresh build-script processes"
        );
        report("  first step, small value (whole hit path)", &mut small);
        report("  later step, small value", &mut plain);
        report(
            "  later step, small value, 20 directives replayed",
            &mut directives,
        );
        report("  64 MiB byte value", &mut big);
    }
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let p50 = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    println!("{what}: p50 {p50:?}, p90 {p90:?}");
}

/// The time in `pcache: hit <name>: read … in <time>, saved …`.
fn step_time(stderr: &str, prefix: &str) -> Duration {
    let line = stderr
        .lines()
        .find_map(|l| {
            l.split_once(&format!("] pcache: {prefix}:"))
                .map(|(_, rest)| rest)
        })
        .unwrap_or_else(|| panic!("no `{prefix}` step in:\n{stderr}"));
    let time = line
        .split(" in ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
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
    fs::write(
        probe.join("build.rs"),
        r#"fn main() {
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
    let big: Vec<u8> = pcache_build::cached("big", 1u8, || vec![7u8; 64 << 20]);
    assert_eq!(big.len(), 64 << 20);
}
"#,
    )
    .unwrap();
}
