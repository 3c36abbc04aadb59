//! Recovery of the record file after a crash: cut what was never acknowledged, and
//! fail closed on damage before the tail or below the seal.
//!
//! Above the seal (format 3 writes each seal after its batch's sync, so a power cut can
//! leave the durable seal one or two batches behind the records): every complete batch
//! is kept — each record's checksum holds and a checkpoint record closes it — and the
//! seal is moved up to the last one. What follows the last checkpoint record is cut
//! only if no valid checkpoint record lies anywhere after the first bad record (a torn
//! tail); otherwise nothing is changed. A batch is never kept in part: its checkpoint
//! record comes last, so a batch whose records did not all land either has no
//! checkpoint (cut) or has a hole before it (fail closed). What the records say once
//! kept (leaf indices in sequence, the last checkpoint's size and root, the last state
//! note's signature) is checked by the log's open, which replays them.
//!
//! Private to [`super`]; the rule is described there and in `schemas/README.md` §7.

use std::io::BufReader;

use super::frame::{find_checkpoint, read_record, Fault, PositionedReader};
use super::{
    seal, Cut, CutReason, RecordFile, RecordKind, RecordsError, Recovery, Seal, State, HEADER_LEN,
    ITER_BUFFER_BYTES, MAGIC,
};
use crate::limits::RECORD_OVERHEAD_BYTES;
use std::sync::atomic::Ordering;

impl RecordFile {
    /// Scans from the committed position `from` to the end of the file and cuts what was
    /// never acknowledged. `from` must be [`Seal::START`] or a position the caller knows
    /// is committed (the end of a checkpoint record and the leaf records before it).
    ///
    /// # Errors
    /// [`RecordsError::Corrupt`] when a bad record is followed by a valid checkpoint
    /// record: acknowledged data lies beyond the damage, so nothing is changed.
    /// [`RecordsError::BelowSeal`] when the intact records end before the header's
    /// seal: an acknowledged batch is damaged or missing, so nothing is changed.
    /// [`RecordsError::SealMismatch`] when they pass the seal's end other than at a
    /// checkpoint record with its leaf count.
    /// [`RecordsError::OutOfRange`] if `from` is outside the file, `Pending` or
    /// `Poisoned` if the writer is mid-batch or failed, `Io` on I/O failure.
    pub fn recover(&mut self, from: Seal) -> Result<Recovery, RecordsError> {
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
        if from.end < HEADER_LEN || from.end > file_len {
            return Err(RecordsError::OutOfRange {
                offset: from.end,
                len: file_len,
            });
        }
        let scan = self.scan(from, file_len)?;
        let intact = Seal {
            leaves: from.leaves + scan.leaves,
            end: scan.committed_end,
        };
        self.check_against_seal(from, intact, &scan)?;
        let cut = (scan.committed_end < file_len).then_some(Cut {
            offset: scan.committed_end,
            bytes: file_len - scan.committed_end,
            reason: scan.reason,
        });
        if cut.is_some() {
            self.disk
                .set_len(&self.path, &self.file, scan.committed_end)
                .map_err(io)?;
        }
        let above_seal = intact.leaves.saturating_sub(self.header.seal.leaves);
        let path = self.path.clone();
        self.seal_header(intact, cut.is_some())
            .map_err(|source| RecordsError::Io { path, source })?;
        if above_seal > 0 {
            tracing::info!(path = %self.path.display(), entries = above_seal, "complete batches above the seal kept and sealed");
        }
        self.header.len = scan.committed_end;
        self.committed.store(scan.committed_end, Ordering::Release);
        self.state = State::Ready;
        Ok(Recovery {
            end: scan.committed_end,
            last_checkpoint: scan.last_checkpoint,
            leaves: scan.leaves,
            above_seal,
            cut,
        })
    }

    /// Brings the header to what the records prove: the seal moved to `intact` (complete
    /// batches above the durable seal, a crash after their sync and before their seal
    /// reached the disk), a torn slot rewritten, format 2's magic rewritten as format 3
    /// (from now on seals are written after their batch's sync); then one sync, if
    /// anything changed or `cut`.
    fn seal_header(&mut self, intact: Seal, cut: bool) -> std::io::Result<()> {
        let resealed = intact != self.header.seal || self.header.damaged.is_some();
        if resealed {
            let slot = 1 - self.header.slot;
            let bytes = seal::encode(intact);
            self.disk
                .write_all_at(&self.path, &self.file, &bytes, seal::slot_offset(slot))?;
            self.header.seal = intact;
            self.header.slot = slot;
            self.header.damaged = None;
        }
        let upgraded = self.header.v2;
        if upgraded {
            // One sector with the slots: rewritten whole or not at all.
            self.disk.write_all_at(&self.path, &self.file, MAGIC, 0)?;
            self.header.v2 = false;
        }
        if cut || resealed || upgraded {
            self.disk.sync_data(&self.path, &self.file)?;
        }
        Ok(())
    }

    /// Fails closed when the intact records do not reach the seal, or pass its end
    /// other than at a checkpoint record with its number of leaves (a seal that names
    /// no batch boundary of this file is damage, not a crash).
    fn check_against_seal(
        &self,
        from: Seal,
        intact: Seal,
        scan: &Scan,
    ) -> Result<(), RecordsError> {
        let sealed = self.header.seal;
        if intact.end < sealed.end {
            return Err(RecordsError::BelowSeal {
                path: self.path.clone(),
                sealed,
                intact,
                reason: match scan.reason {
                    CutReason::TornTail { damage, .. } => Some(damage),
                    CutReason::Uncommitted { .. } => None,
                },
            });
        }
        // Where the records hold at the sealed end; unknown when the scan started past
        // it (an index head the durable seal had not caught up with).
        let found = if sealed.end == from.end {
            Some(from.leaves)
        } else if sealed.end > from.end {
            scan.at_seal
        } else {
            return Ok(());
        };
        if found != Some(sealed.leaves) {
            return Err(RecordsError::SealMismatch {
                path: self.path.clone(),
                sealed,
                found,
            });
        }
        Ok(())
    }

    /// Reads every record from `from` and applies the recovery rule; changes nothing.
    fn scan(&self, from: Seal, file_len: u64) -> Result<Scan, RecordsError> {
        let io = |source| RecordsError::Io {
            path: self.path.clone(),
            source,
        };
        let mut reader = BufReader::with_capacity(
            ITER_BUFFER_BYTES,
            PositionedReader {
                file: &*self.file,
                pos: from.end,
            },
        );
        let mut body = Vec::new();
        let (mut offset, mut committed_end) = (from.end, from.end);
        let (mut last_checkpoint, mut leaves, mut pending_leaves) = (None, 0u64, 0u64);
        let mut at_seal = None;
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
                    if committed_end == self.header.seal.end {
                        at_seal = Some(from.leaves + leaves);
                    }
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
        Ok(Scan {
            committed_end,
            last_checkpoint,
            leaves,
            at_seal,
            reason,
        })
    }
}

/// What a recovery scan found: where the committed records end, and why the rest (if
/// any) is not committed.
struct Scan {
    committed_end: u64,
    last_checkpoint: Option<u64>,
    leaves: u64,
    /// Leaf records before the checkpoint record that ends at the seal's end, if one does.
    at_seal: Option<u64>,
    reason: CutReason,
}
