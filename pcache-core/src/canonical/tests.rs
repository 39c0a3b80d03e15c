//! The canonical form's rules, one behaviour at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rmp::encode;

use super::*;

fn bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    canonical_bytes(value).unwrap()
}

#[test]
fn std_hash_containers_are_order_independent() {
    let a: HashSet<String> = (0..200).map(|i| i.to_string()).collect();
    let mut b = HashSet::with_capacity(1000);
    b.extend((0..200).rev().map(|i| i.to_string()));
    assert_eq!(bytes(&a), bytes(&b));

    let m: HashMap<u32, &str> = (0..100).map(|i| (i, "v")).collect();
    let mut n = HashMap::with_capacity(999);
    n.extend((0..100).rev().map(|i| (i, "v")));
    assert_eq!(bytes(&m), bytes(&n));
}

#[test]
fn hash_containers_with_another_hasher_are_sorted_too() {
    type Fnv = std::hash::BuildHasherDefault<std::hash::DefaultHasher>;
    let a: HashMap<u32, u32, Fnv> = (0..100).map(|i| (i, i)).collect();
    let mut b: HashMap<u32, u32, Fnv> = HashMap::with_capacity_and_hasher(777, Fnv::default());
    b.extend((0..100).rev().map(|i| (i, i)));
    assert_eq!(bytes(&a), bytes(&b));
}

#[test]
fn a_hash_set_serialized_through_its_iterator_is_sorted() {
    struct ViaIter(HashSet<u32>);
    impl Serialize for ViaIter {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter())
        }
    }
    struct ViaKeys(HashMap<u32, ()>);
    impl Serialize for ViaKeys {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.keys())
        }
    }
    let a: HashSet<u32> = (0..100).collect();
    let mut b = HashSet::with_capacity(500);
    b.extend((0..100).rev());
    assert_eq!(bytes(&ViaIter(a.clone())), bytes(&ViaIter(b.clone())));
    assert_eq!(bytes(&ViaIter(a.clone())), bytes(&a));
    let ka: HashMap<u32, ()> = a.iter().map(|&i| (i, ())).collect();
    let kb: HashMap<u32, ()> = b.iter().map(|&i| (i, ())).collect();
    assert_eq!(bytes(&ViaKeys(ka)), bytes(&ViaKeys(kb)));
}

#[test]
fn ordered_collections_keep_their_order() {
    assert_ne!(bytes(&vec![1, 2, 3]), bytes(&vec![3, 2, 1]));
    // A BTreeMap is written in its own (sorted) order, entry by entry.
    let tree: BTreeMap<i32, u8> = [(-1, 0), (300, 1)].into_iter().collect();
    let mut expected = Vec::new();
    encode::write_map_len(&mut expected, 2).unwrap();
    encode::write_sint(&mut expected, -1).unwrap();
    encode::write_uint(&mut expected, 0).unwrap();
    encode::write_uint(&mut expected, 300).unwrap();
    encode::write_uint(&mut expected, 1).unwrap();
    assert_eq!(bytes(&tree), expected);
}

#[test]
fn a_user_type_named_like_a_set_keeps_its_order() {
    #[derive(serde::Serialize)]
    struct FooSet(Vec<u32>);
    struct BarSet(Vec<u32>);
    impl Serialize for BarSet {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self)
        }
    }
    impl<'a> IntoIterator for &'a BarSet {
        type Item = &'a u32;
        type IntoIter = std::slice::Iter<'a, u32>;
        fn into_iter(self) -> Self::IntoIter {
            self.0.iter()
        }
    }
    assert_ne!(bytes(&FooSet(vec![1, 2])), bytes(&FooSet(vec![2, 1])));
    assert_ne!(bytes(&BarSet(vec![1, 2])), bytes(&BarSet(vec![2, 1])));
    assert_ne!(
        bytes(&BTreeSet::from([1])),
        bytes(&HashSet::from([1, 2])),
        "different contents"
    );
}

#[test]
fn index_maps_and_sets_keep_insertion_order() {
    let forward: indexmap::IndexMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
    let backward: indexmap::IndexMap<&str, u32> = [("b", 2), ("a", 1)].into_iter().collect();
    assert_ne!(bytes(&forward), bytes(&backward));
    let forward: indexmap::IndexSet<u32> = [1, 2, 3].into_iter().collect();
    let backward: indexmap::IndexSet<u32> = [3, 2, 1].into_iter().collect();
    assert_ne!(bytes(&forward), bytes(&backward));
    // And the same order is the same key.
    let again: indexmap::IndexSet<u32> = [3, 2, 1].into_iter().collect();
    assert_eq!(bytes(&backward), bytes(&again));
}

#[test]
fn hashbrown_containers_are_sorted() {
    let a: hashbrown::HashMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
    let mut b = hashbrown::HashMap::with_capacity(900);
    b.extend((0..100).rev().map(|i| (i, i)));
    assert_eq!(bytes(&a), bytes(&b));
    let std_map: HashMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
    assert_eq!(bytes(&a), bytes(&std_map), "one rule for both");
    let s: hashbrown::HashSet<u32> = (0..100).collect();
    let t: hashbrown::HashSet<u32> = (0..100).rev().collect();
    assert_eq!(bytes(&s), bytes(&t));
}

#[test]
fn nested_hash_containers_are_sorted_at_every_level() {
    let make = |rev: bool| {
        let mut outer: HashMap<String, HashSet<u32>> = HashMap::with_capacity(64);
        let mut keys: Vec<u32> = (0..20).collect();
        if rev {
            keys.reverse();
        }
        for k in keys {
            let mut inner = HashSet::with_capacity(if rev { 300 } else { 3 });
            inner.extend(if rev {
                (0..k).rev().collect::<Vec<_>>()
            } else {
                (0..k).collect()
            });
            outer.insert(format!("k{k}"), inner);
        }
        vec![outer]
    };
    assert_eq!(bytes(&make(false)), bytes(&make(true)));
}

#[test]
fn type_names_are_matched_exactly() {
    assert!(is_hash_ordered::<HashMap<u8, u8>>());
    assert!(is_hash_ordered::<&HashSet<u8>>());
    assert!(is_hash_ordered::<&&mut HashSet<u8>>());
    assert!(is_hash_ordered::<std::collections::hash_set::Iter<'_, u8>>());
    assert!(!is_hash_ordered::<BTreeMap<u8, u8>>());
    assert!(!is_hash_ordered::<&BTreeSet<u8>>());
    assert!(!is_hash_ordered::<Vec<HashSet<u8>>>());
    assert!(!is_hash_ordered::<std::slice::Iter<'_, u8>>());
}

#[test]
fn distinct_shapes_give_distinct_bytes() {
    let all = [
        bytes(&None::<u8>),
        bytes(&Some(None::<u8>)),
        bytes(&0u8),
        bytes(&""),
        bytes(&Vec::<u8>::new()),
        bytes(&(1, 2)),
        bytes(&(2, 1)),
    ];
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
}
