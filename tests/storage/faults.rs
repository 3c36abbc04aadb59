//! Storage faults under the real store: a [`DiskWrites`] layer that makes one chosen
//! write or `fdatasync` fail — EIO, ENOSPC, a short write, a write torn by a crash —
//! under `log.dat` and the derived stores. After a failed write or sync nothing of the
//! batch is acknowledged, the writer refuses every later write (never retry a failed
//! fsync and pretend: PostgreSQL's lesson), and a reopen on a healthy disk recovers
//! what the disk proves, or fails closed.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use lesson_ledger::log::audit::{audit, AuditOptions};
use lesson_ledger::log::disk::{Disk, DiskWrites};
use lesson_ledger::log::store::{AdmitAll, EntryIdOnly, Log, LogError, Outcome};
use tempfile::TempDir;

use crate::support::{envelope, signer, verified};

/// Which operation a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    Sync,
}

/// What the disk does instead.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The operation fails with `EIO`.
    Eio,
    /// The operation fails with `ENOSPC`, nothing written.
    NoSpace,
    /// The first `keep` bytes are written, then `ENOSPC`.
    Short { keep: usize },
    /// The first `keep` bytes are written and the process dies: nothing after reaches
    /// the disk (every later operation fails).
    Torn { keep: usize },
}

/// One armed fault: the `skip + 1`-th `op` on a file whose name contains `file`.
#[derive(Debug)]
struct Armed {
    file: &'static str,
    op: Op,
    skip: usize,
    fault: Fault,
}

/// The fault-injecting layer: the real file system, but for one armed fault.
#[derive(Debug, Default)]
struct FaultyDisk {
    armed: Mutex<Option<Armed>>,
    /// Set by a torn write: the process is gone, nothing more reaches the disk.
    dead: Mutex<bool>,
    /// Whether the armed fault fired.
    fired: Mutex<bool>,
}

impl FaultyDisk {
    fn arm(&self, file: &'static str, op: Op, skip: usize, fault: Fault) {
        *self.armed.lock().unwrap() = Some(Armed {
            file,
            op,
            skip,
            fault,
        });
    }

    fn fired(&self) -> bool {
        *self.fired.lock().unwrap()
    }

    /// The fault for this operation, if it is the armed one (which is then used up).
    fn take(&self, path: &Path, op: Op) -> io::Result<Option<Fault>> {
        if *self.dead.lock().unwrap() {
            return Err(io::Error::other("the process died (torn write)"));
        }
        let mut armed = self.armed.lock().unwrap();
        let name = path.to_string_lossy();
        match armed.as_mut() {
            Some(a) if a.op == op && name.contains(a.file) => {
                if a.skip > 0 {
                    a.skip -= 1;
                    return Ok(None);
                }
                let fault = a.fault;
                *armed = None;
                *self.fired.lock().unwrap() = true;
                Ok(Some(fault))
            }
            _ => Ok(None),
        }
    }

    fn fail(&self, file: &File, buf: &[u8], offset: u64, fault: Fault) -> io::Result<()> {
        match fault {
            Fault::Eio => Err(io::Error::from_raw_os_error(5)),
            Fault::NoSpace => Err(io::Error::from_raw_os_error(28)),
            Fault::Short { keep } => {
                file.write_all_at(&buf[..keep.min(buf.len())], offset)?;
                Err(io::Error::from_raw_os_error(28))
            }
            Fault::Torn { keep } => {
                file.write_all_at(&buf[..keep.min(buf.len())], offset)?;
                *self.dead.lock().unwrap() = true;
                Err(io::Error::other("the process died mid-write"))
            }
        }
    }
}

impl DiskWrites for FaultyDisk {
    fn write_all_at(&self, path: &Path, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        match self.take(path, Op::Write)? {
            Some(fault) => self.fail(file, buf, offset, fault),
            None => file.write_all_at(buf, offset),
        }
    }

    fn sync_data(&self, path: &Path, file: &File) -> io::Result<()> {
        match self.take(path, Op::Sync)? {
            Some(fault) => self.fail(file, &[], 0, fault),
            None => file.sync_data(),
        }
    }

    fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()> {
        // Truncation is never the armed operation, but a dead process truncates nothing.
        self.take(path, Op::Write).map(|_| ())?;
        file.set_len(len)
    }
}

/// A log of 10 entries on a faulty disk, and the disk.
fn faulty_log(dir: &Path) -> (Log, Arc<FaultyDisk>) {
    let faults = Arc::new(FaultyDisk::default());
    let disk = Disk::new(faults.clone());
    let mut log = Log::create_on(
        dir,
        "lessons.example/test",
        "operator",
        Box::new(EntryIdOnly),
        disk,
    )
    .unwrap();
    append(&mut log, 0, 10).unwrap();
    (log, faults)
}

fn append(log: &mut Log, from: u64, n: u64) -> Result<Vec<Outcome<()>>, LogError> {
    let alice = signer("inst-0001", 1);
    let batch = (from..from + n)
        .map(|i| verified(envelope(&[&alice], &format!("e-{i}"), i)))
        .collect();
    let outcomes = log.append(batch, &mut AdmitAll)?;
    Ok(outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Ok(r) => Outcome::Ok(r),
            Outcome::Exists(r) => Outcome::Exists(r),
            other => panic!("unexpected {other:?}"),
        })
        .collect())
}

