//! The record file: framing, commit, and recovery after torn writes and bit flips.

use std::fs;
use std::path::{Path, PathBuf};

use lesson_ledger::limits::RECORD_BODY_BYTES_MAX;
use lesson_ledger::log::records::{
    CutReason, Damage, RecordFile, RecordKind, RecordsError, Recovery, Seal, HEADER_LEN,
};
use rand::{Rng, SeedableRng};

use super::append_bytes;

/// Where one committed batch lies in the file.
struct Batch {
    start: u64,
    leaves: Vec<u64>,
    checkpoint: u64,
    end: u64,
}

/// Writes each batch as its leaves, one checkpoint and one commit, as the sequencer does.
fn write_batches(log: &mut RecordFile, batches: &[&[&[u8]]]) -> Vec<Batch> {
    let mut out = Vec::new();
    for (n, leaves) in batches.iter().enumerate() {
        let start = log.len();
        let leaves = leaves
            .iter()
            .map(|l| log.append(RecordKind::Leaf, l).unwrap())
            .collect();
        let note = format!("checkpoint {n}");
        let checkpoint = log.append(RecordKind::Checkpoint, note.as_bytes()).unwrap();
        log.commit().unwrap();
        out.push(Batch {
            start,
            leaves,
            checkpoint,
            end: log.len(),
        });
    }
    out
}

/// A log of three committed batches; returns its path and where the batches lie.
fn three_batches(dir: &Path) -> (PathBuf, Vec<Batch>) {
    let path = dir.join("log.dat");
    let mut log = RecordFile::create(&path).unwrap();
    let batches = write_batches(
        &mut log,
        &[
            &[b"leaf-0", b"leaf-1"],
            &[b"leaf-2", b"leaf-3", b"leaf-4"],
            &[b"leaf-5"],
        ],
    );
    (path, batches)
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn recover(path: &Path) -> Result<Recovery, RecordsError> {
    RecordFile::open(path).unwrap().recover(Seal::START)
}

#[test]
fn committed_records_read_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let mut log = RecordFile::open(&path).unwrap();
    let recovery = log.recover(Seal::START).unwrap();
    assert_eq!(recovery.end, batches[2].end);
    assert_eq!(recovery.leaves, 6);
    assert_eq!(recovery.last_checkpoint, Some(batches[2].checkpoint));
    assert_eq!(recovery.cut, None);
    let record = log.read_at(batches[1].leaves[2]).unwrap();
    assert_eq!(
        (record.kind, record.body.as_slice()),
        (RecordKind::Leaf, &b"leaf-4"[..])
    );
    let all: Vec<_> = log
        .iter(HEADER_LEN, log.len())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let kinds: Vec<_> = all.iter().map(|r| r.kind as u8).collect();
    assert_eq!(kinds, [1, 1, 2, 1, 1, 1, 2, 1, 2]);
    assert_eq!(all[3].offset, batches[1].start);
    // Recovery may start at any committed boundary.
    let later = log
        .recover(Seal {
            leaves: 5,
            end: batches[1].end,
        })
        .unwrap();
    assert_eq!(
        (later.end, later.leaves, later.cut),
        (batches[2].end, 1, None)
    );
}

#[test]
fn create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = three_batches(dir.path());
    let before = fs::read(&path).unwrap();
    let err = RecordFile::create(&path).unwrap_err();
    assert_eq!(err.code(), "records_io");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = RecordFile::create(dir.path().join("log.dat")).unwrap();
    let big = vec![7u8; RECORD_BODY_BYTES_MAX + 1];
    let err = log.append(RecordKind::Leaf, &big).unwrap_err();
    assert!(matches!(err, RecordsError::BodyTooLarge { len } if len == big.len()));
    assert_eq!(log.pending(), 0, "a refused append buffers nothing");
    let at = log.append(RecordKind::Leaf, &big[1..]).unwrap();
    log.append(RecordKind::Checkpoint, b"c").unwrap();
    log.commit().unwrap();
    assert_eq!(log.read_at(at).unwrap().body.len(), RECORD_BODY_BYTES_MAX);
}

