//! `cached_iter` hit throughput, `cached` hit overhead over pcache-core, and
//! peak memory of `cached_iter` at 10³ and 10⁷ items.
//!
//! Run with `cargo bench -p pcache-build --bench iter`. Peak memory is
//! measured in child processes (one per phase and size, reading
//! `ru_maxrss`), and printed as a table before the timings.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use divan::{Bencher, black_box};
use pcache_core::{Key, Store};

const ITEMS: u64 = 1_000_000;

fn main() {
    if let Ok(phase) = std::env::var("PCACHE_BENCH_PHASE") {
        return child(&phase);
    }
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: single-threaded here, before any benchmark runs.
    unsafe { std::env::set_var("PCACHE_DIR", dir.path()) };
    peak_memory_table(dir.path());
    divan::main();
}

/// A small item, as a table row would be.
type Item = (u32, u32);

fn item(i: u64) -> Item {
    (i as u32, (i as u32).wrapping_mul(2_654_435_761))
}

fn fill(n: u64) {
    let stored: u64 = pcache_build::cached_iter("iter-bench", n, || (0..n).map(item))
        .map(|(a, _)| u64::from(a))
        .sum();
    black_box(stored);
}

#[divan::bench(sample_count = 20)]
fn cached_iter_hit_1e6_items(bencher: Bencher) {
    fill(ITEMS);
    bencher
        .counter(divan::counter::ItemsCount::new(ITEMS))
        .bench(|| {
            let mut sum = 0u64;
            for (a, _) in
                pcache_build::cached_iter("iter-bench", ITEMS, || -> std::iter::Empty<Item> {
                    unreachable!("stored")
                })
            {
                sum += u64::from(a);
            }
            black_box(sum)
        });
}

#[divan::bench(sample_count = 20)]
fn plain_iterator_1e6_items(bencher: Bencher) {
    bencher
        .counter(divan::counter::ItemsCount::new(ITEMS))
        .bench(|| black_box((0..ITEMS).map(item).map(|(a, _)| u64::from(a)).sum::<u64>()));
}

#[divan::bench]
fn cached_hit_small_value(bencher: Bencher) {
    let value = || (0..16u32).collect::<Vec<_>>();
    pcache_build::cached("hit-bench", 1u8, value);
    bencher.bench(|| {
        black_box(pcache_build::cached("hit-bench", 1u8, || -> Vec<u32> {
            unreachable!()
        }))
    });
}

#[divan::bench]
fn core_get_small_value(bencher: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = Key::new(&("hit-bench", 1u8)).unwrap();
    store.set(&key, &(0..16u32).collect::<Vec<_>>()).unwrap();
    bencher.bench(|| black_box(store.get::<Vec<u32>>(&key).unwrap()));
}

/// Runs one phase in a child process and returns its peak RSS in KiB.
fn peak_rss_kib(dir: &Path, phase: &str, n: u64) -> (u64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("PCACHE_BENCH_PHASE", phase)
        .env("PCACHE_BENCH_ITEMS", n.to_string())
        .env("PCACHE_DIR", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("result "))
        .unwrap();
    let mut parts = line.split(' ');
    (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    )
}

fn peak_memory_table(dir: &Path) {
    println!("cached_iter peak memory (RSS of a fresh process) and throughput");
    println!(
        "{:>10}  {:>14}  {:>14}  {:>16}",
        "items", "miss peak KiB", "hit peak KiB", "hit items/s"
    );
    for n in [1_000u64, 100_000, 10_000_000] {
        let (miss, _) = peak_rss_kib(dir, "miss", n);
        let (hit, rate) = peak_rss_kib(dir, "hit", n);
        println!("{n:>10}  {miss:>14}  {hit:>14}  {rate:>16.0}");
    }
    println!();
}

fn child(phase: &str) {
    let n: u64 = std::env::var("PCACHE_BENCH_ITEMS")
        .unwrap()
        .parse()
        .unwrap();
    let start = Instant::now();
    let mut count = 0u64;
    let name = format!("rss-{n}");
    match phase {
        "miss" => {
            for _ in pcache_build::cached_iter(&name, n, || (0..n).map(item)) {
                count += 1;
            }
        }
        _ => {
            for _ in pcache_build::cached_iter(&name, n, || -> std::iter::Empty<Item> {
                unreachable!("stored")
            }) {
                count += 1;
            }
        }
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    assert_eq!(count, n);
    println!("result {} {rate}", max_rss_kib());
}

fn max_rss_kib() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as u64
}
