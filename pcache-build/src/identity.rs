//! The build script's code identity: when its code changes, its cached
//! results must not be served.
//!
//! The digest covers, by content:
//! - every source file of the build script, as listed in the dep-info file
//!   rustc wrote beside the running build-script binary
//!   (`build_script_build-<hash>.d`), and the `env!` values it records;
//!   failing that, the package's build script (`build.rs`);
//! - the locked versions of the package's build-dependencies, from the
//!   nearest `Cargo.lock`, so that upgrading `bindgen` counts.
//!
//! Touching a file without changing it changes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use pcache_core::record::{CodeParts, FileDigest};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::manifest::Manifest;

/// Computes the identity, in parts; problems (unreadable files) are
/// returned to be reported, and leave the identity computed from what could
/// be read.
pub(crate) fn code_identity(
    exe: Option<&Path>,
    manifest_dir: Option<&Path>,
    manifest: &Manifest,
) -> (CodeParts, Vec<String>) {
    let mut problems = Vec::new();
    let mut parts = CodeParts::default();
    let mut sources = exe.and_then(dep_info_of).map(|(deps, env)| {
        parts.env_digest = xxh3_128(env.as_bytes());
        deps
    });
    if sources.as_ref().is_none_or(Vec::is_empty) {
        if let Some(dir) = manifest_dir {
            let script = manifest.build_script.as_deref().unwrap_or("build.rs");
            sources = Some(vec![dir.join(script)]);
        }
    }
    let mut sources = sources.unwrap_or_default();
    if let Some(dir) = manifest_dir {
        resolve_relative(&mut sources, dir);
    }
    sources.sort();
    sources.dedup();
    for path in &sources {
        let shown = manifest_dir
            .and_then(|dir| path.strip_prefix(dir).ok())
            .unwrap_or(path);
        let digest = match fs::read(path) {
            Ok(bytes) => xxh3_128(&bytes),
            Err(e) => {
                problems.push(format!(
                    "failed to read build-script source `{}`: {e}",
                    path.display()
                ));
                0
            }
        };
        parts.sources.push(FileDigest {
            path: shown.to_string_lossy().into_owned(),
            digest,
        });
    }
    if !manifest.build_deps.is_empty() {
        if let Some(lock) = manifest_dir.and_then(find_lock_file) {
            match fs::read_to_string(&lock) {
                Ok(text) => {
                    parts.build_deps = locked_versions(&text, &manifest.build_deps)
                        .into_iter()
                        .map(|(name, version)| (name.to_owned(), version.to_owned()))
                        .collect();
                }
                Err(e) => problems.push(format!("failed to read `{}`: {e}", lock.display())),
            }
        }
    }
    parts.digest = digest(&parts);
    (parts, problems)
}

/// The identity's digest, over every part.
fn digest(parts: &CodeParts) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(&parts.env_digest.to_le_bytes());
    for source in &parts.sources {
        hasher.update(source.path.as_bytes());
        hasher.update(b"\0");
        hasher.update(&source.digest.to_le_bytes());
    }
    for (name, version) in &parts.build_deps {
        hasher.update(name.as_bytes());
        hasher.update(b"@");
        hasher.update(version.as_bytes());
        hasher.update(b"\n");
    }
    hasher.digest128()
}

/// Makes relative dep-info paths absolute. rustc writes them relative to
/// the directory Cargo ran it in — the workspace root, which a build script
/// (running in its package directory) does not know — so they are resolved
/// against the nearest ancestor of the package directory where they exist.
fn resolve_relative(sources: &mut [PathBuf], manifest_dir: &Path) {
    let mut base: Option<&Path> = None;
    for path in sources.iter_mut().filter(|p| p.is_relative()) {
        let found = base
            .filter(|b| b.join(&*path).exists())
            .or_else(|| manifest_dir.ancestors().find(|a| a.join(&*path).exists()));
        if let Some(dir) = found {
            base = Some(dir);
            *path = dir.join(&*path);
        }
    }
}

/// The source files and `env-dep` lines of the dep-info file beside the
/// build-script binary `exe`.
fn dep_info_of(exe: &Path) -> Option<(Vec<PathBuf>, String)> {
    let dir = exe.parent()?;
    let dep_info = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|ext| ext == "d")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("build_script_"))
        })?;
    Some(parse_dep_info(&fs::read_to_string(dep_info).ok()?))
}

/// Parses a Makefile-style dep-info file. rustc lists every dependency once
/// more as its own rule (`path:`), which is the easy line to pick out; env
/// dependencies are `# env-dep:NAME=value` comments.
///
/// What clippy-driver adds when `cargo clippy` compiles the build script —
/// its arguments and configuration, and the manifest it reads lints from —
/// is left out: it does not change the build script's code, and keeping it
/// would give clippy runs and builds different identities.
pub(crate) fn parse_dep_info(text: &str) -> (Vec<PathBuf>, String) {
    let mut deps = Vec::new();
    let mut env = String::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(dep) = line.strip_prefix("# env-dep:") {
            if !dep.starts_with("CLIPPY_") {
                env.push_str(dep);
                env.push('\n');
            }
        } else if i > 0 && !line.starts_with('#') {
            if let Some(path) = line.strip_suffix(':') {
                let path = PathBuf::from(path.replace("\\ ", " "));
                let name = path.file_name().and_then(|n| n.to_str());
                if !matches!(name, Some("Cargo.toml" | "clippy.toml" | ".clippy.toml")) {
                    deps.push(path);
                }
            }
        }
    }
    (deps, env)
}

