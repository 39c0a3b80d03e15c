//! Short chaos runs, so `cargo test` exercises the harness; CI runs longer
//! ones (`.ci/run`), and `--duration 600 --workers 8` is the soak.

/// Runs the harness with `args`, asserting it passed; its report, and the
/// number on the report's line starting with `row`.
fn chaos(args: &[&str], row: &str) -> (String, u64) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pcache-chaos"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("chaos: OK"), "{stdout}");
    let value = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(row))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{row}` in:\n{stdout}"));
    (stdout, value)
}

#[test]
fn a_short_chaos_run_finds_no_wrong_value() {
    let (stdout, kills) = chaos(&["--duration", "6", "--workers", "3"], "SIGKILLs");
    assert!(kills > 0, "{stdout}");
}

#[test]
fn a_short_remote_chaos_run_imports_entries_and_finds_no_wrong_value() {
    let (stdout, imported) = chaos(
        &["--duration", "6", "--workers", "3", "--remote"],
        "remote: entries imported",
    );
    assert!(imported > 0, "fresh machines fetched nothing:\n{stdout}");
}
