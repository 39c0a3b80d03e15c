//! How a build script talks to the helper (`cargo-pcache pcache
//! remote-helper`), the process that holds the storage client, so that
//! pcache-build stays free of network code. Both sides use these types: the
//! request is the helper's command line ([`HelperRequest`]), the reply its
//! exit status and one line on stderr ([`HelperReply`]), and what one build
//! learnt about the remote is left for the next in small files under the
//! pcache directory ([`Marker`]).
//!
//! ```
//! use std::path::PathBuf;
//! use pcache_core::remote::{EntryName, HelperAction, HelperReply, HelperRequest, HelperStatus};
//!
//! let entry = EntryName::parse("my-sys/3f2a9c1d0b7e6a5f9/00112233445566778899aabbccddeeff2a")?;
//! let request = HelperRequest::new(PathBuf::from("/w/target/pcache"), HelperAction::Fetch(entry));
//! let args = request.to_args();
//! assert_eq!(args[..3], ["pcache", "remote-helper", "fetch"]);
//! // The helper parses what follows `remote-helper`.
//! assert_eq!(HelperRequest::parse(&args[2..])?, request);
//!
//! let reply = HelperReply::new(HelperStatus::Absent, "no such entry\nat all");
//! let (code, stderr) = (reply.exit_code(), reply.line());
//! assert_eq!(HelperReply::read(Some(i32::from(code)), stderr.as_bytes()), Ok(HelperReply::new(HelperStatus::Absent, "no such entry at all")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use super::EntryName;
use crate::FORMAT_VERSION;

/// The version of this protocol. A helper that speaks another answers
/// [`HelperStatus::Incompatible`].
pub const HELPER_PROTOCOL: u16 = 1;

/// The subcommand of `cargo-pcache` that is the helper.
const SUBCOMMAND: &str = "remote-helper";

/// What the helper is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperAction {
    /// Import an entry from the remote into the local cache.
    Fetch(EntryName),
    /// Send one entry to the remote; without one, what the outbox holds.
    Upload(Option<EntryName>),
}

/// A request to the helper: its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperRequest {
    /// The protocol version the requester speaks.
    pub protocol: u16,
    /// The entry format the requester reads and writes.
    pub format: u16,
    /// The pcache directory the entries live under.
    pub root: PathBuf,
    /// What to do.
    pub action: HelperAction,
}

/// Why a helper command line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The requester speaks another protocol version.
    #[error(
        "the build speaks helper protocol {found}, this helper speaks {HELPER_PROTOCOL}; install the cargo-pcache that matches pcache-build"
    )]
    Version {
        /// The version asked for (0 when none was given).
        found: u16,
    },
    /// The requester reads and writes another entry format.
    #[error(
        "this helper reads and writes entry format {FORMAT_VERSION}, the build uses format {found}; install the cargo-pcache that matches pcache-build"
    )]
    Format {
        /// The format asked for.
        found: u16,
    },
    /// The command line is not one [`HelperRequest::to_args`] makes.
    #[error("not a helper request: {0}")]
    Malformed(String),
}

impl HelperRequest {
    /// A request in this protocol and entry format.
    pub fn new(root: PathBuf, action: HelperAction) -> HelperRequest {
        HelperRequest {
            protocol: HELPER_PROTOCOL,
            format: FORMAT_VERSION,
            root,
            action,
        }
    }

    /// The helper's arguments, after the program: `pcache remote-helper
    /// <fetch|upload> --protocol P --format F --root DIR [--entry NAME]`.
    pub fn to_args(&self) -> Vec<OsString> {
        let (verb, entry) = match &self.action {
            HelperAction::Fetch(entry) => ("fetch", Some(entry)),
            HelperAction::Upload(entry) => ("upload", entry.as_ref()),
        };
        let mut args: Vec<OsString> = vec!["pcache".into(), SUBCOMMAND.into(), verb.into()];
        args.extend([
            "--protocol".into(),
            self.protocol.to_string().into(),
            "--format".into(),
            self.format.to_string().into(),
            "--root".into(),
            self.root.clone().into_os_string(),
        ]);
        if let Some(entry) = entry {
            args.extend(["--entry".into(), entry.to_string().into()]);
        }
        args
    }

