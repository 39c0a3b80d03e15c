//! How two keys differ, in a step's own terms: the engine behind `cargo
//! pcache why`, comparing the parts recorded with a miss (pcache-core's
//! `record::KeyParts`) against those of the stored entries.

use std::collections::{BTreeMap, BTreeSet};

use pcache_core::record::{CodeParts, FileDigest, InputPart, KeyParts};
use serde::Serialize;

/// One way two keys differ, in a step's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "part", rename_all = "snake_case")]
#[non_exhaustive]
pub(crate) enum Difference {
    /// pcache's entry format version.
    Format {
        /// In the stored entry.
        before: u16,
        /// In the miss.
        after: u16,
    },
    /// `value`, `iter` or `files`.
    EntryPoint {
        /// In the stored entry.
        before: String,
        /// In the miss.
        after: String,
    },
    /// The value's Rust type.
    TypeName {
        /// In the stored entry.
        before: String,
        /// In the miss.
        after: String,
    },
    /// The `TARGET` triple.
    Target {
        /// In the stored entry.
        before: String,
        /// In the miss.
        after: String,
    },
    /// One side was code-independent, the other not.
    CodeIndependence {
        /// Whether the miss was.
        independent: bool,
    },
    /// A build-script source file: changed, added or removed.
    Source {
        /// Relative to the package.
        path: String,
        /// Its digest in the stored entry (`None`: not a source then).
        #[serde(with = "hex_opt")]
        before: Option<u128>,
        /// Its digest in the miss (`None`: not a source any more).
        #[serde(with = "hex_opt")]
        after: Option<u128>,
    },
    /// A build-dependency's locked version.
    BuildDependency {
        /// The package.
        name: String,
        /// Its version in the stored entry.
        before: Option<String>,
        /// Its version in the miss.
        after: Option<String>,
    },
    /// The `env!` values the build script was compiled with.
    CompileEnv,
    /// A `file()` input's content (`None`: unreadable, or not an input).
    File {
        /// As given to `file()`.
        path: String,
        /// The content digest in the stored entry.
        #[serde(with = "hex_opt")]
        before: Option<u128>,
        /// The content digest in the miss.
        #[serde(with = "hex_opt")]
        after: Option<u128>,
    },
    /// A `dir()` input and the files in it that changed.
    Dir {
        /// As given to `dir()`.
        path: String,
        /// Each changed, added or removed file.
        files: Vec<FileChange>,
    },
    /// An `env()` input's value, by digest.
    Env {
        /// The variable.
        name: String,
        /// The value's digest in the stored entry (`None`: unset).
        #[serde(with = "hex_opt")]
        before: Option<u128>,
        /// The value's digest in the miss (`None`: unset).
        #[serde(with = "hex_opt")]
        after: Option<u128>,
    },
    /// Another input, by position among the top-level inputs.
    Input {
        /// Its position.
        index: u32,
        /// Its digest in the stored entry (`None`: absent).
        #[serde(with = "hex_opt")]
        before: Option<u128>,
        /// Its digest in the miss (`None`: absent).
        #[serde(with = "hex_opt")]
        after: Option<u128>,
    },
}

/// A file of a `dir()` input that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FileChange {
    /// Relative to the directory.
    pub(crate) path: String,
    /// Its digest in the stored entry (`None`: absent).
    #[serde(with = "hex_opt")]
    pub(crate) before: Option<u128>,
    /// Its digest in the miss (`None`: absent).
    #[serde(with = "hex_opt")]
    pub(crate) after: Option<u128>,
}

mod hex_opt {
    pub(super) fn serialize<S: serde::Serializer>(
        v: &Option<u128>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&format!("{d:032x}")),
            None => s.serialize_none(),
        }
    }
}

