//! The read path: open an entry without following links, check its header,
//! read and verify its payload, decode it.
//!
//! Everything up to the decode is non-generic ([`Store::read_raw`]), so a
//! build script that reads ten value types compiles it once; only
//! [`decode`] is instantiated per type.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::bytes::{self, Single};
use crate::entry::{self, HEADER_LEN, Header, Kind};
use crate::error::{Corruption, Error, IoResultExt, Result};
use crate::seen::{Seen, Stamp, TRUST_MIN_BYTES};
use crate::store::{EntryInfo, Lookup};
use crate::{Key, Store};

/// Byte and text values up to this size are read in one go and copied out
/// of the file buffer; larger ones are read straight into their final
/// allocation.
const SMALL_BYTES: u64 = 64 * 1024;

/// What the caller will decode the payload into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Any type, through `rmp-serde`.
    Value,
    /// A byte container or text: the `bin` or `str` payload is handed over
    /// as is.
    Single(Single),
}

impl Want {
    pub(crate) fn of<T>() -> Want {
        bytes::single_kind::<T>().map_or(Want::Value, Want::Single)
    }
}

/// A checked entry, not yet decoded.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) info: EntryInfo,
    body: Body,
    notes: Vec<u8>,
    /// The file read, to remove it (and not a newer one renamed over it)
    /// should its payload not decode.
    file: File,
}

#[derive(Debug)]
enum Body {
    /// The header and the payload, which starts at `HEADER_LEN`.
    File(Vec<u8>),
    /// The data of a `bin` or `str` payload, and the marker before it.
    Single {
        kind: Single,
        marker: Vec<u8>,
        data: Vec<u8>,
    },
}

impl Body {
    /// The payload's CRC-32, for a read that skipped it.
    fn crc(&self) -> u32 {
        match self {
            Body::File(buf) => crc32fast::hash(&buf[HEADER_LEN..]),
            Body::Single { marker, data, .. } => {
                let mut crc = crc32fast::Hasher::new();
                crc.update(marker);
                crc.update(data);
                crc.finalize()
            }
        }
    }
}

/// A value read from the store, with its header facts and notes.
#[derive(Debug)]
#[non_exhaustive]
pub struct Found<T> {
    /// The value.
    pub value: T,
    /// The entry's facts: size, creation and compute time.
    pub info: EntryInfo,
    /// The notes stored with it (see
    /// [`set_with_notes`](Store::set_with_notes)).
    pub notes: Vec<u8>,
}

/// One read of an entry file: what was read, and whether its payload was
/// checksummed by this read.
struct EntryRead {
    header: Header,
    body: Body,
    notes: Vec<u8>,
    verified: bool,
}

impl Store {
    /// Reads the value stored under `key`.
    ///
    /// Returns `Ok(None)` on a miss: no entry, or an expired one (which is
    /// removed).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] and [`Error::Decode`] when an entry exists but
    /// fails its checks or does not deserialize as `T`; it has been removed,
    /// so callers may treat these as a miss (after warning). [`Error::Io`]
    /// when the file cannot be read.
    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>> {
        Ok(self.lookup(key)?.found().map(|found| found.value))
    }

    /// Like [`get`](Store::get), also returning the entry's header facts
    /// and notes, and telling an expired entry from an absent one.
    ///
    /// # Errors
    ///
    /// As [`get`](Store::get).
    pub fn lookup<T: DeserializeOwned>(&self, key: &Key) -> Result<Lookup<Found<T>>> {
        Ok(match self.read_raw(key, Want::of::<T>())? {
            Lookup::Found(raw) => {
                let found = decode(raw)?;
                self.mark("decode");
                Lookup::Found(found)
            }
            Lookup::Absent => Lookup::Absent,
            Lookup::Expired => Lookup::Expired,
        })
    }

