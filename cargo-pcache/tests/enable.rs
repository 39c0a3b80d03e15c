//! `cargo pcache enable` and `disable`: Cargo's `build.rustc-wrapper` set to
//! pcache's wrapper in `.cargo/config.toml` (or `$CARGO_HOME/config.toml`),
//! a wrapper already there chained, and everything put back as it was.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{BIN, Project};

/// The wrapper built beside `cargo-pcache`, as `enable` finds it.
fn wrapper() -> PathBuf {
    Path::new(BIN).with_file_name("pcache-wrapper")
}

/// Runs `cargo pcache <args>` in `p` with `CARGO_HOME` at `home`.
fn pcache(p: &Project, home: &Path, args: &[&str]) -> (bool, String, String) {
    let out = p.run_with(
        args,
        &[
            ("CARGO_HOME", home.to_str().unwrap()),
            ("RUSTC_WRAPPER", ""),
        ],
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(p: &Project) -> PathBuf {
    p.root().join(".cargo/config.toml")
}

#[test]
fn enable_sets_the_wrapper_and_disable_removes_what_it_wrote() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    let (ok, out, err) = pcache(&p, home.path(), &["enable"]);
    assert!(ok, "{err}");
    assert!(out.contains("Enabled pcache"), "{out}");
    let text = fs::read_to_string(config(&p)).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    assert_eq!(
        doc["build"]["rustc-wrapper"].as_str(),
        Some(wrapper().to_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("# cargo pcache enable: was unset"), "{text}");

    // A second time changes nothing.
    let (ok, out, _) = pcache(&p, home.path(), &["enable"]);
    assert!(ok);
    assert!(out.contains("already enabled"), "{out}");
    assert_eq!(fs::read_to_string(config(&p)).unwrap(), text);

    let (ok, out, err) = pcache(&p, home.path(), &["disable"]);
    assert!(ok, "{err}");
    assert!(out.contains("removed"), "{out}");
    assert!(!config(&p).exists(), "the file enable created is gone");
    let (ok, out, _) = pcache(&p, home.path(), &["disable"]);
    assert!(ok);
    assert!(out.contains("not enabled"), "{out}");
}

#[test]
fn a_wrapper_already_configured_is_chained_and_the_file_comes_back_byte_for_byte() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    let original = "# Our build settings.\n\
                    [build]\n\
                    # sccache for every rustc call\n\
                    rustc-wrapper = \"sccache\"   # keep\n\
                    jobs = 2\n\
                    \n\
                    [env]\n\
                    FOO = \"bar\" # a comment\n";
    fs::create_dir_all(p.root().join(".cargo")).unwrap();
    fs::write(config(&p), original).unwrap();

    let (ok, out, err) = pcache(&p, home.path(), &["enable"]);
    assert!(ok, "{err}");
    assert!(out.contains("chaining sccache"), "{out}");
    let text = fs::read_to_string(config(&p)).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    assert_eq!(
        doc["build"]["rustc-wrapper"].as_str(),
        Some(wrapper().to_str().unwrap())
    );
    assert_eq!(doc["build"]["jobs"].as_integer(), Some(2));
    assert_eq!(doc["env"]["PCACHE_RUSTC_WRAPPER"].as_str(), Some("sccache"));
    assert_eq!(doc["env"]["FOO"].as_str(), Some("bar"));
    for comment in [
        "# Our build settings.",
        "# sccache for every rustc call",
        "# a comment",
    ] {
        assert!(text.contains(comment), "{comment} kept:\n{text}");
    }

    let (ok, out, err) = pcache(&p, home.path(), &["disable"]);
    assert!(ok, "{err}");
    assert!(out.contains("sccache again"), "{out}");
    assert_eq!(fs::read_to_string(config(&p)).unwrap(), original);
}

#[test]
fn a_wrapper_from_another_configuration_file_is_chained_too() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    fs::write(
        home.path().join("config.toml"),
        "[build]\nrustc-wrapper = \"/opt/sccache\"\n",
    )
    .unwrap();
    let (ok, _, err) = pcache(&p, home.path(), &["enable"]);
    assert!(ok, "{err}");
    let doc: toml::Table = fs::read_to_string(config(&p)).unwrap().parse().unwrap();
    assert_eq!(
        doc["env"]["PCACHE_RUSTC_WRAPPER"].as_str(),
        Some("/opt/sccache")
    );
}

