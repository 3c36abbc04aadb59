//! A consistent copy of a record file that a writer may be appending to: the bytes up
//! to the header's current seal, under a header holding that seal.
//!
//! Why this is consistent while `serve` runs: a writer only ever appends records past
//! the seal and then rewrites the slot that does *not* hold the current seal (see
//! [`super::seal`]). The bytes before the current seal's `end` are never written again
//! while the file is open, and they reached the page cache before the seal that covers
//! them, so a reader that takes the seal first finds every byte it covers. A slot torn
//! by a concurrent write fails its checksum and the other slot's (older) seal is taken.
//! What the copy holds is therefore exactly a batch boundary that was acknowledged: it
//! ends with that batch's checkpoint record.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{check_header, seal, RecordsError, Seal, HEADER_LEN, MAGIC};

/// Bytes copied a read.
const CHUNK_BYTES: u64 = 1 << 20;

/// Copies the sealed part of the record file `from` into the new file `to` (refused if
/// it exists), with both of its seal slots holding the seal copied up to, syncs it and
/// its directory, and returns that seal.
///
/// # Errors
/// `from` unreadable, not a record file of this format, or with no valid seal; `to`
/// already present or not writable; `from` shorter than its seal says (damage).
pub fn copy_sealed(from: &Path, to: &Path) -> Result<Seal, RecordsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordsError::Io { path, source }
    };
    let source = File::open(from).map_err(io(from))?;
    let sealed = check_header(from, &source)?.seal;
    let target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(io(to))?;
    let slot = seal::encode(sealed);
    let header = [&MAGIC[..], &slot, &slot].concat();
    target.write_all_at(&header, 0).map_err(io(to))?;
    let mut buffer = vec![0u8; CHUNK_BYTES as usize];
    let mut at = HEADER_LEN;
    while at < sealed.end {
        let n = CHUNK_BYTES.min(sealed.end - at) as usize;
        // `read_exact_at` fails on a file shorter than its seal: never a short copy.
        source
            .read_exact_at(&mut buffer[..n], at)
            .map_err(io(from))?;
        target.write_all_at(&buffer[..n], at).map_err(io(to))?;
        at += n as u64;
    }
    target.sync_all().map_err(io(to))?;
    let parent = to.parent().filter(|p| !p.as_os_str().is_empty());
    File::open(parent.unwrap_or(Path::new(".")))
        .and_then(|dir| dir.sync_all())
        .map_err(io(to))?;
    Ok(sealed)
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
}
