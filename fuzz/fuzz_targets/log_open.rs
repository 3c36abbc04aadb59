//! Opening a log directory whose `log.dat` is fuzzed bytes (`Log::open`, which recovers
//! the record file and rebuilds every derived store), and the auditor's read of the
//! same bytes (`audit`). The directory holds the fixture ledger's real `log.json` and
//! operator key, so the seeds (the fixture's own `log.dat`) open.
//!
//! Must recover or fail closed, never panic. A log that opens from raw bytes must pass
//! the audit: open may only cut an unacknowledged tail, never accept bytes the auditor
//! refuses. (Re-framed bytes may alter signed records before the last batch, which open
//! does not re-verify; the audit then refuses them.)
#![no_main]

use lesson_ledger::log::audit::{audit, AuditOptions};
use lesson_ledger::log::store::{EntryIdOnly, Log};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = lesson_ledger_fuzz::record_file_bytes(data);
    let dir = tempfile::tempdir().expect("temporary directory");
    lesson_ledger_fuzz::write_fixture_config(dir.path());
    std::fs::write(dir.path().join("log.dat"), &bytes).expect("write log.dat");

    // The auditor reads the bytes as they are: any answer but a panic.
    let _ = audit(dir.path(), &AuditOptions::default(), &|_, _| {});

    let Ok((log, _report)) = Log::open(dir.path(), Box::new(EntryIdOnly)) else {
        return;
    };
    let size = log.size();
    drop(log);
    let audited = audit(dir.path(), &AuditOptions::default(), &|_, _| {});
    // Open checks the signatures of the last checkpoint and state note only; older
    // signed records are the auditor's to check. A re-framed input (CRCs recomputed over
    // altered text) may therefore open and still fail the audit (known, not fixed: see
    // ARCHITECTURE.md, fuzz findings). Raw inputs must agree.
    if data.first().is_some_and(|mode| mode & 1 == 1) && audited.is_err() {
        return;
    }
    let summary =
        audited.unwrap_or_else(|e| panic!("a log that opened (size {size}) fails the audit: {e}"));
    assert_eq!(
        summary.entries, size,
        "the audit counts the entries the log holds"
    );
});
