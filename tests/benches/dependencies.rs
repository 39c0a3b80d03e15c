//! Dependencies' build scripts, cached whole by pcache's wrapper, measured
//! side by side with plain Cargo, sccache, kache and mbx
//! (`cargo bench -p pcache-e2e --bench dependencies`).
//!
//! 1. Clean debug builds (`cargo clean`, then `cargo build`) of two
//!    workspaces: `fixture-sys` (zstd-sys, libsqlite3-sys with `bundled`)
//!    and `fixture-tls` (aws-lc-sys, ring). For each configuration: the
//!    whole build's wall time, and each -sys crate's build-script run
//!    (from Cargo's `--timings`). Configurations: plain Cargo; pcache cold
//!    (an empty store), warm, and from a moved checkout; sccache alone and
//!    with pcache (both warm); kache and mbx, cold, warm and moved, when
//!    installed (`PCACHE_BENCH_KACHE`, `PCACHE_BENCH_MBX`: their binaries).
//!    Then what each leaves behind: processes still running, and whether
//!    `target` is still a directory.
//! 2. A hit restoring a 20 MiB `OUT_DIR` (`fixture-deps/fxbig`), against
//!    `cp -r` of the same directory.
//! 3. The wrapper's cost on a compilation it passes through: `rustc -vV`
//!    through `pcache-wrapper`, against `rustc -vV`, beside `env rustc -vV`
//!    (a program that only execs: the floor for any wrapper).
//!
//! Medians of `PCACHE_BENCH_RUNS` runs (3 by default); `PCACHE_BENCH_FIXTURES`
//! (`fixture-sys`, `fixture-tls`, comma-separated) limits part 1. sccache comes from
//! `PCACHE_TEST_SCCACHE` (`.ci/services install` puts it in a venv).
//!
//! Plain and pcache-cold builds alternate, so that both see the same
//! machine, and their ratio is also given as the median of each pair's.
//! `PCACHE_BENCH_ONLY=cold` measures only those two, for a long series on a
//! noisy machine; `PCACHE_BENCH_ONLY=pass-through` only part 3.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WRAPPER: &str = env!("CARGO_BIN_EXE_pcache-wrapper-e2e");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn runs() -> usize {
    std::env::var("PCACHE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn main() {
    let scratch = tempfile::Builder::new()
        .prefix("pcache-bench-deps-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let only = std::env::var("PCACHE_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "cold" {
        let fixtures = std::env::var("PCACHE_BENCH_FIXTURES").unwrap_or_default();
        for (fixture, scripts) in [
            ("fixture-sys", &["zstd-sys", "libsqlite3-sys"][..]),
            ("fixture-tls", &["aws-lc-sys", "ring"][..]),
        ] {
            if fixtures.is_empty() || fixtures.split(',').any(|f| f.trim() == fixture) {
                clean_builds(scratch.path(), fixture, scripts);
            }
        }
    }
    if only.is_empty() {
        restore_20_mib(scratch.path());
    }
    if only.is_empty() || only == "pass-through" {
        pass_through();
    }
}

/// One way of building: a program and its environment.
#[derive(Clone)]
struct Setup {
    name: String,
    program: Vec<String>,
    clean: Vec<String>,
    envs: Vec<(String, String)>,
    /// Sets the target directory (mbx manages its own).
    target_dir: bool,
}

impl Setup {
    fn cargo(name: &str, envs: &[(&str, &str)]) -> Setup {
        Setup {
            name: name.to_owned(),
            program: vec!["cargo".into(), "build".into()],
            clean: vec!["cargo".into(), "clean".into()],
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            target_dir: true,
        }
    }

    fn with(mut self, name: &str, value: &str) -> Setup {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A build's wall time and its build-script runs (package → seconds).
struct Timed {
    wall: Duration,
    scripts: BTreeMap<String, f64>,
}

/// `cargo clean`, then the build, in `dir`, timed.
fn clean_build(setup: &Setup, dir: &Path) -> Timed {
    run(setup, &setup.clean, dir);
    let mut args = setup.program.clone();
    args.push("--timings".into());
    let started = Instant::now();
    run(setup, &args, dir);
    let wall = started.elapsed();
    Timed {
        wall,
        scripts: script_runs(&dir.join("target/cargo-timings/cargo-timing.html")),
    }
}

fn run(setup: &Setup, args: &[String], dir: &Path) {
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..])
        .current_dir(dir)
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .env_remove("PCACHE")
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if setup.target_dir {
        cmd.env("CARGO_TARGET_DIR", dir.join("target"));
    }
    cmd.envs(setup.envs.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} in {}: {}",
        setup.name,
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The durations of the `run-custom-build` units in Cargo's timing report.
fn script_runs(report: &Path) -> BTreeMap<String, f64> {
    let Ok(html) = fs::read_to_string(report) else {
        return BTreeMap::new();
    };
    let Some(start) = html.find("const UNIT_DATA = ") else {
        return BTreeMap::new();
    };
    let rest = &html[start + "const UNIT_DATA = ".len()..];
    let end = rest.find("];").map_or(rest.len(), |e| e + 1);
    let units: serde_json::Value = serde_json::from_str(&rest[..end]).unwrap_or_default();
    units
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["mode"] == "run-custom-build")
        .filter_map(|u| Some((u["name"].as_str()?.to_owned(), u["duration"].as_f64()?)))
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A copy of `fixture` at `<scratch>/<name>`.
fn checkout(scratch: &Path, fixture: &str, name: &str) -> PathBuf {
    let dir = scratch.join(name);
    let _ = fs::remove_dir_all(&dir);
    copy_dir(&Path::new(MANIFEST_DIR).join(fixture), &dir);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        if entry.file_name() == "target" {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A row of the table: a configuration's median build and script times.
struct Row {
    name: String,
    wall: f64,
    scripts: Vec<f64>,
}

fn measure(setup: &Setup, dir: &Path, scripts: &[&str], fresh: impl Fn(usize) -> Setup) -> Row {
    let runs: Vec<Timed> = (0..runs())
        .map(|i| {
            let setup = if setup.name.contains("cold") {
                fresh(i)
            } else {
                setup.clone()
            };
            clean_build(&setup, dir)
        })
        .collect();
    row(&setup.name, &runs, scripts)
}

/// Plain builds and `cold(i)` builds, alternated (which goes first
/// alternates too): both rows, and the median of the pairs' ratios.
fn measure_pair(
    plain: &Setup,
    cold: impl Fn(usize) -> Setup,
    dir: &Path,
    scripts: &[&str],
) -> (Row, Row, f64) {
    let mut timed: [Vec<Timed>; 2] = [Vec::new(), Vec::new()];
    for i in 0..runs() {
        let cold = cold(i);
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let setup = if which == 0 { plain } else { &cold };
            timed[which].push(clean_build(setup, dir));
        }
    }
    let ratios = timed[0]
        .iter()
        .zip(&timed[1])
        .map(|(p, c)| c.wall.as_secs_f64() / p.wall.as_secs_f64())
        .collect();
    let [plain_runs, cold_runs] = timed;
    (
        row(&plain.name, &plain_runs, scripts),
        row(&cold(0).name, &cold_runs, scripts),
        median(ratios),
    )
}

fn row(name: &str, runs: &[Timed], scripts: &[&str]) -> Row {
    Row {
        name: name.to_owned(),
        wall: median(runs.iter().map(|t| t.wall.as_secs_f64()).collect()),
        scripts: scripts
            .iter()
            .map(|script| {
                median(
                    runs.iter()
                        .map(|t| t.scripts.get(*script).copied().unwrap_or(f64::NAN))
                        .collect(),
                )
            })
            .collect(),
    }
}

fn clean_builds(scratch: &Path, fixture: &str, scripts: &[&str]) {
    println!(
        "\n## Clean debug builds of {fixture} ({})",
        scripts.join(", ")
    );
    let dir = checkout(scratch, fixture, &format!("{fixture}-a"));
    let moved = checkout(scratch, fixture, &format!("{fixture}-moved"));
    // Dependencies downloaded once, outside the measurements.
    run(
        &Setup::cargo("fetch", &[]),
        &["cargo".into(), "fetch".into()],
        &dir,
    );
    let store = |tag: &str| scratch.join(format!("{fixture}-{tag}"));
    let pcache = |home: &Path| {
        Setup::cargo("pcache", &[])
            .with("RUSTC_WRAPPER", WRAPPER)
            .with("PCACHE_HOME", home.to_str().unwrap())
    };
    let mut rows = Vec::new();
    let plain = Setup::cargo("plain cargo", &[]);
    let cold = |i: usize| {
        let home = store(&format!("pcache-cold-{i}"));
        let mut s = pcache(&home);
        s.name = "pcache, cold (empty store)".into();
        s
    };
    let (plain_row, cold_row, paired) = measure_pair(&plain, cold, &dir, scripts);
    rows.push(plain_row);
    rows.push(cold_row);
    println!(
        "pcache cold / plain, the median of {} alternated pairs: {paired:.3}×",
        runs()
    );
    if std::env::var("PCACHE_BENCH_ONLY").as_deref() == Ok("cold") {
        print_table(&rows, scripts);
        return;
    }
    let warm_home = store("pcache");
    let mut warm = pcache(&warm_home);
    // Filled once.
    clean_build(&warm, &dir);
    warm.name = "pcache, warm".into();
    rows.push(measure(&warm, &dir, scripts, |_| warm.clone()));
    let mut moved_setup = warm.clone();
    moved_setup.name = "pcache, warm, moved checkout".into();
    rows.push(measure(&moved_setup, &moved, scripts, |_| {
        moved_setup.clone()
    }));

    if let Ok(sccache) = std::env::var("PCACHE_TEST_SCCACHE") {
        let port = free_port().to_string();
        let sccache_dir = store("sccache");
        let base = [
            ("SCCACHE_DIR", sccache_dir.to_str().unwrap()),
            ("SCCACHE_SERVER_PORT", port.as_str()),
        ];
        let mut alone = Setup::cargo("sccache alone, warm", &base).with("RUSTC_WRAPPER", &sccache);
        clean_build(&alone, &dir);
        alone.name = "sccache alone, warm".into();
        rows.push(measure(&alone, &dir, scripts, |_| alone.clone()));
        let chained_home = store("pcache-sccache");
        let mut chained = pcache(&chained_home).with("PCACHE_RUSTC_WRAPPER", &sccache);
        for (k, v) in base {
            chained = chained.with(k, v);
        }
        clean_build(&chained, &dir);
        chained.name = "pcache + sccache, warm".into();
        rows.push(measure(&chained, &dir, scripts, |_| chained.clone()));
        let _ = Command::new(&sccache)
            .arg("--stop-server")
            .env("SCCACHE_SERVER_PORT", &port)
            .output();
    } else {
        println!("sccache: not measured (PCACHE_TEST_SCCACHE is not set)");
    }

    let mut leftovers = vec![("pcache".to_owned(), side_effects(&dir, "pcache"))];
    if let Ok(kache) = std::env::var("PCACHE_BENCH_KACHE") {
        let bin = Path::new(&kache).parent().unwrap().to_owned();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let kache_setup = |dir: &Path, name: &str| {
            let mut s = Setup::cargo(name, &[])
                .with("RUSTC_WRAPPER", &kache)
                .with("KACHE_CACHE_DIR", dir.to_str().unwrap())
                .with("PATH", &path);
            s.name = name.to_owned();
            s
        };
        let cold = |i: usize| kache_setup(&store(&format!("kache-cold-{i}")), "kache, cold");
        rows.push(measure(&cold(0), &dir, scripts, cold));
        let warm_dir = store("kache");
        let warm = kache_setup(&warm_dir, "kache, warm");
        clean_build(&warm, &dir);
        rows.push(measure(&warm, &dir, scripts, |_| warm.clone()));
        let moved_setup = kache_setup(&warm_dir, "kache, warm, moved checkout");
        rows.push(measure(&moved_setup, &moved, scripts, |_| {
            moved_setup.clone()
        }));
        leftovers.push(("kache".to_owned(), side_effects(&dir, "kache")));
    } else {
        println!("kache: not measured (PCACHE_BENCH_KACHE is not set)");
    }
    if let Ok(mbx) = std::env::var("PCACHE_BENCH_MBX") {
        let mbx_setup = |dir: &Path, name: &str| Setup {
            name: name.to_owned(),
            program: vec![mbx.clone(), "build".into()],
            clean: vec![mbx.clone(), "clean".into()],
            envs: vec![
                ("MBX_CACHE_DIR".into(), dir.to_str().unwrap().to_owned()),
                ("MBX_DISPLAY".into(), "plain".into()),
            ],
            target_dir: false,
        };
        let mbx_dir = checkout(scratch, fixture, &format!("{fixture}-mbx"));
        let mbx_moved = checkout(scratch, fixture, &format!("{fixture}-mbx-moved"));
        let cold = |i: usize| mbx_setup(&store(&format!("mbx-cold-{i}")), "mbx, cold");
        rows.push(measure(&cold(0), &mbx_dir, scripts, cold));
        let warm_dir = store("mbx");
        let warm = mbx_setup(&warm_dir, "mbx, warm");
        clean_build(&warm, &mbx_dir);
        rows.push(measure(&warm, &mbx_dir, scripts, |_| warm.clone()));
        let moved_setup = mbx_setup(&warm_dir, "mbx, warm, moved checkout");
        rows.push(measure(&moved_setup, &mbx_moved, scripts, |_| {
            moved_setup.clone()
        }));
        leftovers.push(("mbx".to_owned(), side_effects(&mbx_dir, "mbx")));
    } else {
        println!("mbx: not measured (PCACHE_BENCH_MBX is not set)");
    }

    print_table(&rows, scripts);
    println!("\nLeft behind after the builds:");
    for (tool, effects) in leftovers {
        println!("  {tool}: {effects}");
    }
}

fn print_table(rows: &[Row], scripts: &[&str]) {
    let plain = &rows[0];
    print!("\n| configuration | clean build | vs plain |");
    for script in scripts {
        print!(" {script} run |");
    }
    println!();
    print!("|---|---|---|");
    for _ in scripts {
        print!("---|");
    }
    println!();
    for row in rows {
        print!(
            "| {} | {:.2} s | {:.2}× |",
            row.name,
            row.wall,
            row.wall / plain.wall
        );
        for (n, seconds) in row.scripts.iter().enumerate() {
            let hit = if row.name == plain.name {
                String::new()
            } else if *seconds < plain.scripts[n] / 4.0 {
                " hit".to_owned()
            } else {
                " **run**".to_owned()
            };
            print!(" {seconds:.3} s{hit} |");
        }
        println!();
    }
}

/// What a tool leaves once the build is over: its processes still running,
/// and whether `target` stayed a plain directory.
fn side_effects(dir: &Path, tool: &str) -> String {
    std::thread::sleep(Duration::from_millis(500));
    let mut running = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.contains(tool) {
            running.push(comm.trim().to_owned());
        }
    }
    running.sort();
    running.dedup();
    let target = dir.join("target");
    let target = match fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => format!(
            "`target` is a symlink to {}",
            fs::read_link(&target).unwrap().display()
        ),
        Ok(_) => "`target` is a directory".to_owned(),
        Err(_) => "no `target`".to_owned(),
    };
    if running.is_empty() {
        format!("no process running; {target}")
    } else {
        format!("still running: {}; {target}", running.join(", "))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A hit of `fxbig` (20 MiB in 64 files) against `cp -r` of its OUT_DIR.
fn restore_20_mib(scratch: &Path) {
    println!("\n## A hit restoring a 20 MiB OUT_DIR");
    let dir = checkout(scratch, "fixture-deps", "restore");
    let home = scratch.join("restore-home");
    let setup = Setup {
        program: vec!["cargo".into(), "build".into(), "-p".into(), "fxbig".into()],
        clean: vec!["cargo".into(), "clean".into(), "-p".into(), "fxbig".into()],
        ..Setup::cargo("pcache", &[])
            .with("RUSTC_WRAPPER", WRAPPER)
            .with("PCACHE_HOME", home.to_str().unwrap())
    };
    clean_build(&setup, &dir);
    let mut hits = Vec::new();
    let mut copies = Vec::new();
    for _ in 0..runs().max(5) {
        let timed = clean_build(&setup, &dir);
        hits.push(timed.scripts.get("fxbig").copied().unwrap_or(f64::NAN));
        let out_dir = fs::read_dir(dir.join("target/debug/build"))
            .unwrap()
            .flatten()
            .map(|e| e.path().join("out"))
            .find(|p| p.join("blobs").is_dir())
            .expect("fxbig's OUT_DIR");
        let copy = scratch.join("restore-copy");
        let _ = fs::remove_dir_all(&copy);
        let started = Instant::now();
        let status = Command::new("cp")
            .arg("-r")
            .arg(&out_dir)
            .arg(&copy)
            .status()
            .unwrap();
        copies.push(started.elapsed().as_secs_f64());
        assert!(status.success());
    }
    let (hit, copy) = (median(hits), median(copies));
    println!(
        "| hit (the build script's run, from --timings) | `cp -r` of OUT_DIR | ratio |\n|---|---|---|\n| {:.1} ms | {:.1} ms | {:.2}× |",
        hit * 1e3,
        copy * 1e3,
        hit / copy
    );
}

/// `rustc -vV` through the wrapper against `rustc -vV`.
fn pass_through() {
    println!("\n## Pass-through: a compilation that is not a build script");
    let rustc = String::from_utf8(
        Command::new("rustup")
            .args(["which", "rustc"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .ok()
    .map(|s| s.trim().to_owned())
    .filter(|s| !s.is_empty())
    .unwrap_or_else(|| "rustc".to_owned());
    // `env` runs rustc by exec and does nothing else: what any wrapper
    // costs on this machine, the floor for pcache's.
    let env = Path::new("/usr/bin/env");
    let time = |through: Option<&Path>| {
        let mut cmd = match through {
            Some(program) => {
                let mut c = Command::new(program);
                c.arg(&rustc);
                c
            }
            None => Command::new(&rustc),
        };
        cmd.arg("-vV").stdout(Stdio::null());
        let started = Instant::now();
        assert!(cmd.status().unwrap().success());
        started.elapsed().as_secs_f64()
    };
    // Each run through a program is paired with a direct run just before
    // it, and the two programs take turns going first: the machine's drift
    // cancels out of each pair's difference.
    let mut through: Vec<&Path> = vec![Path::new(WRAPPER)];
    if env.is_file() {
        through.push(env);
    }
    let (mut direct, mut added) = (Vec::new(), vec![Vec::new(); through.len()]);
    let mut wrapped = Vec::new();
    for round in 0..400 {
        for turn in 0..through.len() {
            let i = (turn + round) % through.len();
            let alone = time(None);
            let via = time(Some(through[i]));
            direct.push(alone);
            if i == 0 {
                wrapped.push(via);
            }
            added[i].push((via - alone) * 1e3);
        }
    }
    let mut added = added.into_iter().map(median);
    let (wrapper_added, env_added) = (added.next().unwrap_or(f64::NAN), added.next());
    println!(
        "| rustc -vV | through pcache-wrapper | overhead (median of pairs) | `env rustc -vV`: any exec |\n|---|---|---|---|"
    );
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | {} |",
        median(direct) * 1e3,
        median(wrapped) * 1e3,
        wrapper_added,
        env_added.map_or_else(|| "not measured".to_owned(), |a| format!("+{a:.2} ms"))
    );
}
