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
use crate::store::EntryInfo;
use crate::{Key, Store, bytes};

impl Store {
    /// Stores `value` under `key`, replacing any previous entry atomically.
    ///
    /// Byte values (`Vec<u8>`, `[u8]`, `Box<[u8]>`, `serde_bytes::ByteBuf`)
    /// are written as one MessagePack `bin` without per-byte work.
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
        if let Some(data) = bytes::as_bytes(value) {
            return self.write_bin(key, data, compute_time);
        }
        let buf = rmp_serde::to_vec(value).map_err(|source| Error::Encode {
            path: self.entry_path(key),
            source,
        })?;
        self.write_entry(key, &[&buf], compute_time)
    }

    /// Writes a byte value as a `bin` payload, without copying it.
    fn write_bin(&self, key: &Key, data: &[u8], compute_time: Duration) -> Result<EntryInfo> {
        let (marker, n) = entry::bin_marker(data.len()).ok_or_else(|| Error::TooLarge {
            path: self.entry_path(key),
            size_bytes: data.len() as u64,
        })?;
        self.write_entry(key, &[&marker[..n], data], compute_time)
    }

    /// Writes a value entry whose payload is `payload`'s parts, in order.
    fn write_entry(
        &self,
        key: &Key,
        payload: &[&[u8]],
        compute_time: Duration,
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
        };
        let encoded = header.encode();
        let mut parts = Vec::with_capacity(payload.len() + 1);
        parts.push(&encoded[..]);
        parts.extend_from_slice(payload);
        let mut tmp = TempFile::create(self.layout(), &key.to_string())?;
        tmp.write_parts(&parts)?;
        tmp.persist(&path, created)?;
        Ok(self.info(*key, path, header.file_len(), &header, None))
    }
}
