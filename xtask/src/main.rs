//! `cargo demo`: pcache at work on a real build script.
//!
//! Builds `examples/tables` (whose build script generates a perfect-hash
//! table of ~33,000 Unicode names), forces the build script to re-run the
//! way touching `build.rs` does, and shows the first run computing and the
//! second reading the stored result. Then lists the cache with
//! `cargo pcache ls`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

const PACKAGE: &str = "pcache-example-tables";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("demo") => match demo() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo demo");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_owned()
}

fn demo() -> Result<(), String> {
    let root = workspace_root();
    let build_rs = root.join("examples/tables/build.rs");
    println!("Compiling {PACKAGE} and its dependencies (once)...");
    cargo(&root, &["build", "--quiet", "-p", PACKAGE])?;
    // Start from an empty cache so the first run really computes.
    pcache(&root, &["clear", "-q", "-p", PACKAGE])?;

    let mut runs = Vec::new();
    for attempt in ["first", "second"] {
        touch(&build_rs)?;
        let started = Instant::now();
        let output = cargo(&root, &["build", "-vv", "-p", PACKAGE])?;
        let wall = started.elapsed();
        let step = output
            .lines()
            .find_map(|l| l.split_once("] pcache: ").map(|(_, step)| step.to_owned()))
            .ok_or("the build script printed no pcache line")?;
        runs.push((attempt, step, wall));
    }
    println!();
    println!("Touched examples/tables/build.rs and rebuilt, twice. The build script said:");
    for (attempt, step, wall) in &runs {
        println!(
            "  {attempt:<6}  pcache: {step}   (cargo build: {})",
            seconds(*wall)
        );
    }
    println!();
    println!("$ cargo pcache ls -p {PACKAGE}");
    pcache(&root, &["ls", "-p", PACKAGE])?;
    Ok(())
}

/// Runs cargo; returns stdout and stderr together.
fn cargo(root: &Path, args: &[&str]) -> Result<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .env_remove("PCACHE")
        .output()
        .map_err(|e| format!("failed to run `{cargo}`: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("`cargo {}` failed:\n{text}", args.join(" ")));
    }
    Ok(text)
}

/// Runs `cargo pcache` in-process, printing its output.
fn pcache(root: &Path, args: &[&str]) -> Result<(), String> {
    let manifest = root.join("Cargo.toml");
    let mut argv = vec!["cargo-pcache", "pcache"];
    argv.extend_from_slice(args);
    argv.extend([
        "--manifest-path",
        manifest.to_str().ok_or("non-UTF-8 path")?,
    ]);
    let status = cargo_pcache::run(argv, &mut std::io::stdout(), &mut std::io::stderr());
    if status == ExitCode::SUCCESS {
        Ok(())
    } else {
        Err(format!("`cargo pcache {}` failed", args.join(" ")))
    }
}

/// What an editor save without changes does: a new mtime, same bytes.
fn touch(path: &Path) -> Result<(), String> {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .map_err(|e| format!("failed to touch `{}`: {e}", path.display()))
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
