//! Memoize the expensive steps of Cargo build scripts on disk.
//!
//! Cargo re-runs a build script after a profile switch, a feature change, a
//! touched `build.rs`, a fresh `OUT_DIR`, rust-analyzer checking beside a
//! build, or a CI job. With pcache the expensive steps inside it — code
//! generation, bindings, parsed tables, downloads — are computed once and
//! read back from `target/pcache` the next time:
//!
//! ```
//! // build.rs
//! let table: Vec<u32> = pcache_build::cached("squares", 1000u32, || {
//!     (0..1000).map(|i| i * i).collect() // the expensive part
//! });
//! assert_eq!(table[12], 144);
//! ```
//!
//! # The three entry points
//!
//! [`cached`] (and [`try_cached`] for fallible steps) stores any
//! `Serialize + DeserializeOwned` value:
//!
//! ```
//! # use std::collections::HashMap;
//! // build.rs
//! let names: HashMap<u32, String> = pcache_build::try_cached(
//!     "code-points",
//!     ("UnicodeData.txt", 16),
//!     || -> Result<_, std::num::ParseIntError> {
//!         Ok([("0041", "LATIN CAPITAL LETTER A")]
//!             .into_iter()
//!             .map(|(hex, name)| Ok((u32::from_str_radix(hex, 16)?, name.to_owned())))
//!             .collect::<Result<_, _>>()?)
//!     },
//! )?;
//! assert_eq!(names[&0x41], "LATIN CAPITAL LETTER A");
//! # Ok::<(), std::num::ParseIntError>(())
//! ```
//!
//! [`cached_iter`] streams items: on a miss they pass through as they are
//! produced and are recorded; on a hit they are decoded lazily from disk.
//! Memory stays constant either way:
//!
//! ```
//! // build.rs
//! let rows = pcache_build::cached_iter("rows", "data.csv", || {
//!     (0..100_000u64).map(|i| (i, format!("row {i}")))
//! });
//! let mut code = String::new();
//! for (id, label) in rows {
//!     code.push_str(&format!("({id}, {label:?}),\n"));
//! }
//! assert!(code.starts_with("(0, \"row 0\"),"));
//! ```
//!
//! [`cached_files`] stores whatever files a generator writes (bindgen,
//! prost, tonic…) and restores them into `dest`, byte-identical:
//!
//! ```
//! // build.rs
//! # let out = tempfile::tempdir()?;
//! # let out_dir = out.path();
//! // let out_dir = std::env::var("OUT_DIR").unwrap();
//! let header = pcache_build::file("wrapper.h"); // a missing file is an input too
//! pcache_build::cached_files("bindings", (&header, "v1"), &out_dir, |dir| {
//!     std::fs::create_dir_all(dir.join("sys"))?;
//!     std::fs::write(dir.join("sys/bindings.rs"), "pub const ANSWER: u32 = 42;")
//! })?;
//! assert!(out_dir.join("sys/bindings.rs").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo directives
//!
//! Steps that compile C (`cc`, `cmake`, `-src` crates) or probe the system
//! (`pkg-config`) print `cargo:` directives; nothing special is needed to
//! cache them. While a step's closure runs, pcache captures the build
//! script's stdout at the file-descriptor level (Rust code, C code and child
//! processes alike), forwards every line to Cargo as it comes, and stores the
//! directives with the result — with paths under the scratch directory,
//! the destination, `OUT_DIR` or the package directory made relative. A hit
//! prints them again, in order, with this run's paths, so Cargo's view of the
//! build script is the same after a hit as after the miss: link lines, cfgs,
//! `rustc-env`, metadata for dependents, warnings and `rerun-if-*` lines. A
//! step that printed `cargo::error=` is not stored. Capture is implemented on
//! Unix; elsewhere a step computes without the cache, with a warning. The
//! repository README lists the limits.
//!
//! # Keys
//!
//! A value is found again when its *key material* is the same: the inputs
//! (anything `Serialize`; std's and hashbrown's `HashMap`s and `HashSet`s are
//! serialized in sorted order, so their key is the same in every run, while a
//! `Vec`, a `BTreeMap` or an `IndexMap` keeps its order), the cache name, the value's type name, the `TARGET` triple,
//! pcache's entry format version, and the build script's **code identity**.
//! The profile is not part of it: a debug build's result serves the release
//! build.
//!
//! The code identity is a digest of the build script's sources by content
//! (the files rustc lists in its dep-info, falling back to `build.rs`) and
//! of the locked versions of the package's build-dependencies. Editing
//! `build.rs` recomputes; touching it does not; upgrading `bindgen`
//! recomputes. [`Cache::code_independent`] opts out.
//!
//! The input helpers [`file()`], [`dir()`] and [`env()`] put contents and values
//! into the key and print the matching `cargo:rerun-if-…` line.
//!
//! # Options
//!
//! [`Cache`] is the builder: `Cache::new("name").expiry(d).cached(inputs, f)`.
//! A package-wide default expiry goes in the crate's own `Cargo.toml`:
//!
//! ```toml
//! [package.metadata.pcache]
//! expiry = "30d"   # 90, 90s, 15m, 12h, 7d, 2w, 1h30m
//! ```
//!
//! # Where the cache lives
//!
//! In `<build-dir>/pcache/<package>/<hash of the name>/`, where
//! `<build-dir>` is the directory Cargo builds in (the one holding
//! `CACHEDIR.TAG` above `OUT_DIR`: normally the target directory, also with
//! `--target`, `CARGO_TARGET_DIR` and `--target-dir`). `cargo clean` removes
//! it. `PCACHE_DIR=<dir>` puts caches in `<dir>/<package>/…` instead.
//! `cargo pcache ls` lists them.
//!
//! # Environment
//!
//! - `PCACHE=off` (or `0`, `false`): compute every step, read and write
//!   nothing.
//! - `PCACHE=verify`: compute every step even on a hit and compare with the
//!   stored value; a difference fails the build, naming the cache and both
//!   digests. For CI: it catches nondeterministic steps and inputs missing
//!   from keys.
//! - `PCACHE_DIR`: where caches live (see above).
//! - `PCACHE_MAX_SIZE` (or `[workspace.metadata.pcache] max-size`): a size
//!   cap for the whole pcache directory; a step that stores an entry trims
//!   it to about 90% when it is over, keeping what saves the most time per
//!   byte (`cargo pcache gc` does the same on demand).
//! - `PCACHE_STATS=off`: record no statistics (every step otherwise records
//!   its outcome for `cargo pcache stats` and `why`).
//! - `PCACHE_REMOTE`, `PCACHE_REMOTE_MODE`, `PCACHE_REMOTE_REQUIRED`: the
//!   remote cache (below).
//!
//! # The remote cache
//!
//! With `PCACHE_REMOTE` set — `s3://bucket/prefix`, `redis://host:port/db`,
//! `webdav+http(s)://host/path` or `file:///shared/dir` — a step that misses
//! locally first fetches the same entry from the remote, and a step that
//! computes sends its entry there in the background
//! (`PCACHE_REMOTE_MODE=read` only reads). Remote keys hold the entry's
//! place in the pcache directory, never a machine path, so a checkout
//! anywhere gets the hits. The storage client lives in `cargo-pcache`, which
//! steps run as a helper (`cargo install cargo-pcache`, or
//! `PCACHE_REMOTE_HELPER=<path>`): this crate has no network dependency,
//! and with no remote configured a step pays one check of a variable. A
//! remote entry is checked like a local one before use. An unreachable,
//! slow or misbehaving remote is one warning per build-script process (with
//! credentials redacted) and about one 2-second timeout per build; with
//! `PCACHE_REMOTE_REQUIRED=1` it fails the build instead. These variables
//! are not inputs of any step: changing them never re-runs a build script.
//!
//! # The cache never breaks a build
//!
//! Any cache failure — unwritable or full disk, corrupt entry, lock trouble,
//! a value that no longer deserializes — degrades to computing the value and
//! prints one `cargo:warning=pcache: <name>: <cause> (<path>)` line. Only your
//! own closure can fail the build (and `PCACHE=verify`, when asked). Each
//! step also prints a line such as
//! `pcache: hit bindings: read 1.2 MiB in 2.1 ms, saved 3.40 s`, visible with
//! `cargo build -vv`.
#![deny(missing_docs)]

