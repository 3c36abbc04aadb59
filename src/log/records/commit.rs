//! Committing a batch, in three steps that a pipelined writer can pull apart:
//! [`RecordFile::write_pending`] (the records, `pwrite` only), [`Syncer::sync`] (the
//! `fdatasync`, from any thread), and [`RecordFile::settle`] (the seal slot, and only
//! now is the batch committed: readers see it and it may be acknowledged).
//! [`RecordFile::commit`] is the three in a row.
//!
//! Between `write_pending` and `settle` the batch's bytes are in the file but not
//! durable: nothing may be appended (the next batch is built elsewhere), readers do not
//! see them (neither the committed length nor the seal has moved), and a crash keeps
//! them or loses them whole (the checkpoint record is the commit marker; recovery cuts
//! a torn tail).
//!
//! Why the seal is written in `settle`, after the sync, and not with the records: one
//! `fdatasync` orders nothing among the writes it flushes, so a seal written with its
//! batch could reach the disk before the batch's records, and a power cut then would
//! leave a seal past records that never landed: a log that refuses to open
//! (`records_below_seal`) although nothing acknowledged was lost. Written after the
//! sync, the seal names only durable records; it is made durable by the next batch's
//! `fdatasync` (or the kernel's writeback, or [`RecordFile::sync`]), at no cost of its
//! own. A reader of the file sees it at once, in the page cache.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{seal, RecordFile, RecordsError, Seal, State};
use crate::log::disk::Disk;

/// A batch written to the file and not yet synced: hand it back to
/// [`RecordFile::settle`] with the result of its [`Syncer::sync`].
#[derive(Debug)]
#[must_use = "a written batch is committed only by `settle` after its sync"]
pub struct Unsynced {
    start: u64,
    end: u64,
    /// The seal of the batch's last checkpoint record: written by `settle`.
    sealed: Option<Seal>,
}

impl Unsynced {
    /// Where the batch's bytes start and end in the file.
    pub fn range(&self) -> (u64, u64) {
        (self.start, self.end)
    }
}

/// The `fdatasync` of one record file, for another thread than the writer's.
#[derive(Debug, Clone)]
pub struct Syncer {
    path: PathBuf,
    file: Arc<File>,
    disk: Disk,
}

impl Syncer {
    /// `fdatasync` of the file: every byte written before the call is durable when it
    /// returns `Ok`.
    ///
    /// # Errors
    /// As `fdatasync`; never retried (see [`RecordFile::settle`]).
    pub fn sync(&self) -> io::Result<()> {
        self.disk.sync_data(&self.path, &self.file)
    }

    /// The file synced.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl RecordFile {
    /// Writes the buffered records with one `fdatasync`, then the seal of their last
    /// checkpoint record into the header slot not holding the current seal. When this
    /// returns `Ok`, the records are durable and may be acknowledged.
    ///
    /// # Errors
    /// On any I/O failure. The file is then poisoned: after a failed `fdatasync` the
    /// page cache cannot be trusted, so nothing is retried; the batch's bytes and its
    /// slot are put back as they were (best effort) and the caller must reopen and
    /// [`RecordFile::recover`].
    pub fn commit(&mut self) -> Result<(), RecordsError> {
        let Some(unsynced) = self.write_pending()? else {
            return Ok(());
        };
        let synced = self.syncer().sync();
        self.settle(unsynced, synced)
    }

    /// The syncer of this file.
    pub fn syncer(&self) -> Syncer {
        Syncer {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            disk: self.disk.clone(),
        }
    }

    /// Writes the buffered records without syncing (the seal waits for the sync: see
    /// the module's doc); `None` when nothing is buffered. Nothing may be appended
    /// before [`RecordFile::settle`].
    ///
    /// # Errors
    /// `Poisoned` after an earlier failure; an I/O failure poisons the file as
    /// [`RecordFile::commit`] says.
    pub fn write_pending(&mut self) -> Result<Option<Unsynced>, RecordsError> {
        if self.state == State::Poisoned {
            return Err(RecordsError::Poisoned);
        }
        if self.buffer.is_empty() {
            return Ok(None);
        }
        let start = self.len();
        let end = start + self.buffer.len() as u64;
        let sealed = self.pending_seal.take();
        self.pending_leaves = 0;
        let written = self
            .disk
            .write_all_at(&self.path, &self.file, &self.buffer, start);
        self.buffer.clear();
        let unsynced = Unsynced { start, end, sealed };
        match written {
            Ok(()) => Ok(Some(unsynced)),
            Err(source) => Err(self.fail(&unsynced, None, source)),
        }
    }

