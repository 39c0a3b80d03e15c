//! Finding the directory that holds a package's caches.
//!
//! `PCACHE_DIR` if set; else the directory Cargo builds in, found by walking
//! up from `OUT_DIR` (`<dir>[/<triple>]/<profile>/build/<pkg>-<hash>/out`) to
//! the one holding `CACHEDIR.TAG`: the target directory, or Cargo's
//! `build-dir` when that is set apart. Caches live in `<that>/pcache`, so
//! `cargo clean` removes them and backup tools skip them.

use std::path::{Path, PathBuf};

/// The directory holding the per-package cache directories.
pub(crate) fn pcache_root(
    pcache_dir: Option<&Path>,
    out_dir: Option<&Path>,
) -> Result<PathBuf, String> {
    if let Some(dir) = pcache_dir {
        return Ok(dir.to_owned());
    }
    let out_dir = out_dir.ok_or("OUT_DIR is not set (is this running in a build script?)")?;
    build_dir_of(out_dir)
        .map(|dir| dir.join("pcache"))
        .ok_or_else(|| {
            format!(
                "no Cargo build directory (with CACHEDIR.TAG) above `{}`",
                out_dir.display()
            )
        })
}

/// The nearest ancestor of `out_dir` that holds `CACHEDIR.TAG`; failing
/// that, the parent of the profile directory.
pub(crate) fn build_dir_of(out_dir: &Path) -> Option<PathBuf> {
    out_dir
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .or_else(|| {
            // out → <pkg>-<hash> → build → <profile> → its parent.
            let mut parts = out_dir.ancestors();
            (parts.nth(2)?.file_name()? == "build").then_some(())?;
            parts.nth(1)
        })
        .map(Path::to_owned)
}

/// The directory of one cache: `<root>/<package>/<short id of the name>`.
pub(crate) fn cache_dir(root: &Path, package: &str, name: &str) -> PathBuf {
    root.join(package_dir_name(package))
        .join(pcache_core::short_id(name))
}

/// Package names are `[A-Za-z0-9_-]` on crates.io, but nothing stops a
/// local manifest from being odd: keep only what is safe in a path.
fn package_dir_name(package: &str) -> String {
    let cleaned: String = package
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".to_owned()
    } else {
        cleaned
    }
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
        for out in [
            target.join("debug/build/foo-0123/out"),
            target.join("release/build/foo-0123/out"),
            target.join("x86_64-unknown-linux-gnu/debug/build/foo-0123/out"),
        ] {
            assert_eq!(
                build_dir_of(&out),
                Some(target.clone()),
                "{}",
                out.display()
            );
            assert_eq!(pcache_root(None, Some(&out)), Ok(target.join("pcache")));
        }
    }

    #[test]
    fn falls_back_to_the_layout_without_a_tag() {
        let out = Path::new("/nowhere/custom/debug/build/foo-1/out");
        assert_eq!(build_dir_of(out), Some(PathBuf::from("/nowhere/custom")));
        assert_eq!(build_dir_of(Path::new("/a/b")), None);
    }

    #[test]
    fn pcache_dir_wins() {
        let root = pcache_root(
            Some(Path::new("/shared")),
            Some(Path::new("/t/debug/build/x/out")),
        );
        assert_eq!(root, Ok(PathBuf::from("/shared")));
        assert!(pcache_root(None, None).unwrap_err().contains("OUT_DIR"));
    }

    #[test]
    fn any_cache_name_stays_inside_the_package_dir() {
        let root = Path::new("/t/pcache");
        for name in [
            "",
            "../../x",
            "/etc/passwd",
            "🦀",
            &"n".repeat(10_000),
            "a\0b",
        ] {
            let dir = cache_dir(root, "pkg", name);
            assert_eq!(dir.parent(), Some(root.join("pkg").as_path()), "{name:?}");
            assert!(dir.file_name().unwrap().len() < 40);
        }
        assert_eq!(
            cache_dir(root, "../evil", "x").parent(),
            Some(root.join("___evil").as_path())
        );
    }
}
