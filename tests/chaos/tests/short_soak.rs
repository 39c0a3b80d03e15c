//! A short chaos run, so `cargo test` exercises the harness; CI runs a
//! longer one (`.ci/run`), and `--duration 600 --workers 8` is the soak.

#[test]
fn a_short_chaos_run_finds_no_wrong_value() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pcache-chaos"))
        .args(["--duration", "6", "--workers", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("chaos: OK"), "{stdout}");
    let kills: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("SIGKILLs"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(kills > 0, "{stdout}");
}

#[test]
fn a_short_remote_chaos_run_imports_entries_and_finds_no_wrong_value() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pcache-chaos"))
        .args(["--duration", "6", "--workers", "3", "--remote"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("chaos: OK"), "{stdout}");
    let imported: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("remote: entries imported"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(imported > 0, "fresh machines fetched nothing:\n{stdout}");
}
