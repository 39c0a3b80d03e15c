//! A keyed, locked, expiring on-disk store: the storage engine behind
//! [pcache](https://crates.io/crates/pcache-build), usable on its own.
//!
//! ```
//! use std::time::Duration;
//! use pcache_core::{Key, Store};
//!
//! # let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("demo"))?.with_expiry(Some(Duration::from_secs(3600)));
//!
//! // Keys are derived from any `Serialize` key material.
//! let key = Key::new(&("primes-below", 100))?;
//! assert_eq!(store.get::<Vec<u32>>(&key)?, None);
//!
//! let fetched = store.get_or_compute(&key, || {
//!     (2u32..100).filter(|n| (2..*n).all(|d| n % d != 0)).collect::<Vec<_>>()
//! });
//! assert!(!fetched.hit);
//! assert_eq!(store.get::<Vec<u32>>(&key)?.unwrap().len(), 25);
//!
//! // Byte values are stored as one MessagePack `bin` and read back in bulk.
//! let blob = Key::new("blob")?;
//! store.set(&blob, &vec![7u8; 1 << 20])?;
//! assert_eq!(store.get::<Vec<u8>>(&blob)?.unwrap().len(), 1 << 20);
//!
//! assert_eq!(store.entries()?.len(), 2);
//! assert_eq!(store.clear()?.entries, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The pieces
//!
//! - [`Store`] — one directory of entries: [`get`](Store::get),
//!   [`set`](Store::set), [`remove`](Store::remove),
//!   [`get_or_compute`](Store::get_or_compute) with cross-process single
//!   flight, [`entries`](Store::entries), [`flush`](Store::flush),
//!   [`clear`](Store::clear), [`delete`](Store::delete), and `cache.toml`
//!   metadata ([`CacheMeta`]).
//! - [`StreamWriter`] / [`StreamReader`] — entries written and read one item
//!   at a time, in constant memory.
//! - [`Key`] — XXH3-128 of the canonical MessagePack serialization of the key
//!   material, plus its length; [`short_id`] for directory names. std's and
//!   hashbrown's `HashMap` and `HashSet` are serialized in sorted order, so
//!   they key the same in every process; every other collection keeps its
//!   order ([`canonical_bytes`] has the rules and their limit).
//! - [`Error`] — the one error type; every variant but [`Error::Key`] names
//!   its path.
//! - [`config`] — the register of every setting (`PCACHE_*` variables,
//!   metadata keys) and the one precedence builds and commands apply.
//! - [`conventions`] — what pcache-build and `cargo pcache` must agree on:
//!   where caches live, durations, sizes, names.
//!
//! # On disk
//!
//! ```text
//! <dir>/cache.toml              name, package, expiry, format version
//! <dir>/<key>                   one entry per file
//! <dir>/<key>.lock              only while <key> is being computed
//! <dir>/<key>.seen              <key>'s verified identity; its mtime is the last use
//! <dir>/.tmp.<key>.<pid>.<n>    a write in progress
//! ```
//!
//! An entry file is a 64-byte header — magic `\x89pcache\n`, format version,
//! kind, creation time, payload length, item count, compute time, CRC-32 of
//! the payload and CRC-32 of the header itself — followed by the payload:
//! one MessagePack value, or for streams a sequence of frames, each holding
//! whole items and its own CRC-32. The file's mtime
//! is set to the creation time for humans and other tools, but expiry is
//! always judged by the header, so tools that rewrite mtimes (CI cache
//! restores, `git-restore-mtime`, container layers) change nothing.
//!
//! # Guarantees
//!
//! - **Atomic writes.** Every entry is written to a temporary file in the
//!   same directory and renamed into place. A reader sees the old entry, the
//!   new one, or none; never a mix. A process killed mid-write leaves at most
//!   a temporary file, removed once its writer is provably gone (its pid is
//!   not running, or the file is an hour old) by the next write in that
//!   cache from another process, by the size cap's automatic trim and by
//!   [`flush`](Store::flush).
//! - **Verified reads.** Every read checks the magic, version, kind,
//!   length and the header's checksum, and the payload's and notes'
//!   checksums on the very bytes it decodes (streams are checked whole before
//!   the first item, then frame by frame as they are decoded). A large entry
//!   (64 KiB or more) is checked in full once per version of its file: its
//!   identity (device, inode, size, ctime) is recorded beside it — by the
//!   process that wrote it, or the first that read it whole — once it is
//!   older than the racy window (one tick of the kernel's clock, measured,
//!   on local file systems; never on network file systems), and while the
//!   file keeps that identity its payload is not checksummed again; ctime
//!   moves on any write, replacement or timestamp change (see the
//!   `<key>.seen` sidecar below). A
//!   file that fails is a miss: it is removed and reported as
//!   [`Error::Corrupt`], never returned as a value. Symlinks and directories
//!   in an entry's place are corruption too; entries are opened without
//!   following links.
//! - **Single flight.** [`get_or_compute`](Store::get_or_compute) takes a
//!   per-key `flock` after a miss, so concurrent processes compute a key once
//!   and the others read the result. The lock file is removed when the
//!   computation ends; files left by killed processes are removed by the next
//!   computation of that key or by `flush`. A waiter gives up after the
//!   [lock timeout](Store::with_lock_timeout) (10 minutes by default) and
//!   computes too, so a hung holder delays a build but never stalls it. On a
//!   file system without `flock` support (some network file systems) there is
//!   no single flight, silently, as with cargo's own locks: two processes may
//!   both compute, and the last write wins (each write is still atomic).
//! - **Never a panic** on any input, file content or file-system state.
//!
//! What a crash cannot do is corrupt a value; what it can do is lose the
//! write in progress. Nothing is `fsync`ed, so after a power loss an entry may
//! be torn or missing: the checksums make that a miss.
#![deny(missing_docs)]

mod atomic;
mod bytes;
mod canonical;
mod compute;
pub mod config;
pub mod conventions;
pub mod digests;
mod entry;
mod error;
pub mod gc;
mod get;
mod key;
mod layout;
mod lock;
mod meta;
pub mod places;
mod put;
mod racy;
pub mod record;
pub mod remote;
mod seen;
mod store;
mod stream;
mod sweep;
pub mod trace;
mod transfer;
pub mod tree;

pub use canonical::{KeyError, canonical_bytes};
pub use compute::{Computed, Fetched};
pub use entry::FORMAT_VERSION;
pub use error::{Corruption, Error, Result};
pub use get::Found;
pub use key::{Key, ParseKeyError, short_id, value_digest};
pub use lock::KeyGuard;
pub use meta::CacheMeta;
pub use store::{DEFAULT_LOCK_TIMEOUT, EntryInfo, Lookup, Store};
pub use stream::{StreamReader, StreamWriter};
pub use sweep::{Plan, Removed, Scan};

/// This crate's README code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
