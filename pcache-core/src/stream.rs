//! Stream entries: a sequence of MessagePack values written one at a time
//! and read back lazily, in constant memory on both sides.
//!
//! The payload is a sequence of frames, each holding whole items:
//!
//! ```text
//! frame: length (u32 LE) | CRC-32 of the items (u32 LE) | items…
//! ```
//!
//! The reader checks the whole payload against the header's checksum before
//! yielding anything, then reads the file a second time, frame by frame, to
//! decode. Each frame is checked again as it is decoded, from the very bytes
//! decoded: a file changed in place between the two reads (by a disk error
//! or another program; pcache itself never writes in place) is an error,
//! never an item.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::atomic::TempFile;
use crate::entry::{HEADER_LEN, Header, Kind};
use crate::error::{Corruption, Error, IoResultExt, Result};
use crate::get::{self, Check, Opened};
use crate::seen::{Seen, TRUST_MIN_BYTES};
use crate::store::{EntryInfo, Lookup};
use crate::{Key, Store};

/// Items are encoded into a buffer and written as a frame once it holds
/// about this much.
const FRAME: usize = 64 * 1024;
const FRAME_HEADER: usize = 8;

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
    /// Encoded items of the frame being filled.
    pending: Vec<u8>,
    /// Checksum of the whole payload (frame headers included).
    crc: crc32fast::Hasher,
    payload_len: u64,
    items: u64,
}