mod cache;
mod capture;
mod directives;
mod env;
mod error;
mod files;
mod identity;
mod inputs;
mod iter;
mod locate;
mod manifest;
mod notes;
mod parts;
mod remote;
mod report;
mod session;
mod step;

use std::path::Path;

/// The repository README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The build-script guide's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/build-scripts.md")]
struct BuildScriptsGuideDoctests;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use cache::Cache;
pub use error::Error;
pub use files::GeneratedFiles;
pub use inputs::{DirInput, EnvInput, FileInput, dir, env, file};
pub use iter::CachedIter;

/// Returns the value `compute` returns for these `inputs`, computing it only
/// when no stored value matches.
///
/// `inputs` is anything `Serialize`, taken by value: `&x`, `x`, or tuples
/// such as `(&a, file("x.h"))`. See the [crate docs](crate) for what else
/// goes into the key. Cache failures are warnings; the value is always
/// `compute`'s.
///
/// ```
/// let n: u64 = pcache_build::cached("fib-90", 90u32, || {
///     (0..90).fold((0u64, 1u64), |(a, b), _| (b, a + b)).0
/// });
/// assert_eq!(n, 2_880_067_194_370_816_120);
/// ```
pub fn cached<T, I, F>(name: &str, inputs: I, compute: F) -> T
where
    I: Serialize,
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> T,
{
    Cache::new(name).cached(inputs, compute)
}

