//! Regression tests for what the fuzz targets of `fuzz/` found, one test per finding,
//! each reproducing the fuzzer's input on the real code.

use lesson_ledger::log::audit::{audit, AuditOptions};
use lesson_ledger::log::envelope::VerifiedEnvelope;
use lesson_ledger::log::records::{open_reader, RecordFile, RecordKind, HEADER_LEN};
use lesson_ledger::log::store::{Admission, EntryIdOnly, Log, LogError};
use lesson_ledger::log::tiles::TilePath;

use crate::support::{envelope, new_log, signer, verified};

/// `fuzz/artifacts/tile_path/crash-2ce66974…`: `3/001.p.p/1` parsed as the tile
/// `3/001.p/1`, so one tile had two URLs; only the canonical encoding may parse.
#[test]
fn a_tile_path_with_a_doubled_partial_suffix_is_not_canonical_and_is_refused() {
    assert!(TilePath::parse("3/001.p.p/1").is_err());
    assert!(TilePath::parse("entries/x001/234.p.p.p/8").is_err());
    let tile = TilePath::parse("3/001.p/1").expect("the canonical form parses");
    assert_eq!(tile.to_path(), "tile/3/001.p/1");
}

/// `fuzz/artifacts/log_open/crash-90887ad0…` (found on format 1, remade on format 2): a
/// `log.dat` holding only its header (a `create` killed before its first commit) opened as an empty log serving a checkpoint
/// that was in no record, and `verify --data` then failed ("log does not end with a
/// checkpoint"). Opening must leave a log the auditor accepts.
#[test]
fn a_log_file_holding_only_its_header_opens_to_a_log_the_auditor_accepts() {
    let made = tempfile::tempdir().unwrap();
    drop(new_log(made.path()));
    let cut_short = tempfile::tempdir().unwrap();
    for file in ["log.json", "operator.key"] {
        std::fs::copy(made.path().join(file), cut_short.path().join(file)).unwrap();
    }
    // What `create` leaves when killed before its first commit: the format-2 header
    // (magic and both seal slots at the start), no record.
    drop(RecordFile::create(cut_short.path().join("log.dat")).unwrap());

    let (log, _) = Log::open(cut_short.path(), Box::new(EntryIdOnly)).expect("opens");
    assert_eq!(log.size(), 0);
    let served = log.checkpoint().text();
    drop(log);
    let summary = audit(cut_short.path(), &AuditOptions::default(), &|_, _| {})
        .expect("the auditor accepts the log that opened");
    assert_eq!((summary.entries, summary.checkpoints), (0, 1));
    let (again, _) = Log::open(cut_short.path(), Box::new(EntryIdOnly)).expect("reopens");
    assert_eq!(
        again.checkpoint().text(),
        served,
        "the same checkpoint, now in log.dat"
    );
}

/// A raw log whose layer above commits to a fixed state digest, so that every batch
/// carries a state note.
struct FixedState([u8; 32]);

impl Admission for FixedState {
    type Refusal = std::convert::Infallible;
    fn admit(&mut self, _: u64, _: u64, _: &VerifiedEnvelope) -> Result<(), Self::Refusal> {
        Ok(())
    }
    fn state_digest(&mut self) -> Option<[u8; 32]> {
        Some(self.0)
    }
}

/// Finding 3 of `log_open`: the state note of the last batch, its digest line altered
/// and its record's CRC recomputed, opened as if the operator had signed it (only the
/// checkpoint was checked on open); the log then served and built on a commitment the
/// auditor refuses. Opening must fail closed, as for an altered checkpoint.
#[test]
fn a_state_note_altered_with_a_recomputed_crc_is_refused_on_open() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    let alice = signer("stu-0a1f", 3);
    let entry = verified(envelope(&[&alice], "e-0001", 1));
    log.append(vec![entry], &mut FixedState([7; 32])).unwrap();
    drop(log);
    drop(Log::open(dir.path(), Box::new(EntryIdOnly)).expect("the log as written opens"));

    let path = dir.path().join("log.dat");
    let (reader, _) = open_reader(&path).unwrap();
    let note = reader
        .iter(HEADER_LEN, reader.len())
        .unwrap()
        .map(Result::unwrap)
        .filter(|r| r.kind == RecordKind::StateNote)
        .last()
        .expect("the batch wrote a state note");
    let b64 = base64::engine::general_purpose::STANDARD;
    let (signed, altered) = (b64.encode([7u8; 32]), b64.encode([8u8; 32]));
    let text = String::from_utf8(note.body.clone()).unwrap();
    assert!(text.contains(&signed), "the note commits to the digest");
    let forged = text.replacen(&signed, &altered, 1).into_bytes();
    assert_eq!(forged.len(), note.body.len());
    let mut bytes = std::fs::read(&path).unwrap();
    let body_at = note.offset as usize + 5;
    bytes[body_at..body_at + forged.len()].copy_from_slice(&forged);
    let crc_at = body_at + forged.len();
    let crc = crc32c::crc32c(&bytes[note.offset as usize..crc_at]);
    bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();

    let refused = Log::open(dir.path(), Box::new(EntryIdOnly)).map(|_| ());
    assert!(
        matches!(refused, Err(LogError::Damaged { index: 1, .. })),
        "an altered state note fails closed, got {refused:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "log.dat is unchanged");
    assert!(
        audit(dir.path(), &AuditOptions::default(), &|_, _| {}).is_err(),
        "the auditor refuses it too"
    );
}
