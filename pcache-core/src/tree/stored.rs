//! Restoring a tree straight from its entry file: a hit of a large tree
//! (a build script's `OUT_DIR`) costs about what copying its files does.
//!
//! When the entry was verified before as this very version of the file (see
//! the `seen` module), only its header, the tree's index and the notes are
//! read; each file's contents are copied from the entry into the
//! destination by the kernel, never through this process. Before the
//! restored tree is put in place, the entry's identity is taken again: if
//! the file changed meanwhile, its payload is checksummed after all. An
//! entry not verified yet is read, checked and restored from memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::format::{HEAD_LEN, Node, Tree};
use super::restore::{Contents, Restore};
use crate::entry::{self, HEADER_LEN, Header, Kind};
use crate::error::{Corruption, IoResultExt, Result};
use crate::get::{Check, Opened, discard, open, read_header, read_notes, remove_if_same};
use crate::seen::{Seen, Stamp, TRUST_MIN_BYTES};
use crate::store::{EntryInfo, Lookup};
use crate::{Key, Store};

/// A tree restored from an entry.
#[derive(Debug)]
pub struct RestoredTree {
    /// The entry's facts.
    pub info: EntryInfo,
    /// The notes stored with it.
    pub notes: Vec<u8>,
    /// Every path written, relative to the destination, parents first.
    pub paths: Vec<PathBuf>,
    /// How many bytes its files hold, as stored.
    pub content_bytes: u64,
}

impl Store {
    /// Restores the [`Tree`] stored under `key` into `dest`, as `restore`
    /// says, without reading its files' contents into memory when the entry
    /// was verified before (see the module's documentation).
    ///
    /// ```
    /// use pcache_core::tree::{Restore, Tree};
    /// use pcache_core::{Key, Lookup, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let src = tempfile::tempdir()?;
    /// std::fs::write(src.path().join("gen.rs"), "pub const N: u8 = 1;")?;
    /// let store = Store::open(dir.path().join("cache"))?;
    /// let key = Key::new("out")?;
    /// store.set(&key, &Tree::capture(src.path(), None)?)?;
    ///
    /// let dest = dir.path().join("out");
    /// let Lookup::Found(restored) = store.restore_tree(&key, Restore::exact(), &dest)? else {
    ///     unreachable!("just stored")
    /// };
    /// assert_eq!(restored.paths.len(), 1);
    /// assert_eq!(std::fs::read_to_string(dest.join("gen.rs"))?, "pub const N: u8 = 1;");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get`](Store::get) for the entry (a corrupt one is removed), and
    /// as [`Restore::run`] for the destination.
    pub fn restore_tree(
        &self,
        key: &Key,
        restore: Restore<'_>,
        dest: &Path,
    ) -> Result<Lookup<RestoredTree>> {
        let path = self.entry_path(key);
        let (file, len, stamp) = match open(&path)? {
            Opened::Missing => return Ok(Lookup::Absent),
            Opened::NotAFile => return Err(discard(&path, None, Corruption::NotAFile)),
            Opened::File { file, len, stamp } => (file, len, stamp),
        };
        let large = len >= TRUST_MIN_BYTES;
        let seen = Seen::open(&self.layout().seen(key), large, self.records_use());
        self.mark("open");
        if !(large && seen.trusts(stamp)) {
            drop(file);
            return self.restore_checked(key, restore, dest);
        }
        let stored = match read_index(file, len, &path) {
            Ok(stored) => stored,
            Err(Check::Io(e)) => return Err(e),
            Err(Check::Corrupt(reason)) => return Err(discard(&path, None, reason)),
        };
        if self.is_expired(stored.header.created) {
            remove_if_same(&path, Some(&stored.file));
            return Ok(Lookup::Expired);
        }
        self.mark("read the index");
        let contents = Contents::File {
            file: &stored.file,
            offset: stored.data_offset,
        };
        let mut still_the_same = || {
            let now = stored.file.metadata().ok().as_ref().and_then(Stamp::of);
            if now == stamp
                || payload_crc(&stored.file, &stored.header) == Some(stored.header.payload_crc)
            {
                Ok(())
            } else {
                Err(discard(
                    &path,
                    Some(&stored.file),
                    Corruption::PayloadChecksum,
                ))
            }
        };
        let paths = restore.run_from(&stored.nodes, contents, dest, &mut still_the_same)?;
        self.mark("restore (checksum skipped)");
        if self.records_use() {
            seen.touch(self.now());
            self.mark("record the use");
        }
        Ok(Lookup::Found(RestoredTree {
            info: self.info(*key, path, len, &stored.header, None),
            notes: stored.notes,
            paths,
            content_bytes: stored.data_len,
        }))
    }

