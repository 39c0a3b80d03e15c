//! A temporary Cargo workspace with caches laid out as pcache-build lays
//! them out, and ways to run `cargo pcache` on it.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use pcache_core::{CacheMeta, Key, Store};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_cargo-pcache");

/// `program` in `dir`, without the variables that would move caches
/// elsewhere than the test intends.
pub fn command(program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_BUILD_DIR")
        .env_remove("CARGO_TERM_COLOR")
        .env_remove("PCACHE_MAX_SIZE")
        .env_remove("PCACHE_DIR");
    cmd
}

/// A temporary Cargo project with a target directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A workspace with the packages `app` and `app-sys`.
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"app\", \"app-sys\"]\nresolver = \"2\"\n",
        )
        .unwrap();
        for (name, extra) in [
            ("app", ""),
            ("app-sys", "\n[package.metadata.pcache]\nexpiry = \"1h\"\n"),
        ] {
            let pkg = root.join(name);
            fs::create_dir_all(pkg.join("src")).unwrap();
            fs::write(
                pkg.join("Cargo.toml"),
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{extra}"
                ),
            )
            .unwrap();
            fs::write(pkg.join("src/lib.rs"), "").unwrap();
        }
        Project { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn target(&self) -> PathBuf {
        self.root().join("target")
    }

    /// A cache as pcache-build lays it out, with `entries` entries written
    /// `age` ago.
    pub fn cache(
        &self,
        package: &str,
        name: &str,
        expiry: Option<Duration>,
        entries: usize,
        age: Duration,
    ) -> Store {
        let dir = self
            .target()
            .join("pcache")
            .join(package)
            .join(pcache_core::short_id(name));
        let then = SystemTime::now() - age;
        let store = Store::open(dir).unwrap().with_clock(move || then);
        store
            .write_meta(&CacheMeta::new(name).package(package).expiry(expiry))
            .unwrap();
        for i in 0..entries {
            store
                .set(&Key::new(&(name, i)).unwrap(), &vec![i as u8; 1000])
                .unwrap();
        }
        store
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Runs `cargo pcache` with `envs` set.
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        command(BIN, self.root())
            .arg("pcache")
            .args(args)
            .env("NO_COLOR", "1")
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    }

    /// Writes `.cargo/config.toml` in the project.
    pub fn cargo_config(&self, text: &str) {
        fs::create_dir_all(self.root().join(".cargo")).unwrap();
        fs::write(self.root().join(".cargo/config.toml"), text).unwrap();
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["ls", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs `cargo pcache` in this process, on this workspace, with
    /// streams that are not terminals: `(status, stdout, stderr)`.
    pub fn run_in_process(&self, args: &[&str]) -> (u8, String, String) {
        let manifest = self.root().join("Cargo.toml");
        let mut all = vec!["cargo-pcache", "pcache"];
        all.extend_from_slice(args);
        all.extend(["--manifest-path", manifest.to_str().unwrap()]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = cargo_pcache::run(all, &mut out, &mut err);
        let code = if status == std::process::ExitCode::SUCCESS {
            0
        } else if status == std::process::ExitCode::from(2) {
            2
        } else {
            1
        };
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }
}
