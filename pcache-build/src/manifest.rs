//! What the hit path needs from the package's `Cargo.toml`:
//! `[package.metadata.pcache]` and the names of its build-dependencies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pcache_core::config::Settings;

/// The parts of `Cargo.toml` pcache reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// `[package.metadata.pcache] expiry`.
    pub(crate) expiry: Option<Duration>,
    /// Package names of `[build-dependencies]`, target-specific ones included.
    pub(crate) build_deps: Vec<String>,
    /// `package.build`, if it names the build script.
    pub(crate) build_script: Option<String>,
    /// `[workspace.metadata.pcache]`, when this manifest is the workspace's
    /// root (`Err`: the problem with it).
    pub(crate) workspace: Option<Result<Settings, String>>,
}

impl Manifest {
    /// Reads `<manifest_dir>/Cargo.toml`. Problems are returned beside the
    /// best-effort result, to be reported as warnings.
    pub(crate) fn read(manifest_dir: &Path) -> (Manifest, Vec<String>) {
        let path = manifest_dir.join("Cargo.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Manifest::parse(&text),
            Err(e) => (
                Manifest::default(),
                vec![format!("failed to read `{}`: {e}", path.display())],
            ),
        }
    }

    pub(crate) fn parse(text: &str) -> (Manifest, Vec<String>) {
        let mut problems = Vec::new();
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(e) => {
                return (
                    Manifest::default(),
                    vec![format!("failed to parse Cargo.toml: {e}")],
                );
            }
        };
        let package = table.get("package");
        let settings = package
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("pcache"))
            .cloned()
            .map(toml::Value::try_into::<Settings>);
        let expiry = match settings {
            None => None,
            Some(Ok(settings)) => settings.expiry,
            Some(Err(e)) => {
                problems.push(format!("[package.metadata.pcache]: {}", e.message()));
                None
            }
        };
        let mut build_deps = Vec::new();
        let mut collect = |deps: Option<&toml::Value>| {
            for (name, spec) in deps.and_then(toml::Value::as_table).into_iter().flatten() {
                let package = spec
                    .get("package")
                    .and_then(toml::Value::as_str)
                    .unwrap_or(name);
                build_deps.push(package.to_owned());
            }
        };
        collect(table.get("build-dependencies"));
        collect(table.get("build_dependencies"));
        for target in table
            .get("target")
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
        {
            collect(target.1.get("build-dependencies"));
        }
        build_deps.sort();
        build_deps.dedup();
        let build_script = package
            .and_then(|p| p.get("build"))
            .and_then(toml::Value::as_str)
            .map(str::to_owned);
        let workspace = table.get("workspace").map(workspace_table);
        (
            Manifest {
                expiry,
                build_deps,
                build_script,
                workspace,
            },
            problems,
        )
    }
}

/// The settings in a manifest's `[workspace]` table.
fn workspace_table(workspace: &toml::Value) -> Result<Settings, String> {
    match workspace.get("metadata").and_then(|m| m.get("pcache")) {
        None => Ok(Settings::default()),
        Some(settings) => settings
            .clone()
            .try_into::<Settings>()
            .map_err(|e| format!("[workspace.metadata.pcache]: {}", e.message())),
    }
}

/// `[workspace.metadata.pcache]` of the workspace `manifest_dir` belongs
/// to: the nearest `Cargo.toml` above it (or its own) with a `[workspace]`
/// table. `Err` names the manifest and the problem.
pub(crate) fn workspace_settings(manifest_dir: &Path) -> Result<Settings, (PathBuf, String)> {
    for dir in manifest_dir.ancestors() {
        let path = dir.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // Only manifests that may declare a workspace are parsed.
        if !text.contains("[workspace") {
            continue;
        }
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(e) => return Err((path, format!("failed to parse: {}", e.message()))),
        };
        let Some(workspace) = table.get("workspace") else {
            continue;
        };
        return workspace_table(workspace).map_err(|e| (path, e));
    }
    Ok(Settings::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_expiry_and_build_dependencies() {
        let (m, problems) = Manifest::parse(
            r#"
            [package]
            name = "x"
            build = "gen/build.rs"
            [package.metadata.pcache]
            expiry = "30d"
            [build-dependencies]
            bindgen = "0.70"
            renamed = { package = "cc", version = "1" }
            shared.workspace = true
            [target.'cfg(unix)'.build-dependencies]
            pkg-config = "0.3"
            [dependencies]
            serde = "1"
            "#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(m.expiry, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(m.build_deps, ["bindgen", "cc", "pkg-config", "shared"]);
        assert_eq!(m.build_script.as_deref(), Some("gen/build.rs"));
    }

    #[test]
    fn a_bad_expiry_is_a_problem_not_a_failure() {
        let (m, problems) = Manifest::parse("[package.metadata.pcache]\nexpiry = \"soon\"\n");
        assert_eq!(m.expiry, None);
        assert!(problems[0].contains("soon"), "{problems:?}");
        let (_, problems) = Manifest::parse("not toml [");
        assert_eq!(problems.len(), 1);
    }
}

#[cfg(test)]
mod workspace_tests {
    use super::*;

    #[test]
    fn the_cap_is_read_from_the_enclosing_workspace() {
        let ws = tempfile::tempdir().unwrap();
        let pkg = ws.path().join("crates/a");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"a\"\n").unwrap();
        assert_eq!(workspace_settings(&pkg), Ok(Settings::default()));
        std::fs::write(
            ws.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\n[workspace.metadata.pcache]\nmax-size = \"500MiB\"\n",
        )
        .unwrap();
        assert_eq!(workspace_settings(&pkg).unwrap().max_size, Some(500 << 20));
        std::fs::write(
            ws.path().join("Cargo.toml"),
            "[workspace]\n[workspace.metadata.pcache]\nmax-size = \"lots\"\n",
        )
        .unwrap();
        let (path, e) = workspace_settings(&pkg).unwrap_err();
        assert_eq!(path, ws.path().join("Cargo.toml"));
        assert!(e.contains("lots"), "{e}");
    }
}
