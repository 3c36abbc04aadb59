//! The log store: appends, receipts, idempotency, reopening, torn tails, damage.

use std::fs::{self, OpenOptions};
use std::io::Write;

use lesson_ledger::log::envelope::{Envelope, VerifiedEnvelope};
use lesson_ledger::log::hash::{leaf_hash, Hash};
use lesson_ledger::log::note::SignedCheckpoint;
use lesson_ledger::log::proof::{verify_consistency, verify_inclusion};
use lesson_ledger::log::store::{
    layout, Admission, AdmitAll, Idempotency, Log, LogError, Outcome, Receipt,
};
use tempfile::TempDir;

use crate::support::{envelope, new_log, reopen, signer, verified};

fn append_n(log: &mut Log, from: u64, n: u64) -> Vec<Receipt> {
    let alice = signer("inst-0001", 1);
    let batch = (from..from + n)
        .map(|i| verified(envelope(&[&alice], &format!("e-{i}"), i)))
        .collect();
    log.append(batch, &mut AdmitAll)
        .expect("append")
        .into_iter()
        .map(|o| match o {
            Outcome::Ok(r) => r,
            other => panic!("expected ok, got {other:?}"),
        })
        .collect()
}

/// Checks a receipt the way a student would: checkpoint signature, then the proof.
fn check_receipt(log: &Log, receipt: &Receipt) {
    let signed = SignedCheckpoint::parse_and_verify(receipt.checkpoint.as_bytes(), log.verifier())
        .expect("checkpoint verifies");
    let cp = signed.checkpoint();
    let proof: Vec<Hash> = receipt
        .inclusion_proof
        .iter()
        .map(|h| Hash::from_base64(h).expect("base64 hash"))
        .collect();
    let leaf = Hash::from_base64(&receipt.leaf_hash).expect("leaf hash");
    assert_eq!(
        leaf,
        leaf_hash(&log.leaf_bytes(receipt.index).expect("leaf bytes"))
    );
    verify_inclusion(&leaf, receipt.index, cp.size, &proof, &cp.root)
        .expect("inclusion proof verifies");
}

#[test]
fn appended_entries_get_receipts_that_verify_against_signed_checkpoints() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    assert_eq!(log.size(), 0);
    let first = append_n(&mut log, 0, 5);
    let second = append_n(&mut log, 5, 7);
    assert_eq!(log.size(), 12);
    for (i, r) in first.iter().chain(&second).enumerate() {
        assert_eq!(r.index, i as u64);
        check_receipt(&log, r);
    }
    // Every pair of sizes is consistent.
    for m in 1..=12 {
        for n in m..=12 {
            let proof = log.consistency_proof(m, n).unwrap();
            verify_consistency(
                m,
                n,
                &log.root_at(m).unwrap(),
                &log.root_at(n).unwrap(),
                &proof,
            )
            .unwrap();
        }
    }
}

#[test]
fn ledger_time_strictly_increases() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    append_n(&mut log, 0, 50);
    let times: Vec<u64> = (0..50).map(|i| log.entry(i).unwrap().time_micros).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
}

#[test]
fn the_same_envelope_twice_is_answered_with_the_first_receipt_and_adds_no_leaf() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    let k = signer("inst-0001", 1);
    let e = envelope(&[&k], "same", 1);
    let first = match log
        .append(vec![verified(e.clone())], &mut AdmitAll)
        .unwrap()
        .remove(0)
    {
        Outcome::Ok(r) => r,
        other => panic!("{other:?}"),
    };
    // Again later, and twice within one batch.
    let again = log
        .append(
            vec![verified(e.clone()), verified(e.clone())],
            &mut AdmitAll,
        )
        .unwrap();
    assert_eq!(log.size(), 1);
    for outcome in again {
        match outcome {
            Outcome::Exists(r) => {
                assert_eq!(
                    (r.index, &r.entry_id, &r.leaf_hash),
                    (first.index, &first.entry_id, &first.leaf_hash)
                );
                check_receipt(&log, &r);
            }
            other => panic!("expected exists, got {other:?}"),
        }
    }
    // Within one fresh batch: the second copy is `exists` with the first's index.
    let e2 = envelope(&[&k], "twice-in-batch", 2);
    let out = log
        .append(vec![verified(e2.clone()), verified(e2)], &mut AdmitAll)
        .unwrap();
    assert!(matches!(&out[0], Outcome::Ok(r) if r.index == 1));
    assert!(matches!(&out[1], Outcome::Exists(r) if r.index == 1));
    assert_eq!(log.size(), 2);
}

