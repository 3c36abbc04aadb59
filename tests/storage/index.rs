//! The sled index: entries, clients and the head.

use lesson_ledger::log::index::{Head, Index, IndexBatch, IndexError};
use lesson_ledger::log::records::HEADER_LEN;

use super::leaf;

fn head(size: u64) -> Head {
    Head {
        size,
        record_end: HEADER_LEN + 100 * size,
        root: leaf(size),
    }
}

fn entry_id(i: u64) -> [u8; 32] {
    *leaf(1_000_000 + i).as_bytes()
}

fn batch(leaves: std::ops::Range<u64>) -> IndexBatch {
    let mut batch = IndexBatch::new();
    for i in leaves {
        batch.insert_entry(entry_id(i), i);
        batch
            .insert_client(format!("inst-0007/req-{i}").as_bytes(), entry_id(i))
            .unwrap();
    }
    batch
}

#[test]
fn index_apply_look_up_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sled");
    let index = Index::open(&path).unwrap();
    assert_eq!(index.head().unwrap(), None);
    index.apply(&batch(0..10), head(10)).unwrap();
    assert_eq!(index.head().unwrap(), Some(head(10)));
    assert_eq!(index.entry(&entry_id(7)).unwrap(), Some(7));
    assert_eq!(index.entry(&entry_id(10)).unwrap(), None);
    assert_eq!(index.client(b"inst-0007/req-3").unwrap(), Some(entry_id(3)));
    assert_eq!(index.client(b"inst-0007/req-10").unwrap(), None);
    assert_eq!(
        index.client(&[b'x'; 129]).unwrap_err().code(),
        "index_client_id_too_long"
    );
    index.flush().unwrap();
    drop(index);
    let index = Index::open(&path).unwrap();
    assert_eq!(index.head().unwrap(), Some(head(10)));
    assert_eq!(index.entry(&entry_id(0)).unwrap(), Some(0));
}

#[test]
fn index_reapply_after_a_crash_between_batch_and_head_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path().join("index.sled")).unwrap();
    index.apply(&batch(0..10), head(10)).unwrap();
    // The crash: batch 10..20 reached the entries tree, its head did not.
    let entries = index.db().open_tree("entries").unwrap();
    for i in 10..20 {
        entries.insert(entry_id(i), &i.to_be_bytes()).unwrap();
    }
    assert_eq!(index.head().unwrap(), Some(head(10)), "the head is behind");
    index.apply(&batch(10..20), head(20)).unwrap();
    index.apply(&batch(10..20), head(20)).unwrap();
    assert_eq!(index.head().unwrap(), Some(head(20)));
    assert_eq!(entries.len(), 20);
    assert_eq!(index.entry(&entry_id(15)).unwrap(), Some(15));
    assert_eq!(
        index.client(b"inst-0007/req-19").unwrap(),
        Some(entry_id(19))
    );
}

#[test]
fn index_refuses_heads_that_move_back_or_miss_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path().join("index.sled")).unwrap();
    index.apply(&batch(0..10), head(10)).unwrap();
    let err = index.apply(&batch(0..5), head(5)).unwrap_err();
    assert!(matches!(
        err,
        IndexError::HeadBehind {
            current: 10,
            new: 5
        }
    ));
    let err = index.apply(&batch(10..20), head(19)).unwrap_err();
    assert!(matches!(
        err,
        IndexError::LeafBeyondHead { leaf: 19, size: 19 }
    ));
    assert_eq!(index.entry(&entry_id(10)).unwrap(), None, "nothing written");
    assert_eq!(index.head().unwrap(), Some(head(10)));
}

#[test]
fn index_reports_stored_values_of_the_wrong_length() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path().join("index.sled")).unwrap();
    let db = index.db();
    db.open_tree("meta")
        .unwrap()
        .insert("head", &[0u8; 47][..])
        .unwrap();
    db.open_tree("entries")
        .unwrap()
        .insert(entry_id(0), &[0u8; 9])
        .unwrap();
    db.open_tree("clients")
        .unwrap()
        .insert("stu-3f9a", &[0u8; 31])
        .unwrap();
    assert!(matches!(
        index.head(),
        Err(IndexError::BadValue {
            tree: "meta",
            len: 47,
            ..
        })
    ));
    assert!(matches!(
        index.entry(&entry_id(0)),
        Err(IndexError::BadValue { len: 9, .. })
    ));
    assert_eq!(
        index.client(b"stu-3f9a").unwrap_err().code(),
        "index_bad_value"
    );
}
