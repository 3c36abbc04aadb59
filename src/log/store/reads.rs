//! The log's reads: entries, leaf hashes, receipts and proofs against the latest
//! checkpoint, and the checkpoints the log has signed. None of them takes the writer's
//! path; they read the record file and the derived stores the last commit flushed.

use super::{derived, leaf_offset, Log, LogError, Range, Receipt};
use crate::log::envelope::EntryId;
use crate::log::hash::Hash;
use crate::log::leaf::Leaf;
use crate::log::proof;
use crate::log::records::{self, RecordKind};

/// A page of signed checkpoints, each with its tree size, and the size to ask for next.
pub type CheckpointsPage = (Vec<(u64, String)>, Option<u64>);

impl Log {
    /// The receipt of an entry already in the log, against the latest checkpoint.
    ///
    /// # Errors
    /// [`LogError::OutOfRange`]; read faults.
    pub fn receipt(&self, index: u64) -> Result<Receipt, LogError> {
        let leaf = self.entry(index)?;
        let hash = self.leaf_hash_at(index)?;
        self.receipt_for(
            index,
            leaf.time_micros,
            leaf.envelope.entry_id(),
            hash,
            self.size(),
        )
    }

    /// The leaf hash of entry `index`, from the tree.
    ///
    /// # Errors
    /// [`LogError::OutOfRange`]; read faults.
    pub fn leaf_hash_at(&self, index: u64) -> Result<Hash, LogError> {
        self.check_index(index)?;
        use crate::log::hash::NodeSource;
        self.tree.reader().node(0, index).map_err(derived)
    }

    /// The raw leaf bytes of entry `index` (what is hashed into the tree).
    ///
    /// # Errors
    /// [`LogError::OutOfRange`]; read faults; a record that fails its checksum.
    pub fn leaf_bytes(&self, index: u64) -> Result<Vec<u8>, LogError> {
        self.check_index(index)?;
        let offset = leaf_offset(&self.offsets, index)?;
        let record = self.records.read_at(offset)?;
        if record.kind != RecordKind::Leaf {
            return Err(LogError::Derived {
                reason: format!("offset of entry {index} points at a non-leaf record"),
            });
        }
        Ok(record.body)
    }

    /// The decoded entry at `index`.
    ///
    /// # Errors
    /// As [`Log::leaf_bytes`], and a leaf that does not decode.
    pub fn entry(&self, index: u64) -> Result<Leaf, LogError> {
        let leaf = Leaf::decode(&self.leaf_bytes(index)?)?;
        if leaf.index != index {
            return Err(LogError::Damaged {
                index,
                what: format!("stored leaf says index {}", leaf.index),
            });
        }
        Ok(leaf)
    }

    /// The index of the entry with this id, if present.
    ///
    /// # Errors
    /// Index read faults.
    pub fn index_of(&self, entry_id: &EntryId) -> Result<Option<u64>, LogError> {
        self.ids.get(entry_id.as_bytes()).map_err(derived)
    }

    /// The hash of the complete subtree node `(level, index)`, numbered as
    /// [`crate::log::hash::NodeSource`] does, if it lies within the current tree (the
    /// tlog-tiles read API serves these).
    ///
    /// # Errors
    /// [`LogError::OutOfRange`] unless the node's leaves `[index·2^level,
    /// (index+1)·2^level)` are all in the log; read faults.
    pub fn node(&self, level: u8, index: u64) -> Result<Hash, LogError> {
        let end = index
            .checked_add(1)
            .and_then(|n| n.checked_mul(1u64.checked_shl(u32::from(level))?));
        if !end.is_some_and(|end| end <= self.size()) {
            return Err(LogError::OutOfRange {
                range: Range::Node {
                    level,
                    index,
                    size: self.size(),
                },
            });
        }
        use crate::log::hash::NodeSource;
        self.tree.reader().node(level, index).map_err(derived)
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `size` entries.
    ///
    /// # Errors
    /// [`LogError::OutOfRange`] unless `index < size <= self.size()`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size)?;
        if index >= size {
            return Err(LogError::OutOfRange {
                range: Range::Index { index, size },
            });
        }
        Ok(proof::inclusion_proof(&self.tree.reader(), index, size)?)
    }

