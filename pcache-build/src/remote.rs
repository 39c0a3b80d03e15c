//! The remote tier, from a build script: on a local miss, the entry is
//! looked for on the remote before computing; an entry computed here is
//! sent there afterwards. Both go through `cargo-pcache` (the helper), which
//! holds the storage client, so that pcache-build stays light: with no
//! remote configured, nothing here runs but one check of a variable.
//!
//! The remote never breaks a build (unless `PCACHE_REMOTE_REQUIRED=1`):
//! its troubles are one warning per process, and once a build script finds
//! it unavailable, the others leave it alone for [`remote::DOWN_FOR`].

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pcache_core::remote::{
    self, Access, EntryName, HelperAction, HelperReply, HelperRequest, HelperStatus, Marker,
    RemoteSettings,
};
use pcache_core::{Key, Store};

use crate::report::Problem;
use crate::session::Session;

/// The safety net over the helper's own deadlines.
const HELPER_CAP: Duration = Duration::from_secs(15 * 60);

/// The remote as configured for this process, worked out once, on the
/// first local miss.
#[derive(Debug)]
struct Setup {
    settings: Option<RemoteSettings>,
    /// What is wrong with the configuration, if anything.
    problem: Option<String>,
    /// `PCACHE_REMOTE_REQUIRED=1`, even when the rest is unusable.
    required: bool,
    helper: Option<PathBuf>,
}

/// The remote tier's set-up; `None` without `PCACHE_REMOTE`. Without it,
/// this is all a step pays.
fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let env = &Session::get().env;
            env.vars
                .get(remote::REMOTE_VAR)
                .is_some_and(|v| !v.trim().is_empty())
                .then(|| Setup::from_env(env))
        })
        .as_ref()
}

