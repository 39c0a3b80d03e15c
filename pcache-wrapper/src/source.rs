//! The identities a run's key is made of that take work to learn: the
//! package's sources, and the rustc that Cargo uses. Both are remembered
//! per file identity under the per-user store, so a hit does not hash a
//! package's sources again while they are provably unchanged.
//!
//! A registry or git package's sources, unpacked by Cargo under
//! `$CARGO_HOME`, are immutable as far as Cargo is concerned (it never
//! looks at them again to decide a rebuild): they count by where they are
//! under `$CARGO_HOME` (the registry, name and version, or the git
//! revision) and, for a registry package, by the `.crate` file they came
//! from — the same for every user and checkout, and read once.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use pcache_core::digests::{FileStamp, Memo};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

/// Where a registry or git package's sources are, relative to Cargo's home
/// (`registry/src/<index>/<name>-<version>`, `git/checkouts/<repo>/<rev>/…`);
/// `None` for any other package.
pub(crate) fn immutable_source(manifest_dir: &Path, cargo_home: Option<&Path>) -> Option<PathBuf> {
    let home = cargo_home?;
    let relative = manifest_dir.strip_prefix(home).ok()?;
    let mut parts = relative.components().map(|c| c.as_os_str());
    let unpacked = matches!(
        (parts.next()?.to_str()?, parts.next()?.to_str()?),
        ("registry", "src") | ("git", "checkouts")
    );
    (unpacked && parts.count() >= 2).then(|| relative.to_owned())
}

/// The digest of the package's sources. For a registry or git package
/// ([`immutable_source`]): its place under Cargo's home and the digest of
/// the `.crate` file it was unpacked from. For any other: every file under
/// `manifest_dir` by relative path and content, as Cargo would watch them —
/// without version-control directories, build directories (`target`, or
/// any directory holding a `CACHEDIR.TAG`), packages nested inside, and
/// `out_dir`; symlinks count by their target.
///
/// # Errors
///
/// When a directory or file cannot be read.
pub(crate) fn package_digest(
    manifest_dir: &Path,
    out_dir: &Path,
    cargo_home: Option<&Path>,
    memo_root: Option<&Path>,
) -> io::Result<u128> {
    if let Some(relative) = immutable_source(manifest_dir, cargo_home) {
        let mut hasher = Xxh3::new();
        hasher.update(b"unpacked by Cargo\0");
        hasher.update(relative.to_string_lossy().as_bytes());
        if let Some(crate_file) = crate_file(&relative, cargo_home) {
            hasher.update(
                &path_digest(&crate_file, memo_root)
                    .unwrap_or(0)
                    .to_le_bytes(),
            );
        }
        return Ok(hasher.digest128());
    }
    let mut memo = Memo::load(memo_root, "package", manifest_dir);
    let mut hasher = Xxh3::new();
    walk(manifest_dir, manifest_dir, out_dir, &mut hasher, &mut memo)?;
    memo.save();
    Ok(hasher.digest128())
}

fn walk(
    root: &Path,
    dir: &Path,
    out_dir: &Path,
    hasher: &mut Xxh3,
    memo: &mut Memo,
) -> io::Result<()> {
    let mut children: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    children.sort();
    for child in children {
        let name = child.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let meta = fs::symlink_metadata(&child)?;
        let rel = child
            .strip_prefix(root)
            .unwrap_or(&child)
            .to_string_lossy()
            .into_owned();
        if meta.is_dir() {
            let skipped = matches!(name, ".git" | ".hg" | ".svn" | ".jj" | "target")
                || child.join("CACHEDIR.TAG").exists()
                || child.join("Cargo.toml").exists()
                || out_dir.starts_with(&child);
            if skipped {
                continue;
            }
            hasher.update(rel.as_bytes());
            hasher.update(b"\0dir\0");
            walk(root, &child, out_dir, hasher, memo)?;
        } else if meta.file_type().is_symlink() {
            hasher.update(rel.as_bytes());
            hasher.update(b"\0link\0");
            hasher.update(fs::read_link(&child)?.to_string_lossy().as_bytes());
        } else {
            let digest = memo.digest(&rel, &child, &meta)?;
            hasher.update(rel.as_bytes());
            hasher.update(b"\0file\0");
            hasher.update(&digest.to_le_bytes());
        }
        hasher.update(b"\0");
    }
    Ok(())
}

