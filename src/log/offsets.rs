//! Leaf index → record offset (`offsets.dat`), derived from the record file.
//!
//! A flat file of big-endian `u64`: the offset in `log.dat` of leaf `i`'s record is at
//! byte `8·i`. Offsets strictly increase, since records are appended in leaf order. The
//! file is rebuildable from the records, so it is never fsync'd on the write path; a
//! partial trailing `u64` left by a crash is cut when the file is opened, and reported
//! by [`Offsets::cut_bytes`].
//!
//! Appends are buffered; [`Offsets::flush`] makes them visible to every
//! [`OffsetsReader`] (the length is published through an atomic after the write).
//!
//! ```
//! use lesson_ledger::log::offsets::Offsets;
//! let dir = tempfile::tempdir().unwrap();
//! let mut offsets = Offsets::open(dir.path().join("offsets.dat")).unwrap();
//! offsets.append(8).unwrap();
//! offsets.append(40).unwrap();
//! let reader = offsets.reader();
//! assert_eq!(reader.len(), 0, "not flushed yet");
//! offsets.flush().unwrap();
//! assert_eq!(reader.get(1).unwrap(), Some(40));
//! assert_eq!(reader.get(2).unwrap(), None);
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::log::disk::Disk;

const ENTRY_BYTES: u64 = 8;

/// An error of the offsets file.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// The offsets file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Code `offsets_not_increasing`: offset `offset` does not follow the previous offset `previous`.
    #[error("offset {offset} does not follow the previous offset {previous}")]
    NotIncreasing {
        /// The offset given, in bytes of `log.dat`.
        offset: u64,
        /// The last offset recorded.
        previous: u64,
    },
    /// Code `offsets_short`: cannot truncate to `requested` entries: the file holds only `have`.
    #[error("cannot truncate to {requested} entries: the file holds only {have}")]
    Short {
        /// Entries asked for.
        requested: u64,
        /// Entries the file holds.
        have: u64,
    },
}

impl OffsetsError {
    /// Stable snake_case code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            OffsetsError::Io { .. } => "offsets_io",
            OffsetsError::NotIncreasing { .. } => "offsets_not_increasing",
            OffsetsError::Short { .. } => "offsets_short",
        }
    }
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    file: File,
    /// Entries flushed and visible to readers.
    len: AtomicU64,
}

impl Shared {
    fn io(&self, source: io::Error) -> OffsetsError {
        OffsetsError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn read(&self, index: u64) -> Result<u64, OffsetsError> {
        let mut bytes = [0u8; ENTRY_BYTES as usize];
        // index < len ≤ file length / 8, so the multiplication cannot overflow.
        self.file
            .read_exact_at(&mut bytes, index * ENTRY_BYTES)
            .map_err(|e| self.io(e))?;
        Ok(u64::from_be_bytes(bytes))
    }
}

/// The writer of `offsets.dat`. One writer per file.
#[derive(Debug)]
pub struct Offsets {
    shared: Arc<Shared>,
    disk: Disk,
    pending: Vec<u64>,
    /// The last offset appended (flushed or not), to check that offsets increase.
    last: Option<u64>,
    cut_bytes: u64,
}

/// A read handle on the flushed entries: cheap to clone, shareable across threads.
#[derive(Debug, Clone)]
pub struct OffsetsReader {
    shared: Arc<Shared>,
}

impl Offsets {
    /// Opens the file, creating it if absent, and cuts a partial trailing entry.
    ///
    /// # Errors
    /// If the file cannot be opened, read or cut.
    pub fn open(path: impl AsRef<Path>) -> Result<Offsets, OffsetsError> {
        Offsets::open_on(path, Disk::os())
    }

    /// [`Offsets::open`], writing through `disk`.
    ///
    /// # Errors
    /// As [`Offsets::open`].
    pub fn open_on(path: impl AsRef<Path>, disk: Disk) -> Result<Offsets, OffsetsError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| OffsetsError::Io {
            path: path.clone(),
            source,
        };
        let (file, len, cut_bytes) = open_fixed_width(&path, ENTRY_BYTES).map_err(io)?;
        let shared = Arc::new(Shared {
            path,
            file,
            len: AtomicU64::new(len),
        });
        let last = if len == 0 {
            None
        } else {
            Some(shared.read(len - 1)?)
        };
        Ok(Offsets {
            shared,
            disk,
            pending: Vec::new(),
            last,
            cut_bytes,
        })
    }

    /// Bytes of a partial trailing entry cut by [`Offsets::open`] (0 if none).
    pub fn cut_bytes(&self) -> u64 {
        self.cut_bytes
    }

    /// Entries appended, flushed or not: the index the next append gets.
    pub fn len(&self) -> u64 {
        self.shared.len.load(Ordering::Acquire) + self.pending.len() as u64
    }

    /// Whether no entry was appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffers the record offset of the next leaf and returns the leaf's index.
    ///
    /// # Errors
    /// If `offset` is not greater than the previous one (a bug or damage).
    pub fn append(&mut self, offset: u64) -> Result<u64, OffsetsError> {
        if let Some(previous) = self.last.filter(|&previous| offset <= previous) {
            return Err(OffsetsError::NotIncreasing { offset, previous });
        }
        let index = self.len();
        self.pending.push(offset);
        self.last = Some(offset);
        Ok(index)
    }

