//! The entry file format.
//!
//! ```text
//! offset size  field
//!      0    8  magic  b"\x89pcache\n"
//!      8    2  format version (u16 LE), currently 3
//!     10    1  kind: 1 = one MessagePack value, 2 = a stream of values
//!     11    1  reserved, 0
//!     12    4  CRC-32 of the payload (u32 LE)
//!     16    8  creation time, seconds since the Unix epoch (u64 LE)
//!     24    4  creation time, nanoseconds (u32 LE)
//!     28    4  notes length in bytes (u32 LE)
//!     32    8  payload length in bytes (u64 LE)
//!     40    8  item count (streams), 0 otherwise (u64 LE)
//!     48    8  time the value took to compute, nanoseconds (u64 LE)
//!     56    4  CRC-32 of the notes (u32 LE)
//!     60    4  CRC-32 of bytes 0..60 (u32 LE)
//!     64    …  payload
//!      …    …  notes
//! ```
//!
//! A value's payload is one MessagePack value. A stream's payload is a
//! sequence of frames of whole items, each `length (u32 LE) | CRC-32 (u32 LE)
//! | items…`, so that a reader can check the bytes it decodes (see the
//! `stream` module). The notes are the writer's own bytes about the entry
//! (pcache-build keeps a step's Cargo directives there), checked like the
//! payload and never interpreted by the store. Version 3 added them; entries
//! of other versions are misses.
//!
//! CRC-32 (through `crc32fast`) rather than a wider hash because it detects
//! every burst error up to 32 bits and, unlike XXH3, stays near 1 GB/s when
//! compiled without optimizations, which is how Cargo builds build-script
//! dependencies by default.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bytes::Single;
use crate::error::Corruption;

pub(crate) const MAGIC: [u8; 8] = *b"\x89pcache\n";
/// The entry format version this crate reads and writes.
pub const FORMAT_VERSION: u16 = 3;
pub(crate) const HEADER_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Value = 1,
    Stream = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) payload_crc: u32,
    pub(crate) created: SystemTime,
    pub(crate) payload_len: u64,
    pub(crate) items: u64,
    pub(crate) compute_time: Duration,
    pub(crate) notes_len: u32,
    pub(crate) notes_crc: u32,
}

impl Header {
    pub(crate) fn file_len(&self) -> u64 {
        // Saturating: a forged header must not overflow, only mismatch.
        self.notes_offset()
            .saturating_add(u64::from(self.notes_len))
    }

    /// Where the notes start in the file.
    pub(crate) fn notes_offset(&self) -> u64 {
        (HEADER_LEN as u64).saturating_add(self.payload_len)
    }

    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let since_epoch = self.created.duration_since(UNIX_EPOCH).unwrap_or_default();
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[10] = self.kind as u8;
        h[12..16].copy_from_slice(&self.payload_crc.to_le_bytes());
        h[16..24].copy_from_slice(&since_epoch.as_secs().to_le_bytes());
        h[24..28].copy_from_slice(&since_epoch.subsec_nanos().to_le_bytes());
        h[28..32].copy_from_slice(&self.notes_len.to_le_bytes());
        h[32..40].copy_from_slice(&self.payload_len.to_le_bytes());
        h[40..48].copy_from_slice(&self.items.to_le_bytes());
        let nanos = u64::try_from(self.compute_time.as_nanos()).unwrap_or(u64::MAX);
        h[48..56].copy_from_slice(&nanos.to_le_bytes());
        h[56..60].copy_from_slice(&self.notes_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Parses and checks a header. `bytes` may be shorter than a header
    /// (a truncated file).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Header, Corruption> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(if MAGIC.starts_with(bytes) {
                Corruption::Truncated
            } else {
                Corruption::BadMagic
            });
        }
        let Some(h) = bytes.get(..HEADER_LEN) else {
            return Err(Corruption::Truncated);
        };
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if crc32fast::hash(&h[..60]) != u32_at(60) {
            return Err(Corruption::HeaderChecksum);
        }
        let version = u16_at(8);
        if version != FORMAT_VERSION {
            return Err(Corruption::UnsupportedVersion(version));
        }
        let kind = match h[10] {
            1 => Kind::Value,
            2 => Kind::Stream,
            _ => return Err(Corruption::BadPayload("unknown entry kind")),
        };
        let nanos = u32_at(24);
        if nanos >= 1_000_000_000 {
            return Err(Corruption::BadPayload("invalid creation time"));
        }
        let created = UNIX_EPOCH
            .checked_add(Duration::new(u64_at(16), nanos))
            .ok_or(Corruption::BadPayload("invalid creation time"))?;
        Ok(Header {
            kind,
            payload_crc: u32_at(12),
            created,
            payload_len: u64_at(32),
            items: u64_at(40),
            compute_time: Duration::from_nanos(u64_at(48)),
            notes_len: u32_at(28),
            notes_crc: u32_at(56),
        })
    }

    /// Checks the header against what the caller expects and the file's
    /// actual length.
    pub(crate) fn check(&self, kind: Kind, file_len: u64) -> Result<(), Corruption> {
        if self.kind != kind {
            return Err(Corruption::WrongKind {
                expected: kind as u8,
                found: self.kind as u8,
            });
        }
        self.check_len(file_len)
    }

    /// Checks notes read from the file against the header.
    pub(crate) fn check_notes(&self, notes: &[u8]) -> Result<(), Corruption> {
        if notes.len() as u64 != u64::from(self.notes_len) {
            return Err(Corruption::Truncated);
        }
        if crc32fast::hash(notes) != self.notes_crc {
            return Err(Corruption::BadPayload("notes checksum mismatch"));
        }
        Ok(())
    }

    /// Checks the file's actual length against the header.
    pub(crate) fn check_len(&self, file_len: u64) -> Result<(), Corruption> {
        match file_len.cmp(&self.file_len()) {
            std::cmp::Ordering::Less => Err(Corruption::Truncated),
            std::cmp::Ordering::Greater => Err(Corruption::TrailingData),
            std::cmp::Ordering::Equal => Ok(()),
        }
    }
}

