//! The register: every setting, its variable, metadata key and flag, its
//! default and what it does — what `cargo pcache --help` prints and the
//! README's table mirrors.

use super::{
    BUILD_SCRIPT_MIN_TIME_VAR, BUILD_SCRIPTS_VAR, DIR_VAR, HELPER_VAR, HOME_MAX_SIZE_VAR, HOME_VAR,
    MAX_SIZE_VAR, MODE_VAR, PCACHE_VAR, REMOTE_VAR, REQUIRED_VAR, RUSTC_WRAPPER_VAR,
    SIGNING_KEY_FILE_VAR, SIGNING_KEY_VAR, STATS_VAR, TERM_COLOR_VAR, TRACE_VAR, TRUSTED_KEYS_VAR,
};

/// Which metadata tables a key may appear in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// Neither: the setting is a variable (or a flag) only.
    None,
    /// `[package.metadata.pcache]` only.
    Package,
    /// `[workspace.metadata.pcache]` only.
    Workspace,
    /// Both; the package's value beats the workspace's.
    Both,
}

/// One setting of the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// Its environment variable, if it has one.
    pub var: Option<&'static str>,
    /// Its metadata key, if it has one.
    pub key: Option<&'static str>,
    /// The metadata tables the key may appear in.
    pub tables: Tables,
    /// The `cargo pcache` flag that sets it, and for which commands.
    pub flag: Option<&'static str>,
    /// What applies when nothing sets it.
    pub default: &'static str,
    /// What it does, in a line.
    pub summary: &'static str,
}

const fn var(name: &'static str, default: &'static str, summary: &'static str) -> Setting {
    Setting {
        var: Some(name),
        key: None,
        tables: Tables::None,
        flag: None,
        default,
        summary,
    }
}

/// Every setting pcache reads, in the order the documentation lists them.
pub const REGISTER: &[Setting] = &[
    var(
        PCACHE_VAR,
        "on",
        "off|0|false: compute every step, write nothing; verify: compute and compare",
    ),
    var(
        DIR_VAR,
        "<build dir>/pcache",
        "where the caches live (use an absolute path, or [env] relative = true)",
    ),
    var(STATS_VAR, "on", "off: steps record no statistics"),
    var(
        TRACE_VAR,
        "off",
        "1: each step prints where its time went, phase by phase, to stderr",
    ),
    Setting {
        var: Some(MAX_SIZE_VAR),
        key: Some("max-size"),
        tables: Tables::Workspace,
        flag: Some("gc --max-size"),
        default: "none",
        summary: "size cap of the pcache directory: 500MiB, 2GiB, or bytes",
    },
    Setting {
        var: None,
        key: Some("expiry"),
        tables: Tables::Both,
        flag: Some("flush --expiry"),
        default: "none",
        summary: "entries older than this are misses: 90, 15m, 12h, 30d, 2w",
    },
    var(
        REMOTE_VAR,
        "none",
        "the remote cache: s3://, redis://, webdav+http(s)://, file://",
    ),
    var(
        MODE_VAR,
        "read-write",
        "read: use the remote without writing to it",
    ),
    var(REQUIRED_VAR, "0", "1: remote failures fail the build"),
    var(
        HELPER_VAR,
        "cargo-pcache on PATH",
        "the cargo-pcache binary build scripts run to reach the remote",
    ),
    var(
        TRUSTED_KEYS_VAR,
        "none (the remote is unauthenticated)",
        "NAME:<base64 public>,…: remote objects not signed by one of these keys are refused",
    ),
    var(
        SIGNING_KEY_VAR,
        "none",
        "NAME:<base64 secret>: sign what is pushed (a secret: only where entries are pushed)",
    ),
    var(
        SIGNING_KEY_FILE_VAR,
        "none",
        "a file holding the signing key, instead of the variable",
    ),
    var(
        HOME_VAR,
        "~/.cache/pcache",
        "the per-user store of dependencies' build-script runs (the platform cache dir)",
    ),
    var(HOME_MAX_SIZE_VAR, "10GiB", "size cap of the per-user store"),
    Setting {
        var: Some(BUILD_SCRIPTS_VAR),
        key: Some("build-scripts"),
        tables: Tables::Workspace,
        flag: None,
        default: "registry and git packages",
        summary: "path packages whose build scripts are cached too (\"all\", or names), and \"!name\" for \
                  packages never cached (a registry package: in the variable)",
    },
    var(
        BUILD_SCRIPT_MIN_TIME_VAR,
        "100ms",
        "build-script runs shorter than this are not stored",
    ),
    var(
        RUSTC_WRAPPER_VAR,
        "none",
        "the rustc wrapper pcache's wrapper calls in turn (sccache); `cargo pcache enable` sets it",
    ),
    Setting {
        var: Some(TERM_COLOR_VAR),
        key: None,
        tables: Tables::None,
        flag: Some("--color"),
        default: "auto",
        summary: "cargo pcache's colours (also Cargo's term.color; NO_COLOR with auto)",
    },
];

/// The register as text for `--help`: each setting on a line of its names
/// (variable, metadata key, flag) and default, then what it does, indented.
pub fn register_text() -> String {
    let mut text = String::new();
    for s in REGISTER {
        let mut names: Vec<String> = s.var.iter().map(|v| (*v).to_owned()).collect();
        if let Some(key) = s.key {
            names.push(match s.tables {
                Tables::Package => format!("[package.metadata.pcache] {key}"),
                Tables::Workspace => format!("[workspace.metadata.pcache] {key}"),
                Tables::Both | Tables::None => format!("[package/workspace.metadata.pcache] {key}"),
            });
        }
        if let Some(flag) = s.flag {
            names.push(flag.to_owned());
        }
        text.push_str(&format!(
            "  {} (default: {})\n      {}\n",
            names.join(", "),
            s.default,
            s.summary
        ));
    }
    text
}
