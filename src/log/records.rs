//! The record file `log.dat`: the append-only source of truth of the log.
//!
//! Everything else on disk (node hashes, offsets, the sled index) is derived from this
//! file and can be rebuilt from it. The format is ours; it follows the write-ahead-log
//! shape of LevelDB's log format (<https://github.com/google/leveldb/blob/main/doc/log_format.md>):
//! checksummed, length-prefixed records, with a torn tail detected on recovery.
//!
//! ```text
//! file    = header record*
//! header  = "LLEDGER1"                      8 bytes: magic, format version 1
//! record  = kind:u8 | len:u32 BE | body:len bytes | crc:u32 BE
//! crc     = CRC-32C (Castagnoli) over kind ‖ len ‖ body
//! kind    = 1 (leaf) | 2 (checkpoint);  len ≤ limits::RECORD_BODY_BYTES_MAX
//! ```
//!
//! A batch is written as its leaf records followed by ONE checkpoint record and a single
//! `fdatasync`; only then is it acknowledged. The checkpoint record is therefore the
//! commit marker: whatever follows the last checkpoint record was never acknowledged.
//! [`RecordFile::recover`] applies that rule after a crash, and fails closed when the
//! damage is not at the tail.
//!
//! ```
//! use lesson_ledger::log::records::{RecordFile, RecordKind};
//! let dir = tempfile::tempdir().unwrap();
//! let mut log = RecordFile::create(dir.path().join("log.dat")).unwrap();
//! let leaf = log.append(RecordKind::Leaf, b"leaf bytes").unwrap();
//! log.append(RecordKind::Checkpoint, b"checkpoint note").unwrap();
//! log.commit().unwrap();
//! assert_eq!(log.read_at(leaf).unwrap().body, b"leaf bytes");
//! let recovery = log.recover(lesson_ledger::log::records::HEADER_LEN).unwrap();
//! assert_eq!((recovery.end, recovery.cut), (log.len(), None));
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::limits::{RECORD_BODY_BYTES_MAX, RECORD_OVERHEAD_BYTES};

mod frame;

use frame::{find_checkpoint, read_record, Fault, PositionedReader};
pub use frame::{Damage, RecordKind};

/// The first bytes of every record file: the magic and the format version.
pub const MAGIC: &[u8; 8] = b"LLEDGER1";
/// Length of the file header; the first record starts here.
pub const HEADER_LEN: u64 = MAGIC.len() as u64;
/// Read-ahead of the sequential reader: large, since rebuilds read the whole file.
const ITER_BUFFER_BYTES: usize = 1 << 20;

/// One record read back, with its framing and checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the record's `kind` byte in the file.
    pub offset: u64,
    pub kind: RecordKind,
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
    pub reason: CutReason,
}

/// Why bytes were cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// Whole leaf records with no checkpoint after them: a batch never acknowledged.
    Uncommitted { records: u64 },
    /// A record that does not parse, with no valid checkpoint record after it.
    TornTail { at: u64, damage: Damage },
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
    /// What was cut, if anything: the caller logs it.
    pub cut: Option<Cut>,
}

/// An error of the record file.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: file header is not the magic \"LLEDGER1\" ({len} bytes long)")]
    BadHeader { path: PathBuf, len: u64 },
    #[error("record body of {len} bytes is over the maximum of {RECORD_BODY_BYTES_MAX}")]
    BodyTooLarge { len: usize },
    #[error("no committed record at offset {offset} (committed length {len})")]
    OutOfRange { offset: u64, len: u64 },
    #[error("record at offset {offset} is corrupt: {damage}")]
    Corrupt { offset: u64, damage: Damage },
    #[error("a commit failed earlier; reopen the file and recover")]
    Poisoned,
    #[error("the file was opened but not recovered; appends must follow recovery")]
    NotRecovered,
    #[error("{bytes} appended bytes are not committed yet")]
    Pending { bytes: usize },
}