    /// Parses the arguments that follow `remote-helper`. A request in
    /// another protocol version or entry format is refused as such, so that
    /// the helper can say which to install.
    ///
    /// # Errors
    ///
    /// When the arguments are not a request [`to_args`](Self::to_args)
    /// makes, or are of another version or format.
    pub fn parse<S: AsRef<OsStr>>(args: &[S]) -> Result<HelperRequest, ProtocolError> {
        let malformed = |what: &str| ProtocolError::Malformed(what.to_owned());
        let mut args = args.iter().map(AsRef::as_ref);
        let verb = args.next().ok_or_else(|| malformed("no action"))?;
        let (mut protocol, mut format, mut root, mut entry) = (None, None, None, None);
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| malformed(&format!("{} without a value", flag.to_string_lossy())))?;
            let number = || value.to_str().and_then(|v| v.parse::<u16>().ok());
            let slot_taken = match flag.to_str() {
                Some("--protocol") => protocol
                    .replace(number().ok_or_else(|| malformed("bad --protocol"))?)
                    .is_some(),
                Some("--format") => format
                    .replace(number().ok_or_else(|| malformed("bad --format"))?)
                    .is_some(),
                Some("--root") => root.replace(PathBuf::from(value)).is_some(),
                Some("--entry") => {
                    let name = value
                        .to_str()
                        .ok_or_else(|| malformed("--entry is not UTF-8"))?;
                    let name = EntryName::parse(name)
                        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
                    entry.replace(name).is_some()
                }
                _ => {
                    return Err(malformed(&format!(
                        "unknown option `{}`",
                        flag.to_string_lossy()
                    )));
                }
            };
            if slot_taken {
                return Err(malformed(&format!(
                    "{} given twice",
                    flag.to_string_lossy()
                )));
            }
        }
        let protocol = protocol.unwrap_or(0);
        if protocol != HELPER_PROTOCOL {
            return Err(ProtocolError::Version { found: protocol });
        }
        let format = format.ok_or_else(|| malformed("no --format"))?;
        if format != FORMAT_VERSION {
            return Err(ProtocolError::Format { found: format });
        }
        let root = root.ok_or_else(|| malformed("no --root"))?;
        let action = match verb.to_str() {
            Some("fetch") => {
                HelperAction::Fetch(entry.ok_or_else(|| malformed("fetch without --entry"))?)
            }
            Some("upload") => HelperAction::Upload(entry),
            _ => {
                return Err(malformed(&format!(
                    "unknown action `{}`",
                    verb.to_string_lossy()
                )));
            }
        };
        Ok(HelperRequest {
            protocol,
            format,
            root,
            action,
        })
    }
}

/// How the helper ends, as its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HelperStatus {
    /// Done: the entry was imported, or uploaded.
    Done = 0,
    /// The remote has no such entry.
    Absent = 10,
    /// The remote's entry failed the checks and was not used.
    Invalid = 11,
    /// The remote did not answer, or not in time.
    Unavailable = 12,
    /// The remote answered with an error (refused a write, for one).
    Failed = 13,
    /// The helper speaks another protocol or entry format than the build.
    Incompatible = 14,
    /// The configuration is unusable, or the local cache failed.
    Error = 1,
}

impl HelperStatus {
    /// Every status, for tests and documentation.
    pub const ALL: [HelperStatus; 7] = [
        HelperStatus::Done,
        HelperStatus::Absent,
        HelperStatus::Invalid,
        HelperStatus::Unavailable,
        HelperStatus::Failed,
        HelperStatus::Incompatible,
        HelperStatus::Error,
    ];

    /// The status for an exit code; `None` for codes the helper never
    /// exits with (a crash, a signal).
    pub fn from_code(code: i32) -> Option<HelperStatus> {
        HelperStatus::ALL
            .into_iter()
            .find(|status| i32::from(*status as u8) == code)
    }
}

/// The helper's answer: its exit status, and why, in one line without
/// secrets (empty when there is nothing to say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperReply {
    /// How it ended.
    pub status: HelperStatus,
    /// Why, on one line.
    pub message: String,
}

/// How a helper ended that is not a reply: killed, crashed, or an exit
/// status the protocol does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAReply {
    /// The exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// The first line it wrote on stderr.
    pub message: String,
}

impl fmt::Display for NotAReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "exit status {code}")?,
            None => f.write_str("killed by a signal")?,
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl HelperReply {
    /// A reply; the message is made one line.
    pub fn new(status: HelperStatus, message: impl Into<String>) -> HelperReply {
        HelperReply {
            status,
            message: one_line(&message.into()),
        }
    }

    /// The exit code the helper ends with.
    pub fn exit_code(&self) -> u8 {
        self.status as u8
    }

    /// What the helper writes on stderr: the message and a newline, or
    /// nothing.
    pub fn line(&self) -> String {
        if self.message.is_empty() {
            String::new()
        } else {
            format!("{}\n", self.message)
        }
    }

    /// The reply of a helper that exited with `code` (`None`: killed by a
    /// signal) after writing `stderr`.
    ///
    /// # Errors
    ///
    /// When the helper did not end with a status of the protocol.
    pub fn read(code: Option<i32>, stderr: &[u8]) -> Result<HelperReply, NotAReply> {
        let text = String::from_utf8_lossy(stderr);
        let message = one_line(text.lines().next().unwrap_or(""));
        match code.and_then(HelperStatus::from_code) {
            Some(status) => Ok(HelperReply { status, message }),
            None => Err(NotAReply { code, message }),
        }
    }
}

/// A note left under the pcache directory about a remote: that it is down
/// (for other build scripts to skip it a while), or why the last background
/// upload failed (for the next build script to report). It names the remote
/// (redacted), so that a note about another remote is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The remote, credentials redacted.
    pub remote: String,
    /// What happened, on one line.
    pub message: String,
}

