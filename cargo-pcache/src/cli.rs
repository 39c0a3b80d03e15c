//! The command line, with clap's derive API.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  cargo pcache ls                      every cache in the target directory
  cargo pcache ls --entries -p my-sys  one row per entry of my-sys's caches
  cargo pcache ls --json               for scripts
  cargo pcache flush --expiry 7d       remove entries older than a week
  cargo pcache clear bindings          empty the cache named `bindings`
  cargo pcache delete -p old-crate     remove a package's caches entirely
  cargo pcache stats --since 7d        hits, misses by reason, time saved this week
  cargo pcache why bindings            why the last build computed `bindings` again
  cargo pcache gc --max-size 2GiB      trim to a size, keeping what saves the most
  cargo pcache remote                  check the remote cache (PCACHE_REMOTE)
  cargo pcache push                    upload this workspace's entries to it
  cargo pcache pull -p my-sys          download my-sys's entries from it

Caches live in <target-dir>/pcache/<package>/ (or $PCACHE_DIR/<package>/).
Exit status: 0 success, 1 error, 2 usage.";

/// The examples, then the configuration register.
fn after_help() -> String {
    format!(
        "{EXAMPLES}\n\nConfiguration: a flag beats the environment (including .cargo/config.toml [env]),\n\
         which beats [package.metadata.pcache], which beats [workspace.metadata.pcache].\n{}",
        pcache_core::config::register_text()
    )
}

