//! Trees captured, stored, decoded and restored; no stored tree writes
//! outside its destination; text files follow their place.

use std::fs;
use std::path::Path;

use super::Restore;
use super::format::{Node, Tree, is_safe_relative, link_stays_inside};
use super::restore::{current_umask, mode};
use crate::error::Error;

#[test]
fn unsafe_paths_are_rejected() {
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a//b",
        "./a",
        "a/.",
        "c:\\x",
        "a\\..\\b",
    ] {
        assert!(!is_safe_relative(bad), "{bad:?}");
    }
    for good in ["a", "a/b/c.rs", "..a", "a..b/c"] {
        assert!(is_safe_relative(good), "{good:?}");
    }
}

#[test]
fn links_must_stay_inside() {
    assert!(link_stays_inside("a/link", "../b"));
    assert!(link_stays_inside("a/b/link", "../../c"));
    assert!(link_stays_inside("link", "a/./b"));
    assert!(!link_stays_inside("link", "../x"));
    assert!(!link_stays_inside("a/link", "../../x"));
    assert!(!link_stays_inside("a/link", "/etc"));
    assert!(!link_stays_inside("a/link", ""));
}

#[cfg(unix)]
#[test]
fn each_refusal_says_what_is_wrong_with_which_path() {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("out");
    fs::create_dir_all(&dest).unwrap();
    std::os::unix::fs::symlink("../../etc", dest.join("up")).unwrap();
    let err = Tree::capture(&dest, None).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("points out of the tree"), "{message}");
    assert!(
        message.contains(&dest.join("up").display().to_string()),
        "{message}"
    );

    let nodes = vec![Node::Dir {
        path: "/abs".into(),
    }];
    let e = rmp_serde::from_slice::<Tree>(&stored(nodes, &[])).unwrap_err();
    assert!(e.to_string().contains("not a plain relative path"), "{e}");
    assert!(!e.to_string().contains("symlink"), "{e}");
}

/// The stored form of a tree, valid or not.
fn stored(nodes: Vec<Node>, contents: &[Vec<u8>]) -> Vec<u8> {
    rmp_serde::to_vec(&Tree::new(nodes, contents)).unwrap()
}

fn file(path: &str, len: u64) -> Node {
    Node::File {
        path: path.into(),
        executable: false,
        len,
        holes: Vec::new(),
    }
}

#[test]
fn decoding_a_tree_with_an_escaping_path_fails() {
    let bytes = stored(vec![file("../../escape", 1)], &[b"x".to_vec()]);
    assert!(rmp_serde::from_slice::<Tree>(&bytes).is_err());
    let nodes = vec![Node::Symlink {
        path: "l".into(),
        target: "../../etc/passwd".into(),
    }];
    assert!(rmp_serde::from_slice::<Tree>(&stored(nodes, &[])).is_err());
}

#[test]
fn lengths_that_do_not_add_up_are_refused() {
    let ok = stored(
        vec![file("a", 2), file("b", 1)],
        &[b"xy".to_vec(), b"z".to_vec()],
    );
    let tree = rmp_serde::from_slice::<Tree>(&ok).unwrap();
    let contents: Vec<&[u8]> = tree.entries().map(|(_, c)| c).collect();
    assert_eq!(contents, [&b"xy"[..], b"z"]);
    for (lens, data) in [
        ((2, 2), &b"xyz"[..]),
        ((2, 0), b"xyz"),
        ((u64::MAX, 4), b"xyz"),
    ] {
        let bad = stored(vec![file("a", lens.0), file("b", lens.1)], &[data.to_vec()]);
        assert!(rmp_serde::from_slice::<Tree>(&bad).is_err(), "{lens:?}");
    }
    let mut no_tag = Tree::new(vec![], &[]).bytes;
    no_tag[0] = b'x';
    let bytes = rmp_serde::to_vec(&serde_bytes::ByteBuf::from(no_tag)).unwrap();
    assert!(rmp_serde::from_slice::<Tree>(&bytes).is_err());
}

