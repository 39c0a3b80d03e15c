//! A build script's compiled identity: what the binary is a function of,
//! learnt from the compile itself rather than from the binary's bytes,
//! which embed the paths of the checkout (debug information, panic
//! locations) and would make a moved workspace, a second checkout or
//! another user miss.
//!
//! The identity is the digest of:
//!
//! - rustc's arguments, without those that only say where things are
//!   (the source path, `--out-dir`, `-L`, `-C incremental`), how diagnostics
//!   look, or which lints apply (Cargo caps registry packages' lints except
//!   under `-vv`), and with each `--extern` reduced to its file name, which
//!   carries Cargo's metadata hash of the dependency (its version, source,
//!   features and profile);
//! - the sources rustc read, from its dep-info, by path relative to the
//!   package and by content, and the `env!` variables it recorded there;
//! - for each dependency, the contents of the sources its own dep-info
//!   names outside Cargo's immutable registry and git sources: all of a path
//!   package's (its file name does not change with its contents), and the
//!   files a registry package's build script generated. A dependency
//!   without dep-info counts by its bytes.
//!
//! A path dependency's own path dependencies count through its file name
//! only: an edit there that leaves the direct dependency's sources alone
//! is not seen. (Cargo rebuilds the script then; its run stays keyed by
//! everything it declares.)

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

use crate::args::BuildScriptCompile;
use crate::depinfo::DepInfo;
use crate::record::digest_file;

/// Where a compile happens, as Cargo set it up.
#[derive(Debug, Clone)]
pub(crate) struct Site<'a> {
    /// rustc's working directory (relative paths in the arguments and the
    /// dep-info are relative to it).
    pub(crate) cwd: &'a Path,
    /// The package's directory (`CARGO_MANIFEST_DIR`).
    pub(crate) manifest_dir: &'a Path,
    /// Cargo's home, whose `registry` and `git` directories hold immutable
    /// sources.
    pub(crate) cargo_home: Option<&'a Path>,
}

impl Site<'_> {
    fn absolute(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.cwd.join(path)
        }
    }

    /// Whether `path` is in Cargo's unpacked registry or git sources.
    fn immutable(&self, path: &Path) -> bool {
        self.cargo_home.is_some_and(|home| {
            path.starts_with(home.join("registry")) || path.starts_with(home.join("git"))
        })
    }
}

/// The compiled identity of the build script `compile`, which rustc has
/// just built from `rustc_args`.
///
/// # Errors
///
/// When the dep-info or a source it names cannot be read: the script then
/// runs uncached.
pub(crate) fn compiled_identity(
    rustc_args: &[OsString],
    compile: &BuildScriptCompile,
    site: &Site<'_>,
) -> io::Result<u128> {
    let mut hasher = Xxh3::new();
    hasher.update(b"pcache compiled identity 1\0");
    let source = source_argument(rustc_args);
    for arg in significant_args(rustc_args, source) {
        hasher.update(arg.as_bytes());
        hasher.update(b"\0");
    }
    let dep_info = compile.binary.with_extension("d");
    let dep_info = DepInfo::read(&dep_info, site.cwd)?;
    hash_dep_info(&dep_info, site, &mut hasher)?;
    for path in extern_paths(rustc_args) {
        hash_extern(&site.absolute(&path), site, &mut hasher)?;
    }
    Ok(hasher.digest128())
}

/// What a dependency (an rlib or a proc-macro library) was built from
/// beyond its file name: the contents of the sources its dep-info beside it
/// (Cargo's `deps/<name>-<hash>.d`) names outside the registry, by file
/// name and content, in order; its bytes when it has no dep-info.
fn hash_extern(path: &Path, site: &Site<'_>, hasher: &mut Xxh3) -> io::Result<()> {
    let Some(dep_info) = extern_dep_info(path, site) else {
        hasher.update(b"extern bytes\0");
        hasher.update(&digest_file(path)?.to_le_bytes());
        return Ok(());
    };
    let mut mutable: Vec<(OsString, u128)> = Vec::new();
    for source in dep_info.sources.iter().filter(|s| !site.immutable(s)) {
        let bytes = fs::read(source).map_err(|e| {
            io::Error::new(e.kind(), format!("reading `{}`: {e}", source.display()))
        })?;
        let name = source.file_name().unwrap_or_default().to_owned();
        mutable.push((name, xxhash_rust::xxh3::xxh3_128(&bytes)));
    }
    mutable.sort();
    for (name, digest) in mutable {
        hasher.update(b"extern source\0");
        hasher.update(name.as_encoded_bytes());
        hasher.update(&digest.to_le_bytes());
    }
    Ok(())
}

