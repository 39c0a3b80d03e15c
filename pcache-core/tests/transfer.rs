//! `Store::import` and `Store::export`: entries moved between stores keep
//! their value, creation time and compute time, and nothing damaged is ever
//! imported.

use std::fs;
use std::io::Write;
use std::time::Duration;

use pcache_core::{Error, Key, Store};

fn stores() -> (tempfile::TempDir, Store, Store) {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    (dir, a, b)
}

#[test]
fn an_exported_entry_imports_whole() {
    let (_dir, a, b) = stores();
    let key = Key::new("k").unwrap();
    let value: Vec<u64> = (0..10_000).collect();
    let stored = a
        .set_timed(&key, &value, Duration::from_millis(1500))
        .unwrap();
    let bytes = a.export(&key).unwrap().unwrap();
    assert_eq!(bytes, fs::read(a.entry_path(&key)).unwrap());
    let imported = b.import(&key, |f| f.write_all(&bytes)).unwrap();
    assert_eq!(imported.size_bytes, stored.size_bytes);
    assert_eq!(imported.created, stored.created);
    assert_eq!(imported.compute_time, Duration::from_millis(1500));
    assert_eq!(b.get::<Vec<u64>>(&key).unwrap(), Some(value));
    assert_eq!(a.export(&Key::new("absent").unwrap()).unwrap(), None);
}

#[test]
fn a_stream_entry_imports_whole() {
    let (_dir, a, b) = stores();
    let key = Key::new("s").unwrap();
    let mut writer = a.stream_writer(&key).unwrap();
    for i in 0..1000u32 {
        writer.push(&i).unwrap();
    }
    writer.commit(Duration::ZERO).unwrap();
    let bytes = a.export(&key).unwrap().unwrap();
    b.import(&key, |f| f.write_all(&bytes)).unwrap();
    let items: Vec<u32> = b
        .stream_reader(&key)
        .unwrap()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(items, (0..1000).collect::<Vec<_>>());
}

#[test]
fn nothing_damaged_is_imported_and_nothing_is_left_behind() {
    let (_dir, a, b) = stores();
    let key = Key::new("k").unwrap();
    a.set(&key, &"a value of some length".repeat(50)).unwrap();
    let good = a.export(&key).unwrap().unwrap();
    let mut future = good.clone();
    future[8] = 99;
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"more");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("header only", good[..64].to_vec()),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("trailing data", trailing),
        ("future version", future),
        ("garbage", vec![0x5a; good.len()]),
    ];
    for (what, bytes) in cases {
        let err = b.import(&key, |f| f.write_all(&bytes)).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{what}: {err}");
        assert_eq!(b.get::<String>(&key).unwrap(), None, "{what}");
    }
    // Every single bit flip.
    for bit in 0..good.len() * 8 {
        let mut bytes = good.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        assert!(
            b.import(&key, |f| f.write_all(&bytes)).is_err(),
            "bit {bit}"
        );
    }
    let scan = b.scan().unwrap();
    assert!(scan.entries.is_empty() && scan.temps.is_empty(), "{scan:?}");
}

#[test]
fn an_export_of_a_damaged_entry_fails_and_removes_it() {
    let (_dir, a, _b) = stores();
    let key = Key::new("k").unwrap();
    a.set(&key, &vec![1u8; 5000]).unwrap();
    let path = a.entry_path(&key);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 1;
    fs::write(&path, bytes).unwrap();
    assert!(matches!(a.export(&key), Err(Error::Corrupt { .. })));
    assert!(!path.exists());
}
