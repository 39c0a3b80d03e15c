//! The remote tier: entries move between the local pcache directory and a
//! remote store (S3, Redis, WebDAV, a shared directory) through Apache
//! OpenDAL. Build scripts reach it through this binary (`cargo-pcache
//! pcache remote-helper …`), so that pcache-build itself stays light.
//!
//! Whatever comes from the remote is untrusted: an entry is imported only
//! after the checks every read makes, and its name is checked before it
//! names a local path. With trusted keys set, an object is also refused,
//! before a byte of it is written, unless one of them signed it for its
//! path (`signing`).

mod client;
pub(crate) mod helper;
pub(crate) mod signing;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use pcache_core::remote::{self, EntryName, Marker, RemoteUrl};
use pcache_core::{CacheMeta, Store};

pub(crate) use client::{Remote, RemoteError};
use signing::Arrived;

/// Why moving an entry failed.
#[derive(Debug)]
pub(crate) enum Transfer {
    /// The remote failed.
    Remote(RemoteError),
    /// The remote's entry failed the checks: not used.
    Invalid(String),
    /// The remote's object is not signed by a trusted key: not used, and
    /// counted in the pcache directory's refused log.
    Refused(String),
    /// The local cache failed (the message names the path).
    Local(String),
}

impl std::fmt::Display for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transfer::Remote(e) => e.fmt(f),
            Transfer::Invalid(why) | Transfer::Refused(why) => f.write_str(why),
            Transfer::Local(e) => f.write_str(e),
        }
    }
}

fn local(e: pcache_core::Error) -> Transfer {
    Transfer::Local(e.to_string())
}

fn io_failed(op: &str, path: &Path, e: &io::Error) -> Transfer {
    Transfer::Local(format!("failed to {op} `{}`: {e}", path.display()))
}

impl From<RemoteError> for Transfer {
    fn from(e: RemoteError) -> Transfer {
        Transfer::Remote(e)
    }
}

/// Downloads `entry` into the pcache directory `root`: its size, or `None`
/// when the remote has no such entry.
pub(crate) fn download(
    remote: &Remote,
    root: &Path,
    entry: &EntryName,
) -> Result<Option<u64>, Transfer> {
    let key = entry.remote_key();
    let Some(arrived) = remote.get_entry(&key)? else {
        return Ok(None);
    };
    let bytes = verified(remote, root, &key, &arrived)?;
    let store = Store::open(entry.cache_dir(root)).map_err(local)?;
    match store.import(&entry.key(), |file| file.write_all(bytes)) {
        Ok(info) => Ok(Some(info.size_bytes)),
        Err(pcache_core::Error::Corrupt { reason, .. }) => Err(Transfer::Invalid(format!(
            "the remote's entry `{key}` is not a valid entry ({reason}); not used"
        ))),
        Err(e) => Err(local(e)),
    }
}

/// The entry file in `object`, read from `key`, once its signature is
/// checked against the trusted keys; a refusal is recorded in `root`'s
/// refused log.
fn verified<'a>(
    remote: &Remote,
    root: &Path,
    key: &str,
    arrived: &'a Arrived,
) -> Result<&'a [u8], Transfer> {
    signing::open(remote.trust(), key, arrived).map_err(|refusal| {
        record_refused(root, remote.url(), key, &refusal.to_string());
        Transfer::Refused(format!(
            "the remote's object `{key}` is refused: {refusal}; not used"
        ))
    })
}

/// The longest the refused log grows: past it, refusals still warn but are
/// no longer counted.
const REFUSED_LOG_CAP: u64 = 1 << 20;

/// Appends one line to `root`'s refused log. Best effort: a count, not a
/// record anything depends on.
fn record_refused(root: &Path, url: &RemoteUrl, key: &str, reason: &str) {
    let path = remote::refused_log(root);
    if fs::metadata(&path).is_ok_and(|m| m.len() >= REFUSED_LOG_CAP) {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let clean = |text: &str| text.replace(['\t', '\n', '\r'], " ");
    let line = format!(
        "{now}\t{}\t{}\t{}\n",
        clean(&url.redacted()),
        clean(key),
        clean(reason)
    );
    let _ = fs::create_dir_all(root);
    if let Ok(mut file) = File::options().create(true).append(true).open(&path) {
        let _ = file.write_all(line.as_bytes());
    }
}

/// How many objects were refused for their signature, as recorded in the
/// refused log of the pcache directory `root`, since `since` if given.
pub(crate) fn refused_count(root: &Path, since: Option<SystemTime>) -> u64 {
    let Ok(text) = fs::read_to_string(remote::refused_log(root)) else {
        return 0;
    };
    let since = since
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    text.lines()
        .filter_map(|line| line.split('\t').next()?.parse::<u64>().ok())
        .filter(|&at| at >= since)
        .count() as u64
}

/// Downloads the `cache.toml` of `entry`'s cache, when the local cache has
/// none (a cache first seen through `pull`). A remote one that does not
/// parse is left out.
pub(crate) fn download_meta(
    remote: &Remote,
    root: &Path,
    entry: &EntryName,
) -> Result<(), Transfer> {
    let store = Store::at(entry.cache_dir(root));
    if matches!(store.meta(), Ok(Some(_))) {
        return Ok(());
    }
    let key = entry.remote_meta_key();
    let Some(object) = remote.get_small(&key)? else {
        return Ok(());
    };
    // Only names for `ls`, but from the remote all the same: a refused one
    // is left out like one that does not parse.
    let arrived = Arrived::whole(object);
    let Ok(bytes) = signing::open(remote.trust(), &key, &arrived) else {
        return Ok(());
    };
    let meta = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| toml::from_str::<CacheMeta>(text).ok());
    if let Some(meta) = meta {
        store.write_meta(&meta).map_err(local)?;
    }
    Ok(())
}