/// The MessagePack `bin` or `str` header for `len` bytes: at most 5 bytes,
/// and its length. `None` over 4 GiB.
pub(crate) fn single_marker(kind: Single, len: usize) -> Option<([u8; 5], usize)> {
    let mut m = [0u8; 5];
    let short = if kind == Single::Bytes { 0xc4 } else { 0xd9 };
    let n = if kind == Single::Text && len < 32 {
        m[0] = 0xa0 | len as u8;
        1
    } else if len <= u8::MAX as usize {
        m[0] = short;
        m[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        m[0] = short + 1;
        m[1..3].copy_from_slice(&(len as u16).to_be_bytes());
        3
    } else {
        m[0] = short + 2;
        m[1..5].copy_from_slice(&u32::try_from(len).ok()?.to_be_bytes());
        5
    };
    Some((m, n))
}

/// Parses a MessagePack `bin` (for bytes) or `str` (for text) header:
/// returns (header length, data length).
pub(crate) fn parse_single_marker(kind: Single, bytes: &[u8]) -> Option<(usize, u64)> {
    let first = *bytes.first()?;
    let short = if kind == Single::Bytes { 0xc4 } else { 0xd9 };
    if kind == Single::Text && first & 0xe0 == 0xa0 {
        return Some((1, u64::from(first & 0x1f)));
    }
    match first.checked_sub(short)? {
        0 => Some((2, u64::from(*bytes.get(1)?))),
        1 => Some((
            3,
            u64::from(u16::from_be_bytes(bytes.get(1..3)?.try_into().ok()?)),
        )),
        2 => Some((
            5,
            u64::from(u32::from_be_bytes(bytes.get(1..5)?.try_into().ok()?)),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            kind: Kind::Value,
            payload_crc: 7,
            created: UNIX_EPOCH + Duration::new(1_700_000_000, 123),
            payload_len: 10,
            items: 0,
            compute_time: Duration::from_millis(5),
            notes_len: 3,
            notes_crc: 9,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = header();
        assert_eq!(Header::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn every_single_bit_flip_in_the_header_is_caught() {
        let bytes = header().encode();
        for bit in 0..HEADER_LEN * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(Header::decode(&flipped).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn short_headers_are_truncated() {
        let bytes = header().encode();
        for len in 0..HEADER_LEN {
            assert_eq!(Header::decode(&bytes[..len]), Err(Corruption::Truncated));
        }
    }

    #[test]
    fn single_markers_round_trip_and_match_rmp() {
        for kind in [Single::Bytes, Single::Text] {
            for len in [0, 1, 31, 32, 255, 256, 65_535, 65_536, 1 << 30] {
                let (m, n) = single_marker(kind, len).unwrap();
                assert_eq!(parse_single_marker(kind, &m[..n]), Some((n, len as u64)));
                let mut rmp = Vec::new();
                match kind {
                    Single::Bytes => rmp::encode::write_bin_len(&mut rmp, len as u32).unwrap(),
                    Single::Text => rmp::encode::write_str_len(&mut rmp, len as u32).unwrap(),
                };
                assert_eq!(rmp, &m[..n], "{kind:?} {len}");
            }
        }
        // A `bin` is not a `str`, nor the other way round.
        assert_eq!(parse_single_marker(Single::Text, &[0xc4, 1]), None);
        assert_eq!(parse_single_marker(Single::Bytes, &[0xa1]), None);
    }
}
