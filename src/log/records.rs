//! The record file `log.dat`: the append-only source of truth of the log.
//!
//! Everything else on disk (node hashes, offsets, the sled index) is derived from this
//! file and can be rebuilt from it. The format is ours; it follows the write-ahead-log
//! shape of LevelDB's log format (<https://github.com/google/leveldb/blob/main/doc/log_format.md>):
//! checksummed, length-prefixed records, with a torn tail detected on recovery.
//!
//! ```text
//! file    = header record*
//! header  = "LLEDGER3" | slot | slot          8 + 64 bytes: magic (format version 3), seal
//! record  = kind:u8 | len:u32 BE | body:len bytes | crc:u32 BE
//! crc     = CRC-32C (Castagnoli) over kind ‖ len ‖ body
//! kind    = 1 (leaf) | 2 (checkpoint) | 3 (state note);  len ≤ limits::RECORD_BODY_BYTES_MAX
//! ```
//!
//! A batch is written as its leaf records followed by ONE checkpoint record and a single
//! `fdatasync`; only then is it acknowledged, and only then is the header's [`Seal`]
//! (leaf count and end of that checkpoint record) written, left for the next batch's
//! sync (`records/commit.rs` says why). The checkpoint record is the commit marker: whatever
//! follows the last one was never acknowledged, and [`RecordFile::recover`] cuts it
//! after a crash, but never below the seal ([`RecordsError::BelowSeal`]: that would
//! remove an acknowledged, signed batch). Format 2 (`LLEDGER2`, the seal written before
//! the sync) is read as it is, and its magic rewritten by a writer that recovers it.
//!
//! ```
//! use lesson_ledger::log::records::{RecordFile, RecordKind, Seal};
//! let dir = tempfile::tempdir().unwrap();
//! let mut log = RecordFile::create(dir.path().join("log.dat")).unwrap();
//! let leaf = log.append(RecordKind::Leaf, b"leaf bytes").unwrap();
//! log.append(RecordKind::Checkpoint, b"checkpoint note").unwrap();
//! log.commit().unwrap();
//! assert_eq!(log.read_at(leaf).unwrap().body, b"leaf bytes");
//! assert_eq!(log.seal(), Seal { leaves: 1, end: log.len() });
//! let recovery = log.recover(Seal::START).unwrap();
//! assert_eq!((recovery.end, recovery.cut), (log.len(), None));
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::limits::{RECORD_BODY_BYTES_MAX, RECORD_OVERHEAD_BYTES};
use crate::log::disk::Disk;

mod commit;
mod frame;
mod read;
mod recover;
mod seal;
mod snapshot;

pub use commit::{Syncer, Unsynced};
pub use frame::{Damage, RecordKind};
pub use read::{open_reader, RecordIter, RecordReader};
pub use seal::Seal;
use seal::{SLOTS, SLOT_BYTES};
pub use snapshot::{copy_sealed, extend_sealed};

/// The first bytes of every record file this build writes: the magic and the format
/// version (3: each seal written after its batch's sync).
pub const MAGIC: &[u8; 8] = b"LLEDGER3";
/// The magic of format version 2 (each seal written before its batch's sync): read as
/// it is, rewritten to [`MAGIC`] when a writer recovers the file.
pub const MAGIC_V2: &[u8; 8] = b"LLEDGER2";
/// The magic of format version 1, which had no seal: refused with its own error.
const MAGIC_V1: &[u8; 8] = b"LLEDGER1";
/// Length of the file header (magic and the two seal slots); the first record starts here.
pub const HEADER_LEN: u64 = MAGIC.len() as u64 + (SLOTS * SLOT_BYTES) as u64;
/// Read-ahead of the sequential reader: large, since rebuilds read the whole file.
const ITER_BUFFER_BYTES: usize = 1 << 20;

const _: () = assert!(
    seal::SLOTS_OFFSET == MAGIC.len() as u64,
    "slots follow the magic"
);

impl Seal {
    /// The position of an empty file: no leaves, the end of the header.
    pub const START: Seal = Seal {
        leaves: 0,
        end: HEADER_LEN,
    };
}
/// One record read back, with its framing and checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the record's `kind` byte in the file.
    pub offset: u64,
    /// What the record holds, from its `kind` byte.
    pub kind: RecordKind,
    /// The body, without framing or checksum.
    pub body: Vec<u8>,
}