/// Cargo runs `cargo-pcache pcache …` for `cargo pcache …`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap::builder::Styles::styled())]
pub(crate) enum CargoCli {
    /// Inspect and manage the caches pcache-build keeps for build scripts
    #[command(version, after_help = after_help())]
    Pcache(PcacheArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PcacheArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Path to the Cargo.toml of the workspace or package
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) manifest_path: Option<PathBuf>,
    /// Directory for all generated artifacts (as given to cargo build)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) target_dir: Option<PathBuf>,
    /// Print nothing but errors (and the listing of `ls`)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Say more: per-cache lines for flush, clear and delete
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Coloring: auto, always, never [default: CARGO_TERM_COLOR, else auto;
    /// NO_COLOR is honoured with auto]
    #[arg(long, global = true, value_enum, value_name = "WHEN")]
    pub(crate) color: Option<ColorWhen>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List caches: entries, size, expired entries, ages, expiry
    #[command(after_help = "\
Examples:
  cargo pcache ls
  cargo pcache ls bindings --entries
  cargo pcache ls --json | jq '.caches[] | {name, bytes}'")]
    Ls(LsArgs),
    /// Remove expired entries (and corrupt entries, stale locks and temporary files)
    #[command(after_help = "\
The expiry is --expiry, else the one the cache recorded, else
[package.metadata.pcache] expiry; without any, only corrupt entries
and stale files are removed.

Examples:
  cargo pcache flush
  cargo pcache flush --expiry 12h --dry-run
  cargo pcache flush -p my-sys --expiry 1h30m")]
    Flush(FlushArgs),
    /// Remove every entry, keeping the caches
    #[command(after_help = "\
Examples:
  cargo pcache clear
  cargo pcache clear bindings -p my-sys --dry-run")]
    Clear(RemoveArgs),
    /// Remove caches entirely (their directories)
    #[command(after_help = "\
Examples:
  cargo pcache delete -p old-crate
  cargo pcache delete --dry-run")]
    Delete(RemoveArgs),
    /// Hits, misses by reason, hit rate, compute time and time saved
    #[command(after_help = "\
Time saved is, for each hit, the computation the entry recorded minus the
hit's own time. Steps record their outcome as they run; PCACHE_STATS=off
turns that off.

Examples:
  cargo pcache stats
  cargo pcache stats bindings -p my-sys --since 7d
  cargo pcache stats --json | jq '.total.saved_secs'
  cargo pcache stats --reset")]
    Stats(StatsArgs),
    /// Explain the last miss of a cache: what differed from the nearest entry
    #[command(after_help = "\
Examples:
  cargo pcache why bindings
  cargo pcache why unicode-table -p my-crate --json")]
    Why(WhyArgs),
    /// Remove expired and corrupt entries, and trim to a size cap
    #[command(after_help = "\
The cap is --max-size, else PCACHE_MAX_SIZE, else the workspace's
[workspace.metadata.pcache] max-size. Over it, entries that save the least
time per byte (compute time / size, discounted by days unused) go first,
down to about 90% of the cap. Without a cap, only expired and corrupt
entries and stale files are removed.

Examples:
  cargo pcache gc --max-size 2GiB --dry-run
  cargo pcache gc --json")]
    Gc(GcArgs),
    /// Upload entries of this workspace's caches to the remote
    #[command(after_help = "\
The remote is PCACHE_REMOTE (in the environment or in .cargo/config.toml
[env]). Entries already on the remote are left alone; expired and corrupt
ones are not sent. Builds upload what they compute in the background; run
push at the end of a CI job to be sure everything arrived.

Examples:
  cargo pcache push
  cargo pcache push bindings -p my-sys --dry-run
  cargo pcache push --json")]
    Push(TransferArgs),
    /// Download entries of this workspace's caches from the remote
    #[command(after_help = "\
Without names or packages, pulls the caches of every workspace member.
Each entry is checked as a local one is before it is kept. Builds fetch
what they miss on their own; pull fetches ahead of time (a Redis remote
cannot list its entries, so there it has nothing to pull).

Examples:
  cargo pcache pull
  cargo pcache pull unicode-table -p my-crate
  cargo pcache pull --dry-run --json")]
    Pull(TransferArgs),
    /// Show the configured remote (credentials redacted) and check it
    #[command(after_help = "\
Checks that the remote answers (reach), can be read, and in read-write
mode can be written (a small probe object, removed again), with the time
each took. Exits with 1 if a check fails.

Configuration (environment, or .cargo/config.toml [env]):
  PCACHE_REMOTE           s3://bucket/prefix[?endpoint=URL&region=R]
                          redis://[:password@]host:port/db  (rediss:// for TLS)
                          webdav+http(s)://[user:password@]host/path
                          file:///shared/dir
                          gha or gha://prefix  (the GitHub Actions cache)
  PCACHE_REMOTE_MODE      read-write (default) or read
  PCACHE_REMOTE_REQUIRED  1: remote failures fail the build
  PCACHE_REMOTE_TRUSTED_KEYS  NAME:<base64 public>,…: use only objects
                          signed by one of these keys (cargo pcache keygen)
  PCACHE_REMOTE_SIGNING_KEY   NAME:<base64 secret>: sign what is pushed
                          (or PCACHE_REMOTE_SIGNING_KEY_FILE, a path)
  AWS_*                   credentials, region, AWS_ENDPOINT_URL(_S3) for s3

Examples:
  cargo pcache remote
  cargo pcache remote --json")]
    Remote(RemoteArgs),
    /// Make an Ed25519 key pair for signing remote entries
    #[command(after_help = "\
Prints two lines: the signing key (a secret: put it only where entries are
pushed, such as the CI job that pushes) and the trusted key (public: commit
it, in .cargo/config.toml [env]). Builds with trusted keys set use only
remote objects signed by one of them.

Examples:
  cargo pcache keygen ci-2026
  cargo pcache keygen ci-2026 --json")]
    Keygen(KeygenArgs),
    /// Cache dependencies' build scripts: set build.rustc-wrapper to pcache's wrapper
    #[command(after_help = "\
Sets build.rustc-wrapper in the workspace's .cargo/config.toml (or, with
--global, in $CARGO_HOME/config.toml) to pcache-wrapper, which Cargo then
runs for every compilation. Compilations pass through untouched; the build
scripts of registry and git packages (and of path packages named in
[workspace.metadata.pcache] build-scripts) are cached whole in the per-user
store ($PCACHE_HOME). A wrapper already configured, such as sccache, is kept
and called in turn ([env] PCACHE_RUSTC_WRAPPER). The file's comments and
layout are kept; `cargo pcache disable` puts back what was there.

Examples:
  cargo pcache enable
  cargo pcache enable --global
  cargo pcache stats -p aws-lc-sys     after a build: time saved")]
    Enable(EnableArgs),
    /// Stop caching dependencies' build scripts: restore build.rustc-wrapper
    #[command(after_help = "\
Examples:
  cargo pcache disable
  cargo pcache disable --global")]
    Disable(EnableArgs),
    /// What build scripts run to reach the remote (pcache_core::remote's
    /// helper protocol, parsed there)
    #[command(hide = true, disable_help_flag = true)]
    RemoteHelper {
        /// The request, as `HelperRequest::to_args` writes it
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    #[command(flatten)]
    pub(crate) selection: Selection,
    /// Report what would be moved, move nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// One JSON document on stdout, stable for scripts
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RemoteArgs {
    /// One JSON document on stdout, stable for scripts
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// The key's name, recorded in every signature (letters, digits, `.`,
    /// `_`, `-`)
    pub(crate) name: String,
    /// One JSON document on stdout: {"name", "public", "secret"}
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EnableArgs {
    /// Edit $CARGO_HOME/config.toml (every workspace of this user) instead of
    /// the workspace's .cargo/config.toml
    #[arg(long)]
    pub(crate) global: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    #[command(flatten)]
    pub(crate) selection: Selection,
    /// One JSON document on stdout, stable for scripts
    #[arg(long)]
    pub(crate) json: bool,
    /// Only steps in this past window: 90, 15m, 12h, 7d, 2w
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) since: Option<Duration>,
    /// Remove the statistics of the selected caches
    #[arg(long, conflicts_with_all = ["json", "since"])]
    pub(crate) reset: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WhyArgs {
    /// The cache (as named in the build script)
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// Only the cache of this package
    #[arg(short, long = "package", value_name = "PKG")]
    pub(crate) package: Option<String>,
    /// One JSON document on stdout, stable for scripts
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Trim to this size: 500MiB, 2GiB, 1.5G, or bytes
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) max_size: Option<u64>,
    /// Report what would be removed, remove nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// One JSON document on stdout, stable for scripts
    #[arg(long)]
    pub(crate) json: bool,
}

/// Which caches a command acts on.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct Selection {
    /// Only the caches with these names (as given to pcache-build)
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,
    /// Only the caches of this package (repeatable)
    #[arg(short, long = "package", value_name = "PKG")]
    pub(crate) packages: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    pub(crate) selection: Selection,
    /// One JSON document on stdout, stable for scripts
    #[arg(long)]
    pub(crate) json: bool,
    /// One row per entry
    #[arg(long)]
    pub(crate) entries: bool,
}

#[derive(Debug, Args)]
pub(crate) struct FlushArgs {
    #[command(flatten)]
    pub(crate) selection: Selection,
    /// Remove entries older than this: 90, 90s, 15m, 12h, 7d, 2w, 1h30m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) expiry: Option<Duration>,
    /// Report what would be removed, remove nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    #[command(flatten)]
    pub(crate) selection: Selection,
    /// Report what would be removed, remove nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    pcache_core::conventions::parse_duration(text).map_err(|e| e.to_string())
}

fn parse_size(text: &str) -> Result<u64, String> {
    pcache_core::conventions::parse_size(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        CargoCli::command().debug_assert();
    }
}

/// The documentation's code blocks that are not Rust doctests are tested
/// here: every `cargo pcache` command line parses, every TOML block parses,
/// and every `rust,ignore` excerpt of an example's build script is in that
/// file, line for line. (Outside the repository, as in a published crate,
/// there is nothing to check.)
#[cfg(test)]
mod docs_tests {
    use std::path::{Path, PathBuf};

