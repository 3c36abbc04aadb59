//! Regression tests for what the fuzz targets of `fuzz/` found, one test per finding,
//! each reproducing the fuzzer's input on the real code.

use lesson_ledger::http::tiles::TilePath;
use lesson_ledger::log::audit::{audit, AuditOptions};
use lesson_ledger::log::records::MAGIC;
use lesson_ledger::log::store::{EntryIdOnly, Log};

use crate::support::new_log;

/// `fuzz/artifacts/tile_path/crash-2ce66974…`: `3/001.p.p/1` parsed as the tile
/// `3/001.p/1`, so one tile had two URLs; only the canonical encoding may parse.
#[test]
fn a_tile_path_with_a_doubled_partial_suffix_is_not_canonical_and_is_refused() {
    assert!(TilePath::parse("3/001.p.p/1").is_err());
    assert!(TilePath::parse("entries/x001/234.p.p.p/8").is_err());
    let tile = TilePath::parse("3/001.p/1").expect("the canonical form parses");
    assert_eq!(tile.to_path(), "tile/3/001.p/1");
}

/// `fuzz/artifacts/log_open/crash-90887ad0…`: a `log.dat` holding only its header (a
/// `create` killed before its first commit) opened as an empty log serving a checkpoint
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
    std::fs::write(cut_short.path().join("log.dat"), MAGIC).unwrap();

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