/// Uploads `entry` from the pcache directory `root` (with its cache's
/// `cache.toml`, once per cache in `sent`), signed when the remote has a
/// signing key: its size, or `None` when there is nothing to send (the
/// entry is no longer there, or trusted keys are set and this process
/// holds no signing key: readers would refuse what it sent).
pub(crate) fn upload(
    remote: &Remote,
    root: &Path,
    entry: &EntryName,
    sent: &mut HashSet<String>,
) -> Result<Option<u64>, Transfer> {
    if remote.trust().is_some() && remote.signer().is_none() {
        return Ok(None);
    }
    let dir = entry.cache_dir(root);
    let store = Store::at(&dir);
    let bytes = match store.export(&entry.key()) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) => return Err(local(e)),
    };
    let size = bytes.len() as u64;
    let key = entry.remote_key();
    remote.put(&key, sealed(remote, &key, bytes))?;
    let meta_key = entry.remote_meta_key();
    if !sent.contains(&meta_key) {
        if let Ok(meta) = fs::read(dir.join("cache.toml")) {
            remote.put(&meta_key, sealed(remote, &meta_key, meta))?;
        }
        sent.insert(meta_key);
    }
    Ok(Some(size))
}

/// What goes to `key` for `bytes`: signed, when there is a signing key.
fn sealed(remote: &Remote, key: &str, bytes: Vec<u8>) -> Vec<u8> {
    match remote.signer() {
        Some(signer) => signer.seal(key, &bytes),
        None => bytes,
    }
}

/// Leaves the marker that tells other build scripts to skip `url` for a
/// while. Best effort: without it, they only try again.
pub(crate) fn mark_down(root: &Path, url: &RemoteUrl, cause: &str) {
    let _ = fs::create_dir_all(root);
    let marker = Marker::new(url.redacted(), cause);
    let _ = fs::write(remote::down_marker(root), marker.encode());
}

/// Removes the marker once the remote answers again.
pub(crate) fn mark_up(root: &Path) {
    let marker = remote::down_marker(root);
    if marker.exists() {
        let _ = fs::remove_file(marker);
    }
}

/// The entries waiting in `root`'s outbox.
fn outbox(root: &Path) -> io::Result<Vec<(String, Option<EntryName>)>> {
    let mut items = Vec::new();
    match fs::read_dir(remote::outbox_dir(root)) {
        Ok(rd) => {
            for item in rd.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                let entry = EntryName::from_outbox_item(&name).ok();
                items.push((name, entry));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    items.sort();
    Ok(items)
}

/// Uploads what the outbox of `root` asks for, removing each item once its
/// entry is on the remote. Holds the outbox lock meanwhile, and leaves the
/// work to the uploader that holds it already, if one does. Stops at the
/// first remote failure, leaving the rest, and records the failure for the
/// next build script to report.
pub(crate) fn drain_outbox(remote: &Remote, root: &Path) -> Result<(), Transfer> {
    let mut sent = HashSet::new();
    // A build script may add an item after the last listing, while its
    // own uploader finds the lock held and leaves: look again after
    // letting go.
    for _ in 0..10 {
        let lock_path = remote::outbox_lock(root);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_failed("open", &lock_path, &e))?;
        let mut lock = fd_lock::RwLock::new(file);
        let Ok(_guard) = lock.try_write() else {
            return Ok(());
        };
        let items = outbox(root).map_err(|e| io_failed("read", &remote::outbox_dir(root), &e))?;
        if items.is_empty() {
            break;
        }
        for (item, entry) in items {
            let item_path = remote::outbox_dir(root).join(&item);
            let Some(entry) = entry else {
                let _ = fs::remove_file(&item_path);
                continue;
            };
            match upload(remote, root, &entry, &mut sent) {
                // Sent, or gone or unreadable here: nothing (more) to send.
                Ok(_) | Err(Transfer::Local(_) | Transfer::Invalid(_) | Transfer::Refused(_)) => {
                    let _ = fs::remove_file(&item_path);
                }
                Err(Transfer::Remote(e)) => {
                    record_upload_error(root, remote.url(), &e);
                    match &e {
                        RemoteError::Unavailable(cause) => mark_down(root, remote.url(), cause),
                        // Refused writes will be refused again.
                        RemoteError::Refused(_) => {
                            let _ = fs::remove_file(&item_path);
                        }
                        RemoteError::Failed(_) => {}
                    }
                    return Err(Transfer::Remote(e));
                }
            }
        }
    }
    let _ = fs::remove_file(remote::upload_error(root));
    Ok(())
}

fn record_upload_error(root: &Path, url: &RemoteUrl, e: &RemoteError) {
    let marker = Marker::new(url.redacted(), format!("uploading failed: {e}"));
    let _ = fs::write(remote::upload_error(root), marker.encode());
}
