//! pcache's configuration, in one register: every `PCACHE_*` variable and
//! every `[package.metadata.pcache]` / `[workspace.metadata.pcache]` key,
//! and the one rule for which value wins when two disagree. Builds and every
//! `cargo pcache` command read their settings through this module, so they
//! cannot disagree.
//!
//! **Precedence**, everywhere: a command-line flag, then an environment
//! variable (including Cargo's `[env]` table in `.cargo/config.toml`), then
//! package metadata, then workspace metadata, then the default. A value that
//! does not parse is reported (naming where it came from) and skipped: the
//! next source applies.
//!
//! ```
//! use pcache_core::config::{self, Env, Settings};
//!
//! let env = Env::from_pairs([("PCACHE_MAX_SIZE", "2GiB")]);
//! let workspace: Settings = toml::from_str("max-size = \"500MiB\"")?;
//! let mut problems = Vec::new();
//!
//! // The variable beats the workspace metadata…
//! let cap = config::max_size(None, &env, &workspace, &mut problems);
//! assert_eq!(cap, Some(2 << 30));
//! // …and a flag beats both.
//! assert_eq!(config::max_size(Some(1 << 30), &env, &workspace, &mut problems), Some(1 << 30));
//!
//! // A bad value is a problem, and the next source applies.
//! let env = Env::from_pairs([("PCACHE_MAX_SIZE", "lots")]);
//! assert_eq!(config::max_size(None, &env, &workspace, &mut problems), Some(500 << 20));
//! assert!(problems[0].contains("PCACHE_MAX_SIZE"));
//!
//! // Every setting is in the register, which `cargo pcache --help` prints.
//! assert!(config::REGISTER.iter().any(|s| s.var == Some("PCACHE_DIR")));
//! # Ok::<(), toml::de::Error>(())
//! ```

pub(crate) mod env;
mod register;

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use env::{Env, cargo_config_files, cargo_home};
pub use register::{REGISTER, Setting, Tables, register_text};

use crate::conventions::{parse_duration, parse_size};

/// `PCACHE`: `off` (or `0`, `false`) computes every step and writes
/// nothing; `verify` computes every step and compares it with the entry.
pub const PCACHE_VAR: &str = "PCACHE";
/// `PCACHE_DIR`: where the caches live instead of `<build dir>/pcache`.
pub const DIR_VAR: &str = "PCACHE_DIR";
/// `PCACHE_STATS`: `off` stops steps from recording statistics.
pub const STATS_VAR: &str = "PCACHE_STATS";
/// `PCACHE_MAX_SIZE`: the size cap of the pcache directory.
pub const MAX_SIZE_VAR: &str = "PCACHE_MAX_SIZE";
/// The remote's URL: `s3://bucket/prefix`, `redis://host:port/db`,
/// `webdav+http(s)://host/path` or `file:///dir`.
pub const REMOTE_VAR: &str = "PCACHE_REMOTE";
/// `read-write` (the default) or `read`.
pub const MODE_VAR: &str = "PCACHE_REMOTE_MODE";
/// `1` turns remote failures into build failures.
pub const REQUIRED_VAR: &str = "PCACHE_REMOTE_REQUIRED";
/// The `cargo-pcache` binary build scripts run to reach the remote, when
/// not the one on `PATH`.
pub const HELPER_VAR: &str = "PCACHE_REMOTE_HELPER";
/// `PCACHE_REMOTE_SIGNING_KEY`: `NAME:<base64 secret>`, the Ed25519 key
/// entries are signed with when pushed (a secret: set it only where entries
/// are pushed).
pub const SIGNING_KEY_VAR: &str = "PCACHE_REMOTE_SIGNING_KEY";
/// `PCACHE_REMOTE_SIGNING_KEY_FILE`: a file holding the signing key.
pub const SIGNING_KEY_FILE_VAR: &str = "PCACHE_REMOTE_SIGNING_KEY_FILE";
/// `PCACHE_REMOTE_TRUSTED_KEYS`: `NAME:<base64 public>,…`, the keys remote
/// objects must be signed with (not a secret).
pub const TRUSTED_KEYS_VAR: &str = "PCACHE_REMOTE_TRUSTED_KEYS";
/// `PCACHE_HOME`: the per-user store of dependencies' build-script runs.
pub const HOME_VAR: &str = "PCACHE_HOME";
/// `PCACHE_HOME_MAX_SIZE`: the per-user store's size cap.
pub const HOME_MAX_SIZE_VAR: &str = "PCACHE_HOME_MAX_SIZE";
/// `PCACHE_RUSTC_WRAPPER`: the rustc wrapper pcache's wrapper calls in turn
/// (sccache), and the one build scripts see as `RUSTC_WRAPPER`.
pub const RUSTC_WRAPPER_VAR: &str = "PCACHE_RUSTC_WRAPPER";
/// `PCACHE_BUILD_SCRIPTS`: which path packages' build scripts are cached
/// besides registry and git packages' (`all`, or names), and which packages'
/// are never (`!name`); comma-separated.
pub const BUILD_SCRIPTS_VAR: &str = "PCACHE_BUILD_SCRIPTS";
/// `PCACHE_BUILD_SCRIPT_MIN_TIME`: build-script runs shorter than this are
/// not stored.
pub const BUILD_SCRIPT_MIN_TIME_VAR: &str = "PCACHE_BUILD_SCRIPT_MIN_TIME";

