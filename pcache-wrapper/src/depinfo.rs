//! rustc's dep-info (`--emit=dep-info`): the Makefile-style list of the
//! source files a crate was compiled from, and the variables `env!` read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What rustc's dep-info (`--emit=dep-info`) says a crate was built from.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct DepInfo {
    /// The source files read, absolute, sorted, without duplicates.
    pub(crate) sources: Vec<PathBuf>,
    /// The variables read with `env!`/`option_env!`: name and value.
    pub(crate) env: Vec<(String, Option<String>)>,
}

impl DepInfo {
    pub(crate) fn read(path: &Path, cwd: &Path) -> io::Result<DepInfo> {
        let text = fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("reading `{}`: {e}", path.display())))?;
        Ok(DepInfo::parse(&text, cwd))
    }

    /// Parses Makefile-style dep-info: `target: source source…` lines (with
    /// `\ ` for spaces in paths) and `# env-dep:NAME[=VALUE]` comments.
    pub(crate) fn parse(text: &str, cwd: &Path) -> DepInfo {
        let mut info = DepInfo::default();
        for line in text.lines() {
            if let Some(dep) = line.strip_prefix("# env-dep:") {
                let (name, value) = match dep.split_once('=') {
                    Some((name, value)) => (name, Some(unescape_env(value))),
                    None => (dep, None),
                };
                info.env.push((name.to_owned(), value));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let Some((_, deps)) = split_target(line) else {
                continue;
            };
            for dep in split_paths(deps) {
                let path = PathBuf::from(dep);
                info.sources.push(if path.is_absolute() {
                    path
                } else {
                    cwd.join(path)
                });
            }
        }
        info.sources.sort();
        info.sources.dedup();
        info.env.sort();
        info.env.dedup();
        info
    }
}

/// `target: deps`, where the target may hold `\:`-free Windows drive
/// letters; the separator is the first `": "` or a trailing `:`.
fn split_target(line: &str) -> Option<(&str, &str)> {
    if let Some(at) = line.find(": ") {
        return Some((&line[..at], &line[at + 2..]));
    }
    line.strip_suffix(':').map(|target| (target, ""))
}

/// The space-separated paths of a dep-info line, `\ ` being a space within
/// a path.
fn split_paths(deps: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' => {
                if !current.is_empty() {
                    paths.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(current);
    }
    paths
}

/// rustc escapes `\` and newlines in `env-dep` values.
fn unescape_env(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_is_parsed_as_rustc_writes_it() {
        let text = "/t/b-1: /p/build.rs /p/with\\ space.rs rel.rs\n\n\
                    /p/build.rs:\n\n# env-dep:A=1\\n2\n# env-dep:B\n";
        let info = DepInfo::parse(text, Path::new("/cwd"));
        assert_eq!(
            info.sources,
            ["/cwd/rel.rs", "/p/build.rs", "/p/with space.rs"].map(PathBuf::from)
        );
        assert_eq!(
            info.env,
            [
                ("A".to_owned(), Some("1\n2".to_owned())),
                ("B".to_owned(), None)
            ]
        );
    }
}
