//! The GitHub Actions cache as the remote (`PCACHE_REMOTE=gha`), against a
//! fake Actions cache service started here that speaks OpenDAL's protocol
//! (`support::ghac`), faults included: builds stay green, delays stay
//! bounded, no wrong value is used and the runtime token is never shown.

mod support;

use std::time::{Duration, Instant};

use support::ghac::{FakeGhac, Fault};
use support::machines::{
    Machine, STEPS, assert_all_from_the_remote, assert_nowhere_in, the_one_warning,
};
use support::{Build, Fixture, other_target, shared_target};

const TOKEN: &str = "ghs_runtime-token-never-shown";

fn machine(name: &str, fake: &FakeGhac, target: std::path::PathBuf) -> Machine {
    Machine::new(Fixture::directives(name, target), "gha").with_env(fake.env(TOKEN))
}

fn elsewhere(a: &Machine, name: &str, fake: &FakeGhac) -> Machine {
    Machine::new(a.fixture.checkout_elsewhere(name, other_target()), "gha")
        .with_env(fake.env(TOKEN))
}

fn assert_no_token(build: &Build, machine: &Machine) {
    assert!(!build.stderr.contains(TOKEN), "{}", build.stderr);
    assert!(!build.stdout.contains(TOKEN), "{}", build.stdout);
    assert_nowhere_in(machine.root(), TOKEN);
}

/// One of `machine`'s entries: its name, and its key as text.
fn an_entry(machine: &Machine) -> (pcache_core::remote::EntryName, String) {
    let package = machine.root().join(&machine.fixture.package);
    let cache = std::fs::read_dir(&package)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let file = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_file()
                && p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .parse::<pcache_core::Key>()
                    .is_ok()
        })
        .unwrap();
    let name = file
        .strip_prefix(machine.root())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let key = file.file_name().unwrap().to_str().unwrap().to_owned();
    (pcache_core::remote::EntryName::parse(&name).unwrap(), key)
}

/// A filled fake service and the machine that filled it.
fn filled(name: &str) -> (FakeGhac, Machine) {
    let fake = FakeGhac::start();
    let a = machine(name, &fake, shared_target());
    let built = a.build_package(&[]);
    a.assert_all_computed_once();
    assert_eq!(built.pcache_warnings(), Vec::<&str>::new());
    a.wait_for_uploads();
    assert_eq!(
        fake.keys().len(),
        STEPS.len() + STEPS.len(),
        "entries and cache.toml files"
    );
    assert_no_token(&built, &a);
    (fake, a)
}

#[test]
fn steps_are_shared_through_the_actions_cache() {
    let (fake, a) = filled("gha-shared");
    assert!(
        fake.tokens()
            .iter()
            .all(|t| t == &format!("Bearer {TOKEN}"))
    );
    let b = elsewhere(&a, "gha-shared-b", &fake);
    let built = b.build(&["build", "-vv", "-p", &b.fixture.package.clone()], &[]);
    assert_all_from_the_remote(&built);
    assert!(
        b.computed().iter().all(|(_, n)| *n == 0),
        "{:?}",
        b.computed()
    );
    assert_eq!(built.pcache_warnings(), Vec::<&str>::new());
    assert_no_token(&built, &b);

    // Objects are immutable there: writing a key that is there (another
    // machine raced this one to it) is a conflict, and not an error.
    let (entry, key) = an_entry(&a);
    let request = pcache_core::remote::HelperRequest::new(
        a.root().to_path_buf(),
        pcache_core::remote::HelperAction::Upload(Some(entry)),
    );
    let before = fake.calls("CreateCacheEntry");
    let upload = std::process::Command::new(&a.helper)
        .args(request.to_args())
        .env("PCACHE_REMOTE", "gha")
        .envs(fake.env(TOKEN))
        .output()
        .unwrap();
    assert!(
        upload.status.success(),
        "{}",
        String::from_utf8_lossy(&upload.stderr)
    );
    // The entry and its cache's cache.toml: both there, both conflicts.
    assert_eq!(
        fake.calls("CreateCacheEntry"),
        before + 2,
        "it tried, and met the conflicts"
    );
    assert!(fake.keys().iter().any(|k| k.ends_with(&key)));
    let creates = fake.calls("CreateCacheEntry");
    let push = a.pcache(&["push", "--json"], &[]);
    assert!(push.success, "{}", push.stderr);
    let report: serde_json::Value = serde_json::from_str(&push.stdout).unwrap();
    assert_eq!(report["failed"]["entries"], 0, "{report}");
    assert!(!push.stderr.contains(TOKEN));

    // And `remote` checks it like any other.
    let remote = a.pcache(&["remote", "--json"], &[]);
    assert!(remote.success, "{}", remote.stderr);
    let json: serde_json::Value = serde_json::from_str(&remote.stdout).unwrap();
    assert_eq!(json["backend"], "gha");
    assert_eq!(json["remote"], "gha");
    assert_eq!(json["mode"], "read-write");
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{json}"
    );
    assert!(!remote.stdout.contains(TOKEN));
    // A second check reuses its probe instead of leaving another behind.
    let again = a.pcache(&["remote"], &[]);
    assert!(again.success, "{}", again.stderr);
    assert!(fake.calls("CreateCacheEntry") <= creates + 2 + 2 * STEPS.len());
    assert_eq!(
        fake.keys().iter().filter(|k| k.contains("probe")).count(),
        1
    );
}

