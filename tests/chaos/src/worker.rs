//! One worker process: loops over a few keys doing every store operation,
//! checking every value it reads, until `<dir>/stop` appears.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use pcache_core::{Error, Key, Store};
use serde::{Deserialize, Serialize};

use crate::{Counts, Rng};

/// Keys per kind of entry: few, so workers collide constantly.
pub(crate) const KEYS: u32 = 12;

/// A stored value: its payload is a function of (key, version), so a reader
/// can tell a whole value from a torn, mixed or garbled one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Value {
    key: u32,
    version: u64,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
}

fn payload(key: u32, version: u64) -> Vec<u8> {
    // Mostly small, sometimes 1 MiB: a wide window for kills mid-write.
    let len = (version % 17) as usize * 997 + if version % 23 == 0 { 1 << 20 } else { 0 };
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(31)
                .wrapping_add(u64::from(key) * 7 + version) as u8
        })
        .collect()
}

fn value(key: u32, version: u64) -> Value {
    Value {
        key,
        version,
        payload: payload(key, version),
    }
}

fn is_whole(v: &Value) -> bool {
    v.payload == payload(v.key, v.version)
}

/// The version of pcache-build steps: their output must be a function of
/// their key (a `cached_iter` that meets a corrupt frame midway produces
/// afresh and skips what it already yielded).
fn build_version(key: u32) -> u64 {
    u64::from(key) * 1_000 + 7
}

/// A pcache-build value large enough to be trusted by identity once
/// verified.
fn large(key: u32) -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 ^ key as u8)
        .collect()
}

/// Stream items: (key, version, index), `items(version)` of them.
type Item = (u32, u64, u32);

fn items(version: u64) -> u32 {
    50 + (version % 2000) as u32
}

struct Worker {
    store: Store,
    rng: Rng,
    counts: Counts,
}

impl Worker {
    fn wrong(&self, what: String) -> ! {
        eprintln!("WRONG {what}");
        std::process::exit(3);
    }

    fn check(&mut self, requested: u32, v: &Value) {
        if v.key != requested || !is_whole(v) {
            self.wrong(format!(
                "value for key {requested}: key {} version {} ({} bytes)",
                v.key,
                v.version,
                v.payload.len()
            ));
        }
        self.counts.verified += 1;
    }

    fn error(&mut self, e: &Error) {
        match e {
            Error::Corrupt { .. } | Error::Decode { .. } => self.counts.corrupt += 1,
            // A concurrent clear or flush removed the file between steps.
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                self.counts.misses += 1;
            }
            other => eprintln!("store error (not a failure): {other}"),
        }
    }

    fn step(&mut self) {
        let key = self.rng.below(u64::from(KEYS)) as u32;
        let version = self.rng.next() % 1_000_000;
        let k = Key::new(&("value", key)).expect("serializable");
        let sk = Key::new(&("stream", key)).expect("serializable");
        match self.rng.below(100) {
            0..=24 => {
                let fetched = self.store.get_or_compute(&k, || value(key, version));
                for e in &fetched.errors {
                    self.error(e);
                }
                self.check(key, &fetched.value);
            }
            25..=39 => {
                if let Err(e) = self.store.set(&k, &value(key, version)) {
                    self.error(&e);
                }
            }
            40..=59 => match self.store.get::<Value>(&k) {
                Ok(Some(v)) => self.check(key, &v),
                Ok(None) => self.counts.misses += 1,
                Err(e) => self.error(&e),
            },
            60..=63 => {
                let _ = self.store.remove(&k);
            }
            64 => {
                // Evict to a cap below what the workers keep, beside their
                // reads and writes (pcache-build trims its own directory,
                // capped through PCACHE_MAX_SIZE, after its stores).
                if let Some(core) = self.store.dir().parent().and_then(|p| p.parent()) {
                    match pcache_core::gc::plan_trim(core, 1 << 20) {
                        Ok(plan) => {
                            if let Err(e) = pcache_core::gc::apply(&plan) {
                                self.error(&e);
                            }
                        }
                        Err(e) => self.error(&e),
                    }
                }
            }
            65..=66 => {
                if let Err(e) = self.store.flush() {
                    self.error(&e);
                }
            }
            67 => {
                if let Err(e) = self.store.clear() {
                    self.error(&e);
                }
            }
            68..=75 => self.write_stream(&sk, key, version),
            76..=85 => self.read_stream(&sk, key),
            86..=89 => {
                // pcache-build's contract: a step's result is a function of
                // its key, so its values are too (no random version).
                let v: Value = pcache_build::Cache::new(format!("value-{key}"))
                    .expiry(Duration::from_secs(2))
                    .cached(key, || value(key, build_version(key)));
                self.check(key, &v);
            }
            90..=93 => {
                // Large and long-lived: verified once, then trusted by its
                // identity while the supervisor flips its bytes in place.
                let expected = large(key);
                let v: Vec<u8> = pcache_build::cached(&format!("large-{key}"), key, || large(key));
                if v == expected {
                    self.counts.verified += 1;
                } else {
                    self.wrong(format!("large value for key {key}: {} bytes", v.len()));
                }
            }
            _ => {
                let mut next = 0u32;
                let mut seen_version = None;
                let version = build_version(key);
                let iter = pcache_build::cached_iter(&format!("items-{key}"), key, || {
                    (0..items(version)).map(move |i| (key, version, i))
                });
                for (k2, v2, i) in iter {
                    if k2 != key || i != next || *seen_version.get_or_insert(v2) != v2 {
                        self.wrong(format!(
                            "cached_iter item for key {key}: ({k2}, {v2}, {i}) at {next}"
                        ));
                    }
                    next += 1;
                }
                if seen_version.is_some_and(|v| items(v) != next) {
                    self.wrong(format!(
                        "cached_iter for key {key} ended after {next} items"
                    ));
                }
                self.counts.stream_items += u64::from(next);
                self.counts.verified += 1;
            }
        }
        self.counts.ops += 1;
    }

    fn write_stream(&mut self, sk: &Key, key: u32, version: u64) {
        let mut writer = match self.store.stream_writer(sk) {
            Ok(w) => w,
            Err(e) => return self.error(&e),
        };
        let n = items(version);
        // Sometimes abandon the write midway: nothing may become visible.
        let stop_at = if self.rng.below(10) == 0 {
            self.rng.below(u64::from(n)) as u32
        } else {
            n
        };
        for i in 0..stop_at {
            if let Err(e) = writer.push(&(key, version, i)) {
                return self.error(&e);
            }
        }
        if stop_at == n {
            if let Err(e) = writer.commit(Duration::ZERO) {
                self.error(&e);
            }
        }
    }

    fn read_stream(&mut self, sk: &Key, key: u32) {
        let reader = match self.store.stream_reader::<Item>(sk) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.counts.misses += 1;
                return;
            }
            Err(e) => return self.error(&e),
        };
        let expected = reader.len();
        let mut next = 0u32;
        let mut version = None;
        for item in reader {
            match item {
                Ok((k2, v2, i)) if k2 == key && i == next && *version.get_or_insert(v2) == v2 => {
                    next += 1
                }
                Ok(other) => self.wrong(format!("stream item for key {key}: {other:?} at {next}")),
                Err(e) => return self.error(&e),
            }
        }
        if u64::from(next) != expected || version.is_some_and(|v| items(v) != next) {
            self.wrong(format!("stream for key {key}: {next} of {expected} items"));
        }
        self.counts.stream_items += u64::from(next);
        self.counts.verified += 1;
    }
}

