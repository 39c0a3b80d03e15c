//! The remote as a build-script process reaches it: through the helper
//! (`cargo-pcache`), which holds the storage client, so that the process
//! itself needs no network code. Used by pcache-build's steps and by the
//! launcher of dependencies' build scripts alike; what they do with the
//! problems it reports (warn once, or fail a required build) is theirs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::{
    Access, DOWN_FOR, EntryName, HELPER_VAR, HelperAction, HelperReply, HelperRequest,
    HelperStatus, Marker, REMOTE_VAR, REQUIRED_VAR, RemoteSettings,
};
use crate::config::Env;

/// The safety net over the helper's own deadlines.
const HELPER_CAP: Duration = Duration::from_secs(15 * 60);

/// The remote as configured for one process.
#[derive(Debug, Clone)]
pub struct RemoteClient {
    settings: Option<RemoteSettings>,
    /// What is wrong with the configuration, if anything.
    problem: Option<String>,
    /// `PCACHE_REMOTE_REQUIRED=1`, even when the rest is unusable.
    required: bool,
    helper: Option<PathBuf>,
}

impl RemoteClient {
    /// The remote `env` configures; `None` without `PCACHE_REMOTE`.
    pub fn from_env(env: &Env) -> Option<RemoteClient> {
        env.get(REMOTE_VAR).filter(|v| !v.trim().is_empty())?;
        let (settings, problem) = match RemoteSettings::from_vars(|name| env.get(name)) {
            Ok(settings) => (settings, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let explicit = env
            .get_os(HELPER_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let helper = settings
            .as_ref()
            .and_then(|_| find_helper(explicit.as_deref(), env));
        // An unreadable value asks for strictness rather than leniency.
        let required = super::parse_required(env.get(REQUIRED_VAR).as_deref()).unwrap_or(true);
        Some(RemoteClient {
            settings,
            problem,
            required,
            helper,
        })
    }

    /// The settings, when they are usable.
    pub fn settings(&self) -> Option<&RemoteSettings> {
        self.settings.as_ref()
    }

    /// What is wrong with the configuration, if anything.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Whether remote failures must fail the build.
    pub fn required(&self) -> bool {
        self.required
    }

    /// Whether entries computed here go to the remote.
    pub fn writes(&self) -> bool {
        self.settings
            .as_ref()
            .is_some_and(|s| s.access == Access::ReadWrite)
    }

    /// The remote, credentials redacted.
    fn url(&self) -> String {
        self.settings
            .as_ref()
            .map_or_else(String::new, |s| s.url.redacted())
    }

    /// Brings `entry` from the remote into the pcache directory `root`:
    /// `Ok(true)` when it was imported (checked as a local read checks it),
    /// `Ok(false)` when the remote has no such entry.
    ///
    /// # Errors
    ///
    /// The problem, naming the remote (redacted) and the cause: the remote
    /// is unavailable (or another build script found it so less than a
    /// minute ago), failed, held an invalid entry, or the helper is missing.
    pub fn fetch(&self, root: &Path, entry: &EntryName) -> Result<bool, String> {
        let url = self.usable()?;
        if let Some(cause) = marked_down(root, &url) {
            return Err(format!(
                "remote {url} skipped: another build script found it unavailable ({cause})"
            ));
        }
        let helper = self.helper(&url)?;
        let request = HelperRequest::new(root.to_owned(), HelperAction::Fetch(entry.clone()));
        match run_helper(helper, &request) {
            (Some(HelperStatus::Done), _) => Ok(true),
            (Some(HelperStatus::Absent), _) => Ok(false),
            (status, message) => Err(describe(&url, status, &message)),
        }
    }

    /// After `entry` was stored under `root`: leaves it in the outbox and
    /// starts an uploader in the background (the build does not wait for
    /// the network), or, for a required remote, uploads it before
    /// returning. Returns the problems to report: the last background
    /// upload's failure, and this one's.
    pub fn upload(&self, root: &Path, entry: &EntryName) -> Vec<String> {
        let mut problems = Vec::new();
        let url = match self.usable() {
            Ok(url) => url,
            Err(problem) => return vec![problem],
        };
        let outbox = super::outbox_dir(root);
        let item = outbox.join(entry.outbox_item());
        if let Err(e) = fs::create_dir_all(&outbox).and_then(|()| fs::write(&item, b"")) {
            problems.push(format!(
                "failed to queue the entry for the remote in `{}`: {e}",
                outbox.display()
            ));
            return problems;
        }
        if !self.required {
            // A required remote's uploads happen here, and report themselves.
            problems.extend(last_upload_error(root, &url));
        }
        if let Some(cause) = marked_down(root, &url) {
            if self.required {
                problems.push(format!(
                    "remote {url} is unavailable ({cause}): the entry was not sent"
                ));
            }
            // `cargo pcache push` sends it later.
            return problems;
        }
        let helper = match self.helper(&url) {
            Ok(helper) => helper,
            Err(problem) => {
                problems.push(problem);
                return problems;
            }
        };
        if self.required {
            let request =
                HelperRequest::new(root.to_owned(), HelperAction::Upload(Some(entry.clone())));
            match run_helper(helper, &request) {
                (Some(HelperStatus::Done), _) => {}
                (status, message) => problems.push(describe(&url, status, &message)),
            }
            return problems;
        }
        let request = HelperRequest::new(root.to_owned(), HelperAction::Upload(None));
        let mut command = helper_command(helper, &request);
        command.stderr(Stdio::null());
        detach(&mut command);
        if let Err(e) = command.spawn() {
            problems.push(format!("failed to start {}: {e}", helper.display()));
        }
        problems
    }

    /// The redacted URL, or the configuration's problem.
    fn usable(&self) -> Result<String, String> {
        match (&self.settings, &self.problem) {
            (Some(_), _) => Ok(self.url()),
            (None, Some(problem)) => Err(problem.clone()),
            (None, None) => Err(format!("{REMOTE_VAR} is not usable")),
        }
    }

    fn helper(&self, url: &str) -> Result<&Path, String> {
        self.helper.as_deref().ok_or_else(|| {
            format!(
                "remote {url} is configured, but cargo-pcache, which reaches it, is not installed \
                 (cargo install cargo-pcache, or set {HELPER_VAR})"
            )
        })
    }
}

/// The helper: `$PCACHE_REMOTE_HELPER`, else `cargo-pcache` on `PATH`, else
/// in Cargo's `bin` directory.
fn find_helper(explicit: Option<&Path>, env: &Env) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_owned());
    }
    let exe = format!("cargo-pcache{}", std::env::consts::EXE_SUFFIX);
    let path = env.get_os("PATH").unwrap_or_default();
    let cargo_bin = crate::config::env::cargo_home().map(|home| home.join("bin"));
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .map(|dir| dir.join(&exe))
        .find(|candidate| candidate.is_file())
}

