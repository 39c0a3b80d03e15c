//! Streams a large CSV of weather-station measurements through
//! `pcache_build::cached_iter` and aggregates it into a table of per-station
//! statistics.
//!
//! On a miss each row is parsed and validated as it is read, passed on to the
//! aggregation and recorded; on a hit the parsed rows are decoded lazily from
//! the cache. Either way only one row is in memory at a time, however large
//! the input grows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Rows in the generated input. Set `STREAM_ROWS` to try other sizes.
const DEFAULT_ROWS: u64 = 200_000;

#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    station: String,
    /// Tenths of a degree Celsius.
    temperature: i32,
}

fn main() {
    let out = std::env::var_os("OUT_DIR").expect("run by Cargo");
    let out = Path::new(&out);
    let rows = pcache_build::env("STREAM_ROWS");
    let count = std::env::var("STREAM_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROWS);
    let csv = out.join("measurements.csv");
    generate_input(&csv, count);

    let measurements =
        pcache_build::cached_iter("measurements", (pcache_build::file(&csv), &rows), || {
            let file = BufReader::new(File::open(&csv).expect("input was just written"));
            file.lines()
                .skip(1)
                .map(|line| parse(&line.expect("readable input")))
        });

    let mut stats: BTreeMap<String, (i32, i32, i64, u64)> = BTreeMap::new();
    for m in measurements {
        let s = stats.entry(m.station).or_insert((i32::MAX, i32::MIN, 0, 0));
        s.0 = s.0.min(m.temperature);
        s.1 = s.1.max(m.temperature);
        s.2 += i64::from(m.temperature);
        s.3 += 1;
    }
    let mut code = String::from("/// (station, min, mean, max, count), temperatures in °C.\n");
    code.push_str("pub static STATIONS: &[(&str, f32, f32, f32, u64)] = &[\n");
    for (station, (min, max, sum, n)) in &stats {
        let mean = *sum as f64 / *n as f64 / 10.0;
        let _ = writeln!(
            code,
            "    ({station:?}, {:.1}, {mean:.1}, {:.1}, {n}),",
            f64::from(*min) / 10.0,
            f64::from(*max) / 10.0
        );
    }
    code.push_str("];\n");
    fs::write(out.join("stations.rs"), code).expect("OUT_DIR is writable");
}

/// Parses `station;temperature` (temperature with one decimal).
fn parse(line: &str) -> Measurement {
    let (station, temp) = line.split_once(';').expect("station;temperature");
    let (whole, tenth) = temp.split_once('.').expect("one decimal");
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    let whole: i32 = whole.trim_start_matches('-').parse().expect("degrees");
    let tenth: i32 = tenth.parse().expect("tenths");
    Measurement {
        station: station.to_owned(),
        temperature: sign * (whole * 10 + tenth),
    }
}

/// Writes a deterministic input of `rows` measurements (once per `OUT_DIR`).
fn generate_input(path: &Path, rows: u64) {
    const STATIONS: [(&str, i32); 12] = [
        ("Abha", 180),
        ("Bergen", 77),
        ("Cairo", 214),
        ("Dakar", 240),
        ("Hanoi", 236),
        ("Kyiv", 84),
        ("Lima", 190),
        ("Oslo", 57),
        ("Quito", 140),
        ("Reykjavík", 43),
        ("Ushuaia", 14),
        ("Zürich", 93),
    ];
    let stamp = path.with_extension("rows");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == rows.to_string()) {
        return;
    }
    let mut out = BufWriter::new(File::create(path).expect("OUT_DIR is writable"));
    writeln!(out, "station;temperature").unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let (name, mean) = STATIONS[(state % STATIONS.len() as u64) as usize];
        let t = mean + ((state >> 32) % 201) as i32 - 100;
        let sign = if t < 0 { "-" } else { "" };
        writeln!(out, "{name};{sign}{}.{}", t.abs() / 10, t.abs() % 10).unwrap();
    }
    out.flush().unwrap();
    fs::write(stamp, rows.to_string()).unwrap();
}
