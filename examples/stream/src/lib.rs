//! Per-station temperature statistics, aggregated at build time from a
//! 200,000-row CSV streamed through `pcache_build::cached_iter`.
//!
//! ```
//! let (_, min, mean, max, count) = pcache_example_stream::station("Oslo").unwrap();
//! assert!(min <= mean && mean <= max);
//! assert!(count > 10_000);
//! ```

include!(concat!(env!("OUT_DIR"), "/stations.rs"));

/// The statistics of one station.
pub fn station(name: &str) -> Option<(&'static str, f32, f32, f32, u64)> {
    STATIONS.iter().find(|s| s.0 == name).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_counted_once() {
        let total: u64 = STATIONS.iter().map(|s| s.4).sum();
        let expected = option_env!("STREAM_ROWS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(200_000);
        assert_eq!(total, expected);
        assert_eq!(STATIONS.len(), 12);
    }
}