    /// RFC 9162 consistency proof from the tree of `size1` entries to that of `size2`.
    ///
    /// # Errors
    /// [`LogError::OutOfRange`] unless `size1 <= size2 <= self.size()`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size2)?;
        if size1 > size2 {
            return Err(LogError::OutOfRange {
                range: Range::SizesReversed {
                    from: size1,
                    to: size2,
                },
            });
        }
        Ok(proof::consistency_proof(&self.tree.reader(), size1, size2)?)
    }

    /// The root of the tree of the first `size` entries.
    ///
    /// # Errors
    /// [`LogError::OutOfRange`] past the log's size.
    pub fn root_at(&self, size: u64) -> Result<Hash, LogError> {
        self.check_size(size)?;
        Ok(proof::root(&self.tree.reader(), size)?)
    }

    /// Every checkpoint the log has signed, oldest first, as committed in `log.dat`.
    ///
    /// # Errors
    /// Read faults.
    pub fn checkpoints(&self) -> Result<Vec<String>, LogError> {
        let mut out = Vec::new();
        for record in self.records.iter(records::HEADER_LEN, self.records.len())? {
            let record = record?;
            if record.kind == RecordKind::Checkpoint {
                out.push(String::from_utf8_lossy(&record.body).into_owned());
            }
        }
        Ok(out)
    }

    /// A page of the checkpoints the log has signed, oldest first, as committed in
    /// `log.dat`: those of tree size `from` and above (`from >= 1`), at most `max` of
    /// them, reading at most `records_max` records from the batch holding entry
    /// `from - 1` on (a batch holds up to [`crate::limits::BATCH_ENTRIES_MAX`] leaves, so
    /// a page is bounded however the log was batched). Returns each with its tree size,
    /// and the size to ask for next, `None` once the end of the log is read.
    ///
    /// # Errors
    /// [`LogError::OutOfRange`] for `from` past the log's size; read faults.
    pub fn checkpoints_from(
        &self,
        from: u64,
        max: usize,
        records_max: usize,
    ) -> Result<CheckpointsPage, LogError> {
        self.check_size(from)?;
        let (start, mut leaves) = match from.checked_sub(1) {
            Some(last) if last > 0 => (leaf_offset(&self.offsets, last)?, last),
            _ => (records::HEADER_LEN, 0),
        };
        let mut out: Vec<(u64, String)> = Vec::new();
        for (read, record) in self.records.iter(start, self.records.len())?.enumerate() {
            if out.len() >= max || read >= records_max {
                let after_last = out.last().map_or(from, |(size, _)| size + 1);
                return Ok((out, Some(leaves.max(after_last).max(1))));
            }
            let record = record?;
            match record.kind {
                RecordKind::Leaf => leaves += 1,
                RecordKind::Checkpoint if leaves >= from => {
                    out.push((leaves, String::from_utf8_lossy(&record.body).into_owned()));
                }
                _ => {}
            }
        }
        Ok((out, None))
    }

    /// The signed state note committed with the batch that ended at `size`, as stored
    /// in `log.dat` (its record follows the batch's last leaf); `None` when no batch
    /// ended there (or for size 0, and past the log's size).
    ///
    /// # Errors
    /// Read faults; a record that fails its checksum.
    pub fn state_note_at(&self, size: u64) -> Result<Option<String>, LogError> {
        if size == 0 || size > self.size() {
            return Ok(None);
        }
        let offset = leaf_offset(&self.offsets, size - 1)?;
        let mut records = self.records.iter(offset, self.records.len())?;
        match records.next().transpose()? {
            Some(last) if last.kind == RecordKind::Leaf => {}
            _ => {
                return Err(LogError::Derived {
                    reason: format!("offset of entry {} points at a non-leaf record", size - 1),
                })
            }
        }
        Ok(match records.next().transpose()? {
            Some(next) if next.kind == RecordKind::StateNote => {
                Some(String::from_utf8_lossy(&next.body).into_owned())
            }
            _ => None,
        })
    }

    fn check_index(&self, index: u64) -> Result<(), LogError> {
        if index >= self.size() {
            return Err(LogError::OutOfRange {
                range: Range::Index {
                    index,
                    size: self.size(),
                },
            });
        }
        Ok(())
    }

    fn check_size(&self, size: u64) -> Result<(), LogError> {
        if size > self.size() {
            return Err(LogError::OutOfRange {
                range: Range::TreeSize {
                    size,
                    log_size: self.size(),
                },
            });
        }
        Ok(())
    }
}
