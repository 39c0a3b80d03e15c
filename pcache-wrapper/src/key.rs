//! A run's key, in two levels. Level 1 is known before the script runs:
//! the package (name, version, sources by content), the script's compiled
//! identity, the rustc, and the variables Cargo and C build tools hand the
//! script — `TARGET`, `HOST`, the profile, features and `CARGO_CFG_*`,
//! `CARGO_ENCODED_RUSTFLAGS`, `CC`, `CFLAGS`, `PKG_CONFIG_*` and their
//! kin, and every `DEP_*` variable, with paths into a producer's `OUT_DIR`
//! written as that producer's run key, so a consumer's key follows the
//! producer's entry and not where it was built. Never `OUT_DIR`,
//! `NUM_JOBS`, the jobserver or the terminal. Level 2 is learnt from the
//! run: the values of the variables and the contents of the files it
//! declared.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use pcache_core::record::{CodeParts, InputPart, KeyParts};
use pcache_core::{FORMAT_VERSION, Key};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::declare::{self, Declarations};
use crate::source;

/// The file, in a producer's `OUT_DIR`, that names its run.
pub(crate) const RUN_MARKER: &str = ".pcache-run";

/// Variables C build tools (cc, cmake, pkg-config, autotools) read, by exact
/// name.
const TOOL_VARS: &[&str] = &[
    "SDKROOT",
    "MACOSX_DEPLOYMENT_TARGET",
    "IPHONEOS_DEPLOYMENT_TARGET",
    "TVOS_DEPLOYMENT_TARGET",
    "WATCHOS_DEPLOYMENT_TARGET",
    "ANDROID_NDK_HOME",
    "ANDROID_NDK_ROOT",
    "NDK_HOME",
    "CUDA_PATH",
    "CC_FORCE_DISABLE",
    "CC_SHELL_ESCAPED_FLAGS",
    "CC_KNOWN_WRAPPER_CUSTOM",
    "CC_ENABLE_DEBUG_OUTPUT",
];

/// The tools and flags cc-rs and its kin read as `NAME`, `HOST_NAME`,
/// `TARGET_NAME` and `NAME_<target>` (the target with `-` or `_`).
const PER_TARGET_VARS: &[&str] = &[
    "CC", "CXX", "AR", "RANLIB", "LD", "NM", "OBJCOPY", "STRIP", "CFLAGS", "CXXFLAGS", "CPPFLAGS",
    "LDFLAGS", "ARFLAGS", "ASMFLAGS",
];

/// Prefixes of whole families of variables C build tools read.
const TOOL_PREFIXES: &[&str] = &["CRATE_CC_", "PKG_CONFIG", "CMAKE"];

/// Variables Cargo sets that say what the script builds for.
const CARGO_VARS: &[&str] = &[
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_MANIFEST_LINKS",
    "RUSTC_LINKER",
    "CARGO_PKG_NAME",
    "CARGO_PKG_VERSION",
];

/// Prefixes of variables Cargo sets per package and target.
const CARGO_PREFIXES: &[&str] = &["CARGO_FEATURE_", "CARGO_CFG_", "DEP_"];

/// Variables never keyed, even when a script names them in
/// `rerun-if-env-changed`: where this run writes (`OUT_DIR`, different in
/// every checkout), how many jobs it may run, the jobserver, the terminal.
const NEVER_KEYED: &[&str] = &[
    "OUT_DIR",
    "NUM_JOBS",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "TERM",
    "COLUMNS",
    "LINES",
];

/// Whether a variable a script declared keys its run (level 2).
fn is_declared_keyed(name: &str) -> bool {
    !NEVER_KEYED.contains(&name) && !name.starts_with("CARGO_TERM_")
}

/// Whether the variable `name` is part of a run's level-1 key, for a
/// script building for `targets` (`TARGET` and `HOST`).
pub(crate) fn is_keyed(name: &str, targets: &[&str]) -> bool {
    CARGO_VARS.contains(&name)
        || TOOL_VARS.contains(&name)
        || CARGO_PREFIXES.iter().any(|p| name.starts_with(p))
        || TOOL_PREFIXES.iter().any(|p| name.starts_with(p))
        || is_tool_var(name, targets)
}

