//! Fixture crates in temporary directories, built with the real `cargo`.
//!
//! Every fixture gets its own package name (so their caches never mix) and,
//! unless a test asks otherwise, the one shared target directory, so that
//! pcache-build and its dependencies are compiled once for the whole suite.

#![allow(dead_code, unreachable_pub)]

pub mod deps;
pub mod ghac;
pub mod machines;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const FIXTURE_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixture");
const DIRECTIVES_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixture-directives");

pub fn shared_target() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures-target")
}

/// A second shared target directory, for "another machine": its build
/// directories are fresh for every fixture package built there.
pub fn other_target() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures-target-b")
}

/// What `.ci/services` provides for the tests (a server's URL, a tool's
/// path) from the variable `var`; `None` (a skipped test) when it is not
/// set, except under CI, where it must be.
pub fn provided(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{var} is not set: .ci/run sets it up with .ci/services"
            );
            eprintln!(
                "skipped: {var} is not set (run `.ci/services start DIR` and source DIR/env)"
            );
            None
        }
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub package: String,
    pub counters: PathBuf,
    pub target: PathBuf,
}

impl Fixture {
    /// A fixture called `pcache-fixture-<name>-<random>` building into the
    /// shared target dir.
    pub fn new(name: &str) -> Fixture {
        Fixture::with_target(name, shared_target())
    }

