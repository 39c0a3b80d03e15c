//! Human durations (`90`, `90s`, `15m`, `12h`, `7d`, `2w`, `1h30m`) and sizes.

use std::time::Duration;

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
/// use pcache_core::parse_duration;
///
/// assert_eq!(parse_duration("90")?, Duration::from_secs(90));
/// assert_eq!(parse_duration("1h30m")?, Duration::from_secs(5400));
/// assert_eq!(parse_duration("2w")?, Duration::from_secs(14 * 86_400));
/// assert!(parse_duration("soon").is_err());
/// # Ok::<(), pcache_core::ParseDurationError>(())
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

/// Formats a duration compactly in its two largest units: `45s`, `15m`,
/// `1h30m`, `7d`, `2w3d`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(pcache_core::format_duration(Duration::from_secs(5400)), "1h30m");
/// assert_eq!(pcache_core::format_duration(Duration::from_secs(30 * 86_400)), "4w2d");
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

/// Formats a size in binary units, said so: `512 B`, `1.5 KiB`, `3.0 MiB`.
///
/// ```
/// assert_eq!(pcache_core::format_size(1536), "1.5 KiB");
/// assert_eq!(pcache_core::format_size(3 << 20), "3.0 MiB");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
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
    fn rejects_garbage_and_names_the_forms() {
        for bad in ["", "-5", "5x", "h", "99999999999999999999999"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("1h30m"), "{err}");
        }
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1024), "1.0 KiB");
        assert_eq!(format_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn formats_round_trip_through_parse() {
        for secs in [1, 59, 60, 90, 3_600, 5_400, 86_400, 2_592_000] {
            let d = Duration::from_secs(secs);
            let text = format_duration(d);
            assert!(parse_duration(&text).unwrap() <= d, "{text}");
        }
    }
}