impl Record {
    /// Offset of the byte after this record: where the next one starts.
    pub fn end(&self) -> u64 {
        // Cannot overflow: the record was read from a file, so end ≤ file length.
        self.offset + (self.body.len() + RECORD_OVERHEAD_BYTES) as u64
    }
}

/// What [`RecordFile::recover`] removed from the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// New length of the file: the end of the last checkpoint record (or `from`).
    pub offset: u64,
    /// Bytes removed.
    pub bytes: u64,
    /// Why they were removed.
    pub reason: CutReason,
}

/// Why bytes were cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// Whole leaf records with no checkpoint after them: a batch never acknowledged.
    Uncommitted {
        /// Leaf records after the last checkpoint record.
        records: u64,
    },
    /// A record that does not parse, with no valid checkpoint record after it.
    TornTail {
        /// Byte offset of the record that does not parse.
        at: u64,
        /// What is wrong with it.
        damage: Damage,
    },
}

/// The outcome of [`RecordFile::recover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Committed length of the file after recovery.
    pub end: u64,
    /// Offset of the last checkpoint record at or after `from`, if any.
    pub last_checkpoint: Option<u64>,
    /// Committed leaf records found between `from` and `end`.
    pub leaves: u64,
    /// Leaf records kept past the header's seal, which now names them: complete batches
    /// whose seal had not reached the disk when the process or the machine stopped.
    pub above_seal: u64,
    /// What was cut, if anything: the caller logs it.
    pub cut: Option<Cut>,
}

/// An error of the record file.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// Code `records_io`: reading, writing or syncing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The record file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Code `records_bad_header`: the file is shorter than the header or does not start
    /// with [`MAGIC`] or [`MAGIC_V2`].
    #[error("{path}: file header is not the magic \"LLEDGER3\" (or \"LLEDGER2\") and its seal ({len} bytes long)")]
    BadHeader {
        /// The record file.
        path: PathBuf,
        /// Length of the file, in bytes.
        len: u64,
    },
    /// Code `records_old_format`: a format-1 file (`LLEDGER1`, no seal).
    #[error(
        "{path}: record file format 1 (\"LLEDGER1\", no seal); this build reads formats 2 and 3"
    )]
    OldFormat {
        /// The record file.
        path: PathBuf,
    },
    /// Code `records_seal_damaged`: a seal slot of the header fails its checksum.
    #[error("{path}: the header's seal is damaged (a slot fails its checksum); refusing to guess how far the file was committed")]
    SealDamaged {
        /// The record file.
        path: PathBuf,
    },
    /// Code `records_below_seal`: recovery would cut below the seal, removing an
    /// acknowledged batch; nothing is changed.
    #[error("{path}: the header seals {} entries ending at byte {}, but only {} entries ending at byte {} are intact: an acknowledged, signed batch is damaged or missing; refusing to cut it (restore log.dat from a copy)", sealed.leaves, sealed.end, intact.leaves, intact.end)]
    BelowSeal {
        /// The record file.
        path: PathBuf,
        /// What the header's seal says was committed.
        sealed: Seal,
        /// How far the records are intact: leaf count and end of the last checkpoint.
        intact: Seal,
        /// The damage found after the intact part, if the file did not just end there.
        reason: Option<Damage>,
    },
    /// Code `records_seal_mismatch`: the intact records reach the seal's end, but no
    /// checkpoint record with the sealed leaf count ends there.
    #[error("{path}: the header seals {} entries at byte {}, but {}", sealed.leaves, sealed.end, found_there(*found))]
    SealMismatch {
        /// The record file.
        path: PathBuf,
        /// What the header's seal says was committed.
        sealed: Seal,
        /// Leaf records before the checkpoint record that ends at the sealed end; `None`
        /// when no checkpoint record ends there.
        found: Option<u64>,
    },
    /// Code `records_body_too_large`: an append over `RECORD_BODY_BYTES_MAX`.
    #[error("record body of {len} bytes is over the maximum of {RECORD_BODY_BYTES_MAX}")]
    BodyTooLarge {
        /// Length of the body, in bytes.
        len: usize,
    },
    /// Code `records_out_of_range`: no committed record starts at `offset` (or, for
    /// [`RecordFile::recover`], the starting seal is outside the file).
    #[error("no committed record at offset {offset} (committed length {len})")]
    OutOfRange {
        /// The byte offset asked for.
        offset: u64,
        /// Length of the file the offset was checked against, in bytes.
        len: u64,
    },
    /// Code `records_corrupt`: a committed record does not parse (read back, or met by
    /// recovery with a valid checkpoint record after it, so not a torn tail).
    #[error("record at offset {offset} is corrupt: {damage}")]
    Corrupt {
        /// Byte offset of the damaged record.
        offset: u64,
        /// What is wrong with it.
        damage: Damage,
    },
    /// Code `records_copy_diverged`: a copy of the record file cannot be extended from
    /// its source: the source is behind the copy, or holds other bytes before the
    /// copy's seal (another history).
    #[error("{path}: the copy (sealed at {} entries, byte {}) is not a prefix of its source (sealed at {} entries, byte {})", copied.leaves, copied.end, sealed.leaves, sealed.end)]
    CopyDiverged {
        /// The copy.
        path: PathBuf,
        /// The copy's seal.
        copied: Seal,
        /// The source's seal.
        sealed: Seal,
    },
    /// Code `records_poisoned`: a commit failed earlier, so the writer refuses everything.
    #[error("a commit failed earlier; reopen the file and recover")]
    Poisoned,
    /// Code `records_not_recovered`: an append before [`RecordFile::recover`].
    #[error("the file was opened but not recovered; appends must follow recovery")]
    NotRecovered,
    /// Code `records_pending`: appended bytes not yet committed are in the way (of a
    /// recovery, or of a commit that another batch overtook).
    #[error("{bytes} appended bytes are not committed yet")]
    Pending {
        /// Appended bytes still buffered.
        bytes: usize,
    },
}

