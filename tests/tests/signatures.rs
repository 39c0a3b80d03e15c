//! Signed remote entries against an adversary who can write the remote but
//! holds no trusted key: whatever they put there never reaches a build that
//! trusts keys (the step computes instead, the build stays green), `push`
//! puts signed objects back, and keys rotate.
//!
//! Machines and remotes as in `remote.rs`: the shared directory for every
//! kind of poisoned object, and S3 (from `.ci/services`) for an attacker
//! who pushes under a key of their own.

mod support;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use pcache_core::remote::signature::{Envelope, MAGIC};
use pcache_core::remote::{
    EntryName, HelperAction, HelperRequest, SIGNING_KEY_VAR, TRUSTED_KEYS_VAR,
};
use support::machines::{
    Machine, STEPS, assert_all_from_the_remote, assert_nowhere_in, keygen, remote_object,
    the_one_warning, uploader_running,
};
use support::{Build, Fixture, other_target, provided, shared_target};

/// The entry file inside a signed object.
fn body(object: &[u8]) -> Vec<u8> {
    Envelope::parse(object)
        .unwrap()
        .expect("a signed object")
        .body
        .to_vec()
}

/// The signature data of a signed object (everything before its body).
fn signature_data(object: &[u8]) -> Vec<u8> {
    object[..object.len() - body(object).len()].to_vec()
}

fn refused_in_stats(machine: &Machine) -> u64 {
    let stats = machine.pcache(&["stats", "--json"], &[]);
    assert!(stats.success, "{}", stats.stderr);
    let json: serde_json::Value = serde_json::from_str(&stats.stdout).unwrap();
    json["refused"].as_u64().unwrap()
}

fn computed_steps(machine: &Machine) -> Vec<&'static str> {
    STEPS
        .into_iter()
        .filter(|s| machine.fixture.count(s) > 0)
        .collect()
}

fn assert_probe_runs(machine: &Machine) -> Build {
    let package = machine.fixture.package.clone();
    let probe = machine.build(&["run", "-p", &package, "--bin", "fx-probe"], &[]);
    assert!(
        probe.stdout.contains("fx-probe: answer 42"),
        "{}",
        probe.stdout
    );
    probe
}