    /// Opens, checks and reads `key`'s entry: everything but the decode.
    ///
    /// A large entry whose identity matches its `.seen` record was verified
    /// before, as this very version of the file, and is read without
    /// checksumming its payload again (see the `seen` module).
    pub(crate) fn read_raw(&self, key: &Key, want: Want) -> Result<Lookup<Raw>> {
        let path = self.entry_path(key);
        let (mut file, len, stamp) = match open(&path)? {
            Opened::Missing => return Ok(Lookup::Absent),
            Opened::NotAFile => return Err(discard(&path, None, Corruption::NotAFile)),
            Opened::File { file, len, stamp } => (file, len, stamp),
        };
        let large = len >= TRUST_MIN_BYTES;
        let mut seen = Seen::open(&self.layout().seen(key), large, self.records_use());
        let trusted = large && seen.trusts(stamp);
        self.mark("open");
        let read = match want {
            Want::Single(kind) if len > SMALL_BYTES => {
                self.read_large_single(&mut file, len, &path, kind, trusted)
            }
            _ => self.read_whole(&mut file, len, &path, want, trusted),
        };
        let read = match read {
            Ok(Some(read)) => read,
            Ok(None) => return Ok(Lookup::Expired),
            Err(Check::Io(e)) => return Err(e),
            Err(Check::Corrupt(reason)) => return Err(discard(&path, Some(&file), reason)),
        };
        let now = self.now();
        if !read.verified {
            // Trusted by its identity: make sure it still has it, now that
            // the bytes are read; if it moved, check the bytes after all.
            let after = file.metadata().ok().as_ref().and_then(Stamp::of);
            if after != stamp && read.body.crc() != read.header.payload_crc {
                return Err(discard(&path, Some(&file), Corruption::PayloadChecksum));
            }
            self.mark("identity check (checksum skipped)");
        } else if large {
            seen.record(stamp, now);
            self.mark("record the check");
        }
        if self.records_use() {
            seen.touch(now);
            self.mark("record the use");
        }
        Ok(Lookup::Found(Raw {
            info: self.info(*key, path, len, &read.header, None),
            body: read.body,
            notes: read.notes,
            file,
        }))
    }