    /// The record offset of leaf `index`, flushed or not; `None` beyond [`Offsets::len`].
    ///
    /// # Errors
    /// On I/O failure.
    pub fn get(&self, index: u64) -> Result<Option<u64>, OffsetsError> {
        let flushed = self.shared.len.load(Ordering::Acquire);
        match index.checked_sub(flushed) {
            Some(at) => Ok(usize::try_from(at)
                .ok()
                .and_then(|at| self.pending.get(at))
                .copied()),
            None => self.shared.read(index).map(Some),
        }
    }

    /// Writes the buffered entries and publishes them to readers. No fsync (derived).
    ///
    /// # Errors
    /// On I/O failure; the entries stay buffered and a later flush retries them.
    pub fn flush(&mut self) -> Result<(), OffsetsError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = self.pending.iter().flat_map(|o| o.to_be_bytes()).collect();
        let len = self.shared.len.load(Ordering::Acquire);
        let shared = &self.shared;
        self.disk
            .write_all_at(&shared.path, &shared.file, &bytes, len * ENTRY_BYTES)
            .map_err(|e| shared.io(e))?;
        // Publish after the write, so a reader never sees an entry it cannot read.
        self.shared
            .len
            .store(len + self.pending.len() as u64, Ordering::Release);
        self.pending.clear();
        Ok(())
    }

    /// Flushes, then fsyncs the file (used before a clean shutdown).
    ///
    /// # Errors
    /// On I/O failure.
    pub fn sync(&mut self) -> Result<(), OffsetsError> {
        self.flush()?;
        let shared = &self.shared;
        self.disk
            .sync_data(&shared.path, &shared.file)
            .map_err(|e| shared.io(e))
    }

    /// Keeps the first `n` entries. Unflushed appends are discarded first.
    ///
    /// # Errors
    /// [`OffsetsError::Short`] if fewer than `n` entries are flushed (nothing changes);
    /// `Io` on I/O failure.
    pub fn truncate(&mut self, n: u64) -> Result<(), OffsetsError> {
        self.pending.clear();
        let have = self.shared.len.load(Ordering::Acquire);
        if n > have {
            self.last = if have == 0 {
                None
            } else {
                Some(self.shared.read(have - 1)?)
            };
            return Err(OffsetsError::Short { requested: n, have });
        }
        // Lower the published length before cutting, so readers never read past the end.
        self.shared.len.store(n, Ordering::Release);
        let shared = &self.shared;
        self.disk
            .set_len(&shared.path, &shared.file, n * ENTRY_BYTES)
            .map_err(|e| shared.io(e))?;
        self.last = if n == 0 {
            None
        } else {
            Some(self.shared.read(n - 1)?)
        };
        Ok(())
    }

    /// A read handle that sees the entries flushed so far and later.
    pub fn reader(&self) -> OffsetsReader {
        OffsetsReader {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl OffsetsReader {
    /// Entries flushed.
    pub fn len(&self) -> u64 {
        self.shared.len.load(Ordering::Acquire)
    }

    /// Whether no entry is flushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record offset of leaf `index`, by one `pread`; `None` if not flushed.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn get(&self, index: u64) -> Result<Option<u64>, OffsetsError> {
        if index >= self.len() {
            return Ok(None);
        }
        self.shared.read(index).map(Some)
    }
}

/// Opens (or creates) a derived file of fixed-width records — `offsets.dat`, `ids.dat` —
/// and cuts a partial trailing record: a crash tore the last write, and the whole
/// records before it are still valid. Returns the file, the records it holds and the
/// bytes cut.
///
/// # Errors
/// I/O opening, measuring or cutting the file.
pub(crate) fn open_fixed_width(path: &Path, record_bytes: u64) -> io::Result<(File, u64, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let bytes = file.metadata()?.len();
    let cut_bytes = bytes % record_bytes;
    if cut_bytes != 0 {
        file.set_len(bytes - cut_bytes)?;
    }
    Ok((file, bytes / record_bytes, cut_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_big_endian_at_eight_times_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.dat");
        let mut offsets = Offsets::open(&path).unwrap();
        offsets.append(8).unwrap();
        offsets.append(0x0102_0304_0506_0708).unwrap();
        assert_eq!(
            offsets.get(1).unwrap(),
            Some(0x0102_0304_0506_0708),
            "buffered"
        );
        offsets.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn failed_truncate_keeps_the_increasing_check() {
        let dir = tempfile::tempdir().unwrap();
        let mut offsets = Offsets::open(dir.path().join("offsets.dat")).unwrap();
        offsets.append(8).unwrap();
        offsets.flush().unwrap();
        offsets.append(20).unwrap();
        assert!(matches!(
            offsets.truncate(3),
            Err(OffsetsError::Short {
                requested: 3,
                have: 1
            })
        ));
        assert_eq!(offsets.len(), 1, "the unflushed append is discarded");
        assert!(matches!(
            offsets.append(8),
            Err(OffsetsError::NotIncreasing { .. })
        ));
        assert_eq!(offsets.append(9).unwrap(), 1);
    }
}
