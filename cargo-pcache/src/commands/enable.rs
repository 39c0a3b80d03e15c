//! `cargo pcache enable` and `disable`: Cargo's `build.rustc-wrapper` in the
//! workspace's `.cargo/config.toml` (or, with `--global`,
//! `$CARGO_HOME/config.toml`) set to `pcache-wrapper`, and set back.
//!
//! The file is edited in place with `toml_edit`, so its comments and layout
//! stay. A wrapper already configured (sccache) is chained, not replaced:
//! it goes to `[env] PCACHE_RUSTC_WRAPPER`, which pcache's wrapper calls in
//! turn and build scripts see as their `RUSTC_WRAPPER`. What the file held
//! before is noted in a comment on the key, and `disable` puts it back.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use pcache_core::config::{self, Env};
use toml_edit::{DocumentMut, Item, Table, value};

use crate::cli::{EnableArgs, GlobalArgs};
use crate::output::{Paint, Style};
use crate::workspace::Workspace;

/// The key pcache sets.
const KEY: &str = "rustc-wrapper";
/// How the comment on the key starts.
const NOTE: &str = "# cargo pcache enable: was ";

/// `cargo pcache enable`.
pub(crate) fn enable(
    global: &GlobalArgs,
    args: &EnableArgs,
    env: &Env,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let file = config_file(global, args, env)?;
    let wrapper = wrapper_binary()?;
    let mut doc = read(&file)?;
    let here = wrapper_in(&doc);
    if here.as_deref().is_some_and(is_pcache) {
        writeln!(out, "pcache is already enabled in {}", file.display())?;
        return Ok(());
    }
    // What the wrapper would be without pcache: this file's, else the next
    // configuration file's that applies.
    let cwd = std::env::current_dir().unwrap_or_default();
    let previous = here.clone().or_else(|| {
        config::cargo_config_files(&cwd)
            .into_iter()
            .filter(|f| *f != file)
            .find_map(|f| read(&f).ok().and_then(|d| wrapper_in(&d)))
    });
    let chained = previous.filter(|p| !p.is_empty() && !is_pcache(p));
    let build = table(&mut doc, "build");
    set_keeping_decor(build, KEY, &wrapper.to_string_lossy());
    let was = match &here {
        Some(old) => format!("{NOTE}{}\n", toml_edit::Value::from(old.as_str())),
        None => format!("{NOTE}unset\n"),
    };
    if let Some(mut key) = build.key_mut(KEY) {
        // The note goes right above the key, under the user's own comments.
        let own = key
            .leaf_decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_owned();
        key.leaf_decor_mut().set_prefix(format!("{own}{was}"));
    }
    if let Some(chained) = &chained {
        table(&mut doc, "env").insert(config::RUSTC_WRAPPER_VAR, value(chained.as_str()));
    }
    write(&file, &doc)?;
    let chaining = chained
        .as_deref()
        .map_or_else(String::new, |c| format!(", chaining {c}"));
    writeln!(
        out,
        "Enabled pcache for dependencies' build scripts in {}: build.rustc-wrapper = {}{chaining}",
        file.display(),
        wrapper.display()
    )?;
    if !style.quiet {
        writeln!(
            err,
            "{}: build scripts are cached from their next compile: after `cargo clean`, or \
             when they change (`cargo pcache stats` shows them working)",
            style.paint_err(Paint::Bold, "note")
        )?;
        if let Some(own) = env
            .get("RUSTC_WRAPPER")
            .filter(|w| !w.is_empty() && !is_pcache(w))
        {
            writeln!(
                err,
                "{}: RUSTC_WRAPPER={own} is set in this environment and overrides \
                 build.rustc-wrapper; to keep it, set RUSTC_WRAPPER={} and {}={own} instead",
                style.paint_err(Paint::Yellow, "warning"),
                wrapper.display(),
                config::RUSTC_WRAPPER_VAR
            )?;
        }
    }
    Ok(())
}