impl RecordsError {
    /// The offset of the damaged record, for errors that have one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            RecordsError::Corrupt { offset, .. } | RecordsError::OutOfRange { offset, .. } => {
                Some(*offset)
            }
            RecordsError::BadHeader { .. } => Some(0),
            _ => None,
        }
    }

    /// Stable snake_case code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            RecordsError::Io { .. } => "records_io",
            RecordsError::BadHeader { .. } => "records_bad_header",
            RecordsError::BodyTooLarge { .. } => "records_body_too_large",
            RecordsError::OutOfRange { .. } => "records_out_of_range",
            RecordsError::Corrupt { .. } => "records_corrupt",
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
    committed: Arc<AtomicU64>,
    buffer: Vec<u8>,
    state: State,
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

/// A read-only handle on the committed part of `log.dat`, for other threads.
#[derive(Debug, Clone)]
pub struct RecordReader {
    path: Arc<Path>,
    file: Arc<File>,
    committed: Arc<AtomicU64>,
}

impl RecordFile {
    /// Creates a new record file holding only the header, synced with its directory.
    ///
    /// # Errors
    /// If the file already exists or cannot be written.
    pub fn create(path: impl AsRef<Path>) -> Result<RecordFile, RecordsError> {
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
        file.write_all_at(MAGIC, 0).map_err(io)?;
        file.sync_data().map_err(io)?;
        // The file's name must be durable too, or a crash could lose the whole file.
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        File::open(parent.unwrap_or(Path::new(".")))
            .and_then(|dir| dir.sync_all())
            .map_err(io)?;
        Ok(RecordFile::from_parts(path, file, HEADER_LEN, State::Ready))
    }

