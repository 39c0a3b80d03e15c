//! Stream entries: a sequence of MessagePack values written one at a time
//! and read back lazily, in constant memory on both sides.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::atomic::TempFile;
use crate::entry::{HEADER_LEN, Header, Kind};
use crate::error::{Corruption, Error, IoResultExt, Result};
use crate::read::{self, Check, Opened};
use crate::store::EntryInfo;
use crate::{Key, Store};

/// Items are encoded into a buffer and flushed to the file in blocks of
/// about this size.
const BLOCK: usize = 64 * 1024;

/// Writes a stream entry item by item. Nothing is visible under the key
/// until [`commit`](StreamWriter::commit); dropping the writer discards it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let store = pcache_core::Store::open(dir.path())?;
/// let key = pcache_core::Key::new("numbers")?;
/// let mut writer = store.stream_writer(&key)?;
/// for i in 0..1000u32 {
///     writer.push(&i)?;
/// }
/// writer.commit(std::time::Duration::ZERO)?;
///
/// let reader = store.stream_reader::<u32>(&key)?.expect("committed");
/// assert_eq!(reader.len(), 1000);
/// assert_eq!(reader.map(Result::unwrap).sum::<u32>(), 499_500);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StreamWriter {
    store: Store,
    key: Key,
    tmp: TempFile,
    pending: Vec<u8>,
    crc: crc32fast::Hasher,
    payload_len: u64,
    items: u64,
    header_written: bool,
}

impl Store {
    /// Starts writing a stream entry for `key`.
    ///
    /// # Errors
    ///
    /// Fails if the temporary file cannot be created.
    pub fn stream_writer(&self, key: &Key) -> Result<StreamWriter> {
        let tmp = TempFile::create(self.layout(), &key.to_string())?;
        let mut pending = Vec::with_capacity(BLOCK + 1024);
        // Room for the header, written for real on commit.
        pending.resize(HEADER_LEN, 0);
        Ok(StreamWriter {
            store: self.clone(),
            key: *key,
            tmp,
            pending,
            crc: crc32fast::Hasher::new(),
            payload_len: 0,
            items: 0,
            header_written: false,
        })
    }

    /// Opens the stream entry under `key` for reading.
    ///
    /// The whole payload's checksum is verified before this returns, so a
    /// corrupt entry is reported here, before any item is decoded. Returns
    /// `Ok(None)` on a miss (absent or expired).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] (the entry has been removed) or [`Error::Io`].
    pub fn stream_reader<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<StreamReader<T>>> {
        let path = self.entry_path(key);
        let (mut file, len) = match read::open(&path)? {
            Opened::Missing => return Ok(None),
            Opened::NotAFile => {
                read::remove_if_same(&path, None);
                return Err(corrupt(&path, Corruption::NotAFile));
            }
            Opened::File { file, len } => (file, len),
        };
        match self.verify_stream(&mut file, len, &path) {
            Ok(None) => Ok(None),
            Ok(Some(header)) => Ok(Some(StreamReader {
                info: EntryInfo {
                    key: *key,
                    path: path.clone(),
                    size_bytes: len,
                    created: header.created,
                    compute_time: header.compute_time,
                    expired: false,
                    corrupt: None,
                },
                file,
                block: Vec::with_capacity(BLOCK),
                pos: 0,
                exhausted: false,
                remaining: header.items,
                path,
                _item: PhantomData,
            })),
            Err(Check::Io(e)) => Err(e),
            Err(Check::Corrupt(reason)) => {
                read::remove_if_same(&path, Some(&file));
                Err(corrupt(&path, reason))
            }
        }
    }

    fn verify_stream(
        &self,
        file: &mut File,
        len: u64,
        path: &Path,
    ) -> Result<Option<Header>, Check> {
        let header = read::header(file, len, Kind::Stream, path)?;
        if self.is_expired(header.created) {
            read::remove_if_same(path, Some(file));
            return Ok(None);
        }
        let mut crc = crc32fast::Hasher::new();
        let mut block = vec![0u8; BLOCK];
        loop {
            let n = read::read_up_to(file, &mut block).op("read entry", path)?;
            crc.update(&block[..n]);
            if n < block.len() {
                break;
            }
        }
        if crc.finalize() != header.payload_crc {
            return Err(Corruption::PayloadChecksum.into());
        }
        file.seek(SeekFrom::Start(HEADER_LEN as u64))
            .op("seek in entry", path)?;
        Ok(Some(header))
    }
}

fn corrupt(path: &Path, reason: Corruption) -> Error {
    Error::Corrupt {
        path: path.to_owned(),
        reason,
    }
}

