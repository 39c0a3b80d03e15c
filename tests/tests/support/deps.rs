//! Workspaces whose dependencies' build scripts pcache-wrapper caches:
//! `fixture-sys/` (registry -sys crates compiling C) and `fixture-deps/`
//! (path packages named in `[workspace.metadata.pcache] build-scripts`),
//! copied to temporary directories and built with the real `cargo` and
//! `RUSTC_WRAPPER` set to the wrapper.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::{Build, copy_tree_except};

const SYS_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixture-sys");
const DEPS_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixture-deps");

/// The wrapper, as the tests build it.
pub const WRAPPER: &str = env!("CARGO_BIN_EXE_pcache-wrapper-e2e");
/// `cargo-pcache`, as the tests build it.
pub const CLI: &str = env!("CARGO_BIN_EXE_pcache-helper");

/// A fixture workspace, its own target directory, and the per-user store
/// (`PCACHE_HOME`) it shares with its copies.
pub struct Deps {
    pub dir: tempfile::TempDir,
    pub target: PathBuf,
    /// The per-user store (`PCACHE_HOME`), shared with copies.
    pub home: PathBuf,
    _home: Arc<tempfile::TempDir>,
    pub counters: PathBuf,
    /// Where `CC` (see [`logging_cc`]) logs every compile of this copy.
    pub cc_log: PathBuf,
    /// `PKG_CONFIG_PATH`: the original's, for every copy (it is part of
    /// every run's key, as on a real machine where it does not change).
    pub pkg_config_path: PathBuf,
    /// Variables every build of this copy gets.
    pub envs: Vec<(String, String)>,
}

impl Deps {
    /// A copy of `fixture-sys/`, with a store of its own.
    pub fn sys(name: &str) -> Deps {
        Deps::copy(Path::new(SYS_SRC), name)
    }

    /// A copy of `fixture-deps/`, with a store of its own.
    pub fn links(name: &str) -> Deps {
        Deps::copy(Path::new(DEPS_SRC), name)
    }

    fn copy(src: &Path, name: &str) -> Deps {
        let home = Arc::new(new_dir(&format!("{name}-home")));
        let dir = new_dir(name);
        copy_tree_except(src, dir.path(), &["target"]);
        let root = dir.path().to_owned();
        let counters = root.join("counters");
        fs::create_dir_all(&counters).unwrap();
        write_pkg_config(&root);
        let mut deps = Deps {
            target: root.join("target"),
            cc_log: root.join("cc.log"),
            pkg_config_path: root.join("pkgconfig"),
            counters,
            home: home.path().to_owned(),
            _home: home,
            envs: Vec::new(),
            dir,
        };
        deps.set("PCACHE_BUILD_SCRIPT_MIN_TIME", "0");
        deps
    }

    /// The same workspace copied to another directory (a move, or a second
    /// checkout), with its own target directory and the same store.
    pub fn elsewhere(&self, name: &str) -> Deps {
        self.copied(name, Arc::clone(&self._home))
    }

    /// The same workspace on another machine: another directory, its own
    /// target directory and an empty store of its own.
    pub fn on_another_machine(&self, name: &str) -> Deps {
        self.copied(name, Arc::new(new_dir(&format!("{name}-home"))))
    }

