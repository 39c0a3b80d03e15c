//! The launcher: what Cargo runs in place of a dependency's build script.
//! It computes the run's key; on a hit it restores `OUT_DIR` from the
//! per-user store and prints the run's stdout again, and the real script
//! does not run; on a miss it runs the real script, passing its stdout
//! through, and stores `OUT_DIR` and stdout when it succeeded.
//!
//! Whatever goes wrong on pcache's side, the real script runs (with one
//! warning): the launcher never fails a build the script would not have
//! failed, except under `PCACHE=verify` when the script's output differs
//! from its entry, and with `PCACHE_REMOTE_REQUIRED=1`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcache_core::config::{self, Env, Mode};
use pcache_core::places::{Places, Template};
use pcache_core::record::{EntryNotes, LastMiss, MissReason, Outcome, StepRecord};
use pcache_core::remote::{EntryName, RemoteClient};
use pcache_core::tree::{Restore, RestoredTree, Tree};
use pcache_core::{CacheMeta, Key, Lookup, Store, conventions, gc};

use crate::declare::Declarations;
use crate::key::{self, Context, Level1, Level2, RUN_MARKER};
use crate::record::LaunchRecord;
use crate::run::{self, Finished};
use crate::wrapper;
use pcache_core::trace::Trace;

mod verify;

/// The name of every package's build-script cache in the per-user store.
pub const CACHE_NAME: &str = "(build script)";

/// At most this many sets of declarations are remembered per level-1 key.
const DECLARATIONS_KEPT: usize = 8;

/// Runs the launcher, as the build script in `dir` (where Cargo ran it).
pub(crate) fn run(dir: &Path) -> ExitCode {
    let record = match LaunchRecord::read(dir) {
        Ok(record) => record,
        Err(e) => {
            eprintln!(
                "error: pcache: cannot launch the build script in `{}`: {e}",
                dir.display()
            );
            return ExitCode::from(101);
        }
    };
    let real = record.real_path(dir);
    let env = Env::process();
    let chained = config::chained_wrapper(&env);
    let mut problems = Vec::new();
    let mode = config::mode(&env, &mut problems);
    // Cargo no longer runs pcache's wrapper (`cargo pcache disable`, or
    // `RUSTC_WRAPPER` set to something else): this launcher is a leftover.
    let enabled = std::env::var_os("RUSTC_WRAPPER").is_some_and(|w| wrapper::is_pcache_wrapper(&w));
    // Skipped since the script was compiled (`PCACHE_BUILD_SCRIPTS=!name`).
    let skipped = config::build_scripts(&env, &config::Settings::default())
        .is_some_and(|scripts| scripts.skips(&package_name()));
    if mode == Mode::Off || !enabled || skipped {
        // As without pcache: the script, directly, and nothing written.
        let wrapper = if enabled {
            chained
        } else {
            std::env::var_os("RUSTC_WRAPPER")
        };
        return run::exec(run::command(&real, wrapper.as_ref()));
    }
    let launch = match Launch::prepare(&record, real.clone(), &env, mode, chained.clone()) {
        Ok(launch) => launch,
        Err(problem) => {
            warn(&package_name(), &problem);
            return run::exec(run::command(&real, chained.as_ref()));
        }
    };
    for problem in problems {
        launch.warn(&problem);
    }
    launch.run()
}

/// Everything one run of the launcher works with.
struct Launch<'a> {
    record: &'a LaunchRecord,
    real: PathBuf,
    package: String,
    vars: BTreeMap<String, String>,
    manifest_dir: PathBuf,
    out_dir: PathBuf,
    home: PathBuf,
    store: Store,
    mode: Mode,
    chained: Option<OsString>,
    remote: Option<RemoteClient>,
    min_time: Duration,
    max_size: u64,
    stats: bool,
    started: Instant,
    trace: Arc<Trace>,
    cargo_home: Option<PathBuf>,
}

