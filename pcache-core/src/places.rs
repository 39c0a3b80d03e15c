//! Paths written relative to the places a build knows, so that text naming
//! them — a Cargo directive, a build script's stdout — can be stored and
//! rendered again with another run's places: a hit in another profile,
//! target directory or checkout names paths that exist there.
//!
//! ```
//! use std::path::Path;
//! use pcache_core::places::{Place, Places};
//!
//! let mut then = Places::default();
//! then.add(Path::new("/w/target/debug/build/zstd-sys-1/out"), Place::OutDir);
//! let template = then.template("cargo:include=/w/target/debug/build/zstd-sys-1/out/include");
//!
//! let mut now = Places::default();
//! now.add(Path::new("/x/t/release/build/zstd-sys-9/out"), Place::OutDir);
//! assert_eq!(
//!     now.render(&template).unwrap(),
//!     "cargo:include=/x/t/release/build/zstd-sys-9/out/include"
//! );
//! ```
//!
//! Paths are recognised by their text, as whole paths (`/t/out` is not in
//! `/t/output`): one reached through a symlink or written relatively is
//! kept as written.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A directory that paths in stored text are written relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Place {
    /// `cached_files`' destination (and its scratch directory).
    Dest,
    /// The build script's `OUT_DIR`.
    OutDir,
    /// The package directory, `CARGO_MANIFEST_DIR`.
    ManifestDir,
}

/// Text with each place written as a NUL and a letter (`D`, `O`, `M`), and
/// a NUL in the text doubled. One string rather than a list of parts, so
/// that it decodes with a bulk copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Template(String);

impl Template {
    /// The stored form.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The stored form, borrowed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A template from its stored form (checked when rendered).
    pub fn from_string(template: String) -> Template {
        Template(template)
    }
}

impl Place {
    fn code(self) -> char {
        match self {
            Place::Dest => 'D',
            Place::OutDir => 'O',
            Place::ManifestDir => 'M',
        }
    }

    fn from_code(code: char) -> Option<Place> {
        match code {
            'D' => Some(Place::Dest),
            'O' => Some(Place::OutDir),
            'M' => Some(Place::ManifestDir),
            _ => None,
        }
    }
}

/// The places of this run.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// Paths recognised in directives, longest first so that the most
    /// specific wins (`OUT_DIR` usually lies inside the package directory).
    matches: Vec<(String, Place)>,
    /// Where each place is in this run.
    paths: Vec<(Place, String)>,
}

impl Places {
    /// The places of a build script: its `OUT_DIR` and package directory.
    pub fn new(out_dir: Option<&Path>, manifest_dir: Option<&Path>) -> Places {
        let mut places = Places::default();
        if let Some(dir) = out_dir {
            places.add(dir, Place::OutDir);
        }
        if let Some(dir) = manifest_dir {
            places.add(dir, Place::ManifestDir);
        }
        places
    }

    /// Sets where `place` is. Only UTF-8 paths can be recognised in text.
    pub fn add(&mut self, dir: &Path, place: Place) {
        if let Some(text) = self.add_alias(dir, place) {
            self.paths.retain(|(p, _)| *p != place);
            self.paths.push((place, text));
        }
    }

    /// Recognises `dir` as `place` without rendering `place` to it: a
    /// scratch directory whose files end up in the destination.
    pub fn add_alias(&mut self, dir: &Path, place: Place) -> Option<String> {
        let text = dir.to_str()?.trim_end_matches('/');
        if text.is_empty() {
            return None;
        }
        self.matches.push((text.to_owned(), place));
        self.matches
            .sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        Some(text.to_owned())
    }

    fn path_of(&self, place: Place) -> Option<&str> {
        self.paths
            .iter()
            .find(|(p, _)| *p == place)
            .map(|(_, path)| path.as_str())
    }

