//! A consistent copy of a record file that a writer may be appending to: the bytes up
//! to the header's current seal, under a header holding that seal.
//!
//! Why this is consistent while `serve` runs: a writer only ever appends records past
//! the seal, syncs them, and then rewrites the slot that does *not* hold the current
//! seal (see [`super::seal`]). The bytes before the current seal's `end` are never
//! written again while the file is open, and they were durable before the seal that
//! covers them was written, so a reader that takes the seal first finds every byte it
//! covers, and never a byte a power cut could take back. A slot torn by a concurrent
//! write fails its checksum and the other slot's (older) seal is taken. What the copy
//! holds is therefore exactly a batch boundary that was acknowledged: it ends with that
//! batch's checkpoint record. The copy is written in the current format, whatever the
//! source's (a format-2 file up to its seal is a format-3 file).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{check_header, seal, RecordsError, Seal, HEADER_LEN, MAGIC};

/// Bytes copied a read.
const CHUNK_BYTES: u64 = 1 << 20;

/// The I/O error of `path`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordsError {
    let path = path.to_path_buf();
    move |source| RecordsError::Io { path, source }
}

/// The record file a copy is taken from, and its current seal.
fn open_source(from: &Path) -> Result<(File, Seal), RecordsError> {
    let source = File::open(from).map_err(io(from))?;
    let sealed = check_header(from, &source)?.seal;
    Ok((source, sealed))
}

/// Copies the sealed part of the record file `from` into the new file `to` (refused if
/// it exists), with both of its seal slots holding the seal copied up to, syncs it and
/// its directory, and returns that seal.
///
/// # Errors
/// `from` unreadable, not a record file of this format, or with no valid seal; `to`
/// already present or not writable; `from` shorter than its seal says (damage).
pub fn copy_sealed(from: &Path, to: &Path) -> Result<Seal, RecordsError> {
    let (source, sealed) = open_source(from)?;
    let target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(io(to))?;
    let slot = seal::encode(sealed);
    let header = [&MAGIC[..], &slot, &slot].concat();
    target.write_all_at(&header, 0).map_err(io(to))?;
    copy_range(&source, from, &target, to, HEADER_LEN..sealed.end)?;
    target.sync_all().map_err(io(to))?;
    let parent = to.parent().filter(|p| !p.as_os_str().is_empty());
    File::open(parent.unwrap_or(Path::new(".")))
        .and_then(|dir| dir.sync_all())
        .map_err(io(to))?;
    Ok(sealed)
}

/// Brings `to`, a copy made by [`copy_sealed`] (and perhaps extended before), up to the
/// current seal of `from`, appending only the bytes it lacks: the copy's records are
/// synced before its header names the new seal, in the slot that does not hold its
/// current one, as the writer does. A tail a killed extension left past the copy's seal
/// is cut first. Returns the seal now copied up to.
///
/// # Errors
/// As [`copy_sealed`]; [`RecordsError::CopyDiverged`] when `from` is behind the copy or
/// its bytes before the copy's seal are not the copy's (another history).
pub fn extend_sealed(from: &Path, to: &Path) -> Result<Seal, RecordsError> {
    let (source, sealed) = open_source(from)?;
    let target = OpenOptions::new()
        .read(true)
        .write(true)
        .open(to)
        .map_err(io(to))?;
    let held = check_header(to, &target)?;
    let end = held.seal.end;
    if end > sealed.end
        || !same_bytes(
            &source,
            &target,
            end.saturating_sub(TAIL_CHECKED).max(HEADER_LEN)..end,
        )
        .map_err(io(to))?
    {
        return Err(RecordsError::CopyDiverged {
            path: to.to_path_buf(),
            copied: held.seal,
            sealed,
        });
    }
    target.set_len(end).map_err(io(to))?;
    if sealed == held.seal {
        return Ok(sealed);
    }
    copy_range(&source, from, &target, to, end..sealed.end)?;
    target.sync_data().map_err(io(to))?;
    let other = 1 - held.slot;
    target
        .write_all_at(&seal::encode(sealed), seal::slot_offset(other))
        .map_err(io(to))?;
    target.sync_data().map_err(io(to))?;
    Ok(sealed)
}

/// Bytes compared at the end of a copy before it is extended: the last records of the
/// copy must be the source's, else the source is another history.
const TAIL_CHECKED: u64 = 4096;

/// Whether `a` and `b` hold the same bytes in `range`.
fn same_bytes(a: &File, b: &File, range: std::ops::Range<u64>) -> std::io::Result<bool> {
    let len = (range.end - range.start) as usize;
    let (mut x, mut y) = (vec![0u8; len], vec![0u8; len]);
    a.read_exact_at(&mut x, range.start)?;
    b.read_exact_at(&mut y, range.start)?;
    Ok(x == y)
}

