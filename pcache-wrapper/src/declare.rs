//! What a build script's stdout says about it: the files and variables it
//! declared as inputs (`rerun-if-changed`, `rerun-if-env-changed`), and the
//! paths of this machine it names outside its own places, which are inputs
//! too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The inputs a run declared, as Cargo reads them: the level-2 key of its
/// entry is made of their values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Declarations {
    /// Variables named by `rerun-if-env-changed`, sorted.
    pub(crate) env: Vec<String>,
    /// Files and directories named by `rerun-if-changed`, sorted: relative
    /// to the package directory when inside it, absolute otherwise (paths
    /// inside `OUT_DIR`, which the script writes itself, are left out).
    pub(crate) files: Vec<String>,
    /// Existing paths of this machine its directives name outside the
    /// run's places (a system library's directory found by pkg-config):
    /// the run is bound to this machine and keyed by what is there.
    #[serde(default)]
    pub(crate) machine: Vec<String>,
}

impl Declarations {
    /// The declarations in `stdout`, whose package is at `manifest_dir` and
    /// whose output went to `out_dir`.
    pub(crate) fn parse(stdout: &str, manifest_dir: &Path, out_dir: &Path) -> Declarations {
        let mut declarations = Declarations::default();
        for line in stdout.lines() {
            let line = line.trim_end_matches('\r');
            let Some((key, value)) = directive(line) else {
                continue;
            };
            match key {
                "rerun-if-env-changed" => declarations.env.push(value.to_owned()),
                "rerun-if-changed" => {
                    let path = manifest_dir.join(value);
                    if path.starts_with(out_dir) {
                        continue;
                    }
                    let written = match path.strip_prefix(manifest_dir) {
                        Ok(inside) => inside.to_string_lossy().into_owned(),
                        Err(_) => path.to_string_lossy().into_owned(),
                    };
                    declarations.files.push(written);
                }
                _ => {}
            }
        }
        declarations.env.sort();
        declarations.env.dedup();
        declarations.files.sort();
        declarations.files.dedup();
        declarations
    }

    /// Adds the paths of this machine named by the directives of
    /// `template` (the stdout with the run's places written as
    /// placeholders, so that only other paths are left absolute).
    pub(crate) fn with_machine_paths(mut self, template: &str) -> Declarations {
        self.machine = template
            .lines()
            .filter(|line| directive(line).is_some())
            .flat_map(absolute_paths)
            .filter(|path| Path::new(path).exists())
            .map(str::to_owned)
            .collect();
        self.machine.sort();
        self.machine.dedup();
        self
    }

    /// Whether the run is bound to this machine: it declared a file outside
    /// its package, or named a path of this machine.
    pub(crate) fn host_bound(&self) -> bool {
        !self.machine.is_empty() || self.files.iter().any(|f| Declarations::is_outside(f))
    }

    /// Where a declared file is, from the package directory.
    pub(crate) fn resolve(file: &str, manifest_dir: &Path) -> PathBuf {
        manifest_dir.join(file)
    }

    /// Whether a declared file lies outside the package (an absolute path
    /// of this machine).
    pub(crate) fn is_outside(file: &str) -> bool {
        Path::new(file).is_absolute()
    }
}

/// The key and value of a Cargo directive, in the `cargo:` or `cargo::`
/// spelling.
pub(crate) fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line
        .strip_prefix("cargo::")
        .or_else(|| line.strip_prefix("cargo:"))?;
    rest.split_once('=')
}

/// The absolute paths in `text`, as tokens between separators (spaces,
/// quotes, `=`, `:`, `;`, `,`).
pub(crate) fn absolute_paths(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ':' | ';' | ','))
        .filter(|token| token.starts_with('/') && token.len() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_inputs_are_read_in_both_spellings_and_made_relative() {
        let stdout = "cargo:rerun-if-changed=build.rs\n\
                      cargo::rerun-if-env-changed=ZSTD_SYS_USE_PKG_CONFIG\n\
                      cargo:rerun-if-changed=/reg/zstd-sys/zstd/lib\r\n\
                      cargo:rerun-if-changed=/usr/include/zlib.h\n\
                      cargo:rerun-if-changed=/t/debug/build/z-1/out/gen.h\n\
                      cargo:rerun-if-env-changed=CC\n\
                      cargo:rerun-if-env-changed=CC\n\
                      cargo:warning=rerun-if-changed=not-this\n";
        let d = Declarations::parse(
            stdout,
            Path::new("/reg/zstd-sys"),
            Path::new("/t/debug/build/z-1/out"),
        );
        assert_eq!(d.env, ["CC", "ZSTD_SYS_USE_PKG_CONFIG"]);
        assert_eq!(d.files, ["/usr/include/zlib.h", "build.rs", "zstd/lib"]);
        assert!(Declarations::is_outside(&d.files[0]));
        assert!(!Declarations::is_outside(&d.files[1]));
        assert!(d.host_bound());
    }

    #[test]
    fn paths_of_the_machine_named_by_directives_are_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().display();
        let template = format!(
            "cargo:rustc-link-search=native={lib}\n\
             cargo:rustc-link-search=native={{OUT_DIR}}/lib\n\
             cargo:rustc-link-lib=fx\n\
             cargo:include=/no/such/path\n\
             not a directive {lib}\n"
        );
        let d = Declarations::default().with_machine_paths(&template);
        assert_eq!(d.machine, [lib.to_string()]);
        assert!(d.host_bound());
        let portable = Declarations::default()
            .with_machine_paths("cargo:rustc-link-search=native={OUT_DIR}\n");
        assert!(portable.machine.is_empty());
        assert!(!portable.host_bound());
    }

    #[test]
    fn absolute_paths_are_found_between_separators() {
        let found: Vec<&str> =
            absolute_paths("cargo:rustc-link-search=native=/usr/lib:/opt/x \"/q\" rel/p /")
                .collect();
        assert_eq!(found, ["/usr/lib", "/opt/x", "/q"]);
    }
}