    fn copied(&self, name: &str, home: Arc<tempfile::TempDir>) -> Deps {
        let dir = new_dir(name);
        copy_tree_except(
            self.root(),
            dir.path(),
            &[
                "target",
                "build-dir",
                "counters",
                "cc.log",
                "pkgconfig",
                "sysroot",
            ],
        );
        let root = dir.path().to_owned();
        let counters = root.join("counters");
        fs::create_dir_all(&counters).unwrap();
        Deps {
            target: root.join("target"),
            cc_log: root.join("cc.log"),
            pkg_config_path: self.pkg_config_path.clone(),
            counters,
            home: home.path().to_owned(),
            _home: home,
            envs: self.envs.clone(),
            dir,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Sets `name` for every later build.
    pub fn set(&mut self, name: &str, value: &str) {
        self.envs.retain(|(n, _)| n != name);
        self.envs.push((name.to_owned(), value.to_owned()));
    }

    /// `cargo <args>` in this workspace through the wrapper: a clean pcache
    /// environment, this copy's target directory and store.
    pub fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = match args.first().and_then(|a| a.strip_prefix('+')) {
            // Another toolchain, through rustup's proxy.
            Some(_) => {
                let mut cmd = Command::new("cargo");
                for var in ["CARGO", "RUSTC", "RUSTDOC", "RUSTUP_TOOLCHAIN"] {
                    cmd.env_remove(var);
                }
                cmd
            }
            None => Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())),
        };
        cmd.args(args)
            .current_dir(self.root())
            .env("RUSTC_WRAPPER", WRAPPER)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("PCACHE_HOME", &self.home)
            .env("PCACHE_REMOTE_HELPER", CLI)
            .env("FIXTURE_COUNTER_DIR", &self.counters)
            .env("PKG_CONFIG_PATH", &self.pkg_config_path)
            .env("CC_LOG", &self.cc_log)
            .env("CARGO_TERM_COLOR", "never");
        for var in [
            "PCACHE",
            "PCACHE_DIR",
            "PCACHE_REMOTE",
            "PCACHE_REMOTE_MODE",
            "PCACHE_BUILD_SCRIPTS",
            "PCACHE_RUSTC_WRAPPER",
            "CARGO_BUILD_RUSTC_WRAPPER",
            "CARGO_BUILD_BUILD_DIR",
            "RUSTFLAGS",
            "FXFAIL",
            "FXP_SALT",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.envs.iter().map(|(n, v)| (n, v)));
        cmd
    }

    /// Runs `cargo <args>` with `envs`.
    pub fn try_cargo(&self, args: &[&str], envs: &[(&str, &str)]) -> Build {
        let mut cmd = self.cargo(args);
        cmd.envs(envs.iter().copied());
        Build::from(cmd.output().unwrap())
    }

    /// `cargo build` (with `args`), asserting success.
    pub fn build(&self, args: &[&str], envs: &[(&str, &str)]) -> Build {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        let build = self.try_cargo(&all, envs);
        assert!(
            build.success,
            "cargo {all:?} failed in {}:\n{}",
            self.root().display(),
            build.stderr
        );
        build
    }

    /// `cargo clean`.
    pub fn clean(&self) {
        let build = self.try_cargo(&["clean"], &[]);
        assert!(build.success, "{}", build.stderr);
    }

    /// Runs the built binary `name` (debug unless `profile` says).
    pub fn run_binary(&self, profile: &str, name: &str) -> String {
        let out = Command::new(self.target.join(profile).join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `cargo pcache <args>` in this workspace, with this copy's store.
    pub fn pcache(&self, args: &[&str], envs: &[(&str, &str)]) -> Build {
        let mut cmd = Command::new(CLI);
        cmd.arg("pcache")
            .args(args)
            .current_dir(self.root())
            .env("PCACHE_HOME", &self.home)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("PCACHE_REMOTE")
            .env_remove("PCACHE_DIR")
            .envs(envs.iter().copied());
        Build::from(cmd.output().unwrap())
    }

    /// How many times the fixture script `name` really ran (its lines in
    /// the counter file).
    pub fn runs(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.counters.join(name))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The C compiles `CC` logged in this copy.
    pub fn c_compiles(&self) -> Vec<String> {
        fs::read_to_string(&self.cc_log)
            .map(|s| {
                s.lines()
                    .filter(|l| l.contains(".c"))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `OUT_DIR`s of `package`'s build-script runs under
    /// `<target>/<profile>/build`.
    pub fn out_dirs(&self, profile: &str, package: &str) -> Vec<PathBuf> {
        let build = self.target.join(profile).join("build");
        let prefix = format!("{package}-");
        let mut dirs: Vec<PathBuf> = fs::read_dir(build)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix(&prefix))
                    .is_some_and(|hash| !hash.contains('-'))
            })
            .map(|e| e.path().join("out"))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs
    }
}

/// A compiler that logs every call to `$CC_LOG` and runs `cc`: at one path
/// for the whole test run, since `CC` is part of a run's key.
pub fn logging_cc() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("logging-cc");
    if !path.exists() {
        use std::os::unix::fs::PermissionsExt;
        let staged = path.with_extension(format!("{}", std::process::id()));
        fs::write(
            &staged,
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$CC_LOG\"\nexec cc \"$@\"\n",
        )
        .unwrap();
        fs::set_permissions(&staged, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&staged, &path).unwrap();
    }
    path
}

/// `<root>/pkgconfig/fxprobe.pc`, naming the library directory
/// `<root>/sysroot/lib`: a path of this machine, as a system library's.
fn write_pkg_config(root: &Path) {
    let template = root.join("pkgconfig/fxprobe.pc.in");
    let Ok(template) = fs::read_to_string(template) else {
        return;
    };
    let prefix = root.join("sysroot");
    fs::create_dir_all(prefix.join("lib")).unwrap();
    fs::create_dir_all(prefix.join("include")).unwrap();
    fs::write(prefix.join("lib/libfxprobe.a"), "!<arch>\n").unwrap();
    let text = template.replace("@PREFIX@", prefix.to_str().unwrap());
    fs::write(root.join("pkgconfig/fxprobe.pc"), text).unwrap();
}

/// Every file under `dir` with its contents, by relative path; symlinks by
/// their target.
pub fn tree_files(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(dir).unwrap().to_owned();
        if meta.is_dir() {
            pending.extend(fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            files.insert(rel, target.into_os_string().into_encoded_bytes());
        } else {
            files.insert(rel, fs::read(&path).unwrap());
        }
    }
    files
}

fn new_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("deps-{name}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}
