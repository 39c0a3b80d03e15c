//! get-hit, get-miss and set against `fs-raw`, the floor: the same bytes
//! written to a temporary file and renamed into place, read back with one
//! `std::fs::read`.
//!
//! Run with `cargo bench -p pcache-core --bench store`; compare the medians
//! of `store_*` with `fs_raw_*` for the same size.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use divan::{Bencher, black_box};
use pcache_core::{Key, Store};
use serde::{Deserialize, Serialize};

fn main() {
    divan::main();
}

const SIZES: [usize; 4] = [100, 10 << 10, 1 << 20, 64 << 20];

fn bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 251) as u8).collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    raw: PathBuf,
    key: Key,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let raw = dir.path().join("raw");
    fs::create_dir_all(&raw).unwrap();
    Fixture {
        raw: raw.join("entry"),
        store,
        key: Key::new("bench").unwrap(),
        _dir: dir,
    }
}

fn raw_write(path: &Path, data: &[u8]) {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).unwrap();
    file.write_all(data).unwrap();
    drop(file);
    fs::rename(&tmp, path).unwrap();
}

#[divan::bench(args = SIZES)]
fn fs_raw_get(bencher: Bencher, size: usize) {
    let f = fixture();
    raw_write(&f.raw, &bytes(size));
    bencher.bench_local(|| black_box(fs::read(&f.raw).unwrap()));
}

#[divan::bench(args = SIZES)]
fn store_get(bencher: Bencher, size: usize) {
    let f = fixture();
    f.store.set(&f.key, &bytes(size)).unwrap();
    bencher.bench_local(|| black_box(f.store.get::<Vec<u8>>(&f.key).unwrap().unwrap()));
}

#[divan::bench(args = SIZES)]
fn fs_raw_set(bencher: Bencher, size: usize) {
    let f = fixture();
    let data = bytes(size);
    bencher.bench_local(|| raw_write(&f.raw, &data));
}

#[divan::bench(args = SIZES)]
fn store_set(bencher: Bencher, size: usize) {
    let f = fixture();
    let data = bytes(size);
    bencher.bench_local(|| f.store.set(&f.key, &data).unwrap());
}

#[divan::bench]
fn fs_raw_get_miss(bencher: Bencher) {
    let f = fixture();
    bencher.bench_local(|| black_box(fs::read(&f.raw).is_err()));
}

#[divan::bench]
fn store_get_miss(bencher: Bencher) {
    let f = fixture();
    bencher.bench_local(|| black_box(f.store.get::<Vec<u8>>(&f.key).unwrap()));
}

#[derive(Serialize, Deserialize)]
struct Small {
    id: u64,
    name: String,
    weights: Vec<f32>,
    enabled: bool,
}

fn small() -> Small {
    Small {
        id: 42,
        name: "unicode-table".into(),
        weights: vec![0.5; 8],
        enabled: true,
    }
}

#[divan::bench]
fn store_get_small_struct(bencher: Bencher) {
    let f = fixture();
    f.store.set(&f.key, &small()).unwrap();
    bencher.bench_local(|| black_box(f.store.get::<Small>(&f.key).unwrap().unwrap()));
}

#[divan::bench]
fn store_set_small_struct(bencher: Bencher) {
    let f = fixture();
    let value = small();
    bencher.bench_local(|| f.store.set(&f.key, &value).unwrap());
}

#[divan::bench]
fn fs_raw_get_small_struct(bencher: Bencher) {
    let f = fixture();
    raw_write(&f.raw, &rmp_serde::to_vec(&small()).unwrap());
    bencher.bench_local(|| black_box(fs::read(&f.raw).unwrap()));
}