/// The per-user store's size cap when none is set: 10 GiB.
pub const DEFAULT_HOME_MAX_SIZE: u64 = 10 << 30;
/// Build-script runs shorter than this are not stored, by default.
pub const DEFAULT_BUILD_SCRIPT_MIN_TIME: Duration = Duration::from_millis(100);

/// `PCACHE_TRACE`: `1` prints where each step's time went, phase by phase.
pub const TRACE_VAR: &str = "PCACHE_TRACE";

/// Cargo's colour setting, which `cargo pcache` honours under `--color`.
pub const TERM_COLOR_VAR: &str = "CARGO_TERM_COLOR";

/// What `PCACHE` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read and write the cache (the default; also `on`, `1`, `true`).
    On,
    /// `PCACHE=off` (or `0`, `false`): compute every step, touch nothing.
    Off,
    /// `PCACHE=verify`: compute every step and compare with the stored value.
    Verify,
}

impl Mode {
    /// Parses the value of `PCACHE` (unset is [`Mode::On`]). An unknown
    /// value is returned as the error, trimmed and lowercased.
    pub fn parse(value: Option<&str>) -> Result<Mode, String> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "on" | "1" | "true") => Ok(Mode::On),
            Some("off" | "0" | "false") => Ok(Mode::Off),
            Some("verify") => Ok(Mode::Verify),
            Some(other) => Err(other.to_owned()),
        }
    }
}

/// `[package.metadata.pcache]` (and `[workspace.metadata.pcache]`), as
/// both pcache-build (through `toml`) and `cargo pcache` (through
/// `cargo metadata`'s JSON) read it.
///
/// ```
/// let settings: pcache_core::config::Settings =
///     toml::from_str("expiry = \"30d\"\nmax-size = \"2GiB\"")?;
/// assert_eq!(settings.expiry, Some(std::time::Duration::from_secs(30 * 86_400)));
/// assert_eq!(settings.max_size, Some(2 << 30));
/// assert!(toml::from_str::<pcache_core::config::Settings>("expiry = \"soon\"").is_err());
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Settings {
    /// Entries older than this are expired: a duration such as `"30d"`, or
    /// a number of seconds.
    #[serde(default, deserialize_with = "de_duration")]
    pub expiry: Option<Duration>,
    /// The size cap of the whole pcache directory: `"500MiB"`, `"2GiB"`, or
    /// a number of bytes (workspace metadata only).
    #[serde(default, deserialize_with = "de_size")]
    pub max_size: Option<u64>,
    /// Path packages whose build scripts are cached besides registry and git
    /// packages', and packages whose are never (workspace metadata only).
    #[serde(default)]
    pub build_scripts: Option<BuildScripts>,
}

