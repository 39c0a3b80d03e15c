//! Finding the directory the builds use, exactly as they do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pcache_core::config::{self, Env, Settings};
use pcache_core::conventions;

use crate::cli::GlobalArgs;

/// Where caches live and which packages the workspace has.
#[derive(Debug)]
pub(crate) struct Workspace {
    /// `<build-dir>/pcache`, or `$PCACHE_DIR`.
    pub(crate) pcache_root: PathBuf,
    /// The per-user store of dependencies' build-script runs
    /// (`$PCACHE_HOME`), if there is one.
    pub(crate) home_root: Option<PathBuf>,
    /// The target directory, as reported.
    pub(crate) target_dir: PathBuf,
    /// The workspace's root directory; `None` outside a Cargo project.
    pub(crate) workspace_root: Option<PathBuf>,
    /// Workspace members and the expiry their metadata gives them
    /// (`[package.metadata.pcache]`, else `[workspace.metadata.pcache]`);
    /// `None` when not inside a Cargo project.
    pub(crate) members: Option<BTreeMap<String, Option<Duration>>>,
    /// Problems with the workspace's pcache settings, to be reported.
    pub(crate) warnings: Vec<String>,
    /// `[workspace.metadata.pcache]`.
    pub(crate) settings: Settings,
}

impl Workspace {
    /// Finds the workspace from the command line and `env` (the
    /// environment with Cargo's `[env]`, where `PCACHE_DIR` may be set).
    pub(crate) fn discover(args: &GlobalArgs, env: &Env) -> Result<Workspace> {
        let target_dir_arg = args.target_dir.as_deref().map(absolute).transpose()?;
        let pcache_dir = env
            .get_os(config::DIR_VAR)
            .filter(|v| !v.is_empty())
            .map(|v| absolute(Path::new(&v)))
            .transpose()?;
        let mut cmd = cargo_metadata::MetadataCommand::new();
        cmd.no_deps();
        if let Some(path) = &args.manifest_path {
            cmd.manifest_path(path);
        }
        if let Some(dir) = &target_dir_arg {
            // cargo metadata has no --target-dir; the variable does the same.
            cmd.env("CARGO_TARGET_DIR", dir);
        }
        let metadata = match cmd.exec() {
            Ok(metadata) => Some(metadata),
            Err(e) => {
                let env_target = env.get_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty());
                if target_dir_arg.is_none() && pcache_dir.is_none() && env_target.is_none() {
                    let cwd = std::env::current_dir().unwrap_or_default();
                    let at = args.manifest_path.as_deref().unwrap_or(&cwd);
                    bail!(
                        "no Cargo project at `{}` ({}); run inside one, or pass --manifest-path or --target-dir",
                        at.display(),
                        metadata_error(&e)
                    );
                }
                None
            }
        };
        let mut warnings = Vec::new();
        let mut workspace = Settings::default();
        let workspace_root = metadata
            .as_ref()
            .map(|m| m.workspace_root.clone().into_std_path_buf());
        let (target_dir, build_dir, members) = match metadata {
            Some(m) => {
                let root_manifest = m.workspace_root.join("Cargo.toml");
                workspace = settings(&m.workspace_metadata, &root_manifest, &mut warnings);
                let members = m
                    .workspace_packages()
                    .into_iter()
                    .map(|p| {
                        let package = settings(&p.metadata, &p.manifest_path, &mut warnings);
                        let expiry = config::expiry(None, &package, &workspace);
                        (p.name.to_string(), expiry)
                    })
                    .collect();
                let target = m.target_directory.clone().into_std_path_buf();
                let build = m.build_directory.clone().map(|b| b.into_std_path_buf());
                (target.clone(), build.unwrap_or(target), Some(members))
            }
            None => {
                let dir = match target_dir_arg {
                    Some(dir) => dir,
                    None => match env.get_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
                        Some(dir) => absolute(Path::new(&dir))?,
                        None => PathBuf::from("target"),
                    },
                };
                (dir.clone(), dir, None)
            }
        };
        Ok(Workspace {
            pcache_root: conventions::pcache_root(
                pcache_dir.as_deref().map(|p| p.as_os_str()),
                &build_dir,
            ),
            home_root: config::home(env),
            target_dir,
            workspace_root,
            members,
            warnings,
            settings: workspace,
        })
    }

    pub(crate) fn package_expiry(&self, package: &str) -> Option<Duration> {
        self.members.as_ref()?.get(package).copied().flatten()
    }

    pub(crate) fn is_member(&self, package: &str) -> Option<bool> {
        self.members.as_ref().map(|m| m.contains_key(package))
    }
}

/// The packages of the workspace's dependency graph that have a build
/// script (from a full `cargo metadata`), for `pull` to fetch their runs;
/// none when that fails.
pub(crate) fn packages_with_build_scripts(_selection: &crate::cli::Selection) -> Vec<String> {
    let Ok(metadata) = cargo_metadata::MetadataCommand::new().exec() else {
        return Vec::new();
    };
    let mut names: Vec<String> = metadata
        .packages
        .iter()
        .filter(|p| {
            p.targets
                .iter()
                .any(|t| t.kind.iter().any(|k| k.to_string() == "custom-build"))
        })
        .map(|p| p.name.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("invalid path `{}`", path.display()))
}

/// The first line of what cargo said, without its `error: ` prefix.
fn metadata_error(e: &cargo_metadata::Error) -> String {
    let text = match e {
        cargo_metadata::Error::CargoMetadata { stderr } => stderr.clone(),
        other => other.to_string(),
    };
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("cargo metadata failed");
    line.trim().trim_start_matches("error: ").to_owned()
}

/// `[package.metadata.pcache]` (or `[workspace.metadata.pcache]`), as
/// pcache-build reads it. A bad value is a warning naming the manifest, and
/// the setting is left out, as in builds.
fn settings(
    metadata: &serde_json::Value,
    manifest: &cargo_metadata::camino::Utf8Path,
    warnings: &mut Vec<String>,
) -> Settings {
    let Some(pcache) = metadata.get("pcache") else {
        return Settings::default();
    };
    serde_json::from_value(pcache.clone()).unwrap_or_else(|e| {
        warnings.push(format!("ignoring the pcache settings in `{manifest}`: {e}"));
        Settings::default()
    })
}
