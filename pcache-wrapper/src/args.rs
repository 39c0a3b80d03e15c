//! What a rustc command line compiles: a build script, or anything else.
//! Cargo compiles `build.rs` as `--crate-name build_script_<name>
//! --crate-type bin` into its build directory, and never sets
//! `CARGO_BIN_NAME` for it (it does for a `[[bin]]`, which can be named
//! alike); the binary is `<out-dir>/<crate-name><extra-filename>`, in both of
//! Cargo's layouts.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// A rustc invocation that compiles a build script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildScriptCompile {
    /// Where the binary is written.
    pub(crate) binary: PathBuf,
    /// Cargo capped the package's lints: it is not a path package.
    pub(crate) capped_lints: bool,
}

impl BuildScriptCompile {
    /// The build script `rustc_args` (the arguments after the rustc program)
    /// compile; `None` for every other compilation, which then passes
    /// through untouched. `bin_name` is `CARGO_BIN_NAME`.
    pub(crate) fn parse(rustc_args: &[OsString], bin_name: Option<&OsStr>) -> Option<Self> {
        // The common case, first and cheaply: not a build script.
        let crate_name = value_of(rustc_args, "--crate-name")?;
        if !crate_name.to_str()?.starts_with("build_script_") || bin_name.is_some() {
            return None;
        }
        let mut crate_types = values_of(rustc_args, "--crate-type");
        if crate_types.next()? != "bin" || crate_types.next().is_some() {
            return None;
        }
        let out_dir = value_of(rustc_args, "--out-dir")?;
        let extra = codegen_value(rustc_args, "extra-filename").unwrap_or_default();
        let mut name = crate_name.to_owned();
        name.push(extra);
        Some(BuildScriptCompile {
            binary: PathBuf::from(out_dir).join(name),
            capped_lints: rustc_args.iter().any(|a| {
                a == "--cap-lints" || a.to_str().is_some_and(|a| a.starts_with("--cap-lints="))
            }),
        })
    }
}

/// Whether a command line (the arguments after the rustc program, as bytes)
/// surely does not compile a build script: it names no crate
/// `build_script_*`. Cheap, and without allocating, for the pass-through
/// that runs before Rust's runtime starts (`early`); when it says yes,
/// [`BuildScriptCompile::parse`] finds no build script either.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn surely_not_a_build_script<'a>(args: impl Iterator<Item = &'a [u8]>) -> bool {
    const FLAG: &[u8] = b"--crate-name";
    const PREFIX: &[u8] = b"build_script_";
    let mut after_flag = false;
    for arg in args {
        let value = if after_flag {
            Some(arg)
        } else {
            arg.strip_prefix(FLAG)
                .and_then(|rest| rest.strip_prefix(b"="))
        };
        if value.is_some_and(|v| v.starts_with(PREFIX)) {
            return false;
        }
        after_flag = arg == FLAG;
    }
    true
}

/// The value of `--flag VALUE` or `--flag=VALUE` (the first).
fn value_of<'a>(args: &'a [OsString], flag: &'a str) -> Option<&'a OsStr> {
    values_of(args, flag).next()
}

/// Every value of `--flag VALUE` or `--flag=VALUE`.
fn values_of<'a>(args: &'a [OsString], flag: &'a str) -> impl Iterator<Item = &'a OsStr> + 'a {
    let mut iter = args.iter();
    std::iter::from_fn(move || {
        while let Some(arg) = iter.next() {
            if arg == flag {
                return iter.next().map(OsString::as_os_str);
            }
            if let Some(value) = arg
                .to_str()
                .and_then(|a| a.strip_prefix(flag))
                .and_then(|rest| rest.strip_prefix('='))
            {
                return Some(OsStr::new(value));
            }
        }
        None
    })
}