/// Like [`cached`] for a fallible step: an `Err` is returned and never
/// stored, so the next run tries again.
///
/// # Errors
///
/// Only `compute`'s own error.
pub fn try_cached<T, E, I, F>(name: &str, inputs: I, compute: F) -> Result<T, E>
where
    I: Serialize,
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, E>,
{
    Cache::new(name).try_cached(inputs, compute)
}

/// An iterator over the items `produce`'s iterator yields for these
/// `inputs`, stored item by item.
///
/// On a miss, items pass through as they are produced and are recorded to a
/// temporary file, committed only when the iterator is exhausted (dropped
/// early: nothing is stored). On a hit, the stored entry's checksum is
/// verified first, then items are decoded lazily. Memory is constant in the
/// number of items on both paths.
pub fn cached_iter<T, I, F, It>(name: &str, inputs: I, produce: F) -> CachedIter<T, F, It>
where
    I: Serialize,
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> It,
    It: IntoIterator<Item = T>,
{
    Cache::new(name).cached_iter(inputs, produce)
}

/// Puts the files `generate` writes into `dest` (normally `OUT_DIR`),
/// running `generate` only when no stored tree matches these `inputs`.
///
/// `generate` writes any tree of files, directories and relative symlinks
/// into the scratch directory it is given; pcache stores the tree as one
/// entry and writes it into `dest` at the same relative paths, byte for
/// byte, on this run and every hit. The executable bit is kept; setuid and
/// setgid bits never are. A stored tree that would write outside `dest` is
/// treated as corrupt.
///
/// # Errors
///
/// When `generate` fails ([`Error::Generate`]), or the files cannot be
/// written into `dest`.
pub fn cached_files<I, F>(
    name: &str,
    inputs: I,
    dest: impl AsRef<Path>,
    generate: F,
) -> Result<GeneratedFiles, Error>
where
    I: Serialize,
    F: FnOnce(&Path) -> std::io::Result<()>,
{
    Cache::new(name).cached_files(inputs, dest, generate)
}

/// This crate's README code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