/// What the records hold at a sealed end, for [`RecordsError::SealMismatch`].
fn found_there(found: Option<u64>) -> String {
    match found {
        Some(leaves) => format!("{leaves} leaf records end there"),
        None => "no checkpoint record ends there".to_string(),
    }
}

impl RecordsError {
    /// The offset of the damaged record, for errors that have one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            RecordsError::Corrupt { offset, .. } | RecordsError::OutOfRange { offset, .. } => {
                Some(*offset)
            }
            RecordsError::BadHeader { .. }
            | RecordsError::OldFormat { .. }
            | RecordsError::SealDamaged { .. } => Some(0),
            RecordsError::BelowSeal { intact, .. } => Some(intact.end),
            _ => None,
        }
    }

    /// Stable snake_case code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            RecordsError::Io { .. } => "records_io",
            RecordsError::BadHeader { .. } => "records_bad_header",
            RecordsError::OldFormat { .. } => "records_old_format",
            RecordsError::SealDamaged { .. } => "records_seal_damaged",
            RecordsError::BelowSeal { .. } => "records_below_seal",
            RecordsError::SealMismatch { .. } => "records_seal_mismatch",
            RecordsError::BodyTooLarge { .. } => "records_body_too_large",
            RecordsError::OutOfRange { .. } => "records_out_of_range",
            RecordsError::Corrupt { .. } => "records_corrupt",
            RecordsError::CopyDiverged { .. } => "records_copy_diverged",
            RecordsError::Poisoned => "records_poisoned",
            RecordsError::NotRecovered => "records_not_recovered",
            RecordsError::Pending { .. } => "records_pending",
        }
    }
}

/// The writer of `log.dat`. Appends are buffered in memory until [`RecordFile::commit`].
#[derive(Debug)]
pub struct RecordFile {
    path: PathBuf,
    file: Arc<File>,
    disk: Disk,
    committed: Arc<AtomicU64>,
    buffer: Vec<u8>,
    /// Leaf records in `buffer`.
    pending_leaves: u64,
    /// The position after the last checkpoint record in `buffer`: what a commit seals.
    pending_seal: Option<Seal>,
    header: Header,
    state: State,
}