    /// The path of an entry not verified yet: read, checked, decoded and
    /// restored from memory.
    fn restore_checked(
        &self,
        key: &Key,
        restore: Restore<'_>,
        dest: &Path,
    ) -> Result<Lookup<RestoredTree>> {
        Ok(match self.lookup::<Tree>(key)? {
            Lookup::Found(found) => {
                let paths = restore.run(&found.value, dest)?;
                self.mark("restore");
                Lookup::Found(RestoredTree {
                    info: found.info,
                    notes: found.notes,
                    paths,
                    content_bytes: found.value.content_bytes(),
                })
            }
            Lookup::Absent => Lookup::Absent,
            Lookup::Expired => Lookup::Expired,
        })
    }
}

/// An entry holding a tree, read but for its files' contents.
struct StoredIndex {
    file: File,
    header: Header,
    nodes: Vec<Node>,
    notes: Vec<u8>,
    /// Where the files' contents start in the entry file.
    data_offset: u64,
    data_len: u64,
}

/// Reads the header, the tree's index and the notes of an entry of `len`
/// bytes, checking everything but the payload's checksum.
fn read_index(mut file: File, len: u64, path: &Path) -> Result<StoredIndex, Check> {
    let header = read_header(&mut file, len, Some(Kind::Value), path)?;
    let bad = |what: &'static str| Check::Corrupt(Corruption::BadPayload(what));
    // The payload is one `bin` (the tree's encoding): its marker, the
    // tree's head, then the index.
    let mut head = [0u8; 5 + HEAD_LEN];
    let n = crate::get::read_up_to(&mut file, &mut head).op("read entry", path)?;
    let (marker_len, tree_len) =
        entry::parse_single_marker(crate::bytes::Single::Bytes, &head[..n])
            .ok_or_else(|| bad("not a stored file tree"))?;
    if marker_len as u64 + tree_len != header.payload_len {
        return Err(bad("file tree length mismatch"));
    }
    let tree_head = head
        .get(marker_len..marker_len + HEAD_LEN)
        .ok_or_else(|| bad("file tree truncated"))?;
    let index_len = Tree::index_len(tree_head).map_err(|_| bad("not a stored file tree"))?;
    let data_len = tree_len
        .checked_sub((HEAD_LEN + index_len) as u64)
        .ok_or_else(|| bad("file tree index past its end"))?;
    let index_at = (HEADER_LEN + marker_len + HEAD_LEN) as u64;
    let mut index = vec![0u8; index_len];
    file.seek(SeekFrom::Start(index_at))
        .and_then(|_| file.read_exact(&mut index))
        .op("read entry", path)?;
    let nodes = Tree::decode_index(&index, data_len).map_err(|_| bad("invalid file tree index"))?;
    file.seek(SeekFrom::Start(header.notes_offset()))
        .op("read entry", path)?;
    let notes = read_notes(&mut file, &header, path)?;
    Ok(StoredIndex {
        data_offset: index_at + index_len as u64,
        data_len,
        file,
        header,
        nodes,
        notes,
    })
}

/// The CRC-32 of the entry's payload, read again; `None` if unreadable.
fn payload_crc(file: &File, header: &Header) -> Option<u32> {
    let mut file = file;
    file.seek(SeekFrom::Start(HEADER_LEN as u64)).ok()?;
    let mut hasher = crc32fast::Hasher::new();
    let mut left = header.payload_len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).ok()?;
        file.read_exact(&mut buf[..want]).ok()?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    Some(hasher.finalize())
}
