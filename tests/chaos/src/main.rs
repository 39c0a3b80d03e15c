//! The chaos harness: N worker processes hammer one cache directory while a
//! killer SIGKILLs them at random moments (and restarts them) and a corrupter
//! truncates and flips bytes in random entry files.
//!
//! With `--remote`, every worker process is a fresh machine: its build
//! steps start from an empty pcache directory and share a remote (a shared
//! directory), which the corrupter garbles too, through a helper that
//! drops, fails or delays a share of the requests before passing the rest
//! to `cargo-pcache`.
//!
//! Every value a worker stores is derived from its key and a version, so
//! every read can be checked. The run fails on any wrong value, any panic,
//! any worker that makes no progress for 10 seconds, or leftover files that
//! a final flush does not sweep.
//!
//! ```text
//! cargo run -p pcache-chaos -- --duration 60 --workers 4      # what CI runs
//! cargo run -p pcache-chaos -- --duration 60 --workers 4 --remote
//! cargo run --release -p pcache-chaos -- --duration 600 --workers 8
//! ```

mod worker;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;

/// Fault-injection soak for pcache.
#[derive(Debug, Parser)]
struct Args {
    /// How long to run, in seconds
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Worker processes
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Seed for the supervisor's randomness (default: from the clock)
    #[arg(long)]
    seed: Option<u64>,
    /// Cache directory (default: a fresh temporary directory)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Give every worker process its own pcache directory, and share a
    /// faulty remote between them
    #[arg(long)]
    remote: bool,
    /// Run as a worker (internal)
    #[arg(long, hide = true)]
    worker: bool,
}

/// Counters a worker reports.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) ops: u64,
    pub(crate) verified: u64,
    pub(crate) misses: u64,
    pub(crate) corrupt: u64,
    pub(crate) stream_items: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.ops += o.ops;
        self.verified += o.verified;
        self.misses += o.misses;
        self.corrupt += o.corrupt;
        self.stream_items += o.stream_items;
    }
}

