//! The parts a step's key is made of, and what pcache-build keeps in an
//! entry's notes: the directives it printed and those parts.

use serde::{Deserialize, Serialize};

/// A file an input covers: its path (relative to the input) and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileDigest {
    /// The path, relative to the input (empty for `file()` itself).
    pub path: String,
    /// The XXH3-128 digest of its contents.
    pub digest: u128,
}

/// One part of a step's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum InputPart {
    /// A `file()` input: its path and content digest (`None`: unreadable).
    File {
        /// As given to `file()`.
        path: String,
        /// Its content's digest.
        digest: Option<u128>,
    },
    /// A `dir()` input: its path, digest and every file in it.
    Dir {
        /// As given to `dir()`.
        path: String,
        /// The whole tree's digest.
        digest: u128,
        /// Every file, with its digest.
        files: Vec<FileDigest>,
    },
    /// An `env()` input: its name and the digest of its value (variables
    /// may hold secrets: never the value itself).
    Env {
        /// The variable's name.
        name: String,
        /// The digest of its value, `None` when unset.
        value_digest: Option<u128>,
    },
    /// Another input, by position among the top-level inputs.
    Other {
        /// Its position (0 for inputs that are not a tuple or a sequence).
        index: u32,
        /// The digest of its canonical serialization.
        digest: u128,
    },
}

/// The build script's code identity, in parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeParts {
    /// The whole identity, as in the key.
    pub digest: u128,
    /// Every source file of the build script, relative to the package.
    pub sources: Vec<FileDigest>,
    /// Locked versions of the build-dependencies.
    pub build_deps: Vec<(String, String)>,
    /// The digest of the `env!` values the build script was compiled with.
    pub env_digest: u128,
}

/// Everything a step's key is made of, by digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParts {
    /// pcache's entry format version.
    pub format: u16,
    /// `value`, `iter` or `files`.
    pub entry_point: String,
    /// The value's Rust type.
    pub type_name: String,
    /// The `TARGET` triple.
    pub target: String,
    /// The code identity; `None` for code-independent caches.
    pub code: Option<CodeParts>,
    /// The digest of all inputs.
    pub inputs_digest: u128,
    /// The inputs, part by part.
    pub inputs: Vec<InputPart>,
}

/// What pcache-build keeps in an entry's notes: the Cargo directives the
/// step printed, and its key's parts.
///
/// Encoded as a MessagePack map with named fields (so later versions can
/// add fields), the parts nested as an opaque `bin`: a hit, which needs the
/// directives alone, skips them without decoding them
/// ([`EntryNotes::directives`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryNotes {
    /// The directives, with paths made relative (pcache-build's encoding).
    pub directives: Vec<String>,
    /// The parts of the entry's key.
    pub parts: Option<KeyParts>,
    /// The entry names paths of this machine: never sent to a remote.
    pub local_only: bool,
}

/// The notes as stored.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default)]
    directives: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parts: Option<serde_bytes::ByteBuf>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    local_only: bool,
}

/// The notes' directives alone; any other field is skipped undecoded.
#[derive(Deserialize)]
struct DirectivesOnly {
    #[serde(default)]
    directives: Vec<String>,
}

impl EntryNotes {
    /// Notes with these directives and parts.
    pub fn new(directives: Vec<String>, parts: Option<KeyParts>) -> EntryNotes {
        EntryNotes {
            directives,
            parts,
            local_only: false,
        }
    }

    /// Marks the entry as bound to this machine (it names the machine's own
    /// paths): it is never sent to a remote.
    pub fn local_only(mut self) -> EntryNotes {
        self.local_only = true;
        self
    }

    /// Whether the notes in `bytes` mark their entry as bound to this
    /// machine (notes that do not decode do not).
    pub fn is_local_only(bytes: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct LocalOnly {
            #[serde(default)]
            local_only: bool,
        }
        !bytes.is_empty() && rmp_serde::from_slice::<LocalOnly>(bytes).is_ok_and(|l| l.local_only)
    }

    /// The notes' bytes.
    pub fn encode(&self) -> Vec<u8> {
        let wire = Wire {
            local_only: self.local_only,
            directives: self.directives.clone(),
            // Plain data always serializes.
            parts: self.parts.as_ref().map(|parts| {
                serde_bytes::ByteBuf::from(
                    rmp_serde::to_vec_named(parts).expect("key parts serialize"),
                )
            }),
        };
        rmp_serde::to_vec_named(&wire).expect("entry notes serialize")
    }

    /// Notes from their bytes; empty bytes are empty notes. `None` if they
    /// do not decode.
    pub fn decode(bytes: &[u8]) -> Option<EntryNotes> {
        if bytes.is_empty() {
            return Some(EntryNotes::default());
        }
        let wire: Wire = rmp_serde::from_slice(bytes).ok()?;
        let parts = match wire.parts {
            Some(bytes) => Some(rmp_serde::from_slice(&bytes).ok()?),
            None => None,
        };
        Some(EntryNotes {
            directives: wire.directives,
            parts,
            local_only: wire.local_only,
        })
    }

    /// The directives alone, without decoding the key's parts: what a hit
    /// needs.
    pub fn directives(bytes: &[u8]) -> Option<Vec<String>> {
        if bytes.is_empty() {
            return Some(Vec::new());
        }
        rmp_serde::from_slice::<DirectivesOnly>(bytes)
            .ok()
            .map(|d| d.directives)
    }
}