impl Setup {
    fn from_env(env: &crate::env::BuildEnv) -> Setup {
        let settings = RemoteSettings::from_vars(|name| env.vars.get(name));
        let (settings, problem) = match settings {
            Ok(settings) => (settings, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let explicit = env
            .vars
            .get_os(remote::HELPER_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let helper = settings
            .as_ref()
            .and_then(|_| find_helper(explicit.as_deref()));
        let required =
            remote::parse_required(env.vars.get(remote::REQUIRED_VAR).as_deref()).unwrap_or(true);
        Setup {
            settings,
            problem,
            required,
            helper,
        }
    }
}

/// The helper: `$PCACHE_REMOTE_HELPER`, else `cargo-pcache` on `PATH`, else
/// in Cargo's `bin` directory.
fn find_helper(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_owned());
    }
    let exe = format!("cargo-pcache{}", std::env::consts::EXE_SUFFIX);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .map(|dir| dir.join(&exe))
        .find(|candidate| candidate.is_file())
}

/// What the remote did for one step.
#[derive(Debug, Default)]
pub(crate) struct Visit {
    /// The entry came from the remote.
    pub(crate) fetched: bool,
    /// Where to send the entry if the step stores one.
    pub(crate) upload: Option<Upload>,
}

/// An entry to send once stored.
#[derive(Debug)]
pub(crate) struct Upload {
    root: PathBuf,
    entry: EntryName,
}

/// Before a step reads its entry: when it is not here and a remote is
/// configured, asks the helper to bring it. Problems go to `problems`
/// (one per process); with `PCACHE_REMOTE_REQUIRED=1` they fail the build.
pub(crate) fn read_through(
    step_name: &str,
    store: &Store,
    key: &Key,
    problems: &mut Vec<Problem>,
) -> Visit {
    let (Some(setup), Ok(root)) = (setup(), &Session::get().root) else {
        return Visit::default();
    };
    let mut visit = Visit::default();
    let Some(settings) = &setup.settings else {
        if let Some(problem) = &setup.problem {
            trouble(step_name, setup, problem.clone(), problems);
        }
        return visit;
    };
    let Some(entry) = entry_name(root, store, key) else {
        return visit;
    };
    if settings.access == Access::ReadWrite {
        visit.upload = Some(Upload {
            root: root.clone(),
            entry: entry.clone(),
        });
    }
    if store.entry_path(key).exists() {
        return visit;
    }
    let url = settings.url.redacted();
    if let Some(cause) = marked_down(root, &url) {
        trouble(
            step_name,
            setup,
            format!("remote {url} skipped: another build script found it unavailable ({cause})"),
            problems,
        );
        return visit;
    }
    let Some(helper) = &setup.helper else {
        trouble(step_name, setup, missing_helper(&url), problems);
        return visit;
    };
    let request = HelperRequest::new(root.clone(), HelperAction::Fetch(entry));
    match run_helper(helper, &request) {
        (Some(HelperStatus::Done), _) => visit.fetched = true,
        (Some(HelperStatus::Absent), _) => {}
        (status, message) => {
            let problem = describe(&url, status, &message);
            trouble(step_name, setup, problem, problems);
        }
    }
    visit
}

/// After a step stored its entry: leaves it in the outbox and starts an
/// uploader in the background (the build does not wait for the network),
/// or, with `PCACHE_REMOTE_REQUIRED=1`, uploads it before going on.
pub(crate) fn write_back(step_name: &str, upload: &Upload, problems: &mut Vec<Problem>) {
    let Some(setup) = setup() else {
        return;
    };
    let Some(settings) = &setup.settings else {
        return;
    };
    let outbox = remote::outbox_dir(&upload.root);
    let item = outbox.join(upload.entry.outbox_item());
    if let Err(e) = fs::create_dir_all(&outbox).and_then(|()| fs::write(&item, b"")) {
        let problem = format!(
            "failed to queue the entry for the remote in `{}`: {e}",
            outbox.display()
        );
        trouble(step_name, setup, problem, problems);
        return;
    }
    let url = settings.url.redacted();
    if !setup.required {
        // A required remote's uploads happen here, and report themselves.
        if let Some(cause) = last_upload_error(&upload.root, &url) {
            trouble(step_name, setup, cause, problems);
        }
    }
    if let Some(cause) = marked_down(&upload.root, &url) {
        if setup.required {
            let problem = format!("remote {url} is unavailable ({cause}): the entry was not sent");
            trouble(step_name, setup, problem, problems);
        }
        // `cargo pcache push` sends it later.
        return;
    }
    let Some(helper) = &setup.helper else {
        trouble(step_name, setup, missing_helper(&url), problems);
        return;
    };
    if setup.required {
        let request = HelperRequest::new(
            upload.root.clone(),
            HelperAction::Upload(Some(upload.entry.clone())),
        );
        match run_helper(helper, &request) {
            (Some(HelperStatus::Done), _) => {}
            (status, message) => {
                let problem = describe(&url, status, &message);
                trouble(step_name, setup, problem, problems);
            }
        }
        return;
    }
    let request = HelperRequest::new(upload.root.clone(), HelperAction::Upload(None));
    let mut command = helper_command(helper, &request);
    command.stderr(Stdio::null());
    detach(&mut command);
    if let Err(e) = command.spawn() {
        let problem = format!("failed to start {}: {e}", helper.display());
        trouble(step_name, setup, problem, problems);
    }
}

/// The entry's name under the pcache directory, from its cache's place.
fn entry_name(root: &Path, store: &Store, key: &Key) -> Option<EntryName> {
    let rel = store.dir().strip_prefix(root).ok()?;
    let mut parts = rel.iter().filter_map(|p| p.to_str());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(package_dir), Some(cache_id), None) => {
            EntryName::new(package_dir, cache_id, *key).ok()
        }
        _ => None,
    }
}

/// The cause another build script recorded, if it found `url` unavailable
/// less than [`remote::DOWN_FOR`] ago.
fn marked_down(root: &Path, url: &str) -> Option<String> {
    let marker = remote::down_marker(root);
    let age = fs::metadata(&marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())?;
    if age >= remote::DOWN_FOR {
        return None;
    }
    let marker = read_marker(&marker, url)?;
    Some(format!(
        "{}, {} s ago",
        or_no_cause(&marker.message),
        age.as_secs()
    ))
}

/// The last background upload's failure, if it was to `url`.
fn last_upload_error(root: &Path, url: &str) -> Option<String> {
    let marker = read_marker(&remote::upload_error(root), url)?;
    Some(format!(
        "remote {url}: {} (entries wait for `cargo pcache push`)",
        or_no_cause(&marker.message)
    ))
}

/// The marker at `path`, if it is about `url`.
fn read_marker(path: &Path, url: &str) -> Option<Marker> {
    let marker = Marker::parse(&fs::read_to_string(path).ok()?)?;
    (marker.remote == url).then_some(marker)
}

fn or_no_cause(message: &str) -> &str {
    if message.is_empty() {
        "no cause recorded"
    } else {
        message
    }
}

