//! `cargo pcache ls` and `flush` over 10,000 entries in one cache and over
//! 100 caches × 100 entries, `gc` over 100,000 entries and `why` on a cache
//! of 10,000, as users run them (including the `cargo metadata` call that
//! finds the target directory).
//!
//! Run with `cargo bench -p cargo-pcache --bench cli`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use divan::Bencher;
use pcache_core::{CacheMeta, Key, Store};

fn main() {
    divan::main();
}

/// A Cargo project whose target directory holds `caches` × `entries`.
fn project(caches: usize, entries: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "").unwrap();
    for c in 0..caches {
        let name = format!("cache-{c}");
        let store = Store::open(
            root.join("target/pcache/app")
                .join(pcache_core::short_id(&name)),
        )
        .unwrap();
        store
            .write_meta(&CacheMeta::new(&name).package("app"))
            .unwrap();
        for e in 0..entries {
            store
                .set(&Key::new(&e).unwrap(), &vec![e as u8; 256])
                .unwrap();
        }
    }
    let manifest = root.join("Cargo.toml");
    (dir, manifest)
}

fn run(manifest: &Path, args: &[&str]) {
    let mut argv = vec!["cargo-pcache", "pcache"];
    argv.extend_from_slice(args);
    argv.extend(["--manifest-path", manifest.to_str().unwrap()]);
    let mut out = Vec::new();
    let mut err = Vec::new();
    assert_eq!(
        cargo_pcache::run(argv, &mut out, &mut err),
        ExitCode::SUCCESS
    );
}

const SHAPES: [(usize, usize); 2] = [(1, 10_000), (100, 100)];

#[divan::bench(args = SHAPES, sample_count = 20)]
fn ls(bencher: Bencher, (caches, entries): (usize, usize)) {
    let (_dir, manifest) = project(caches, entries);
    bencher.bench(|| run(&manifest, &["ls"]));
}

#[divan::bench(args = SHAPES, sample_count = 20)]
fn ls_json_entries(bencher: Bencher, (caches, entries): (usize, usize)) {
    let (_dir, manifest) = project(caches, entries);
    bencher.bench(|| run(&manifest, &["ls", "--json", "--entries"]));
}

/// Nothing is expired: the cost of checking every entry.
#[divan::bench(args = SHAPES, sample_count = 20)]
fn flush_nothing_expired(bencher: Bencher, (caches, entries): (usize, usize)) {
    let (_dir, manifest) = project(caches, entries);
    bencher.bench(|| run(&manifest, &["flush", "--expiry", "1d"]));
}

/// Everything is expired: every entry is removed.
#[divan::bench(args = SHAPES, sample_count = 5)]
fn flush_everything(bencher: Bencher, (caches, entries): (usize, usize)) {
    bencher
        .with_inputs(|| project(caches, entries))
        .bench_values(|(dir, manifest)| {
            run(&manifest, &["flush", "--expiry", "0"]);
            dir
        });
}

/// The floor: `cargo metadata --no-deps`, which every command runs first.
#[divan::bench(sample_count = 20)]
fn cargo_metadata_alone(bencher: Bencher) {
    let (_dir, manifest) = project(0, 0);
    bencher.bench(|| {
        cargo_metadata::MetadataCommand::new()
            .manifest_path(&manifest)
            .no_deps()
            .exec()
            .unwrap()
    });
}

/// `gc` over 100,000 entries in 100 caches, planning only: every entry's
/// header and last use read and ranked.
#[divan::bench(sample_count = 5)]
fn gc_dry_run_100k(bencher: Bencher) {
    let (_dir, manifest) = project(100, 1_000);
    bencher.bench(|| run(&manifest, &["gc", "--max-size", "1MiB", "--dry-run"]));
}

/// `why` on a cache of 10,000 entries, each with its key's parts: every
/// entry's notes read and compared with the last miss.
#[divan::bench(sample_count = 10)]
fn why_10k(bencher: Bencher) {
    use pcache_core::record::{
        CodeParts, EntryNotes, FileDigest, InputPart, KeyParts, LastMiss, MissReason,
    };
    let (_dir, manifest) = project(1, 0);
    let root = manifest.parent().unwrap();
    let store = Store::open(
        root.join("target/pcache/app")
            .join(pcache_core::short_id("cache-0")),
    )
    .unwrap();
    let parts = |i: u128| KeyParts {
        format: pcache_core::FORMAT_VERSION,
        entry_point: "value".into(),
        type_name: "alloc::vec::Vec<u8>".into(),
        target: "x86_64-unknown-linux-gnu".into(),
        code: Some(CodeParts {
            digest: 1,
            sources: vec![FileDigest {
                path: "build.rs".into(),
                digest: 2,
            }],
            build_deps: vec![("cc".into(), "1.2.0".into())],
            env_digest: 0,
        }),
        inputs_digest: i,
        inputs: vec![
            InputPart::File {
                path: "input.h".into(),
                digest: Some(i),
            },
            InputPart::Other {
                index: 0,
                digest: i,
            },
        ],
    };
    for i in 0..10_000u128 {
        let notes = EntryNotes::new(Vec::new(), Some(parts(i))).encode();
        store
            .set_with_notes(
                &Key::new(&(i as u64)).unwrap(),
                &vec![0u8; 256],
                std::time::Duration::ZERO,
                &notes,
            )
            .unwrap();
    }
    let missed = Key::new(&"missed").unwrap();
    store
        .set_last_miss(&LastMiss::new(
            &missed,
            MissReason::InputsChanged,
            parts(10_001),
        ))
        .unwrap();
    bencher.bench(|| run(&manifest, &["why", "cache-0"]));
}
