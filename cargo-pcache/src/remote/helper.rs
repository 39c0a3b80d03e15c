//! `cargo-pcache pcache remote-helper …`: what build scripts run to reach
//! the remote, on a local miss (`fetch`) and after storing an entry
//! (`upload`). Not for people: the interface is the exit status (see
//! [`HelperStatus`]) and one line on stderr saying why, without secrets.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use pcache_core::FORMAT_VERSION;
use pcache_core::remote::{EntryName, HelperStatus};

use pcache_core::config::Env;
use pcache_core::remote::RemoteSettings;

use super::{Remote, RemoteError, Transfer};
use crate::cli::{HelperAction, HelperArgs};

/// Runs the helper; the exit status is a [`HelperStatus`].
pub(crate) fn run(args: &HelperArgs, err: &mut dyn Write) -> ExitCode {
    let (status, message) = match act(&args.action) {
        Ok(status) => (status, None),
        Err((status, message)) => (status, Some(message)),
    };
    if let Some(message) = message {
        let _ = writeln!(err, "{message}");
    }
    ExitCode::from(status as u8)
}

type Outcome = Result<HelperStatus, (HelperStatus, String)>;

fn act(action: &HelperAction) -> Outcome {
    let (format, root) = match action {
        HelperAction::Fetch { format, root, .. } | HelperAction::Upload { format, root, .. } => {
            (*format, root.as_path())
        }
    };
    if format != FORMAT_VERSION {
        return Err((
            HelperStatus::Incompatible,
            format!(
                "cargo-pcache {} reads and writes entry format {FORMAT_VERSION}, the build uses format {format}; install the cargo-pcache that matches pcache-build",
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    // What the build script that runs the helper has: Cargo applied `[env]`.
    let vars = Env::process();
    let settings = match RemoteSettings::from_vars(|name| vars.get(name)) {
        Ok(Some(settings)) => settings,
        Ok(None) => {
            return Err((
                HelperStatus::Error,
                format!("{} is not set", pcache_core::remote::REMOTE_VAR),
            ));
        }
        Err(e) => return Err((HelperStatus::Error, e.to_string())),
    };
    let remote = Remote::open(&settings, &vars).map_err(|e| failed(root, &settings.url, e))?;
    match action {
        HelperAction::Fetch { entry, .. } => {
            let entry = parse(entry)?;
            match super::download(&remote, root, &entry) {
                Ok(Some(_)) => {
                    super::mark_up(root);
                    Ok(HelperStatus::Done)
                }
                Ok(None) => Ok(HelperStatus::Absent),
                Err(e) => Err(transfer_failed(root, &remote, e)),
            }
        }
        HelperAction::Upload {
            entry: Some(entry), ..
        } => {
            let entry = parse(entry)?;
            match super::upload(&remote, root, &entry, &mut Default::default()) {
                Ok(_) => {
                    let item = pcache_core::remote::outbox_dir(root).join(entry.outbox_item());
                    let _ = std::fs::remove_file(item);
                    Ok(HelperStatus::Done)
                }
                Err(e) => Err(transfer_failed(root, &remote, e)),
            }
        }
        HelperAction::Upload { entry: None, .. } => match super::drain_outbox(&remote, root) {
            Ok(_) => Ok(HelperStatus::Done),
            Err(e) => Err(transfer_failed(root, &remote, e)),
        },
    }
}

fn parse(entry: &str) -> Result<EntryName, (HelperStatus, String)> {
    EntryName::parse(entry).map_err(|e| (HelperStatus::Error, e.to_string()))
}

fn transfer_failed(root: &Path, remote: &Remote, e: Transfer) -> (HelperStatus, String) {
    match e {
        Transfer::Remote(e) => failed(root, remote.url(), e),
        Transfer::Invalid(why) => (HelperStatus::Invalid, why),
        Transfer::Local(why) => (HelperStatus::Error, why),
    }
}

fn failed(
    root: &Path,
    url: &pcache_core::remote::RemoteUrl,
    e: RemoteError,
) -> (HelperStatus, String) {
    match e {
        RemoteError::Unavailable(cause) => {
            super::mark_down(root, url, &cause);
            (HelperStatus::Unavailable, cause)
        }
        RemoteError::Refused(cause) | RemoteError::Failed(cause) => (HelperStatus::Failed, cause),
    }
}