/// Test idempotency: the payload's `"id":"..."` is the client id.
struct PayloadId;
impl Idempotency for PayloadId {
    fn client_id(&self, envelope: &Envelope) -> Option<Vec<u8>> {
        let v: serde_json::Value = serde_json::from_slice(envelope.payload()).ok()?;
        v.get("id")?.as_str().map(|s| s.as_bytes().to_vec())
    }
}

#[test]
fn a_different_envelope_reusing_a_client_id_is_refused() {
    let dir = TempDir::new().unwrap();
    let mut log = Log::create(
        dir.path(),
        "lessons.example/test",
        "operator",
        Box::new(PayloadId),
    )
    .unwrap();
    let k = signer("inst-0001", 1);
    let out = log
        .append(
            vec![
                verified(envelope(&[&k], "claim-1", 1)),
                verified(envelope(&[&k], "claim-1", 2)),
            ],
            &mut AdmitAll,
        )
        .unwrap();
    assert!(matches!(out[0], Outcome::Ok(_)));
    assert!(
        matches!(&out[1], Outcome::ExistsWithDifferentPayload { client_id, .. } if client_id == b"claim-1")
    );
    let root = log.root_at(log.size()).unwrap();
    let out = log
        .append(vec![verified(envelope(&[&k], "claim-1", 3))], &mut AdmitAll)
        .unwrap();
    assert!(matches!(out[0], Outcome::ExistsWithDifferentPayload { .. }));
    assert_eq!((log.size(), log.root_at(1).unwrap()), (1, root));
    // The client index survives a rebuild from log.dat.
    drop(log);
    fs::remove_dir_all(dir.path().join(layout::INDEX)).unwrap();
    let (mut log, report) = Log::open(dir.path(), Box::new(PayloadId)).unwrap();
    assert_eq!(report.replayed, 1);
    let out = log
        .append(vec![verified(envelope(&[&k], "claim-1", 4))], &mut AdmitAll)
        .unwrap();
    assert!(matches!(out[0], Outcome::ExistsWithDifferentPayload { .. }));
}

/// Refuses every entry whose payload mentions "bad".
struct RefuseBad;
impl Admission for RefuseBad {
    type Refusal = String;
    fn admit(&mut self, _: u64, _: u64, entry: &VerifiedEnvelope) -> Result<(), String> {
        if String::from_utf8_lossy(entry.payload()).contains("bad") {
            return Err("refused".into());
        }
        Ok(())
    }
}

#[test]
fn refused_entries_write_nothing_and_do_not_take_an_index() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    let k = signer("inst-0001", 1);
    let before = fs::metadata(dir.path().join(layout::RECORDS))
        .unwrap()
        .len();
    let out = log
        .append(vec![verified(envelope(&[&k], "bad-1", 1))], &mut RefuseBad)
        .unwrap();
    assert!(matches!(out[0], Outcome::Refused(_)));
    assert_eq!(log.size(), 0);
    assert_eq!(
        fs::metadata(dir.path().join(layout::RECORDS))
            .unwrap()
            .len(),
        before,
        "a refused batch writes nothing"
    );
    let out = log
        .append(
            vec![
                verified(envelope(&[&k], "good-1", 1)),
                verified(envelope(&[&k], "bad-2", 2)),
                verified(envelope(&[&k], "good-2", 3)),
            ],
            &mut RefuseBad,
        )
        .unwrap();
    assert!(matches!(&out[0], Outcome::Ok(r) if r.index == 0));
    assert!(matches!(out[1], Outcome::Refused(_)));
    assert!(matches!(&out[2], Outcome::Ok(r) if r.index == 1));
}

#[test]
fn a_batch_over_the_limit_is_refused_whole() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    let k = signer("inst-0001", 1);
    let e = verified(envelope(&[&k], "x", 1));
    let batch = vec![e; lesson_ledger::limits::BATCH_ENTRIES_MAX + 1];
    assert!(matches!(
        log.append(batch, &mut AdmitAll),
        Err(LogError::BatchTooLarge { .. })
    ));
    assert_eq!(log.size(), 0);
}

#[test]
fn reopening_gives_the_same_log() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    let receipts = append_n(&mut log, 0, 20);
    let checkpoint = log.checkpoint().text().to_string();
    log.close().unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.size(), 20);
    assert_eq!(log.checkpoint().text(), checkpoint);
    for r in &receipts {
        assert_eq!(&log.receipt(r.index).unwrap(), r);
    }
    assert_eq!(
        log.checkpoints().unwrap().len(),
        2,
        "the empty tree's and one batch's"
    );
}