fn hash_dep_info(dep_info: &DepInfo, site: &Site<'_>, hasher: &mut Xxh3) -> io::Result<()> {
    for source in &dep_info.sources {
        let bytes = fs::read(source).map_err(|e| {
            io::Error::new(e.kind(), format!("reading `{}`: {e}", source.display()))
        })?;
        hasher.update(b"source\0");
        hasher.update(relative_to(source, site.manifest_dir).as_encoded_bytes());
        hasher.update(b"\0");
        hasher.update(&xxhash_rust::xxh3::xxh3_128(&bytes).to_le_bytes());
    }
    for (name, value) in &dep_info.env {
        hasher.update(b"env\0");
        hasher.update(name.as_bytes());
        match value {
            Some(value) => {
                hasher.update(b"=");
                hasher.update(value.as_bytes());
            }
            None => hasher.update(b"\0unset"),
        }
        hasher.update(b"\0");
    }
    Ok(())
}

/// The dep-info Cargo keeps beside the dependency at `path`:
/// `lib<name>-<hash>.rlib` → `<name>-<hash>.d`.
fn extern_dep_info(path: &Path, site: &Site<'_>) -> Option<DepInfo> {
    let stem = path.file_stem()?.to_str()?;
    let stem = stem.strip_prefix("lib").unwrap_or(stem);
    let dep_info = DepInfo::read(&path.parent()?.join(format!("{stem}.d")), site.cwd).ok()?;
    (!dep_info.sources.is_empty()).then_some(dep_info)
}

/// `path` relative to `base`, with `..` where it lies outside, so that a
/// package copied elsewhere together with what it reads gives the same
/// text.
fn relative_to(path: &Path, base: &Path) -> OsString {
    let path: Vec<Component> = path.components().collect();
    let base: Vec<Component> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..base.len() {
        relative.push("..");
    }
    for component in &path[common..] {
        relative.push(component);
    }
    relative.into_os_string()
}

/// The source file rustc compiles: its one positional argument.
fn source_argument(args: &[OsString]) -> Option<usize> {
    let mut index = 0;
    while index < args.len() {
        let arg = args[index].as_encoded_bytes();
        if arg.starts_with(b"-") {
            if takes_value(arg) {
                index += 1;
            }
        } else if arg.ends_with(b".rs") {
            return Some(index);
        }
        index += 1;
    }
    None
}

/// Options given as `--flag VALUE` (two arguments) rather than
/// `--flag=VALUE`.
fn takes_value(arg: &[u8]) -> bool {
    matches!(
        arg,
        b"--crate-name"
            | b"--edition"
            | b"--crate-type"
            | b"--emit"
            | b"--out-dir"
            | b"--extern"
            | b"--cfg"
            | b"--check-cfg"
            | b"--cap-lints"
            | b"--force-warn"
            | b"--error-format"
            | b"--json"
            | b"--diagnostic-width"
            | b"--color"
            | b"--target"
            | b"--sysroot"
            | b"--remap-path-prefix"
            | b"--explain"
            | b"--print"
            | b"-o"
            | b"-C"
            | b"-L"
            | b"-l"
            | b"-A"
            | b"-W"
            | b"-D"
            | b"-F"
            | b"-Z"
    )
}

/// rustc's arguments, paired with their values, without the source file and
/// the options that only place things, and with `--extern` paths reduced to
/// file names. (Arguments that are not UTF-8 count by their lossy text.)
fn significant_args(args: &[OsString], source: Option<usize>) -> Vec<String> {
    let mut kept = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let arg = args[index].to_string_lossy();
        let (flag, value, width) = if takes_value(arg.as_bytes()) {
            let value = args.get(index + 1).map(|v| v.to_string_lossy());
            (&*arg, value, 2)
        } else if let Some(split) = option_split(arg.as_bytes()) {
            // `--flag=value`, or `-Cvalue`-style short options.
            let (flag, value) = arg.split_at(split);
            (
                flag,
                Some(value.strip_prefix('=').unwrap_or(value).into()),
                1,
            )
        } else {
            (&*arg, None, 1)
        };
        let at = index;
        index += width;
        if Some(at) == source {
            continue;
        }
        let value = value.as_deref().unwrap_or("");
        let dropped = match flag {
            "--out-dir" | "-L" | "-o" | "--error-format" | "--json" | "--diagnostic-width"
            | "--color" | "--cap-lints" | "--check-cfg" | "-A" | "-W" | "-D" | "-F"
            | "--force-warn" => true,
            "-C" => value.starts_with("incremental="),
            _ => false,
        };
        if dropped {
            continue;
        }
        kept.push(if width == 1 && value.is_empty() {
            flag.to_owned()
        } else if flag == "--extern" {
            format!("{flag}={}", extern_name(value))
        } else {
            format!("{flag}={value}")
        });
    }
    kept
}

