//! The tree files: nodes against a naive reference, ordering, flushing and truncation.

use std::fs;

use lesson_ledger::log::hash::{node_hash, Hash, NodeError, NodeSource};
use lesson_ledger::log::tree_file::{TreeError, TreeFile};

use super::{append_bytes, leaf};

/// The hash of the perfect subtree over `leaves`, computed naively (the reference).
fn subtree(leaves: &[Hash]) -> Hash {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let (left, right) = leaves.split_at(leaves.len() / 2);
    node_hash(&subtree(left), &subtree(right))
}

/// Appends leaves `from..to` and every node they complete, flushing once at the end.
fn grow(tree: &mut TreeFile, from: u64, to: u64) {
    for i in from..to {
        tree.append(0, i, leaf(i)).unwrap();
        let (mut level, mut index) = (0u8, i);
        while index % 2 == 1 {
            let start = (index - 1) << level;
            let leaves: Vec<Hash> = (start..start + (2 << level)).map(leaf).collect();
            level += 1;
            index /= 2;
            tree.append(level, index, subtree(&leaves)).unwrap();
        }
    }
    tree.flush().unwrap();
}

fn check_tree(reader: &impl NodeSource, size: u64) {
    for level in 0..8u8 {
        let nodes = size >> level;
        for index in 0..nodes {
            let start = index << level;
            let leaves: Vec<Hash> = (start..start + (1 << level)).map(leaf).collect();
            assert_eq!(
                reader.node(level, index).unwrap(),
                subtree(&leaves),
                "({level}, {index})"
            );
        }
        assert!(matches!(
            reader.node(level, nodes),
            Err(NodeError::Missing { .. })
        ));
    }
}

#[test]
fn nodes_read_back_as_the_reference_computes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = TreeFile::open(dir.path().join("tree")).unwrap();
    grow(&mut tree, 0, 37);
    check_tree(&tree.reader(), 37);
    assert_eq!(
        fs::metadata(dir.path().join("tree/level-00"))
            .unwrap()
            .len(),
        37 * 32
    );
    drop(tree);
    let tree = TreeFile::open(dir.path().join("tree")).unwrap();
    assert_eq!((tree.leaves(), tree.consistent_size()), (37, 37));
    check_tree(&tree.reader(), 37);
    assert!(matches!(
        tree.reader().node(200, 0),
        Err(NodeError::Missing { level: 200, .. })
    ));
}

#[test]
fn out_of_order_appends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = TreeFile::open(dir.path()).unwrap();
    grow(&mut tree, 0, 3);
    let h = leaf(99);
    let cases = [
        (tree.append(0, 4, h), "tree_out_of_order"),
        (tree.append(0, 2, h), "tree_out_of_order"),
        (tree.append(1, 0, h), "tree_out_of_order"),
        (tree.append(1, 1, h), "tree_missing_children"),
        (tree.append(2, 0, h), "tree_missing_children"),
        (tree.append(64, 0, h), "tree_level_out_of_range"),
    ];
    for (n, (result, code)) in cases.into_iter().enumerate() {
        assert_eq!(result.unwrap_err().code(), code, "case {n}");
    }
    assert_eq!(tree.leaves(), 3, "nothing was appended");
    tree.append(0, 3, leaf(3)).unwrap();
}

#[test]
fn reader_sees_only_flushed_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = TreeFile::open(dir.path()).unwrap();
    let reader = tree.reader();
    assert!(matches!(
        reader.node(0, 0),
        Err(NodeError::Missing { level: 0, index: 0 })
    ));
    tree.append(0, 0, leaf(0)).unwrap();
    tree.append(0, 1, leaf(1)).unwrap();
    assert_eq!((tree.leaves(), reader.leaves()), (2, 0));
    assert!(matches!(reader.node(0, 0), Err(NodeError::Missing { .. })));
    tree.flush().unwrap();
    let other_thread = reader.clone();
    let got = std::thread::spawn(move || other_thread.node(0, 1).unwrap())
        .join()
        .unwrap();
    assert_eq!(got, leaf(1));
    assert!(matches!(
        reader.node(0, 2),
        Err(NodeError::Missing { level: 0, index: 2 })
    ));
    assert!(matches!(
        reader.node(1, 0),
        Err(NodeError::Missing { level: 1, index: 0 })
    ));
}

#[test]
fn truncate_cuts_partial_writes_and_keeps_a_consistent_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = TreeFile::open(dir.path()).unwrap();
    grow(&mut tree, 0, 300);
    drop(tree);
    // A crash tore writes: half a node on level 0, a stray byte on level 3.
    append_bytes(&dir.path().join("level-00"), &[0xEE; 16]);
    append_bytes(&dir.path().join("level-03"), &[0xEE]);
    let mut tree = TreeFile::open(dir.path()).unwrap();
    assert_eq!(tree.leaves(), 300, "partial nodes are not nodes");
    tree.truncate(300).unwrap();
    assert_eq!(
        fs::metadata(dir.path().join("level-00")).unwrap().len(),
        300 * 32
    );
    assert_eq!(
        fs::metadata(dir.path().join("level-03")).unwrap().len(),
        (300 >> 3) * 32
    );
    tree.truncate(45).unwrap();
    for level in 0..9 {
        let len = fs::metadata(dir.path().join(format!("level-{level:02}")))
            .unwrap()
            .len();
        assert_eq!(len, (45u64 >> level) * 32, "level {level}");
    }
    check_tree(&tree.reader(), 45);
    grow(&mut tree, 45, 300);
    check_tree(&tree.reader(), 300);
}

#[test]
fn a_short_level_is_reported_and_the_consistent_size_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = TreeFile::open(dir.path()).unwrap();
    grow(&mut tree, 0, 100);
    drop(tree);
    // Level 2 lost its last 5 nodes (25 → 20): sizes up to 83 still have their nodes.
    fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("level-02"))
        .unwrap()
        .set_len(20 * 32)
        .unwrap();
    let mut tree = TreeFile::open(dir.path()).unwrap();
    let err = tree.truncate(100).unwrap_err();
    assert!(matches!(
        err,
        TreeError::Short {
            level: 2,
            have: 20,
            need: 25,
            size: 100
        }
    ));
    assert_eq!(
        fs::metadata(dir.path().join("level-00")).unwrap().len(),
        100 * 32,
        "unchanged"
    );
    let size = tree.consistent_size();
    assert_eq!(size, 83);
    tree.truncate(size).unwrap();
    grow(&mut tree, size, 100);
    check_tree(&tree.reader(), 100);
}
