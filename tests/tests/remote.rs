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
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{Build, Fixture, latest_output, other_target, shared_target};

const STEPS: [&str; 5] = ["value", "fallible", "items", "clib", "builder"];
const HELPER: &str = env!("CARGO_BIN_EXE_pcache-helper");
/// A password that must never be seen.
const SECRET: &str = "hunter2-secret";

/// The URL of a test server from the environment; `None` (a skipped test)
/// when it is not set, except under CI.
fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{var} is not set: .ci/run starts the test servers with .ci/services"
            );
            eprintln!(
                "skipped: {var} is not set (run `.ci/services start DIR` and source DIR/env)"
            );
            None
        }
    }
}

/// One machine: a checkout, and its own pcache directory.
struct Machine {
    fixture: Fixture,
    pcache_dir: tempfile::TempDir,
    remote: String,
    helper: PathBuf,
}

impl Machine {
    fn new(fixture: Fixture, remote: &str) -> Machine {
        Machine {
            fixture,
            pcache_dir: tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
            remote: remote.to_owned(),
            helper: PathBuf::from(HELPER),
        }
    }

    fn root(&self) -> &Path {
        self.pcache_dir.path()
    }

    fn try_build(&self, args: &[&str], extra: &[(&str, &str)]) -> Build {
        let root = self.root().to_str().unwrap();
        let helper = self.helper.to_str().unwrap();
        let mut envs = vec![
            ("PCACHE_DIR", root),
            ("PCACHE_REMOTE", self.remote.as_str()),
            ("PCACHE_REMOTE_HELPER", helper),
        ];
        envs.extend_from_slice(extra);
        self.fixture.try_build(args, &envs)
    }

    fn build(&self, args: &[&str], extra: &[(&str, &str)]) -> Build {
        let build = self.try_build(args, extra);
        assert!(build.success, "cargo {args:?} failed:\n{}", build.stderr);
        build
    }

    fn build_package(&self, extra: &[(&str, &str)]) -> Build {
        self.build(&["build", "-p", &self.fixture.package], extra)
    }

    /// Waits until the background uploads are done: the outbox is empty
    /// and no uploader holds it.
    fn wait_for_uploads(&self) {
        let started = Instant::now();
        let outbox = self.root().join(".outbox");
        loop {
            let empty = fs::read_dir(&outbox).map_or(true, |mut d| d.next().is_none());
            if empty && !uploader_running(self.root()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "uploads still pending after a minute: {:?}",
                fs::read_dir(&outbox).map(|d| d.count())
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_all_computed_once(&self) {
        let computed = self.computed();
        assert!(computed.iter().all(|(_, n)| *n == 1), "{computed:?}");
    }

    /// Every computation the build script made, by step.
    fn computed(&self) -> Vec<(&'static str, usize)> {
        STEPS.iter().map(|s| (*s, self.fixture.count(s))).collect()
    }
}

/// Whether an uploader holds `root`'s outbox lock.
fn uploader_running(root: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = fs::File::open(root.join(".outbox.lock")) else {
        return false;
    };
    // SAFETY: flock on a descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    locked != 0
}

/// The build's one pcache warning (asserting there is exactly one).
fn the_one_warning(build: &Build) -> &str {
    let warnings = build.pcache_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    warnings[0]
}

fn assert_all_from_the_remote(build: &Build) {
    for step in STEPS {
        let line = build
            .steps()
            .into_iter()
            .find(|s| s.starts_with(&format!("hit {step}:")))
            .unwrap_or_else(|| panic!("{step} was no hit: {:?}", build.steps()));
        assert!(
            line.ends_with("(fetched from the remote)"),
            "{step}: {line}"
        );
    }
}

/// Asserts that two directories hold the same files, bytes and modes.
fn assert_same_tree(a: &Path, b: &Path) {
    let list = |dir: &Path| {
        let mut files = Vec::new();
        walk(dir, dir, &mut files);
        files.sort();
        files
    };
    let (in_a, in_b) = (list(a), list(b));
    assert!(!in_a.is_empty(), "nothing in {}", a.display());
    assert_eq!(in_a, in_b, "{} vs {}", a.display(), b.display());
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>, u32)>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            files.push((
                rel,
                fs::read(&path).unwrap(),
                meta.permissions().mode() & 0o111,
            ));
        }
    }
}

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
    if let Some(url) = server("PCACHE_TEST_REDIS") {
        steps_are_shared_across_machines("remote-redis", &url);
    }
}

