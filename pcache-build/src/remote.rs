//! The remote tier, from a build script: on a local miss, the entry is
//! looked for on the remote before computing; an entry computed here is
//! sent there afterwards. Both go through `pcache_core::remote::
//! RemoteClient`, which runs the helper (`cargo-pcache`) holding the storage
//! client, so that pcache-build stays light: with no remote configured,
//! nothing here runs but one check of a variable.
//!
//! The remote never breaks a build (unless `PCACHE_REMOTE_REQUIRED=1`):
//! its troubles are one warning per process, and once a build script finds
//! it unavailable, the others leave it alone for a minute.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use pcache_core::remote::{self, EntryName, RemoteClient};
use pcache_core::{Key, Store};

use crate::report::Problem;
use crate::session::Session;

/// The remote tier's client; `None` without `PCACHE_REMOTE`. Without it,
/// this is all a step pays.
fn client() -> Option<&'static RemoteClient> {
    static CLIENT: OnceLock<Option<RemoteClient>> = OnceLock::new();
    CLIENT
        .get_or_init(|| RemoteClient::from_env(&Session::get().env.vars))
        .as_ref()
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
    let (Some(client), Ok(root)) = (client(), &Session::get().root) else {
        return Visit::default();
    };
    let mut visit = Visit::default();
    if let Some(problem) = client.problem() {
        trouble(step_name, client, problem.to_owned(), problems);
        return visit;
    }
    let Some(entry) = EntryName::in_root(root, store.dir(), *key) else {
        return visit;
    };
    if client.writes() {
        visit.upload = Some(Upload {
            root: root.clone(),
            entry: entry.clone(),
        });
    }
    if store.entry_path(key).exists() {
        return visit;
    }
    match client.fetch(root, &entry) {
        Ok(fetched) => visit.fetched = fetched,
        Err(problem) => trouble(step_name, client, problem, problems),
    }
    visit
}

/// After a step stored its entry: sends it to the remote (in the
/// background, unless the remote is required).
pub(crate) fn write_back(step_name: &str, upload: &Upload, problems: &mut Vec<Problem>) {
    let Some(client) = client() else {
        return;
    };
    for problem in client.upload(&upload.root, &upload.entry) {
        trouble(step_name, client, problem, problems);
    }
}

/// One warning per process; with `PCACHE_REMOTE_REQUIRED=1`, a failed build.
fn trouble(step_name: &str, client: &RemoteClient, problem: String, problems: &mut Vec<Problem>) {
    if client.required() {
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