impl Store {
    /// Starts writing a stream entry for `key`.
    ///
    /// # Errors
    ///
    /// Fails if the temporary file cannot be created.
    pub fn stream_writer(&self, key: &Key) -> Result<StreamWriter> {
        let mut tmp = TempFile::create(self.layout(), &key.to_string())?;
        // Room for the header, written for real on commit.
        tmp.write_parts(&[&[0u8; HEADER_LEN]])?;
        Ok(StreamWriter {
            store: self.clone(),
            key: *key,
            tmp,
            pending: Vec::with_capacity(FRAME + 1024),
            crc: crc32fast::Hasher::new(),
            payload_len: 0,
            items: 0,
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
        Ok(self.lookup_stream(key)?.found())
    }

    /// Like [`stream_reader`](Store::stream_reader), telling an absent entry
    /// from an expired one.
    ///
    /// # Errors
    ///
    /// As [`stream_reader`](Store::stream_reader).
    pub fn lookup_stream<T: DeserializeOwned>(&self, key: &Key) -> Result<Lookup<StreamReader<T>>> {
        Ok(self.open_stream(key)?.map(|frames| StreamReader {
            frames,
            _item: PhantomData,
        }))
    }

    fn open_stream(&self, key: &Key) -> Result<Lookup<Frames>> {
        let path = self.entry_path(key);
        let (mut file, len, stamp) = match get::open(&path)? {
            Opened::Missing => return Ok(Lookup::Absent),
            Opened::NotAFile => return Err(get::discard(&path, None, Corruption::NotAFile)),
            Opened::File { file, len, stamp } => (file, len, stamp),
        };
        let large = len >= TRUST_MIN_BYTES;
        let mut seen = Seen::open(&self.layout().seen(key), large, self.records_use());
        // A stream verified before as this very file skips the whole-payload
        // pass; every frame is still checked as it is decoded.
        let trusted = large && seen.trusts(stamp);
        self.mark("open");
        let opened = self.verify_stream(&mut file, len, &path, trusted);
        self.mark(if trusted {
            "read the notes (checksum skipped)"
        } else {
            "checksum"
        });
        if let Ok(Some(_)) = &opened {
            let now = self.now();
            if large && !trusted {
                seen.record(stamp, now);
            }
            if self.records_use() {
                seen.touch(now);
            }
        }
        match opened {
            Ok(None) => Ok(Lookup::Expired),
            Ok(Some((header, notes))) => Ok(Lookup::Found(Frames {
                info: self.info(*key, path, len, &header, None),
                end: header.notes_offset(),
                notes,
                file,
                frame: Vec::with_capacity(FRAME),
                pos: 0,
                remaining: header.items,
            })),
            Err(Check::Io(e)) => Err(e),
            Err(Check::Corrupt(reason)) => Err(get::discard(&path, Some(&file), reason)),
        }
    }

    fn verify_stream(
        &self,
        file: &mut File,
        len: u64,
        path: &Path,
        trusted: bool,
    ) -> Result<Option<(Header, Vec<u8>)>, Check> {
        let header = get::read_header(file, len, Some(Kind::Stream), path)?;
        if self.is_expired(header.created) {
            get::remove_if_same(path, Some(file));
            return Ok(None);
        }
        if trusted {
            file.seek(SeekFrom::Start(header.notes_offset()))
                .op("seek in entry", path)?;
            let notes = get::read_notes(file, &header, path)?;
            file.seek(SeekFrom::Start(HEADER_LEN as u64))
                .op("seek in entry", path)?;
            return Ok(Some((header, notes)));
        }
        let mut crc = crc32fast::Hasher::new();
        let mut block = vec![0u8; FRAME];
        let mut left = header.payload_len;
        while left > 0 {
            let want = block.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = get::read_up_to(file, &mut block[..want]).op("read entry", path)?;
            if n == 0 {
                return Err(Corruption::Truncated.into());
            }
            crc.update(&block[..n]);
            left -= n as u64;
        }
        if crc.finalize() != header.payload_crc {
            return Err(Corruption::PayloadChecksum.into());
        }
        let notes = get::read_notes(file, &header, path)?;
        file.seek(SeekFrom::Start(HEADER_LEN as u64))
            .op("seek in entry", path)?;
        Ok(Some((header, notes)))
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
        if self.pending.len() >= FRAME {
            self.write_frame()?;
        }
        Ok(())
    }

    /// The number of items pushed so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    fn write_frame(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(self.pending.len()).map_err(|_| Error::TooLarge {
            path: self.tmp.path().to_owned(),
            size_bytes: self.pending.len() as u64,
        })?;
        let mut frame_header = [0u8; FRAME_HEADER];
        frame_header[..4].copy_from_slice(&len.to_le_bytes());
        frame_header[4..].copy_from_slice(&crc32fast::hash(&self.pending).to_le_bytes());
        self.crc.update(&frame_header);
        self.crc.update(&self.pending);
        self.payload_len += (FRAME_HEADER + self.pending.len()) as u64;
        self.tmp.write_parts(&[&frame_header, &self.pending])?;
        self.pending.clear();
        Ok(())
    }

    /// Makes the entry visible under its key, atomically replacing any
    /// previous one. `compute_time` is recorded for reporting.
    ///
    /// # Errors
    ///
    /// Fails if the file cannot be written or renamed; nothing is visible then.
    pub fn commit(self, compute_time: Duration) -> Result<EntryInfo> {
        self.commit_with_notes(compute_time, &[])
    }

    /// Like [`commit`](StreamWriter::commit), storing `notes` with the
    /// stream: the caller's own bytes about it, checksummed, returned by
    /// [`StreamReader::notes`].
    ///
    /// # Errors
    ///
    /// As [`commit`](StreamWriter::commit).
    pub fn commit_with_notes(mut self, compute_time: Duration, notes: &[u8]) -> Result<EntryInfo> {
        self.write_frame()?;
        let created = self.store.now();
        let path = self.tmp.path().to_owned();
        let header = Header {
            kind: Kind::Stream,
            payload_crc: self.crc.clone().finalize(),
            created,
            payload_len: self.payload_len,
            items: self.items,
            compute_time,
            notes_len: crate::put::notes_len(notes, &path)?,
            notes_crc: crc32fast::hash(notes),
        };
        self.tmp.write_parts(&[notes])?;
        let file = self.tmp.file();
        file.seek(SeekFrom::Start(0)).op("seek in", &path)?;
        file.write_all(&header.encode()).op("write", &path)?;
        let dest = self.store.entry_path(&self.key);
        self.tmp.persist(&dest, created)?;
        self.store.after_write();
        Ok(self
            .store
            .info(self.key, dest, header.file_len(), &header, None))
    }
}

