//! The sled index: client ids and the head.

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
    assert_eq!(index.client(b"inst-0007/req-3").unwrap(), Some(entry_id(3)));
    assert_eq!(index.client(b"inst-0007/req-10").unwrap(), None);
    assert_eq!(
        index.client(&[b'x'; 129]).unwrap_err().code(),
        "index_client_id_too_long"
    );
    let mut long = IndexBatch::new();
    assert!(long.insert_client(&[b'x'; 129], entry_id(0)).is_err());
    index.flush().unwrap();
    drop(index);
    let index = Index::open(&path).unwrap();
    assert_eq!(index.head().unwrap(), Some(head(10)));
    assert_eq!(index.client(b"inst-0007/req-0").unwrap(), Some(entry_id(0)));
}

#[test]
fn index_reapply_after_a_crash_between_batch_and_head_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path().join("index.sled")).unwrap();
    index.apply(&batch(0..10), head(10)).unwrap();
    // The crash: batch 10..20 reached the clients tree, its head did not.
    let clients = index.db().open_tree("clients").unwrap();
    for i in 10..20 {
        clients
            .insert(format!("inst-0007/req-{i}").as_bytes(), &entry_id(i)[..])
            .unwrap();
    }
    assert_eq!(index.head().unwrap(), Some(head(10)), "the head is behind");
    index.apply(&batch(10..20), head(20)).unwrap();
    index.apply(&batch(10..20), head(20)).unwrap();
    assert_eq!(index.head().unwrap(), Some(head(20)));
    assert_eq!(clients.len(), 20);
    assert_eq!(
        index.client(b"inst-0007/req-19").unwrap(),
        Some(entry_id(19))
    );
}

#[test]
fn index_refuses_heads_that_move_back() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path().join("index.sled")).unwrap();
    index.apply(&batch(0..10), head(10)).unwrap();
    let err = index.apply(&batch(10..15), head(5)).unwrap_err();
    assert!(matches!(
        err,
        IndexError::HeadBehind {
            current: 10,
            new: 5
        }
    ));
    assert_eq!(
        index.client(b"inst-0007/req-12").unwrap(),
        None,
        "nothing written"
    );
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
    assert_eq!(
        index.client(b"stu-3f9a").unwrap_err().code(),
        "index_bad_value"
    );
}
