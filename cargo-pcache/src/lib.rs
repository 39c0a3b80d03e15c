//! `cargo pcache`: inspect and manage the caches that
//! [pcache-build](https://docs.rs/pcache-build) keeps for build scripts.
//!
//! ```text
//! cargo pcache ls     [NAME…] [-p PKG]… [--json] [--entries]
//! cargo pcache flush  [NAME…] [-p PKG]… [--expiry DURATION] [--dry-run]
//! cargo pcache clear  [NAME…] [-p PKG]… [--dry-run]
//! cargo pcache delete [NAME…] [-p PKG]… [--dry-run]
//! cargo pcache stats  [NAME…] [-p PKG]… [--json] [--since DURATION] [--reset]
//! cargo pcache why    NAME [-p PKG] [--json]
//! cargo pcache gc     [--max-size SIZE] [--dry-run] [--json]
//! cargo pcache push   [NAME…] [-p PKG]… [--dry-run] [--json]
//! cargo pcache pull   [NAME…] [-p PKG]… [--dry-run] [--json]
//! cargo pcache remote [--json]
//! common: --manifest-path PATH, --target-dir DIR, -q/--quiet, -v/--verbose, --color WHEN
//! ```
//!
//! The binary is a thin shell around [`run`], which tests and benchmarks
//! call directly:
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! let target = dir.path().join("target");
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let args = ["cargo-pcache", "pcache", "ls", "--json", "--target-dir", target.to_str().unwrap()];
//! let status = cargo_pcache::run(args, &mut out, &mut err);
//! assert_eq!(status, std::process::ExitCode::SUCCESS);
//! let listing: serde_json::Value = serde_json::from_slice(&out)?;
//! assert_eq!(listing["caches"].as_array().unwrap().len(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Exit status: 0 success, 1 error (the message names the path and the
//! cause), 2 usage. Results go to stdout; warnings, errors and progress bars
//! to stderr. Running beside builds is safe: entries that vanish while being
//! listed are skipped, and a build in flight sees at worst a miss.
#![deny(missing_docs)]

mod caches;
mod cli;
mod commands;
mod output;
mod remote;
mod workspace;

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use pcache_core::config::{self, Env};

use crate::cli::{CargoCli, ColorWhen, Command, PcacheArgs};
use crate::commands::Ctx;
use crate::commands::remove::Verb;
use crate::output::{Paint, Style};
use crate::workspace::Workspace;

/// The streams `cargo pcache` writes to: results on `stdout`; warnings,
/// errors and progress bars on `stderr`.
pub struct Streams<'a> {
    /// Where results go.
    pub stdout: &'a mut dyn Write,
    /// Where messages and progress bars go.
    pub stderr: &'a mut dyn Write,
    /// Whether `stdout` is a terminal: colours with `--color auto`.
    pub stdout_is_terminal: bool,
    /// Whether `stderr` is a terminal: progress bars, coloured messages.
    pub stderr_is_terminal: bool,
}

impl std::fmt::Debug for Streams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("stdout_is_terminal", &self.stdout_is_terminal)
            .field("stderr_is_terminal", &self.stderr_is_terminal)
            .finish_non_exhaustive()
    }
}

/// Runs `cargo pcache` with `args` (as in `std::env::args_os()`: the binary
/// first, then `pcache`, then the subcommand; the `pcache` may be left out),
/// writing results to `stdout` and messages to `stderr`, neither of which
/// is a terminal (see [`run_with`] for terminals).
pub fn run<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    run_with(
        args,
        Streams {
            stdout,
            stderr,
            stdout_is_terminal: false,
            stderr_is_terminal: false,
        },
    )
}

/// Runs `cargo pcache` as the binary does: with the process's arguments,
/// stdout and stderr (colours and progress bars where they are terminals).
pub fn run_process() -> ExitCode {
    use std::io::IsTerminal;
    let (stdout, stderr) = (io::stdout(), io::stderr());
    run_with(
        std::env::args_os(),
        Streams {
            stdout_is_terminal: stdout.is_terminal(),
            stderr_is_terminal: stderr.is_terminal(),
            stdout: &mut stdout.lock(),
            stderr: &mut stderr.lock(),
        },
    )
}