impl Marker {
    /// A marker about `remote` (redacted); the message is made one line.
    pub fn new(remote: impl Into<String>, message: impl Into<String>) -> Marker {
        Marker {
            remote: one_line(&remote.into()),
            message: one_line(&message.into()),
        }
    }

    /// The marker file's contents.
    pub fn encode(&self) -> String {
        format!("{}\n{}\n", self.remote, self.message)
    }

    /// A marker from its file's contents; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Marker> {
        let mut lines = text.lines();
        let marker = Marker::new(lines.next()?, lines.next().unwrap_or(""));
        (!marker.remote.is_empty()).then_some(marker)
    }
}

/// `text` on one line: line breaks and other control characters become
/// spaces.
fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> EntryName {
        EntryName::parse("my-sys/3f2a9c1d0b7e6a5f9/00112233445566778899aabbccddeeff2a").unwrap()
    }

    #[test]
    fn requests_round_trip_through_their_command_line() {
        for action in [
            HelperAction::Fetch(entry()),
            HelperAction::Upload(Some(entry())),
            HelperAction::Upload(None),
        ] {
            let request = HelperRequest::new(PathBuf::from("/t/pcache dir/ü"), action);
            let args = request.to_args();
            assert_eq!(args[..2], ["pcache", SUBCOMMAND]);
            assert_eq!(HelperRequest::parse(&args[2..]), Ok(request));
        }
    }

    #[test]
    fn other_versions_and_formats_are_refused_as_such() {
        let mut request = HelperRequest::new(PathBuf::from("/r"), HelperAction::Upload(None));
        request.protocol = HELPER_PROTOCOL + 1;
        assert_eq!(
            HelperRequest::parse(&request.to_args()[2..]),
            Err(ProtocolError::Version {
                found: HELPER_PROTOCOL + 1
            })
        );
        // A request from before the protocol had a version.
        let unversioned = ["upload", "--format", "3", "--root", "/r"];
        assert_eq!(
            HelperRequest::parse(&unversioned),
            Err(ProtocolError::Version { found: 0 })
        );
        request.protocol = HELPER_PROTOCOL;
        request.format = FORMAT_VERSION + 1;
        let refused = HelperRequest::parse(&request.to_args()[2..]).unwrap_err();
        assert!(
            refused.to_string().contains("install the cargo-pcache"),
            "{refused}"
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        let v = HELPER_PROTOCOL.to_string();
        let f = FORMAT_VERSION.to_string();
        let base = ["--protocol", &v, "--format", &f, "--root", "/r"];
        let with = |head: &[&str], tail: &[&str]| -> Vec<String> {
            head.iter()
                .chain(&base)
                .chain(tail)
                .map(|s| (*s).to_owned())
                .collect()
        };
        for bad in [
            vec![],
            with(&["fetch"], &[]),
            with(&["fetch"], &["--entry", "../../etc/passwd"]),
            with(&["delete"], &[]),
            with(&["upload"], &["--root"]),
            with(&["upload"], &["--root", "/again"]),
            with(&["upload"], &["--verbose", "1"]),
        ] {
            assert!(
                matches!(HelperRequest::parse(&bad), Err(ProtocolError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn replies_round_trip_through_status_and_stderr() {
        for status in HelperStatus::ALL {
            assert_eq!(
                HelperStatus::from_code(i32::from(status as u8)),
                Some(status)
            );
            let reply = HelperReply::new(status, "remote s3://b: timed out\r\n(after 2 s)");
            assert!(!reply.message.contains('\n'));
            let read =
                HelperReply::read(Some(i32::from(reply.exit_code())), reply.line().as_bytes());
            assert_eq!(read, Ok(reply));
        }
        assert_eq!(
            HelperReply::read(Some(0), b""),
            Ok(HelperReply::new(HelperStatus::Done, ""))
        );
        let crashed =
            HelperReply::read(Some(101), b"thread 'main' panicked\nbacktrace").unwrap_err();
        assert_eq!(
            crashed.to_string(),
            "exit status 101: thread 'main' panicked"
        );
        assert!(HelperReply::read(None, b"").is_err());
    }

    #[test]
    fn markers_round_trip_and_others_are_not_markers() {
        let marker = Marker::new("s3://***@bucket/x", "connect timed out\nafter 2 s");
        assert_eq!(Marker::parse(&marker.encode()), Some(marker));
        assert_eq!(Marker::parse(""), None);
        assert_eq!(Marker::parse(" \r\nmessage"), None);
        // Found by fuzzing: what a marker reads back as is what it writes.
        let odd = Marker::parse("NNN\r").unwrap();
        assert_eq!(Marker::parse(&odd.encode()), Some(odd));
        assert_eq!(
            Marker::parse("redis://h/0"),
            Some(Marker::new("redis://h/0", ""))
        );
    }
}