/// `registry/src/<index>/<package>` → `$CARGO_HOME/registry/cache/<index>/<package>.crate`.
fn crate_file(relative: &Path, cargo_home: Option<&Path>) -> Option<PathBuf> {
    let mut parts = relative.components();
    if parts.next()?.as_os_str() != "registry" {
        return None;
    }
    parts.next()?;
    let index = parts.next()?.as_os_str();
    let package = parts.next()?.as_os_str().to_str()?;
    Some(
        cargo_home?
            .join("registry/cache")
            .join(index)
            .join(format!("{package}.crate")),
    )
}

/// The digest of the named file's or directory's contents, for a declared
/// input: `None` when it does not exist.
pub(crate) fn path_digest(path: &Path, memo_root: Option<&Path>) -> Option<u128> {
    let meta = fs::metadata(path).ok()?;
    if meta.is_dir() {
        let mut memo = Memo::load(memo_root, "declared dir", path);
        let mut hasher = Xxh3::new();
        // A directory's every file, as Cargo watches it.
        walk(path, path, Path::new("\0none"), &mut hasher, &mut memo).ok()?;
        memo.save();
        Some(hasher.digest128())
    } else {
        let mut memo = Memo::load(memo_root, "declared file", path);
        let digest = memo.digest("", path, &meta).ok()?;
        memo.save();
        Some(digest)
    }
}

/// The digest of a path of this machine a run named (a library directory
/// found by pkg-config): a file by content; a directory by what it
/// directly holds — names, kinds, sizes and modification times, since such
/// directories (`/usr/lib/x86_64-linux-gnu`) are too large to read whole on
/// every run, and any change there is a reason to run again. `None` when it
/// does not exist.
pub(crate) fn machine_digest(path: &Path, memo_root: Option<&Path>) -> Option<u128> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return path_digest(path, memo_root);
    }
    let mut children: Vec<(std::ffi::OsString, fs::Metadata)> = fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name(), e.metadata().ok()?)))
        .collect();
    children.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Xxh3::new();
    for (name, meta) in children {
        hasher.update(name.as_encoded_bytes());
        hasher.update(b"\0");
        let stamp = FileStamp::of(&meta).map(|s| rmp_serde::to_vec(&s).unwrap_or_default());
        hasher.update(&[u8::from(meta.is_dir())]);
        hasher.update(&meta.len().to_le_bytes());
        hasher.update(stamp.as_deref().unwrap_or_default());
    }
    Some(hasher.digest128())
}