fn short(d: Option<u128>) -> String {
    d.map_or_else(
        || "none".to_owned(),
        |d| format!("{:08x}", (d >> 96) as u32),
    )
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let change = |before: Option<u128>, after: Option<u128>, what: &str| match (before, after) {
            (None, Some(_)) => format!("{what} added"),
            (Some(_), None) => format!("{what} removed"),
            _ => format!("{what} changed ({} → {})", short(before), short(after)),
        };
        match self {
            Difference::Format { before, after } => {
                write!(f, "pcache's entry format changed ({before} → {after})")
            }
            Difference::EntryPoint { before, after } => {
                write!(f, "the step kind changed ({before} → {after})")
            }
            Difference::TypeName { before, after } => {
                write!(f, "the value type changed (`{before}` → `{after}`)")
            }
            Difference::Target { before, after } => {
                write!(f, "the target changed ({before} → {after})")
            }
            Difference::CodeIndependence { independent } => write!(
                f,
                "the cache became code-{}",
                if *independent {
                    "independent"
                } else {
                    "dependent"
                }
            ),
            Difference::Source {
                path,
                before,
                after,
            } => f.write_str(&change(
                *before,
                *after,
                &format!("build-script source `{path}`"),
            )),
            Difference::BuildDependency {
                name,
                before,
                after,
            } => match (before, after) {
                (Some(a), Some(b)) => write!(f, "build-dependency `{name}` {a} → {b}"),
                (None, Some(b)) => write!(f, "build-dependency `{name}` {b} added"),
                (Some(a), None) => write!(f, "build-dependency `{name}` {a} removed"),
                (None, None) => write!(f, "build-dependency `{name}` changed"),
            },
            Difference::CompileEnv => {
                f.write_str("the environment the build script was compiled with changed (env!)")
            }
            Difference::File {
                path,
                before,
                after,
            } => f.write_str(&change(*before, *after, &format!("file(\"{path}\")"))),
            Difference::Dir { path, files } => {
                write!(f, "dir(\"{path}\") changed: ")?;
                let listed: Vec<String> = files
                    .iter()
                    .take(10)
                    .map(|c| change(c.before, c.after, &c.path))
                    .collect();
                f.write_str(&listed.join(", "))?;
                if files.len() > 10 {
                    write!(f, " and {} more", files.len() - 10)?;
                }
                Ok(())
            }
            Difference::Env {
                name,
                before,
                after,
            } => match (before, after) {
                (None, Some(_)) => write!(f, "env(\"{name}\") is set now (unset before)"),
                (Some(_), None) => write!(f, "env(\"{name}\") is unset now"),
                _ => write!(
                    f,
                    "env(\"{name}\") changed (value digest {} → {})",
                    short(*before),
                    short(*after)
                ),
            },
            Difference::Input {
                index,
                before,
                after,
            } => f.write_str(&change(*before, *after, &format!("input #{index}"))),
        }
    }
}

/// How `after` (a miss's key) differs from `before` (a stored entry's).
/// The input helpers are named; other inputs are compared by position only
/// when no helper differs (a changed helper changes its position's digest
/// too).
pub(crate) fn differences(before: &KeyParts, after: &KeyParts) -> Vec<Difference> {
    let mut diffs = Vec::new();
    if before.format != after.format {
        diffs.push(Difference::Format {
            before: before.format,
            after: after.format,
        });
    }
    let mut text = |a: &String, b: &String, make: fn(String, String) -> Difference| {
        if a != b {
            diffs.push(make(a.clone(), b.clone()));
        }
    };
    text(&before.entry_point, &after.entry_point, |before, after| {
        Difference::EntryPoint { before, after }
    });
    text(&before.type_name, &after.type_name, |before, after| {
        Difference::TypeName { before, after }
    });
    text(&before.target, &after.target, |before, after| {
        Difference::Target { before, after }
    });
    match (&before.code, &after.code) {
        (Some(a), Some(b)) if a.digest != b.digest => code_differences(a, b, &mut diffs),
        (Some(_), None) => diffs.push(Difference::CodeIndependence { independent: true }),
        (None, Some(_)) => diffs.push(Difference::CodeIndependence { independent: false }),
        _ => {}
    }
    if before.inputs_digest != after.inputs_digest {
        input_differences(&before.inputs, &after.inputs, &mut diffs);
    }
    diffs
}

