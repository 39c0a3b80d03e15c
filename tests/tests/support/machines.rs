//! Machines for the remote tier's tests: a checkout with its own pcache
//! directory, building against a remote, and what tests ask of their builds.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::{Build, Fixture, other_target, shared_target};

pub const STEPS: [&str; 5] = ["value", "fallible", "items", "clib", "builder"];
pub const HELPER: &str = env!("CARGO_BIN_EXE_pcache-helper");
/// A password that must never be seen.
pub const SECRET: &str = "hunter2-secret";

/// One machine: a checkout, and its own pcache directory.
pub struct Machine {
    pub fixture: Fixture,
    pub pcache_dir: tempfile::TempDir,
    pub remote: String,
    pub helper: PathBuf,
    /// Variables every build and command on this machine gets.
    pub env: Vec<(String, String)>,
}

impl Machine {
    pub fn new(fixture: Fixture, remote: &str) -> Machine {
        Machine {
            fixture,
            pcache_dir: tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
            remote: remote.to_owned(),
            helper: PathBuf::from(HELPER),
            env: Vec::new(),
        }
    }

    /// This machine, with `env` set for everything it runs.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Machine {
        self.env = env;
        self
    }

    pub fn root(&self) -> &Path {
        self.pcache_dir.path()
    }

    pub fn try_build(&self, args: &[&str], extra: &[(&str, &str)]) -> Build {
        let root = self.root().to_str().unwrap();
        let helper = self.helper.to_str().unwrap();
        let mut envs = vec![
            ("PCACHE_DIR", root),
            ("PCACHE_REMOTE", self.remote.as_str()),
            ("PCACHE_REMOTE_HELPER", helper),
        ];
        envs.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        envs.extend_from_slice(extra);
        self.fixture.try_build(args, &envs)
    }

    pub fn build(&self, args: &[&str], extra: &[(&str, &str)]) -> Build {
        let build = self.try_build(args, extra);
        assert!(build.success, "cargo {args:?} failed:\n{}", build.stderr);
        build
    }

    /// Runs `cargo pcache ARGS` on this machine's checkout, pcache
    /// directory and remote.
    pub fn pcache(&self, args: &[&str], extra: &[(&str, &str)]) -> Build {
        let out = std::process::Command::new(&self.helper)
            .arg("pcache")
            .args(args)
            .current_dir(self.fixture.root())
            .env("PCACHE_DIR", self.root())
            .env("PCACHE_REMOTE", &self.remote)
            .env("CARGO_TARGET_DIR", &self.fixture.target)
            .env("CARGO_TERM_COLOR", "never")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        Build::from(out)
    }

    pub fn build_package(&self, extra: &[(&str, &str)]) -> Build {
        self.build(&["build", "-p", &self.fixture.package], extra)
    }

    /// Waits until the background uploads are done: the outbox is empty
    /// and no uploader holds it.
    pub fn wait_for_uploads(&self) {
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

    pub fn assert_all_computed_once(&self) {
        let computed = self.computed();
        assert!(computed.iter().all(|(_, n)| *n == 1), "{computed:?}");
    }

    /// Every computation the build script made, by step.
    pub fn computed(&self) -> Vec<(&'static str, usize)> {
        STEPS.iter().map(|s| (*s, self.fixture.count(s))).collect()
    }
}

/// Whether an uploader holds `root`'s outbox lock.
pub fn uploader_running(root: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = fs::File::open(root.join(".outbox.lock")) else {
        return false;
    };
    // SAFETY: flock on a descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    locked != 0
}

/// The build's one pcache warning (asserting there is exactly one).
pub fn the_one_warning(build: &Build) -> &str {
    let warnings = build.pcache_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    warnings[0]
}

pub fn assert_all_from_the_remote(build: &Build) {
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
pub fn assert_same_tree(a: &Path, b: &Path) {
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

pub fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>, u32)>) {
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

/// Asserts that nothing in `dir` (file names and contents) holds `secret`.
pub fn assert_nowhere_in(dir: &Path, secret: &str) {
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

/// The object of `step`'s entry in a file remote.
pub fn remote_object(remote_dir: &Path, package: &str, step: &str) -> PathBuf {
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
pub fn filled_file_remote(name: &str) -> (tempfile::TempDir, Machine, Machine) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let a = Machine::new(Fixture::directives(name, shared_target()), &url);
    a.build_package(&[]);
    a.wait_for_uploads();
    let b = Machine::new(a.fixture.checkout_elsewhere(name, other_target()), &url);
    (dir, a, b)
}

/// A new key pair named `name`, from `cargo pcache keygen --json`: the
/// signing key and the trusted key, as their variables take them.
pub fn keygen(name: &str) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = cargo_pcache::run(
        ["cargo-pcache", "pcache", "keygen", name, "--json"],
        &mut out,
        &mut err,
    );
    assert_eq!(status, std::process::ExitCode::SUCCESS, "{err:?}");
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["name"], name);
    let field = |f: &str| format!("{name}:{}", json[f].as_str().unwrap());
    (field("secret"), field("public"))
}
