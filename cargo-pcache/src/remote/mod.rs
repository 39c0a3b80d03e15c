//! The remote tier: entries move between the local pcache directory and a
//! remote store (S3, Redis, WebDAV, a shared directory) through Apache
//! OpenDAL. Build scripts reach it through this binary (`cargo-pcache
//! pcache remote-helper …`), so that pcache-build itself stays light.
//!
//! Whatever comes from the remote is untrusted: an entry is imported only
//! after the checks every read makes, and its name is checked before it
//! names a local path.

mod client;
pub(crate) mod helper;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use pcache_core::remote::{self, EntryName, Marker, RemoteUrl};
use pcache_core::{CacheMeta, Store};

pub(crate) use client::{Remote, RemoteError};

/// Why moving an entry failed.
#[derive(Debug)]
pub(crate) enum Transfer {
    /// The remote failed.
    Remote(RemoteError),
    /// The remote's entry failed the checks: not used.
    Invalid(String),
    /// The local cache failed (the message names the path).
    Local(String),
}

impl std::fmt::Display for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transfer::Remote(e) => e.fmt(f),
            Transfer::Invalid(why) => f.write_str(why),
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
    let Some(bytes) = remote.get_entry(&key)? else {
        return Ok(None);
    };
    let store = Store::open(entry.cache_dir(root)).map_err(local)?;
    match store.import(&entry.key(), |file| file.write_all(&bytes)) {
        Ok(info) => Ok(Some(info.size_bytes)),
        Err(pcache_core::Error::Corrupt { reason, .. }) => Err(Transfer::Invalid(format!(
            "the remote's entry `{key}` is not a valid entry ({reason}); not used"
        ))),
        Err(e) => Err(local(e)),
    }
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
    let Some(bytes) = remote.get_small(&entry.remote_meta_key())? else {
        return Ok(());
    };
    let meta = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| toml::from_str::<CacheMeta>(text).ok());
    if let Some(meta) = meta {
        store.write_meta(&meta).map_err(local)?;
    }
    Ok(())
}

/// Uploads `entry` from the pcache directory `root` (with its cache's
/// `cache.toml`, once per cache in `sent`): its size, or `None` when it is
/// no longer there.
pub(crate) fn upload(
    remote: &Remote,
    root: &Path,
    entry: &EntryName,
    sent: &mut HashSet<String>,
) -> Result<Option<u64>, Transfer> {
    let dir = entry.cache_dir(root);
    let store = Store::at(&dir);
    let bytes = match store.export(&entry.key()) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) => return Err(local(e)),
    };
    let size = bytes.len() as u64;
    remote.put(&entry.remote_key(), bytes)?;
    let meta_key = entry.remote_meta_key();
    if !sent.contains(&meta_key) {
        if let Ok(meta) = fs::read(dir.join("cache.toml")) {
            remote.put(&meta_key, meta)?;
        }
        sent.insert(meta_key);
    }
    Ok(Some(size))
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
                Ok(_) | Err(Transfer::Local(_) | Transfer::Invalid(_)) => {
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