impl StreamWriter {
    /// Appends one item.
    ///
    /// # Errors
    ///
    /// Fails if the item cannot be serialized or written.
    pub fn push<T: Serialize + ?Sized>(&mut self, item: &T) -> Result<()> {
        rmp_serde::encode::write(&mut self.pending, item).map_err(|source| Error::Encode {
            path: self.tmp.path().to_owned(),
            source,
        })?;
        self.items += 1;
        if self.pending.len() >= BLOCK {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// The number of items pushed so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    fn flush_pending(&mut self) -> Result<()> {
        // Until the first flush, the buffer starts with the header
        // placeholder, which is not part of the payload.
        let start = if self.header_written { 0 } else { HEADER_LEN };
        let payload = &self.pending[start..];
        self.crc.update(payload);
        self.payload_len += payload.len() as u64;
        self.tmp.write_parts(&[&self.pending])?;
        self.pending.clear();
        self.header_written = true;
        Ok(())
    }

    /// Makes the entry visible under its key, atomically replacing any
    /// previous one. `compute_time` is recorded for reporting.
    ///
    /// # Errors
    ///
    /// Fails if the file cannot be written or renamed; nothing is visible then.
    pub fn commit(mut self, compute_time: Duration) -> Result<EntryInfo> {
        self.flush_pending()?;
        let created = self.store.now();
        let header = Header {
            kind: Kind::Stream,
            payload_crc: self.crc.clone().finalize(),
            created,
            payload_len: self.payload_len,
            items: self.items,
            compute_time,
        };
        let path = self.tmp.path().to_owned();
        let file = self.tmp.file();
        file.seek(SeekFrom::Start(0)).op("seek in", &path)?;
        file.write_all(&header.encode()).op("write", &path)?;
        let dest = self.store.entry_path(&self.key);
        self.tmp.persist(&dest, created)?;
        Ok(EntryInfo {
            key: self.key,
            path: dest,
            size_bytes: header.file_len(),
            created,
            compute_time,
            expired: false,
            corrupt: None,
        })
    }
}

/// Reads a stream entry's items lazily; see [`Store::stream_reader`].
///
/// Items are decoded from an in-memory block refilled from the file as they
/// cross its end: decoding from a byte slice runs std's precompiled `Read`
/// for `&[u8]`, fast even when this crate is built without optimizations,
/// and memory stays one block (or the largest item) whatever the count.
#[derive(Debug)]
pub struct StreamReader<T> {
    info: EntryInfo,
    file: File,
    block: Vec<u8>,
    /// Decoded up to here in `block`.
    pos: usize,
    /// Whether the file has been read to its end.
    exhausted: bool,
    remaining: u64,
    path: PathBuf,
    _item: PhantomData<fn() -> T>,
}

impl<T> StreamReader<T> {
    /// The number of items not yet read.
    pub fn len(&self) -> u64 {
        self.remaining
    }

    /// Whether every item has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The entry's header facts.
    pub fn info(&self) -> &EntryInfo {
        &self.info
    }
}

impl<T> StreamReader<T> {
    /// Moves the undecoded tail to the front of the block and reads more
    /// (at least doubling the block when one item fills it).
    fn refill(&mut self) -> Result<()> {
        self.block.drain(..self.pos);
        self.pos = 0;
        let len = self.block.len();
        let want = if len < BLOCK { BLOCK } else { len * 2 };
        self.block.resize(want, 0);
        let n = read::read_up_to(&mut self.file, &mut self.block[len..])
            .op("read entry", &self.path)?;
        self.block.truncate(len + n);
        self.exhausted = n < want - len;
        Ok(())
    }

    fn decode_error(&mut self, source: rmp_serde::decode::Error) -> Error {
        // The checksum passed, so the items are not of type `T`.
        self.remaining = 0;
        Error::Decode {
            path: self.path.clone(),
            type_name: std::any::type_name::<T>(),
            source,
        }
    }
}

/// Whether decoding failed only because the item runs past the block.
fn ran_out(e: &rmp_serde::decode::Error) -> bool {
    use rmp_serde::decode::Error as E;
    matches!(e, E::InvalidMarkerRead(io) | E::InvalidDataRead(io) if io.kind() == std::io::ErrorKind::UnexpectedEof)
}

impl<T: DeserializeOwned> Iterator for StreamReader<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            let mut rest = &self.block[self.pos..];
            let before = rest.len();
            match T::deserialize(&mut rmp_serde::Deserializer::new(&mut rest)) {
                Ok(item) => {
                    self.pos += before - rest.len();
                    self.remaining -= 1;
                    return Some(Ok(item));
                }
                Err(e) if ran_out(&e) && !self.exhausted => {
                    if let Err(e) = self.refill() {
                        self.remaining = 0;
                        return Some(Err(e));
                    }
                }
                Err(e) => return Some(Err(self.decode_error(e))),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}
