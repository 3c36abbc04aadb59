//! Power cuts under the real store (issue 15): a [`DiskWrites`] layer that keeps what
//! the disk holds of `log.dat` — its bytes at the last `fdatasync` — and the writes
//! issued since, which a power cut may keep whole, lose, or cut at any byte (the file's
//! length with them). Every image a cut in the middle of a batch's sync can leave must
//! open, keep every acknowledged entry, and keep the batch in flight whole or not at all;
//! and no seal written since the last sync may name a byte the disk does not hold yet.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use lesson_ledger::log::audit::{audit, AuditOptions};
use lesson_ledger::log::disk::{Disk, DiskWrites};
use lesson_ledger::log::records::{
    copy_sealed, open_reader, RecordFile, RecordKind, Seal, HEADER_LEN, MAGIC, MAGIC_V2,
};
use lesson_ledger::log::store::{AdmitAll, EntryIdOnly, Log, Outcome, Receipt};
use tempfile::TempDir;

use crate::support::{envelope, signer, verified};

/// `log.dat` as a power cut would find it: the bytes synced last, and every write since.
#[derive(Debug, Default, Clone)]
struct Image {
    durable: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
}

/// The real file system, keeping the [`Image`] of `log.dat` on the side.
#[derive(Debug, Default)]
struct PowerCutDisk {
    image: Mutex<Image>,
}

impl PowerCutDisk {
    fn image(&self) -> Image {
        self.image.lock().unwrap().clone()
    }
}

fn is_records(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == "log.dat")
}

impl DiskWrites for PowerCutDisk {
    fn write_all_at(&self, path: &Path, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if is_records(path) {
            let mut image = self.image.lock().unwrap();
            image.pending.push((offset, buf.to_vec()));
        }
        file.write_all_at(buf, offset)
    }

    fn sync_data(&self, path: &Path, file: &File) -> io::Result<()> {
        file.sync_data()?;
        if is_records(path) {
            let mut image = self.image.lock().unwrap();
            image.durable = fs::read(path)?;
            image.pending.clear();
        }
        Ok(())
    }

    fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()> {
        assert!(
            !is_records(path),
            "no truncation of log.dat in these scenarios"
        );
        file.set_len(len)
    }
}

/// How much of one pending write a power cut kept: its first `n` bytes.
fn apply(image: &Image, kept: &[usize]) -> Vec<u8> {
    let mut bytes = image.durable.clone();
    for ((at, write), &n) in image.pending.iter().zip(kept) {
        let at = *at as usize;
        if n == 0 {
            continue;
        }
        if bytes.len() < at + n {
            bytes.resize(at + n, 0);
        }
        bytes[at..at + n].copy_from_slice(&write[..n]);
    }
    bytes
}

/// The end a seal slot write names (bytes 8..16 of the slot).
fn slot_end(write: &[u8]) -> u64 {
    u64::from_be_bytes(write[8..16].try_into().unwrap())
}

/// Every way a power cut can leave the pending writes: a slot write (into the header)
/// lost, whole or torn; a write of records cut at each length `cuts` gives for it.
fn choices(image: &Image, cuts: &dyn Fn(&[u8]) -> Vec<usize>) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    for (at, write) in &image.pending {
        let options: Vec<usize> = if *at < HEADER_LEN {
            vec![0, 9, write.len()]
        } else {
            cuts(write)
        };
        all = all
            .into_iter()
            .flat_map(|kept| {
                options.iter().map(move |&n| {
                    let mut kept = kept.clone();
                    kept.push(n);
                    kept
                })
            })
            .collect();
    }
    all
}

/// No seal written since the last sync names a byte that sync did not make durable.
fn assert_no_seal_ahead_of_the_disk(image: &Image) {
    for (at, write) in &image.pending {
        if *at < HEADER_LEN {
            assert!(
                slot_end(write) <= image.durable.len() as u64,
                "a seal to byte {} was written while the disk holds {} bytes",
                slot_end(write),
                image.durable.len()
            );
        }
    }
}

/// Commits one batch a name, of `leaves` leaf records and a checkpoint record each;
/// the seal after each.
fn commit_batches(log: &mut RecordFile, names: &[&str], leaves: usize) -> Vec<Seal> {
    let mut seals = Vec::new();
    for name in names {
        append_batch(log, name, leaves);
        log.commit().unwrap();
        seals.push(log.seal());
    }
    seals
}

fn append_batch(log: &mut RecordFile, name: &str, leaves: usize) {
    for i in 0..leaves {
        log.append(RecordKind::Leaf, format!("{name} leaf {i}").as_bytes())
            .unwrap();
    }
    log.append(
        RecordKind::Checkpoint,
        format!("{name} checkpoint").as_bytes(),
    )
    .unwrap();
}

/// A new `log.dat` in `dir`, written through a [`PowerCutDisk`].
fn record_file_on_power_cut_disk(
    dir: &TempDir,
) -> (std::path::PathBuf, Arc<PowerCutDisk>, RecordFile) {
    let disk = Arc::new(PowerCutDisk::default());
    let path = dir.path().join("log.dat");
    let log = RecordFile::create_on(&path, Disk::new(disk.clone())).unwrap();
    (path, disk, log)
}

