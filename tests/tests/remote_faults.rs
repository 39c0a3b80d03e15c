//! The remote tier's faults, end to end: remotes that never answer, refuse,
//! answer garbage, stop mid-build or hold damaged and hostile objects;
//! required remotes; a missing helper; settings that change. The build
//! stays green (unless the remote is required), with one warning.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::machines::{
    HELPER, Machine, SECRET, STEPS, assert_nowhere_in, filled_file_remote, remote_object,
    the_one_warning,
};
use support::{Fixture, latest_output, other_target, shared_target};

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