/// The cause another build script recorded, if it found `url` unavailable
/// less than [`DOWN_FOR`] ago.
fn marked_down(root: &Path, url: &str) -> Option<String> {
    let marker = super::down_marker(root);
    let age = fs::metadata(&marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())?;
    if age >= DOWN_FOR {
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
    let marker = read_marker(&super::upload_error(root), url)?;
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

fn describe(url: &str, status: Option<HelperStatus>, message: &str) -> String {
    let message = if message.is_empty() {
        "no reason given"
    } else {
        message
    };
    match status {
        Some(HelperStatus::Unavailable) => format!(
            "remote {url} unavailable: {message}; build scripts skip it for {} s",
            DOWN_FOR.as_secs()
        ),
        Some(HelperStatus::Failed) => format!("remote {url} failed: {message}"),
        Some(HelperStatus::Invalid | HelperStatus::Incompatible | HelperStatus::Error) => {
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
            super::super::down_marker(root),
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
        let old = SystemTime::now() - DOWN_FOR - Duration::from_secs(1);
        fs::File::options()
            .write(true)
            .open(super::super::down_marker(root))
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

    #[test]
    fn without_a_remote_there_is_no_client_and_a_bad_one_is_a_problem() {
        assert!(RemoteClient::from_env(&Env::from_pairs([("PCACHE_REMOTE", " ")])).is_none());
        let bad = RemoteClient::from_env(&Env::from_pairs([("PCACHE_REMOTE", "ftp://x")])).unwrap();
        assert!(bad.problem().unwrap().contains("unknown scheme"));
        let entry = EntryName::parse("p/0123/00112233445566778899aabbccddeeff2a").unwrap();
        assert!(
            bad.fetch(Path::new("/r"), &entry)
                .unwrap_err()
                .contains("unknown scheme")
        );
        let missing = RemoteClient::from_env(&Env::from_pairs([
            ("PCACHE_REMOTE", "file:///r"),
            ("PATH", ""),
            ("PCACHE_REMOTE_HELPER", ""),
        ]))
        .unwrap();
        let root = tempfile::tempdir().unwrap();
        if missing.helper.is_none() {
            assert!(
                missing
                    .fetch(root.path(), &entry)
                    .unwrap_err()
                    .contains("not installed")
            );
        }
        assert!(missing.writes());
    }
}