#[test]
fn reads_outside_committed_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let mut log = RecordFile::open(&path).unwrap();
    log.recover(Seal::START).unwrap();
    for offset in [0, HEADER_LEN - 1, batches[2].end, u64::MAX] {
        assert!(
            matches!(log.read_at(offset), Err(RecordsError::OutOfRange { .. })),
            "{offset}"
        );
    }
    // Appended but not committed: not readable yet.
    let pending = log.append(RecordKind::Leaf, b"leaf-6").unwrap();
    assert!(matches!(
        log.read_at(pending),
        Err(RecordsError::OutOfRange { .. })
    ));
    // Not a record boundary: the framing does not check out.
    assert!(matches!(
        log.read_at(HEADER_LEN + 1),
        Err(RecordsError::Corrupt { .. })
    ));
    assert!(matches!(
        log.iter(HEADER_LEN, batches[2].end + 1),
        Err(RecordsError::OutOfRange { .. })
    ));
    assert!(matches!(
        log.iter(batches[1].end, batches[0].end),
        Err(RecordsError::OutOfRange { .. })
    ));
    // A range that ends inside a record yields the error, then stops.
    let mut iter = log.iter(batches[1].start, batches[1].end - 1).unwrap();
    assert_eq!(iter.by_ref().take(3).filter(Result::is_ok).count(), 3);
    let err = iter.next().unwrap().unwrap_err();
    assert!(matches!(
        err,
        RecordsError::Corrupt {
            damage: Damage::PastEnd { .. },
            ..
        }
    ));
    assert!(iter.next().is_none());
}

#[test]
fn empty_file_header_only_and_damaged_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.dat");
    fs::write(&path, b"").unwrap();
    assert_eq!(
        RecordFile::open(&path).unwrap_err().code(),
        "records_bad_header"
    );
    fs::write(&path, &b"LLEDGER1"[..5]).unwrap();
    assert_eq!(
        RecordFile::open(&path).unwrap_err().code(),
        "records_bad_header"
    );
    assert_eq!(
        RecordFile::open(dir.path().join("absent"))
            .unwrap_err()
            .code(),
        "records_io"
    );

    let fresh = dir.path().join("fresh.dat");
    drop(RecordFile::create(&fresh).unwrap());
    let recovery = recover(&fresh).unwrap();
    assert_eq!(
        (recovery.end, recovery.last_checkpoint, recovery.cut),
        (HEADER_LEN, None, None)
    );

    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let (path, _) = three_batches(&sub);
    let mut bytes = fs::read(&path).unwrap();
    bytes[3] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        RecordFile::open(&path),
        Err(RecordsError::BadHeader { .. })
    ));
}

/// Expects a torn tail cut back to `end`, with the file left as its first `end` bytes.
fn expect_torn(path: &Path, original: &[u8], end: u64, damage_code: &str) {
    let recovery = recover(path).unwrap();
    let cut = recovery.cut.expect("a cut");
    assert_eq!((recovery.end, cut.offset), (end, end));
    match cut.reason {
        CutReason::TornTail { at, damage } => {
            assert_eq!((at, damage.code()), (end, damage_code));
        }
        other => panic!("expected a torn tail, got {other:?}"),
    }
    assert_eq!(cut.bytes, original.len() as u64 - end);
    assert_eq!(fs::read(path).unwrap(), original[..end as usize]);
}

#[test]
fn torn_header_body_and_crc_are_cut_back_to_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let committed = fs::read(&path).unwrap();
    let record = frame(1, b"leaf-6 never acknowledged");
    for (keep, code) in [
        (3, "short_header"),
        (12, "past_end"),
        (record.len() - 2, "past_end"),
    ] {
        fs::write(&path, &committed).unwrap();
        append_bytes(&path, &record[..keep]);
        let torn = fs::read(&path).unwrap();
        expect_torn(&path, &torn, batches[2].end, code);
    }
}

/// Three batches whose last one reached the file but not its seal: the header is the
/// one of two batches, as a crash between the records and the slot write leaves it.
fn three_batches_last_unsealed(dir: &Path) -> (PathBuf, Vec<Batch>, Vec<u8>) {
    let path = dir.join("log.dat");
    let mut log = RecordFile::create(&path).unwrap();
    let mut batches = write_batches(&mut log, &[&[b"leaf-0", b"leaf-1"], &[b"leaf-2"]]);
    let header = fs::read(&path).unwrap()[..HEADER_LEN as usize].to_vec();
    let last = write_batches(&mut log, &[&[b"leaf-3", b"leaf-4"]]);
    batches.extend(last);
    drop(log);
    let mut bytes = fs::read(&path).unwrap();
    bytes[..HEADER_LEN as usize].copy_from_slice(&header);
    (path, batches, bytes)
}