#[test]
fn poisoned_objects_in_a_shared_directory_never_reach_a_build_that_trusts_keys() {
    let (old_secret, old_public) = keygen("ci");
    // The attacker's key even takes the trusted key's name.
    let (evil_secret, evil_public) = keygen("ci");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let reader = [(TRUSTED_KEYS_VAR, old_public.as_str())];
    let pusher = [
        (TRUSTED_KEYS_VAR, old_public.as_str()),
        (SIGNING_KEY_VAR, old_secret.as_str()),
    ];

    // The trusted CI job fills the remote: every object signed.
    let a = Machine::new(Fixture::directives("signed-a", shared_target()), &url);
    a.build_package(&pusher);
    a.wait_for_uploads();
    let package = a.fixture.package.clone();
    let object = |step: &str| remote_object(dir.path(), &package, step);
    let signed: Vec<Vec<u8>> = STEPS.iter().map(|s| fs::read(object(s)).unwrap()).collect();
    for (step, bytes) in STEPS.iter().zip(&signed) {
        assert!(bytes.starts_with(&MAGIC), "{step} is not signed");
    }
    let secret_material = old_secret.split_once(':').unwrap().1;
    assert_nowhere_in(dir.path(), secret_material);
    assert_nowhere_in(a.root(), secret_material);

    // The attacker's own signed objects, for the same steps.
    let evil_dir = tempfile::tempdir().unwrap();
    let evil = Machine::new(
        a.fixture.checkout_elsewhere("signed-evil", other_target()),
        &format!("file://{}", evil_dir.path().display()),
    );
    evil.build_package(&[
        (TRUSTED_KEYS_VAR, evil_public.as_str()),
        (SIGNING_KEY_VAR, evil_secret.as_str()),
    ]);
    evil.wait_for_uploads();
    let evil_object =
        |step: &str| fs::read(remote_object(evil_dir.path(), &package, step)).unwrap();

    // Round 1: one kind of poison per step.
    let [value, fallible, items, clib, builder] = &signed[..] else {
        unreachable!()
    };
    // Unsigned (a valid entry otherwise).
    fs::write(object("value"), body(value)).unwrap();
    // Signed by a key that is not trusted, under a trusted key's name.
    fs::write(object("fallible"), evil_object("fallible")).unwrap();
    // Another entry's body under this one's signature.
    fs::write(
        object("items"),
        [signature_data(items), body(fallible)].concat(),
    )
    .unwrap();
    // A valid signed object copied to another object's path (replay).
    fs::write(object("clib"), value).unwrap();
    // Signature data truncated.
    fs::write(object("builder"), &builder[..MAGIC.len() + 1 + 2 + 30]).unwrap();
    let poisoned: Vec<Vec<u8>> = STEPS.iter().map(|s| fs::read(object(s)).unwrap()).collect();
    let _ = clib;

    let b = Machine::new(
        a.fixture.checkout_elsewhere("signed-b", other_target()),
        &url,
    );
    let built = b.build_package(&reader);
    assert_eq!(computed_steps(&b), STEPS, "every poisoned step computed");
    let warning = the_one_warning(&built);
    assert!(warning.contains("refused"), "{warning}");
    assert!(warning.contains(&url), "names the remote: {warning}");
    assert!(!warning.contains(&evil_public[3..]), "{warning}");
    assert_probe_runs(&b);
    assert_eq!(refused_in_stats(&b), 5);
    // A reader holds no signing key: it sends nothing the others would
    // refuse, and leaves the poison for a signed push to replace.
    b.wait_for_uploads();
    for (step, bytes) in STEPS.iter().zip(&poisoned) {
        assert_eq!(&fs::read(object(step)).unwrap(), bytes, "{step}");
    }

    // `push` with the signing key replaces every object it cannot verify.
    let push = a.pcache(&["push", "--json"], &pusher);
    assert!(push.success, "{}", push.stderr);
    let report: serde_json::Value = serde_json::from_str(&push.stdout).unwrap();
    assert_eq!(report["refused"]["entries"], 5, "{report}");
    for (step, bytes) in STEPS.iter().zip(&signed) {
        assert_eq!(&fs::read(object(step)).unwrap(), bytes, "{step}");
    }
    // Without the signing key, `push` says what it needs.
    let unsigned = a.pcache(&["push"], &reader);
    assert!(!unsigned.success);
    assert!(
        unsigned.stderr.contains(SIGNING_KEY_VAR),
        "{}",
        unsigned.stderr
    );

    // Round 2: signature data alone, and signature data claiming a name
    // longer than any key's.
    fs::write(object("value"), signature_data(value)).unwrap();
    let mut oversized = MAGIC.to_vec();
    oversized.push(255);
    oversized.extend(std::iter::repeat_n(b'k', 255 + 64));
    oversized.extend(body(fallible));
    fs::write(object("fallible"), oversized).unwrap();
    let c = Machine::new(
        a.fixture.checkout_elsewhere("signed-c", other_target()),
        &url,
    );
    let built = c.build(&["build", "-vv", "-p", &package], &reader);
    assert_eq!(computed_steps(&c), ["value", "fallible"]);
    for step in ["items", "clib", "builder"] {
        assert!(
            built
                .steps()
                .iter()
                .any(|s| s.starts_with(&format!("hit {step}:"))
                    && s.ends_with("(fetched from the remote)")),
            "{step}: {:?}",
            built.steps()
        );
    }
    assert_probe_runs(&c);

    // Rotation: the job signs with a new key, which replaces the old
    // signatures too; readers trusting both keys take everything.
    let (new_secret, new_public) = keygen("ci-2027");
    let push = a.pcache(
        &["push", "--json"],
        &[
            (TRUSTED_KEYS_VAR, new_public.as_str()),
            (SIGNING_KEY_VAR, new_secret.as_str()),
        ],
    );
    assert!(push.success, "{}", push.stderr);
    let report: serde_json::Value = serde_json::from_str(&push.stdout).unwrap();
    assert_eq!(report["moved"]["entries"], 5, "{report}");
    let both = format!("{old_public},{new_public}");
    let d = Machine::new(
        a.fixture.checkout_elsewhere("signed-d", other_target()),
        &url,
    );
    let built = d.build(
        &["build", "-vv", "-p", &package],
        &[(TRUSTED_KEYS_VAR, both.as_str())],
    );
    assert_all_from_the_remote(&built);
    assert_eq!(computed_steps(&d), Vec::<&str>::new());
    assert_eq!(built.pcache_warnings(), Vec::<&str>::new());
}