    /// Commits a batch written by [`RecordFile::write_pending`] once its sync returned:
    /// on `Ok` its seal is written (unsynced) into the slot not holding the current one,
    /// and the committed length and the seal move to it; on an error the file is
    /// poisoned and the batch undone, as [`RecordFile::commit`] says.
    ///
    /// # Errors
    /// The sync's failure or the seal's write failure, or `Poisoned`/`Pending` for a
    /// batch that is not the one written last.
    pub fn settle(
        &mut self,
        unsynced: Unsynced,
        synced: io::Result<()>,
    ) -> Result<(), RecordsError> {
        if self.state == State::Poisoned {
            return Err(RecordsError::Poisoned);
        }
        if unsynced.start != self.len() || !self.buffer.is_empty() {
            // Another batch came in between: its offsets are wrong. Never acknowledge.
            self.state = State::Poisoned;
            return Err(RecordsError::Pending {
                bytes: self.buffer.len(),
            });
        }
        if let Err(source) = synced {
            return Err(self.fail(&unsynced, None, source));
        }
        if let Some(seal) = unsynced.sealed {
            let slot = 1 - self.header.slot;
            let written = self.disk.write_all_at(
                &self.path,
                &self.file,
                &seal::encode(seal),
                seal::slot_offset(slot),
            );
            if let Err(source) = written {
                return Err(self.fail(&unsynced, Some(slot), source));
            }
            self.header.seal = seal;
            self.header.slot = slot;
        }
        self.committed.store(unsynced.end, Ordering::Release);
        Ok(())
    }

    /// Makes the current seal durable: one `fdatasync`, for a writer closing the file
    /// (else the last batch's seal waits for the next batch or the kernel's writeback).
    ///
    /// # Errors
    /// As `fdatasync`; the file is then poisoned, as after a failed commit.
    pub fn sync(&mut self) -> Result<(), RecordsError> {
        if self.state == State::Poisoned {
            return Err(RecordsError::Poisoned);
        }
        self.disk
            .sync_data(&self.path, &self.file)
            .map_err(|source| {
                self.state = State::Poisoned;
                RecordsError::Io {
                    path: self.path.clone(),
                    source,
                }
            })
    }

    /// Poisons the file and undoes a batch whose write, sync or seal (written into
    /// `slot`) failed.
    fn fail(
        &mut self,
        unsynced: &Unsynced,
        slot: Option<usize>,
        source: io::Error,
    ) -> RecordsError {
        self.state = State::Poisoned;
        self.roll_back(unsynced.start, slot);
        RecordsError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// After a failed commit: removes the batch's bytes and rewrites the slot it may
    /// have changed with the current seal, so that this process (whose page cache may
    /// hold them, marked clean) never reads an unsynced batch back as committed. Best
    /// effort: a failure is logged, the file stays poisoned, and a reopen's recovery
    /// decides from what is on disk.
    fn roll_back(&mut self, start: u64, slot: Option<usize>) {
        // The slot first: a seal beyond the file's end would make the reopen fail closed.
        // The other slot holds the current seal; this one goes back to the same.
        let undone = match slot {
            Some(slot) => self.disk.write_all_at(
                &self.path,
                &self.file,
                &seal::encode(self.header.seal),
                seal::slot_offset(slot),
            ),
            None => Ok(()),
        }
        .and_then(|()| self.disk.set_len(&self.path, &self.file, start));
        if let Err(error) = undone {
            tracing::error!(path = %self.path.display(), %error, "could not undo a failed commit; reopen to recover");
        }
    }
}