#[test]
fn derived_stores_are_rebuilt_from_the_record_file() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    let receipts = append_n(&mut log, 0, 37);
    log.close().unwrap();
    for derived in [layout::TREE, layout::INDEX] {
        fs::remove_dir_all(dir.path().join(derived)).unwrap();
    }
    fs::remove_file(dir.path().join(layout::OFFSETS)).unwrap();
    fs::remove_file(dir.path().join(layout::IDS)).unwrap();
    let (log, report) =
        Log::open(dir.path(), Box::new(lesson_ledger::log::store::EntryIdOnly)).unwrap();
    assert_eq!(report.replayed, 37);
    for r in &receipts {
        assert_eq!(&log.receipt(r.index).unwrap(), r);
        assert_eq!(
            log.index_of(&r.entry_id.parse().unwrap()).unwrap(),
            Some(r.index)
        );
    }
}

#[test]
fn a_torn_tail_is_cut_and_acknowledged_entries_stay() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    let receipts = append_n(&mut log, 0, 10);
    log.close().unwrap();
    let path = dir.path().join(layout::RECORDS);
    let committed = fs::metadata(&path).unwrap().len();
    // A record header promising more bytes than were written: a crash mid-write.
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[1, 0, 0, 1, 0, 42, 42])
        .unwrap();
    let (log, report) =
        Log::open(dir.path(), Box::new(lesson_ledger::log::store::EntryIdOnly)).unwrap();
    assert!(report.cut.is_some(), "the cut is reported, never silent");
    assert_eq!(fs::metadata(&path).unwrap().len(), committed);
    assert_eq!(log.size(), 10);
    for r in &receipts {
        assert_eq!(&log.receipt(r.index).unwrap(), r);
    }
}

#[test]
fn damage_before_the_tail_fails_closed_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    append_n(&mut log, 0, 10);
    append_n(&mut log, 10, 10);
    log.close().unwrap();
    let path = dir.path().join(layout::RECORDS);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    // Derived data gone too, so the open must read the damaged region.
    fs::remove_dir_all(dir.path().join(layout::INDEX)).unwrap();
    let err = Log::open(dir.path(), Box::new(lesson_ledger::log::store::EntryIdOnly))
        .err()
        .expect("damaged log must not open");
    assert!(
        matches!(err, LogError::Records(_) | LogError::Damaged { .. }),
        "{err}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "fail closed: the file is untouched"
    );
}

#[test]
fn a_log_shorter_than_the_index_says_fails_closed() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    append_n(&mut log, 0, 5);
    let path = dir.path().join(layout::RECORDS);
    let after_first = fs::metadata(&path).unwrap().len();
    append_n(&mut log, 5, 5);
    log.close().unwrap();
    // Remove the whole second batch, cleanly: only the index still remembers it.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(after_first)
        .unwrap();
    let err = Log::open(dir.path(), Box::new(lesson_ledger::log::store::EntryIdOnly))
        .err()
        .expect("truncated log must not open");
    assert!(matches!(err, LogError::Damaged { .. }), "{err}");
}

#[test]
fn create_refuses_to_overwrite_and_open_needs_a_log() {
    let dir = TempDir::new().unwrap();
    new_log(dir.path()).close().unwrap();
    assert!(matches!(
        Log::create(
            dir.path(),
            "lessons.example/test",
            "operator",
            Box::new(lesson_ledger::log::store::EntryIdOnly)
        ),
        Err(LogError::AlreadyExists { .. })
    ));
    let empty = TempDir::new().unwrap();
    assert!(matches!(
        Log::open(
            empty.path(),
            Box::new(lesson_ledger::log::store::EntryIdOnly)
        ),
        Err(LogError::NotFound { .. })
    ));
}

#[test]
fn out_of_range_reads_are_errors_not_panics() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    append_n(&mut log, 0, 3);
    assert!(matches!(log.entry(3), Err(LogError::OutOfRange { .. })));
    assert!(matches!(
        log.inclusion_proof(3, 3),
        Err(LogError::OutOfRange { .. })
    ));
    assert!(matches!(
        log.inclusion_proof(0, 4),
        Err(LogError::OutOfRange { .. })
    ));
    assert!(matches!(
        log.consistency_proof(3, 2),
        Err(LogError::OutOfRange { .. })
    ));
    assert!(matches!(log.root_at(4), Err(LogError::OutOfRange { .. })));
}