/// `CC`, `HOST_CC`, `TARGET_CC`, `CC_x86_64-unknown-linux-gnu`,
/// `CC_x86_64_unknown_linux_gnu`, and so on for every tool.
fn is_tool_var(name: &str, targets: &[&str]) -> bool {
    let base = name
        .strip_prefix("HOST_")
        .or_else(|| name.strip_prefix("TARGET_"))
        .unwrap_or(name);
    if PER_TARGET_VARS.contains(&base) {
        return true;
    }
    PER_TARGET_VARS.iter().any(|tool| {
        name.strip_prefix(tool)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|suffix| {
                targets
                    .iter()
                    .any(|t| suffix == *t || suffix == t.replace('-', "_"))
            })
    })
}

/// What level 1 is computed from.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) vars: &'a BTreeMap<String, String>,
    pub(crate) manifest_dir: &'a Path,
    pub(crate) out_dir: &'a Path,
    /// The script's compiled identity (the launch record's digest).
    pub(crate) script: u128,
    pub(crate) local: bool,
    /// Where digests are remembered.
    pub(crate) memo_root: Option<&'a Path>,
    /// Cargo's home, where registry and git packages are unpacked.
    pub(crate) cargo_home: Option<&'a Path>,
}

/// Level 1: the key, and what it is made of (for `why`).
#[derive(Debug, Clone)]
pub(crate) struct Level1 {
    pub(crate) key: Key,
    parts: KeyParts,
    /// A `DEP_*` value names paths of this machine (outside any producer's
    /// `OUT_DIR`): the run is bound to this machine.
    pub(crate) names_machine_paths: bool,
}

#[derive(Serialize)]
struct Material<'a> {
    kind: &'static str,
    format: u16,
    local: bool,
    source: u128,
    script: u128,
    rustc: u128,
    vars: &'a [(String, String)],
}

