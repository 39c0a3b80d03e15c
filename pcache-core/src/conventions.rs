//! The rules pcache-build and `cargo pcache` must apply identically: where
//! caches live, how durations and sizes are written, and how names are
//! shown. Each is written here once. (What configures them is the
//! [`config`](crate::config) module's.)
//!
//! ```
//! use std::path::Path;
//! use std::time::Duration;
//! use pcache_core::conventions;
//!
//! // `<build dir>/pcache/<package>/<short id of the cache name>`
//! let root = conventions::pcache_root(None, Path::new("/w/target"));
//! let dir = conventions::cache_dir(&root, "my-sys", "bindings");
//! assert!(dir.starts_with("/w/target/pcache/my-sys"));
//!
//! assert_eq!(conventions::parse_duration("1h30m")?, Duration::from_secs(5400));
//! assert_eq!(conventions::parse_size("2GiB"), Ok(2 << 30));
//! assert_eq!(conventions::format_size(1536), "1.5 KiB");
//! # Ok::<(), conventions::ParseDurationError>(())
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory under Cargo's build directory that holds every cache.
pub const PCACHE_DIR_NAME: &str = "pcache";

/// The directory holding the per-package cache directories: `$PCACHE_DIR`
/// when set and not empty, else `<build_dir>/pcache`.
pub fn pcache_root(pcache_dir: Option<&OsStr>, build_dir: &Path) -> PathBuf {
    match pcache_dir.filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => build_dir.join(PCACHE_DIR_NAME),
    }
}

/// Whether a name directly under the pcache root is pcache's own (digest
/// records, statistics, locks) rather than a package's directory: names
/// starting with a dot, which no package directory has.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with('.')
}

/// Where pcache-build remembers the digests of `file()` and `dir()` inputs.
pub fn inputs_dir(root: &Path) -> PathBuf {
    root.join(".inputs")
}

/// The directory of one cache: `<root>/<package>/<short id of the name>`.
/// Any name is valid: the directory is named by its hash.
pub fn cache_dir(root: &Path, package: &str, name: &str) -> PathBuf {
    root.join(package_dir_name(package))
        .join(crate::short_id(name))
}

/// A package's directory name. Package names are `[A-Za-z0-9_-]` on
/// crates.io, but nothing stops a local manifest from being odd: keep only
/// what is safe in a path.
pub fn package_dir_name(package: &str) -> String {
    let cleaned: String = package
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".to_owned()
    } else {
        cleaned
    }
}

/// The error for a string that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration `{input}`: {reason} (expected seconds such as `90`, or units such as `90s`, `15m`, `12h`, `7d`, `2w`, `1h30m`)"
)]
pub struct ParseDurationError {
    input: String,
    reason: String,
}

/// Parses a duration: a bare number of seconds (`90`), or numbers with units
/// (`s`, `m`, `h`, `d`, `w`, and the other units `humantime` accepts),
/// concatenated (`1h30m`).
///
/// ```
/// use std::time::Duration;
/// use pcache_core::conventions::parse_duration;
///
/// assert_eq!(parse_duration("90")?, Duration::from_secs(90));
/// assert_eq!(parse_duration("2w")?, Duration::from_secs(14 * 86_400));
/// assert!(parse_duration("soon").is_err());
/// # Ok::<(), pcache_core::conventions::ParseDurationError>(())
/// ```
///
/// # Errors
///
/// Fails on an empty string, an unknown unit or a number that overflows.
pub fn parse_duration(input: &str) -> Result<Duration, ParseDurationError> {
    let s = input.trim();
    let err = |reason: String| ParseDurationError {
        input: input.to_owned(),
        reason,
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| err(e.to_string()));
    }
    humantime::parse_duration(s).map_err(|e| err(e.to_string()))
}

/// Formats a duration compactly in its two largest adjacent units: `45s`,
/// `15m`, `1h30m`, `7d`, `2w3d`; under a second, `250ms`.
///
/// ```
/// use std::time::Duration;
/// use pcache_core::conventions::format_duration;
/// assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
/// assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "4w2d");
/// ```
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(u64, &str); 5] = [
        (604_800, "w"),
        (86_400, "d"),
        (3_600, "h"),
        (60, "m"),
        (1, "s"),
    ];
    let mut secs = d.as_secs();
    if secs == 0 {
        return if d.is_zero() {
            "0s".to_owned()
        } else {
            format!("{}ms", d.as_millis())
        };
    }
    let mut out = String::new();
    let mut parts = 0;
    for (size, unit) in UNITS {
        if secs >= size && parts < 2 {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
            parts += 1;
        } else if parts > 0 {
            // Only adjacent units: `1w` not `1w0d5h`.
            parts = 2;
        }
    }
    out
}