/// Copies the bytes of `range` from `source` to the same offsets of `target`.
fn copy_range(
    source: &File,
    from: &Path,
    target: &File,
    to: &Path,
    range: std::ops::Range<u64>,
) -> Result<(), RecordsError> {
    let mut buffer = vec![0u8; CHUNK_BYTES.min(range.end - range.start) as usize];
    let mut at = range.start;
    while at < range.end {
        let n = CHUNK_BYTES.min(range.end - at) as usize;
        // `read_exact_at` fails on a file shorter than its seal: never a short copy.
        source
            .read_exact_at(&mut buffer[..n], at)
            .map_err(io(from))?;
        target.write_all_at(&buffer[..n], at).map_err(io(to))?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::{open_reader, RecordFile, RecordKind};

    #[test]
    fn a_copy_taken_while_a_batch_is_buffered_ends_at_the_last_sealed_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("log.dat");
        let mut log = RecordFile::create(&live).expect("create");
        log.append(RecordKind::Leaf, b"first leaf").expect("leaf");
        log.append(RecordKind::Checkpoint, b"checkpoint 1")
            .expect("checkpoint");
        log.commit().expect("commit");
        let sealed = log.seal();
        // A torn tail past the seal, as a writer mid-batch leaves in the page cache.
        File::options()
            .append(true)
            .open(&live)
            .and_then(|f| f.write_all_at(b"\x01\x00\x00\x00\x09half a le", sealed.end))
            .expect("tail");

        let copy = dir.path().join("copy.dat");
        assert_eq!(copy_sealed(&live, &copy).expect("copy"), sealed);
        let (reader, copied) = open_reader(&copy).expect("the copy opens as an auditor does");
        assert_eq!(copied, sealed);
        assert_eq!(reader.len(), sealed.end, "nothing past the seal is copied");
        let bodies: Vec<Vec<u8>> = reader
            .iter(HEADER_LEN, reader.len())
            .expect("iter")
            .map(|r| r.expect("record").body)
            .collect();
        assert_eq!(
            bodies,
            vec![b"first leaf".to_vec(), b"checkpoint 1".to_vec()]
        );
        assert!(
            copy_sealed(&live, &copy).is_err(),
            "an existing copy is never overwritten"
        );
    }

    fn batch(log: &mut RecordFile, leaf: &[u8], checkpoint: &[u8]) -> Seal {
        log.append(RecordKind::Leaf, leaf).expect("leaf");
        log.append(RecordKind::Checkpoint, checkpoint)
            .expect("checkpoint");
        log.commit().expect("commit");
        log.seal()
    }

    #[test]
    fn a_copy_extended_after_the_source_grew_is_the_copy_taken_anew() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("log.dat");
        let mut log = RecordFile::create(&live).expect("create");
        batch(&mut log, b"leaf 1", b"checkpoint 1");
        let copy = dir.path().join("copy.dat");
        copy_sealed(&live, &copy).expect("copy");
        let grown = batch(&mut log, b"leaf 2", b"checkpoint 2");
        // A tail a killed extension left past the copy's seal is cut, not kept.
        File::options()
            .append(true)
            .open(&copy)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"\x01\x00half"))
            .expect("tail");

        assert_eq!(extend_sealed(&live, &copy).expect("extend"), grown);
        let anew = dir.path().join("anew.dat");
        copy_sealed(&live, &anew).expect("copy anew");
        // The same records; the header differs only in the older seal its other slot keeps.
        let records =
            |path: &Path| std::fs::read(path).expect("read")[HEADER_LEN as usize..].to_vec();
        assert_eq!(records(&copy), records(&anew));
        let (_, copied) = open_reader(&copy).expect("the extended copy opens");
        assert_eq!(copied, grown);
        assert_eq!(
            extend_sealed(&live, &copy).expect("again"),
            grown,
            "nothing new"
        );
    }

    #[test]
    fn a_copy_is_never_extended_from_another_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (live, other) = (dir.path().join("log.dat"), dir.path().join("other.dat"));
        let mut log = RecordFile::create(&live).expect("create");
        batch(&mut log, b"leaf 1", b"checkpoint 1");
        let copy = dir.path().join("copy.dat");
        copy_sealed(&live, &copy).expect("copy");
        let before = std::fs::read(&copy).expect("copy");
        let mut another = RecordFile::create(&other).expect("create");
        batch(&mut another, b"leaf A", b"checkpoint A");
        batch(&mut another, b"leaf B", b"checkpoint B");

        let refused = extend_sealed(&other, &copy).expect_err("another history");
        assert_eq!(refused.code(), "records_copy_diverged");
        assert_eq!(
            std::fs::read(&copy).expect("copy"),
            before,
            "the copy is unchanged"
        );
    }
}