/// Computes level 1 for the run described by `ctx`.
///
/// # Errors
///
/// When the package's sources cannot be read.
pub(crate) fn level1(ctx: &Context<'_>) -> Result<Level1, String> {
    let source =
        source::package_digest(ctx.manifest_dir, ctx.out_dir, ctx.cargo_home, ctx.memo_root)
            .map_err(|e| {
                format!(
                    "failed to read the package's sources in `{}`: {e}",
                    ctx.manifest_dir.display()
                )
            })?;
    let rustc = ctx
        .vars
        .get("RUSTC")
        .map_or(0, |r| source::rustc_identity(Path::new(r), ctx.memo_root));
    let mut names_machine_paths = false;
    let targets: Vec<&str> = ["TARGET", "HOST"]
        .iter()
        .filter_map(|v| ctx.vars.get(*v).map(String::as_str))
        .collect();
    let vars: Vec<(String, String)> = ctx
        .vars
        .iter()
        .filter(|(name, _)| is_keyed(name, &targets))
        .map(|(name, value)| {
            let value = if name.starts_with("DEP_") {
                let (normalized, machine) = normalize_dep(value);
                names_machine_paths |= machine;
                normalized
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect();
    let key = Key::new(&Material {
        kind: "build-script run",
        format: FORMAT_VERSION,
        local: ctx.local,
        source,
        script: ctx.script,
        rustc,
        vars: &vars,
    })
    .map_err(|e| e.to_string())?;
    let mut inputs = vec![
        InputPart::File {
            path: "(package sources)".into(),
            digest: Some(source),
        },
        InputPart::File {
            path: "(rustc -vV)".into(),
            digest: Some(rustc),
        },
    ];
    inputs.extend(vars.iter().map(|(name, value)| InputPart::Env {
        name: name.clone(),
        value_digest: Some(xxh3_128(value.as_bytes())),
    }));
    let parts = KeyParts {
        format: FORMAT_VERSION,
        entry_point: "build-script".into(),
        type_name: String::new(),
        target: ctx.vars.get("TARGET").cloned().unwrap_or_default(),
        code: Some(CodeParts {
            digest: ctx.script,
            ..CodeParts::default()
        }),
        inputs_digest: xxh3_128(key.to_string().as_bytes()),
        inputs,
    };
    Ok(Level1 {
        key,
        parts,
        names_machine_paths,
    })
}

/// Level 2: the key of a run with these declarations, and its parts.
#[derive(Debug, Clone)]
pub(crate) struct Level2 {
    pub(crate) key: Key,
    pub(crate) parts: KeyParts,
    /// A declared file is outside the package, or the run named paths of
    /// this machine: the run is bound to this machine.
    pub(crate) names_machine_paths: bool,
}

#[derive(Serialize)]
struct Declared<'a> {
    level1: &'a str,
    env: Vec<(&'a str, Option<u128>)>,
    files: Vec<(&'a str, Option<u128>)>,
    machine: Vec<(&'a str, Option<u128>)>,
}

/// Level 2 for `declarations`, from the current values of what they name.
pub(crate) fn level2(level1: &Level1, declarations: &Declarations, ctx: &Context<'_>) -> Level2 {
    let level1_key = level1.key.to_string();
    let env: Vec<(&str, Option<u128>)> = declarations
        .env
        .iter()
        .filter(|name| is_declared_keyed(name))
        .map(|name| {
            // `DEP_*` as in level 1: a producer's run, not its path.
            let value = ctx.vars.get(name).map(|v| {
                if name.starts_with("DEP_") {
                    xxh3_128(normalize_dep(v).0.as_bytes())
                } else {
                    xxh3_128(v.as_bytes())
                }
            });
            (name.as_str(), value)
        })
        .collect();
    // A registry or git package's own files never change: whether they are
    // there is all that can differ.
    let immutable = source::immutable_source(ctx.manifest_dir, ctx.cargo_home).is_some();
    let files: Vec<(&str, Option<u128>)> = declarations
        .files
        .iter()
        .map(|file| {
            let path = Declarations::resolve(file, ctx.manifest_dir);
            let digest = if immutable && !Declarations::is_outside(file) {
                path.exists().then_some(0)
            } else {
                source::path_digest(&path, ctx.memo_root)
            };
            (file.as_str(), digest)
        })
        .collect();
    let machine: Vec<(&str, Option<u128>)> = declarations
        .machine
        .iter()
        .map(|path| {
            (
                path.as_str(),
                source::machine_digest(Path::new(path), ctx.memo_root),
            )
        })
        .collect();
    // Plain data always serializes.
    let key = Key::new(&Declared {
        level1: &level1_key,
        env: env.clone(),
        files: files.clone(),
        machine: machine.clone(),
    })
    .expect("level-2 material serializes");
    let mut parts = level1.parts.clone();
    parts.inputs_digest = xxh3_128(key.to_string().as_bytes());
    parts
        .inputs
        .extend(env.iter().map(|(name, digest)| InputPart::Env {
            name: (*name).to_owned(),
            value_digest: *digest,
        }));
    parts.inputs.extend(
        files
            .iter()
            .chain(&machine)
            .map(|(path, digest)| InputPart::File {
                path: (*path).to_owned(),
                digest: *digest,
            }),
    );
    Level2 {
        key,
        parts,
        names_machine_paths: declarations.host_bound(),
    }
}

/// A `DEP_*` value with every path into a producer's `OUT_DIR` written as
/// `{pcache-run:<key>}` (the producer's run, from its marker), and whether
/// it names other existing paths of this machine.
pub(crate) fn normalize_dep(value: &str) -> (String, bool) {
    let mut normalized = value.to_owned();
    let mut machine = false;
    for path in declare::absolute_paths(value) {
        match producer_of(Path::new(path)) {
            Some((out_dir, run)) => {
                let out_dir = out_dir.to_string_lossy();
                normalized = normalized.replace(out_dir.as_ref(), &format!("{{pcache-run:{run}}}"));
            }
            None => machine |= Path::new(path).exists(),
        }
    }
    (normalized, machine)
}

/// The producer's `OUT_DIR` a path lies in, and its run key, found by the
/// marker the producer's launcher left there.
fn producer_of(path: &Path) -> Option<(PathBuf, String)> {
    path.ancestors().find_map(|dir| {
        let run = fs::read_to_string(dir.join(RUN_MARKER)).ok()?;
        let run = run.trim();
        run.parse::<Key>().ok()?;
        Some((dir.to_owned(), run.to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        vars: &'a BTreeMap<String, String>,
        pkg: &'a Path,
        out: &'a Path,
    ) -> Context<'a> {
        Context {
            vars,
            manifest_dir: pkg,
            out_dir: out,
            script: 7,
            local: false,
            memo_root: None,
            cargo_home: None,
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn level1_follows_what_the_script_builds_for_and_ignores_the_rest() {
        let pkg = tempfile::tempdir().unwrap();
        fs::write(pkg.path().join("build.rs"), "fn main() {}").unwrap();
        let out = pkg.path().join("target/out");
        let base = vars(&[
            ("TARGET", "x86_64-unknown-linux-gnu"),
            ("OPT_LEVEL", "0"),
            ("CC", "gcc"),
        ]);
        let key = |v: &BTreeMap<String, String>| level1(&context(v, pkg.path(), &out)).unwrap().key;
        let first = key(&base);
        let mut noise = base.clone();
        for (k, v) in [
            ("OUT_DIR", "/elsewhere/out"),
            ("NUM_JOBS", "64"),
            ("CARGO_MAKEFLAGS", "-j --jobserver-fds=3,4"),
            ("TERM", "dumb"),
            ("PATH", "/usr/bin"),
            ("CCACHE_DIR", "/x"),
            ("CC_LOG", "/tmp/log"),
            ("CFLAGS_aarch64_unknown_linux_gnu", "-O3"),
        ] {
            noise.insert(k.into(), v.into());
        }
        assert_eq!(key(&noise), first);
        for (k, v) in [
            ("OPT_LEVEL", "3"),
            ("CC", "clang"),
            ("CFLAGS_x86_64_unknown_linux_gnu", "-O3"),
            ("CC_x86_64-unknown-linux-gnu", "clang"),
            ("TARGET_CXX", "clang++"),
            ("CRATE_CC_NO_DEFAULTS", "1"),
            ("CARGO_FEATURE_BUNDLED", "1"),
            ("DEP_Z_INCLUDE", "/inc"),
            ("PKG_CONFIG_PATH", "/p"),
        ] {
            let mut changed = base.clone();
            changed.insert(k.into(), v.into());
            assert_ne!(key(&changed), first, "{k}");
        }
        fs::write(pkg.path().join("build.rs"), "fn main() { }").unwrap();
        assert_ne!(key(&base), first, "the package's sources");
    }

    #[test]
    fn level2_ignores_declared_variables_that_differ_per_checkout() {
        let pkg = tempfile::tempdir().unwrap();
        fs::write(pkg.path().join("build.rs"), "fn main() {}").unwrap();
        let out = pkg.path().join("target/out");
        // ring, for one, declares `rerun-if-env-changed=OUT_DIR`.
        let declarations = Declarations {
            env: [
                "OUT_DIR",
                "NUM_JOBS",
                "CARGO_MAKEFLAGS",
                "TERM",
                "RING_PREGENERATE_ASM",
            ]
            .map(str::to_owned)
            .to_vec(),
            files: Vec::new(),
            machine: Vec::new(),
        };
        let key = |v: &BTreeMap<String, String>| {
            let ctx = context(v, pkg.path(), &out);
            level2(&level1(&ctx).unwrap(), &declarations, &ctx).key
        };
        let here = vars(&[
            ("TARGET", "x86_64-unknown-linux-gnu"),
            ("OUT_DIR", "/checkout-a/target/debug/build/ring-1/out"),
            ("NUM_JOBS", "2"),
            ("TERM", "xterm"),
        ]);
        let elsewhere = vars(&[
            ("TARGET", "x86_64-unknown-linux-gnu"),
            ("OUT_DIR", "/checkout-b/target/debug/build/ring-2/out"),
            ("NUM_JOBS", "64"),
            ("CARGO_MAKEFLAGS", "-j --jobserver-fds=3,4"),
        ]);
        assert_eq!(key(&here), key(&elsewhere));
        let mut asked = here.clone();
        asked.insert("RING_PREGENERATE_ASM".into(), "1".into());
        assert_ne!(
            key(&asked),
            key(&here),
            "what the script declared still keys"
        );
    }

    #[test]
    fn a_consumer_follows_its_producer_s_run_not_its_path() {
        let root = tempfile::tempdir().unwrap();
        let producer = |name: &str, run: &str| {
            let out = root.path().join(name).join("debug/build/z-1/out");
            fs::create_dir_all(out.join("include")).unwrap();
            fs::write(out.join(RUN_MARKER), run).unwrap();
            out
        };
        let run = Key::new("the producer's run").unwrap().to_string();
        let a = producer("checkout-a", &run);
        let b = producer("checkout-b", &run);
        let (na, machine_a) = normalize_dep(&format!("{}/include", a.display()));
        let (nb, _) = normalize_dep(&format!("{}/include", b.display()));
        assert_eq!(na, format!("{{pcache-run:{run}}}/include"));
        assert_eq!(na, nb);
        assert!(!machine_a);
        // Another run of the producer is another key.
        let other = producer("checkout-c", &Key::new("another run").unwrap().to_string());
        assert_ne!(normalize_dep(&format!("{}/include", other.display())).0, na);
        // A path of the machine that no producer made.
        assert!(normalize_dep("/usr").1);
        assert_eq!(normalize_dep("42"), ("42".to_owned(), false));
    }
}