/// A small xorshift generator: deterministic per seed, no dependencies.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn main() -> ExitCode {
    // Run by a worker's build steps as their remote helper.
    if std::env::args_os().nth(1).is_some_and(|a| a == "pcache") {
        return worker::helper();
    }
    let args = Args::parse();
    if args.worker {
        return worker::main(
            args.dir.expect("--dir"),
            args.seed.unwrap_or(1),
            args.remote,
        );
    }
    match supervise(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Worker {
    child: Child,
    /// Totals reported by this worker's processes that ended.
    last_progress: Arc<Mutex<Instant>>,
}

#[derive(Default)]
struct Shared {
    counts: Counts,
    /// The latest counts of each live worker process, by pid.
    live: HashMap<u32, Counts>,
    failures: Vec<String>,
}

fn supervise(args: &Args) -> Result<(), String> {
    let tmp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("pcache-chaos-{}", std::process::id()));
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join("stop"));
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64)
    });
    println!(
        "chaos: {} workers for {} s on {} (seed {seed}){}",
        args.workers,
        args.duration,
        dir.display(),
        if args.remote {
            ", a fresh machine per worker process, one faulty remote"
        } else {
            ""
        }
    );
    let mut rng = Rng::new(seed);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let mut workers: Vec<Worker> = (0..args.workers)
        .map(|_| spawn_worker(&dir, rng.next(), args.remote, &shared))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let end = started + Duration::from_secs(args.duration);
    let (mut kills, mut corruptions, mut max_temps, mut max_locks) = (0u64, 0u64, 0usize, 0usize);
    let mut next_kill = Instant::now() + Duration::from_millis(200 + rng.below(800));
    let mut next_corrupt = Instant::now() + Duration::from_millis(50 + rng.below(200));
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        if Instant::now() >= next_kill {
            let i = rng.below(workers.len() as u64) as usize;
            // SIGKILL, at whatever the worker is doing.
            let _ = workers[i].child.kill();
            reap(&mut workers[i], &shared, true);
            workers[i] = spawn_worker(&dir, rng.next(), args.remote, &shared)?;
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(100 + rng.below(900));
        }
        if Instant::now() >= next_corrupt {
            corruptions += u64::from(corrupt_one(&dir, &mut rng));
            next_corrupt = Instant::now() + Duration::from_millis(50 + rng.below(250));
        }
        for w in &mut workers {
            if let Ok(Some(_)) = w.child.try_wait() {
                reap(w, &shared, false);
            }
            let idle = w
                .last_progress
                .lock()
                .map(|t| t.elapsed())
                .unwrap_or_default();
            if idle > Duration::from_secs(10) {
                shared.lock().unwrap().failures.push(format!(
                    "worker {} made no progress for {idle:?} (deadlock?)",
                    w.child.id()
                ));
            }
        }
        let (temps, locks) = leftovers(&dir);
        max_temps = max_temps.max(temps);
        max_locks = max_locks.max(locks);
        if !shared.lock().unwrap().failures.is_empty() {
            break;
        }
    }
    // Stop: ask workers to finish, then wait for their final counts.
    std::fs::write(dir.join("stop"), "").map_err(|e| e.to_string())?;
    for w in &mut workers {
        let deadline = Instant::now() + Duration::from_secs(15);
        while w.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if w.child.try_wait().ok().flatten().is_none() {
            shared
                .lock()
                .unwrap()
                .failures
                .push(format!("worker {} did not stop", w.child.id()));
            let _ = w.child.kill();
        }
        reap(w, &shared, false);
    }
    // Give reader threads a moment to drain the last lines.
    std::thread::sleep(Duration::from_millis(200));
    let trusted = worker::trusted_entries(&dir);
    let remote = worker::RemoteCounts::read(&dir);
    let final_check = worker::verify_all(&dir);
    let (swept_temps, swept_locks) = worker::sweep(&dir);
    let (temps_left, locks_left) = leftovers(&dir);
    let shared = shared.lock().unwrap();
    let mut total = shared.counts;
    for c in shared.live.values() {
        total.add(*c);
    }
    let elapsed = started.elapsed();
    let rows: [(&str, String); 19] = [
        ("duration", format!("{:.1} s", elapsed.as_secs_f64())),
        ("workers", args.workers.to_string()),
        ("operations", total.ops.to_string()),
        ("verified reads", total.verified.to_string()),
        ("verified stream items", total.stream_items.to_string()),
        ("misses", total.misses.to_string()),
        ("corrupt entries detected", total.corrupt.to_string()),
        ("SIGKILLs", kills.to_string()),
        ("corruptions injected", corruptions.to_string()),
        ("entries trusted by identity", trusted.to_string()),
        ("remote: entries imported", remote.imported.to_string()),
        ("remote: entries refused", remote.refused.to_string()),
        (
            "remote: requests dropped/failed/slowed",
            format!("{}/{}/{}", remote.dropped, remote.failed, remote.slowed),
        ),
        (
            "final check: entries verified",
            final_check
                .as_ref()
                .map_or_else(|e| e.clone(), |n| n.to_string()),
        ),
        ("max temp files at once", max_temps.to_string()),
        ("max lock files at once", max_locks.to_string()),
        (
            "swept at the end (temps, locks)",
            format!("{swept_temps}, {swept_locks}"),
        ),
        (
            "left after the sweep",
            format!("{temps_left} temps, {locks_left} locks"),
        ),
        (
            "wrong values / panics / stalls",
            shared.failures.len().to_string(),
        ),
    ];
    println!();
    for (what, value) in rows {
        println!("  {what:<34} {value:>14}");
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Some(first) = shared.failures.first() {
        return Err(format!(
            "{} failures; first: {first}",
            shared.failures.len()
        ));
    }
    final_check?;
    if temps_left + locks_left > 0 {
        return Err(format!(
            "{temps_left} temp and {locks_left} lock files survived a flush"
        ));
    }
    // Killed writers leave at most their one write in progress each; locks
    // are per key.
    let temp_bound = kills as usize + 4 * args.workers + 8;
    if max_temps > temp_bound || max_locks > worker::KEYS as usize * 2 + 8 {
        return Err(format!(
            "leftover files grew without bound: {max_temps} temps, {max_locks} locks"
        ));
    }
    if total.ops == 0 || total.verified == 0 {
        return Err("the workers did nothing".to_owned());
    }
    println!("\nchaos: OK");
    Ok(())
}