#[test]
fn s3_shares_steps_across_machines() {
    if let Some(url) = server("PCACHE_TEST_S3") {
        steps_are_shared_across_machines("remote-s3", &url);
    }
}

#[test]
fn webdav_shares_steps_across_machines() {
    if let Some(url) = server("PCACHE_TEST_WEBDAV") {
        steps_are_shared_across_machines("remote-webdav", &url);
    }
}

/// A helper that logs each call to `log`, then does what `cargo-pcache`
/// does (and, with `after_first`, runs that shell command once the first
/// call is over).
fn logging_helper(dir: &Path, after_first: Option<&str>) -> (PathBuf, PathBuf) {
    let log = dir.join("helper.log");
    let script = dir.join("helper.sh");
    let after = after_first.map_or(String::new(), |cmd| {
        format!(
            "if [ \"$(wc -l < '{log}')\" -eq 1 ]; then {cmd}; fi\n",
            log = log.display()
        )
    });
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$3\" >> '{log}'\n'{HELPER}' \"$@\"\nstatus=$?\n{after}exit $status\n",
            log = log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

fn calls(log: &Path, action: &str) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == action)
        .count()
}

/// A port that accepts connections and never answers.
fn silent_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Asserts that nothing in `dir` (file names and contents) holds `secret`.
fn assert_nowhere_in(dir: &Path, secret: &str) {
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    for (path, bytes, _) in files {
        assert!(!path.contains(secret), "{path}");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{path} holds the secret"
        );
    }
}

#[test]
fn a_silent_remote_costs_one_timeout_and_one_warning_per_build() {
    let scratch = tempfile::tempdir().unwrap();
    let port = silent_port();
    let url = format!("webdav+http://ci:{SECRET}@127.0.0.1:{port}/cache");
    let mut m = Machine::new(Fixture::directives("remote-silent", shared_target()), &url);
    let (helper, log) = logging_helper(scratch.path(), None);
    m.helper = helper;

    let built = m.build_package(&[]);
    m.assert_all_computed_once();
    let warning = the_one_warning(&built);
    let shown = format!("remote webdav+http://***@127.0.0.1:{port}/cache unavailable: no answer");
    assert!(warning.contains(&shown), "{warning}");
    // The first step found it down; the others skipped it.
    assert_eq!(calls(&log, "fetch"), 1);
    assert_eq!(calls(&log, "upload"), 0);
    // What was computed waits in the outbox for `cargo pcache push`.
    assert_eq!(fs::read_dir(m.root().join(".outbox")).unwrap().count(), 5);

    // Another build script process in the same minute, missing again,
    // skips it outright.
    fs::remove_dir_all(m.root().join(&m.fixture.package)).unwrap();
    let again = m.build_package(&[("FIXTURE_RERUN", "1")]);
    assert_eq!(calls(&log, "fetch"), 1);
    let warning = the_one_warning(&again);
    assert!(
        warning.contains("skipped: another build script found it unavailable"),
        "{warning}"
    );

    for output in [&built.stdout, &built.stderr, &again.stdout, &again.stderr] {
        assert!(!output.contains(SECRET));
    }
    assert_nowhere_in(m.root(), SECRET);
}

#[test]
fn a_closed_port_is_a_warning_and_the_build_goes_on() {
    let url = format!("redis://:{SECRET}@127.0.0.1:{}/0", closed_port());
    let m = Machine::new(Fixture::directives("remote-closed", shared_target()), &url);
    let built = m.build_package(&[]);
    m.assert_all_computed_once();
    let warning = the_one_warning(&built);
    assert!(
        warning.contains("remote redis://***@127.0.0.1:"),
        "{warning}"
    );
    assert!(!built.stderr.contains(SECRET) && !built.stdout.contains(SECRET));
    assert_nowhere_in(m.root(), SECRET);
}

#[test]
fn remote_trouble_fails_the_build_when_the_remote_is_required() {
    let url = format!("webdav+http://127.0.0.1:{}/cache", silent_port());
    let m = Machine::new(
        Fixture::directives("remote-required", shared_target()),
        &url,
    );
    let failed = m.try_build(
        &["build", "-p", &m.fixture.package],
        &[("PCACHE_REMOTE_REQUIRED", "1")],
    );
    assert!(!failed.success);
    assert!(
        failed
            .stderr
            .contains("PCACHE_REMOTE_REQUIRED=1 and remote webdav+http://127.0.0.1:"),
        "{}",
        failed.stderr
    );
}

