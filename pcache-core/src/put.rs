//! The write path: encode a value, write header and payload to a temporary
//! file, rename it into place.
//!
//! Only the encoding is generic; writing the file is [`Store::write_value`],
//! compiled once.

use std::time::Duration;

use serde::Serialize;

use crate::atomic::TempFile;
use crate::entry::{self, Header, Kind};
use crate::error::{Error, Result};
use crate::seen::{Seen, TRUST_MIN_BYTES};
use crate::store::EntryInfo;
use crate::{Key, Store, bytes};

impl Store {
    /// Stores `value` under `key`, replacing any previous entry atomically.
    ///
    /// Byte values (`Vec<u8>`, `[u8]`, `Box<[u8]>`, `serde_bytes::ByteBuf`)
    /// are written as one MessagePack `bin`, and text (`String`, `str`) as
    /// one `str`, without per-byte work.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = pcache_core::Store::open(dir.path())?;
    /// let key = pcache_core::Key::new("greeting")?;
    /// store.set(&key, "hello")?;
    /// assert_eq!(store.get::<String>(&key)?.as_deref(), Some("hello"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Fails if the value cannot be serialized or the file cannot be written;
    /// no partial entry is ever visible.
    pub fn set<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<EntryInfo> {
        self.set_timed(key, value, Duration::ZERO)
    }

    /// Like [`set`](Store::set), recording how long the value took to compute
    /// (reported as the time a hit saves).
    ///
    /// # Errors
    ///
    /// As [`set`](Store::set).
    pub fn set_timed<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        value: &T,
        compute_time: Duration,
    ) -> Result<EntryInfo> {
        self.set_with_notes(key, value, compute_time, &[])
    }

    /// Like [`set_timed`](Store::set_timed), storing `notes` with the value:
    /// bytes of the caller's own about the entry (pcache-build keeps a
    /// step's Cargo directives there), checksummed like the payload and
    /// returned with it by [`try_get_or_compute_with`](Store::try_get_or_compute_with).
    ///
    /// # Errors
    ///
    /// As [`set`](Store::set), and [`Error::TooLarge`] for notes over 4 GiB.
    pub fn set_with_notes<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        value: &T,
        compute_time: Duration,
        notes: &[u8],
    ) -> Result<EntryInfo> {
        if let Some((kind, data)) = bytes::as_single(value) {
            let (marker, n) =
                entry::single_marker(kind, data.len()).ok_or_else(|| Error::TooLarge {
                    path: self.entry_path(key),
                    size_bytes: data.len() as u64,
                })?;
            // Bytes and text are written as one `bin` or `str`, uncopied.
            return self.write_entry(key, &[&marker[..n], data], compute_time, notes);
        }
        let buf = rmp_serde::to_vec(value).map_err(|source| Error::Encode {
            path: self.entry_path(key),
            source,
        })?;
        self.write_entry(key, &[&buf], compute_time, notes)
    }

    /// Writes a value entry whose payload is `payload`'s parts, in order.
    fn write_entry(
        &self,
        key: &Key,
        payload: &[&[u8]],
        compute_time: Duration,
        notes: &[u8],
    ) -> Result<EntryInfo> {
        let path = self.entry_path(key);
        let created = self.now();
        let mut crc = crc32fast::Hasher::new();
        for part in payload {
            crc.update(part);
        }
        let header = Header {
            kind: Kind::Value,
            payload_crc: crc.finalize(),
            created,
            payload_len: payload.iter().map(|p| p.len() as u64).sum(),
            items: 0,
            compute_time,
            notes_len: notes_len(notes, &path)?,
            notes_crc: crc32fast::hash(notes),
        };
        let encoded = header.encode();
        let mut parts = Vec::with_capacity(payload.len() + 2);
        parts.push(&encoded[..]);
        parts.extend_from_slice(payload);
        parts.push(notes);
        let mut tmp = TempFile::create(self.layout(), &key.to_string())?;
        tmp.write_parts(&parts)?;
        let written = tmp.persist_open(&path, created)?;
        if let Some(file) = written.filter(|_| header.file_len() >= TRUST_MIN_BYTES) {
            // This process saw every byte: the first read need not check them.
            Seen::record_written(&self.layout().seen(key), &file, &|| self.now());
        }
        self.after_write();
        Ok(self.info(*key, path, header.file_len(), &header, None))
    }
}

/// The length of `notes` as the header records it.
pub(crate) fn notes_len(notes: &[u8], path: &std::path::Path) -> Result<u32> {
    u32::try_from(notes.len()).map_err(|_| Error::TooLarge {
        path: path.to_owned(),
        size_bytes: notes.len() as u64,
    })
}