    /// Opens an existing record file and checks its header. Until [`RecordFile::recover`]
    /// has run, the committed length is the file's length (readers may use it as is) and
    /// appends are refused, since a torn tail would sit before them.
    ///
    /// # Errors
    /// If the file cannot be opened, or its header is missing or not [`MAGIC`].
    pub fn open(path: impl AsRef<Path>) -> Result<RecordFile, RecordsError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| RecordsError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut magic = [0u8; MAGIC.len()];
        if len < HEADER_LEN {
            return Err(RecordsError::BadHeader { path, len });
        }
        file.read_exact_at(&mut magic, 0).map_err(io)?;
        if &magic != MAGIC {
            return Err(RecordsError::BadHeader { path, len });
        }
        Ok(RecordFile::from_parts(path, file, len, State::Unrecovered))
    }

    fn from_parts(path: PathBuf, file: File, committed: u64, state: State) -> RecordFile {
        RecordFile {
            path,
            file: Arc::new(file),
            committed: Arc::new(AtomicU64::new(committed)),
            buffer: Vec::new(),
            state,
        }
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
        Ok(offset)
    }

    /// Bytes appended and not yet committed.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Drops the appended, uncommitted records (a batch abandoned before its commit).
    pub fn discard_pending(&mut self) {
        self.buffer.clear();
    }

    /// Writes the buffered records with one write and one `fdatasync`. When this returns
    /// `Ok`, the records are durable and may be acknowledged.
    ///
    /// # Errors
    /// On any I/O failure. The file is then poisoned: after a failed `fdatasync` the
    /// page cache cannot be trusted, so the caller must reopen and [`RecordFile::recover`].
    pub fn commit(&mut self) -> Result<(), RecordsError> {
        if self.state == State::Poisoned {
            return Err(RecordsError::Poisoned);
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        let start = self.len();
        // pwrite at the committed end, not O_APPEND: the position is ours, not the kernel's.
        let written = self
            .file
            .write_all_at(&self.buffer, start)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            self.state = State::Poisoned;
            self.buffer.clear();
            return Err(RecordsError::Io {
                path: self.path.clone(),
                source,
            });
        }
        let end = start + self.buffer.len() as u64;
        self.buffer.clear();
        self.committed.store(end, Ordering::Release);
        Ok(())
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

    /// Scans from the record boundary `from` to the end of the file and cuts what was
    /// never acknowledged. `from` must be [`HEADER_LEN`] or the end of a record the
    /// caller knows is committed (the end of a checkpoint record).
    ///
    /// # Errors
    /// [`RecordsError::Corrupt`] when a bad record is followed by a valid checkpoint
    /// record: acknowledged data lies beyond the damage, so nothing is changed.
    /// [`RecordsError::OutOfRange`] if `from` is outside the file, `Pending` or
    /// `Poisoned` if the writer is mid-batch or failed, `Io` on I/O failure.
    pub fn recover(&mut self, from: u64) -> Result<Recovery, RecordsError> {
        if self.state == State::Poisoned {
            return Err(RecordsError::Poisoned);
        }
        if !self.buffer.is_empty() {
            return Err(RecordsError::Pending {
                bytes: self.buffer.len(),
            });
        }
        let io = |source| RecordsError::Io {
            path: self.path.clone(),
            source,
        };
        let file_len = self.file.metadata().map_err(io)?.len();
        if from < HEADER_LEN || from > file_len {
            return Err(RecordsError::OutOfRange {
                offset: from,
                len: file_len,
            });
        }
        let mut reader = BufReader::with_capacity(
            ITER_BUFFER_BYTES,
            PositionedReader {
                file: &*self.file,
                pos: from,
            },
        );
        let mut body = Vec::new();
        let (mut offset, mut committed_end) = (from, from);
        let (mut last_checkpoint, mut leaves, mut pending_leaves) = (None, 0u64, 0u64);
        let damage = loop {
            match read_record(&mut reader, offset, file_len, &mut body) {
                Ok(None) => break None,
                Ok(Some(RecordKind::Leaf)) => pending_leaves += 1,
                // Part of the batch its checkpoint commits; nothing to count.
                Ok(Some(RecordKind::StateNote)) => {}
                Ok(Some(RecordKind::Checkpoint)) => {
                    last_checkpoint = Some(offset);
                    leaves += pending_leaves;
                    pending_leaves = 0;
                    committed_end = offset + (body.len() + RECORD_OVERHEAD_BYTES) as u64;
                }
                Err(Fault::Io(source)) => return Err(io(source)),
                Err(Fault::Damage(damage)) => break Some(damage),
            }
            offset += (body.len() + RECORD_OVERHEAD_BYTES) as u64;
        };
        let reason = match damage {
            // "If everything parses: committed end = end of the last checkpoint record;
            // any leaf records after it are an unacknowledged partial batch — cut them."
            None => CutReason::Uncommitted {
                records: pending_leaves,
            },
            // "At the first bad record at offset o: search the bytes after o for any
            // valid checkpoint record. If one exists, fail closed and change nothing."
            Some(damage) => {
                if find_checkpoint(&self.file, offset + 1, file_len)
                    .map_err(io)?
                    .is_some()
                {
                    return Err(RecordsError::Corrupt { offset, damage });
                }
                // "Otherwise it is a torn tail: truncate to the end of the last
                // checkpoint record before o, sync, and report the cut."
                CutReason::TornTail { at: offset, damage }
            }
        };
        let cut = (committed_end < file_len).then_some(Cut {
            offset: committed_end,
            bytes: file_len - committed_end,
            reason,
        });
        if cut.is_some() {
            self.file.set_len(committed_end).map_err(io)?;
            self.file.sync_all().map_err(io)?;
        }
        self.committed.store(committed_end, Ordering::Release);
        self.state = State::Ready;
        Ok(Recovery {
            end: committed_end,
            last_checkpoint,
            leaves,
            cut,
        })
    }
}