/// Where `--flag=value` or `-Cvalue` splits into flag and value.
fn option_split(arg: &[u8]) -> Option<usize> {
    if arg.starts_with(b"--") {
        arg.iter().position(|&b| b == b'=')
    } else if arg.len() > 2
        && arg[0] == b'-'
        && matches!(
            arg[1],
            b'C' | b'L' | b'l' | b'A' | b'W' | b'D' | b'F' | b'Z'
        )
    {
        Some(2)
    } else {
        None
    }
}

/// `name=path` → `name=<file name>`; a bare name stays.
fn extern_name(value: &str) -> String {
    match value.split_once('=') {
        Some((name, path)) => {
            let file = Path::new(path)
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default();
            format!("{name}={file}")
        }
        None => value.to_owned(),
    }
}

/// The paths of the `--extern name=path` dependencies.
fn extern_paths(args: &[OsString]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = if arg == "--extern" {
            iter.next().map(|v| v.to_string_lossy().into_owned())
        } else {
            arg.to_str()
                .and_then(|a| a.strip_prefix("--extern="))
                .map(str::to_owned)
        };
        if let Some((_, path)) = value.as_deref().and_then(|v| v.split_once('=')) {
            paths.push(PathBuf::from(path));
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    /// A package with a build script, compiled: `<root>/pkg/build.rs` and
    /// its dep-info under `<root>/target/…`, as rustc leaves them.
    struct Compiled {
        root: tempfile::TempDir,
    }

    impl Compiled {
        fn new(build_rs: &str) -> Compiled {
            let root = tempfile::tempdir().unwrap();
            let r = root.path();
            fs::create_dir_all(r.join("pkg/src")).unwrap();
            fs::write(r.join("pkg/build.rs"), build_rs).unwrap();
            fs::write(r.join("shared.h"), "#define X 1").unwrap();
            fs::create_dir_all(r.join("target/build/pkg-1")).unwrap();
            fs::create_dir_all(r.join("target/deps")).unwrap();
            fs::write(
                r.join("target/build/pkg-1/build_script_build-1.d"),
                format!(
                    "{t}/build/pkg-1/build_script_build-1: pkg/build.rs {r}/shared.h\n\n\
                     {t}/build/pkg-1/build_script_build-1.d: pkg/build.rs {r}/shared.h\n\n\
                     pkg/build.rs:\n{r}/shared.h:\n\n# env-dep:CARGO_PKG_NAME=pkg\n",
                    t = r.join("target").display(),
                    r = r.display()
                ),
            )
            .unwrap();
            fs::write(r.join("target/deps/libhelper-9.rlib"), "helper v1").unwrap();
            fs::create_dir_all(r.join("helper/src")).unwrap();
            fs::write(r.join("helper/src/lib.rs"), "pub fn v1() {}").unwrap();
            fs::write(
                r.join("target/deps/helper-9.d"),
                format!("x: {}/helper/src/lib.rs\n", r.display()),
            )
            .unwrap();
            Compiled { root }
        }

        fn args(&self) -> Vec<OsString> {
            let r = self.root.path().display();
            args(&format!(
                "--crate-name build_script_build --edition=2021 pkg/build.rs --error-format=json \
                 --json=diagnostic-rendered-ansi --crate-type bin --emit=dep-info,link \
                 -C debuginfo=2 -C metadata=1 -C extra-filename=-1 \
                 --out-dir {r}/target/build/pkg-1 -C incremental={r}/target/incremental \
                 -L dependency={r}/target/deps --extern helper={r}/target/deps/libhelper-9.rlib"
            ))
        }

        fn identity(&self, cargo_home: Option<&Path>) -> u128 {
            let r = self.root.path();
            let manifest_dir = r.join("pkg");
            let site = Site {
                cwd: r,
                manifest_dir: &manifest_dir,
                cargo_home,
            };
            let compile = BuildScriptCompile::parse(&self.args(), None).unwrap();
            compiled_identity(&self.args(), &compile, &site).unwrap()
        }
    }

    #[test]
    fn the_same_compile_in_another_directory_has_the_same_identity() {
        let a = Compiled::new("fn main() {}");
        let b = Compiled::new("fn main() {}");
        assert_eq!(a.identity(None), b.identity(None));
    }

    #[test]
    fn sources_flags_env_deps_and_path_dependencies_change_the_identity() {
        let c = Compiled::new("fn main() {}");
        let r = c.root.path().to_owned();
        let first = c.identity(None);
        fs::write(r.join("pkg/build.rs"), "fn main() { println!(); }").unwrap();
        let edited = c.identity(None);
        assert_ne!(edited, first);
        // A file included from outside the package.
        fs::write(r.join("shared.h"), "#define X 2").unwrap();
        let included = c.identity(None);
        assert_ne!(included, edited);
        // A path dependency edited, under the same name; its bytes (which
        // hold paths) do not count.
        fs::write(r.join("target/deps/libhelper-9.rlib"), "rebuilt elsewhere").unwrap();
        assert_eq!(c.identity(None), included);
        fs::write(r.join("helper/src/lib.rs"), "pub fn v2() {}").unwrap();
        let helper = c.identity(None);
        assert_ne!(helper, included);
        // A registry dependency: its name says everything…
        let registry = r.join("home");
        let registry_src = registry.join("registry/src/helper");
        fs::create_dir_all(&registry_src).unwrap();
        fs::write(registry_src.join("lib.rs"), "pub fn v1() {}").unwrap();
        let generated = r.join("target/build/helper-2/out/gen.rs");
        fs::create_dir_all(generated.parent().unwrap()).unwrap();
        fs::write(&generated, "// generated").unwrap();
        fs::write(
            r.join("target/deps/helper-9.d"),
            format!(
                "x: {}/lib.rs {}\n",
                registry_src.display(),
                generated.display()
            ),
        )
        .unwrap();
        let immutable = c.identity(Some(&registry));
        fs::write(registry_src.join("lib.rs"), "not read again").unwrap();
        assert_eq!(c.identity(Some(&registry)), immutable);
        // …but for what its build script generated.
        fs::write(&generated, "// generated otherwise").unwrap();
        assert_ne!(c.identity(Some(&registry)), immutable);
        fs::write(&generated, "// generated").unwrap();
        // A value recorded by `env!`.
        let d = r.join("target/build/pkg-1/build_script_build-1.d");
        let text = fs::read_to_string(&d).unwrap();
        fs::write(&d, text.replace("=pkg", "=other")).unwrap();
        assert_ne!(c.identity(Some(&registry)), immutable);
    }

    #[test]
    fn only_placing_arguments_are_ignored() {
        let line = "--crate-name b x/build.rs --out-dir /a -L dependency=/a/deps \
                    -C incremental=/a/i -C opt-level=0 --extern cc=/a/deps/libcc-1.rlib \
                    --error-format=json -Cdebuginfo=2 --cfg feature=\"x\" --cap-lints allow";
        let other = "--crate-name b y/build.rs --out-dir /b -L dependency=/b/deps \
                     -C incremental=/b/i -C opt-level=0 --extern cc=/b/deps/libcc-1.rlib \
                     --error-format=short -Cdebuginfo=2 --cfg feature=\"x\"";
        let kept = |line: &str| {
            let a = args(line);
            significant_args(&a, source_argument(&a))
        };
        assert_eq!(kept(line), kept(other));
        assert_eq!(
            kept(line),
            [
                "--crate-name=b",
                "-C=opt-level=0",
                "--extern=cc=libcc-1.rlib",
                "-C=debuginfo=2",
                "--cfg=feature=\"x\""
            ]
        );
        assert_ne!(
            kept(line),
            kept(&line.replace("opt-level=0", "opt-level=3"))
        );
        assert_ne!(kept(line), kept(&line.replace("libcc-1", "libcc-2")));
    }

    #[test]
    fn paths_outside_the_package_are_written_with_dot_dot() {
        assert_eq!(
            relative_to(Path::new("/w/shared.h"), Path::new("/w/pkg")),
            "../shared.h"
        );
        assert_eq!(
            relative_to(Path::new("/w/pkg/build.rs"), Path::new("/w/pkg")),
            "build.rs"
        );
    }
}
