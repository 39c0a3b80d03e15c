//! The one place that reads environment variables: Cargo's, for the build
//! script, and pcache's own through `pcache_core::config`.

use std::ffi::OsString;
use std::path::PathBuf;

pub(crate) use pcache_core::config::Mode;
use pcache_core::config::{self, Env};

/// The variables Cargo sets for build scripts, and where pcache's settings
/// are read from.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildEnv {
    pub(crate) out_dir: Option<PathBuf>,
    pub(crate) manifest_dir: Option<PathBuf>,
    pub(crate) package: Option<String>,
    pub(crate) target: Option<String>,
    /// pcache's settings (`PCACHE_*`), as `pcache_core::config` reads them.
    pub(crate) vars: Env,
}

impl BuildEnv {
    pub(crate) fn from_process() -> BuildEnv {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        BuildEnv {
            out_dir: path("OUT_DIR"),
            manifest_dir: path("CARGO_MANIFEST_DIR"),
            package: var("CARGO_PKG_NAME"),
            target: var("TARGET"),
            // Cargo has applied `[env]` already.
            vars: Env::process(),
        }
    }

    /// `PCACHE_DIR`, when set and not empty.
    pub(crate) fn pcache_dir(&self) -> Option<OsString> {
        self.vars.get_os(config::DIR_VAR).filter(|v| !v.is_empty())
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