fn missing_helper(url: &str) -> String {
    format!(
        "remote {url} is configured, but cargo-pcache, which reaches it, is not installed \
         (cargo install cargo-pcache, or set {})",
        remote::HELPER_VAR
    )
}

/// One warning per process; with `PCACHE_REMOTE_REQUIRED=1`, a failed build.
fn trouble(step_name: &str, setup: &Setup, problem: String, problems: &mut Vec<Problem>) {
    if setup.required {
        panic!(
            "pcache: {}: {}=1 and {problem}",
            crate::report::display_name(step_name),
            remote::REQUIRED_VAR
        );
    }
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        problems.push(Problem::new(problem, None));
    }
}

fn describe(url: &str, status: Option<HelperStatus>, message: &str) -> String {
    let message = if message.is_empty() {
        "no reason given"
    } else {
        message
    };
    match status {
        Some(HelperStatus::Unavailable) => format!(
            "remote {url} unavailable: {message}; build scripts skip it for {} s",
            remote::DOWN_FOR.as_secs()
        ),
        Some(HelperStatus::Invalid) => format!("remote {url}: {message}"),
        Some(HelperStatus::Failed) => format!("remote {url} failed: {message}"),
        Some(HelperStatus::Incompatible | HelperStatus::Error) => {
            format!("remote {url}: {message}")
        }
        Some(HelperStatus::Done | HelperStatus::Absent) | None => {
            format!("remote {url}: the helper failed: {message}")
        }
    }
}

fn helper_command(helper: &Path, request: &HelperRequest) -> Command {
    let mut command = Command::new(helper);
    command
        .args(request.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

/// Runs the helper and waits for it: its status and its one line.
fn run_helper(helper: &Path, request: &HelperRequest) -> (Option<HelperStatus>, String) {
    let mut command = helper_command(helper, request);
    command.stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return (None, format!("failed to run {}: {e}", helper.display())),
    };
    let status = wait_capped(&mut child);
    let mut stderr = Vec::new();
    if let Some(pipe) = child.stderr.take() {
        let _ = pipe.take(4096).read_to_end(&mut stderr);
    }
    let Some(status) = status else {
        return (
            None,
            format!(
                "{} took longer than {} s",
                helper.display(),
                HELPER_CAP.as_secs()
            ),
        );
    };
    match HelperReply::read(status.code(), &stderr) {
        Ok(reply) => (Some(reply.status), reply.message),
        Err(e) => (None, format!("{} ended with {e}", helper.display())),
    }
}

/// Waits for `child`, killing it past [`HELPER_CAP`]. Polls, backing off
/// from 1 ms: a fetch takes milliseconds.
fn wait_capped(child: &mut Child) -> Option<ExitStatus> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if started.elapsed() < HELPER_CAP => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Lets the uploader outlive the build script, outside its process group
/// (so that Ctrl-C in the terminal stops the build, not a half-done upload
/// that would only be repeated).
fn detach(command: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    #[cfg(not(unix))]
    let _ = command;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_down_marker_counts_for_its_remote_and_for_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let url = "redis://***@h:1/0";
        assert_eq!(marked_down(root, url), None);
        fs::write(
            remote::down_marker(root),
            format!("{url}\nno answer to a stat within 2.0 s\n"),
        )
        .unwrap();
        let cause = marked_down(root, url).unwrap();
        assert!(
            cause.starts_with("no answer to a stat within 2.0 s, "),
            "{cause}"
        );
        // Another remote is not down because this one is.
        assert_eq!(marked_down(root, "file:///elsewhere"), None);
        let old = SystemTime::now() - remote::DOWN_FOR - Duration::from_secs(1);
        fs::File::options()
            .write(true)
            .open(remote::down_marker(root))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(marked_down(root, url), None);
    }

    #[test]
    fn helper_outcomes_name_the_remote_and_the_cause() {
        let url = "s3://b/p";
        let unavailable = describe(url, Some(HelperStatus::Unavailable), "no answer");
        assert_eq!(
            unavailable,
            "remote s3://b/p unavailable: no answer; build scripts skip it for 60 s"
        );
        assert_eq!(
            describe(url, Some(HelperStatus::Failed), ""),
            "remote s3://b/p failed: no reason given"
        );
        assert!(describe(url, None, "killed by signal 9").contains("killed by signal 9"));
    }
}
