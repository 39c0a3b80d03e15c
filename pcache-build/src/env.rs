//! The one place that reads environment variables.

use std::ffi::OsString;
use std::path::PathBuf;

/// What `PCACHE` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Read and write the cache (the default).
    On,
    /// `PCACHE=off|0|false`: compute every step, touch nothing.
    Off,
    /// `PCACHE=verify`: compute every step and compare with the stored value.
    Verify,
}

impl Mode {
    /// Parses `PCACHE`; an unknown value is returned as the error.
    pub(crate) fn parse(value: Option<&str>) -> Result<Mode, String> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "on" | "1" | "true") => Ok(Mode::On),
            Some("off" | "0" | "false") => Ok(Mode::Off),
            Some("verify") => Ok(Mode::Verify),
            Some(other) => Err(other.to_owned()),
        }
    }
}

/// The variables Cargo sets for build scripts, and pcache's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildEnv {
    pub(crate) out_dir: Option<PathBuf>,
    pub(crate) manifest_dir: Option<PathBuf>,
    pub(crate) package: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) pcache_dir: Option<PathBuf>,
    pub(crate) pcache: Option<String>,
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
            pcache_dir: path("PCACHE_DIR"),
            pcache: text("PCACHE"),
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
}