fn code_differences(a: &CodeParts, b: &CodeParts, diffs: &mut Vec<Difference>) {
    for (path, before, after) in by_path(&a.sources, &b.sources) {
        diffs.push(Difference::Source {
            path,
            before,
            after,
        });
    }
    let deps = |parts: &CodeParts| -> BTreeMap<String, String> {
        parts.build_deps.iter().cloned().collect()
    };
    let (da, db) = (deps(a), deps(b));
    for name in da.keys().chain(db.keys()).collect::<BTreeSet<_>>() {
        let (before, after) = (da.get(name).cloned(), db.get(name).cloned());
        if before != after {
            diffs.push(Difference::BuildDependency {
                name: name.clone(),
                before,
                after,
            });
        }
    }
    if a.env_digest != b.env_digest {
        diffs.push(Difference::CompileEnv);
    }
}

/// The files of two lists that differ: `(path, before, after)`.
fn by_path(a: &[FileDigest], b: &[FileDigest]) -> Vec<(String, Option<u128>, Option<u128>)> {
    let index = |list: &[FileDigest]| -> BTreeMap<String, u128> {
        list.iter().map(|f| (f.path.clone(), f.digest)).collect()
    };
    let (ia, ib) = (index(a), index(b));
    let paths: BTreeSet<&String> = ia.keys().chain(ib.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (before, after) = (ia.get(path).copied(), ib.get(path).copied());
            (before != after).then(|| (path.clone(), before, after))
        })
        .collect()
}

fn input_differences(before: &[InputPart], after: &[InputPart], diffs: &mut Vec<Difference>) {
    let start = diffs.len();
    let files = |parts: &[InputPart]| -> BTreeMap<String, Option<u128>> {
        parts
            .iter()
            .filter_map(|p| match p {
                InputPart::File { path, digest } => Some((path.clone(), *digest)),
                _ => None,
            })
            .collect()
    };
    let (fa, fb) = (files(before), files(after));
    for path in fa.keys().chain(fb.keys()).collect::<BTreeSet<_>>() {
        let (b, a) = (
            fa.get(path).copied().flatten(),
            fb.get(path).copied().flatten(),
        );
        if fa.get(path) != fb.get(path) {
            diffs.push(Difference::File {
                path: path.clone(),
                before: b,
                after: a,
            });
        }
    }
    let dirs = |parts: &[InputPart]| -> BTreeMap<String, (u128, Vec<FileDigest>)> {
        parts
            .iter()
            .filter_map(|p| match p {
                InputPart::Dir {
                    path,
                    digest,
                    files,
                } => Some((path.clone(), (*digest, files.clone()))),
                _ => None,
            })
            .collect()
    };
    let (da, db) = (dirs(before), dirs(after));
    let empty = (0u128, Vec::new());
    for path in da.keys().chain(db.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (
            da.get(path).unwrap_or(&empty),
            db.get(path).unwrap_or(&empty),
        );
        if a.0 != b.0 {
            let files = by_path(&a.1, &b.1)
                .into_iter()
                .map(|(path, before, after)| FileChange {
                    path,
                    before,
                    after,
                })
                .collect();
            diffs.push(Difference::Dir {
                path: path.clone(),
                files,
            });
        }
    }
    let envs = |parts: &[InputPart]| -> BTreeMap<String, Option<u128>> {
        parts
            .iter()
            .filter_map(|p| match p {
                InputPart::Env { name, value_digest } => Some((name.clone(), *value_digest)),
                _ => None,
            })
            .collect()
    };
    let (ea, eb) = (envs(before), envs(after));
    for name in ea.keys().chain(eb.keys()).collect::<BTreeSet<_>>() {
        if ea.get(name) != eb.get(name) {
            diffs.push(Difference::Env {
                name: name.clone(),
                before: ea.get(name).copied().flatten(),
                after: eb.get(name).copied().flatten(),
            });
        }
    }
    if diffs.len() > start {
        return;
    }
    let others = |parts: &[InputPart]| -> BTreeMap<u32, u128> {
        parts
            .iter()
            .filter_map(|p| match p {
                InputPart::Other { index, digest } => Some((*index, *digest)),
                _ => None,
            })
            .collect()
    };
    let (oa, ob) = (others(before), others(after));
    for index in oa.keys().chain(ob.keys()).collect::<BTreeSet<_>>() {
        let (b, a) = (oa.get(index).copied(), ob.get(index).copied());
        if b != a {
            diffs.push(Difference::Input {
                index: *index,
                before: b,
                after: a,
            });
        }
    }
}