/// The identity of the rustc at `rustc`: the digest of `rustc -vV`,
/// remembered per identity of the binary under `memo_root`.
pub(crate) fn rustc_identity(rustc: &Path, memo_root: Option<&Path>) -> u128 {
    let stamp = fs::metadata(rustc).ok().and_then(|m| FileStamp::of(&m));
    let record = memo_root.map(|root| {
        root.join(".rustc")
            .join(pcache_core::short_id(&rustc.to_string_lossy()))
    });
    let stamp_bytes = stamp.map(|s| rmp_serde::to_vec(&s).unwrap_or_default());
    if let (Some(record), Some(stamp)) = (&record, &stamp_bytes) {
        if let Ok(bytes) = fs::read(record) {
            if let Some(digest) = bytes
                .strip_prefix(stamp.as_slice())
                .and_then(|rest| <[u8; 16]>::try_from(rest).ok())
            {
                return u128::from_le_bytes(digest);
            }
        }
    }
    let version = Command::new(rustc)
        .arg("-vV")
        .output()
        .map(|out| out.stdout)
        .unwrap_or_else(|_| b"unknown rustc".to_vec());
    let digest = xxh3_128(&version);
    if let (Some(record), Some(stamp)) = (record, stamp_bytes) {
        if let Some(dir) = record.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let _ = fs::write(record, [stamp.as_slice(), &digest.to_le_bytes()].concat());
    }
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_digest_follows_sources_and_ignores_build_output() {
        let pkg = tempfile::tempdir().unwrap();
        let p = pkg.path();
        fs::create_dir_all(p.join("src")).unwrap();
        fs::write(p.join("Cargo.toml"), "[package]").unwrap();
        fs::write(p.join("src/lib.c"), "int x;").unwrap();
        let out = p.join("target/debug/build/x-1/out");
        fs::create_dir_all(&out).unwrap();
        let digest = || package_digest(p, &out, None, None).unwrap();
        let first = digest();
        // Build output, version control and nested packages do not count.
        fs::write(out.join("gen.rs"), "x").unwrap();
        fs::create_dir_all(p.join(".git")).unwrap();
        fs::write(p.join(".git/HEAD"), "ref").unwrap();
        fs::create_dir_all(p.join("nested")).unwrap();
        fs::write(p.join("nested/Cargo.toml"), "[package]").unwrap();
        assert_eq!(digest(), first);
        // Sources do, by content.
        fs::write(p.join("src/lib.c"), "int y;").unwrap();
        assert_ne!(digest(), first);
        fs::write(p.join("src/lib.c"), "int x;").unwrap();
        assert_eq!(digest(), first);
        fs::write(p.join("src/new.h"), "").unwrap();
        assert_ne!(digest(), first);
    }

    #[test]
    fn a_copy_of_a_package_elsewhere_has_the_same_digest() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for dir in [a.path(), b.path()] {
            fs::create_dir_all(dir.join("c")).unwrap();
            fs::write(dir.join("c/x.c"), "x").unwrap();
        }
        let none = Path::new("/none");
        assert_eq!(
            package_digest(a.path(), none, None, None).unwrap(),
            package_digest(b.path(), none, None, None).unwrap()
        );
        assert_eq!(
            path_digest(&a.path().join("c"), None),
            path_digest(&b.path().join("c"), None)
        );
        assert_eq!(path_digest(&a.path().join("missing"), None), None);
    }

    #[test]
    fn a_registry_package_counts_by_its_place_and_crate_file() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let pkg = h.join("registry/src/index.example-1/zstd-sys-2.0.15");
        fs::create_dir_all(pkg.join("src")).unwrap();
        fs::write(pkg.join("src/lib.rs"), "one").unwrap();
        let cache = h.join("registry/cache/index.example-1");
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("zstd-sys-2.0.15.crate"), "crate v1").unwrap();
        assert_eq!(
            immutable_source(&pkg, Some(h)),
            Some(PathBuf::from(
                "registry/src/index.example-1/zstd-sys-2.0.15"
            ))
        );
        let out = h.join("out");
        let digest = || package_digest(&pkg, &out, Some(h), None).unwrap();
        let first = digest();
        // The unpacked sources are not read…
        fs::write(pkg.join("src/lib.rs"), "edited in place").unwrap();
        assert_eq!(digest(), first);
        // …the archive they came from is.
        fs::write(cache.join("zstd-sys-2.0.15.crate"), "crate v2").unwrap();
        assert_ne!(digest(), first);
        // Another Cargo home holding the same package: the same digest.
        let other = tempfile::tempdir().unwrap();
        let o = other.path();
        fs::create_dir_all(o.join("registry/src/index.example-1/zstd-sys-2.0.15")).unwrap();
        fs::create_dir_all(o.join("registry/cache/index.example-1")).unwrap();
        fs::write(
            o.join("registry/cache/index.example-1/zstd-sys-2.0.15.crate"),
            "crate v2",
        )
        .unwrap();
        let moved = o.join("registry/src/index.example-1/zstd-sys-2.0.15");
        assert_eq!(
            package_digest(&moved, &out, Some(o), None).unwrap(),
            digest()
        );
        // Path packages, and Cargo's home itself, are walked.
        assert_eq!(immutable_source(&h.join("registry/src"), Some(h)), None);
        assert_eq!(immutable_source(&out, Some(h)), None);
        assert_eq!(immutable_source(&pkg, None), None);
    }
}