/// Opens `log.dat` for reading only, as an auditor does: checks the header and takes
/// the whole file as committed (nothing is recovered or cut).
///
/// # Errors
/// If the file cannot be opened, or its header is missing or not [`MAGIC`].
pub fn open_reader(path: impl AsRef<Path>) -> Result<RecordReader, RecordsError> {
    let path = path.as_ref().to_path_buf();
    let io = |source| RecordsError::Io {
        path: path.clone(),
        source,
    };
    let file = File::open(&path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut magic = [0u8; MAGIC.len()];
    if len < HEADER_LEN {
        return Err(RecordsError::BadHeader { path, len });
    }
    file.read_exact_at(&mut magic, 0).map_err(io)?;
    if &magic != MAGIC {
        return Err(RecordsError::BadHeader { path, len });
    }
    Ok(RecordReader {
        path: Arc::from(path.as_path()),
        file: Arc::new(file),
        committed: Arc::new(AtomicU64::new(len)),
    })
}

impl RecordReader {
    /// Committed length of the file, in bytes (header included).
    pub fn len(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Whether no record is committed.
    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER_LEN
    }

    /// Reads the committed record at `offset` with two `pread`s, verifying its framing
    /// and checksum.
    ///
    /// # Errors
    /// `OutOfRange` if no committed record can start at `offset`, `Corrupt` if the bytes
    /// there are not a valid record, `Io` on I/O failure.
    pub fn read_at(&self, offset: u64) -> Result<Record, RecordsError> {
        let end = self.len();
        if offset < HEADER_LEN || offset >= end {
            return Err(RecordsError::OutOfRange { offset, len: end });
        }
        let mut body = Vec::new();
        let mut reader = PositionedReader {
            file: &*self.file,
            pos: offset,
        };
        match read_record(&mut reader, offset, end, &mut body) {
            Ok(Some(kind)) => Ok(Record { offset, kind, body }),
            Ok(None) => Err(RecordsError::OutOfRange { offset, len: end }),
            Err(Fault::Damage(damage)) => Err(RecordsError::Corrupt { offset, damage }),
            Err(Fault::Io(source)) => Err(RecordsError::Io {
                path: self.path.to_path_buf(),
                source,
            }),
        }
    }

    /// A sequential reader over the committed records in `[from, to)`; `from` must be a
    /// record boundary. Independent of other readers (it keeps its own position).
    ///
    /// # Errors
    /// `OutOfRange` unless `HEADER_LEN ≤ from ≤ to ≤ len()`. The iterator yields
    /// `Corrupt` (and then stops) if a record does not parse or crosses `to`.
    pub fn iter(&self, from: u64, to: u64) -> Result<RecordIter, RecordsError> {
        let end = self.len();
        if from < HEADER_LEN || from > to || to > end {
            return Err(RecordsError::OutOfRange {
                offset: from.max(to),
                len: end,
            });
        }
        let reader = PositionedReader {
            file: Arc::clone(&self.file),
            pos: from,
        };
        Ok(RecordIter {
            path: Arc::clone(&self.path),
            reader: BufReader::with_capacity(ITER_BUFFER_BYTES, reader),
            offset: from,
            to,
            failed: false,
        })
    }
}

/// Sequential reader of committed records; see [`RecordReader::iter`].
#[derive(Debug)]
pub struct RecordIter {
    path: Arc<Path>,
    reader: BufReader<PositionedReader<Arc<File>>>,
    offset: u64,
    to: u64,
    failed: bool,
}

impl Iterator for RecordIter {
    type Item = Result<Record, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut body = Vec::new();
        let offset = self.offset;
        match read_record(&mut self.reader, offset, self.to, &mut body) {
            Ok(None) => None,
            Ok(Some(kind)) => {
                let record = Record { offset, kind, body };
                self.offset = record.end();
                Some(Ok(record))
            }
            Err(fault) => {
                self.failed = true;
                Some(Err(match fault {
                    Fault::Damage(damage) => RecordsError::Corrupt { offset, damage },
                    Fault::Io(source) => RecordsError::Io {
                        path: self.path.to_path_buf(),
                        source,
                    },
                }))
            }
        }
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
        let mut expected = b"LLEDGER1".to_vec();
        frame::encode(&mut expected, RecordKind::Leaf, b"abc");
        frame::encode(&mut expected, RecordKind::Checkpoint, b"");
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert_eq!(log.len(), expected.len() as u64);
    }
}
