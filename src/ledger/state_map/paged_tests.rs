//! The paged map against the in-memory tree: same roots, same proofs, whatever the
//! cache evicts; records written and removed exactly as the live tree needs.

use proptest::prelude::*;

use super::*;
use crate::ledger::state_map::proof::value_hash;
use crate::ledger::state_map::MapTree;

fn store() -> (tempfile::TempDir, sled::Tree) {
    let dir = tempfile::tempdir().expect("tmp");
    let db = sled::Config::new().path(dir.path()).open().expect("sled");
    let tree = db.open_tree("state").expect("tree");
    (dir, tree)
}

/// Writes a prepared batch as the state does: one atomic sled batch.
fn commit(map: &mut PagedMap, changes: Vec<Change>) -> usize {
    let prepared = map.prepare(changes).expect("prepare");
    let records = prepared.records();
    let mut batch = sled::Batch::default();
    prepared.write_to(&mut batch);
    map.tree.apply_batch(batch).expect("write");
    map.committed(prepared);
    records
}

fn key(i: u16) -> Hash {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

/// A batch: (key number, value number or removal).
fn batches() -> impl Strategy<Value = Vec<Vec<(u16, Option<u8>)>>> {
    let change = (0u16..400, proptest::option::weighted(0.85, any::<u8>()));
    proptest::collection::vec(proptest::collection::vec(change, 1..60), 1..12)
}

fn as_changes(batch: &[(u16, Option<u8>)]) -> Vec<Change> {
    batch
        .iter()
        .map(|(k, v)| (key(*k), v.map(|v| value_hash(&[v]))))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_paged_map_gives_the_in_memory_trees_roots_and_proofs_with_a_small_cache(
        batches in batches()
    ) {
        let (_dir, tree) = store();
        // Two pinned levels and eight cached records: nearly every read goes to sled.
        let mut paged = PagedMap::with_cache(tree.clone(), 2, 8);
        let mut memory = MapTree::new();
        for batch in &batches {
            memory.update(as_changes(batch));
            commit(&mut paged, as_changes(batch));
            prop_assert_eq!(paged.root(), memory.root());
            prop_assert!(paged.cache_usage().0 <= 8 + 3);
            for (k, _) in batch {
                prop_assert_eq!(paged.prove(&key(*k)).expect("prove"), memory.prove(&key(*k)));
            }
            let absent = key(401);
            prop_assert_eq!(paged.prove(&absent).expect("prove"), memory.prove(&absent));
        }
        // The store holds exactly the live tree's internal nodes: a reopened map gives
        // the same proofs, and no record outlives its node.
        let reopened = PagedMap::open(tree.clone(), &memory.root()).expect("reopen");
        for k in 0..400 {
            prop_assert_eq!(reopened.prove(&key(k)).expect("prove"), memory.prove(&key(k)));
        }
        let records = tree.scan_prefix([NODE_TAG]).count();
        prop_assert_eq!(records, internal_nodes(&memory) + 1, "every record is a live node, plus the root slot");
    }
}

/// Internal nodes of the in-memory tree: the sibling lists of every key's proof name
/// each internal node once per depth on the path; count distinct (depth, prefix).
fn internal_nodes(memory: &MapTree) -> usize {
    let mut nodes = std::collections::HashSet::new();
    for k in 0..=401u16 {
        let proof = memory.prove(&key(k));
        for depth in 0..proof.siblings.len() {
            nodes.insert(node_key(depth, &key(k)));
        }
    }
    nodes.len()
}

#[test]
fn a_map_opened_against_another_root_is_refused_without_a_rebuild() {
    let (_dir, tree) = store();
    let mut map = PagedMap::empty(tree.clone());
    commit(
        &mut map,
        (0..50).map(|i| (key(i), Some(value_hash(&[1])))).collect(),
    );
    let root = map.root();
    assert!(PagedMap::open(tree.clone(), &root).is_ok());
    let err = PagedMap::open(tree.clone(), &[7; 32])
        .err()
        .expect("refused");
    assert!(matches!(err, MapStoreError::Corrupt { .. }), "{err}");
    // A damaged root record is caught by its hash, before any proof is served.
    let mut record = tree
        .get(node_key(0, &ZERO))
        .expect("read")
        .expect("root node")
        .to_vec();
    let last = record.len() - 1;
    record[last] ^= 1;
    tree.insert(node_key(0, &ZERO), record).expect("write");
    let err = PagedMap::open(tree, &root).err().expect("refused");
    assert!(matches!(err, MapStoreError::Corrupt { .. }), "{err}");
}

#[test]
fn a_missing_node_is_an_error_not_a_wrong_proof() {
    let (_dir, tree) = store();
    let mut map = PagedMap::with_cache(tree.clone(), 0, 2);
    commit(
        &mut map,
        (0..200).map(|i| (key(i), Some(value_hash(&[1])))).collect(),
    );
    let deep = tree
        .scan_prefix([NODE_TAG])
        .keys()
        .map(|k| k.expect("key"))
        .find(|k| k.len() == 34 && k[33] > 3)
        .expect("a deep node");
    tree.remove(&deep).expect("remove");
    let reopened = PagedMap::with_cache(tree, 0, 2);
    let mut reopened = reopened;
    reopened.root = map.root;
    let errors = (0..200)
        .filter(|i| matches!(reopened.prove(&key(*i)), Err(MapStoreError::Corrupt { .. })))
        .count();
    assert!(errors > 0, "some key's path runs through the removed node");
}
