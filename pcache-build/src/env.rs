//! The one place that reads environment variables.

use std::ffi::OsString;
use std::path::PathBuf;

pub(crate) use pcache_core::conventions::Mode;
use pcache_core::remote;

/// The variables Cargo sets for build scripts, and pcache's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildEnv {
    pub(crate) out_dir: Option<PathBuf>,
    pub(crate) manifest_dir: Option<PathBuf>,
    pub(crate) package: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) pcache_dir: Option<OsString>,
    pub(crate) pcache: Option<String>,
    /// `PCACHE_MAX_SIZE`.
    pub(crate) max_size: Option<String>,
    /// Whether steps record statistics (`PCACHE_STATS=off` says no).
    pub(crate) stats: bool,
    /// `PCACHE_REMOTE`, when set and not empty.
    pub(crate) remote: Option<String>,
    /// `PCACHE_REMOTE_MODE`.
    pub(crate) remote_mode: Option<String>,
    /// `PCACHE_REMOTE_REQUIRED`.
    pub(crate) remote_required: Option<String>,
    /// `PCACHE_REMOTE_HELPER`.
    pub(crate) remote_helper: Option<PathBuf>,
}

impl BuildEnv {
    pub(crate) fn from_process() -> BuildEnv {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let text = |name: &str| std::env::var_os(name).map(lossy);
        BuildEnv {
            out_dir: path("OUT_DIR"),
            manifest_dir: path("CARGO_MANIFEST_DIR"),
            package: text("CARGO_PKG_NAME"),
            target: text("TARGET"),
            pcache_dir: std::env::var_os("PCACHE_DIR"),
            pcache: text("PCACHE"),
            max_size: text("PCACHE_MAX_SIZE").filter(|v| !v.trim().is_empty()),
            stats: Mode::parse(text("PCACHE_STATS").as_deref()) != Ok(Mode::Off),
            remote: text(remote::REMOTE_VAR).filter(|v| !v.trim().is_empty()),
            remote_mode: text(remote::MODE_VAR),
            remote_required: text(remote::REQUIRED_VAR),
            remote_helper: path(remote::HELPER_VAR),
        }
    }
}

/// An environment variable's value, for the [`env`](crate::env) input helper.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var_os(name).map(lossy)
}

fn lossy(value: OsString) -> String {
    value
        .into_string()
        .unwrap_or_else(|v| v.to_string_lossy().into_owned())
}