/// The error for a string that is not a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSizeError(String);

impl fmt::Display for ParseSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid size `{}` (expected bytes such as `1000000`, or units such as `500MiB`, `2GiB`, `1.5G`)",
            self.0
        )
    }
}

impl std::error::Error for ParseSizeError {}

/// Parses a size: a number of bytes, or a number with a unit. Binary units
/// (`KiB`, `MiB`, `GiB`, `TiB`) and their short forms (`K`, `M`, `G`, `T`,
/// also `KB`, `MB`…) all count in powers of 1024, as disk usage tools do.
///
/// ```
/// use pcache_core::conventions::parse_size;
/// assert_eq!(parse_size("500MiB"), Ok(500 << 20));
/// assert_eq!(parse_size("1.5G"), Ok(3 << 29));
/// assert_eq!(parse_size("4096"), Ok(4096));
/// assert!(parse_size("lots").is_err());
/// ```
///
/// # Errors
///
/// Fails on anything else, or a size over 16 EiB.
pub fn parse_size(input: &str) -> Result<u64, ParseSizeError> {
    let err = || ParseSizeError(input.to_owned());
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(err()),
    };
    if number.is_empty() {
        return Err(err());
    }
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(1u64 << shift).ok_or_else(err);
    }
    let value: f64 = number.parse().map_err(|_| err())?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes.round() as u64)
}

/// Formats a size in binary units, said so: `512 B`, `1.5 KiB`, `3.0 MiB`.
///
/// ```
/// use pcache_core::conventions::format_size;
/// assert_eq!(format_size(1536), "1.5 KiB");
/// assert_eq!(format_size(3 << 20), "3.0 MiB");
/// ```
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A cache name as shown in messages and tables: one line (control
/// characters become spaces), at most `max_chars` characters and an
/// ellipsis, and `""` for the empty name.
///
/// ```
/// use pcache_core::conventions::display_name;
/// assert_eq!(display_name("bindings\nv2", 80), "bindings v2");
/// assert_eq!(display_name("", 80), "\"\"");
/// assert_eq!(display_name("abcdef", 3), "abc…");
/// ```
pub fn display_name(name: &str, max_chars: usize) -> String {
    if name.is_empty() {
        return "\"\"".to_owned();
    }
    let mut shown: String = name
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if name.chars().nth(max_chars).is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_duration() {
        let cases = [
            ("90", 90),
            ("90s", 90),
            ("15m", 900),
            ("12h", 43_200),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1h30m", 5_400),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_garbage_durations_and_names_the_forms() {
        for bad in ["", "-5", "5x", "h", "99999999999999999999999"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("1h30m"), "{err}");
        }
    }

    #[test]
    fn sizes_parse_and_print_in_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1024), "1.0 KiB");
        assert_eq!(format_size(5 << 30), "5.0 GiB");
        for (text, bytes) in [
            ("0", 0),
            ("10B", 10),
            ("1k", 1024),
            ("500MiB", 500 << 20),
            ("2 GiB", 2 << 30),
            ("1TB", 1 << 40),
            ("0.5M", 512 << 10),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "MiB", "-1", "1.2.3G", "5 parsecs", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip_through_parse() {
        for secs in [1, 59, 60, 90, 3_600, 5_400, 86_400, 2_592_000] {
            let d = Duration::from_secs(secs);
            let text = format_duration(d);
            assert!(parse_duration(&text).unwrap() <= d, "{text}");
        }
    }

    #[test]
    fn any_cache_name_stays_inside_the_package_dir() {
        let root = Path::new("/t/pcache");
        for name in [
            "",
            "../../x",
            "/etc/passwd",
            "🦀",
            &"n".repeat(10_000),
            "a\0b",
        ] {
            let dir = cache_dir(root, "pkg", name);
            assert_eq!(dir.parent(), Some(root.join("pkg").as_path()), "{name:?}");
            assert!(dir.file_name().unwrap().len() < 40);
        }
        assert_eq!(
            cache_dir(root, "../evil", "x").parent(),
            Some(root.join("___evil").as_path())
        );
    }

    #[test]
    fn pcache_dir_wins_unless_empty() {
        let build = Path::new("/w/target");
        assert_eq!(pcache_root(None, build), Path::new("/w/target/pcache"));
        assert_eq!(
            pcache_root(Some(OsStr::new("")), build),
            Path::new("/w/target/pcache")
        );
        assert_eq!(
            pcache_root(Some(OsStr::new("/shared")), build),
            Path::new("/shared")
        );
    }
}