#[test]
fn a_malformed_trusted_key_list_is_one_clear_warning_and_nothing_is_taken() {
    let (secret, _) = keygen("ci");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let a = Machine::new(
        Fixture::directives("signed-malformed", shared_target()),
        &url,
    );
    // The secret pasted where the public key belongs: not a silent pass,
    // and not echoed.
    let wrong = format!("ci:{}", &secret[3..23]);
    let built = a.build_package(&[(TRUSTED_KEYS_VAR, wrong.as_str())]);
    a.assert_all_computed_once();
    let warning = the_one_warning(&built);
    assert!(warning.contains(TRUSTED_KEYS_VAR), "{warning}");
    assert!(!warning.contains(&secret[3..23]), "{warning}");
    let remote = a.pcache(&["remote"], &[(TRUSTED_KEYS_VAR, wrong.as_str())]);
    assert!(!remote.success);
    assert!(
        remote.stderr.contains(TRUSTED_KEYS_VAR),
        "{}",
        remote.stderr
    );
    // Nothing was uploaded by a process that could not read its keys: the
    // entries wait in the outbox.
    let started = std::time::Instant::now();
    while uploader_running(a.root()) && started.elapsed().as_secs() < 60 {
        thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!dir.path().join("v3").exists());
    assert_eq!(fs::read_dir(a.root().join(".outbox")).unwrap().count(), 5);
}

#[test]
fn the_remote_command_says_whether_objects_are_authenticated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let m = Machine::new(
        Fixture::directives("signed-remote-cmd", shared_target()),
        &url,
    );
    let open = m.pcache(&["remote"], &[]);
    assert!(open.success, "{}", open.stderr);
    assert!(open.stdout.contains("unauthenticated"), "{}", open.stdout);
    assert!(open.stdout.contains(TRUSTED_KEYS_VAR), "{}", open.stdout);

    let (secret, public) = keygen("team");
    let signed = m.pcache(
        &["remote", "--json"],
        &[
            (TRUSTED_KEYS_VAR, public.as_str()),
            (SIGNING_KEY_VAR, secret.as_str()),
        ],
    );
    assert!(signed.success, "{}", signed.stderr);
    let json: serde_json::Value = serde_json::from_str(&signed.stdout).unwrap();
    assert_eq!(json["trusted_keys"], serde_json::json!(["team"]));
    assert_eq!(json["signing_key"], "team");
    assert_eq!(json["refused"], 0);
    assert!(!signed.stdout.contains(&secret[5..]), "{}", signed.stdout);
    assert!(!signed.stdout.contains(&public[5..]), "{}", signed.stdout);
}