#[test]
fn global_edits_the_user_s_configuration() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    let user = home.path().join("config.toml");
    let original = "[net]\ngit-fetch-with-cli = true\n";
    fs::write(&user, original).unwrap();
    let (ok, out, err) = pcache(&p, home.path(), &["enable", "--global"]);
    assert!(ok, "{err}");
    assert!(out.contains(user.to_str().unwrap()), "{out}");
    assert!(!config(&p).exists(), "the workspace's file is left alone");
    let doc: toml::Table = fs::read_to_string(&user).unwrap().parse().unwrap();
    assert_eq!(
        doc["build"]["rustc-wrapper"].as_str(),
        Some(wrapper().to_str().unwrap())
    );
    let (ok, _, err) = pcache(&p, home.path(), &["disable", "--global"]);
    assert!(ok, "{err}");
    assert_eq!(fs::read_to_string(&user).unwrap(), original);
}

#[test]
fn a_damaged_configuration_file_is_named_and_left_alone() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(p.root().join(".cargo")).unwrap();
    fs::write(config(&p), "[build\nrustc-wrapper = ").unwrap();
    let (ok, _, err) = pcache(&p, home.path(), &["enable"]);
    assert!(!ok);
    assert!(err.contains(config(&p).to_str().unwrap()), "{err}");
    assert_eq!(
        fs::read_to_string(config(&p)).unwrap(),
        "[build\nrustc-wrapper = "
    );
}

#[test]
fn a_rustc_wrapper_in_the_environment_is_pointed_out() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    let out = p.run_with(
        &["enable"],
        &[
            ("CARGO_HOME", home.path().to_str().unwrap()),
            ("RUSTC_WRAPPER", "sccache"),
        ],
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RUSTC_WRAPPER=sccache") && err.contains("PCACHE_RUSTC_WRAPPER=sccache"),
        "{err}"
    );
}

/// After `enable`, a plain `cargo build` caches the named path package's
/// build script: after `cargo clean` it does not run again; after
/// `disable`, it does.
#[test]
fn after_enable_a_plain_cargo_build_caches_build_scripts() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let runs = p.root().join("runs.txt");
    let manifest = p.root().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        format!("{text}\n[workspace.metadata.pcache]\nbuild-scripts = [\"app-sys\"]\n"),
    )
    .unwrap();
    fs::write(
        p.root().join("app-sys/build.rs"),
        format!(
            "use std::io::Write;\n\
             fn main() {{\n\
                 let mut f = std::fs::OpenOptions::new().create(true).append(true)\n\
                     .open({runs:?}).unwrap();\n\
                 writeln!(f, \"ran\").unwrap();\n\
                 let out = std::env::var(\"OUT_DIR\").unwrap();\n\
                 std::fs::write(format!(\"{{out}}/answer.rs\"), \"42\").unwrap();\n\
                 println!(\"cargo:rerun-if-changed=build.rs\");\n\
             }}\n"
        ),
    )
    .unwrap();
    fs::write(
        p.root().join("app-sys/src/lib.rs"),
        "pub const ANSWER: u32 = include!(concat!(env!(\"OUT_DIR\"), \"/answer.rs\"));\n",
    )
    .unwrap();
    let (ok, _, err) = pcache(&p, home.path(), &["enable"]);
    assert!(ok, "{err}");

    let cargo = |args: &[&str]| {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(args)
            .current_dir(p.root())
            .env("CARGO_HOME", home.path())
            .env("PCACHE_HOME", store.path())
            .env("PCACHE_BUILD_SCRIPT_MIN_TIME", "0")
            .env("CARGO_TARGET_DIR", p.target())
            .env_remove("RUSTC_WRAPPER")
            .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
            .env_remove("PCACHE")
            .env_remove("PCACHE_HOME_MAX_SIZE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ran = || fs::read_to_string(&runs).map_or(0, |s| s.lines().count());
    // Cargo's own home must still find the registry: offline, nothing to
    // fetch (the project has no dependencies).
    cargo(&["build", "--offline", "-p", "app-sys"]);
    assert_eq!(ran(), 1);
    cargo(&["clean"]);
    cargo(&["build", "--offline", "-p", "app-sys"]);
    assert_eq!(ran(), 1, "restored, not run, after cargo clean");

    let (ok, _, err) = pcache(&p, home.path(), &["disable"]);
    assert!(ok, "{err}");
    cargo(&["clean"]);
    cargo(&["build", "--offline", "-p", "app-sys"]);
    assert_eq!(ran(), 2, "runs again once disabled");
}