/// The header as it is on disk: the current seal and which slot holds it.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// Committed length of the file when the header was read.
    len: u64,
    seal: Seal,
    slot: usize,
    /// The other slot, when its checksum fails (a torn slot write): recovery rewrites it.
    damaged: Option<usize>,
    /// Whether the magic is format 2's ([`MAGIC_V2`]): recovery rewrites it.
    v2: bool,
}

/// Whether the writer may append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Opened, not yet recovered: the tail may be torn, so appends would land after it.
    Unrecovered,
    Ready,
    /// A commit failed: the page cache cannot be trusted any more.
    Poisoned,
}

/// Reads and checks the header of an open record file: the magic, then the seal.
fn check_header(path: &Path, file: &File) -> Result<Header, RecordsError> {
    let io = |source| RecordsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = file.metadata().map_err(io)?.len();
    let mut magic = [0u8; MAGIC.len()];
    if len >= MAGIC.len() as u64 {
        file.read_exact_at(&mut magic, 0).map_err(io)?;
    }
    if &magic == MAGIC_V1 {
        return Err(RecordsError::OldFormat {
            path: path.to_path_buf(),
        });
    }
    let v2 = &magic == MAGIC_V2;
    if len < HEADER_LEN || (&magic != MAGIC && !v2) {
        return Err(RecordsError::BadHeader {
            path: path.to_path_buf(),
            len,
        });
    }
    let mut slots = [None; SLOTS];
    for (n, slot) in slots.iter_mut().enumerate() {
        let mut bytes = [0u8; SLOT_BYTES];
        file.read_exact_at(&mut bytes, seal::slot_offset(n))
            .map_err(io)?;
        *slot = seal::decode(&bytes);
    }
    let (seal, slot) = seal::current(&slots).ok_or_else(|| RecordsError::SealDamaged {
        path: path.to_path_buf(),
    })?;
    let damaged = slots.iter().position(Option::is_none);
    Ok(Header {
        len,
        seal,
        slot,
        damaged,
        v2,
    })
}

impl RecordFile {
    /// Creates a new record file holding only the header, synced with its directory.
    ///
    /// # Errors
    /// If the file already exists or cannot be written.
    pub fn create(path: impl AsRef<Path>) -> Result<RecordFile, RecordsError> {
        RecordFile::create_on(path, Disk::os())
    }