    /// Reads the whole file and checks it (the payload's checksum unless
    /// `trusted`). `None` if expired (removed).
    fn read_whole(
        &self,
        file: &mut File,
        len: u64,
        path: &Path,
        want: Want,
        trusted: bool,
    ) -> Result<Option<EntryRead>, Check> {
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len)
            .read_to_end(&mut buf)
            .op("read entry", path)?;
        self.mark("read");
        let header = Header::decode(&buf)?;
        header.check(Kind::Value, buf.len() as u64)?;
        if self.is_expired(header.created) {
            remove_if_same(path, Some(file));
            return Ok(None);
        }
        // The length check makes both offsets lie within `buf`.
        let notes = buf.split_off(header.notes_offset() as usize);
        header.check_notes(&notes)?;
        let payload = &buf[HEADER_LEN..];
        if !trusted {
            if crc32fast::hash(payload) != header.payload_crc {
                return Err(Corruption::PayloadChecksum.into());
            }
            self.mark("checksum");
        }
        let body = match want {
            Want::Single(kind) => match entry::parse_single_marker(kind, payload) {
                Some((marker_len, data_len)) => {
                    if marker_len as u64 + data_len != payload.len() as u64 {
                        return Err(Corruption::BadPayload("single value length mismatch").into());
                    }
                    let marker = payload[..marker_len].to_vec();
                    buf.drain(..HEADER_LEN + marker_len);
                    Body::Single {
                        kind,
                        marker,
                        data: buf,
                    }
                }
                // Written by other means (an integer array): decode it
                // generically.
                None => Body::File(buf),
            },
            Want::Value => Body::File(buf),
        };
        Ok(Some(EntryRead {
            header,
            body,
            notes,
            verified: !trusted,
        }))
    }

    /// Reads a large byte or text value straight into its final buffer: one
    /// allocation, one bulk read, and one checksum pass unless `trusted`.
    fn read_large_single(
        &self,
        file: &mut File,
        len: u64,
        path: &Path,
        kind: Single,
        trusted: bool,
    ) -> Result<Option<EntryRead>, Check> {
        let header = read_header(file, len, Some(Kind::Value), path)?;
        if self.is_expired(header.created) {
            remove_if_same(path, Some(file));
            return Ok(None);
        }
        let mut marker = [0u8; 5];
        let single = (header.payload_len >= marker.len() as u64)
            .then(|| read_up_to(file, &mut marker).op("read entry", path))
            .transpose()?
            .and_then(|n| Some((n, entry::parse_single_marker(kind, &marker[..n])?)));
        let Some((n, (marker_len, data_len))) = single else {
            // Not a single `bin` or `str` (or too short to be a large one):
            // read it as any value.
            file.rewind().op("seek in entry", path)?;
            return self.read_whole(file, len, path, Want::Value, trusted);
        };
        if marker_len as u64 + data_len != header.payload_len {
            return Err(Corruption::BadPayload("single value length mismatch").into());
        }
        // The 5-byte read may have taken the first data bytes.
        let mut data = Vec::with_capacity(usize::try_from(data_len).unwrap_or(0));
        data.extend_from_slice(&marker[marker_len..n]);
        file.take(data_len - (n - marker_len) as u64)
            .read_to_end(&mut data)
            .op("read entry", path)?;
        if data.len() as u64 != data_len {
            return Err(Corruption::Truncated.into());
        }
        let notes = read_notes(file, &header, path)?;
        self.mark("read");
        let body = Body::Single {
            kind,
            marker: marker[..marker_len].to_vec(),
            data,
        };
        if !trusted {
            if body.crc() != header.payload_crc {
                return Err(Corruption::PayloadChecksum.into());
            }
            self.mark("checksum");
        }
        Ok(Some(EntryRead {
            header,
            body,
            notes,
            verified: !trusted,
        }))
    }

    /// Removes an entry that passed its checks but that the caller cannot
    /// use, and reports it as corrupt.
    pub(crate) fn reject(&self, info: EntryInfo) -> Error {
        // The entry may have been replaced since it was read; a newer one
        // would be judged on its own next time, so removing by path is only
        // ever a lost hit.
        let _ = fs::remove_file(&info.path);
        Error::Corrupt {
            path: info.path,
            reason: Corruption::BadPayload("notes the reader cannot use"),
        }
    }

    pub(crate) fn info(
        &self,
        key: Key,
        path: std::path::PathBuf,
        size_bytes: u64,
        header: &Header,
        corrupt: Option<Corruption>,
    ) -> EntryInfo {
        EntryInfo {
            key,
            path,
            size_bytes,
            created: header.created,
            compute_time: header.compute_time,
            expired: corrupt.is_some() || self.is_expired(header.created),
            corrupt,
            last_used: None,
        }
    }
}

/// Decodes a checked entry into a `T`. A payload that passed every check
/// but does not decode (the type changed, or text that is not UTF-8) is
/// removed and reported.
pub(crate) fn decode<T: DeserializeOwned>(raw: Raw) -> Result<Found<T>> {
    let Raw {
        info,
        body,
        notes,
        file,
    } = raw;
    let value = match body {
        // `Want::of` reads a single body only for the types these build.
        Body::Single {
            kind: Single::Bytes,
            data,
            ..
        } => bytes::from_vec(data).expect("byte bodies are read for byte types only"),
        Body::Single {
            kind: Single::Text,
            data,
            ..
        } => match String::from_utf8(data) {
            Ok(text) => bytes::from_string(text).expect("text bodies are read for String only"),
            Err(_) => {
                return Err(discard(
                    &info.path,
                    Some(&file),
                    Corruption::BadPayload("text is not UTF-8"),
                ));
            }
        },
        Body::File(buf) => match rmp_serde::from_slice(&buf[HEADER_LEN..]) {
            Ok(value) => value,
            Err(source) => return Err(undecodable::<T>(info, &file, source)),
        },
    };
    Ok(Found { value, info, notes })
}