    /// A fixture that is a member (`pkg/`) of a workspace rooted in its
    /// directory, as most real crates are: rustc then records the build
    /// script's sources relative to the workspace root.
    pub fn in_workspace(name: &str) -> Fixture {
        let f = Fixture::with_target(name, shared_target());
        let root = f.root();
        let pkg = root.join("pkg");
        fs::create_dir_all(&pkg).unwrap();
        for entry in ["Cargo.toml", "build.rs", "build_support", "src"] {
            fs::rename(root.join(entry), pkg.join(entry)).unwrap();
        }
        let manifest = fs::read_to_string(pkg.join("Cargo.toml"))
            .unwrap()
            .replace("\n[workspace]\n", "\n");
        fs::write(pkg.join("Cargo.toml"), manifest).unwrap();
        fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"pkg\"]\nresolver = \"2\"\n",
        )
        .unwrap();
        f
    }

    /// The workspace of `fixture-directives/`: `pkg` (this fixture's
    /// package, `links = "pcachefx"`, with a C library and a binary) and
    /// `dependent`, which reads its `DEP_PCACHEFX_*` metadata.
    pub fn directives(name: &str, target: PathBuf) -> Fixture {
        let (dir, package) = Fixture::temp_dir(name);
        let root = dir.path();
        copy_tree(Path::new(DIRECTIVES_SRC), root);
        let pcache_build = fs::canonicalize(WORKSPACE).unwrap().join("pcache-build");
        for manifest in ["pkg/Cargo.toml", "dependent/Cargo.toml"] {
            let text = fs::read_to_string(root.join(manifest))
                .unwrap()
                .replace("{{PACKAGE}}", &package)
                .replace("{{PCACHE_BUILD}}", pcache_build.to_str().unwrap());
            fs::write(root.join(manifest), text).unwrap();
        }
        fs::copy(
            fs::canonicalize(WORKSPACE).unwrap().join("Cargo.lock"),
            root.join("Cargo.lock"),
        )
        .unwrap();
        let counters = root.join("counters");
        fs::create_dir_all(&counters).unwrap();
        Fixture {
            dir,
            package,
            counters,
            target,
        }
    }

    /// The same project checked out at another path and built into
    /// `target`, as on another machine: the same package, its own
    /// directory and counters.
    pub fn checkout_elsewhere(&self, name: &str, target: PathBuf) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix(&format!("fixture-{name}-"))
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        copy_tree_except(self.root(), dir.path(), &["counters", "target"]);
        let counters = dir.path().join("counters");
        fs::create_dir_all(&counters).unwrap();
        Fixture {
            dir,
            package: self.package.clone(),
            counters,
            target,
        }
    }

    /// A temporary directory and a package name unique to this run.
    fn temp_dir(name: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("fixture-{name}-"))
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        // Unique per run: the shared target dir keeps caches across runs, and
        // a fixture must start from an empty cache.
        let suffix: String = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .rsplit('-')
            .next()
            .unwrap()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let package = format!("pcache-fixture-{name}-{suffix}");
        (dir, package)
    }

    pub fn with_target(name: &str, target: PathBuf) -> Fixture {
        let (dir, package) = Fixture::temp_dir(name);
        let root = dir.path();
        let workspace = fs::canonicalize(WORKSPACE).unwrap();
        fs::write(
            root.join("Cargo.toml"),
            format!(
                r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2021"
publish = false

[build-dependencies]
pcache-build = {{ path = "{}" }}

[workspace]
"#,
                workspace.join("pcache-build").display()
            ),
        )
        .unwrap();
        // The workspace's lock file pins every dependency pcache-build needs,
        // so fixtures resolve without touching the registry index.
        fs::copy(workspace.join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
        copy_tree(Path::new(FIXTURE_SRC), root);
        let counters = root.join("counters");
        fs::create_dir_all(&counters).unwrap();
        Fixture {
            dir,
            package,
            counters,
            target,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A `cargo` command for this fixture with a clean pcache environment.
    pub fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(args)
            .arg("-vv")
            .current_dir(self.root())
            .env("CARGO_TARGET_DIR", &self.target)
            .env("FIXTURE_COUNTER_DIR", &self.counters)
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("PCACHE")
            .env_remove("PCACHE_DIR")
            .env_remove("PCACHE_REMOTE")
            .env_remove("PCACHE_REMOTE_MODE")
            .env_remove("PCACHE_REMOTE_REQUIRED")
            .env_remove("PCACHE_REMOTE_HELPER")
            .env_remove("FIXTURE_MODE")
            .env_remove("FIXTURE_INPUT")
            .env_remove("FIXTURE_RERUN")
            .env_remove("FX_WATCHED_ENV")
            .env_remove("RUSTFLAGS");
        cmd
    }

    /// Runs `cargo build` with `envs`, asserting success.
    pub fn build(&self, envs: &[(&str, &str)]) -> Build {
        self.build_with(&["build"], envs)
    }

    pub fn build_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Build {
        let build = self.try_build(args, envs);
        assert!(build.success, "cargo {args:?} failed:\n{}", build.stderr);
        build
    }

    pub fn try_build(&self, args: &[&str], envs: &[(&str, &str)]) -> Build {
        let mut cmd = self.cargo(args);
        cmd.envs(envs.iter().copied());
        Build::from(cmd.output().unwrap())
    }

    /// How many times the build script computed `step`.
    pub fn count(&self, step: &str) -> usize {
        fs::read_to_string(self.counters.join(step)).map_or(0, |s| s.lines().count())
    }

    /// `<target>/pcache/<package>`.
    pub fn cache_root(&self) -> PathBuf {
        self.target.join("pcache").join(&self.package)
    }

    /// Every entry file in this fixture's caches.
    pub fn entries(&self) -> Vec<PathBuf> {
        entries_under(&self.cache_root())
    }

    /// The `OUT_DIR`s of this fixture's build script runs.
    pub fn out_dirs(&self, profile: &str) -> Vec<PathBuf> {
        let build = self.target.join(profile).join("build");
        let prefix = format!("{}-", self.package);
        fs::read_dir(build)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .starts_with(&prefix)
                    })
                    .map(|p| p.join("out"))
                    .filter(|p| p.join("table.rs").exists())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(caches) = fs::read_dir(dir) else {
        return found;
    };
    for cache in caches.flatten() {
        for entry in fs::read_dir(cache.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().into_string().unwrap();
            // Entries are named by their key alone, in hex; everything else
            // (cache.toml, locks, sidecars, statistics, records) is not.
            if name.bytes().all(|b| b.is_ascii_hexdigit()) {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// Every file and directory under `dir`, with what a write would change:
/// its size, modification and change times, and contents' CRC-32.
pub fn tree_state(dir: &Path) -> std::collections::BTreeMap<PathBuf, (u64, i64, i64, i64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut state = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let crc = if meta.is_file() {
            crc32fast::hash(&fs::read(&path).unwrap_or_default())
        } else {
            0
        };
        if meta.is_dir() {
            pending.extend(fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        }
        state.insert(
            path,
            (
                meta.len(),
                meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                meta.ino() as i64,
                crc,
            ),
        );
    }
    state
}

fn copy_tree(from: &Path, to: &Path) {
    copy_tree_except(from, to, &[]);
}

/// Copies the tree `from` into `to`, leaving out the top-level entries
/// named in `except`.
pub fn copy_tree_except(from: &Path, to: &Path, except: &[&str]) {
    for entry in fs::read_dir(from).unwrap().flatten() {
        if except.iter().any(|e| entry.file_name() == *e) {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&dest).unwrap();
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// The result of one cargo run.
pub struct Build {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Build {
    fn from(out: Output) -> Build {
        Build {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Build {
    /// The `cargo:warning` lines pcache printed, as Cargo shows them.
    pub fn pcache_warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("warning:") && l.contains("pcache: "))
            .collect()
    }

    /// The build script's pcache step lines (shown by `-vv`).
    pub fn steps(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .chain(self.stdout.lines())
            .filter_map(|l| l.split_once("] pcache: ").map(|(_, rest)| rest))
            .collect()
    }

    pub fn has_step(&self, prefix: &str) -> bool {
        self.steps().iter().any(|s| s.starts_with(prefix))
    }
}

/// The directives in a build script's `output` file (the lines Cargo acts
/// on), with this run's paths replaced: `[OUT]` for `OUT_DIR`, `[PKG]` for
/// the package directory.
pub fn directives_in(output: &Path, out_dir: &Path, package_dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(output).unwrap();
    let out_dir = out_dir.to_str().unwrap();
    let package_dir = package_dir.to_str().unwrap();
    text.lines()
        .filter(|l| l.starts_with("cargo:"))
        .map(|l| l.replace(out_dir, "[OUT]").replace(package_dir, "[PKG]"))
        .collect()
}

/// The newest `output` file of `package`'s build-script runs under
/// `<target>/<profile>/build`, and its `OUT_DIR`.
pub fn latest_output(target: &Path, profile: &str, package: &str) -> (PathBuf, PathBuf) {
    let build = target.join(profile).join("build");
    let prefix = format!("{package}-");
    let newest = fs::read_dir(&build)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().into_string().unwrap();
            name.strip_prefix(&prefix)
                .is_some_and(|hash| !hash.contains('-'))
        })
        .map(|e| e.path().join("output"))
        .filter(|p| p.is_file())
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).unwrap())
        .unwrap_or_else(|| {
            panic!(
                "no build-script output for {package} in {}",
                build.display()
            )
        });
    let out_dir = newest.parent().unwrap().join("out");
    (newest, out_dir)
}

// What the tests of the `fixture/` crate share.

pub const FIXTURE_STEPS: [&str; 3] = ["table", "rows", "generated"];

pub fn assert_counts(fixture: &Fixture, expected: usize) {
    for step in FIXTURE_STEPS {
        assert_eq!(fixture.count(step), expected, "computations of {step}");
    }
}

pub fn touch(path: &Path) {
    let later = SystemTime::now() + Duration::from_secs(2);
    filetime::set_file_mtime(path, filetime::FileTime::from_system_time(later)).unwrap();
}

pub fn assert_generated_tree(out: &Path) {
    assert_eq!(
        fs::read_to_string(out.join("nested/deeper/consts.rs")).unwrap(),
        "pub const DEEP: u32 = 7;\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("top.txt")).unwrap(),
        "top level\n"
    );
    assert_eq!(
        fs::read(out.join("nested/blob.bin")).unwrap(),
        (0..=255u8).collect::<Vec<u8>>()
    );
}

pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out.sort();
    out
}

/// Runs `cargo pcache` in-process on the fixture; returns (status, stdout).
pub fn cargo_pcache(f: &Fixture, args: &[&str]) -> (std::process::ExitCode, String) {
    let manifest = f.root().join("Cargo.toml");
    let mut argv = vec!["cargo-pcache", "pcache"];
    argv.extend_from_slice(args);
    argv.extend(["--manifest-path", manifest.to_str().unwrap()]);
    argv.extend(["--target-dir", f.target.to_str().unwrap()]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = cargo_pcache::run(argv, &mut out, &mut err);
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
    (status, String::from_utf8(out).unwrap())
}
