//! Dependencies' build scripts, cached whole by `pcache-wrapper` with no
//! change to their code: real `cargo build`s of real -sys crates
//! (`fixture-sys/`) and of path packages named for caching
//! (`fixture-deps/`), with `RUSTC_WRAPPER` set to the wrapper.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::deps::{Deps, logging_cc, tree_files};
use support::provided;

/// `cargo pcache <command> --json` of `deps`, parsed.
fn json(deps: &Deps, args: &[&str], envs: &[(&str, &str)]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = deps.pcache(&all, envs);
    assert!(out.success, "cargo pcache {args:?}: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// The build-script cache of `package` in `listing` (`ls` or `stats`).
fn cache<'a>(listing: &'a serde_json::Value, package: &str) -> Option<&'a serde_json::Value> {
    listing["caches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["package"] == package && c["name"] == pcache_wrapper::CACHE_NAME)
}

/// How many entries `package`'s build-script cache holds.
fn entries(deps: &Deps, package: &str, envs: &[(&str, &str)]) -> u64 {
    let listing = json(deps, &["ls"], envs);
    cache(&listing, package).map_or(0, |c| c["entries"].as_u64().unwrap())
}

/// `cargo pcache stats` hits of `package`'s build script.
fn hits(deps: &Deps, package: &str) -> u64 {
    let stats = json(deps, &["stats"], &[]);
    cache(&stats, package).map_or(0, |c| c["hits"].as_u64().unwrap())
}

/// `cargo pcache why <package>`: what the last miss differed in.
fn why(deps: &Deps, package: &str) -> String {
    let out = deps.pcache(&["why", package, "--color", "never"], &[]);
    format!("{}{}", out.stdout, out.stderr)
}

/// The staging directories of restores in progress (or killed) under the
/// build directories of `target`.
fn restores_in(target: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for dir in fs::read_dir(target.join("debug/build"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for entry in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".pcache-restore-")
            {
                found.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn registry_sys_crates_compile_no_c_after_cargo_clean_nor_in_a_moved_checkout() {
    let mut ws = Deps::sys("sys");
    ws.set("CC", logging_cc().to_str().unwrap());
    // Their scripts take seconds: the default threshold applies.
    ws.set("PCACHE_BUILD_SCRIPT_MIN_TIME", "100ms");

    ws.build(&[], &[]);
    let compiled = ws.c_compiles();
    assert!(
        compiled.iter().any(|c| c.contains("zstd"))
            && compiled.iter().any(|c| c.contains("sqlite3")),
        "the cold build compiles both libraries: {compiled:?}"
    );
    let expected = ws.run_binary("debug", "fixture-sys");
    assert!(expected.starts_with("zstd 1"), "{expected}");
    let zstd_out = ws.out_dirs("debug", "zstd-sys");
    assert_eq!(zstd_out.len(), 1);
    let zstd_tree = tree_files(&zstd_out[0]);
    let sqlite_tree = tree_files(&ws.out_dirs("debug", "libsqlite3-sys")[0]);

    // `cargo clean`: the scripts run again, and restore instead of compiling.
    ws.clean();
    ws.build(&[], &[]);
    assert_no_new_compiles(&ws, compiled.len(), "after cargo clean");
    assert_eq!(ws.run_binary("debug", "fixture-sys"), expected);
    assert_eq!(tree_files(&ws.out_dirs("debug", "zstd-sys")[0]), zstd_tree);
    assert_eq!(
        tree_files(&ws.out_dirs("debug", "libsqlite3-sys")[0]),
        sqlite_tree
    );
    assert_eq!(hits(&ws, "zstd-sys"), 1);
    assert_eq!(hits(&ws, "libsqlite3-sys"), 1);

    // The workspace copied elsewhere, with a target directory of its own.
    let moved = ws.elsewhere("sys-moved");
    moved.build(&[], &[]);
    assert_no_new_compiles(&moved, 0, "in a moved checkout");
    assert_eq!(moved.run_binary("debug", "fixture-sys"), expected);
    drop(moved);

    // SIGKILL while a hit restores OUT_DIR, then a normal build.
    let mut caught = 0;
    for _ in 0..12 {
        if caught >= 2 {
            break;
        }
        let clean = ws.try_cargo(&["clean", "-p", "zstd-sys", "-p", "libsqlite3-sys"], &[]);
        assert!(clean.success, "{}", clean.stderr);
        caught += usize::from(kill_during_restore(&ws));
    }
    assert!(caught > 0, "no build was caught restoring");
    ws.build(&[], &[]);
    assert_no_new_compiles(&ws, compiled.len(), "after the kills");
    assert_eq!(ws.run_binary("debug", "fixture-sys"), expected);
    assert_eq!(tree_files(&ws.out_dirs("debug", "zstd-sys")[0]), zstd_tree);
    assert_eq!(
        restores_in(&ws.target),
        Vec::<std::path::PathBuf>::new(),
        "killed restores are cleaned up"
    );

    // With sccache as the user's wrapper, chained: the scripts still hit,
    // and sccache still sees the compilations.
    let Some(sccache) = provided("PCACHE_TEST_SCCACHE") else {
        return;
    };
    let sccache_dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let sccache_env = [
        ("PCACHE_RUSTC_WRAPPER", sccache.as_str()),
        ("SCCACHE_DIR", sccache_dir.path().to_str().unwrap()),
        ("SCCACHE_SERVER_PORT", port.as_str()),
        ("SCCACHE_IDLE_TIMEOUT", "0"),
    ];
    ws.clean();
    let build = ws.build(&["-v"], &sccache_env);
    let requests = sccache_stat(&sccache, &sccache_env, "compile_requests");
    let _ = Command::new(&sccache)
        .arg("--stop-server")
        .envs(sccache_env)
        .output();
    assert_no_new_compiles(&ws, compiled.len(), "with sccache chained");
    assert!(
        requests >= 3,
        "sccache saw {requests} compile requests\n{}",
        build.stderr
    );
    assert_eq!(ws.run_binary("debug", "fixture-sys"), expected);
}

/// Asserts that `CC` logged no more than `before` calls, naming why the
/// scripts missed if it did.
fn assert_no_new_compiles(ws: &Deps, before: usize, when: &str) {
    let now = ws.c_compiles().len();
    assert_eq!(
        now,
        before,
        "C compiled {when}:\n{}\n{}",
        why(ws, "zstd-sys"),
        why(ws, "libsqlite3-sys")
    );
}

/// Starts `cargo build`, kills it (the whole process group, with SIGKILL)
/// as soon as a restore is under way; whether one was caught.
fn kill_during_restore(ws: &Deps) -> bool {
    use std::os::unix::process::CommandExt;
    let mut cmd = ws.cargo(&["build"]);
    cmd.process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let pgid = i32::try_from(child.id()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if !restores_in(&ws.target).is_empty() {
            // SAFETY: signals the process group this test started.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            child.wait().unwrap();
            return true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            // SAFETY: as above; the group may be gone already.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            child.wait().unwrap();
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A counter of `sccache --show-stats --stats-format json`.
fn sccache_stat(sccache: &str, envs: &[(&str, &str)], name: &str) -> u64 {
    let out = Command::new(sccache)
        .args(["--show-stats", "--stats-format", "json"])
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    stats["stats"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

/// What `app` prints: C from the producer and from the consumer compiled
/// against the producer's header.
const ANSWER: &str = "answer 42 sum 82\n";

#[test]
fn a_links_consumer_compiles_against_its_producer_restored_in_a_moved_checkout() {
    let ws = Deps::links("links");
    let first = ws.build(&["-p", "app", "-vv"], &[]);
    assert_eq!(ws.run_binary("debug", "app"), ANSWER);
    assert_eq!(ws.runs("fxp").len(), 1);
    assert_eq!(ws.runs("fxc").len(), 1);
    // The real script sees no RUSTC_WRAPPER, as without pcache.
    assert!(
        first.stderr.contains("fxp saw RUSTC_WRAPPER=\n"),
        "{}",
        first.stderr
    );

    // Debug and release: two keys, both correct, both kept.
    ws.build(&["-p", "app", "--release"], &[]);
    assert_eq!(ws.run_binary("release", "app"), ANSWER);
    assert_eq!(ws.runs("fxp").len(), 2, "release is a key of its own");
    ws.clean();
    let traced = ws.build(&["-p", "app", "-vv"], &[("PCACHE_TRACE", "1")]);
    let trace = traced
        .stderr
        .lines()
        .find_map(|l| l.split_once("pcache trace: fxp: ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no trace of fxp's hit:\n{}", traced.stderr));
    let mut phases = trace
        .split(", ")
        .map(|p| p.trim_end_matches(|c: char| c != ' '));
    for phase in ["level 1 key", "remote check", "open", "restore", "replay"] {
        assert!(
            phases.any(|p| p.starts_with(phase)),
            "{phase} missing or out of order in {trace}"
        );
    }
    ws.build(&["-p", "app", "--release"], &[]);
    assert_eq!(ws.run_binary("debug", "app"), ANSWER);
    assert_eq!(ws.run_binary("release", "app"), ANSWER);
    assert_eq!(
        ws.runs("fxp").len(),
        2,
        "both profiles hit after cargo clean"
    );
    assert_eq!(ws.runs("fxc").len(), 2);

    // Moved, with only the producer cached: the consumer's script runs and
    // compiles C against the producer's restored header, in the new place.
    let moved = ws.elsewhere("links-moved");
    moved.build(&["-p", "app"], &[("PCACHE_BUILD_SCRIPTS", "fxp")]);
    assert_eq!(
        moved.runs("fxp").len(),
        0,
        "the producer hits: {}",
        why(&moved, "fxp")
    );
    let includes = moved.runs("fxc");
    assert_eq!(includes.len(), 1, "the consumer ran");
    let include = Path::new(&includes[0]);
    assert!(
        include.starts_with(&moved.target) && include.join("fxp.h").is_file(),
        "DEP_FXP_INCLUDE names the restored header of this checkout: {include:?}"
    );
    assert_eq!(moved.run_binary("debug", "app"), ANSWER);

    // Moved again, everything cached: the consumer's key follows the
    // producer's entry, not its path, and hits too.
    let again = ws.elsewhere("links-again");
    again.build(&["-p", "app"], &[]);
    assert_eq!(again.runs("fxp").len() + again.runs("fxc").len(), 0);
    assert_eq!(again.run_binary("debug", "app"), ANSWER);
}

#[test]
fn a_failing_script_is_never_stored() {
    let ws = Deps::links("fail");
    let failed = ws.try_cargo(&["build", "-p", "fxfail"], &[("FXFAIL", "1")]);
    assert!(!failed.success);
    assert!(
        failed.stderr.contains("failing as asked"),
        "{}",
        failed.stderr
    );
    assert_eq!(entries(&ws, "fxfail", &[]), 0, "a failed run is not stored");

    ws.build(&["-p", "fxfail"], &[]);
    assert!(entries(&ws, "fxfail", &[]) > 0, "a successful run is");
    // Failing again after `cargo clean`: the stored success is not used
    // (FXFAIL is declared), and the failure is not stored either.
    ws.clean();
    let before = entries(&ws, "fxfail", &[]);
    let failed = ws.try_cargo(&["build", "-p", "fxfail"], &[("FXFAIL", "1")]);
    assert!(!failed.success, "{}", failed.stderr);
    assert_eq!(entries(&ws, "fxfail", &[]), before);
}

#[test]
fn a_pkg_config_probe_is_host_bound_and_portable_runs_travel_through_the_remote() {
    let Some(pkg_config) = provided("PCACHE_TEST_PKG_CONFIG") else {
        return;
    };
    let mut ws = Deps::links("probe");
    ws.set("PKG_CONFIG", &pkg_config);
    ws.build(&["-p", "fxprobe", "-p", "fxp"], &[]);
    assert_eq!(ws.runs("fxprobe").len(), 1);

    // Keyed by the contents of the machine's files it names.
    ws.clean();
    ws.build(&["-p", "fxprobe"], &[]);
    assert_eq!(
        ws.runs("fxprobe").len(),
        1,
        "hit while the library is unchanged"
    );
    fs::write(ws.root().join("sysroot/lib/libfxprobe.a"), "!<arch>\nnew").unwrap();
    ws.clean();
    ws.build(&["-p", "fxprobe"], &[]);
    assert_eq!(ws.runs("fxprobe").len(), 2, "the library changed");

    // Pushed: the portable run, not the host-bound one.
    let remote = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote.path().display());
    let with_remote = [("PCACHE_REMOTE", url.as_str())];
    let push = ws.pcache(&["push"], &with_remote);
    assert!(push.success, "{}", push.stderr);

    // Another machine: its own store, its own checkout, the same remote.
    let other = ws.on_another_machine("probe-other");
    let pull = other.pcache(&["pull"], &with_remote);
    assert!(pull.success, "{}", pull.stderr);
    assert!(
        entries(&other, "fxp", &[]) > 0,
        "the producer's run was pushed"
    );
    assert_eq!(entries(&other, "fxprobe", &[]), 0, "the probe's was not");
    other.build(&["-p", "fxprobe", "-p", "fxp"], &[]);
    assert_eq!(other.runs("fxp").len(), 0, "the pulled run hits");
    assert_eq!(
        other.runs("fxprobe").len(),
        1,
        "the probe runs on this machine"
    );

    // Read-through, with nothing pulled: a third machine hits the remote.
    let third = ws.on_another_machine("probe-third");
    third.build(&["-p", "fxp"], &with_remote);
    assert_eq!(third.runs("fxp").len(), 0, "read through the remote");
}

#[test]
fn two_workspaces_building_the_same_package_at_once_run_its_script_once() {
    let ws = Deps::links("flight");
    let other = ws.elsewhere("flight-other");
    let counters = ws.counters.to_str().unwrap();
    let spawn = |deps: &Deps| {
        let mut cmd = deps.cargo(&["build", "-p", "fxslow"]);
        cmd.env("FIXTURE_COUNTER_DIR", counters)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(&ws), spawn(&other));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        ws.runs("fxslow").len(),
        1,
        "computed once for both workspaces"
    );
    assert_eq!(hits(&ws, "fxslow"), 1);
}

#[test]
fn pcache_off_runs_every_script_as_without_pcache_and_writes_nothing() {
    let plain = Deps::links("plain");
    let mut build = plain.cargo(&["build", "-p", "app", "-vv"]);
    build.env_remove("RUSTC_WRAPPER");
    let without = support::Build::from(build.output().unwrap());
    assert!(without.success, "{}", without.stderr);

    let off = plain.elsewhere("off");
    let with_off = off.build(&["-p", "app", "-vv"], &[("PCACHE", "off")]);
    assert_eq!(off.runs("fxp").len(), 1);
    assert_eq!(
        off.run_binary("debug", "app"),
        plain.run_binary("debug", "app")
    );
    let saw = |b: &support::Build| {
        b.stderr
            .lines()
            .filter(|l| l.contains("fxp saw RUSTC_WRAPPER"))
            .map(|l| l.rsplit_once("fxp saw").unwrap().1.to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(saw(&with_off), saw(&without));
    // The same OUT_DIR as a build without pcache…
    let tree = |d: &Deps| {
        let out = &d.out_dirs("debug", "fxp")[0];
        let header = fs::read_to_string(out.join("include/fxp.h")).unwrap();
        let names: Vec<_> = tree_files(out).into_keys().collect();
        (header, names)
    };
    assert_eq!(tree(&off), tree(&plain));
    // …and nothing at all in the store.
    let written: Vec<_> = fs::read_dir(&off.home).unwrap().flatten().collect();
    assert!(written.is_empty(), "PCACHE=off wrote {written:?}");
}

#[test]
fn verify_runs_the_script_and_names_the_first_difference() {
    let ws = Deps::links("verify");
    ws.build(&["-p", "fxp"], &[]);
    ws.clean();
    let same = ws.build(&["-p", "fxp"], &[("PCACHE", "verify")]);
    assert_eq!(ws.runs("fxp").len(), 2, "verify runs the script");
    assert!(same.success);

    // The script reads a variable it does not declare: its output differs
    // from the entry's under the same key.
    ws.clean();
    let differs = ws.try_cargo(
        &["build", "-p", "fxp"],
        &[("PCACHE", "verify"), ("FXP_SALT", "salted")],
    );
    assert!(!differs.success, "verify fails on a difference");
    assert!(
        differs.stderr.contains("include/fxp.h"),
        "the first differing file is named:\n{}",
        differs.stderr
    );
}

#[test]
fn both_cargo_layouts_are_found_from_what_cargo_passes() {
    // Stable `build-dir`: intermediate artifacts, build scripts and OUT_DIR
    // out of the target directory.
    let mut ws = Deps::links("build-dir");
    let build_dir = ws.root().join("build-dir");
    ws.set("CARGO_BUILD_BUILD_DIR", build_dir.to_str().unwrap());
    ws.build(&["-p", "app"], &[]);
    assert!(build_dir.join("debug/build").is_dir());
    ws.clean();
    ws.build(&["-p", "app"], &[]);
    assert_eq!(ws.runs("fxp").len(), 1, "hit with build-dir");
    assert_eq!(ws.run_binary("debug", "app"), ANSWER);

    // Nightly's new layout (`-Zbuild-dir-new-layout`).
    let Some(nightly) = provided("PCACHE_TEST_NIGHTLY") else {
        return;
    };
    let toolchain = format!("+{nightly}");
    let mut new = Deps::links("new-layout");
    let build_dir = new.root().join("build-dir");
    new.set("CARGO_BUILD_BUILD_DIR", build_dir.to_str().unwrap());
    let args = [
        toolchain.as_str(),
        "-Zbuild-dir-new-layout",
        "build",
        "-p",
        "app",
    ];
    let build = || {
        let out = new.try_cargo(&args, &[]);
        assert!(out.success, "{}", out.stderr);
    };
    build();
    assert!(
        build_dir.join("debug/build/fxp").is_dir(),
        "the new layout: build/<package>/<hash>"
    );
    new.clean();
    build();
    assert_eq!(new.runs("fxp").len(), 1, "hit with the new layout");
    assert_eq!(new.run_binary("debug", "app"), ANSWER);
}

#[test]
fn a_skipped_package_runs_its_script_every_time_and_stores_nothing() {
    let ws = Deps::links("skip");
    let skip = [("PCACHE_BUILD_SCRIPTS", "all, !fxp")];
    ws.build(&["-p", "fxp"], &skip);
    ws.clean();
    ws.build(&["-p", "fxp"], &skip);
    assert_eq!(ws.runs("fxp").len(), 2, "not cached");
    assert_eq!(entries(&ws, "fxp", &[]), 0);

    // Skipped after its script was compiled with pcache: the launcher runs
    // it directly. (Touching a declared file makes Cargo run the script
    // again without compiling it; unskipped, that run would hit.)
    ws.clean();
    ws.build(&["-p", "fxp"], &[]);
    assert_eq!(ws.runs("fxp").len(), 3);
    assert_eq!(entries(&ws, "fxp", &[]), 2, "stored when not skipped");
    let source = ws.root().join("fxp/csrc/fxp.c");
    let later = filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() + 2, 0);
    filetime::set_file_mtime(&source, later).unwrap();
    ws.build(&["-p", "fxp"], &skip);
    assert_eq!(
        ws.runs("fxp").len(),
        4,
        "run, though its launcher is in place"
    );
}

/// The wrapper run by hand on `args` (after the program it hands them to),
/// with `envs`: its exit code, stdout and stderr.
fn wrapper(args: &[&std::ffi::OsStr], envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(support::deps::WRAPPER);
    cmd.args(args).env_remove("PCACHE_RUSTC_WRAPPER");
    cmd.envs(envs.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A compilation that is not a build script's is handed on by `exec`: the
/// same process (no wrapper left between Cargo and rustc), every argument
/// as given, its exit code; whether it is decided before Rust's runtime
/// starts or after (a crate named like a build script that is a library).
#[test]
#[cfg(unix)]
fn the_wrapper_hands_other_compilations_on_by_exec_with_their_arguments_untouched() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    // Prints its pid, then each argument on a line.
    let script = "echo $$; for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done; exit 7";
    let odd = OsStr::from_bytes(b"caf\xe9");
    for crate_args in [
        &["--crate-name", "zstd_sys", "--crate-type", "lib"][..],
        &["--crate-name", "build_script_x", "--crate-type", "lib"][..],
    ] {
        let head = ["/bin/sh", "-c", script, "sh", "a b", ""];
        let mut args: Vec<&OsStr> = head.iter().map(OsStr::new).collect();
        args.push(odd);
        args.extend(crate_args.iter().map(OsStr::new));
        // `sh -c` runs as the wrapper's own process: a shell starts the
        // wrapper and reports its pid on stderr.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("\"$@\" & echo $! >&2; wait $!")
            .arg("sh")
            .arg(support::deps::WRAPPER)
            .args(&args)
            .env_remove("PCACHE_RUSTC_WRAPPER");
        let out = cmd.output().unwrap();
        let stdout = out.stdout.clone();
        let text = String::from_utf8_lossy(&stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let spawned = stderr.trim();
        let mut lines = text.lines();
        let pid = lines.next().unwrap();
        assert_eq!(pid, spawned, "rustc runs in the wrapper's process: {text}");
        let rest: Vec<&str> = lines.collect();
        let mut expected = vec![
            "[a b]".to_owned(),
            "[]".to_owned(),
            "[caf\u{fffd}]".to_owned(),
        ];
        expected.extend(crate_args.iter().map(|a| format!("[{a}]")));
        assert_eq!(rest, expected, "{crate_args:?}");
        assert!(
            out.stdout.windows(5).any(|w| w == b"[caf\xe9"),
            "bytes passed as they were"
        );
        assert_eq!(out.status.code(), Some(7), "{crate_args:?}");
    }

    // Nothing to run: an error that names it, and Cargo's failure code.
    let (code, _, stderr) = wrapper(&[OsStr::new("/nonexistent/rustc"), OsStr::new("-vV")], &[]);
    assert_eq!(code, Some(101));
    assert!(stderr.contains("/nonexistent/rustc"), "{stderr}");

    // A chained wrapper gets the whole command line, rustc first.
    let (code, stdout, _) = wrapper(
        &[OsStr::new("rustc"), OsStr::new("-vV")],
        &[("PCACHE_RUSTC_WRAPPER", "/bin/echo")],
    );
    assert_eq!((code, stdout.as_str()), (Some(0), "rustc -vV\n"));
    // Unless it is this program: then rustc runs, with no loop.
    let (code, stdout, _) = wrapper(
        &[OsStr::new("/bin/echo"), OsStr::new("no loop")],
        &[("PCACHE_RUSTC_WRAPPER", support::deps::WRAPPER)],
    );
    assert_eq!((code, stdout.as_str()), (Some(0), "no loop\n"));
}

/// On Linux with glibc, the wrapper loads libc alone: GCC's unwinder is
/// linked in (see `pcache-wrapper/build.rs`), so starting it does not load
/// `libgcc_s`, and panics still unwind through it.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_wrapper_starts_without_loading_libgcc_s() {
    let archive = Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if !Path::new(&archive).is_absolute() {
        eprintln!("skipped: this C compiler has no libgcc_eh.a");
        return;
    }
    for program in [support::deps::WRAPPER, support::deps::CLI] {
        let ldd = Command::new("ldd").arg(program).output().unwrap();
        let libs = String::from_utf8_lossy(&ldd.stdout);
        assert!(libs.contains("libc.so"), "{libs}");
        assert!(!libs.contains("libgcc_s"), "{program}: {libs}");
    }
    // This test program is linked the same way: a panic unwinds, is
    // caught, and its backtrace is read.
    let caught = std::panic::catch_unwind(|| {
        let empty: Vec<u8> = Vec::new();
        empty[std::env::args().count()]
    });
    assert!(caught.is_err());
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    assert!(
        trace.contains("the_wrapper_starts_without_loading_libgcc_s"),
        "{trace}"
    );
}
