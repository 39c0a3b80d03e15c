//! [`cached_files`](crate::cached_files): the generator runs in a scratch
//! directory beside the destination, what it wrote is captured as one
//! `pcache_core::tree::Tree` (stored as the step's value), and the tree is
//! restored into the destination, in place: files already there with the
//! same contents and mode are left alone, so their mtimes do not change and
//! rustc does not rebuild the crate that `include!`s them. The tree's own
//! module has its encoding and its safety rules: a stored tree never writes
//! outside its destination.

use std::io;
use std::path::{Path, PathBuf};

use pcache_core::tree::{Restore, Tree};

use crate::capture::Recorder;
use crate::error::{Error, IoResultExt};

/// What [`cached_files`](crate::cached_files) put into the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GeneratedFiles {
    /// Whether the files came from the cache rather than the generator.
    pub hit: bool,
    /// Every file, directory and link restored, relative to the destination,
    /// parents before children.
    pub paths: Vec<PathBuf>,
}

/// A user's generator, boxed so that the code around it is compiled once.
pub(crate) type Generator<'a> = Box<dyn FnOnce(&Path) -> io::Result<()> + 'a>;

/// Runs `generate` in a scratch directory beside `dest` and captures what
/// it wrote.
pub(crate) fn generate(
    name: &str,
    dest: &Path,
    recorder: &Recorder,
    generate: Generator<'_>,
) -> Result<Tree, Error> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(std::env::temp_dir, Path::to_owned);
    std::fs::create_dir_all(&parent).op("create directory", &parent)?;
    let scratch = tempfile::Builder::new()
        .prefix(".pcache-scratch-")
        .tempdir_in(&parent)
        .op("create scratch directory in", &parent)?;
    // Directives naming the scratch directory name the destination: that is
    // where the files will be.
    recorder.alias(scratch.path());
    generate(scratch.path()).map_err(|source| Error::Generate {
        name: name.to_owned(),
        source,
    })?;
    Tree::capture(scratch.path(), None).map_err(|e| {
        // Name what was refused where it would have been: in `dest`.
        let e = Error::from(e);
        match e {
            Error::Unsafe { path, reason } => Error::Unsafe {
                path: dest.join(path.strip_prefix(scratch.path()).unwrap_or(&path)),
                reason,
            },
            other => other,
        }
    })
}

/// Writes `tree` into `dest`.
pub(crate) fn restore(tree: &Tree, dest: &Path, hit: bool) -> Result<GeneratedFiles, Error> {
    let paths = Restore::in_place().run(tree, dest)?;
    Ok(GeneratedFiles { hit, paths })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_refused_generated_file_is_named_in_the_destination() {
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("out");
        let err = generate(
            "t",
            &dest,
            &Recorder::idle(),
            Box::new(|dir: &Path| std::os::unix::fs::symlink("../../etc", dir.join("up"))),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("points out of the tree"), "{message}");
        assert!(
            message.contains(&dest.join("up").display().to_string()),
            "{message}"
        );
        // The scratch directory is gone.
        let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