/// Reads a stream entry's items lazily; see [`Store::stream_reader`].
///
/// Items are decoded from one frame at a time held in memory, checked
/// against the frame's own checksum: decoding from a byte slice runs std's
/// precompiled `Read` for `&[u8]`, fast even when this crate is built
/// without optimizations, and memory stays one frame whatever the count.
#[derive(Debug)]
pub struct StreamReader<T> {
    frames: Frames,
    _item: PhantomData<fn() -> T>,
}

/// The frames of a stream and the position in the current one: everything
/// of a reader but the decoding, compiled once whatever the item type.
#[derive(Debug)]
struct Frames {
    info: EntryInfo,
    /// Where the frames end (and the notes start) in the file.
    end: u64,
    notes: Vec<u8>,
    file: File,
    frame: Vec<u8>,
    /// Decoded up to here in `frame`.
    pos: usize,
    remaining: u64,
}

impl<T> StreamReader<T> {
    /// The number of items not yet read.
    pub fn len(&self) -> u64 {
        self.frames.remaining
    }

    /// Whether every item has been read.
    pub fn is_empty(&self) -> bool {
        self.frames.remaining == 0
    }

    /// The entry's header facts.
    pub fn info(&self) -> &EntryInfo {
        &self.frames.info
    }

    /// The notes stored with the stream (see [`StreamWriter::commit_with_notes`]).
    pub fn notes(&self) -> &[u8] {
        &self.frames.notes
    }
}

impl Frames {
    /// The undecoded rest of the current frame, reading the next one when
    /// it is used up. `None` once every item has been read.
    fn rest(&mut self) -> Option<Result<&[u8]>> {
        if self.remaining == 0 {
            return None;
        }
        if self.pos >= self.frame.len() {
            if let Err(e) = self.next_frame() {
                return Some(Err(e));
            }
        }
        Some(Ok(&self.frame[self.pos..]))
    }

    /// Records that an item of `len` bytes was decoded.
    fn advance(&mut self, len: usize) {
        self.pos += len;
        self.remaining -= 1;
    }

    /// Reads and checks the next frame.
    fn next_frame(&mut self) -> Result<()> {
        let path = &self.info.path;
        let mut frame_header = [0u8; FRAME_HEADER];
        let n = get::read_up_to(&mut self.file, &mut frame_header).op("read entry", path)?;
        if n < FRAME_HEADER {
            return Err(self.changed(Corruption::Truncated));
        }
        let [l0, l1, l2, l3, c0, c1, c2, c3] = frame_header;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        // The length was covered by the checksum checked on open, so it is
        // bounded by the file; still, never trust it for an allocation
        // larger than what is left of the file.
        let left = self
            .end
            .saturating_sub(self.file.stream_position().unwrap_or(u64::MAX));
        if len as u64 > left {
            return Err(self.changed(Corruption::Truncated));
        }
        self.frame.resize(len, 0);
        let n = get::read_up_to(&mut self.file, &mut self.frame).op("read entry", path)?;
        if n < len {
            return Err(self.changed(Corruption::Truncated));
        }
        if crc32fast::hash(&self.frame) != crc {
            return Err(self.changed(Corruption::PayloadChecksum));
        }
        self.pos = 0;
        Ok(())
    }

    /// The file changed after it was verified: it is corrupt now. Nothing
    /// more is read from it.
    fn changed(&mut self, reason: Corruption) -> Error {
        self.remaining = 0;
        get::discard(&self.info.path, Some(&self.file), reason)
    }

    /// Every byte passed its checksums, so the items are not of the
    /// requested type. Nothing more is read.
    fn undecodable(&mut self, type_name: &'static str, source: rmp_serde::decode::Error) -> Error {
        self.remaining = 0;
        Error::Decode {
            path: self.info.path.clone(),
            type_name,
            source,
        }
    }
}

impl<T: DeserializeOwned> Iterator for StreamReader<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let mut rest = match self.frames.rest()? {
            Ok(rest) => rest,
            Err(e) => return Some(Err(e)),
        };
        let before = rest.len();
        let decoded = T::deserialize(&mut rmp_serde::Deserializer::new(&mut rest));
        let used = before - rest.len();
        Some(match decoded {
            Ok(item) => {
                self.frames.advance(used);
                Ok(item)
            }
            Err(source) => Err(self.frames.undecodable(std::any::type_name::<T>(), source)),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.frames.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}
