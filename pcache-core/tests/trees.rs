//! File trees restored straight from their entry file once the entry was
//! verified: the same tree as a checked restore, and no change to the file
//! goes unseen.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pcache_core::tree::{Restore, Tree};
use pcache_core::{Error, Key, Lookup, Store};

use support::{pattern, seen_file, settled_store};

/// A directory like a build script's `OUT_DIR`: large binaries, a text file
/// naming the directory, an executable, a symlink, nested directories.
fn out_dir(root: &Path) -> PathBuf {
    let out = root.join("out");
    fs::create_dir_all(out.join("lib/pkgconfig")).unwrap();
    fs::write(out.join("lib/libbig.a"), pattern(700_000, 3)).unwrap();
    fs::write(out.join("lib/libsmall.a"), pattern(1000, 5)).unwrap();
    fs::write(
        out.join("lib/pkgconfig/big.pc"),
        format!("prefix={}\nlibdir=${{prefix}}/lib\n", out.display()),
    )
    .unwrap();
    fs::write(out.join("tool"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(out.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("lib/libbig.a", out.join("libbig.a")).unwrap();
    out
}

/// Every path under `dir`: contents (or link target) and executable bit.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, bool)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(dir).unwrap().to_owned();
        if meta.is_dir() {
            pending.extend(fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else if meta.file_type().is_symlink() {
            let link = fs::read_link(&path).unwrap().into_os_string();
            found.insert(rel, (link.into_encoded_bytes(), false));
        } else {
            let executable = meta.permissions().mode() & 0o100 != 0;
            found.insert(rel, (fs::read(&path).unwrap(), executable));
        }
    }
    found
}

fn restore(store: &Store, key: &Key, restore: Restore<'_>, dest: &Path) -> Vec<PathBuf> {
    match store.restore_tree(key, restore, dest).unwrap() {
        Lookup::Found(restored) => restored.paths,
        other => panic!("not found: {other:?}"),
    }
}

#[test]
fn a_verified_tree_restores_from_its_file_exactly_as_a_checked_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = out_dir(dir.path());
    let store = settled_store(&dir.path().join("cache"));
    let key = Key::new("out").unwrap();
    let tree = Tree::capture(&src, src.to_str()).unwrap();
    store
        .set_with_notes(&key, &tree, std::time::Duration::from_secs(3), b"notes")
        .unwrap();

    // First restore: checked, and the verification recorded.
    let first = dir.path().join("first/out");
    let paths = restore(
        &store,
        &key,
        Restore::exact().place(first.to_str().unwrap()),
        &first,
    );
    assert!(seen_file(&store, &key).is_file());
    // Then from the file, into a destination holding stale files.
    let second = dir.path().join("second/out");
    fs::create_dir_all(&second).unwrap();
    fs::write(second.join("stale.o"), "old").unwrap();
    let Lookup::Found(restored) = store
        .restore_tree(
            &key,
            Restore::exact().place(second.to_str().unwrap()),
            &second,
        )
        .unwrap()
    else {
        panic!("stored")
    };
    assert_eq!(restored.paths, paths);
    assert_eq!(restored.notes, b"notes");
    assert_eq!(restored.content_bytes, tree.content_bytes());
    assert_eq!(
        restored.info.compute_time,
        std::time::Duration::from_secs(3)
    );

    let expected = |place: &Path| {
        let mut files = snapshot(&src);
        files.insert(
            PathBuf::from("lib/pkgconfig/big.pc"),
            (
                format!("prefix={}\nlibdir=${{prefix}}/lib\n", place.display()).into_bytes(),
                false,
            ),
        );
        files
    };
    assert_eq!(snapshot(&first), expected(&first));
    assert_eq!(
        snapshot(&second),
        expected(&second),
        "the stale file is gone"
    );

    // In place, over a destination with other files: they stay.
    let third = dir.path().join("third");
    fs::create_dir_all(&third).unwrap();
    fs::write(third.join("mine.txt"), "kept").unwrap();
    restore(
        &store,
        &key,
        Restore::in_place().place(third.to_str().unwrap()),
        &third,
    );
    let mut want = expected(&third);
    want.insert(PathBuf::from("mine.txt"), (b"kept".to_vec(), false));
    assert_eq!(snapshot(&third), want);
}

#[test]
fn a_tree_changed_after_its_verification_is_caught_and_nothing_is_swapped_in() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let src = out_dir(dir.path());
    let store = settled_store(&dir.path().join("cache"));
    let key = Key::new("out").unwrap();
    store
        .set(&key, &Tree::capture(&src, None).unwrap())
        .unwrap();
    let dest = dir.path().join("dest");
    restore(&store, &key, Restore::exact(), &dest);
    fs::write(dest.join("marker"), "before").unwrap();

    // A bit flipped inside a file's contents, the mtime put back.
    let path = store.entry_path(&key);
    let len = fs::metadata(&path).unwrap().len();
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&path).unwrap());
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let at = len / 2;
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(at)).unwrap();
    std::io::Read::read_exact(&mut file, &mut byte).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&[byte[0] ^ 1]).unwrap();
    drop(file);
    filetime::set_file_mtime(&path, mtime).unwrap();

    let err = store
        .restore_tree(&key, Restore::exact(), &dest)
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(!path.exists(), "the corrupt entry is removed");
    assert_eq!(fs::read_to_string(dest.join("marker")).unwrap(), "before");
}

#[test]
fn entries_that_are_not_trees_or_are_missing_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = settled_store(dir.path());
    let dest = dir.path().join("dest");
    let key = Key::new("absent").unwrap();
    assert!(matches!(
        store.restore_tree(&key, Restore::exact(), &dest).unwrap(),
        Lookup::Absent
    ));
    // A large byte value, verified, then asked for as a tree.
    let bytes = Key::new("bytes").unwrap();
    store.set(&bytes, &pattern(200_000, 1)).unwrap();
    store.get::<Vec<u8>>(&bytes).unwrap();
    let err = store
        .restore_tree(&bytes, Restore::exact(), &dest)
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(!dest.exists(), "nothing restored");
}