/// After the fault: the batch was refused, and so is everything after it.
fn assert_failed_and_stopped(
    log: &mut Log,
    faults: &FaultyDisk,
    result: Result<Vec<Outcome<()>>, LogError>,
) {
    assert!(faults.fired(), "the armed fault was reached");
    let err = result.expect_err("a faulted batch is never acknowledged");
    assert_ne!(
        err.code(),
        "log_failed",
        "the first error is the fault: {err}"
    );
    let again = append(log, 100, 1).expect_err("the writer stopped");
    assert_eq!(again.code(), "log_failed");
}

/// Reopens on a healthy disk; the log must hold `size` entries and pass the audit.
fn reopen_healthy(dir: &Path, size: u64) -> Log {
    let (log, _) = Log::open(dir, Box::new(EntryIdOnly)).expect("reopen recovers");
    assert_eq!(log.size(), size);
    audit(dir, &AuditOptions::default(), &|_, _| {}).expect("the log still verifies");
    log
}

#[test]
fn a_failed_fdatasync_acknowledges_nothing_and_the_writer_stops() {
    let dir = TempDir::new().unwrap();
    let (mut log, faults) = faulty_log(dir.path());
    faults.arm("log.dat", Op::Sync, 0, Fault::Eio);
    let result = append(&mut log, 10, 5);
    assert_failed_and_stopped(&mut log, &faults, result);
    drop(log);
    // The batch's bytes may sit in the page cache, marked clean though never on disk:
    // they were removed, so the reopened log is the one the disk proves.
    let mut log = reopen_healthy(dir.path(), 10);
    let outcomes = append(&mut log, 10, 5).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ok(_))));
    assert_eq!(log.size(), 15);
}

#[test]
fn no_space_for_the_records_acknowledges_nothing_and_the_writer_stops() {
    let dir = TempDir::new().unwrap();
    let (mut log, faults) = faulty_log(dir.path());
    faults.arm("log.dat", Op::Write, 0, Fault::NoSpace);
    let result = append(&mut log, 10, 5);
    assert_failed_and_stopped(&mut log, &faults, result);
    drop(log);
    reopen_healthy(dir.path(), 10);
}

#[test]
fn a_short_write_of_the_records_acknowledges_nothing_and_leaves_no_partial_batch() {
    let dir = TempDir::new().unwrap();
    let (mut log, faults) = faulty_log(dir.path());
    let before = std::fs::metadata(dir.path().join("log.dat")).unwrap().len();
    faults.arm("log.dat", Op::Write, 0, Fault::Short { keep: 700 });
    let result = append(&mut log, 10, 5);
    assert_failed_and_stopped(&mut log, &faults, result);
    assert_eq!(
        std::fs::metadata(dir.path().join("log.dat")).unwrap().len(),
        before,
        "the partial batch is removed at once"
    );
    drop(log);
    reopen_healthy(dir.path(), 10);
}

#[test]
fn a_write_torn_by_a_crash_is_cut_on_reopen() {
    let dir = TempDir::new().unwrap();
    let (mut log, faults) = faulty_log(dir.path());
    faults.arm("log.dat", Op::Write, 0, Fault::Torn { keep: 700 });
    let result = append(&mut log, 10, 5);
    assert_failed_and_stopped(&mut log, &faults, result);
    drop(log);
    // The process died before it could undo anything: the torn batch is on disk.
    reopen_healthy(dir.path(), 10);
}

#[test]
fn a_seal_write_torn_by_a_crash_keeps_the_previous_seal_and_the_whole_batch() {
    let dir = TempDir::new().unwrap();
    let (mut log, faults) = faulty_log(dir.path());
    // The second write of a commit is the seal slot, after the records.
    faults.arm("log.dat", Op::Write, 1, Fault::Torn { keep: 9 });
    let result = append(&mut log, 10, 5);
    assert_failed_and_stopped(&mut log, &faults, result);
    drop(log);
    // Never acknowledged, but whole and committed by its checkpoint: kept, and a
    // client resending it is told it exists.
    let mut log = reopen_healthy(dir.path(), 15);
    let outcomes = append(&mut log, 10, 5).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Exists(_))));
}

#[test]
fn a_derived_store_fault_after_the_commit_stops_the_writer_and_the_reopen_rebuilds() {
    for (file, op, fault) in [
        ("level-00", Op::Write, Fault::NoSpace),
        ("level-01", Op::Write, Fault::Short { keep: 10 }),
        ("offsets.dat", Op::Write, Fault::Eio),
        ("ids.dat", Op::Write, Fault::Torn { keep: 5 }),
    ] {
        let dir = TempDir::new().unwrap();
        let (mut log, faults) = faulty_log(dir.path());
        faults.arm(file, op, 0, fault);
        let result = append(&mut log, 10, 5);
        assert_failed_and_stopped(&mut log, &faults, result);
        drop(log);
        // log.dat was synced before the derived stores were written: the batch is
        // durable (though unacknowledged) and the derived stores are rebuilt.
        let mut log = reopen_healthy(dir.path(), 15);
        let outcomes = append(&mut log, 10, 5).unwrap();
        assert!(
            outcomes.iter().all(|o| matches!(o, Outcome::Exists(_))),
            "{file}"
        );
        assert_eq!(log.size(), 15);
    }
}

#[test]
fn a_failed_sync_on_close_is_reported_not_ignored() {
    let dir = TempDir::new().unwrap();
    let (log, faults) = faulty_log(dir.path());
    faults.arm("offsets.dat", Op::Sync, 0, Fault::Eio);
    let err = log.close().expect_err("close reports the failed sync");
    assert_eq!(err.code(), "derived_data_damaged");
    reopen_healthy(dir.path(), 10);
}