#[test]
fn every_image_a_power_cut_leaves_keeps_each_acknowledged_batch_and_the_last_whole_or_not() {
    let dir = TempDir::new().unwrap();
    let (path, disk, mut log) = record_file_on_power_cut_disk(&dir);
    let acked = commit_batches(&mut log, &["first", "second", "third"], 2)[2];
    assert_eq!(
        acked,
        Seal {
            leaves: 6,
            end: log.len()
        }
    );
    append_batch(&mut log, "in flight", 3);
    let unsynced = log.write_pending().unwrap().unwrap();
    let (_, full_end) = unsynced.range();

    // A reader of the live file never takes the batch in flight as sealed.
    let copy = dir.path().join("copy.dat");
    assert_eq!(copy_sealed(&path, &copy).unwrap(), acked);
    assert_eq!(open_reader(&path).unwrap().1, acked);

    let image = disk.image();
    assert_no_seal_ahead_of_the_disk(&image);
    let expected: Vec<Vec<u8>> = log
        .iter(HEADER_LEN, acked.end)
        .unwrap()
        .map(|r| r.unwrap().body)
        .collect();
    let crashed = dir.path().join("crashed.dat");
    let images = choices(&image, &|write| (0..=write.len()).collect());
    assert!(images.len() > 3 * 100, "{} images", images.len());
    for kept in images {
        let bytes = apply(&image, &kept);
        fs::write(&crashed, &bytes).unwrap();
        let mut reopened = RecordFile::open(&crashed).unwrap();
        let recovery = reopened
            .recover(Seal::START)
            .unwrap_or_else(|e| panic!("kept {kept:?}: {e}"));
        let whole = bytes.len() as u64 == full_end;
        let (leaves, end) = if whole { (9, full_end) } else { (6, acked.end) };
        assert_eq!((recovery.leaves, recovery.end), (leaves, end), "{kept:?}");
        assert_eq!(reopened.seal(), Seal { leaves, end }, "{kept:?}");
        let bodies: Vec<Vec<u8>> = reopened
            .iter(HEADER_LEN, acked.end)
            .unwrap()
            .map(|r| r.unwrap().body)
            .collect();
        assert_eq!(bodies, expected, "{kept:?}");
    }

    let synced = log.syncer().sync();
    log.settle(unsynced, synced).unwrap();
    let sealed = Seal {
        leaves: 9,
        end: full_end,
    };
    assert_eq!(open_reader(&path).unwrap().1, sealed, "seen once synced");
    assert_no_seal_ahead_of_the_disk(&disk.image());
}

#[test]
fn an_acknowledged_batch_above_a_lagging_seal_is_kept_and_sealed() {
    let dir = TempDir::new().unwrap();
    let (path, disk, mut log) = record_file_on_power_cut_disk(&dir);
    let first = commit_batches(&mut log, &["first", "second"], 2)[0];
    // The second batch is synced and acknowledged; its seal is written, not yet synced.
    let image = disk.image();
    assert_eq!(image.pending.len(), 1, "only the seal waits for a sync");
    let lagging = apply(&image, &[0]);
    assert_eq!(
        slot_end(&lagging[8..40]).max(slot_end(&lagging[40..72])),
        first.end
    );
    fs::write(&path, &lagging).unwrap();
    drop(log);

    let mut reopened = RecordFile::open(&path).unwrap();
    assert_eq!(reopened.seal(), first, "the seal on disk lags one batch");
    let recovery = reopened.recover(Seal::START).unwrap();
    assert_eq!((recovery.leaves, recovery.above_seal), (4, 2));
    assert_eq!(recovery.cut, None);
    assert_eq!(
        reopened.seal(),
        Seal {
            leaves: 4,
            end: reopened.len()
        }
    );
    drop(reopened);
    let (_, sealed) = open_reader(&path).unwrap();
    assert_eq!(sealed.leaves, 4, "and the new seal is on disk");
}

/// A header's seal slot holding `seal` (the format of `schemas/README.md` §7.1).
fn slot(seal: Seal) -> Vec<u8> {
    let mut out = [seal.leaves.to_be_bytes(), seal.end.to_be_bytes(), [0; 8]].concat();
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out
}

#[test]
fn a_seal_that_names_no_batch_boundary_fails_closed() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("log.dat");
    let mut log = RecordFile::create(&path).unwrap();
    let first = commit_batches(&mut log, &["first", "second"], 2)[0];
    drop(log);
    let good = fs::read(&path).unwrap();
    for (seal, found) in [
        (
            Seal {
                leaves: 3,
                end: first.end,
            },
            "2 leaf records end there",
        ),
        (
            Seal {
                leaves: 2,
                end: first.end + 5,
            },
            "no checkpoint record ends there",
        ),
    ] {
        let mut bytes = good.clone();
        bytes[8..40].copy_from_slice(&slot(seal));
        bytes[40..72].copy_from_slice(&slot(seal));
        fs::write(&path, &bytes).unwrap();
        let err = RecordFile::open(&path)
            .unwrap()
            .recover(Seal::START)
            .expect_err("a seal off the records is damage");
        assert_eq!(err.code(), "records_seal_mismatch", "{err}");
        assert!(err.to_string().contains(found), "{err}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "nothing is changed");
    }
}

