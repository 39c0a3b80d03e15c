//! The rustc wrapper: Cargo runs `pcache-wrapper <rustc> <args>…` for every
//! compilation. Everything but a build script's compilation is handed to
//! rustc (or to the wrapper the user had, such as sccache) by `exec`,
//! untouched; a build script is compiled the same way, then the launcher is
//! put in its place (see `record`), when its package is one whose build
//! script pcache caches.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use pcache_core::config::{self, Env};

use crate::args::BuildScriptCompile;
use crate::{identity, record};

/// Runs the wrapper on its arguments (`args[0]` is this program).
pub(crate) fn run(args: &[OsString]) -> ExitCode {
    let Some(program) = args.get(1) else {
        eprintln!(
            "pcache-wrapper is a rustc wrapper: Cargo runs it as `pcache-wrapper <rustc> <args>`; \
             `cargo pcache enable` sets it up"
        );
        return ExitCode::from(2);
    };
    let rustc_args = &args[2..];
    let compile =
        BuildScriptCompile::parse(rustc_args, std::env::var_os("CARGO_BIN_NAME").as_deref());
    let mut command = compilation(program, rustc_args);
    let Some(compile) = compile else {
        return pass_through(command);
    };
    let status = match command.status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: pcache-wrapper: failed to run {command:?}: {e}");
            return ExitCode::from(101);
        }
    };
    if status.success() && in_scope(&compile) {
        let installed = std::env::current_exe().and_then(|launcher| {
            let identity = compiled_identity(rustc_args, &compile)?;
            record::install(
                &compile.binary,
                &launcher,
                identity,
                !compile.capped_lints && !from_cargo_home(),
            )
        });
        if let Err(e) = installed {
            eprintln!(
                "warning: pcache: the build script `{}` runs uncached: failed to install its launcher: {e}",
                compile.binary.display()
            );
        }
    }
    exit_code(status)
}

/// The command that compiles: the wrapper the user had, given the whole
/// command line as Cargo would have given it, or else `program` (rustc).
pub(crate) fn compilation(program: &OsStr, rustc_args: &[OsString]) -> Command {
    let mut command = match chained_wrapper() {
        Some(chained) => {
            let mut command = Command::new(chained);
            command.arg(program);
            command
        }
        None => Command::new(program),
    };
    command.args(rustc_args);
    command
}

/// The compiled identity of the build script rustc has just built.
fn compiled_identity(rustc_args: &[OsString], compile: &BuildScriptCompile) -> io::Result<u128> {
    let cwd = std::env::current_dir()?;
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cwd.clone());
    let cargo_home = config::cargo_home();
    let site = identity::Site {
        cwd: &cwd,
        manifest_dir: &manifest_dir,
        cargo_home: cargo_home.as_deref(),
    };
    identity::compiled_identity(rustc_args, compile, &site)
}

/// The wrapper the user had (`PCACHE_RUSTC_WRAPPER`), unless it is this
/// program (a configuration that would loop).
fn chained_wrapper() -> Option<OsString> {
    let chained = config::chained_wrapper(&Env::process())?;
    let this = std::env::current_exe().ok();
    let same = this.is_some_and(|this| {
        let chained = Path::new(&chained);
        chained == this
            || std::fs::canonicalize(chained)
                .is_ok_and(|c| std::fs::canonicalize(&this).is_ok_and(|t| c == t))
    });
    (!same).then_some(chained)
}

/// Replaces this process by `command` where the platform can (nothing of
/// the wrapper stays between Cargo and rustc), else runs it and exits as it
/// did.
fn pass_through(mut command: Command) -> ExitCode {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = command.exec();
        eprintln!("error: pcache-wrapper: failed to run {command:?}: {e}");
        ExitCode::from(101)
    }
    #[cfg(not(unix))]
    {
        match command.status() {
            Ok(status) => exit_code(status),
            Err(e) => {
                eprintln!("error: pcache-wrapper: failed to run {command:?}: {e}");
                ExitCode::from(101)
            }
        }
    }
}

/// The exit code of a finished child, for this process to exit with.
pub(crate) fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(101),
    }
}

/// Whether the package being compiled is one whose build script pcache
/// caches: a registry or git package (Cargo caps their lints, and unpacks
/// them under `$CARGO_HOME`), or a path package named in
/// `PCACHE_BUILD_SCRIPTS` or `[workspace.metadata.pcache] build-scripts`;
/// not one skipped there (`!name`).
fn in_scope(compile: &BuildScriptCompile) -> bool {
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    // Cargo compiles registry and git packages from their own directory,
    // where the workspace's metadata is not found: for them, only the
    // variable (or Cargo's `[env]`) can skip.
    let scripts = config::build_scripts(&Env::process(), &workspace_settings());
    if scripts.as_ref().is_some_and(|s| s.skips(&package)) {
        return false;
    }
    if compile.capped_lints || from_cargo_home() {
        return true;
    }
    scripts.is_some_and(|s| s.includes(&package))
}

/// Whether the package's sources are under `$CARGO_HOME/registry` or
/// `$CARGO_HOME/git`, where Cargo unpacks registry and git packages. (Cargo
/// caps their lints too, except under `-vv`.)
fn from_cargo_home() -> bool {
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        return false;
    };
    crate::source::immutable_source(&manifest_dir, config::cargo_home().as_deref()).is_some()
}

/// `[workspace.metadata.pcache]` of the workspace being built: Cargo runs
/// rustc for a workspace member from the workspace root; for other path
/// packages, the nearest workspace above the package is looked for.
fn workspace_settings() -> config::Settings {
    let dirs = std::env::current_dir()
        .into_iter()
        .chain(std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from));
    for start in dirs {
        for dir in start.ancestors() {
            if let Some(settings) = workspace_table(&dir.join("Cargo.toml")) {
                return settings;
            }
        }
    }
    config::Settings::default()
}

/// The settings of the manifest at `path`, if it declares a workspace.
fn workspace_table(path: &Path) -> Option<config::Settings> {
    let text = std::fs::read_to_string(path).ok()?;
    if !text.contains("[workspace") {
        return None;
    }
    let table: toml::Table = text.parse().ok()?;
    let workspace = table.get("workspace")?;
    Some(
        workspace
            .get("metadata")
            .and_then(|m| m.get("pcache"))
            .and_then(|p| p.clone().try_into().ok())
            .unwrap_or_default(),
    )
}

/// Whether `path` names this program (used by the launcher to tell whether
/// Cargo still runs pcache's wrapper): `pcache-wrapper`, or a build of it
/// named `pcache-wrapper-<something>`.
pub(crate) fn is_pcache_wrapper(path: &OsStr) -> bool {
    Path::new(path)
        .file_stem()
        .and_then(|stem| stem.to_str())
        .is_some_and(|stem| stem == "pcache-wrapper" || stem.starts_with("pcache-wrapper-"))
}
