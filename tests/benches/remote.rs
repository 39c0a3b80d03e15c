//! The remote tier's costs, measured (`cargo bench -p pcache-e2e --bench
//! remote`). Start the servers first to include them (`.ci/services start
//! DIR`, then `source DIR/env`); the shared directory is always measured.
//!
//! 1. Remote hit latency per backend: what a build script waits for when
//!    its entry is on the remote and not here: the helper process started,
//!    the entry downloaded, checked and stored locally. For 1 KiB and
//!    1 MiB entries, beside a local read of the same entry file.
//! 2. Signed entries: the same remote hit of an unsigned entry, against
//!    one signed and verified (`PCACHE_REMOTE_TRUSTED_KEYS`), runs
//!    interleaved; "added" is the median of each pair's difference.
//!    `PCACHE_BENCH_ONLY=signatures` measures only this.
//! 3. Write-back: uploading an entry inside the build (what
//!    `PCACHE_REMOTE_REQUIRED=1` does) against starting the detached
//!    uploader (what builds do otherwise).
//! 4. The examples on a fresh machine: `cargo clean -p <example>` and an
//!    empty pcache directory, built with a filled remote, against the same
//!    build without one (uncached). Wall time of `cargo build`, and the
//!    time of the pcache steps alone.
//! 5. A dead remote: the directives fixture (five steps) built with its
//!    remote on a port that never answers, on a closed port, and without a
//!    remote.
//!
//! Every number is the median of several runs; all runs of one table are
//! made side by side on the same machine.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pcache_core::remote::{EntryName, HelperAction, HelperRequest};
use pcache_core::{Key, Store};

#[path = "../tests/support/mod.rs"]
mod support;

use support::{Fixture, WORKSPACE, shared_target};

const HELPER: &str = env!("CARGO_BIN_EXE_pcache-helper");
const RUNS: usize = 15;

fn main() {
    let remotes = remotes();
    if std::env::var("PCACHE_BENCH_ONLY").as_deref() == Ok("signatures") {
        return signed_hits(&remotes);
    }
    hit_latency(&remotes);
    signed_hits(&remotes);
    write_back(&remotes);
    let example_remote = remotes
        .iter()
        .find(|(name, _, _)| *name == "s3")
        .or(remotes.first())
        .expect("the shared directory");
    examples(example_remote);
    dead_remote();
}

