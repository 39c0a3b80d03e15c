//! The Cargo directives a step prints, as pcache stores them: which lines
//! are directives, which must never be stored, and how paths under the
//! places a build knows (the destination and its scratch directory,
//! `OUT_DIR`, the package directory) are written relative to them, so that
//! a hit in another profile, target directory or checkout prints paths
//! that exist there. Paths are recognised by their text: a directive naming
//! one of the places through a symlink or a relative path is replayed as
//! written.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A directory a directive's paths are relative to, so that a hit in
/// another profile, target directory or checkout names paths that exist
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Place {
    /// `cached_files`' destination (and its scratch directory).
    Dest,
    /// The build script's `OUT_DIR`.
    OutDir,
    /// The package directory, `CARGO_MANIFEST_DIR`.
    ManifestDir,
}

/// A recorded directive: its text, with each place written as a NUL and a
/// letter (`D`, `O`, `M`) and a NUL in the text doubled. One string rather
/// than a list of parts, so that a hit decodes it with a bulk copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Directive(String);

impl Directive {
    /// The directive's stored form.
    pub(crate) fn into_template(self) -> String {
        self.0
    }

    /// A directive from its stored form (checked when rendered).
    pub(crate) fn from_template(template: String) -> Directive {
        Directive(template)
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
pub(crate) struct Places {
    /// Paths recognised in directives, longest first so that the most
    /// specific wins (`OUT_DIR` usually lies inside the package directory).
    matches: Vec<(String, Place)>,
    /// Where each place is in this run.
    paths: Vec<(Place, String)>,
}

impl Places {
    pub(crate) fn new(out_dir: Option<&Path>, manifest_dir: Option<&Path>) -> Places {
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
    pub(crate) fn add(&mut self, dir: &Path, place: Place) {
        if let Some(text) = self.add_alias(dir, place) {
            self.paths.retain(|(p, _)| *p != place);
            self.paths.push((place, text));
        }
    }

    /// Recognises `dir` as `place` without rendering `place` to it: a
    /// scratch directory whose files end up in the destination.
    pub(crate) fn add_alias(&mut self, dir: &Path, place: Place) -> Option<String> {
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
    pub(crate) fn template(&self, line: &str) -> Directive {
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
        Directive(template)
    }

    /// The directive with this run's paths; `Err` names a place this run
    /// does not have (or is `None` for a template that does not parse).
    pub(crate) fn render(&self, directive: &Directive) -> Result<String, Option<Place>> {
        let mut line = String::with_capacity(directive.0.len() + 64);
        let mut parts = directive.0.split('\0');
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
fn continues_a_name(after: &str) -> bool {
    after
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether a stdout line is a Cargo directive.
pub(crate) fn is_directive(line: &str) -> bool {
    line.starts_with("cargo:")
}

/// Whether a directive is one pcache must not store: pcache's own warnings
/// (they describe this run's cache, not the step).
fn is_own_warning(line: &str) -> bool {
    line.starts_with("cargo:warning=pcache:") || line.starts_with("cargo::warning=pcache:")
}

/// Whether a directive fails the build (`cargo::error=`): such a step is
/// never stored.
fn is_error(line: &str) -> bool {
    line.starts_with("cargo::error=")
}

/// What a capture recorded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Captured {
    pub(crate) directives: Vec<Directive>,
    /// A `cargo::error=` was printed: the step must not be stored.
    pub(crate) error: bool,
}

impl Captured {
    pub(crate) fn record(&mut self, places: &Places, line: &str) {
        if is_error(line) {
            self.error = true;
        }
        if !is_own_warning(line) {
            self.directives.push(places.template(line));
        }
    }
}

/// This run's text of stored directives, in their order; `Err` names a
/// place this run lacks (or is `None` for a template that does not parse).
pub(crate) fn replay(
    places: &Places,
    directives: &[Directive],
) -> Result<Vec<String>, Option<Place>> {
    directives.iter().map(|d| places.render(d)).collect()
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
        assert_eq!(p.render(&Directive("x\0Z".into())), Err(None));
    }

    #[test]
    fn nuls_in_the_text_survive() {
        let p = Places::new(Some(Path::new("/t/out")), None);
        for line in ["a\0b", "\0", "x\0\0/t/out\0", "\0O literally"] {
            assert_eq!(p.render(&p.template(line)).unwrap(), line, "{line:?}");
        }
    }

    #[test]
    fn pcache_warnings_are_not_recorded_and_errors_are_flagged() {
        let p = Places::default();
        let mut c = Captured::default();
        c.record(&p, "cargo:warning=pcache: inner: disk full");
        c.record(&p, "cargo::warning=from the step");
        c.record(&p, "cargo::error=no compiler");
        assert_eq!(c.directives.len(), 2);
        assert!(c.error);
    }
}