/// The value of `-C name=VALUE` (or `-Cname=VALUE`).
fn codegen_value<'a>(args: &'a [OsString], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let option = if arg == "-C" {
            iter.next()?.to_str()?
        } else if let Some(option) = arg.to_str().and_then(|a| a.strip_prefix("-C")) {
            option
        } else {
            continue;
        };
        if let Some(value) = option.strip_prefix(&prefix) {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn a_registry_build_script_compile_is_recognised() {
        let compile = BuildScriptCompile::parse(
            &args(
                "--crate-name build_script_build --edition=2021 /r/zstd-sys-2.0.15/build.rs \
                 --crate-type bin --emit=dep-info,link -C embed-bitcode=no \
                 -C metadata=b7d1 -C extra-filename=-67228cd19e374ab2 \
                 --out-dir /t/debug/build/zstd-sys-67228cd19e374ab2 --cap-lints allow",
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            compile.binary,
            PathBuf::from(
                "/t/debug/build/zstd-sys-67228cd19e374ab2/build_script_build-67228cd19e374ab2"
            )
        );
        assert!(compile.capped_lints);
    }

    #[test]
    fn other_compiles_and_binaries_named_alike_are_not_build_scripts() {
        let lib = args("--crate-name zstd_sys --crate-type lib --out-dir /t/deps");
        assert_eq!(BuildScriptCompile::parse(&lib, None), None);
        let bin = args("--crate-name build_script_build --crate-type bin --out-dir /t/deps");
        assert_eq!(
            BuildScriptCompile::parse(&bin, Some(OsStr::new("build-script-build"))),
            None
        );
        let two =
            args("--crate-name build_script_build --crate-type bin --crate-type lib --out-dir /o");
        assert_eq!(BuildScriptCompile::parse(&two, None), None);
        assert_eq!(BuildScriptCompile::parse(&args("-vV"), None), None);
        // The new layout: no extra filename, `=` forms, and a path package.
        let new = args(
            "--crate-name=build_script_build --crate-type=bin --out-dir=/b/debug/build/x/abc/out",
        );
        let compile = BuildScriptCompile::parse(&new, None).unwrap();
        assert_eq!(
            compile.binary,
            PathBuf::from("/b/debug/build/x/abc/out/build_script_build")
        );
        assert!(!compile.capped_lints);
    }

    #[test]
    fn the_early_check_defers_every_build_script_and_passes_the_rest() {
        let surely_not =
            |line: &str| surely_not_a_build_script(line.split_whitespace().map(str::as_bytes));
        assert!(surely_not("-vV"));
        assert!(surely_not("- --crate-name ___ --print=file-names"));
        assert!(surely_not("--crate-name zstd_sys --crate-type lib"));
        assert!(surely_not("--crate-name"));
        assert!(!surely_not(
            "--crate-name build_script_build --crate-type bin"
        ));
        assert!(!surely_not(
            "--crate-name=build_script_main --crate-type=bin"
        ));
        // Named alike but not a build script: `main` decides.
        assert!(!surely_not(
            "--crate-name build_script_build --crate-type lib"
        ));
    }

    /// Every command line made of these words, up to four of them, that the
    /// early check lets through is one `parse` finds no build script in.
    #[test]
    fn the_early_check_never_passes_what_parse_calls_a_build_script() {
        let words = [
            "--crate-name",
            "build_script_build",
            "--crate-name=build_script_x",
            "--crate-name=lib",
            "lib",
            "--crate-type",
            "bin",
            "--crate-type=bin",
            "--out-dir",
            "/o",
            "--out-dir=/o",
        ];
        // Every line of up to four words, each counted in base `words.len()`.
        let mut lines: Vec<Vec<&str>> = vec![Vec::new()];
        for len in 1..=4u32 {
            for n in 0..words.len().pow(len) {
                let line = (0..len)
                    .scan(n, |rest, _| {
                        let word = words[*rest % words.len()];
                        *rest /= words.len();
                        Some(word)
                    })
                    .collect();
                lines.push(line);
            }
        }
        let mut deferred = 0;
        for line in &lines {
            let os: Vec<OsString> = line.iter().map(OsString::from).collect();
            if surely_not_a_build_script(line.iter().map(|w| w.as_bytes())) {
                assert_eq!(BuildScriptCompile::parse(&os, None), None, "{line:?}");
            } else {
                deferred += 1;
            }
        }
        assert!(deferred > 0 && deferred < lines.len());
    }
}