/// Like [`run`], with streams that may be terminals: what the binary does.
pub fn run_with<I, T>(args: I, streams: Streams<'_>) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let Streams {
        stdout,
        stderr,
        stdout_is_terminal,
        stderr_is_terminal,
    } = streams;
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // Run directly as `cargo-pcache ls`: behave as `cargo pcache ls`.
    if args.get(1).is_none_or(|a| a != "pcache") {
        args.insert(1.min(args.len()), "pcache".into());
    }
    let cli = match CargoCli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            let _ = if e.use_stderr() {
                write!(stderr, "{text}")
            } else {
                write!(stdout, "{text}")
            };
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let CargoCli::Pcache(args) = cli;
    if let Command::RemoteHelper { args } = &args.command {
        return remote::helper::run(args, stderr);
    }
    // Settings come from the environment and Cargo's configuration files
    // that apply here, as they do for builds started here.
    let env = Env::cargo(&std::env::current_dir().unwrap_or_default());
    let mut problems = env.warnings().to_vec();
    let color = args
        .global
        .color
        .or_else(|| match config::term_color(&env, &mut problems)? {
            "always" => Some(ColorWhen::Always),
            "never" => Some(ColorWhen::Never),
            _ => Some(ColorWhen::Auto),
        });
    let style = Style::new(
        color.unwrap_or(ColorWhen::Auto),
        env.get("NO_COLOR").is_some_and(|v| !v.is_empty()),
        args.global.quiet,
        args.global.verbose > 0,
        stdout_is_terminal,
        stderr_is_terminal,
    );
    if !style.quiet {
        for problem in &problems {
            let _ = writeln!(
                stderr,
                "{}: {problem}",
                style.paint_err(Paint::Yellow, "warning")
            );
        }
    }
    match execute(args, env, style, stdout, stderr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(stderr, "{}: {e:#}", style.paint_err(Paint::Red, "error"));
            ExitCode::FAILURE
        }
    }
}

fn execute(
    args: PcacheArgs,
    env: Env,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    match &args.command {
        // About the remote alone: no workspace needed.
        Command::Remote(a) => {
            // The refused counts live in the pcache directories, when there
            // is a workspace to find them by.
            let roots: Vec<std::path::PathBuf> = Workspace::discover(&args.global, &env)
                .map(|w| std::iter::once(w.pcache_root).chain(w.home_root).collect())
                .unwrap_or_default();
            return commands::remote::run(style, &env, out, a, &roots);
        }
        Command::Keygen(a) => return commands::keygen::run(a, out),
        Command::Enable(a) => {
            return commands::enable::enable(&args.global, a, &env, style, out, err);
        }
        Command::Disable(a) => return commands::enable::disable(&args.global, a, &env, out),
        _ => {}
    }
    let workspace = Workspace::discover(&args.global, &env)?;
    let found = caches::discover(&workspace.pcache_root, workspace.home_root.as_deref())?;
    let mut ctx = Ctx {
        workspace,
        env,
        style,
        out,
        err,
    };
    for warning in ctx.workspace.warnings.clone().iter().chain(&found.warnings) {
        ctx.warn(warning);
    }
    let why_selection;
    let selection = match &args.command {
        Command::Ls(a) => &a.selection,
        Command::Flush(a) => &a.selection,
        Command::Clear(a) | Command::Delete(a) => &a.selection,
        Command::Stats(a) => &a.selection,
        Command::Why(a) => {
            why_selection = cli::Selection {
                names: vec![a.name.clone()],
                packages: a.package.iter().cloned().collect(),
            };
            &why_selection
        }
        Command::Push(a) => &a.selection,
        // The caches to pull may not exist here yet.
        Command::Gc(_)
        | Command::Pull(_)
        | Command::Remote(_)
        | Command::Keygen(_)
        | Command::Enable(_)
        | Command::Disable(_)
        | Command::RemoteHelper { .. } => &cli::Selection::default(),
    };
    let selected = caches::select(found.caches, selection, &ctx.workspace)?;
    match &args.command {
        Command::Ls(a) => commands::ls::run(&mut ctx, a, selected),
        Command::Stats(a) => commands::stats::run(&mut ctx, a, selected),
        Command::Why(a) => commands::why::run(&mut ctx, a, selected),
        Command::Gc(a) => commands::gc::run(&mut ctx, a, selected),
        Command::Flush(a) => {
            commands::remove::run(&mut ctx, Verb::Flush(a.expiry), selected, a.dry_run)
        }
        Command::Clear(a) => commands::remove::run(&mut ctx, Verb::Clear, selected, a.dry_run),
        Command::Delete(a) => commands::remove::run(&mut ctx, Verb::Delete, selected, a.dry_run),
        Command::Push(a) => commands::transfer::push(&mut ctx, a, selected),
        Command::Pull(a) => commands::transfer::pull(&mut ctx, a),
        Command::Remote(_)
        | Command::Keygen(_)
        | Command::Enable(_)
        | Command::Disable(_)
        | Command::RemoteHelper { .. } => unreachable!("handled above"),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| {
                c.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            })
            == Some(io::ErrorKind::BrokenPipe)
    })
}

/// This crate's README code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