/// Readers fetching while an object flips between the signed one and a
/// forged one get either the signed entry or a refusal: never the forgery.
#[test]
fn readers_racing_a_poisoner_get_the_signed_entry_or_nothing() {
    let (secret, public) = keygen("ci");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let a = Machine::new(Fixture::directives("signed-race", shared_target()), &url);
    a.build_package(&[
        (TRUSTED_KEYS_VAR, public.as_str()),
        (SIGNING_KEY_VAR, secret.as_str()),
    ]);
    a.wait_for_uploads();
    let package = a.fixture.package.clone();
    let target = remote_object(dir.path(), &package, "value");
    let good = fs::read(&target).unwrap();
    let forged = [
        signature_data(&good),
        body(&fs::read(remote_object(dir.path(), &package, "items")).unwrap()),
    ]
    .concat();
    let key = target.file_name().unwrap().to_str().unwrap().to_owned();
    let cache_id = target
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();

    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            let staging = dir.path().join(".poison");
            let mut forged_turn = true;
            while !stop.load(Ordering::Relaxed) {
                let bytes = if forged_turn { &forged } else { &good };
                fs::write(&staging, bytes).unwrap();
                fs::rename(&staging, &target).unwrap();
                forged_turn = !forged_turn;
            }
        });
        // Stops the poisoner however this thread leaves the scope.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        let mut outcomes = (0, 0, 0);
        for _ in 0..40 {
            let root = tempfile::tempdir().unwrap();
            match fetch(root.path(), &url, &public, &package, &cache_id, &key) {
                Fetched::Entry(entry) => {
                    assert_eq!(entry, body(&good), "a fetched entry is the signed one");
                    outcomes.0 += 1;
                }
                Fetched::Refused => outcomes.1 += 1,
                Fetched::Failed => outcomes.2 += 1,
            }
        }
        assert!(outcomes.1 > 0, "no refusal seen: {outcomes:?}");
    });
}

/// Runs the helper as a build script does on a miss: the entry file it
/// stored under `root`, or why there is none.
fn fetch(
    root: &Path,
    url: &str,
    trusted: &str,
    package: &str,
    cache_id: &str,
    key: &str,
) -> Fetched {
    let entry = EntryName::new(package, cache_id, key.parse().unwrap()).unwrap();
    let out = helper(
        root,
        url,
        HelperAction::Fetch(entry.clone()),
        (TRUSTED_KEYS_VAR, trusted),
    );
    let stored = entry.cache_dir(root).join(key);
    if out.status.success() && stored.is_file() {
        return Fetched::Entry(fs::read(stored).unwrap());
    }
    // Refused, or a read cut short by the swap: nothing kept either way.
    assert!(!stored.exists());
    if String::from_utf8_lossy(&out.stderr).contains("refused") {
        Fetched::Refused
    } else {
        Fetched::Failed
    }
}

/// Runs the helper on `action` for the pcache directory `root`, with the
/// remote `url` and one more variable.
fn helper(root: &Path, url: &str, action: HelperAction, var: (&str, &str)) -> Output {
    let request = HelperRequest::new(root.to_path_buf(), action);
    std::process::Command::new(support::machines::HELPER)
        .args(request.to_args())
        .env("PCACHE_REMOTE", url)
        .env(var.0, var.1)
        .output()
        .unwrap()
}

enum Fetched {
    Entry(Vec<u8>),
    Refused,
    Failed,
}

/// On a real server: an attacker with write access pushes objects signed by
/// a key of their own over the team's; readers refuse them and compute,
/// the team's `push` replaces them, and the next reader hits.
#[test]
fn s3_objects_pushed_under_an_untrusted_key_are_refused_then_replaced() {
    let Some(bucket) = provided("PCACHE_TEST_S3") else {
        return;
    };
    let (secret, public) = keygen("ci");
    let (evil_secret, evil_public) = keygen("intruder");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // A prefix of its own: `s3://bucket/prefix?query` → `…/prefix/signed-…?query`.
    let (path, query) = bucket.split_once('?').unwrap_or((&bucket, ""));
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let url = format!("{}/signed-{nanos:x}{query}", path.trim_end_matches('/'));
    let team = [
        (TRUSTED_KEYS_VAR, public.as_str()),
        (SIGNING_KEY_VAR, secret.as_str()),
    ];
    let a = Machine::new(Fixture::directives("signed-s3-a", shared_target()), &url);
    a.build_package(&team);
    a.wait_for_uploads();

    // The attacker trusts only their key, so their `push` replaces the
    // team's objects with their own.
    let evil = Machine::new(
        a.fixture
            .checkout_elsewhere("signed-s3-evil", other_target()),
        &url,
    );
    evil.build_package(&[(TRUSTED_KEYS_VAR, evil_public.as_str())]);
    let push = evil.pcache(
        &["push", "--json"],
        &[
            (TRUSTED_KEYS_VAR, evil_public.as_str()),
            (SIGNING_KEY_VAR, evil_secret.as_str()),
        ],
    );
    assert!(push.success, "{}", push.stderr);
    let report: serde_json::Value = serde_json::from_str(&push.stdout).unwrap();
    assert_eq!(report["refused"]["entries"], 5, "{report}");

    let reader = [(TRUSTED_KEYS_VAR, public.as_str())];
    let b = Machine::new(
        a.fixture.checkout_elsewhere("signed-s3-b", other_target()),
        &url,
    );
    let built = b.build_package(&reader);
    assert_eq!(computed_steps(&b), STEPS);
    assert!(the_one_warning(&built).contains("intruder"));
    assert_eq!(refused_in_stats(&b), 5);

    let push = a.pcache(&["push", "--json"], &team);
    assert!(push.success, "{}", push.stderr);
    let report: serde_json::Value = serde_json::from_str(&push.stdout).unwrap();
    assert_eq!(report["refused"]["entries"], 5, "{report}");
    let c = Machine::new(
        a.fixture.checkout_elsewhere("signed-s3-c", other_target()),
        &url,
    );
    let built = c.build(&["build", "-vv", "-p", &c.fixture.package.clone()], &reader);
    assert_all_from_the_remote(&built);
    assert_eq!(computed_steps(&c), Vec::<&str>::new());
}