pub(crate) fn main(dir: PathBuf, seed: u64, remote: bool) -> ExitCode {
    let build_dir = if remote {
        // A fresh machine: nothing local, everything from the remote.
        dir.join("machines").join(std::process::id().to_string())
    } else {
        dir.join("build")
    };
    // SAFETY: set before any thread starts and before pcache-build reads them.
    unsafe {
        std::env::set_var("PCACHE_DIR", build_dir);
        std::env::set_var("PCACHE_MAX_SIZE", "3MiB");
        if remote {
            std::env::set_var(
                "PCACHE_REMOTE",
                format!("file://{}", dir.join("remote").display()),
            );
            if let Ok(exe) = std::env::current_exe() {
                std::env::set_var("PCACHE_REMOTE_HELPER", exe);
            }
            std::env::set_var(CHAOS_DIR, &dir);
        }
    }
    // `core/<package>/<cache>`, as a pcache directory is laid out, so that it
    // can be trimmed like one.
    let store = match Store::open(dir.join("core/chaos/store")) {
        Ok(store) => store.with_expiry(Some(Duration::from_secs(2))),
        Err(e) => {
            eprintln!("worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut worker = Worker {
        store,
        rng: Rng::new(seed),
        counts: Counts::default(),
    };
    let stop = dir.join("stop");
    let mut reported = Instant::now();
    loop {
        worker.step();
        if reported.elapsed() > Duration::from_millis(50) {
            report(&worker.counts);
            reported = Instant::now();
            if stop.exists() {
                break;
            }
        }
    }
    report(&worker.counts);
    ExitCode::SUCCESS
}

fn report(c: &Counts) {
    eprintln!(
        "chaos-progress {} {} {} {} {}",
        c.ops, c.verified, c.misses, c.corrupt, c.stream_items
    );
}

/// Every cache directory of the run.
fn stores(dir: &Path) -> Vec<Store> {
    let mut dirs = vec![dir.join("core/chaos/store")];
    let mut roots = vec![dir.join("build")];
    roots.extend(read_dirs(&dir.join("machines")));
    for root in roots {
        for package in read_dirs(&root) {
            dirs.extend(read_dirs(&package));
        }
    }
    dirs.into_iter().map(Store::at).collect()
}

/// Where the helper finds the run's directory.
const CHAOS_DIR: &str = "PCACHE_CHAOS_DIR";

/// What the helper saw, counted as bytes appended to one file per event.
#[derive(Debug, Default)]
pub(crate) struct RemoteCounts {
    pub(crate) imported: u64,
    pub(crate) refused: u64,
    pub(crate) dropped: u64,
    pub(crate) failed: u64,
    pub(crate) slowed: u64,
}

impl RemoteCounts {
    pub(crate) fn read(dir: &Path) -> RemoteCounts {
        let count = |event: &str| {
            std::fs::metadata(dir.join("remote-events").join(event)).map_or(0, |m| m.len())
        };
        RemoteCounts {
            imported: count("imported"),
            refused: count("refused"),
            dropped: count("dropped"),
            failed: count("failed"),
            slowed: count("slowed"),
        }
    }
}

fn record(event: &str) {
    let Some(dir) = std::env::var_os(CHAOS_DIR) else {
        return;
    };
    let events = Path::new(&dir).join("remote-events");
    let _ = std::fs::create_dir_all(&events);
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(events.join(event))
    {
        let _ = std::io::Write::write_all(&mut file, b".");
    }
}

/// The remote helper of `--remote` runs: drops, fails or delays a share of
/// the requests, and passes the rest to `cargo-pcache`.
pub(crate) fn helper() -> ExitCode {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    let mut rng = Rng::new(seed);
    let fetch = std::env::args().nth(3).as_deref() == Some("fetch");
    match rng.below(100) {
        0..=9 => {
            record("dropped");
            eprintln!("chaos: the request was dropped");
            return ExitCode::from(12);
        }
        10..=14 => {
            record("failed");
            // Not a status the helper knows: a crash, as far as the build
            // script can tell.
            eprintln!("chaos: \u{1b}[31mgarbage\u{0}");
            return ExitCode::from(77);
        }
        15..=24 => {
            record("slowed");
            std::thread::sleep(Duration::from_millis(200));
        }
        _ => {}
    }
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let status = cargo_pcache::run(std::env::args_os(), &mut stdout.lock(), &mut stderr.lock());
    if fetch && status == ExitCode::SUCCESS {
        record("imported");
    } else if fetch && status == ExitCode::from(11) {
        record("refused");
    }
    status
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// How many entries were verified once and are trusted by their identity
/// (their `.seen` sidecar holds a record).
pub(crate) fn trusted_entries(dir: &Path) -> u64 {
    stores(dir)
        .iter()
        .flat_map(|store| read_files(store.dir()))
        .filter(|p| p.extension().is_some_and(|e| e == "seen"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .count() as u64
}

fn read_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Reads back every entry left: each must be whole or detected as corrupt.
/// Returns how many were verified whole.
pub(crate) fn verify_all(dir: &Path) -> Result<u64, String> {
    let mut verified = 0;
    for store in stores(dir) {
        let large_values = store
            .meta()
            .ok()
            .flatten()
            .is_some_and(|m| m.name.starts_with("large-"));
        for entry in store.entries().map_err(|e| e.to_string())? {
            if large_values {
                match store.get::<Vec<u8>>(&entry.key) {
                    Ok(Some(v)) if (0..KEYS).any(|k| v == large(k)) => verified += 1,
                    Ok(Some(v)) => {
                        return Err(format!("final check: torn large value ({} bytes)", v.len()));
                    }
                    Ok(None) | Err(Error::Corrupt { .. } | Error::Decode { .. }) => {}
                    Err(e) => return Err(format!("final check: {e}")),
                }
                continue;
            }
            match store.get::<Value>(&entry.key) {
                Ok(Some(v)) if is_whole(&v) => verified += 1,
                Ok(Some(v)) => {
                    return Err(format!("final check: torn value {} v{}", v.key, v.version));
                }
                Ok(None) | Err(Error::Corrupt { .. } | Error::Decode { .. }) => {
                    // A stream entry, or one corrupted at the very end.
                    if let Ok(Some(reader)) = store.stream_reader::<Item>(&entry.key) {
                        let n = reader.len();
                        let all: Result<Vec<Item>, _> = reader.collect();
                        match all {
                            Ok(items)
                                if items.len() as u64 == n
                                    && items.iter().enumerate().all(|(i, it)| it.2 == i as u32) =>
                            {
                                verified += 1
                            }
                            Ok(_) => {
                                return Err(format!(
                                    "final check: bad stream {}",
                                    entry.path.display()
                                ));
                            }
                            Err(_) => {}
                        }
                    }
                }
                Err(e) => return Err(format!("final check: {e}")),
            }
        }
    }
    Ok(verified)
}

/// Flushes every cache as of two hours from now, sweeping the temporary
/// files of killed writers and unheld lock files. Returns what was swept.
pub(crate) fn sweep(dir: &Path) -> (u64, u64) {
    let (mut temps, mut locks) = (0, 0);
    for store in stores(dir) {
        let before = store.scan().unwrap_or_default();
        let later = store.with_clock(|| SystemTime::now() + Duration::from_secs(7200));
        let _ = later.flush();
        let after = later.scan().unwrap_or_default();
        temps += before.temps.len().saturating_sub(after.temps.len()) as u64;
        locks += before.locks.len().saturating_sub(after.locks.len()) as u64;
    }
    (temps, locks)
}

/// Entry files (not metadata, locks or temporary files).
pub(crate) fn entry_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.parse::<Key>().is_ok()
        })
        .collect()
}

pub(crate) fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out
}
