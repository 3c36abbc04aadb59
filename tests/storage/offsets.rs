//! The offsets file: leaf index to record offset.

use std::fs;

use lesson_ledger::log::offsets::{Offsets, OffsetsError};
use lesson_ledger::log::records::HEADER_LEN;

use super::append_bytes;

#[test]
fn offsets_append_flush_get_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offsets.dat");
    let mut offsets = Offsets::open(&path).unwrap();
    let reader = offsets.reader();
    for i in 0..100u64 {
        assert_eq!(offsets.append(HEADER_LEN + 20 * i).unwrap(), i);
    }
    assert_eq!(
        (offsets.len(), reader.len(), reader.get(0).unwrap()),
        (100, 0, None)
    );
    offsets.flush().unwrap();
    assert_eq!(reader.get(99).unwrap(), Some(HEADER_LEN + 20 * 99));
    assert_eq!(reader.get(100).unwrap(), None);
    assert_eq!(reader.get(u64::MAX).unwrap(), None);
    let err = offsets.append(HEADER_LEN + 20 * 99).unwrap_err();
    assert!(matches!(err, OffsetsError::NotIncreasing { .. }));
    drop(offsets);
    let offsets = Offsets::open(&path).unwrap();
    assert_eq!((offsets.len(), offsets.cut_bytes()), (100, 0));
    assert_eq!(offsets.get(42).unwrap(), Some(HEADER_LEN + 20 * 42));
}

#[test]
fn offsets_cut_a_partial_trailing_entry_and_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offsets.dat");
    let mut offsets = Offsets::open(&path).unwrap();
    for i in 0..10 {
        offsets.append(100 + i).unwrap();
    }
    offsets.flush().unwrap();
    drop(offsets);
    append_bytes(&path, &[0xFF; 3]);
    let mut offsets = Offsets::open(&path).unwrap();
    assert_eq!((offsets.len(), offsets.cut_bytes()), (10, 3));
    assert_eq!(fs::metadata(&path).unwrap().len(), 80);
    let err = offsets.truncate(11).unwrap_err();
    assert!(matches!(
        err,
        OffsetsError::Short {
            requested: 11,
            have: 10
        }
    ));
    offsets.truncate(4).unwrap();
    assert_eq!((offsets.len(), fs::metadata(&path).unwrap().len()), (4, 32));
    assert_eq!(offsets.reader().get(4).unwrap(), None);
    assert_eq!(
        offsets.append(104).unwrap(),
        4,
        "appends go on after the cut"
    );
}