/// Which build scripts pcache's wrapper caches besides registry and git
/// packages' (always, unless skipped): `"all"` path packages' or the named
/// ones', and never those of the packages named with a `!`.
///
/// ```
/// use pcache_core::config::{BuildScripts, Settings};
/// let all: Settings = toml::from_str("build-scripts = \"all\"")?;
/// assert!(all.build_scripts.unwrap().includes("any-path-package"));
/// let named: Settings = toml::from_str("build-scripts = [\"my-sys\", \"!flaky-sys\"]")?;
/// let named = named.build_scripts.unwrap();
/// assert!(named.includes("my-sys") && !named.includes("other"));
/// assert!(named.skips("flaky-sys"));
/// assert_eq!(BuildScripts::parse("all, !flaky-sys"), BuildScripts::parse("!flaky-sys,all"));
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildScripts {
    /// Every path package's.
    pub all: bool,
    /// These path packages'.
    pub named: Vec<String>,
    /// Never these packages', registry and git ones included.
    pub skipped: Vec<String>,
}

impl BuildScripts {
    /// Whether a path package's build script is cached.
    pub fn includes(&self, package: &str) -> bool {
        !self.skips(package) && (self.all || self.named.iter().any(|n| n == package))
    }

    /// Whether `package`'s build script is never cached.
    pub fn skips(&self, package: &str) -> bool {
        self.skipped.iter().any(|n| n == package)
    }

    /// Parses `PCACHE_BUILD_SCRIPTS`: `all`, names and `!names`, separated
    /// by commas.
    pub fn parse(text: &str) -> BuildScripts {
        BuildScripts::from_words(text.split(',').map(str::trim))
    }

    fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> BuildScripts {
        let mut scripts = BuildScripts::default();
        for word in words.into_iter().filter(|w| !w.is_empty()) {
            if word.eq_ignore_ascii_case("all") {
                scripts.all = true;
            } else if let Some(skipped) = word.strip_prefix('!') {
                scripts.skipped.push(skipped.trim().to_owned());
            } else {
                scripts.named.push(word.to_owned());
            }
        }
        scripts.named.sort();
        scripts.skipped.sort();
        scripts
    }
}

impl<'de> Deserialize<'de> for BuildScripts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BuildScripts, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Word(String),
            Names(Vec<String>),
        }
        match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "build-scripts must be \"all\" or a list of package names (\"!name\" to skip one)",
            )
        })? {
            Form::Word(word) if word == "all" => Ok(BuildScripts::from_words(["all"])),
            Form::Word(word) => Err(serde::de::Error::custom(format!(
                "build-scripts must be \"all\" or a list of package names, not `{word}`"
            ))),
            Form::Names(names) => Ok(BuildScripts::from_words(names.iter().map(String::as_str))),
        }
    }
}

/// A duration or size written as text, or as a bare number.
#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrNumber {
    Text(String),
    Number(u64),
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match TextOrNumber::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expiry must be a duration such as \"30d\" or a number of seconds")
    })? {
        TextOrNumber::Text(text) => parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
        TextOrNumber::Number(secs) => Ok(Some(Duration::from_secs(secs))),
    }
}

fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match TextOrNumber::deserialize(d).map_err(|_| {
        serde::de::Error::custom("max-size must be a size such as \"2GiB\" or a number of bytes")
    })? {
        TextOrNumber::Text(text) => parse_size(&text)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid max-size `{text}`: {e}"))),
        TextOrNumber::Number(bytes) => Ok(Some(bytes)),
    }
}