#[test]
fn every_truncation_of_an_unsealed_last_batch_recovers_the_batch_before() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches, full) = three_batches_last_unsealed(dir.path());
    for len in batches[2].start..=batches[2].end {
        fs::write(&path, &full[..len as usize]).unwrap();
        let recovery = recover(&path).unwrap();
        let expected = if len == batches[2].end {
            len
        } else {
            batches[1].end
        };
        assert_eq!(recovery.end, expected, "file cut at {len}");
        assert_eq!(recovery.cut.is_some(), len != expected, "file cut at {len}");
        let now = fs::read(&path).unwrap();
        assert_eq!(
            now[HEADER_LEN as usize..],
            full[HEADER_LEN as usize..expected as usize]
        );
        // What the records prove is sealed again, so it can never be cut later.
        let leaves = if len == batches[2].end { 5 } else { 3 };
        assert_eq!(
            RecordFile::open(&path).unwrap().seal(),
            Seal {
                leaves,
                end: expected
            },
            "file cut at {len}"
        );
    }
}

#[test]
fn no_truncation_of_a_sealed_batch_is_recovered_by_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let full = fs::read(&path).unwrap();
    for len in batches[2].start..batches[2].end {
        fs::write(&path, &full[..len as usize]).unwrap();
        match recover(&path) {
            Err(RecordsError::BelowSeal { sealed, intact, .. }) => {
                assert_eq!(
                    (sealed.leaves, sealed.end, intact.leaves, intact.end),
                    (6, batches[2].end, 5, batches[1].end),
                    "file cut at {len}"
                );
            }
            other => panic!("file cut at {len}: expected below_seal, got {other:?}"),
        }
        assert_eq!(fs::read(&path).unwrap(), full[..len as usize], "unchanged");
    }
}

#[test]
fn a_torn_seal_slot_leaves_the_previous_seal_and_recovery_rewrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let full = fs::read(&path).unwrap();
    // Slots alternate: create wrote both, the three commits slots 1, 0, 1. The last
    // commit's slot write was torn (a power loss after the records reached the disk).
    let mut torn = full.clone();
    torn[8 + 32 + 5] ^= 0x40;
    fs::write(&path, &torn).unwrap();
    let mut log = RecordFile::open(&path).unwrap();
    assert_eq!(
        log.seal(),
        Seal {
            leaves: 5,
            end: batches[1].end
        },
        "the previous seal"
    );
    let recovery = log.recover(Seal::START).unwrap();
    assert_eq!((recovery.end, recovery.cut), (batches[2].end, None));
    let sealed = Seal {
        leaves: 6,
        end: batches[2].end,
    };
    assert_eq!(log.seal(), sealed);
    assert_eq!(RecordFile::open(&path).unwrap().seal(), sealed);
    // Both slots damaged: nothing says how far the file was committed. Fail closed.
    let mut both = full;
    both[8 + 5] ^= 0x40;
    both[8 + 32 + 5] ^= 0x40;
    fs::write(&path, &both).unwrap();
    let err = RecordFile::open(&path).unwrap_err();
    assert_eq!(err.code(), "records_seal_damaged");
}

#[test]
fn a_partial_batch_without_its_checkpoint_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let mut log = RecordFile::open(&path).unwrap();
    log.recover(Seal::START).unwrap();
    log.append(RecordKind::Leaf, b"leaf-6").unwrap();
    log.append(RecordKind::Leaf, b"leaf-7").unwrap();
    // Written without the checkpoint: the crash came before the commit marker.
    log.commit().unwrap();
    drop(log);
    let mut log = RecordFile::open(&path).unwrap();
    let recovery = log.recover(Seal::START).unwrap();
    let cut = recovery.cut.unwrap();
    assert_eq!(cut.reason, CutReason::Uncommitted { records: 2 });
    assert_eq!(
        (cut.offset, recovery.end, log.len()),
        (batches[2].end, batches[2].end, batches[2].end)
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), batches[2].end);
    // The log goes on from the cut.
    let next = write_batches(&mut log, &[&[b"leaf-6 again"]]);
    assert_eq!(next[0].start, batches[2].end);
    assert_eq!(recover(&path).unwrap().cut, None);
}

