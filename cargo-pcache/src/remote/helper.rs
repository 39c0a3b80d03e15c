//! `cargo-pcache pcache remote-helper …`: what build scripts run to reach
//! the remote, on a local miss (`fetch`) and after storing an entry
//! (`upload`). Not for people: the request and the reply are
//! `pcache_core::remote`'s helper protocol (`HelperRequest`, `HelperReply`).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use pcache_core::config::Env;
use pcache_core::remote::{
    HelperAction, HelperReply, HelperRequest, HelperStatus, ProtocolError, RemoteSettings,
};

use super::{Remote, RemoteError, Transfer};

/// Runs the helper on the arguments after `remote-helper`; the exit status
/// and the line on stderr are its [`HelperReply`].
pub(crate) fn run(args: &[OsString], err: &mut dyn Write) -> ExitCode {
    let reply = match act(args) {
        Ok(status) => HelperReply::new(status, ""),
        Err((status, message)) => HelperReply::new(status, message),
    };
    let _ = err.write_all(reply.line().as_bytes());
    ExitCode::from(reply.exit_code())
}

type Outcome = Result<HelperStatus, (HelperStatus, String)>;

fn act(args: &[OsString]) -> Outcome {
    let request = HelperRequest::parse(args).map_err(|e| match e {
        ProtocolError::Version { .. } | ProtocolError::Format { .. } => (
            HelperStatus::Incompatible,
            format!("cargo-pcache {}: {e}", env!("CARGO_PKG_VERSION")),
        ),
        ProtocolError::Malformed(_) => (HelperStatus::Error, e.to_string()),
    })?;
    let root = request.root.as_path();
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
    let mut remote = Remote::open(&settings, &vars).map_err(|e| failed(root, &settings.url, e))?;
    if matches!(request.action, HelperAction::Upload(_)) {
        // Only the uploading helper reads the signing key.
        remote = remote
            .for_pushing(&vars)
            .map_err(|e| failed(root, &settings.url, e))?;
    }
    match &request.action {
        HelperAction::Fetch(entry) => match super::download(&remote, root, entry) {
            Ok(Some(_)) => {
                super::mark_up(root);
                Ok(HelperStatus::Done)
            }
            Ok(None) => Ok(HelperStatus::Absent),
            Err(e) => Err(transfer_failed(root, &remote, e)),
        },
        HelperAction::Upload(Some(entry)) => {
            match super::upload(&remote, root, entry, &mut Default::default()) {
                Ok(_) => {
                    let item = pcache_core::remote::outbox_dir(root).join(entry.outbox_item());
                    let _ = std::fs::remove_file(item);
                    Ok(HelperStatus::Done)
                }
                Err(e) => Err(transfer_failed(root, &remote, e)),
            }
        }
        HelperAction::Upload(None) => match super::drain_outbox(&remote, root) {
            Ok(_) => Ok(HelperStatus::Done),
            Err(e) => Err(transfer_failed(root, &remote, e)),
        },
    }
}

fn transfer_failed(root: &Path, remote: &Remote, e: Transfer) -> (HelperStatus, String) {
    match e {
        Transfer::Remote(e) => failed(root, remote.url(), e),
        Transfer::Invalid(why) | Transfer::Refused(why) => (HelperStatus::Invalid, why),
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