/// A large object from a server that sends it piece by piece has its body
/// hashed as it arrives: on WebDAV (from `.ci/services`), a 1 MiB signed
/// entry is fetched whole, and the same object with one body byte changed
/// in place, its signature data untouched, is refused and nothing is kept.
#[test]
fn a_large_object_hashed_as_it_arrives_is_taken_only_as_signed() {
    let Some(dav) = provided("PCACHE_TEST_WEBDAV") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("{}/large-{nanos:x}", dav.trim_end_matches('/'));
    let (secret, public) = keygen("ci");

    let pushed = tempfile::tempdir().unwrap();
    let cache = pcache_core::short_id("large");
    let store = pcache_core::Store::open(pushed.path().join("fx").join(&cache)).unwrap();
    let key = pcache_core::Key::new("a large value").unwrap();
    let value: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    store.set(&key, &value).unwrap();
    let entry = EntryName::new("fx", &cache, key).unwrap();
    let out = helper(
        pushed.path(),
        &url,
        HelperAction::Upload(Some(entry.clone())),
        (SIGNING_KEY_VAR, &secret),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = fs::read(entry.cache_dir(pushed.path()).join(key.to_string())).unwrap();

    let fetched = |what: &str| {
        let root = tempfile::tempdir().unwrap();
        let got = fetch(root.path(), &url, &public, "fx", &cache, &key.to_string());
        match (what, got) {
            ("signed", Fetched::Entry(entry)) => assert_eq!(entry, stored),
            ("swapped", Fetched::Refused) => {}
            (_, Fetched::Entry(_)) => panic!("{what}: taken"),
            (_, Fetched::Refused) => panic!("{what}: refused"),
            (_, Fetched::Failed) => panic!("{what}: failed"),
        }
    };
    fetched("signed");
    let object_url = format!(
        "{}/{}",
        url.trim_start_matches("webdav+"),
        entry.remote_key()
    );
    let good = dav::get(&object_url);
    assert_eq!(body(&good), stored);
    let mut swapped = good.clone();
    let middle = good.len() - stored.len() / 2;
    swapped[middle] ^= 0x40;
    dav::put(&object_url, &swapped);
    fetched("swapped");
    dav::put(&object_url, &good);
    fetched("signed");
}

/// Just enough HTTP/1.1 to read and overwrite one object on the test's
/// WebDAV server behind pcache's back.
mod dav {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn request(url: &str, method: &str, body: &[u8]) -> Vec<u8> {
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = TcpStream::connect(host).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a whole response")
            + 4;
        let status = String::from_utf8_lossy(&response[..end]).into_owned();
        assert!(status.starts_with("HTTP/1.1 2"), "{method} {url}: {status}");
        response.split_off(end)
    }

    pub(super) fn get(url: &str) -> Vec<u8> {
        request(url, "GET", b"")
    }

    pub(super) fn put(url: &str, body: &[u8]) {
        request(url, "PUT", body);
    }
}