/// `cargo pcache disable`.
pub(crate) fn disable(
    global: &GlobalArgs,
    args: &EnableArgs,
    env: &Env,
    out: &mut dyn Write,
) -> Result<()> {
    let file = config_file(global, args, env)?;
    if !file.is_file() {
        writeln!(
            out,
            "pcache is not enabled in {}: no such file",
            file.display()
        )?;
        return Ok(());
    }
    let mut doc = read(&file)?;
    if !wrapper_in(&doc).as_deref().is_some_and(is_pcache) {
        writeln!(out, "pcache is not enabled in {}", file.display())?;
        return Ok(());
    }
    let build = table(&mut doc, "build");
    let note = build
        .key(KEY)
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .and_then(|p| p.lines().find_map(|l| l.trim().strip_prefix(NOTE.trim())))
        .map(|was| was.trim().to_owned());
    let restored = match note.as_deref() {
        Some("unset") | None => {
            build.remove(KEY);
            None
        }
        Some(was) => {
            let old: String = was
                .parse::<toml_edit::Value>()
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| was.trim_matches('"').to_owned());
            set_keeping_decor(build, KEY, &old);
            if let Some(mut key) = build.key_mut(KEY) {
                let own: String = key
                    .leaf_decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .unwrap_or_default()
                    .split_inclusive('\n')
                    .filter(|line| !line.trim_start().starts_with(NOTE.trim()))
                    .collect();
                key.leaf_decor_mut().set_prefix(own);
            }
            Some(old)
        }
    };
    drop_if_empty(&mut doc, "build");
    if let Some(env_table) = doc.get_mut("env").and_then(Item::as_table_like_mut) {
        env_table.remove(config::RUSTC_WRAPPER_VAR);
    }
    drop_if_empty(&mut doc, "env");
    if doc.to_string().trim().is_empty() {
        // Nothing but what `enable` wrote: the file goes, as before it.
        fs::remove_file(&file).with_context(|| format!("failed to remove `{}`", file.display()))?;
    } else {
        write(&file, &doc)?;
    }
    match restored {
        Some(old) => writeln!(
            out,
            "Disabled pcache in {}: build.rustc-wrapper = {old} again",
            file.display()
        )?,
        None => writeln!(
            out,
            "Disabled pcache in {}: build.rustc-wrapper removed",
            file.display()
        )?,
    }
    Ok(())
}

/// The configuration file to edit: the workspace's, or the user's.
fn config_file(global: &GlobalArgs, args: &EnableArgs, env: &Env) -> Result<PathBuf> {
    if args.global {
        let home = config::cargo_home().context("no Cargo home: set CARGO_HOME")?;
        let old = home.join("config");
        return Ok(if old.is_file() && !home.join("config.toml").exists() {
            old
        } else {
            home.join("config.toml")
        });
    }
    let workspace = Workspace::discover(global, env)?;
    let root = workspace
        .workspace_root
        .context("not in a Cargo workspace: run inside one, or pass --global")?;
    let dir = root.join(".cargo");
    let old = dir.join("config");
    Ok(if old.is_file() && !dir.join("config.toml").exists() {
        old
    } else {
        dir.join("config.toml")
    })
}

/// `pcache-wrapper`: beside this program (they are installed together),
/// else on `PATH`.
fn wrapper_binary() -> Result<PathBuf> {
    let name = format!("pcache-wrapper{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&name)));
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(&name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| p.is_file())
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .context("pcache-wrapper is not installed beside cargo-pcache nor on PATH (`cargo install cargo-pcache` installs both)")
}

fn is_pcache(wrapper: &str) -> bool {
    Path::new(wrapper)
        .file_stem()
        .is_some_and(|s| s == "pcache-wrapper")
}

/// `build.rustc-wrapper` in `doc`, as a string.
fn wrapper_in(doc: &DocumentMut) -> Option<String> {
    doc.get("build")?.get(KEY)?.as_str().map(str::to_owned)
}

/// Sets `key` to the string `text`, keeping the comments around the old value.
fn set_keeping_decor(table: &mut Table, key: &str, text: &str) {
    let mut new = toml_edit::Value::from(text);
    match table.get_mut(key).and_then(Item::as_value_mut) {
        // In place: the key keeps its comments, the value its spacing and
        // trailing comment.
        Some(old) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        None => {
            table.insert(key, Item::Value(new));
        }
    }
}

/// The table `name` of `doc`, created when missing.
fn table<'a>(doc: &'a mut DocumentMut, name: &str) -> &'a mut Table {
    let item = doc.entry(name).or_insert_with(|| Item::Table(Table::new()));
    if item.as_table().is_none() {
        // A dotted or inline table becomes a table, keeping its keys.
        let converted = match item.as_table_like() {
            Some(like) => {
                let mut table = Table::new();
                for (k, v) in like.iter() {
                    table.insert(k, v.clone());
                }
                table
            }
            None => Table::new(),
        };
        *item = Item::Table(converted);
    }
    // Just made a table when it was not one.
    item.as_table_mut().expect("a table")
}

fn drop_if_empty(doc: &mut DocumentMut, name: &str) {
    if doc
        .get(name)
        .and_then(Item::as_table_like)
        .is_some_and(|t| t.is_empty())
    {
        doc.remove(name);
    }
}

fn read(file: &Path) -> Result<DocumentMut> {
    match fs::read_to_string(file) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("failed to parse `{}`", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DocumentMut::new()),
        Err(e) => Err(e).with_context(|| format!("failed to read `{}`", file.display())),
    }
}

fn write(file: &Path, doc: &DocumentMut) -> Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    let text = doc.to_string();
    let staged = file.with_extension("toml.pcache-tmp");
    fs::write(&staged, text)
        .and_then(|()| fs::rename(&staged, file))
        .with_context(|| format!("failed to write `{}`", file.display()))
}