#[cfg(unix)]
#[test]
fn identical_files_in_dest_are_left_alone() {
    let dest = tempfile::tempdir().unwrap();
    let tree = Tree::new(
        vec![file("same.rs", 3), file("changed.rs", 3)],
        &[b"abc".to_vec(), b"new".to_vec()],
    );
    fs::write(dest.path().join("same.rs"), "abc").unwrap();
    fs::write(dest.path().join("changed.rs"), "old").unwrap();
    for name in ["same.rs", "changed.rs"] {
        use std::os::unix::fs::PermissionsExt;
        let path = dest.path().join(name);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode(false))).unwrap();
        filetime::set_file_mtime(&path, filetime::FileTime::from_unix_time(1_000_000, 0)).unwrap();
    }
    Restore::in_place().run(&tree, dest.path()).unwrap();
    let mtime = |name: &str| {
        filetime::FileTime::from_last_modification_time(
            &fs::metadata(dest.path().join(name)).unwrap(),
        )
        .unix_seconds()
    };
    assert_eq!(mtime("same.rs"), 1_000_000, "untouched");
    assert_ne!(mtime("changed.rs"), 1_000_000);
    assert_eq!(fs::read(dest.path().join("changed.rs")).unwrap(), b"new");
}

#[cfg(unix)]
#[test]
fn capture_and_restore_round_trip_with_modes() {
    use std::os::unix::fs::PermissionsExt;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("out");
    let dir = src.path();
    fs::create_dir_all(dir.join("a/b")).unwrap();
    fs::write(dir.join("a/b/deep.rs"), "pub const X: u8 = 1;").unwrap();
    fs::write(dir.join("top.bin"), [0u8, 255, 7]).unwrap();
    fs::write(dir.join("run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(dir.join("run.sh"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("a/b/deep.rs", dir.join("link.rs")).unwrap();
    fs::create_dir(dir.join("empty")).unwrap();
    let tree = Tree::capture(dir, None).unwrap();
    drop(src);
    let restored = Restore::in_place().run(&tree, &dest).unwrap();
    assert_eq!(restored.len(), 7);
    assert_eq!(
        fs::read(dest.join("a/b/deep.rs")).unwrap(),
        b"pub const X: u8 = 1;"
    );
    assert_eq!(fs::read(dest.join("top.bin")).unwrap(), [0, 255, 7]);
    assert_eq!(
        fs::read_link(dest.join("link.rs")).unwrap(),
        Path::new("a/b/deep.rs")
    );
    assert!(dest.join("empty").is_dir());
    let mode = fs::metadata(dest.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o100, 0, "executable bit restored");
    assert_eq!(mode & 0o6000, 0, "setuid/setgid never restored");
    assert_eq!(
        mode & 0o022 & !(0o666 & !current_umask()),
        0,
        "no write bits beyond the umask"
    );
}

#[cfg(unix)]
#[test]
fn restore_never_writes_through_a_symlinked_directory() {
    let outside = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dest.path().join("sub")).unwrap();
    let tree = Tree::new(vec![file("sub/x", 1)], &[b"x".to_vec()]);
    assert!(matches!(
        Restore::in_place().run(&tree, dest.path()),
        Err(Error::Unsafe { .. })
    ));
    assert!(!outside.path().join("x").exists());
}

mod properties {
    use std::fs;
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::super::Restore;
    use super::super::format::{Node, Tree, validate};

    /// Mostly ordinary names, so most trees are accepted and restored;
    /// sometimes a part that must be rejected.
    fn path_part() -> impl Strategy<Value = String> {
        prop_oneof![
            12 => prop::sample::select(vec!["a", "b", "d.rs"]),
            1 => prop::sample::select(vec!["..", ".", "", "/", "\\", "c:", "\0"]),
        ]
        .prop_map(str::to_owned)
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(path_part(), 1..5).prop_map(|parts| parts.join("/"))
    }

    /// A node, and its contents if it is a file.
    fn node() -> impl Strategy<Value = (Node, Option<Vec<u8>>)> {
        prop_oneof![
            path().prop_map(|path| (Node::Dir { path }, None)),
            (
                path(),
                any::<bool>(),
                prop::collection::vec(any::<u8>(), 0..8)
            )
                .prop_map(|(path, executable, bytes)| (
                    Node::File {
                        path,
                        executable,
                        len: bytes.len() as u64,
                        holes: Vec::new(),
                    },
                    Some(bytes)
                )),
            (path(), path()).prop_map(|(path, target)| (Node::Symlink { path, target }, None)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever a stored tree holds, restoring it writes nothing
        /// outside the destination.
        #[test]
        fn no_stored_tree_writes_outside_its_destination(nodes in prop::collection::vec(node(), 0..8)) {
            let (nodes, contents): (Vec<Node>, Vec<Option<Vec<u8>>>) = nodes.into_iter().unzip();
            let contents: Vec<Vec<u8>> = contents.into_iter().flatten().collect();
            let bytes = rmp_serde::to_vec(&Tree::new(nodes.clone(), &contents)).unwrap();
            let Ok(tree) = rmp_serde::from_slice::<Tree>(&bytes) else {
                prop_assert!(validate(&nodes).is_err());
                return Ok(());
            };
            let root = tempfile::tempdir().unwrap();
            let dest = root.path().join("sandbox/dest");
            fs::create_dir_all(&dest).unwrap();
            let _ = Restore::in_place().run(&tree, &dest);
            let outside: Vec<_> = walk(root.path())
                .into_iter()
                .filter(|p| !p.starts_with(&dest) && p != &dest && !dest.starts_with(p))
                .collect();
            prop_assert!(outside.is_empty(), "{outside:?} from {nodes:?}");
            for link in walk(&dest).into_iter().filter(|p| p.is_symlink()) {
                let resolved = fs::canonicalize(&link);
                if let Ok(resolved) = resolved {
                    let dest = fs::canonicalize(&dest).unwrap();
                    prop_assert!(resolved.starts_with(&dest), "{link:?} -> {resolved:?}");
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_decode_into_an_unsafe_tree(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(tree) = rmp_serde::from_slice::<Tree>(&bytes) {
                prop_assert!(validate(&tree.nodes).is_ok());
            }
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&path));
            }
            out.push(path);
        }
        out
    }
}

#[test]
fn text_files_follow_their_place_and_binary_files_stay_as_they_are() {
    let src = tempfile::tempdir().unwrap();
    let place = src.path().to_str().unwrap();
    fs::write(
        src.path().join("zlib.pc"),
        format!("prefix={place}\nlibdir={place}/lib\nnot={place}side\n"),
    )
    .unwrap();
    let binary = [b"\0".as_slice(), place.as_bytes()].concat();
    fs::write(src.path().join("lib.a"), &binary).unwrap();
    std::os::unix::fs::symlink(src.path().join("zlib.pc"), src.path().join("abs-link")).unwrap();
    let tree = Tree::capture(src.path(), Some(place)).unwrap();
    let tree: Tree = rmp_serde::from_slice(&rmp_serde::to_vec(&tree).unwrap()).unwrap();

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("elsewhere/out");
    let new_place = dest.to_str().unwrap();
    Restore::exact().place(new_place).run(&tree, &dest).unwrap();
    assert_eq!(
        fs::read_to_string(dest.join("zlib.pc")).unwrap(),
        format!("prefix={new_place}\nlibdir={new_place}/lib\nnot={place}side\n")
    );
    assert_eq!(fs::read(dest.join("lib.a")).unwrap(), binary);
    assert_eq!(
        fs::read_link(dest.join("abs-link")).unwrap(),
        Path::new("zlib.pc")
    );
}

#[test]
fn an_exact_restore_replaces_the_destination_and_cleans_up_after_killed_ones() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("new.rs"), "new").unwrap();
    let tree = Tree::capture(src.path(), None).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("out");
    fs::create_dir_all(dest.join("stale/dir")).unwrap();
    fs::write(dest.join("stale/dir/old.o"), "old").unwrap();
    // What a restore killed midway leaves: a staging directory of a pid
    // that is not running.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let abandoned = out.path().join(format!(".pcache-restore-out.{dead}.0"));
    fs::create_dir_all(abandoned.join("half")).unwrap();

    let paths = Restore::exact().run(&tree, &dest).unwrap();
    assert_eq!(paths, [Path::new("new.rs")]);
    let names: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["new.rs"]);
    let beside: Vec<_> = fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(beside, ["out"], "no staging directory is left beside it");
    // Into a destination that does not exist yet too.
    let fresh = out.path().join("fresh");
    Restore::exact().run(&tree, &fresh).unwrap();
    assert!(fresh.join("new.rs").is_file());
}

#[test]
fn the_first_difference_between_two_trees_is_named() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        fs::write(dir.join("same.rs"), "x").unwrap();
        fs::write(dir.join("z.rs"), "z").unwrap();
    }
    let tree = |dir: &Path| Tree::capture(dir, None).unwrap();
    assert_eq!(tree(a.path()).first_difference(&tree(b.path())), None);
    fs::write(b.path().join("z.rs"), "changed").unwrap();
    assert_eq!(
        tree(a.path()).first_difference(&tree(b.path())).as_deref(),
        Some("`z.rs` differs")
    );
    fs::write(b.path().join("m.rs"), "new").unwrap();
    assert_eq!(
        tree(a.path()).first_difference(&tree(b.path())).as_deref(),
        Some("`m.rs` is new")
    );
    fs::remove_file(b.path().join("same.rs")).unwrap();
    assert_eq!(
        tree(a.path()).first_difference(&tree(b.path())).as_deref(),
        Some("`m.rs` is new")
    );
}