fn find_lock_file(manifest_dir: &Path) -> Option<PathBuf> {
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("Cargo.lock"))
        .find(|lock| lock.is_file())
}

/// `(name, version)` for every locked package whose name is in `names`
/// (sorted). A line scan, not a TOML parse: Cargo writes each package as
/// `name = "…"` followed by `version = "…"`, and a full parse of a large
/// lock file costs milliseconds in an unoptimized build script.
pub(crate) fn locked_versions<'a>(lock: &'a str, names: &[String]) -> Vec<(&'a str, &'a str)> {
    let mut found = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("name = \"")
            .and_then(|r| r.strip_suffix('"'))
        else {
            continue;
        };
        if names.binary_search_by(|n| n.as_str().cmp(name)).is_err() {
            continue;
        }
        if let Some(version) = lines
            .next()
            .and_then(|l| l.strip_prefix("version = \""))
            .and_then(|r| r.strip_suffix('"'))
        {
            found.push((name, version));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_lists_sources_and_env_deps() {
        let text = "/t/debug/build/x-1/build_script_build-1: /p/build.rs /p/gen/mod\\ a.rs\n\n\
                    /t/debug/build/x-1/build_script_build-1.d: /p/build.rs /p/gen/mod\\ a.rs\n\n\
                    /p/build.rs:\n/p/gen/mod\\ a.rs:\n\n# env-dep:GREETING=hi\n";
        let (deps, env) = parse_dep_info(text);
        assert_eq!(
            deps,
            [
                PathBuf::from("/p/build.rs"),
                PathBuf::from("/p/gen/mod a.rs")
            ]
        );
        assert_eq!(env, "GREETING=hi\n");
    }

    #[test]
    fn relative_dep_info_paths_resolve_against_the_workspace_root() {
        let ws = tempfile::tempdir().unwrap();
        let pkg = ws.path().join("crates/probe");
        fs::create_dir_all(pkg.join("gen")).unwrap();
        fs::write(pkg.join("build.rs"), "fn main() {}").unwrap();
        fs::write(pkg.join("gen/mod.rs"), "").unwrap();
        let mut sources = vec![
            PathBuf::from("crates/probe/build.rs"),
            PathBuf::from("crates/probe/gen/mod.rs"),
            PathBuf::from("/abs/other.rs"),
        ];
        resolve_relative(&mut sources, &pkg);
        assert_eq!(
            sources,
            [
                pkg.join("build.rs"),
                pkg.join("gen/mod.rs"),
                PathBuf::from("/abs/other.rs")
            ]
        );
    }

    #[test]
    fn clippy_builds_share_the_identity_of_plain_builds() {
        let build = "/t/x: build.rs\n\n/t/x.d: build.rs\n\nbuild.rs:\n";
        let clippy = "/t/x: build.rs Cargo.toml\n\n/t/x.d: build.rs Cargo.toml\n\n\
                      build.rs:\nCargo.toml:\n\n# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings\n\
                      # env-dep:CLIPPY_CONF_DIR=/p\n";
        assert_eq!(parse_dep_info(build), parse_dep_info(clippy));
    }

    #[test]
    fn finds_locked_versions_of_named_packages_only() {
        let lock = "version = 4\n\n[[package]]\nname = \"bindgen\"\nversion = \"0.70.1\"\n\
                    source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
                    dependencies = [\n \"cc\",\n]\n\n[[package]]\nname = \"cc\"\nversion = \"1.2.0\"\n\n\
                    [[package]]\nname = \"cc\"\nversion = \"1.0.0\"\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\n";
        let names = vec!["bindgen".to_owned(), "cc".to_owned()];
        assert_eq!(
            locked_versions(lock, &names),
            [("bindgen", "0.70.1"), ("cc", "1.2.0"), ("cc", "1.0.0")]
        );
    }

    #[test]
    fn identity_follows_content_not_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let build_rs = dir.path().join("build.rs");
        fs::write(&build_rs, "fn main() {}").unwrap();
        let manifest = Manifest::default();
        let (a, problems) = code_identity(None, Some(dir.path()), &manifest);
        assert!(problems.is_empty());
        assert_eq!(a.sources.len(), 1);
        assert_eq!(a.sources[0].path, "build.rs");
        // Rewriting the same bytes (a touch) keeps the identity.
        fs::write(&build_rs, "fn main() {}").unwrap();
        assert_eq!(code_identity(None, Some(dir.path()), &manifest).0, a);
        fs::write(&build_rs, "fn main() { println!(); }").unwrap();
        assert_ne!(
            code_identity(None, Some(dir.path()), &manifest).0.digest,
            a.digest
        );
    }

    #[test]
    fn identity_follows_build_dependency_versions() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("build.rs"), "fn main() {}").unwrap();
        let manifest = Manifest {
            build_deps: vec!["cc".to_owned()],
            ..Manifest::default()
        };
        let lock = |v: &str| format!("[[package]]\nname = \"cc\"\nversion = \"{v}\"\n");
        fs::write(dir.path().join("Cargo.lock"), lock("1.0.0")).unwrap();
        let (a, _) = code_identity(None, Some(dir.path()), &manifest);
        assert_eq!(a.build_deps, [("cc".to_owned(), "1.0.0".to_owned())]);
        fs::write(dir.path().join("Cargo.lock"), lock("1.0.1")).unwrap();
        assert_ne!(
            code_identity(None, Some(dir.path()), &manifest).0.digest,
            a.digest
        );
    }
}