#[test]
fn a_missing_helper_is_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let mut m = Machine::new(
        Fixture::directives("remote-nohelper", shared_target()),
        &url,
    );
    m.helper = dir.path().join("no-such-cargo-pcache");
    let built = m.build_package(&[]);
    m.assert_all_computed_once();
    let warning = the_one_warning(&built);
    assert!(warning.contains("no-such-cargo-pcache"), "{warning}");
}

/// The object of `step`'s entry in a file remote.
fn remote_object(remote_dir: &Path, package: &str, step: &str) -> PathBuf {
    let cache = remote_dir
        .join("v3")
        .join(package)
        .join(pcache_core::short_id(step));
    fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("{}: {e}", cache.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap() != "cache.toml")
        .unwrap()
}

/// Fills a file remote from machine A; returns it and a machine B.
fn filled_file_remote(name: &str) -> (tempfile::TempDir, Machine, Machine) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let a = Machine::new(Fixture::directives(name, shared_target()), &url);
    a.build_package(&[]);
    a.wait_for_uploads();
    let b = Machine::new(a.fixture.checkout_elsewhere(name, other_target()), &url);
    (dir, a, b)
}

#[test]
fn corrupted_and_truncated_remote_entries_are_misses_with_one_warning() {
    let (dir, _a, b) = filled_file_remote("remote-corrupt");
    let package = b.fixture.package.clone();
    let corrupt = remote_object(dir.path(), &package, "value");
    let mut bytes = fs::read(&corrupt).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&corrupt, bytes).unwrap();
    let truncated = remote_object(dir.path(), &package, "items");
    let bytes = fs::read(&truncated).unwrap();
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    let built = b.build_package(&[]);
    assert_eq!(
        b.computed(),
        [
            ("value", 1),
            ("fallible", 0),
            ("items", 1),
            ("clib", 0),
            ("builder", 0)
        ]
    );
    let warning = the_one_warning(&built);
    assert!(warning.contains("is not a valid entry"), "{warning}");
    assert!(built.has_step("hit clib"));

    // B's good entries replace the bad ones.
    b.wait_for_uploads();
    for step in ["value", "items"] {
        let object = remote_object(dir.path(), &package, step);
        let scratch = tempfile::tempdir().unwrap();
        let store = pcache_core::Store::open(scratch.path()).unwrap();
        let key: pcache_core::Key = object
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let bytes = fs::read(&object).unwrap();
        store
            .import(&key, |f| f.write_all(&bytes))
            .unwrap_or_else(|e| panic!("{step}: {e}"));
    }
}

/// Replaces `from` by `to` (of the same length) in an entry file's payload
/// and fixes its checksums: a valid entry, with a different value.
fn forge(entry: &Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut bytes = fs::read(entry).unwrap();
    let payload_len = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let payload = 64..64 + payload_len;
    let at = bytes[payload.clone()]
        .windows(from.len())
        .position(|w| w == from)
        .expect("the payload holds the string")
        + 64;
    bytes[at..at + to.len()].copy_from_slice(to);
    let crc = crc32fast::hash(&bytes[payload]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    fs::write(entry, bytes).unwrap();
}

#[test]
fn a_hostile_remote_cannot_make_a_step_write_outside_its_destination() {
    let (dir, _a, b) = filled_file_remote("remote-hostile");
    let object = remote_object(dir.path(), &b.fixture.package, "clib");
    forge(&object, b"libfxanswer.a", b"../escape.txt");

    let built = b.build_package(&[]);
    assert_eq!(b.fixture.count("clib"), 1, "the tree was refused");
    let warning = the_one_warning(&built);
    assert!(warning.contains("escape.txt"), "{warning}");
    let out_dir = latest_output(&b.fixture.target, "debug", &b.fixture.package).1;
    // `../escape.txt` from OUT_DIR, the tree's destination.
    assert!(!out_dir.parent().unwrap().join("escape.txt").exists());
    assert!(!out_dir.join("escape.txt").exists());
    assert!(out_dir.join("libfxanswer.a").is_file());
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

/// A WebDAV server that finds nothing and refuses writes, or, with
/// `garbage`, answers every request with bytes that are not HTTP.
fn refusing_server(garbage: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream, garbage));
        }
    });
    port
}

