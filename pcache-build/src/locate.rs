//! Finding the directory that holds a package's caches.
//!
//! `PCACHE_DIR` if set; else the directory Cargo builds in, found by walking
//! up from `OUT_DIR` (`<dir>[/<triple>]/<profile>/build/<pkg>-<hash>/out`) to
//! the one holding `CACHEDIR.TAG`: the target directory, or Cargo's
//! `build-dir` when that is set apart. Caches live in `<that>/pcache`, so
//! `cargo clean` removes them and backup tools skip them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use pcache_core::conventions;

/// The directory holding the per-package cache directories.
pub(crate) fn pcache_root(
    pcache_dir: Option<&OsStr>,
    out_dir: Option<&Path>,
    target: Option<&str>,
) -> Result<PathBuf, String> {
    if let Some(dir) = pcache_dir.filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let out_dir = out_dir.ok_or("OUT_DIR is not set (is this running in a build script?)")?;
    build_dir_of(out_dir, target)
        .map(|dir| conventions::pcache_root(None, &dir))
        .ok_or_else(|| {
            format!(
                "no Cargo build directory (with CACHEDIR.TAG) above `{}`",
                out_dir.display()
            )
        })
}

/// The nearest ancestor of `out_dir` that holds `CACHEDIR.TAG`; failing
/// that, the parent of the profile directory. With `--target <triple>`
/// Cargo tags `<dir>/<triple>` too: the cache belongs in `<dir>`, shared by
/// every target (keys include the triple), where `cargo pcache` looks.
pub(crate) fn build_dir_of(out_dir: &Path, target: Option<&str>) -> Option<PathBuf> {
    let tagged = |dir: &Path| dir.join("CACHEDIR.TAG").is_file();
    out_dir
        .ancestors()
        .skip(1)
        .find(|dir| tagged(dir))
        .map(|dir| match (dir.file_name(), dir.parent()) {
            (Some(name), Some(parent)) if target.is_some_and(|t| name == t) && tagged(parent) => {
                parent
            }
            _ => dir,
        })
        .or_else(|| {
            // out → <pkg>-<hash> → build → <profile> → its parent.
            let mut parts = out_dir.ancestors();
            (parts.nth(2)?.file_name()? == "build").then_some(())?;
            parts.nth(1)
        })
        .map(Path::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn target_with_tag() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::create_dir_all(&target).unwrap();
        fs::write(
            target.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        (dir, target)
    }

    #[test]
    fn walks_up_to_the_tagged_target_dir() {
        let (_dir, target) = target_with_tag();
        // Cargo tags the per-triple directory too.
        let triple = "x86_64-unknown-linux-gnu";
        fs::create_dir_all(target.join(triple)).unwrap();
        fs::write(target.join(triple).join("CACHEDIR.TAG"), "Signature").unwrap();
        for out in [
            target.join("debug/build/foo-0123/out"),
            target.join("release/build/foo-0123/out"),
            target.join(triple).join("debug/build/foo-0123/out"),
        ] {
            let found = build_dir_of(&out, Some(triple));
            assert_eq!(found, Some(target.clone()), "{}", out.display());
            let root = pcache_root(None, Some(&out), Some(triple));
            assert_eq!(root, Ok(target.join("pcache")));
        }
        // Without TARGET (or for another triple) the nearest tag stands.
        let out = target.join(triple).join("debug/build/foo-0123/out");
        assert_eq!(build_dir_of(&out, None), Some(target.join(triple)));
    }

    #[test]
    fn falls_back_to_the_layout_without_a_tag() {
        let out = Path::new("/nowhere/custom/debug/build/foo-1/out");
        assert_eq!(
            build_dir_of(out, None),
            Some(PathBuf::from("/nowhere/custom"))
        );
        assert_eq!(build_dir_of(Path::new("/a/b"), None), None);
    }

    #[test]
    fn pcache_dir_wins() {
        let out = Path::new("/t/debug/build/x/out");
        let root = pcache_root(Some(OsStr::new("/shared")), Some(out), None);
        assert_eq!(root, Ok(PathBuf::from("/shared")));
        assert!(
            pcache_root(None, None, None)
                .unwrap_err()
                .contains("OUT_DIR")
        );
    }
}