#[cfg(test)]
mod difference_tests {
    use super::*;

    fn parts() -> KeyParts {
        KeyParts {
            format: 3,
            entry_point: "files".into(),
            type_name: "Tree".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            code: Some(CodeParts {
                digest: 1,
                sources: vec![FileDigest {
                    path: "build.rs".into(),
                    digest: 10,
                }],
                build_deps: vec![("bindgen".into(), "0.72.0".into())],
                env_digest: 0,
            }),
            inputs_digest: 100,
            inputs: vec![
                InputPart::File {
                    path: "wrapper.h".into(),
                    digest: Some(5),
                },
                InputPart::Dir {
                    path: "proto".into(),
                    digest: 6,
                    files: vec![FileDigest {
                        path: "a.proto".into(),
                        digest: 7,
                    }],
                },
                InputPart::Env {
                    name: "TOKEN".into(),
                    value_digest: Some(8),
                },
                InputPart::Other {
                    index: 0,
                    digest: 9,
                },
            ],
        }
    }

    #[test]
    fn each_part_that_differs_is_named() {
        let before = parts();
        assert!(differences(&before, &before).is_empty());

        let mut after = parts();
        after.inputs_digest = 101;
        after.inputs[0] = InputPart::File {
            path: "wrapper.h".into(),
            digest: Some(55),
        };
        let d = differences(&before, &after);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].to_string().starts_with("file(\"wrapper.h\") changed"),
            "{}",
            d[0]
        );

        let mut after = parts();
        after.inputs_digest = 101;
        after.inputs[1] = InputPart::Dir {
            path: "proto".into(),
            digest: 66,
            files: vec![
                FileDigest {
                    path: "a.proto".into(),
                    digest: 7,
                },
                FileDigest {
                    path: "b.proto".into(),
                    digest: 8,
                },
            ],
        };
        assert_eq!(
            differences(&before, &after)[0].to_string(),
            "dir(\"proto\") changed: b.proto added"
        );

        let mut after = parts();
        after.inputs_digest = 101;
        after.inputs[2] = InputPart::Env {
            name: "TOKEN".into(),
            value_digest: Some(88),
        };
        let text = differences(&before, &after)[0].to_string();
        assert!(
            text.starts_with("env(\"TOKEN\") changed (value digest"),
            "{text}"
        );

        let mut after = parts();
        after.inputs_digest = 101;
        after.inputs[3] = InputPart::Other {
            index: 0,
            digest: 99,
        };
        assert!(matches!(
            differences(&before, &after)[0],
            Difference::Input { index: 0, .. }
        ));

        let mut after = parts();
        let code = after.code.as_mut().unwrap();
        code.digest = 2;
        code.build_deps = vec![("bindgen".into(), "0.72.1".into())];
        assert_eq!(
            differences(&before, &after)[0].to_string(),
            "build-dependency `bindgen` 0.72.0 → 0.72.1"
        );

        let mut after = parts();
        after.code.as_mut().unwrap().digest = 2;
        after.code.as_mut().unwrap().sources[0].digest = 11;
        after.type_name = "String".into();
        let d = differences(&before, &after);
        assert_eq!(d.len(), 2);
        assert!(d.iter().any(|d| matches!(d, Difference::TypeName { .. })));
        assert!(d.iter().any(|d| {
            d.to_string()
                .starts_with("build-script source `build.rs` changed")
        }));
    }
}