fn serve(mut stream: TcpStream, garbage: bool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let response: &[u8] = if garbage {
            b"\x00\x01garbage\xff\r\n\r\n"
        } else if head.starts_with("PUT") || head.starts_with("MKCOL") {
            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        };
        if stream.write_all(response).is_err() || garbage {
            return;
        }
    }
}

#[test]
fn a_remote_refusing_writes_is_reported_by_the_next_build_that_computes() {
    let url = format!("webdav+http://127.0.0.1:{}/cache", refusing_server(false));
    let m = Machine::new(Fixture::with_target("remote-refuse", shared_target()), &url);
    let first = m.build_package(&[("FIXTURE_INPUT", "1")]);
    // The uploads run beside the build: a later step of this build may
    // already report the first one's failure.
    assert!(first.pcache_warnings().len() <= 1);
    m.wait_for_uploads();
    let recorded = fs::read_to_string(m.root().join(".remote-upload-error")).unwrap();
    assert!(recorded.contains("HTTP 403"), "{recorded}");

    let second = m.build_package(&[("FIXTURE_INPUT", "2")]);
    let warning = the_one_warning(&second);
    assert!(
        warning.contains(&format!("remote {url}: uploading failed")),
        "{warning}"
    );

    // Required: the upload happens in the build, and its failure fails it.
    let strict = m.try_build(
        &["build", "-p", &m.fixture.package],
        &[("FIXTURE_INPUT", "3"), ("PCACHE_REMOTE_REQUIRED", "1")],
    );
    assert!(!strict.success);
    assert!(
        strict.stderr.contains("PCACHE_REMOTE_REQUIRED=1"),
        "{}",
        strict.stderr
    );
}

#[test]
fn a_remote_answering_garbage_is_a_warning_and_the_build_goes_on() {
    let url = format!("webdav+http://127.0.0.1:{}/cache", refusing_server(true));
    let m = Machine::new(Fixture::directives("remote-garbage", shared_target()), &url);
    let built = m.build_package(&[]);
    m.assert_all_computed_once();
    let warning = the_one_warning(&built);
    assert!(warning.contains(&format!("remote {url}")), "{warning}");
}

#[test]
fn a_server_stopped_mid_build_leaves_the_build_green() {
    let Some(redis_server) = which("redis-server") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "redis-server missing"
        );
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let port = closed_port();
    let mut server = Command::new(redis_server)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis did not start"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{port}/0");
    let a = Machine::new(Fixture::directives("remote-stopped", shared_target()), &url);
    a.build_package(&[]);
    a.wait_for_uploads();

    // B's first fetch succeeds; then the server goes away.
    let mut b = Machine::new(
        a.fixture
            .checkout_elsewhere("remote-stopped", other_target()),
        &url,
    );
    let (helper, log) = logging_helper(
        scratch.path(),
        Some(&format!("kill {}; sleep 0.2", server.id())),
    );
    b.helper = helper;
    let built = b.build_package(&[]);
    let _ = server.wait();
    let fetched = built
        .steps()
        .iter()
        .filter(|s| s.ends_with("(fetched from the remote)"))
        .count();
    assert_eq!(fetched, 1, "{:?}", built.steps());
    let computed: usize = b.computed().iter().map(|(_, n)| n).sum();
    assert_eq!(computed, STEPS.len() - 1, "{:?}", b.computed());
    let warning = the_one_warning(&built);
    assert!(warning.contains("unavailable"), "{warning}");
    assert_eq!(
        calls(&log, "fetch"),
        2,
        "one hit, one failure, then skipped"
    );
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[test]
fn changing_the_remote_settings_never_reruns_a_build_script() {
    let dir = tempfile::tempdir().unwrap();
    let first = format!("file://{}", dir.path().join("one").display());
    let m = Machine::new(Fixture::directives("remote-rerun", shared_target()), &first);
    m.build_package(&[]);
    assert_eq!(m.fixture.count("runs"), 1);
    let second = format!("file://{}", dir.path().join("two").display());
    m.build_package(&[
        ("PCACHE_REMOTE", second.as_str()),
        ("PCACHE_REMOTE_MODE", "read"),
        ("PCACHE_REMOTE_REQUIRED", "1"),
        ("PCACHE_REMOTE_HELPER", "/elsewhere/cargo-pcache"),
    ]);
    assert_eq!(m.fixture.count("runs"), 1, "the build script ran again");
}