#[test]
fn a_pull_request_reads_and_never_writes() {
    let fake = FakeGhac::start();
    let pr = machine("gha-pr", &fake, shared_target());
    let built = pr.build_package(&[("GITHUB_EVENT_NAME", "pull_request")]);
    pr.assert_all_computed_once();
    assert_eq!(built.pcache_warnings(), Vec::<&str>::new());
    pr.wait_for_uploads();
    assert_eq!(fake.calls("CreateCacheEntry"), 0);
    assert!(fake.calls("GetCacheEntryDownloadURL") > 0, "it still reads");
    let remote = pr.pcache(
        &["remote", "--json"],
        &[("GITHUB_EVENT_NAME", "pull_request")],
    );
    let json: serde_json::Value = serde_json::from_str(&remote.stdout).unwrap();
    assert_eq!(json["mode"], "read");
}

#[test]
fn without_the_runtime_token_the_build_warns_once_and_computes() {
    let fake = FakeGhac::start();
    let m = Machine::new(Fixture::directives("gha-no-token", shared_target()), "gha").with_env(
        fake.env("")
            .into_iter()
            .filter(|(k, _)| k != "ACTIONS_RUNTIME_TOKEN")
            .collect(),
    );
    let built = m.build_package(&[]);
    m.assert_all_computed_once();
    let warning = the_one_warning(&built);
    assert!(
        warning.contains("must expose the runtime token"),
        "{warning}"
    );
    assert!(warning.contains("README"), "{warning}");
    assert_eq!(fake.calls("CacheEntry"), 0);
}

/// Machine B builds from a filled service with `fault` on: every step
/// computes, one warning, within `bound`; the values are right.
fn faulty_service_leaves_the_build_green(name: &str, fault: Fault, bound: Duration) -> Build {
    let (fake, a) = filled(name);
    fake.set_fault(fault);
    let b = elsewhere(&a, &format!("{name}-b"), &fake);
    let started = Instant::now();
    let built = b.build_package(&[]);
    let took = started.elapsed();
    assert!(took < bound, "{fault:?}: the build took {took:?}");
    assert!(
        b.computed().iter().all(|(_, n)| *n == 1),
        "{fault:?}: {:?}",
        b.computed()
    );
    the_one_warning(&built);
    assert_no_token(&built, &b);
    let probe = b.build(
        &["run", "-p", &b.fixture.package.clone(), "--bin", "fx-probe"],
        &[],
    );
    assert!(
        probe.stdout.contains("fx-probe: answer 42"),
        "{}",
        probe.stdout
    );
    built
}

#[test]
fn rate_limits_and_server_errors_leave_the_build_green() {
    let built = faulty_service_leaves_the_build_green(
        "gha-429",
        Fault::RateLimited,
        Duration::from_secs(120),
    );
    assert!(
        the_one_warning(&built).contains("unavailable"),
        "{}",
        built.stderr
    );
    faulty_service_leaves_the_build_green("gha-500", Fault::ServerError, Duration::from_secs(120));
}

#[test]
fn an_expired_download_url_is_a_miss() {
    faulty_service_leaves_the_build_green(
        "gha-expired",
        Fault::ExpiredDownload,
        Duration::from_secs(120),
    );
}

#[test]
fn a_hanging_blob_endpoint_costs_a_bounded_delay() {
    // One transfer timeout (5 s for small entries), then the remote is
    // skipped for the rest of the build.
    faulty_service_leaves_the_build_green("gha-hang", Fault::HangingBlob, Duration::from_secs(120));
}

/// Signed entries on an immutable remote: `push` cannot replace an unsigned
/// object there, and says so instead of claiming it did.
#[test]
fn push_says_when_it_cannot_replace_an_unsigned_object() {
    let (fake, a) = filled("gha-signed");
    let (secret, public) = support::machines::keygen("ci");
    let push = a.pcache(
        &["push", "--json"],
        &[
            ("PCACHE_REMOTE_TRUSTED_KEYS", public.as_str()),
            ("PCACHE_REMOTE_SIGNING_KEY", secret.as_str()),
        ],
    );
    assert!(push.success, "{}", push.stderr);
    let report: serde_json::Value = serde_json::from_str(&push.stdout).unwrap();
    assert_eq!(report["refused"]["entries"], STEPS.len(), "{report}");
    assert_eq!(report["moved"]["entries"], 0, "{report}");
    assert!(push.stderr.contains("cannot replace it"), "{}", push.stderr);
    assert_eq!(
        fake.calls("CreateCacheEntry"),
        2 * STEPS.len(),
        "no write tried"
    );
}
