//! Record decoding and recovery of `log.dat` (`RecordFile::open` + `recover`, and the
//! auditor's read-only `open_reader`) on fuzzed bytes (see
//! `lesson_ledger_fuzz::record_file_bytes`: the first byte chooses raw or re-framed).
//!
//! Must recover or fail closed, never panic. When recovery succeeds: the file left is a
//! prefix of the input, every record in it reads back, the last one is a checkpoint,
//! a second recovery cuts nothing, and a batch committed after it survives a reopen.
#![no_main]

use lesson_ledger::log::records::{open_reader, RecordFile, RecordKind, Seal, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = lesson_ledger_fuzz::record_file_bytes(data);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("log.dat");
    std::fs::write(&path, &bytes).expect("write log.dat");

    // The auditor's reader takes the whole file as committed and reads it in order.
    if let Ok((reader, _seal)) = open_reader(&path) {
        if let Ok(iter) = reader.iter(HEADER_LEN, reader.len()) {
            for record in iter {
                if record.is_err() {
                    break;
                }
            }
        }
    }

    let Ok(mut file) = RecordFile::open(&path) else {
        return;
    };
    let Ok(recovery) = file.recover(Seal::START) else {
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "a refused recovery changes nothing"
        );
        return;
    };
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len() as u64, recovery.end);
    // Recovery may rewrite a seal slot (a commit whose slot write was lost); the
    // records themselves are only ever cut at the tail.
    let header = HEADER_LEN as usize;
    assert_eq!(
        &bytes[header..after.len()],
        &after[header..],
        "recovery only cuts a tail"
    );
    let records: Vec<_> = file
        .iter(HEADER_LEN, recovery.end)
        .expect("iterate the recovered range")
        .map(|r| r.expect("every recovered record reads back"))
        .collect();
    let leaves = records
        .iter()
        .filter(|r| r.kind == RecordKind::Leaf)
        .count() as u64;
    assert_eq!(leaves, recovery.leaves);
    if let Some(last) = records.last() {
        assert_eq!(
            last.kind,
            RecordKind::Checkpoint,
            "the committed end is a checkpoint"
        );
        assert_eq!(Some(last.offset), recovery.last_checkpoint);
    }
    let again = file.recover(Seal::START).expect("recovering twice");
    assert_eq!(again.cut, None, "recovery is idempotent");

    // Acknowledged after recovery: a new batch must survive reopening.
    let leaf = file
        .append(RecordKind::Leaf, b"after recovery")
        .expect("append");
    file.append(RecordKind::Checkpoint, b"commit")
        .expect("append");
    file.commit().expect("commit");
    drop(file);
    let mut reopened = RecordFile::open(&path).expect("reopen");
    let last = reopened.recover(Seal::START).expect("recover after commit");
    assert_eq!(last.cut, None, "a committed batch is never cut");
    assert_eq!(
        reopened.read_at(leaf).expect("read the new leaf").body,
        b"after recovery"
    );
});
