//! The caches on disk: `<pcache root>/<package>/<cache id>/`, under the
//! workspace's pcache directory (pcache-build's steps) and under the
//! per-user store (dependencies' build-script runs).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use pcache_core::{CacheMeta, Store, conventions};

use crate::cli::Selection;
use crate::workspace::Workspace;

/// What a cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// pcache-build's steps, in the workspace's pcache directory.
    Steps,
    /// A package's build-script runs, in the per-user store.
    BuildScript,
}

/// One cache directory.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    pub(crate) package: String,
    pub(crate) path: PathBuf,
    pub(crate) meta: Option<CacheMeta>,
    /// The pcache directory it is in.
    pub(crate) root: PathBuf,
    pub(crate) kind: Kind,
}

impl Cache {
    /// The readable name, or the directory's own name when `cache.toml` is
    /// missing or unreadable.
    pub(crate) fn name(&self) -> String {
        match &self.meta {
            Some(meta) => meta.name.clone(),
            None => self
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        }
    }

    /// The name recorded in the cache directory `dir`, if any.
    pub(crate) fn name_at(dir: &Path) -> Option<String> {
        Store::at(dir).meta().ok().flatten().map(|m| m.name)
    }

    pub(crate) fn store(&self) -> Store {
        Store::at(&self.path)
    }

    /// Whether `name` (a `NAME` on the command line) picks this cache: its
    /// name, or for a build-script cache its package's.
    fn named(&self, name: &str) -> bool {
        self.name() == name || (self.kind == Kind::BuildScript && self.package == name)
    }
}

/// Everything found under the pcache root, with what could not be read.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) caches: Vec<Cache>,
    pub(crate) warnings: Vec<String>,
}

/// Lists every cache of the workspace's pcache directory `root` and of the
/// per-user store `home`.
pub(crate) fn discover(root: &Path, home: Option<&Path>) -> Result<Found> {
    let mut found = discover_in(root, Kind::Steps)?;
    if let Some(home) = home.filter(|home| *home != root) {
        let mut runs = discover_in(home, Kind::BuildScript)?;
        found.caches.append(&mut runs.caches);
        found.warnings.append(&mut runs.warnings);
    }
    Ok(found)
}

/// Lists every cache under `root`; a missing root has none. Unreadable
/// directories and files that are not caches are warnings, not errors.
fn discover_in(root: &Path, kind: Kind) -> Result<Found> {
    let mut found = Found::default();
    let packages = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => bail!("failed to read `{}`: {e}", root.display()),
    };
    for package in packages.flatten() {
        let path = package.path();
        if conventions::is_reserved(&package.file_name().to_string_lossy()) {
            // pcache's own: remembered input digests, statistics, locks.
            continue;
        }
        if !package.file_type().is_ok_and(|t| t.is_dir()) {
            found.warnings.push(format!(
                "`{}` is not a pcache directory; skipped",
                path.display()
            ));
            continue;
        }
        let dir_name = package.file_name().to_string_lossy().into_owned();
        let caches = match fs::read_dir(&path) {
            Ok(rd) => rd,
            // Removed by a concurrent `cargo pcache delete` or `cargo clean`.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                found
                    .warnings
                    .push(format!("failed to read `{}`: {e}", path.display()));
                continue;
            }
        };
        for cache in caches.flatten() {
            let path = cache.path();
            if !cache.file_type().is_ok_and(|t| t.is_dir()) {
                found.warnings.push(format!(
                    "`{}` is not a pcache cache; skipped",
                    path.display()
                ));
                continue;
            }
            let meta = match Store::at(&path).meta() {
                Ok(meta) => meta,
                Err(e) => {
                    found.warnings.push(e.to_string());
                    None
                }
            };
            let package = meta
                .as_ref()
                .and_then(|m| m.package.clone())
                .unwrap_or_else(|| dir_name.clone());
            found.caches.push(Cache {
                package,
                path,
                meta,
                root: root.to_owned(),
                kind,
            });
        }
    }
    found
        .caches
        .sort_by(|a, b| (&a.package, a.name(), &a.path).cmp(&(&b.package, b.name(), &b.path)));
    Ok(found)
}

/// The caches `selection` picks. Naming a package or a cache that does not
/// exist is an error listing the ones that do.
pub(crate) fn select(
    caches: Vec<Cache>,
    selection: &Selection,
    workspace: &Workspace,
) -> Result<Vec<Cache>> {
    for package in &selection.packages {
        let member = workspace.is_member(package) == Some(true);
        if !member && !caches.iter().any(|c| &c.package == package) {
            let mut known: Vec<String> = workspace
                .members
                .iter()
                .flat_map(|m| m.keys().cloned())
                .collect();
            known.extend(caches.iter().map(|c| c.package.clone()));
            known.sort();
            known.dedup();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            bail!("package `{package}` not found; known packages: {known}");
        }
    }
    let in_packages: Vec<Cache> = caches
        .into_iter()
        .filter(|c| selection.packages.is_empty() || selection.packages.contains(&c.package))
        .collect();
    for name in &selection.names {
        if !in_packages.iter().any(|c| c.named(name)) {
            let mut known: Vec<String> = in_packages
                .iter()
                .map(|c| format!("`{}`", c.name()))
                .collect();
            known.sort();
            known.dedup();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            bail!("no cache named `{name}`; caches: {known}");
        }
    }
    Ok(in_packages
        .into_iter()
        .filter(|c| selection.names.is_empty() || selection.names.iter().any(|n| c.named(n)))
        .collect())
}