    /// `line` with every path under one of the places made relative to it.
    pub fn template(&self, line: &str) -> Template {
        let mut template = String::with_capacity(line.len());
        let mut rest = line;
        'scan: while let Some(c) = rest.chars().next() {
            for (path, place) in &self.matches {
                if let Some(after) = rest.strip_prefix(path.as_str()) {
                    if !continues_a_name(after) {
                        template.push('\0');
                        template.push(place.code());
                        rest = after;
                        continue 'scan;
                    }
                }
            }
            if c == '\0' {
                template.push('\0');
            }
            template.push(c);
            rest = &rest[c.len_utf8()..];
        }
        Template(template)
    }

    /// The directive with this run's paths; `Err` names a place this run
    /// does not have (or is `None` for a template that does not parse).
    pub fn render(&self, template: &Template) -> Result<String, Option<Place>> {
        let mut line = String::with_capacity(template.0.len() + 64);
        let mut parts = template.0.split('\0');
        line.push_str(parts.next().unwrap_or(""));
        // After each NUL: a place code or, for a doubled NUL, an empty part.
        let mut escaped = false;
        for part in parts {
            if escaped {
                escaped = false;
                line.push_str(part);
                continue;
            }
            let mut chars = part.chars();
            match chars.next() {
                None => {
                    line.push('\0');
                    escaped = true;
                }
                Some(code) => {
                    let place = Place::from_code(code).ok_or(None)?;
                    line.push_str(self.path_of(place).ok_or(Some(place))?);
                    line.push_str(chars.as_str());
                }
            }
        }
        Ok(line)
    }
}

/// Whether the text right after a matched path continues a file name
/// (`/t/out` in `/t/output`), so the match is not a whole path.
pub fn continues_a_name(after: &str) -> bool {
    after
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        let mut places = Places::new(
            Some(Path::new("/w/target/debug/build/x-1/out")),
            Some(Path::new("/w/crate")),
        );
        places.add(Path::new("/w/target/debug/build/x-1/out/gen"), Place::Dest);
        places.add_alias(
            Path::new("/w/target/debug/build/x-1/out/.pcache-scratch-Ab12"),
            Place::Dest,
        );
        places
    }

    #[test]
    fn paths_under_places_become_relative_and_render_back() {
        let p = places();
        let line = "cargo:rustc-link-search=native=/w/target/debug/build/x-1/out/lib";
        let d = p.template(line);
        assert_eq!(d.0, "cargo:rustc-link-search=native=\0O/lib");
        assert_eq!(p.render(&d).unwrap(), line);
        // The scratch directory renders as the destination.
        let scratch = p.template(
            "cargo:rustc-link-search=native=/w/target/debug/build/x-1/out/.pcache-scratch-Ab12/lib",
        );
        assert_eq!(
            p.render(&scratch).unwrap(),
            "cargo:rustc-link-search=native=/w/target/debug/build/x-1/out/gen/lib"
        );

        let mut elsewhere = Places::new(
            Some(Path::new("/x/t/release/build/x-9/out")),
            Some(Path::new("/home/me/crate")),
        );
        elsewhere.add(Path::new("/x/t/release/build/x-9/out/gen"), Place::Dest);
        assert_eq!(
            elsewhere.render(&d).unwrap(),
            "cargo:rustc-link-search=native=/x/t/release/build/x-9/out/lib"
        );
        assert_eq!(
            elsewhere.render(&scratch).unwrap(),
            "cargo:rustc-link-search=native=/x/t/release/build/x-9/out/gen/lib"
        );
        let manifest = p.template("cargo:rerun-if-changed=/w/crate/csrc/a.c");
        assert_eq!(
            elsewhere.render(&manifest).unwrap(),
            "cargo:rerun-if-changed=/home/me/crate/csrc/a.c"
        );
    }

    #[test]
    fn a_longer_name_sharing_a_prefix_is_not_a_place() {
        let p = Places::new(Some(Path::new("/t/out")), None);
        let d = p.template("cargo:rustc-env=X=/t/output/y:/t/out");
        assert_eq!(d.0, "cargo:rustc-env=X=/t/output/y:\0O");
    }

    #[test]
    fn a_place_missing_in_this_run_is_reported() {
        let p = Places::new(Some(Path::new("/t/out")), None);
        let d = p.template("cargo:include=/t/out/include");
        assert_eq!(Places::default().render(&d), Err(Some(Place::OutDir)));
        assert_eq!(p.render(&Template("x\0Z".into())), Err(None));
    }

    #[test]
    fn nuls_in_the_text_survive() {
        let p = Places::new(Some(Path::new("/t/out")), None);
        for line in ["a\0b", "\0", "x\0\0/t/out\0", "\0O literally"] {
            assert_eq!(p.render(&p.template(line)).unwrap(), line, "{line:?}");
        }
    }
}
