//! Reading committed records: by offset from any thread, or in order.
//!
//! Private to [`super`], which re-exports what is public.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::frame::{read_record, Fault, PositionedReader};
use super::{check_header, Record, RecordsError, Seal, HEADER_LEN, ITER_BUFFER_BYTES};

/// A read-only handle on the committed part of `log.dat`, for other threads.
#[derive(Debug, Clone)]
pub struct RecordReader {
    pub(super) path: Arc<Path>,
    pub(super) file: Arc<File>,
    pub(super) committed: Arc<AtomicU64>,
}

/// Opens `log.dat` for reading only, as an auditor does: checks the header and takes
/// the whole file as committed (nothing is recovered or cut). Returns the seal the
/// header records too, which the auditor checks the file against.
///
/// # Errors
/// If the file cannot be opened, its header is missing, not [`super::MAGIC`], or one
/// of its seal slots is damaged.
pub fn open_reader(path: impl AsRef<Path>) -> Result<(RecordReader, Seal), RecordsError> {
    let path = path.as_ref().to_path_buf();
    let file = File::open(&path).map_err(|source| RecordsError::Io {
        path: path.clone(),
        source,
    })?;
    let header = check_header(&path, &file)?;
    // A writer rewrites a torn slot when it recovers; an auditor reports one.
    if header.damaged.is_some() {
        return Err(RecordsError::SealDamaged { path });
    }
    let reader = RecordReader {
        path: Arc::from(path.as_path()),
        file: Arc::new(file),
        committed: Arc::new(AtomicU64::new(header.len)),
    };
    Ok((reader, header.seal))
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