#[test]
fn junk_after_the_last_checkpoint_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let seed = 0x5eed_0001;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let junk: Vec<u8> = (0..4096).map(|_| rng.gen()).collect();
    append_bytes(&path, &junk);
    let torn = fs::read(&path).unwrap();
    let recovery = recover(&path).unwrap();
    assert_eq!(recovery.end, batches[2].end, "seed {seed}");
    assert_eq!(recovery.cut.unwrap().bytes, junk.len() as u64);
    assert_eq!(fs::read(&path).unwrap(), torn[..batches[2].end as usize]);
    // A record of an unknown kind (9) is junk too.
    append_bytes(&path, &frame(9, b"kind nine"));
    let torn = fs::read(&path).unwrap();
    expect_torn(&path, &torn, batches[2].end, "unknown_kind");
}

#[test]
fn any_flipped_bit_before_the_last_checkpoint_fails_closed_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let good = fs::read(&path).unwrap();
    // Every bit of the middle batch, and of the last batch's leaf records: a valid
    // checkpoint record follows each, so acknowledged data lies beyond the damage.
    let bits = (batches[1].start..batches[1].end).chain(batches[2].start..batches[2].checkpoint);
    for byte in bits {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[byte as usize] ^= 1 << bit;
            fs::write(&path, &bad).unwrap();
            let err = recover(&path).unwrap_err();
            let RecordsError::Corrupt { offset, .. } = err else {
                panic!("byte {byte} bit {bit}: expected corrupt, got {err:?}");
            };
            assert!(
                offset <= byte,
                "byte {byte} bit {bit}: damage reported at {offset}"
            );
            assert_eq!(
                fs::read(&path).unwrap(),
                bad,
                "byte {byte} bit {bit}: file changed"
            );
        }
    }
}

#[test]
fn a_flipped_length_in_the_last_batch_followed_by_a_valid_batch_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let good = fs::read(&path).unwrap();
    // The length field of batch 2's checkpoint record (after its kind byte). Batch 2 is
    // followed by the valid batch 3.
    let len_field = batches[1].checkpoint as usize + 1;
    for (byte, bit, damage) in [
        (0, 7, "length_over_max"),
        (3, 6, "past_end"),
        (3, 0, "crc_mismatch"),
    ] {
        let mut bad = good.clone();
        bad[len_field + byte] ^= 1 << bit;
        fs::write(&path, &bad).unwrap();
        match recover(&path) {
            Err(RecordsError::Corrupt { offset, damage: d }) => {
                assert_eq!((offset, d.code()), (batches[1].checkpoint, damage));
            }
            other => panic!("byte {byte} bit {bit}: expected corrupt, got {other:?}"),
        }
        assert_eq!(fs::read(&path).unwrap(), bad);
    }
}

#[test]
fn recover_refuses_pending_appends_and_bad_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let mut log = RecordFile::open(&path).unwrap();
    for from in [0, batches[2].end + 1] {
        assert!(
            matches!(
                log.recover(Seal {
                    leaves: 0,
                    end: from
                }),
                Err(RecordsError::OutOfRange { .. })
            ),
            "{from}"
        );
    }
    // A file opened and not recovered may have a torn tail: appends wait for recovery.
    let err = log.append(RecordKind::Leaf, b"x").unwrap_err();
    assert_eq!(err.code(), "records_not_recovered");
    log.recover(Seal::START).unwrap();
    log.append(RecordKind::Leaf, b"x").unwrap();
    let err = log.recover(Seal::START).unwrap_err();
    assert!(matches!(err, RecordsError::Pending { bytes: 10 }));
    log.discard_pending();
    assert_eq!(log.recover(Seal::START).unwrap().cut, None);
}

#[test]
fn record_reader_works_from_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = three_batches(dir.path());
    let mut log = RecordFile::open(&path).unwrap();
    log.recover(Seal::START).unwrap();
    let reader = log.reader();
    let at = batches[0].leaves[1];
    let body = std::thread::spawn(move || reader.read_at(at).unwrap().body)
        .join()
        .unwrap();
    assert_eq!(body, b"leaf-1");
}