fn spawn_worker(
    dir: &Path,
    seed: u64,
    remote: bool,
    shared: &Arc<Mutex<Shared>>,
) -> Result<Worker, String> {
    let mut command = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    if remote {
        command.arg("--remote");
    }
    let mut child = command
        .arg("--worker")
        .arg("--dir")
        .arg(dir)
        .arg("--seed")
        .arg(seed.to_string())
        .stdin(Stdio::null())
        // pcache-build's step lines.
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn worker: {e}"))?;
    let pid = child.id();
    let last_progress = Arc::new(Mutex::new(Instant::now()));
    let stderr = child.stderr.take().expect("piped");
    let progress = last_progress.clone();
    let shared = shared.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("chaos-progress ") {
                let n: Vec<u64> = rest.split(' ').filter_map(|v| v.parse().ok()).collect();
                if let [ops, verified, misses, corrupt, stream_items] = n[..] {
                    let counts = Counts {
                        ops,
                        verified,
                        misses,
                        corrupt,
                        stream_items,
                    };
                    shared.lock().unwrap().live.insert(pid, counts);
                    *progress.lock().unwrap() = Instant::now();
                }
            } else if line.starts_with("WRONG") || line.contains("panicked") {
                shared
                    .lock()
                    .unwrap()
                    .failures
                    .push(format!("worker {pid}: {line}"));
            } else if !line.contains("cargo:warning") && !line.trim().is_empty() {
                eprintln!("worker {pid}: {line}");
            }
        }
    });
    Ok(Worker {
        child,
        last_progress,
    })
}

/// Collects an ended worker: its counts move to the totals; an exit other
/// than success or our SIGKILL is a failure.
fn reap(w: &mut Worker, shared: &Arc<Mutex<Shared>>, killed: bool) {
    let status = w.child.wait();
    let pid = w.child.id();
    let mut shared = shared.lock().unwrap();
    if let Some(c) = shared.live.remove(&pid) {
        shared.counts.add(c);
    }
    match status {
        Ok(s) if s.success() || killed => {}
        Ok(s) => shared
            .failures
            .push(format!("worker {pid} exited with {s}")),
        Err(e) => shared.failures.push(format!("worker {pid}: {e}")),
    }
    // Keep the watchdog from firing on a reaped worker.
    *w.last_progress.lock().unwrap() = Instant::now() + Duration::from_secs(3600);
}

/// Truncates or flips a byte in a random entry file; returns whether it did.
fn corrupt_one(dir: &Path, rng: &mut Rng) -> bool {
    let files = worker::entry_files(dir);
    if files.is_empty() {
        return false;
    }
    let path = &files[rng.below(files.len() as u64) as usize];
    let Ok(mut bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.is_empty() {
        return false;
    }
    if rng.below(2) == 0 {
        bytes.truncate(rng.below(bytes.len() as u64) as usize);
    } else {
        let at = rng.below(bytes.len() as u64) as usize;
        bytes[at] ^= 1 << rng.below(8);
    }
    // In place, like a disk error would: no rename.
    std::fs::write(path, bytes).is_ok()
}

/// (temporary files, lock files) under `dir`.
fn leftovers(dir: &Path) -> (usize, usize) {
    let mut temps = 0;
    let mut locks = 0;
    for path in worker::all_files(dir) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(".tmp.") {
            temps += 1;
        } else if name.ends_with(".lock") && name != ".trim.lock" && name != ".outbox.lock" {
            // `.trim.lock` and `.outbox.lock` are the locks of a whole
            // pcache directory, kept like cargo's own lock files: bounded
            // by construction.
            locks += 1;
        }
    }
    (temps, locks)
}