impl<'a> Launch<'a> {
    fn prepare(
        record: &'a LaunchRecord,
        real: PathBuf,
        env: &Env,
        mode: Mode,
        chained: Option<OsString>,
    ) -> Result<Launch<'a>, String> {
        let started = Instant::now();
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| format!("{name} is not set: not run by Cargo?"))
        };
        let out_dir = path("OUT_DIR")?;
        let manifest_dir = path("CARGO_MANIFEST_DIR")?;
        let home = config::home(env)
            .ok_or("no per-user store: set PCACHE_HOME (there is no home directory)")?;
        let package = package_name();
        let trace = Arc::new(Trace::new(config::trace(env)));
        // Made for the key's lock; removed again if nothing is stored.
        let store = Store::open(conventions::cache_dir(&home, &package, CACHE_NAME))
            .map_err(|e| e.to_string())?
            .with_trace(Arc::clone(&trace));
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
            .collect();
        let mut problems = Vec::new();
        let min_time = config::build_script_min_time(env, &mut problems);
        let max_size = config::home_max_size(None, env, &mut problems);
        let launch = Launch {
            record,
            real,
            package,
            vars,
            manifest_dir,
            out_dir,
            home,
            store,
            mode,
            chained,
            remote: RemoteClient::from_env(env),
            min_time,
            max_size,
            stats: config::stats(env),
            started,
            trace,
            cargo_home: config::cargo_home(),
        };
        launch.trace.phase("prepare");
        for problem in problems {
            launch.warn(&problem);
        }
        Ok(launch)
    }

    fn context(&self) -> Context<'_> {
        Context {
            vars: &self.vars,
            manifest_dir: &self.manifest_dir,
            out_dir: &self.out_dir,
            script: self.record.identity,
            local: self.record.local,
            memo_root: Some(&self.home),
            cargo_home: self.cargo_home.as_deref(),
        }
    }

    fn warn(&self, problem: &str) {
        warn(&self.package, problem);
    }

    fn run(self) -> ExitCode {
        let ctx = self.context();
        let level1 = key::level1(&ctx);
        self.trace.phase("level 1 key");
        let level1 = match level1 {
            Ok(level1) => level1,
            Err(problem) => {
                self.warn(&problem);
                return run::exec(self.command());
            }
        };
        // Two builds of the same package at once: one runs the script, the
        // other waits, then finds its run stored.
        let guard = self
            .store
            .lock(&level1.key)
            .map_err(|e| self.warn(&e.cause().to_string()))
            .ok();
        self.trace.phase("lock");
        let code = self.look_up_or_run(&ctx, &level1);
        drop(guard);
        self.tidy();
        self.trace.phase("unlock");
        self.trace.print(&self.package);
        code
    }

    fn look_up_or_run(&self, ctx: &Context<'_>, level1: &Level1) -> ExitCode {
        let declared = self.declared(level1);
        self.trace.phase("declarations");
        let mut corrupt = false;
        if self.mode != Mode::Verify {
            for declarations in &declared {
                let level2 = key::level2(level1, declarations, ctx);
                self.trace.phase("level 2 key");
                match self.restore(&level2.key) {
                    Ok(Some(restored)) => match self.hit(&level2, restored) {
                        Ok(code) => return code,
                        Err(problem) => {
                            self.warn(&problem);
                            corrupt = true;
                            // The script runs into the OUT_DIR Cargo gave it.
                            let _ = fs::remove_dir_all(&self.out_dir);
                            let _ = fs::create_dir_all(&self.out_dir);
                        }
                    },
                    Ok(None) => {}
                    Err(problem) => {
                        self.warn(&problem);
                        corrupt = true;
                    }
                }
            }
        }
        self.miss(level1, declared, corrupt)
    }

    /// Removes the package's directory in the per-user store again when
    /// nothing was stored in it (a run too short to store, a failing one).
    fn tidy(&self) {
        let dir = self.store.dir();
        if fs::remove_dir(dir).is_ok() {
            if let Some(package) = dir.parent() {
                let _ = fs::remove_dir(package);
            }
        }
    }

    /// The sets of declarations stored under level 1 (fetched from the
    /// remote when not here), newest first.
    fn declared(&self, level1: &Level1) -> Vec<Declarations> {
        self.fetch_if_missing(&level1.key);
        match self.store.get::<Vec<Declarations>>(&level1.key) {
            Ok(declared) => declared.unwrap_or_default(),
            Err(e) => {
                self.warn(&e.cause().to_string());
                Vec::new()
            }
        }
    }

    /// The run stored under `key` (fetched from the remote when not here),
    /// read whole: its `OUT_DIR` tree and stdout.
    fn stored_run(&self, key: &Key) -> Result<Option<StoredRun>, String> {
        self.fetch_if_missing(key);
        match self
            .store
            .lookup::<Tree>(key)
            .map_err(|e| e.cause().to_string())?
        {
            Lookup::Found(found) => {
                let notes = EntryNotes::decode(&found.notes)
                    .ok_or("the stored run's notes do not decode")?;
                let stdout = notes.directives.into_iter().next().unwrap_or_default();
                Ok(Some(StoredRun {
                    tree: found.value,
                    stdout: Template::from_string(stdout),
                }))
            }
            Lookup::Absent | Lookup::Expired => Ok(None),
        }
    }

    /// The run stored under `key` (fetched from the remote when not here),
    /// its `OUT_DIR` restored exactly: swapped in whole, or left as it was.
    fn restore(&self, key: &Key) -> Result<Option<RestoredTree>, String> {
        self.fetch_if_missing(key);
        self.trace.phase("remote check");
        let place = self.out_dir_text()?;
        let restored = self
            .store
            .restore_tree(key, Restore::exact().place(place), &self.out_dir)
            .map_err(|e| e.to_string());
        match restored? {
            Lookup::Found(restored) => Ok(Some(restored)),
            Lookup::Absent | Lookup::Expired => Ok(None),
        }
    }

    /// A hit: `OUT_DIR` restored, stdout printed again, the script not run.
    fn hit(&self, level2: &Level2, restored: RestoredTree) -> Result<ExitCode, String> {
        let notes =
            EntryNotes::decode(&restored.notes).ok_or("the stored run's notes do not decode")?;
        let template =
            Template::from_string(notes.directives.into_iter().next().unwrap_or_default());
        let stdout = self
            .places()
            .render(&template)
            .map_err(|_| "the stored run's stdout names a place this run lacks".to_owned())?;
        self.mark(&level2.key);
        let mut out = std::io::stdout().lock();
        out.write_all(stdout.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("failed to print the stored stdout: {e}"))?;
        self.trace.phase("replay");
        let elapsed = self.started.elapsed();
        let compute_time = restored.info.compute_time;
        self.record(
            StepRecord::new(Outcome::Hit, compute_time, elapsed).bytes(restored.info.size_bytes, 0),
        );
        self.trace.phase("statistics");
        eprintln!(
            "pcache: hit {} build script: restored {} paths ({}) in {}, saved {}",
            self.package,
            restored.paths.len(),
            conventions::format_size(restored.content_bytes),
            time(elapsed),
            time(compute_time.saturating_sub(elapsed)),
        );
        Ok(ExitCode::SUCCESS)
    }

    /// A miss (or `PCACHE=verify`): the real script runs; a successful run
    /// is stored (or compared).
    fn miss(&self, level1: &Level1, declared: Vec<Declarations>, corrupt: bool) -> ExitCode {
        // A marker left by an earlier run in this `OUT_DIR` is not this one's.
        let _ = fs::remove_file(self.out_dir.join(RUN_MARKER));
        let finished = run::run_teeing(self.command());
        self.trace.phase("the real script");
        let finished = match finished {
            Ok(finished) => finished,
            Err(e) => {
                eprintln!(
                    "error: pcache: failed to run the build script `{}`: {e}",
                    self.real.display()
                );
                return ExitCode::from(101);
            }
        };
        if !finished.status.success() {
            // A failing script is never stored.
            return run::exit_like(finished.status);
        }
        let stdout = String::from_utf8_lossy(&finished.stdout).into_owned();
        let declarations = Declarations::parse(&stdout, &self.manifest_dir, &self.out_dir)
            .with_machine_paths(self.places().template(&stdout).as_str());
        let level2 = key::level2(level1, &declarations, &self.context());
        self.mark(&level2.key);
        self.trace.phase("level 2 key");
        if self.mode == Mode::Verify {
            match self.stored_run(&level2.key) {
                Ok(Some(stored)) => return self.verify(&level2, stored, &stdout, &finished),
                // Nothing to compare with: stored as on a miss.
                Ok(None) => {}
                Err(problem) => self.warn(&problem),
            }
        }
        if finished.took < self.min_time {
            eprintln!(
                "pcache: {} build script ran in {}: not stored (under {})",
                self.package,
                time(finished.took),
                time(self.min_time)
            );
            return ExitCode::SUCCESS;
        }
        let reason = if self.mode == Mode::Verify {
            MissReason::Verify
        } else {
            self.miss_reason(&level2, &declared, corrupt)
        };
        let stored = self.store_run(level1, &level2, declared, declarations, &stdout, &finished);
        self.trace.phase("store");
        match stored {
            Ok(size) => {
                let _ = self.store.set_last_miss(&LastMiss::new(
                    &level2.key,
                    reason,
                    level2.parts.clone(),
                ));
                self.record(
                    StepRecord::new(Outcome::Miss(reason), finished.took, finished.took)
                        .bytes(0, size),
                );
                eprintln!(
                    "pcache: miss {} build script: ran in {}, stored {}",
                    self.package,
                    time(finished.took),
                    conventions::format_size(size)
                );
            }
            Err(problem) => self.warn(&problem),
        }
        ExitCode::SUCCESS
    }

    /// Stores the run under level 2, and its declarations under level 1;
    /// sends both to the remote when they are portable. Returns the bytes
    /// stored.
    fn store_run(
        &self,
        level1: &Level1,
        level2: &Level2,
        mut declared: Vec<Declarations>,
        declarations: Declarations,
        stdout: &str,
        finished: &Finished,
    ) -> Result<u64, String> {
        let tree =
            Tree::capture(&self.out_dir, Some(self.out_dir_text()?)).map_err(|e| e.to_string())?;
        let meta = CacheMeta::new(CACHE_NAME).package(&self.package);
        if self.store.meta().ok().flatten().as_ref() != Some(&meta) {
            self.store.write_meta(&meta).map_err(|e| e.to_string())?;
        }
        let template = self.places().template(stdout);
        let local_only = level1.names_machine_paths || level2.names_machine_paths;
        let mut notes = EntryNotes::new(vec![template.into_string()], Some(level2.parts.clone()));
        if local_only {
            notes = notes.local_only();
        }
        let info = self
            .store
            .set_with_notes(&level2.key, &tree, finished.took, &notes.encode())
            .map_err(|e| e.to_string())?;
        declared.retain(|d| *d != declarations);
        declared.insert(0, declarations);
        declared.truncate(DECLARATIONS_KEPT);
        // The declarations stay on this machine too when none of them is of
        // use elsewhere.
        let l1_local_only =
            level1.names_machine_paths || declared.iter().all(Declarations::host_bound);
        let mut l1_notes = EntryNotes::new(Vec::new(), None);
        if l1_local_only {
            l1_notes = l1_notes.local_only();
        }
        self.store
            .set_with_notes(&level1.key, &declared, Duration::ZERO, &l1_notes.encode())
            .map_err(|e| e.to_string())?;
        if let Some(remote) = self.remote.as_ref().filter(|r| r.writes()) {
            let mut keys = Vec::new();
            if !l1_local_only {
                keys.push(level1.key);
            }
            if !local_only {
                keys.push(level2.key);
            }
            for key in keys {
                if let Some(entry) = EntryName::in_root(&self.home, self.store.dir(), key) {
                    for problem in remote.upload(&self.home, &entry) {
                        self.remote_trouble(remote, &problem);
                    }
                }
            }
        }
        if let Err(e) = gc::after_store(&self.home, info.size_bytes, self.max_size) {
            self.warn(&e.to_string());
        }
        Ok(info.size_bytes)
    }

    fn miss_reason(&self, level2: &Level2, declared: &[Declarations], corrupt: bool) -> MissReason {
        if corrupt {
            return MissReason::Corrupt;
        }
        if self.store.was_evicted(&level2.key) {
            return MissReason::Evicted;
        }
        if !declared.is_empty() {
            // The script ran here with these inputs before: a declared one changed.
            return MissReason::InputsChanged;
        }
        match self.store.last_miss().ok().flatten() {
            Some(previous) => {
                let code = |p: &pcache_core::record::KeyParts| p.code.as_ref().map(|c| c.digest);
                if code(&previous.parts) != code(&level2.parts) {
                    MissReason::CodeChanged
                } else {
                    MissReason::InputsChanged
                }
            }
            None => MissReason::NewKey,
        }
    }

    /// The entry `key` fetched from the remote, when it is not here.
    fn fetch_if_missing(&self, key: &Key) {
        let Some(remote) = &self.remote else {
            return;
        };
        if self.store.entry_path(key).exists() {
            return;
        }
        if let Some(problem) = remote.problem() {
            self.remote_trouble(remote, problem);
            return;
        }
        let Some(entry) = EntryName::in_root(&self.home, self.store.dir(), *key) else {
            return;
        };
        if let Err(problem) = remote.fetch(&self.home, &entry) {
            self.remote_trouble(remote, &problem);
        }
    }

    /// One warning per process; with `PCACHE_REMOTE_REQUIRED=1`, a failed
    /// build.
    fn remote_trouble(&self, remote: &RemoteClient, problem: &str) {
        if remote.required() {
            eprintln!(
                "error: pcache: {} build script: {}=1 and {problem}",
                self.package,
                pcache_core::remote::REQUIRED_VAR
            );
            std::process::exit(101);
        }
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.warn(problem);
        }
    }

    /// Leaves the run's key in `OUT_DIR`, for the keys of its consumers.
    fn mark(&self, key: &Key) {
        let _ = fs::write(self.out_dir.join(RUN_MARKER), key.to_string());
    }

    fn record(&self, record: StepRecord) {
        if self.stats {
            if let Err(e) = self.store.stats_log().append(&record) {
                self.warn(&e.cause().to_string());
            }
        }
    }

    fn command(&self) -> std::process::Command {
        run::command(&self.real, self.chained.as_ref())
    }

    fn places(&self) -> Places {
        Places::new(Some(&self.out_dir), Some(&self.manifest_dir))
    }

    fn out_dir_text(&self) -> Result<&str, String> {
        self.out_dir
            .to_str()
            .ok_or_else(|| format!("OUT_DIR `{}` is not UTF-8", self.out_dir.display()))
    }
}

/// A run as stored, read whole (for `PCACHE=verify`).
struct StoredRun {
    tree: Tree,
    stdout: Template,
}

fn package_name() -> String {
    std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "_".to_owned())
}

/// One `cargo:warning` line (shown by Cargo for path packages, and with
/// `-vv` for the others).
fn warn(package: &str, problem: &str) {
    let line = format!(
        "cargo:warning=pcache: {package} build script: {}\n",
        problem.replace('\n', " ")
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
}

fn time(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}