/// The first source that sets a value, in precedence order. A source whose
/// value does not parse is reported in `problems` and skipped.
fn first<T>(
    sources: impl IntoIterator<Item = Option<Result<T, String>>>,
    problems: &mut Vec<String>,
) -> Option<T> {
    for source in sources.into_iter().flatten() {
        match source {
            Ok(value) => return Some(value),
            Err(problem) => problems.push(problem),
        }
    }
    None
}

/// The size cap of the pcache directory: `flag` (`gc --max-size`), else
/// `PCACHE_MAX_SIZE`, else the workspace's `max-size`, else none.
pub fn max_size(
    flag: Option<u64>,
    env: &Env,
    workspace: &Settings,
    problems: &mut Vec<String>,
) -> Option<u64> {
    let var = env
        .get(MAX_SIZE_VAR)
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse_size(&v).map_err(|e| format!("ignoring {MAX_SIZE_VAR}: {e}")));
    first([flag.map(Ok), var, workspace.max_size.map(Ok)], problems)
}

/// How long a package's entries live: `flag` (`flush --expiry`), else the
/// package's `expiry`, else the workspace's, else forever.
pub fn expiry(
    flag: Option<Duration>,
    package: &Settings,
    workspace: &Settings,
) -> Option<Duration> {
    flag.or(package.expiry).or(workspace.expiry)
}

/// `PCACHE`'s mode; an unknown value is a problem, and caching goes on.
pub fn mode(env: &Env, problems: &mut Vec<String>) -> Mode {
    Mode::parse(env.get(PCACHE_VAR).as_deref()).unwrap_or_else(|other| {
        problems.push(format!(
            "unknown {PCACHE_VAR} value `{other}` (expected off, 0, false or verify); caching as usual"
        ));
        Mode::On
    })
}

/// Whether steps record statistics (`PCACHE_STATS=off` says no).
pub fn stats(env: &Env) -> bool {
    Mode::parse(env.get(STATS_VAR).as_deref()) != Ok(Mode::Off)
}

/// The per-user store: `PCACHE_HOME`, else `pcache` in the platform's
/// cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows); `None` when
/// there is no home directory to put it in.
pub fn home(env: &Env) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(dir) = env.get_os(HOME_VAR).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let cache = if cfg!(windows) {
        env.get_os("LOCALAPPDATA").and_then(absolute)
    } else if cfg!(target_os = "macos") {
        env.get_os("HOME")
            .and_then(absolute)
            .map(|h| h.join("Library/Caches"))
    } else {
        env.get_os("XDG_CACHE_HOME").and_then(absolute).or_else(|| {
            env.get_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".cache"))
        })
    };
    cache.map(|dir| dir.join("pcache"))
}

/// The per-user store's size cap: `flag` (`gc --max-size`), else
/// `PCACHE_HOME_MAX_SIZE`, else 10 GiB.
pub fn home_max_size(flag: Option<u64>, env: &Env, problems: &mut Vec<String>) -> u64 {
    let var = env
        .get(HOME_MAX_SIZE_VAR)
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse_size(&v).map_err(|e| format!("ignoring {HOME_MAX_SIZE_VAR}: {e}")));
    first([flag.map(Ok), var], problems).unwrap_or(DEFAULT_HOME_MAX_SIZE)
}

/// Whether steps print their phases' times: `PCACHE_TRACE` set to `1`,
/// `on` or `true`.
pub fn trace(env: &Env) -> bool {
    env.get(TRACE_VAR)
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "on" | "true"))
}

/// Which build scripts are cached besides registry and git packages', and
/// which never: `PCACHE_BUILD_SCRIPTS`, else the workspace's
/// `build-scripts`, else none.
pub fn build_scripts(env: &Env, workspace: &Settings) -> Option<BuildScripts> {
    env.get(BUILD_SCRIPTS_VAR)
        .filter(|v| !v.trim().is_empty())
        .map(|v| BuildScripts::parse(&v))
        .or_else(|| workspace.build_scripts.clone())
}