/// (backend, URL, a directory to clean up) for every remote available.
fn remotes() -> Vec<(&'static str, String, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut remotes = vec![(
        "file",
        format!("file://{}", dir.path().display()),
        Some(dir),
    )];
    for (name, var) in [
        ("redis", "PCACHE_TEST_REDIS"),
        ("s3", "PCACHE_TEST_S3"),
        ("webdav", "PCACHE_TEST_WEBDAV"),
    ] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => remotes.push((name, url, None)),
            _ => println!("{name}: not measured ({var} is not set)"),
        }
    }
    remotes
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The helper, asked for `action` on `entry` (a name) or the outbox.
fn helper(remote: &str, root: &Path, args: &[&str]) -> Command {
    let entry = args
        .iter()
        .skip_while(|a| **a != "--entry")
        .nth(1)
        .map(|name| EntryName::parse(name).unwrap());
    let action = match args[0] {
        "fetch" => HelperAction::Fetch(entry.unwrap()),
        _ => HelperAction::Upload(entry),
    };
    let mut cmd = Command::new(HELPER);
    cmd.args(HelperRequest::new(root.to_owned(), action).to_args())
        .env("PCACHE_REMOTE", remote)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> Duration {
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// An entry of `size` bytes in a fresh pcache directory; its name.
fn make_entry(root: &Path, size: usize, tag: &str) -> String {
    let id = pcache_core::short_id(tag);
    let store = Store::open(root.join("bench").join(&id)).unwrap();
    let key = Key::new(&(tag, size)).unwrap();
    let value: Vec<u8> = (0..size).map(|i| (i * 31) as u8).collect();
    store.set(&key, &value).unwrap();
    format!("bench/{id}/{key}")
}

fn hit_latency(remotes: &[(&'static str, String, Option<tempfile::TempDir>)]) {
    println!(
        "\n1. Remote hit latency (median of {RUNS}): helper started, entry downloaded, checked, stored"
    );
    println!(
        "{:<8} {:>8} {:>12} {:>12} {:>10}",
        "backend", "entry", "remote hit", "local read", "ratio"
    );
    for (name, url, _) in remotes {
        for size in [1 << 10, 1 << 20] {
            let root = tempfile::tempdir().unwrap();
            let tag = format!("hit-{name}-{}", std::process::id());
            let entry = make_entry(root.path(), size, &tag);
            run(helper(url, root.path(), &["upload", "--entry", &entry]));
            let file = root.path().join(&entry);
            let mut remote = Vec::new();
            let mut local = Vec::new();
            for _ in 0..RUNS {
                fs::remove_file(&file).unwrap();
                remote.push(run(helper(url, root.path(), &["fetch", "--entry", &entry])));
                let started = Instant::now();
                let bytes = fs::read(&file).unwrap();
                local.push(started.elapsed());
                assert!(bytes.len() > size);
            }
            let (remote, local) = (median(remote), median(local));
            println!(
                "{name:<8} {:>8} {:>12} {:>12} {:>9.0}×",
                pcache_core::conventions::format_size(size as u64),
                ms(remote),
                ms(local),
                remote.as_secs_f64() / local.as_secs_f64()
            );
        }
    }
    // What any helper call costs: the process, its runtime, one request.
    let root = tempfile::tempdir().unwrap();
    let absent = format!(
        "bench/{}/{}",
        pcache_core::short_id("absent"),
        Key::new(&"absent").unwrap()
    );
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = helper(&remotes[0].1, root.path(), &["fetch", "--entry", &absent])
            .status()
            .unwrap();
        samples.push(started.elapsed());
        assert_eq!(status.code(), Some(10));
    }
    println!(
        "a miss on the shared directory (the helper's floor): {}",
        ms(median(samples))
    );
}

fn signed_hits(remotes: &[(&'static str, String, Option<tempfile::TempDir>)]) {
    const SIGNED_RUNS: usize = 41;
    println!(
        "\n2. Signed remote hits (median of {SIGNED_RUNS}, interleaved): unsigned vs signed and verified"
    );
    println!(
        "{:<8} {:>8} {:>12} {:>12} {:>10} {:>8}",
        "backend", "entry", "unsigned", "signed", "added", "ratio"
    );
    let (secret, public) = support::machines::keygen("bench");
    for (name, url, _) in remotes {
        for size in [1 << 10, 1 << 20] {
            let root = tempfile::tempdir().unwrap();
            let plain = make_entry(
                root.path(),
                size,
                &format!("plain-{name}-{}", std::process::id()),
            );
            let signed = make_entry(
                root.path(),
                size,
                &format!("signed-{name}-{}", std::process::id()),
            );
            run(helper(url, root.path(), &["upload", "--entry", &plain]));
            let mut upload = helper(url, root.path(), &["upload", "--entry", &signed]);
            upload.env("PCACHE_REMOTE_SIGNING_KEY", &secret);
            run(upload);
            let mut times = (Vec::new(), Vec::new());
            for _ in 0..SIGNED_RUNS {
                fs::remove_file(root.path().join(&plain)).unwrap();
                times
                    .0
                    .push(run(helper(url, root.path(), &["fetch", "--entry", &plain])));
                fs::remove_file(root.path().join(&signed)).unwrap();
                let mut fetch = helper(url, root.path(), &["fetch", "--entry", &signed]);
                fetch.env("PCACHE_REMOTE_TRUSTED_KEYS", &public);
                times.1.push(run(fetch));
                assert!(root.path().join(&signed).is_file());
            }
            // Each signed fetch against the unsigned one just before it:
            // the machine's drift cancels out of the difference.
            let mut added: Vec<f64> = times
                .0
                .iter()
                .zip(&times.1)
                .map(|(u, s)| s.as_secs_f64() - u.as_secs_f64())
                .collect();
            added.sort_by(f64::total_cmp);
            let added = added[added.len() / 2];
            let (unsigned, signed) = (median(times.0), median(times.1));
            println!(
                "{name:<8} {:>8} {:>12} {:>12} {:>10} {:>7.3}×",
                pcache_core::conventions::format_size(size as u64),
                ms(unsigned),
                ms(signed),
                format!("{:+.3} ms", added * 1e3),
                1.0 + added / unsigned.as_secs_f64()
            );
        }
    }
}

fn write_back(remotes: &[(&'static str, String, Option<tempfile::TempDir>)]) {
    println!(
        "\n3. Write-back (median of {RUNS}): upload in the build vs start the detached uploader"
    );
    println!(
        "{:<8} {:>8} {:>14} {:>14}",
        "backend", "entry", "in the build", "detached"
    );
    for (name, url, _) in remotes {
        for size in [1 << 10, 1 << 20] {
            let root = tempfile::tempdir().unwrap();
            let mut sync = Vec::new();
            let mut detached = Vec::new();
            for i in 0..RUNS {
                let tag = format!("up-{name}-{}-{i}", std::process::id());
                let entry = make_entry(root.path(), size, &tag);
                sync.push(run(helper(
                    url,
                    root.path(),
                    &["upload", "--entry", &entry],
                )));
                // What a build script does: queue, spawn, go on.
                let tag = format!("bg-{name}-{}-{i}", std::process::id());
                let entry = make_entry(root.path(), size, &tag);
                let item = entry.replace('/', "+");
                let started = Instant::now();
                let outbox = root.path().join(".outbox");
                fs::create_dir_all(&outbox).unwrap();
                fs::write(outbox.join(item), b"").unwrap();
                let mut child = helper(url, root.path(), &["upload"])
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                detached.push(started.elapsed());
                child.wait().unwrap();
            }
            println!(
                "{name:<8} {:>8} {:>14} {:>14}",
                pcache_core::conventions::format_size(size as u64),
                ms(median(sync)),
                ms(median(detached))
            );
        }
    }
}

/// `cargo build -p <package>` of the workspace into `target`, with `envs`:
/// its wall time and the sum of the times its pcache steps report.
fn build_example(
    package: &str,
    target: &Path,
    envs: &[(&str, &str)],
) -> Option<(Duration, Duration)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["clean", "-q", "-p", package, "--target-dir"])
        .arg(target)
        .current_dir(WORKSPACE)
        .status()
        .unwrap();
    assert!(status.success());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "-vv", "-p", package, "--target-dir"])
        .arg(target)
        .current_dir(WORKSPACE)
        .env_remove("PCACHE")
        .env_remove("PCACHE_REMOTE")
        .envs(envs.iter().copied());
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let wall = started.elapsed();
    if !out.status.success() {
        println!(
            "{package}: not measured (the build failed: {})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ")
        );
        return None;
    }
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let steps = text
        .lines()
        .filter_map(|l| l.split_once("] pcache: ").map(|(_, rest)| rest))
        .map(step_time)
        .sum();
    Some((wall, steps))
}

/// The time a step line reports: `computed in X` or `read … in X`.
fn step_time(line: &str) -> Duration {
    let time = if let Some((_, rest)) = line.split_once("computed in ") {
        rest
    } else if let Some((_, rest)) = line.split_once(" in ") {
        rest
    } else {
        return Duration::ZERO;
    };
    let mut words = time.split([' ', ',']);
    let value: f64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let unit = match words.next() {
        Some("s") => 1.0,
        Some("ms") => 1e-3,
        Some("µs") => 1e-6,
        _ => 0.0,
    };
    Duration::from_secs_f64(value * unit)
}

fn examples(remote: &(&'static str, String, Option<tempfile::TempDir>)) {
    let (name, url, _) = remote;
    println!(
        "\n4. The examples on a fresh machine (cargo clean -p, empty pcache directory), median of 3: {name} remote filled vs uncached"
    );
    println!(
        "{:<32} {:>12} {:>12} {:>12} {:>12}",
        "example", "build", "uncached", "steps", "uncached"
    );
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-examples");
    for package in [
        "pcache-example-tables",
        "pcache-example-stream",
        "pcache-example-bindgen-zlib",
        "pcache-example-lua",
    ] {
        let fill = tempfile::tempdir().unwrap();
        let fill_dir = fill.path().to_str().unwrap();
        if build_example(
            package,
            &target,
            &[
                ("PCACHE_DIR", fill_dir),
                ("PCACHE_REMOTE", url),
                ("PCACHE_REMOTE_HELPER", HELPER),
            ],
        )
        .is_none()
        {
            continue;
        }
        wait_for_uploads(fill.path());
        let (mut remote_wall, mut remote_steps, mut cold_wall, mut cold_steps) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            let fresh = tempfile::tempdir().unwrap();
            let dir = fresh.path().to_str().unwrap();
            let (wall, steps) = build_example(
                package,
                &target,
                &[
                    ("PCACHE_DIR", dir),
                    ("PCACHE_REMOTE", url),
                    ("PCACHE_REMOTE_HELPER", HELPER),
                ],
            )
            .unwrap();
            remote_wall.push(wall);
            remote_steps.push(steps);
            let cold = tempfile::tempdir().unwrap();
            let dir = cold.path().to_str().unwrap();
            let (wall, steps) = build_example(package, &target, &[("PCACHE_DIR", dir)]).unwrap();
            cold_wall.push(wall);
            cold_steps.push(steps);
        }
        let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        println!(
            "{package:<32} {:>12} {:>12} {:>12} {:>12}",
            secs(median(remote_wall)),
            secs(median(cold_wall)),
            ms(median(remote_steps)),
            ms(median(cold_steps))
        );
    }
}

/// Waits until `root`'s outbox is empty.
fn wait_for_uploads(root: &Path) {
    let outbox = root.join(".outbox");
    let started = Instant::now();
    while fs::read_dir(&outbox).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "uploads pending"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The uploader may still be finishing its last listing.
    std::thread::sleep(Duration::from_millis(200));
}

fn dead_remote() {
    println!(
        "\n5. A dead remote: the directives fixture's build script (5 steps) re-run with an empty pcache directory, median of 5"
    );
    let fixture = Fixture::directives("bench-dead", shared_target());
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        ("no remote", None),
        (
            "webdav, never answers",
            Some(format!("webdav+http://127.0.0.1:{silent_port}/x")),
        ),
        (
            "redis, closed port",
            Some(format!("redis://127.0.0.1:{closed_port}/0")),
        ),
        (
            "webdav, closed port",
            Some(format!("webdav+http://127.0.0.1:{closed_port}/x")),
        ),
    ];
    let mut results = vec![Vec::new(); cases.len()];
    for round in 0..6 {
        for (i, (_, remote)) in cases.iter().enumerate() {
            let pcache_dir = tempfile::tempdir().unwrap();
            let mut cmd = fixture.cargo(&["build", "-p", &fixture.package]);
            cmd.env("FIXTURE_RERUN", format!("{round}-{i}"))
                .env("PCACHE_DIR", pcache_dir.path())
                .env("PCACHE_REMOTE_HELPER", HELPER);
            if let Some(remote) = remote {
                cmd.env("PCACHE_REMOTE", remote);
            }
            let took = run(cmd);
            // The first round compiles.
            if round > 0 {
                results[i].push(took);
            }
        }
    }
    let base = median(results[0].clone());
    for ((label, _), samples) in cases.iter().zip(results) {
        let m = median(samples);
        println!(
            "{label:<24} {:>10}  (+{})",
            format!("{:.2} s", m.as_secs_f64()),
            ms(m.saturating_sub(base))
        );
    }
}