#[test]
fn a_format_2_file_is_read_as_it_is_and_rewritten_as_format_3_by_its_writer() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("log.dat");
    let mut log = RecordFile::create(&path).unwrap();
    let sealed = commit_batches(&mut log, &["first"], 2)[0];
    drop(log);
    let mut bytes = fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], MAGIC);
    bytes[..8].copy_from_slice(MAGIC_V2);
    fs::write(&path, &bytes).unwrap();

    let (reader, seal) = open_reader(&path).expect("an auditor reads format 2");
    assert_eq!((seal, reader.len()), (sealed, sealed.end));
    let copy = dir.path().join("copy.dat");
    copy_sealed(&path, &copy).unwrap();
    assert_eq!(&fs::read(&copy).unwrap()[..8], MAGIC, "a copy is format 3");
    assert_eq!(
        &fs::read(&path).unwrap()[..8],
        MAGIC_V2,
        "read, not changed"
    );

    let mut log = RecordFile::open(&path).unwrap();
    let recovery = log.recover(Seal::START).unwrap();
    assert_eq!((recovery.leaves, recovery.cut), (2, None));
    assert_eq!(
        &fs::read(&path).unwrap()[..8],
        MAGIC,
        "its writer upgrades it"
    );
    assert_eq!(
        fs::read(&path).unwrap()[8..],
        bytes[8..],
        "and changes nothing else"
    );
}

/// Copies a log's directory but for its sled index (derived, and open in this process).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "index.sled" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn batch(from: u64, n: u64) -> Vec<lesson_ledger::log::envelope::VerifiedEnvelope> {
    let alice = signer("inst-0001", 1);
    (from..from + n)
        .map(|i| verified(envelope(&[&alice], &format!("e-{i}"), i)))
        .collect()
}

/// Record boundaries of a write of whole records, each with a byte either side.
fn around_records(write: &[u8]) -> Vec<usize> {
    let mut cuts = vec![0];
    let mut at = 0;
    while at < write.len() {
        let len = u32::from_be_bytes(write[at + 1..at + 5].try_into().unwrap()) as usize;
        cuts.extend([at + 1, at + 5, at + 5 + len / 2]);
        at += 9 + len;
        cuts.extend([at - 1, at]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[test]
fn a_log_reopened_after_a_power_cut_mid_sync_holds_every_acknowledged_entry() {
    let dir = TempDir::new().unwrap();
    let live = dir.path().join("live");
    let disk = Arc::new(PowerCutDisk::default());
    let mut log = Log::create_on(
        &live,
        "lessons.example/test",
        "operator",
        Box::new(EntryIdOnly),
        Disk::new(disk.clone()),
    )
    .unwrap();
    let mut receipts: Vec<Receipt> = Vec::new();
    for from in [0, 2, 4] {
        for outcome in log.append(batch(from, 2), &mut AdmitAll).unwrap() {
            match outcome {
                Outcome::Ok(receipt) => receipts.push(receipt),
                other => panic!("{other:?}"),
            }
        }
    }
    let planned = log.plan(batch(6, 3), &mut AdmitAll).unwrap();
    let written = log.write(planned, &mut AdmitAll).unwrap();
    let image = disk.image();
    assert_no_seal_ahead_of_the_disk(&image);
    let records = image
        .pending
        .iter()
        .find(|(at, _)| *at >= HEADER_LEN)
        .unwrap();
    for kept in choices(&image, &around_records) {
        let crashed = dir.path().join(format!("crashed-{kept:?}"));
        copy_dir(&live, &crashed);
        fs::write(crashed.join("log.dat"), apply(&image, &kept)).unwrap();
        let (reopened, _) = Log::open(&crashed, Box::new(EntryIdOnly))
            .unwrap_or_else(|e| panic!("kept {kept:?}: {e}"));
        let whole = kept.last() == Some(&records.1.len());
        assert_eq!(reopened.size(), if whole { 9 } else { 6 }, "{kept:?}");
        for receipt in &receipts {
            let now = reopened.receipt(receipt.index).unwrap();
            assert_eq!(
                (&now.entry_id, &now.leaf_hash, now.time_micros),
                (&receipt.entry_id, &receipt.leaf_hash, receipt.time_micros),
                "{kept:?}"
            );
        }
        drop(reopened);
        audit(&crashed, &AuditOptions::default(), &|_, _| {})
            .unwrap_or_else(|e| panic!("kept {kept:?}: {e}"));
        fs::remove_dir_all(&crashed).unwrap();
    }
    let synced = log.syncer().sync();
    let outcomes = log.finish(written, synced).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ok(_))));
    log.close().unwrap();
    assert!(
        disk.image().pending.is_empty(),
        "close makes the last seal durable"
    );
}
