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

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
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
