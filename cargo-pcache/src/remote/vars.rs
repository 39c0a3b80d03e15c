//! The variables the remote is configured with, as build scripts see them:
//! the process environment, over the `[env]` tables of Cargo's
//! configuration files — which Cargo hands to build scripts, but not to
//! `cargo pcache`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use pcache_core::remote::{RemoteConfigError, RemoteSettings};

/// A source of variable values.
#[derive(Debug, Default)]
pub(crate) struct Vars {
    /// `[env]` values from Cargo's configuration, with whether they are
    /// forced over the environment.
    config: BTreeMap<String, (String, bool)>,
    /// Problems reading the configuration files.
    pub(crate) warnings: Vec<String>,
}

impl Vars {
    /// The process environment alone: what a build script, and so the
    /// helper it runs, already has.
    pub(crate) fn process() -> Vars {
        Vars::default()
    }

    /// The process environment over the `[env]` tables of the Cargo
    /// configuration files that apply in `cwd`, as Cargo applies them.
    pub(crate) fn cargo(cwd: &Path) -> Vars {
        let mut vars = Vars::default();
        // Lowest precedence first: `$CARGO_HOME/config.toml`, then the
        // files from the root down to `cwd`.
        let mut files: Vec<PathBuf> = cwd.ancestors().filter_map(config_file).collect();
        let home = cargo_home().and_then(|home| {
            [home.join("config.toml"), home.join("config")]
                .into_iter()
                .find(|f| f.is_file())
        });
        if let Some(file) = home.filter(|f| !files.contains(f)) {
            files.push(file);
        }
        for file in files.iter().rev() {
            vars.read(file);
        }
        vars
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

    /// The value of `name`: the environment's, unless Cargo's
    /// configuration forces its own.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let config = self.config.get(name);
        if let Some((value, true)) = config {
            return Some(value.clone());
        }
        std::env::var(name)
            .ok()
            .or_else(|| config.map(|(value, _)| value.clone()))
    }

    /// The remote configuration.
    pub(crate) fn settings(&self) -> Result<Option<RemoteSettings>, RemoteConfigError> {
        RemoteSettings::from_vars(|name| self.get(name))
    }
}

/// `<dir>/.cargo/config.toml` (or the older `config`), if there is one.
fn config_file(dir: &Path) -> Option<PathBuf> {
    let cargo = dir.join(".cargo");
    [cargo.join("config.toml"), cargo.join("config")]
        .into_iter()
        .find(|f| f.is_file())
}

fn cargo_home() -> Option<PathBuf> {
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
            "[env]\nPCACHE_TEST_A = \"outer\"\nPCACHE_TEST_B = \"outer\"\n",
        )
        .unwrap();
        fs::write(
            inner.join("config.toml"),
            "[env]\nPCACHE_TEST_A = \"inner\"\nPATH = { value = \"forced\", force = true }\n\
             PCACHE_TEST_REL = { value = \"sub\", relative = true }\n",
        )
        .unwrap();
        let vars = Vars::cargo(&dir.path().join("ws"));
        assert_eq!(vars.get("PCACHE_TEST_A").as_deref(), Some("inner"));
        assert_eq!(vars.get("PCACHE_TEST_B").as_deref(), Some("outer"));
        // PATH is set in every environment; forcing overrides it.
        assert_eq!(vars.get("PATH").as_deref(), Some("forced"));
        assert_eq!(
            vars.get("PCACHE_TEST_REL").map(PathBuf::from),
            Some(dir.path().join("ws/sub"))
        );
        assert!(vars.warnings.is_empty());
    }

    #[test]
    fn an_unreadable_configuration_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        fs::write(dir.path().join(".cargo/config.toml"), "[env\n").unwrap();
        let vars = Vars::cargo(dir.path());
        assert_eq!(vars.warnings.len(), 1, "{:?}", vars.warnings);
        assert!(vars.warnings[0].contains("config.toml"));
    }
}