    use clap::Parser;

    use super::CargoCli;

    /// The workspace's Markdown files: READMEs, ARCHITECTURE.md, docs/.
    fn documents() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "CHANGELOG.md"]
            .iter()
            .map(|f| root.join(f))
            .collect();
        for dir in [
            "docs",
            "pcache-core",
            "pcache-build",
            "cargo-pcache",
            "examples",
        ] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "md") {
                    files.push(path);
                } else if path.join("README.md").is_file() {
                    files.push(path.join("README.md"));
                }
            }
        }
        files.retain(|f| f.is_file());
        files
    }

    /// Each fenced block of `text`: its info string and its lines.
    fn blocks(text: &str) -> Vec<(String, Vec<String>)> {
        let mut blocks = Vec::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in text.lines() {
            let fence = line.trim_start().strip_prefix("```");
            match (&mut current, fence) {
                (None, Some(info)) => current = Some((info.trim().to_owned(), Vec::new())),
                (Some(_), Some(_)) => blocks.extend(current.take()),
                (Some((_, lines)), None) => lines.push(line.to_owned()),
                (None, None) => {}
            }
        }
        blocks
    }

    /// Splits a shell command line into words: quotes group, `#` starts a
    /// comment, and a pipe ends the command.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut quote = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.get_or_insert_with(String::new).push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_with(String::new);
                }
                (None, '#' | '|') if word.is_none() => break,
                (None, c) if c.is_whitespace() => words.extend(word.take()),
                (None, c) => word.get_or_insert_with(String::new).push(c),
            }
        }
        words.extend(word);
        words
    }

    #[test]
    fn every_cargo_pcache_command_line_in_the_docs_parses() {
        let mut checked = 0;
        for doc in documents() {
            let text = std::fs::read_to_string(&doc).unwrap();
            for (info, lines) in blocks(&text) {
                if !matches!(info.as_str(), "sh" | "text" | "console" | "yaml") {
                    continue;
                }
                for line in &lines {
                    let line = line
                        .trim_start_matches([' ', '-'])
                        .trim_start_matches("run: ");
                    let line = line.strip_prefix("$ ").unwrap_or(line);
                    let words = words(line);
                    if words.len() < 2 || words[0] != "cargo" || words[1] != "pcache" {
                        continue;
                    }
                    // The synopsis lines name placeholders, not values.
                    if words.iter().any(|w| w.contains('[') || w.contains('…')) {
                        continue;
                    }
                    let args =
                        std::iter::once("cargo".to_owned()).chain(words[1..].iter().cloned());
                    if let Err(e) = CargoCli::try_parse_from(args) {
                        if e.kind() != clap::error::ErrorKind::DisplayHelp {
                            panic!("{}: `{line}` does not parse:\n{e}", doc.display());
                        }
                    }
                    checked += 1;
                }
            }
        }
        // Outside the repository there are no documents to check.
        if !documents().is_empty() {
            assert!(checked > 10, "only {checked} command lines found");
        }
    }

    #[test]
    fn every_toml_block_in_the_docs_parses() {
        for doc in documents() {
            let text = std::fs::read_to_string(&doc).unwrap();
            for (info, lines) in blocks(&text) {
                if info == "toml" {
                    let toml = lines.join("\n");
                    if let Err(e) = toml.parse::<toml::Table>() {
                        panic!(
                            "{}: a TOML block does not parse: {e}\n{toml}",
                            doc.display()
                        );
                    }
                }
            }
        }
    }

    /// A `rust,ignore` block opens with a comment naming the file it is
    /// taken from; its lines appear there in the same order.
    #[test]
    fn every_rust_excerpt_in_the_docs_is_in_its_source_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for doc in documents() {
            let text = std::fs::read_to_string(&doc).unwrap();
            for (info, lines) in blocks(&text) {
                if info != "rust,ignore" {
                    continue;
                }
                let source = lines
                    .first()
                    .and_then(|l| l.trim().strip_prefix("// "))
                    .unwrap_or_else(|| {
                        panic!("{}: an excerpt that names no source", doc.display())
                    });
                let code = std::fs::read_to_string(root.join(source))
                    .unwrap_or_else(|e| panic!("{}: {source}: {e}", doc.display()));
                let mut rest = code.as_str();
                for line in lines[1..]
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
                {
                    match rest.find(line) {
                        Some(at) => rest = &rest[at + line.len()..],
                        None => panic!("{}: `{line}` is not in {source} (in order)", doc.display()),
                    }
                }
            }
        }
    }
}