/// Reads and checks the notes of an open entry whose payload has been read.
pub(crate) fn read_notes(file: &mut File, header: &Header, path: &Path) -> Result<Vec<u8>, Check> {
    let mut notes = vec![0u8; header.notes_len as usize];
    let n = read_up_to(file, &mut notes).op("read entry", path)?;
    notes.truncate(n);
    header.check_notes(&notes)?;
    Ok(notes)
}

fn undecodable<T>(info: EntryInfo, file: &File, source: rmp_serde::decode::Error) -> Error {
    remove_if_same(&info.path, Some(file));
    Error::Decode {
        path: info.path,
        type_name: std::any::type_name::<T>(),
        source,
    }
}

/// What opening an entry found.
#[derive(Debug)]
pub(crate) enum Opened {
    Missing,
    /// The path exists but is not a regular file (a symlink, a directory…).
    NotAFile,
    File {
        file: File,
        len: u64,
        stamp: Option<Stamp>,
    },
}

/// Opens an entry without following symlinks: a link in an entry's place is
/// corruption, never a redirect to some other file.
pub(crate) fn open(path: &Path) -> Result<Opened> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::Missing),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Opened::NotAFile),
        Err(e) => return Err(e).op("open entry", path),
    };
    let meta = file.metadata().op("read metadata of entry", path)?;
    if !meta.is_file() {
        return Ok(Opened::NotAFile);
    }
    Ok(Opened::File {
        file,
        len: meta.len(),
        stamp: Stamp::of(&meta),
    })
}

/// Reads and checks the header of an open entry of `len` bytes (of `kind`,
/// if given); the file position is left just after the header.
pub(crate) fn read_header(
    file: &mut File,
    len: u64,
    kind: Option<Kind>,
    path: &Path,
) -> Result<Header, Check> {
    let mut bytes = [0u8; HEADER_LEN];
    let n = read_up_to(file, &mut bytes).op("read entry", path)?;
    let header = Header::decode(&bytes[..n])?;
    match kind {
        Some(kind) => header.check(kind, len)?,
        None => header.check_len(len)?,
    }
    Ok(header)
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A check that failed: either an I/O error or corruption.
#[derive(Debug)]
pub(crate) enum Check {
    Io(Error),
    Corrupt(Corruption),
}

impl From<Error> for Check {
    fn from(e: Error) -> Check {
        Check::Io(e)
    }
}

impl From<Corruption> for Check {
    fn from(c: Corruption) -> Check {
        Check::Corrupt(c)
    }
}

/// Removes a corrupt entry (if it is still the file that was read) and
/// returns the error reporting it.
pub(crate) fn discard(path: &Path, opened: Option<&File>, reason: Corruption) -> Error {
    remove_if_same(path, opened);
    Error::Corrupt {
        path: path.to_owned(),
        reason,
    }
}

/// Removes the file at `path` if it is still the one that was opened as
/// `opened` (a concurrent writer may have renamed a fresh entry over it since).
pub(crate) fn remove_if_same(path: &Path, opened: Option<&File>) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let _ = fs::remove_dir_all(path);
        return;
    }
    if let Some(file) = opened {
        if !same_file(file, &meta) {
            return;
        }
    }
    let _ = fs::remove_file(path);
}

#[cfg(unix)]
fn same_file(file: &File, path_meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata()
        .is_ok_and(|m| m.dev() == path_meta.dev() && m.ino() == path_meta.ino())
}

#[cfg(not(unix))]
fn same_file(_file: &File, _path_meta: &fs::Metadata) -> bool {
    true
}