#[test]
fn a_damaged_sled_database_is_rebuilt_from_the_record_file() {
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    let receipts = append_n(&mut log, 0, 12);
    log.close().unwrap();
    let db = dir.path().join(layout::INDEX).join("db");
    let mut bytes = fs::read(&db).unwrap();
    for b in bytes.iter_mut().skip(64) {
        *b ^= 0x5a;
    }
    fs::write(&db, &bytes).unwrap();
    // sled either calls it corrupt (moved aside) or sees an empty database: either way
    // the index is rebuilt from log.dat and every receipt is as before.
    let (log, report) = Log::open(dir.path(), Box::new(lesson_ledger::log::store::EntryIdOnly))
        .expect("derived data is rebuilt");
    assert!(
        report
            .index_moved_aside
            .as_ref()
            .is_some_and(|p| p.exists())
            || report.replayed == 12,
        "{report:?}"
    );
    for r in &receipts {
        assert_eq!(&log.receipt(r.index).unwrap(), r);
    }
}

/// A log of 355 entries, then one batch to 370 (acknowledged, its checkpoint signed),
/// closed; returns the path of `log.dat` and its length after 355 entries.
fn log_of_370_in_batches(dir: &std::path::Path) -> (std::path::PathBuf, u64) {
    let mut log = new_log(dir);
    for from in (0..355).step_by(71) {
        append_n(&mut log, from, 71);
    }
    let path = dir.join(layout::RECORDS);
    let at_355 = fs::metadata(&path).unwrap().len();
    append_n(&mut log, 355, 15);
    assert_eq!(log.checkpoint().checkpoint().size, 370);
    log.close().unwrap();
    (path, at_355)
}

fn open_error(dir: &std::path::Path) -> LogError {
    match Log::open(dir, Box::new(lesson_ledger::log::store::EntryIdOnly)) {
        Ok((log, report)) => panic!(
            "opened at size {} (cut: {:?}) below the signed 370",
            log.size(),
            report.cut
        ),
        Err(e) => e,
    }
}

#[test]
fn a_damaged_last_checkpoint_never_cuts_an_acknowledged_signed_batch() {
    let dir = TempDir::new().unwrap();
    let (path, _) = log_of_370_in_batches(dir.path());
    // The last record is the checkpoint of size 370: damage one byte of its note, and
    // delete the index, which the docs say may be deleted.
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    fs::remove_dir_all(dir.path().join(layout::INDEX)).unwrap();
    let err = open_error(dir.path());
    assert_eq!(err.code(), "records_below_seal", "{err}");
    let message = err.to_string();
    assert!(
        message.contains("seals 370 entries") && message.contains("only 355 entries"),
        "the error names both sizes: {message}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "fail closed: nothing is cut"
    );
    // And it stays closed: no later open signs another checkpoint of size 370.
    assert_eq!(open_error(dir.path()).code(), "records_below_seal");
}

#[test]
fn a_cleanly_truncated_log_without_its_index_fails_closed_naming_the_sizes() {
    let dir = TempDir::new().unwrap();
    let (path, at_355) = log_of_370_in_batches(dir.path());
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(at_355)
        .unwrap();
    fs::remove_dir_all(dir.path().join(layout::INDEX)).unwrap();
    let err = open_error(dir.path());
    assert_eq!(err.code(), "records_below_seal", "{err}");
    assert_eq!(fs::metadata(&path).unwrap().len(), at_355);
    let audit = lesson_ledger::log::audit::audit(
        dir.path(),
        &lesson_ledger::log::audit::AuditOptions::default(),
        &|_, _| {},
    );
    let finding = format!("{}", audit.expect_err("the auditor catches it too"));
    assert!(finding.contains("370 entries"), "{finding}");
}

#[test]
fn an_unacknowledged_tail_after_the_seal_is_still_cut() {
    let dir = TempDir::new().unwrap();
    let (path, _) = log_of_370_in_batches(dir.path());
    let sealed = fs::metadata(&path).unwrap().len();
    // A leaf record with no checkpoint after it: a batch that was never committed.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    let body = b"not a leaf";
    let mut record = vec![1u8];
    record.extend_from_slice(&(body.len() as u32).to_be_bytes());
    record.extend_from_slice(body);
    record.extend_from_slice(&crc32c::crc32c(&record).to_be_bytes());
    file.write_all(&record).unwrap();
    drop(file);
    fs::remove_dir_all(dir.path().join(layout::INDEX)).unwrap();
    let (log, report) =
        Log::open(dir.path(), Box::new(lesson_ledger::log::store::EntryIdOnly)).unwrap();
    assert!(report.cut.is_some());
    assert_eq!(log.size(), 370);
    assert_eq!(fs::metadata(&path).unwrap().len(), sealed);
}
