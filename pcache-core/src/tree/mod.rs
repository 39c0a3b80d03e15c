//! File trees stored as one entry: what `pcache-build`'s `cached_files`
//! generates and what a build script leaves in `OUT_DIR`.
//!
//! A [`Tree`] is captured from a directory ([`Tree::capture`]), stored as
//! one MessagePack `bin` (it implements `Serialize` and `Deserialize`), and
//! restored into a destination ([`Restore`]). Its encoding is a magic tag,
//! the length of an index, the index (every directory, file and link, with
//! each file's mode and length), then the files' contents one after the
//! other: a hit reads it in one go and writes each file from its slice, bulk
//! copies whatever the build profile.
//!
//! ```
//! use pcache_core::tree::{Restore, Tree};
//!
//! # let src = tempfile::tempdir()?;
//! # let dest = tempfile::tempdir()?;
//! std::fs::create_dir(src.path().join("sys"))?;
//! std::fs::write(src.path().join("sys/bindings.rs"), "pub const X: u8 = 1;")?;
//! let tree = Tree::capture(src.path(), None)?;
//!
//! // Stored and read back through any serde format, as one `bin`.
//! let bytes = rmp_serde::to_vec(&tree)?;
//! let tree: Tree = rmp_serde::from_slice(&bytes)?;
//! let restored = Restore::in_place().run(&tree, dest.path())?;
//! assert_eq!(restored.len(), 2); // `sys` and `sys/bindings.rs`
//! assert!(dest.path().join("sys/bindings.rs").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where the tree was
//!
//! A tree captured with a *place* — the directory's own path, such as
//! `OUT_DIR` — records where that path appears in its text files (UTF-8
//! without NUL bytes) and stores those files without it; restoring with a
//! place writes the new one there. So a `.pc` or CMake file that names
//! `OUT_DIR` names the `OUT_DIR` it is restored into. Binary files are
//! stored as they are; a symlink pointing inside the tree by an absolute
//! path is stored relative.
//!
//! # Safety
//!
//! A stored tree is validated when it is decoded, whoever wrote it: an
//! absolute path, a `..` or empty component, a symlink whose target leaves
//! the tree, or lengths that do not add up make it fail to decode, which
//! callers treat as a corrupt entry. Restoring never writes outside its
//! destination and never writes through a symlink; permissions are
//! restored (the executable bit, under the user's umask), setuid and setgid
//! never.

mod capture;
mod format;
mod restore;
mod stored;
#[cfg(test)]
mod tests;

pub use format::Tree;
pub use restore::Restore;
pub use stored::RestoredTree;
