//! What `cargo pcache` prints, exactly: tables, dry runs, JSON and error
//! messages, with and without colour. Paths and timestamps are replaced by
//! placeholders; ages are fixed by writing entries two hours back.
//!
//! `cargo insta review` (or `INSTA_UPDATE=always`) updates the snapshots
//! after an intended change; CI fails on any difference.

mod support;

use std::time::Duration;

use support::Project;

/// Two packages with caches whose contents, sizes and ages are fixed.
fn project() -> Project {
    let p = Project::new();
    let two_hours = Duration::from_secs(2 * 3600);
    p.cache("app", "table", None, 3, two_hours);
    p.cache(
        "app-sys",
        "bindings",
        Some(Duration::from_secs(3600)),
        2,
        two_hours,
    );
    p.cache("app-sys", "🦀 wide name", None, 1, two_hours);
    // pcache-build's own files beside the package directories are not
    // caches: never listed, never warned about.
    let inputs = p.target().join("pcache/.inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("0123456789abcdef5"), b"digests").unwrap();
    p
}

/// Runs `cargo pcache` and renders status, stdout and stderr for a
/// snapshot, with the project's paths and RFC 3339 times replaced.
fn snapshot(p: &Project, args: &[&str]) -> String {
    let (status, out, err) = p.run_in_process(args);
    let root = p.root().to_str().unwrap().to_owned();
    let text = format!("status: {status}\n--- stdout\n{out}--- stderr\n{err}");
    text.replace(&root, "[ROOT]")
}

/// Runs the `cargo-pcache` binary, as Cargo does, with `envs` and help
/// wrapped at 100 columns, and renders it as [`snapshot`] does; `remote`
/// is replaced too.
fn snapshot_bin(p: &Project, args: &[&str], envs: &[(&str, &str)], remote: &str) -> String {
    let mut envs = envs.to_vec();
    envs.push(("COLUMNS", "100"));
    let out = p.run_with(args, &envs);
    let text = format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = if remote.is_empty() {
        text
    } else {
        text.replace(remote, "[REMOTE]")
    };
    text.replace(p.root().to_str().unwrap(), "[ROOT]")
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    // Latencies of the remote's checks.
    settings.add_filter(r"\b\d+\.\d ms\b", "[MS] ms");
    settings.add_filter(r#""millis": \d+(\.\d+)?"#, r#""millis": [MS]"#);
    // An entry's value decays continuously with the time since its last use.
    settings.add_filter(r#""value": \d+\.\d+(e-?\d+)?"#, r#""value": [VALUE]"#);
    settings.set_prepend_module_to_snapshot(false);
    settings
}

macro_rules! snap {
    ($name:literal, $p:expr, $args:expr) => {
        settings().bind(|| insta::assert_snapshot!($name, snapshot($p, $args)));
    };
}

#[test]
fn ls_tables() {
    let p = project();
    snap!("ls", &p, &["ls", "--color", "never"]);
    snap!("ls_color", &p, &["ls", "--color", "always"]);
    snap!("ls_entries", &p, &["ls", "--entries", "--color", "never"]);
    snap!(
        "ls_entries_color",
        &p,
        &["ls", "--entries", "--color", "always"]
    );
    snap!(
        "ls_one_package",
        &p,
        &["ls", "-p", "app", "--color", "never"]
    );
}

#[test]
fn ls_json() {
    let p = project();
    snap!("ls_json", &p, &["ls", "--json"]);
    snap!(
        "ls_json_entries",
        &p,
        &["ls", "--json", "--entries", "bindings"]
    );
}

#[test]
fn flush_dry_run() {
    let p = project();
    snap!(
        "flush_dry_run",
        &p,
        &["flush", "--dry-run", "-v", "--color", "never"]
    );
    snap!(
        "flush_dry_run_expiry",
        &p,
        &["flush", "--dry-run", "--expiry", "90m", "--color", "always"]
    );
    // A dry run removed nothing.
    snap!("ls_after_dry_run", &p, &["ls", "--color", "never"]);
}

#[test]
fn errors() {
    let p = project();
    snap!(
        "error_unknown_package",
        &p,
        &["ls", "-p", "nope", "--color", "never"]
    );
    snap!(
        "error_unknown_package_color",
        &p,
        &["ls", "-p", "nope", "--color", "always"]
    );
    snap!(
        "error_unknown_name",
        &p,
        &["clear", "missing", "--color", "never"]
    );
    snap!(
        "error_bad_duration",
        &p,
        &["flush", "--expiry", "soon", "--color", "never"]
    );
}

#[test]
fn warnings_about_bad_settings_name_the_manifest() {
    let p = project();
    let manifest = p.root().join("app/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[package.metadata.pcache]\nexpiry = \"soon\"\n"),
    )
    .unwrap();
    snap!(
        "warning_bad_expiry",
        &p,
        &["ls", "-p", "app", "--color", "never"]
    );
}

/// A cache with recorded outcomes, entries with key parts, and a last miss.
fn insight_project() -> Project {
    use pcache_core::record::{
        CodeParts, EntryNotes, FileDigest, InputPart, KeyParts, LastMiss, MissReason, Outcome,
        StepRecord,
    };
    let p = project();
    let store = p.cache("app", "bindings", None, 0, Duration::ZERO);
    let log = store.stats_log();
    let ms = Duration::from_millis;
    for record in [
        StepRecord::new(Outcome::Miss(MissReason::NewKey), ms(2400), ms(2400)).bytes(0, 4096),
        StepRecord::new(Outcome::Hit, ms(2400), ms(3)).bytes(4096, 0),
        StepRecord::new(Outcome::Hit, ms(2400), ms(2)).bytes(4096, 0),
        StepRecord::new(Outcome::Miss(MissReason::InputsChanged), ms(2500), ms(2500))
            .bytes(0, 4100),
        StepRecord::new(Outcome::Miss(MissReason::Disabled), ms(2450), ms(2450)),
    ] {
        log.append(&record).unwrap();
    }
    let parts = |header: u128, dep: &str| KeyParts {
        format: pcache_core::FORMAT_VERSION,
        entry_point: "files".into(),
        type_name: "pcache_build::files::Tree".into(),
        target: "x86_64-unknown-linux-gnu".into(),
        code: Some(CodeParts {
            digest: if dep == "0.72.0" { 1 } else { 2 },
            sources: vec![FileDigest {
                path: "build.rs".into(),
                digest: 0x1234 << 96,
            }],
            build_deps: vec![("bindgen".into(), dep.into())],
            env_digest: 0,
        }),
        inputs_digest: header,
        inputs: vec![
            InputPart::File {
                path: "wrapper.h".into(),
                digest: Some(header << 96),
            },
            InputPart::Env {
                name: "API_TOKEN".into(),
                value_digest: Some(0xabcd << 112),
            },
        ],
    };
    let stored = pcache_core::Key::new("stored").unwrap();
    let notes = EntryNotes::new(vec![], Some(parts(0xaaaa, "0.72.0"))).encode();
    store
        .set_with_notes(&stored, &vec![0u8; 4000], ms(2400), &notes)
        .unwrap();
    let missed = pcache_core::Key::new("missed").unwrap();
    let notes = EntryNotes::new(vec![], Some(parts(0xbbbb, "0.72.1"))).encode();
    store
        .set_with_notes(&missed, &vec![0u8; 4000], ms(2500), &notes)
        .unwrap();
    store
        .set_last_miss(&LastMiss::new(
            &missed,
            MissReason::CodeChanged,
            parts(0xbbbb, "0.72.1"),
        ))
        .unwrap();
    p
}

#[test]
fn stats_why_and_gc() {
    let p = insight_project();
    snap!("stats", &p, &["stats", "--color", "never"]);
    snap!("stats_json", &p, &["stats", "--json", "bindings"]);
    snap!("why", &p, &["why", "bindings", "--color", "never"]);
    snap!("why_json", &p, &["why", "bindings", "--json"]);
    snap!(
        "why_never_missed",
        &p,
        &["why", "table", "--color", "never"]
    );
    snap!(
        "gc_dry_run",
        &p,
        &[
            "gc",
            "--max-size",
            "9KiB",
            "--dry-run",
            "-v",
            "--color",
            "never"
        ]
    );
    snap!("stats_reset", &p, &["stats", "--reset", "bindings"]);
    snap!(
        "stats_after_reset",
        &p,
        &["stats", "bindings", "--color", "never"]
    );
}

/// Every command's `--help`, as Cargo runs the binary.
#[test]
fn every_command_has_its_help() {
    let p = Project::new();
    for command in [
        "", "ls", "flush", "clear", "delete", "stats", "why", "gc", "push", "pull", "remote",
        "keygen", "enable", "disable",
    ] {
        let args: Vec<&str> = [command, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let name = if command.is_empty() {
            "help".to_owned()
        } else {
            format!("help_{command}")
        };
        settings().bind(|| insta::assert_snapshot!(name, snapshot_bin(&p, &args, &[], "")));
    }
}

#[test]
fn gc_json() {
    let p = insight_project();
    snap!(
        "gc_json",
        &p,
        &["gc", "--max-size", "9KiB", "--dry-run", "--json"]
    );
}

/// `remote`, `push` and `pull` against a shared directory, plain and JSON.
#[test]
fn remote_push_and_pull() {
    let p = project();
    let remote_dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote_dir.path().display());
    let env = [("PCACHE_REMOTE", url.as_str())];
    let bin = |name: &str, args: &[&str]| {
        let text = snapshot_bin(&p, args, &env, &url);
        settings().bind(|| insta::assert_snapshot!(name.to_owned(), text));
    };
    bin("remote", &["remote", "--color", "never"]);
    bin("remote_json", &["remote", "--json"]);
    bin("push_dry_run", &["push", "--dry-run", "--color", "never"]);
    bin("push", &["push", "--color", "never"]);
    // Everything is there already.
    bin("push_again_json", &["push", "--json"]);
    bin(
        "pull_dry_run_json",
        &["pull", "--dry-run", "--json", "-p", "app-sys"],
    );
    p.ok(&["clear", "-q"]);
    bin("pull", &["pull", "--color", "never"]);
    bin("pull_again_json", &["pull", "--json"]);
    // Without a remote, push says how to configure one.
    let text = snapshot_bin(&p, &["push"], &[], "");
    settings().bind(|| insta::assert_snapshot!("push_without_remote", text));
}