/// Build-script runs shorter than this are not stored:
/// `PCACHE_BUILD_SCRIPT_MIN_TIME`, else 100 ms.
pub fn build_script_min_time(env: &Env, problems: &mut Vec<String>) -> Duration {
    let var = env
        .get(BUILD_SCRIPT_MIN_TIME_VAR)
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            parse_duration(&v).map_err(|e| format!("ignoring {BUILD_SCRIPT_MIN_TIME_VAR}: {e}"))
        });
    first([var], problems).unwrap_or(DEFAULT_BUILD_SCRIPT_MIN_TIME)
}

/// The rustc wrapper pcache's wrapper calls in turn, and build scripts see
/// as `RUSTC_WRAPPER`: `PCACHE_RUSTC_WRAPPER`, when set and not empty.
pub fn chained_wrapper(env: &Env) -> Option<std::ffi::OsString> {
    env.get_os(RUSTC_WRAPPER_VAR).filter(|v| !v.is_empty())
}

/// `CARGO_TERM_COLOR` (or Cargo's `term.color`) when `--color` is not
/// given: `auto`, `always` or `never`; anything else is a problem, and
/// `auto` applies.
pub fn term_color(env: &Env, problems: &mut Vec<String>) -> Option<&'static str> {
    let value = env.term_color()?;
    match value.trim().to_ascii_lowercase().as_str() {
        "auto" => Some("auto"),
        "always" => Some("always"),
        "never" => Some("never"),
        other => {
            problems.push(format!(
                "ignoring {TERM_COLOR_VAR}=`{other}` (expected auto, always or never)"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcache_modes() {
        assert_eq!(Mode::parse(None), Ok(Mode::On));
        for off in ["off", "0", "false", "OFF", " False "] {
            assert_eq!(Mode::parse(Some(off)), Ok(Mode::Off), "{off}");
        }
        assert_eq!(Mode::parse(Some("verify")), Ok(Mode::Verify));
        assert_eq!(Mode::parse(Some("sometimes")), Err("sometimes".to_owned()));
    }

    #[test]
    fn settings_accept_text_and_numbers_and_reject_the_rest() {
        let s: Settings = toml::from_str("expiry = 90\nmax-size = 1024").unwrap();
        assert_eq!(s.expiry, Some(Duration::from_secs(90)));
        assert_eq!(s.max_size, Some(1024));
        let e = toml::from_str::<Settings>("expiry = true").unwrap_err();
        assert!(e.message().contains("30d"), "{e}");
        let e = toml::from_str::<Settings>("max-size = \"huge\"").unwrap_err();
        assert!(e.message().contains("huge"), "{e}");
        assert_eq!(toml::from_str::<Settings>("").unwrap(), Settings::default());
    }

    #[test]
    fn flag_beats_variable_beats_package_beats_workspace_beats_default() {
        let workspace = Settings {
            expiry: Some(Duration::from_secs(4)),
            max_size: Some(400),
            build_scripts: None,
        };
        let package = Settings {
            expiry: Some(Duration::from_secs(3)),
            ..Settings::default()
        };
        let mut problems = Vec::new();
        let none = Env::from_pairs::<[(&str, &str); 0], _, _>([]);
        let set = Env::from_pairs([(MAX_SIZE_VAR, "200")]);
        assert_eq!(
            max_size(Some(100), &set, &workspace, &mut problems),
            Some(100)
        );
        assert_eq!(max_size(None, &set, &workspace, &mut problems), Some(200));
        assert_eq!(max_size(None, &none, &workspace, &mut problems), Some(400));
        assert_eq!(
            max_size(None, &none, &Settings::default(), &mut problems),
            None
        );
        let secs = Duration::from_secs;
        assert_eq!(expiry(Some(secs(1)), &package, &workspace), Some(secs(1)));
        assert_eq!(expiry(None, &package, &workspace), Some(secs(3)));
        assert_eq!(
            expiry(None, &Settings::default(), &workspace),
            Some(secs(4))
        );
        assert_eq!(
            expiry(None, &Settings::default(), &Settings::default()),
            None
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_bad_value_is_a_problem_and_the_next_source_applies() {
        let workspace = Settings {
            max_size: Some(400),
            ..Settings::default()
        };
        let mut problems = Vec::new();
        let env = Env::from_pairs([
            (MAX_SIZE_VAR, "lots"),
            (PCACHE_VAR, "sometimes"),
            (TERM_COLOR_VAR, "purple"),
        ]);
        assert_eq!(max_size(None, &env, &workspace, &mut problems), Some(400));
        assert_eq!(mode(&env, &mut problems), Mode::On);
        assert_eq!(term_color(&env, &mut problems), None);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("PCACHE_MAX_SIZE") && problems[0].contains("lots"));
        assert!(problems[1].contains("sometimes"));
        assert!(problems[2].contains("purple"));
    }

    #[test]
    fn the_per_user_store_and_build_script_settings() {
        let env = Env::from_pairs([("HOME", "/home/u")]);
        if cfg!(target_os = "linux") {
            assert_eq!(
                home(&env),
                Some(std::path::PathBuf::from("/home/u/.cache/pcache"))
            );
            let xdg = Env::from_pairs([("HOME", "/home/u"), ("XDG_CACHE_HOME", "/c")]);
            assert_eq!(home(&xdg), Some(std::path::PathBuf::from("/c/pcache")));
            let relative = Env::from_pairs([("HOME", "/home/u"), ("XDG_CACHE_HOME", "c")]);
            assert_eq!(
                home(&relative),
                Some(std::path::PathBuf::from("/home/u/.cache/pcache"))
            );
        }
        let set = Env::from_pairs([
            (HOME_VAR, "/p"),
            (HOME_MAX_SIZE_VAR, "1GiB"),
            (BUILD_SCRIPT_MIN_TIME_VAR, "2s"),
            (BUILD_SCRIPTS_VAR, "a, b"),
            (RUSTC_WRAPPER_VAR, "sccache"),
        ]);
        let mut problems = Vec::new();
        assert_eq!(home(&set), Some(std::path::PathBuf::from("/p")));
        assert_eq!(home_max_size(None, &set, &mut problems), 1 << 30);
        assert_eq!(home_max_size(Some(5), &set, &mut problems), 5);
        assert_eq!(
            build_script_min_time(&set, &mut problems),
            Duration::from_secs(2)
        );
        let scripts = build_scripts(&set, &Settings::default()).unwrap();
        assert!(scripts.includes("b") && !scripts.includes("c"));
        assert_eq!(
            chained_wrapper(&set).as_deref(),
            Some(std::ffi::OsStr::new("sccache"))
        );
        let none = Env::from_pairs([(HOME_MAX_SIZE_VAR, "lots")]);
        assert_eq!(
            home_max_size(None, &none, &mut problems),
            DEFAULT_HOME_MAX_SIZE
        );
        assert_eq!(
            build_script_min_time(&none, &mut problems),
            DEFAULT_BUILD_SCRIPT_MIN_TIME
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        let workspace: Settings = toml::from_str("build-scripts = \"all\"").unwrap();
        assert!(build_scripts(&none, &workspace).unwrap().all);
        let skip = Env::from_pairs([(BUILD_SCRIPTS_VAR, "!zstd-sys")]);
        let scripts = build_scripts(&skip, &workspace).unwrap();
        assert!(scripts.skips("zstd-sys") && !scripts.includes("a"));
        assert!(toml::from_str::<Settings>("build-scripts = \"some\"").is_err());
    }

    #[test]
    fn the_register_text_lists_every_variable_and_key() {
        let table = register_text();
        for setting in REGISTER {
            for name in setting.var.into_iter().chain(setting.key) {
                assert!(table.contains(name), "{name} missing:\n{table}");
            }
        }
        assert_eq!(table.lines().count(), 2 * REGISTER.len());
    }
}
