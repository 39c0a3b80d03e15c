//! Where variables are read from: the process environment, over the `[env]`
//! tables of Cargo's configuration files as Cargo applies them. Cargo hands
//! `[env]` to build scripts, but not to `cargo pcache`, which therefore
//! reads the files itself to see what builds see.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// A source of variable values.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// A stand-in for the process environment; `None`: the real one.
    process: Option<BTreeMap<String, String>>,
    /// `[env]` values from Cargo's configuration, with whether they are
    /// forced over the environment.
    config: BTreeMap<String, (String, bool)>,
    /// `term.color` from Cargo's configuration.
    term_color: Option<String>,
    /// Problems reading the configuration files.
    warnings: Vec<String>,
}

impl Env {
    /// The process environment alone: what a build script (and any process
    /// Cargo starts) already has, `[env]` included.
    pub fn process() -> Env {
        Env::default()
    }

    /// The process environment over the `[env]` tables of the Cargo
    /// configuration files that apply in `cwd` (`.cargo/config.toml` in it
    /// and its ancestors, then `$CARGO_HOME/config.toml`), as Cargo applies
    /// them: a variable already in the environment wins unless the table
    /// forces its own; `relative = true` values are relative to the
    /// directory holding `.cargo`.
    pub fn cargo(cwd: &Path) -> Env {
        let mut env = Env::default();
        // Lowest precedence first: `$CARGO_HOME/config.toml`, then the
        // files from the root down to `cwd`.
        for file in cargo_config_files(cwd).iter().rev() {
            env.read(file);
        }
        env
    }

    /// An environment holding just `pairs` (no process environment, no
    /// Cargo configuration): for tests and examples.
    pub fn from_pairs<I, K, V>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            process: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            ..Env::default()
        }
    }

    fn read(&mut self, file: &Path) {
        let text = match fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                self.warnings
                    .push(format!("failed to read `{}`: {e}", file.display()));
                return;
            }
        };
        let table: toml::Table = match toml::from_str(&text) {
            Ok(table) => table,
            Err(e) => {
                self.warnings
                    .push(format!("ignoring `{}`: {}", file.display(), e.message()));
                return;
            }
        };
        if let Some(color) = table
            .get("term")
            .and_then(|t| t.get("color"))
            .and_then(toml::Value::as_str)
        {
            self.term_color = Some(color.to_owned());
        }
        let Some(toml::Value::Table(env)) = table.get("env") else {
            return;
        };
        // `<dir>/.cargo/config.toml` is relative to `<dir>`.
        let base = file
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        for (name, value) in env {
            let (text, forced) = match value {
                toml::Value::String(s) => (s.clone(), false),
                toml::Value::Table(t) => {
                    let Some(toml::Value::String(s)) = t.get("value") else {
                        continue;
                    };
                    let flag = |k: &str| t.get(k).and_then(toml::Value::as_bool).unwrap_or(false);
                    let text = if flag("relative") {
                        base.join(s).to_string_lossy().into_owned()
                    } else {
                        s.clone()
                    };
                    (text, flag("force"))
                }
                _ => continue,
            };
            self.config.insert(name.clone(), (text, forced));
        }
    }

    fn process_var(&self, name: &str) -> Option<OsString> {
        match &self.process {
            Some(vars) => vars.get(name).map(OsString::from),
            None => std::env::var_os(name),
        }
    }

    /// The value of `name`, lossily as text: the environment's, unless
    /// Cargo's configuration forces its own.
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_os(name).map(|v| {
            v.into_string()
                .unwrap_or_else(|v| v.to_string_lossy().into_owned())
        })
    }

    /// The value of `name` as the OS gave it (paths need not be UTF-8).
    pub fn get_os(&self, name: &str) -> Option<OsString> {
        let config = self.config.get(name);
        if let Some((value, true)) = config {
            return Some(value.into());
        }
        self.process_var(name)
            .or_else(|| config.map(|(value, _)| value.into()))
    }

    /// `CARGO_TERM_COLOR`, else Cargo's `term.color`.
    pub fn term_color(&self) -> Option<String> {
        self.get(super::TERM_COLOR_VAR)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.term_color.clone())
    }

    /// Problems met reading Cargo's configuration files.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Cargo's configuration files that apply in `cwd`, the one that wins
/// first: `.cargo/config.toml` in `cwd` and each of its ancestors, then
/// `$CARGO_HOME/config.toml`.
pub fn cargo_config_files(cwd: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = cwd.ancestors().filter_map(config_file).collect();
    let home = cargo_home().and_then(|home| {
        [home.join("config.toml"), home.join("config")]
            .into_iter()
            .find(|f| f.is_file())
    });
    if let Some(file) = home.filter(|f| !files.contains(f)) {
        files.push(file);
    }
    files
}

/// `<dir>/.cargo/config.toml` (or the older `config`), if there is one.
fn config_file(dir: &Path) -> Option<PathBuf> {
    let cargo = dir.join(".cargo");
    [cargo.join("config.toml"), cargo.join("config")]
        .into_iter()
        .find(|f| f.is_file())
}

/// `$CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeper_files_win_and_forced_values_beat_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path().join(".cargo");
        let inner = dir.path().join("ws/.cargo");
        fs::create_dir_all(&outer).unwrap();
        fs::create_dir_all(&inner).unwrap();
        fs::write(
            outer.join("config.toml"),
            "[env]\nPCACHE_TEST_A = \"outer\"\nPCACHE_TEST_B = \"outer\"\n[term]\ncolor = \"never\"\n",
        )
        .unwrap();
        fs::write(
            inner.join("config.toml"),
            "[env]\nPCACHE_TEST_A = \"inner\"\nPATH = { value = \"forced\", force = true }\n\
             PCACHE_TEST_REL = { value = \"sub\", relative = true }\n[term]\ncolor = \"always\"\n",
        )
        .unwrap();
        let env = Env::cargo(&dir.path().join("ws"));
        assert_eq!(env.get("PCACHE_TEST_A").as_deref(), Some("inner"));
        assert_eq!(env.get("PCACHE_TEST_B").as_deref(), Some("outer"));
        // PATH is set in every environment; forcing overrides it.
        assert_eq!(env.get("PATH").as_deref(), Some("forced"));
        assert_eq!(
            env.get("PCACHE_TEST_REL").map(PathBuf::from),
            Some(dir.path().join("ws/sub"))
        );
        assert_eq!(env.term_color.as_deref(), Some("always"));
        assert!(env.warnings().is_empty());
    }

    #[test]
    fn an_unreadable_configuration_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        fs::write(dir.path().join(".cargo/config.toml"), "[env\n").unwrap();
        let env = Env::cargo(dir.path());
        assert_eq!(env.warnings().len(), 1, "{:?}", env.warnings());
        assert!(env.warnings()[0].contains("config.toml"));
    }
}
