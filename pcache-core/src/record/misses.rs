//! The last miss of a cache and the keys eviction removed: what `cargo
//! pcache why` explains a miss with.

use std::fs;
use std::io;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{KeyParts, MissReason, checksummed, unchecksummed};
use crate::atomic::write_file;
use crate::error::{Error, IoResultExt, Result};
use crate::{Key, Store};

/// At most this many evicted keys are remembered per cache.
const EVICTED_KEEP: usize = 4096;

/// The last miss of a cache: what `cargo pcache why` explains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastMiss {
    /// When it happened.
    pub time: SystemTime,
    /// The key it missed (and then stored, unless storing failed).
    pub key: String,
    /// Why, as judged when it happened.
    pub reason: MissReason,
    /// Its key's parts.
    pub parts: KeyParts,
}

impl LastMiss {
    /// A miss of `key` now.
    pub fn new(key: &Key, reason: MissReason, parts: KeyParts) -> LastMiss {
        LastMiss {
            time: SystemTime::now(),
            key: key.to_string(),
            reason,
            parts,
        }
    }
}

impl Store {
    /// The cache's last miss, if one was recorded (and the record is whole).
    ///
    /// # Errors
    ///
    /// When the record exists but cannot be read.
    pub fn last_miss(&self) -> Result<Option<LastMiss>> {
        let path = self.layout().own("last-miss");
        match fs::read(&path) {
            Ok(bytes) => Ok(unchecksummed(&bytes).and_then(|b| rmp_serde::from_slice(b).ok())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).op("read last miss", &path),
        }
    }

    /// Records the cache's last miss (atomically replacing the previous).
    ///
    /// # Errors
    ///
    /// When it cannot be written.
    pub fn set_last_miss(&self, miss: &LastMiss) -> Result<()> {
        let bytes = rmp_serde::to_vec_named(miss).map_err(|source| Error::Encode {
            path: self.layout().own("last-miss"),
            source,
        })?;
        write_file(&self.layout().own("last-miss"), &checksummed(bytes))
    }

    /// Reads the notes of an entry without its payload: its key's parts and
    /// directives, for `why` (`None` if the entry is gone or damaged).
    pub fn entry_notes(&self, key: &Key) -> Option<Vec<u8>> {
        let path = self.entry_path(key);
        let crate::get::Opened::File { mut file, len, .. } = crate::get::open(&path).ok()? else {
            return None;
        };
        let header = crate::get::read_header(&mut file, len, None, &path).ok()?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(header.notes_offset())).ok()?;
        crate::get::read_notes(&mut file, &header, &path).ok()
    }

    /// Whether `key` was evicted (and not stored again since).
    pub fn was_evicted(&self, key: &Key) -> bool {
        let text = key.to_string();
        fs::read_to_string(self.layout().own("evicted"))
            .is_ok_and(|list| list.lines().any(|l| l == text))
    }

    /// Remembers that these keys were evicted, keeping the newest
    /// [`EVICTED_KEEP`].
    pub(crate) fn note_evicted(&self, keys: &[Key]) -> Result<()> {
        let path = self.layout().own("evicted");
        let mut list: Vec<String> = fs::read_to_string(&path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        list.extend(keys.iter().map(Key::to_string));
        let start = list.len().saturating_sub(EVICTED_KEEP);
        let mut text = list[start..].join("\n");
        text.push('\n');
        write_file(&path, text.as_bytes())
    }

    /// Forgets that `key` was evicted (it was stored again).
    pub fn forget_evicted(&self, key: &Key) {
        let path = self.layout().own("evicted");
        let Ok(list) = fs::read_to_string(&path) else {
            return;
        };
        let text = key.to_string();
        if list.lines().any(|l| l == text) {
            let kept: String = list
                .lines()
                .filter(|l| *l != text)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = write_file(&path, kept.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CodeParts, EntryNotes, InputPart};

    #[test]
    fn notes_and_the_last_miss_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let parts = KeyParts {
            format: 3,
            entry_point: "value".into(),
            type_name: "u32".into(),
            target: "x".into(),
            code: Some(CodeParts::default()),
            inputs_digest: 7,
            inputs: vec![InputPart::Env {
                name: "SECRET".into(),
                value_digest: Some(9),
            }],
        };
        let notes = EntryNotes::new(vec!["cargo:rustc-cfg=x".into()], Some(parts.clone()));
        assert_eq!(EntryNotes::decode(&notes.encode()), Some(notes.clone()));
        assert_eq!(
            EntryNotes::directives(&notes.encode()),
            Some(vec!["cargo:rustc-cfg=x".to_owned()])
        );
        assert_eq!(EntryNotes::directives(b"\xc1garbage"), None);
        let key = Key::new("k").unwrap();
        assert_eq!(store.last_miss().unwrap(), None);
        let miss = LastMiss::new(&key, MissReason::InputsChanged, parts);
        store.set_last_miss(&miss).unwrap();
        assert_eq!(store.last_miss().unwrap(), Some(miss));
        assert!(!store.was_evicted(&key));
        store.note_evicted(&[key]).unwrap();
        assert!(store.was_evicted(&key));
        store.forget_evicted(&key);
        assert!(!store.was_evicted(&key));
    }
}
