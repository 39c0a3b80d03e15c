//! The Cargo directives a step prints, as pcache stores them: which lines
//! are directives and which must never be stored, written relative to the
//! places a build knows (`pcache_core::places`: the destination and its
//! scratch directory, `OUT_DIR`, the package directory).

pub(crate) use pcache_core::places::{Place, Places, Template as Directive};

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
