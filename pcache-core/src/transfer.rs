//! Moving entries between stores and other places (a remote cache): an
//! entry's file is exported as is, and imported only after every check a
//! read makes, whoever wrote it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::atomic::TempFile;
use crate::entry::{HEADER_LEN, Header};
use crate::error::{Corruption, Error, IoResultExt, Result};
use crate::get::{self, Opened};
use crate::seen::{Seen, TRUST_MIN_BYTES};
use crate::store::EntryInfo;
use crate::{Key, Store};

impl Store {
    /// Imports an entry whose bytes `write` produces (a download), for
    /// `key`: they go to a temporary file, are checked like any entry read
    /// (magic, version, lengths, and the header's, payload's and notes'
    /// checksums), and become visible under `key` only if they pass.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let a = pcache_core::Store::open(dir.path().join("a"))?;
    /// let b = pcache_core::Store::open(dir.path().join("b"))?;
    /// let key = pcache_core::Key::new("k")?;
    /// a.set(&key, &vec![1u32, 2, 3])?;
    /// let bytes = std::fs::read(a.entry_path(&key))?;
    /// b.import(&key, |file| std::io::Write::write_all(file, &bytes))?;
    /// assert_eq!(b.get::<Vec<u32>>(&key)?, Some(vec![1, 2, 3]));
    ///
    /// // Anything else is refused, and nothing is left behind.
    /// let mut damaged = bytes.clone();
    /// damaged[66] ^= 1;
    /// let other = pcache_core::Key::new("other")?;
    /// assert!(b.import(&other, |file| std::io::Write::write_all(file, &damaged)).is_err());
    /// assert_eq!(b.get::<Vec<u32>>(&other)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when the bytes are not a whole, valid entry;
    /// [`Error::Io`] when `write` or the file system fails.
    pub fn import(
        &self,
        key: &Key,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<EntryInfo> {
        let mut tmp = TempFile::create(self.layout(), &key.to_string())?;
        let path = tmp.path().to_owned();
        write(tmp.file()).op("write imported entry", &path)?;
        let header = verify_file(tmp.file(), &path)?;
        let dest = self.entry_path(key);
        let imported = tmp.persist_open(&dest, header.created)?;
        if let Some(file) = imported.filter(|_| header.file_len() >= TRUST_MIN_BYTES) {
            // Checked whole just now: the first read need not check it again.
            Seen::record_written(&self.layout().seen(key), &file, &|| self.now());
        }
        self.after_write();
        Ok(self.info(*key, dest, header.file_len(), &header, None))
    }

    /// The bytes of `key`'s entry, checked as a read checks them, for export
    /// (`None` if there is none).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] (the entry is removed) or [`Error::Io`].
    pub fn export(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        let path = self.entry_path(key);
        let mut file = match get::open(&path)? {
            Opened::Missing => return Ok(None),
            Opened::NotAFile => return Err(get::discard(&path, None, Corruption::NotAFile)),
            Opened::File { file, .. } => file,
        };
        if let Err(e) = verify_file(&mut file, &path) {
            if matches!(e, Error::Corrupt { .. }) {
                get::remove_if_same(&path, Some(&file));
            }
            return Err(e);
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .op("read entry", &path)?;
        Ok(Some(bytes))
    }
}

/// Checks a whole entry file from its start: header, length, payload and
/// notes checksums.
fn verify_file(file: &mut File, path: &std::path::Path) -> Result<Header> {
    let corrupt = |reason| Error::Corrupt {
        path: path.to_owned(),
        reason,
    };
    file.flush().op("write imported entry", path)?;
    let len = file.metadata().op("read metadata of", path)?.len();
    file.seek(SeekFrom::Start(0)).op("seek in", path)?;
    let header = match get::read_header(file, len, None, path) {
        Ok(header) => header,
        Err(get::Check::Io(e)) => return Err(e),
        Err(get::Check::Corrupt(reason)) => return Err(corrupt(reason)),
    };
    let mut crc = crc32fast::Hasher::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut left = header.payload_len;
    while left > 0 {
        let want = block.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = get::read_up_to(file, &mut block[..want]).op("read entry", path)?;
        if n == 0 {
            return Err(corrupt(Corruption::Truncated));
        }
        crc.update(&block[..n]);
        left -= n as u64;
    }
    if crc.finalize() != header.payload_crc {
        return Err(corrupt(Corruption::PayloadChecksum));
    }
    match get::read_notes(file, &header, path) {
        Ok(_) => {}
        Err(get::Check::Io(e)) => return Err(e),
        Err(get::Check::Corrupt(reason)) => return Err(corrupt(reason)),
    }
    debug_assert_eq!(
        header.notes_offset(),
        HEADER_LEN as u64 + header.payload_len
    );
    Ok(header)
}