    /// [`RecordFile::create`], writing through `disk`.
    ///
    /// # Errors
    /// As [`RecordFile::create`].
    pub fn create_on(path: impl AsRef<Path>, disk: Disk) -> Result<RecordFile, RecordsError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| RecordsError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        let slot = seal::encode(Seal::START);
        let header = [&MAGIC[..], &slot, &slot].concat();
        disk.write_all_at(&path, &file, &header, 0).map_err(io)?;
        disk.sync_data(&path, &file).map_err(io)?;
        // The file's name must be durable too, or a crash could lose the whole file.
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        File::open(parent.unwrap_or(Path::new(".")))
            .and_then(|dir| dir.sync_all())
            .map_err(io)?;
        let header = Header {
            len: HEADER_LEN,
            seal: Seal::START,
            slot: 0,
            damaged: None,
            v2: false,
        };
        Ok(RecordFile::from_parts(
            path,
            file,
            disk,
            header,
            State::Ready,
        ))
    }

    /// Opens an existing record file and checks its header and seal. Until
    /// [`RecordFile::recover`] has run, the committed length is the file's length
    /// (readers may use it as is) and appends are refused, since a torn tail would sit
    /// before them.
    ///
    /// # Errors
    /// If the file cannot be opened, its header is missing or not [`MAGIC`]
    /// nor [`MAGIC_V2`] (`OldFormat` for format 1), or neither seal slot is valid.
    pub fn open(path: impl AsRef<Path>) -> Result<RecordFile, RecordsError> {
        RecordFile::open_on(path, Disk::os())
    }

    /// [`RecordFile::open`], writing through `disk`.
    ///
    /// # Errors
    /// As [`RecordFile::open`].
    pub fn open_on(path: impl AsRef<Path>, disk: Disk) -> Result<RecordFile, RecordsError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| RecordsError::Io {
                path: path.clone(),
                source,
            })?;
        let header = check_header(&path, &file)?;
        Ok(RecordFile::from_parts(
            path,
            file,
            disk,
            header,
            State::Unrecovered,
        ))
    }

    fn from_parts(
        path: PathBuf,
        file: File,
        disk: Disk,
        header: Header,
        state: State,
    ) -> RecordFile {
        RecordFile {
            path,
            file: Arc::new(file),
            disk,
            committed: Arc::new(AtomicU64::new(header.len)),
            buffer: Vec::new(),
            pending_leaves: 0,
            pending_seal: None,
            header,
            state,
        }
    }

    /// The committed position the header records: nothing before it may be cut.
    pub fn seal(&self) -> Seal {
        self.header.seal
    }

    /// Buffers one record and returns the offset it will have once committed.
    ///
    /// # Errors
    /// If the body is over [`RECORD_BODY_BYTES_MAX`], if the file was opened and not
    /// recovered, or if a commit failed earlier.
    pub fn append(&mut self, kind: RecordKind, body: &[u8]) -> Result<u64, RecordsError> {
        match self.state {
            State::Ready => {}
            State::Unrecovered => return Err(RecordsError::NotRecovered),
            State::Poisoned => return Err(RecordsError::Poisoned),
        }
        if body.len() > RECORD_BODY_BYTES_MAX {
            return Err(RecordsError::BodyTooLarge { len: body.len() });
        }
        let offset = self.len() + self.buffer.len() as u64;
        frame::encode(&mut self.buffer, kind, body);
        match kind {
            RecordKind::Leaf => self.pending_leaves += 1,
            RecordKind::Checkpoint => {
                self.pending_seal = Some(Seal {
                    leaves: self.header.seal.leaves + self.pending_leaves,
                    end: self.len() + self.buffer.len() as u64,
                });
            }
            RecordKind::StateNote => {}
        }
        Ok(offset)
    }

    /// Bytes appended and not yet committed.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Drops the appended, uncommitted records (a batch abandoned before its commit).
    pub fn discard_pending(&mut self) {
        self.buffer.clear();
        self.pending_leaves = 0;
        self.pending_seal = None;
    }

    /// Committed length of the file, in bytes (header included).
    pub fn len(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Whether no record is committed.
    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER_LEN
    }

    /// A handle for reading committed records from other threads.
    pub fn reader(&self) -> RecordReader {
        RecordReader {
            path: Arc::from(self.path.as_path()),
            file: Arc::clone(&self.file),
            committed: Arc::clone(&self.committed),
        }
    }

    /// Reads the committed record at `offset` (see [`RecordReader::read_at`]).
    ///
    /// # Errors
    /// As [`RecordReader::read_at`].
    pub fn read_at(&self, offset: u64) -> Result<Record, RecordsError> {
        self.reader().read_at(offset)
    }

    /// Reads the committed records in `[from, to)` in order (see [`RecordReader::iter`]).
    ///
    /// # Errors
    /// As [`RecordReader::iter`].
    pub fn iter(&self, from: u64, to: u64) -> Result<RecordIter, RecordsError> {
        self.reader().iter(from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_returns_offsets_and_commit_writes_header_then_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.dat");
        let mut log = RecordFile::create(&path).unwrap();
        assert_eq!(log.append(RecordKind::Leaf, b"abc").unwrap(), HEADER_LEN);
        assert_eq!(
            log.append(RecordKind::Checkpoint, b"").unwrap(),
            HEADER_LEN + 12
        );
        assert_eq!(log.len(), HEADER_LEN, "nothing is visible before commit");
        log.commit().unwrap();
        let mut expected = MAGIC.to_vec();
        // Slot 0 still holds the empty file's seal; the commit wrote slot 1.
        expected.extend(seal::encode(Seal::START));
        let end = HEADER_LEN + 12 + 9;
        expected.extend(seal::encode(Seal { leaves: 1, end }));
        frame::encode(&mut expected, RecordKind::Leaf, b"abc");
        frame::encode(&mut expected, RecordKind::Checkpoint, b"");
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert_eq!(log.len(), expected.len() as u64);
    }
}
