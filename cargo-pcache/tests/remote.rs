//! `cargo pcache push`, `pull` and `remote`, and the helper build scripts
//! run, against a shared-directory remote (the servers are exercised end to
//! end in `tests/tests/remote.rs`).

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use pcache_core::remote::{EntryName, HelperAction, HelperRequest};
use pcache_core::{Key, Store};
use serde_json::Value;
use support::{BIN, Project, command};

const SECRET: &str = "hunter2-secret";

fn run(p: &Project, remote: &str, args: &[&str]) -> Output {
    command(BIN, p.root())
        .arg("pcache")
        .args(args)
        .env("NO_COLOR", "1")
        .env("PCACHE_REMOTE", remote)
        .env_remove("PCACHE_REMOTE_MODE")
        .output()
        .unwrap()
}

fn ok_json(p: &Project, remote: &str, args: &[&str]) -> Value {
    let out = run(p, remote, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The stderr of a command that failed with exit status 1.
fn failure(out: Output) -> String {
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

fn file_remote() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    (dir, url)
}

/// Every object under `dir`'s `v3/`, relative to it.
fn objects(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    let v3 = dir.join("v3");
    walk(&v3, &v3, &mut found);
    found.sort();
    found
}

fn filled() -> Project {
    let p = Project::new();
    p.cache("app", "table", None, 3, Duration::ZERO);
    p.cache(
        "app-sys",
        "bindings",
        Some(Duration::from_secs(3600)),
        2,
        Duration::ZERO,
    );
    p
}

#[test]
fn push_sends_what_is_missing_and_pull_brings_it_back() {
    let (dir, url) = file_remote();
    let p = filled();
    // A computed entry waiting for its upload.
    let table = p
        .target()
        .join("pcache/app")
        .join(pcache_core::short_id("table"));
    let key = Key::new(&("table", 0)).unwrap();
    let item = format!("app+{}+{key}", pcache_core::short_id("table"));
    fs::create_dir_all(p.target().join("pcache/.outbox")).unwrap();
    fs::write(p.target().join("pcache/.outbox").join(&item), b"").unwrap();

    let dry = ok_json(&p, &url, &["push", "--dry-run", "--json"]);
    assert_eq!(dry["moved"]["entries"], 5);
    assert_eq!(dry["dry_run"], true);
    assert!(objects(dir.path()).is_empty());

    let pushed = ok_json(&p, &url, &["push", "--json"]);
    assert_eq!(pushed["moved"]["entries"], 5);
    assert_eq!(pushed["present"]["entries"], 0);
    assert!(pushed["moved"]["bytes"].as_u64().unwrap() > 5000);
    assert_eq!(pushed["entries"].as_array().unwrap().len(), 5);
    let stored = objects(dir.path());
    // Five entries and two cache.toml files, at the same place as locally.
    assert_eq!(stored.len(), 7, "{stored:?}");
    assert!(stored.contains(&format!("app/{}/{key}", pcache_core::short_id("table"))));
    assert!(stored.contains(&format!(
        "app/{}/cache.toml",
        pcache_core::short_id("table")
    )));
    assert!(!p.target().join("pcache/.outbox").join(&item).exists());
    assert!(table.join(key.to_string()).is_file());

    let out = run(&p, &url, &["push"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("Pushed 0 entries (0 B) to {url}; 5 already there")
    );

    // Another checkout, nothing built: pull fills its caches.
    let q = Project::new();
    let pulled = ok_json(&q, &url, &["pull", "--json"]);
    assert_eq!(pulled["moved"]["entries"], 5);
    let listing = q.json(&[]);
    let mut names: Vec<(String, u64)> = listing["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["entries"].as_u64().unwrap(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(names, [("bindings".to_owned(), 2), ("table".to_owned(), 3)]);
    let store = Store::at(
        q.target()
            .join("pcache/app")
            .join(pcache_core::short_id("table")),
    );
    assert_eq!(store.get::<Vec<u8>>(&key).unwrap(), Some(vec![0u8; 1000]));
    assert_eq!(
        ok_json(&q, &url, &["pull", "--json"])["present"]["entries"],
        5
    );

    // By name: only that cache.
    let r = Project::new();
    let one = ok_json(&r, &url, &["pull", "bindings", "--json"]);
    assert_eq!(one["moved"]["entries"], 2);
    assert!(
        one["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["package"] == "app-sys")
    );
}

#[test]
fn pull_keeps_nothing_that_fails_the_checks() {
    let (dir, url) = file_remote();
    let p = filled();
    ok_json(&p, &url, &["push", "--json"]);
    let victim = objects(dir.path())
        .into_iter()
        .find(|o| !o.ends_with("cache.toml"))
        .unwrap();
    let path = dir.path().join("v3").join(&victim);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).unwrap();

    let q = Project::new();
    let out = run(&q, &url, &["pull", "--json"]);
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["invalid"]["entries"], 1);
    assert_eq!(report["moved"]["entries"], 4);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("is not a valid entry"), "{stderr}");
    assert!(!q.target().join("pcache").join(&victim).exists());
}

#[test]
fn push_needs_read_write_and_a_remote() {
    let (_dir, url) = file_remote();
    let p = filled();
    let out = command(BIN, p.root())
        .args(["pcache", "push"])
        .env("PCACHE_REMOTE", &url)
        .env("PCACHE_REMOTE_MODE", "read")
        .output()
        .unwrap();
    let stderr = failure(out);
    assert!(stderr.contains("PCACHE_REMOTE_MODE=read"), "{stderr}");

    let out = command(BIN, p.root())
        .args(["pcache", "push"])
        .env_remove("PCACHE_REMOTE")
        .output()
        .unwrap();
    let stderr = failure(out);
    assert!(
        stderr.contains("no remote configured: set PCACHE_REMOTE"),
        "{stderr}"
    );
}

#[test]
fn remote_checks_reach_read_and_write() {
    let (dir, url) = file_remote();
    let p = Project::new();
    let report = ok_json(&p, &url, &["remote", "--json"]);
    assert_eq!(report["remote"], url);
    assert_eq!(report["backend"], "file");
    assert_eq!(report["mode"], "read-write");
    let checks: Vec<(&str, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(checks, [("reach", true), ("read", true), ("write", true)]);
    // The probe is gone again.
    assert!(objects(dir.path()).is_empty());

    let text = String::from_utf8(run(&p, &url, &["remote"]).stdout).unwrap();
    assert!(text.starts_with(&format!("remote     {url}\n")), "{text}");
    assert!(text.contains("\nwrite      ok "), "{text}");
    assert!(
        text.contains("\nsignatures none: the remote is unauthenticated"),
        "{text}"
    );
}

#[test]
fn a_dead_remote_fails_the_check_without_showing_credentials() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("webdav+http://ci:{SECRET}@127.0.0.1:{port}/cache");
    let p = Project::new();
    let out = run(&p, &url, &["remote", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["remote"],
        format!("webdav+http://***@127.0.0.1:{port}/cache")
    );
    assert_eq!(report["checks"][0]["name"], "reach");
    assert_eq!(report["checks"][0]["ok"], false);
    assert!(stderr.contains("the reach check failed"), "{stderr}");
}

#[test]
fn the_remote_can_be_configured_in_cargo_config() {
    let (_dir, url) = file_remote();
    let p = Project::new();
    fs::create_dir_all(p.root().join(".cargo")).unwrap();
    fs::write(
        p.root().join(".cargo/config.toml"),
        format!("[env]\nPCACHE_REMOTE = \"{url}\"\nPCACHE_REMOTE_MODE = \"read\"\n"),
    )
    .unwrap();
    let out = command(BIN, p.root())
        .args(["pcache", "remote", "--json"])
        .env_remove("PCACHE_REMOTE")
        .env_remove("PCACHE_REMOTE_MODE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["remote"], url);
    assert_eq!(report["mode"], "read");
    // Read mode: no write check.
    assert_eq!(report["checks"].as_array().unwrap().len(), 2);
}

/// Runs the helper as a build script does, on the arguments `request`
/// makes (or others, given whole): its exit code and message.
fn helper<S: AsRef<std::ffi::OsStr>>(remote: &str, root: &Path, args: &[S]) -> (i32, String) {
    let out = command(BIN, root)
        .args(args)
        .env("PCACHE_REMOTE", remote)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_helper_imports_only_valid_entries_and_says_why_not() {
    let (dir, url) = file_remote();
    let local = tempfile::tempdir().unwrap();
    let root = local.path().join("pcache");
    let id = pcache_core::short_id("t");
    let key = Key::new(&"k").unwrap();
    let entry = format!("pkg/{id}/{key}");
    let request = HelperRequest::new(
        root.clone(),
        HelperAction::Fetch(EntryName::parse(&entry).unwrap()),
    );
    let fetch = || helper(&url, local.path(), &request.to_args());

    assert_eq!(fetch().0, 10, "absent");

    // A valid entry, made by another store.
    let other = tempfile::tempdir().unwrap();
    let store = Store::open(other.path()).unwrap();
    store.set(&key, &vec![7u32; 100]).unwrap();
    let object: PathBuf = dir.path().join("v3").join(&entry);
    fs::create_dir_all(object.parent().unwrap()).unwrap();
    let good = fs::read(store.entry_path(&key)).unwrap();
    let mut bad = good.clone();
    bad[70] ^= 0x10;
    fs::write(&object, &bad).unwrap();
    let (code, message) = fetch();
    assert_eq!(code, 11, "{message}");
    assert!(message.contains("payload checksum mismatch"), "{message}");
    let local_store = Store::at(root.join("pkg").join(&id));
    assert_eq!(local_store.get::<Vec<u32>>(&key).unwrap(), None);

    fs::write(&object, &good).unwrap();
    assert_eq!(fetch(), (0, String::new()));
    assert_eq!(
        local_store.get::<Vec<u32>>(&key).unwrap(),
        Some(vec![7; 100])
    );

    // Names that point elsewhere, other formats and other protocol versions
    // are refused.
    let mut args = request.to_args();
    *args.last_mut().unwrap() = format!("../x/{key}").into();
    let (code, message) = helper(&url, local.path(), &args);
    assert_eq!(code, 1);
    assert!(message.contains("not a pcache entry name"), "{message}");
    let mut older = request.clone();
    older.format = 2;
    let (code, message) = helper(&url, local.path(), &older.to_args());
    assert_eq!(code, 14);
    assert!(message.contains("format 2"), "{message}");
    let mut newer = request.clone();
    newer.protocol += 1;
    let (code, message) = helper(&url, local.path(), &newer.to_args());
    assert_eq!(code, 14);
    assert!(message.contains("helper protocol"), "{message}");
}

#[test]
fn the_uploader_empties_the_outbox() {
    let (dir, url) = file_remote();
    let p = filled();
    let root = p.target().join("pcache");
    let outbox = root.join(".outbox");
    fs::create_dir_all(&outbox).unwrap();
    let id = pcache_core::short_id("table");
    for i in 0..3 {
        let key = Key::new(&("table", i)).unwrap();
        fs::write(outbox.join(format!("app+{id}+{key}")), b"").unwrap();
    }
    // An item whose entry is gone, and one that is not an item at all.
    fs::write(
        outbox.join(format!("app+{id}+{}", Key::new(&"gone").unwrap())),
        b"",
    )
    .unwrap();
    fs::write(outbox.join("garbage"), b"").unwrap();

    let upload = HelperRequest::new(root.clone(), HelperAction::Upload(None));
    let (code, message) = helper(&url, p.root(), &upload.to_args());
    assert_eq!(code, 0, "{message}");
    assert_eq!(fs::read_dir(&outbox).unwrap().count(), 0);
    // Three entries and their cache.toml.
    assert_eq!(objects(dir.path()).len(), 4, "{:?}", objects(dir.path()));
}

#[test]
fn keygen_prints_a_fresh_pair_in_the_form_settings_take() {
    let p = Project::new();
    let decoded = |b64: &str| {
        // Standard base64 of 32 bytes: 43 characters and one `=`.
        assert_eq!(b64.len(), 44, "{b64}");
        assert!(b64.ends_with('='), "{b64}");
        assert!(
            b64[..43]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/'),
            "{b64}"
        );
    };
    let out = run(&p, "file:///unused", &["keygen", "ci-2026"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let secret = lines[0]
        .strip_prefix("PCACHE_REMOTE_SIGNING_KEY=ci-2026:")
        .unwrap();
    let public = lines[1]
        .strip_prefix("PCACHE_REMOTE_TRUSTED_KEYS=ci-2026:")
        .unwrap();
    decoded(secret);
    decoded(public);
    assert_ne!(secret, public);

    let json = ok_json(&p, "file:///unused", &["keygen", "ci-2026", "--json"]);
    assert_eq!(json["name"], "ci-2026");
    decoded(json["public"].as_str().unwrap());
    decoded(json["secret"].as_str().unwrap());
    assert_ne!(
        json["secret"].as_str().unwrap(),
        secret,
        "a new pair each time"
    );

    let stderr = failure(run(&p, "file:///unused", &["keygen", "ci 2026"]));
    assert!(stderr.contains("`ci 2026` is not a key name"), "{stderr}");
}
