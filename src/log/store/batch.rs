//! One group commit, in three steps a pipelined writer pulls apart (issue 15):
//!
//! 1. [`Log::plan`] (`&self`): deduplicate, ask the layer above about each new entry,
//!    encode and hash the leaves. It changes nothing in the log, so it may run while the
//!    previous batch is being synced.
//! 2. [`Log::write`]: the leaves, the state note and the signed checkpoint go to
//!    `log.dat` (`pwrite`, no sync), and to the in-memory tree and the derived stores'
//!    buffers. Nothing of it is visible to a reader who takes the lock after step 3.
//! 3. [`Log::finish`], given the result of the batch's `fdatasync`
//!    ([`Log::syncer`], any thread): only now is the batch committed, the derived stores
//!    flushed, the checkpoint served and the receipts made.
//!
//! [`Log::append`] is the three in a row. A caller that pipelines must hold the log
//! from step 2 to step 3 of a batch (the sequencer holds the write lock), plan the next
//! batch only after the previous one's step 2, and write it only after that one's step
//! 3: then one writer gives one order, and no reader sees an unsynced batch.

use super::failpoint;
use super::*;
use crate::log::records::{Syncer, Unsynced};

/// What became of one entry while its batch is on the way.
enum Pending<R> {
    New {
        index: u64,
        time_micros: u64,
        entry_id: EntryId,
        hash: Hash,
    },
    Existing {
        index: u64,
        entry_id: EntryId,
    },
    Done(Outcome<R>),
}

/// A new entry's leaf, worked out by [`Log::plan`].
struct NewLeaf {
    bytes: Vec<u8>,
    hash: Hash,
    entry_id: EntryId,
    client: Option<Vec<u8>>,
}

/// A batch planned against the log at `size` ([`Log::plan`]), to be written next.
#[must_use = "a planned batch is appended only by `Log::write`"]
pub struct Planned<R> {
    size: u64,
    last_time_micros: u64,
    pending: Vec<Pending<R>>,
    leaves: Vec<NewLeaf>,
}

impl<R> Planned<R> {
    /// Number of new entries the batch would append.
    pub fn new_entries(&self) -> usize {
        self.leaves.len()
    }
}

/// A batch written to `log.dat` and not yet synced ([`Log::write`]).
#[must_use = "a written batch is acknowledged only by `Log::finish` after its sync"]
pub struct Written<R> {
    pending: Vec<Pending<R>>,
    /// `None` when the batch appended nothing (no sync needed).
    unsynced: Option<Unsynced>,
    completed: Vec<(u8, u64, Hash)>,
    index_batch: IndexBatch,
    root: Hash,
    checkpoint: Option<SignedCheckpoint>,
}

impl<R> Written<R> {
    /// Whether the batch wrote anything that must be synced before [`Log::finish`].
    pub fn needs_sync(&self) -> bool {
        self.unsynced.is_some()
    }
}

impl Log {
    /// Appends a batch under one fdatasync. Each submission gets its outcome, in order.
    /// Entries refused by `admission`, duplicates and client-id conflicts write nothing.
    ///
    /// # Errors
    /// Only faults of the store itself (I/O): then nothing of the batch is acknowledged.
    pub fn append<A: Admission>(
        &mut self,
        batch: Vec<VerifiedEnvelope>,
        admission: &mut A,
    ) -> Result<Vec<Outcome<A::Refusal>>, LogError> {
        let planned = self.plan(batch, admission)?;
        let written = self.write(planned, admission)?;
        let synced = if written.needs_sync() {
            self.syncer().sync()
        } else {
            Ok(())
        };
        self.finish(written, synced)
    }

    /// Step 1: decides on each entry of `batch` against the log as it stands (the last
    /// batch written included), without changing the log.
    ///
    /// # Errors
    /// [`LogError::BatchTooLarge`]; faults of the derived stores.
    pub fn plan<A: Admission>(
        &self,
        batch: Vec<VerifiedEnvelope>,
        admission: &mut A,
    ) -> Result<Planned<A::Refusal>, LogError> {
        // `failed` is not checked here: it is also set while the batch before this one
        // is written and not yet finished, which is when the sequencer plans; a log
        // that failed refuses the plan at `write`.
        if batch.len() > crate::limits::BATCH_ENTRIES_MAX {
            return Err(LogError::BatchTooLarge {
                len: batch.len(),
                max: crate::limits::BATCH_ENTRIES_MAX,
            });
        }
        let mut planned = Planned {
            size: self.frontier.size(),
            last_time_micros: self.last_time_micros,
            pending: Vec::with_capacity(batch.len()),
            leaves: Vec::with_capacity(batch.len()),
        };
        // This batch's own new entries: entry id -> index, client id -> entry id.
        let mut batch_ids: HashMap<EntryId, u64> = HashMap::new();
        let mut batch_clients: HashMap<Vec<u8>, EntryId> = HashMap::new();
        for envelope in batch {
            let entry_id = envelope.entry_id();
            let client = self.idempotency.client_id(envelope.envelope());
            if let Some(prior) =
                self.prior(entry_id, client.as_ref(), &batch_ids, &batch_clients)?
            {
                planned.pending.push(prior);
                continue;
            }
            let index = planned.size + planned.leaves.len() as u64;
            let time = next_time(planned.last_time_micros);
            planned.last_time_micros = time;
            if let Err(refusal) = admission.admit(index, time, &envelope) {
                planned
                    .pending
                    .push(Pending::Done(Outcome::Refused(refusal)));
                continue;
            }
            let bytes = leaf::encode_parts(
                index,
                time,
                envelope.payload_type(),
                envelope.payload(),
                envelope.envelope().signatures(),
            )?;
            let hash = leaf_hash(&bytes);
            batch_ids.insert(entry_id, index);
            if let Some(client) = &client {
                batch_clients.insert(client.clone(), entry_id);
            }
            planned.pending.push(Pending::New {
                index,
                time_micros: time,
                entry_id,
                hash,
            });
            planned.leaves.push(NewLeaf {
                hash,
                bytes,
                entry_id,
                client,
            });
        }
        Ok(planned)
    }

    /// The outcome of an entry the rules need not see: already in the log or earlier in
    /// this batch (`Existing`), or another statement under a client id already used.
    fn prior<R>(
        &self,
        entry_id: EntryId,
        client: Option<&Vec<u8>>,
        batch_ids: &HashMap<EntryId, u64>,
        batch_clients: &HashMap<Vec<u8>, EntryId>,
    ) -> Result<Option<Pending<R>>, LogError> {
        let known = match batch_ids.get(&entry_id) {
            Some(index) => Some(*index),
            None => self.ids.get(entry_id.as_bytes()).map_err(derived)?,
        };
        if let Some(index) = known {
            return Ok(Some(Pending::Existing { index, entry_id }));
        }
        let Some(client) = client else {
            return Ok(None);
        };
        let existing = match batch_clients.get(client) {
            Some(id) => Some(*id),
            None => self
                .index
                .client(client)
                .map_err(derived)?
                .map(EntryId::from_bytes),
        };
        // Same entry id was handled above, so this is another statement.
        Ok(existing.map(|existing| {
            Pending::Done(Outcome::ExistsWithDifferentPayload {
                client_id: client.clone(),
                existing,
            })
        }))
    }

    /// Step 2: writes a planned batch to `log.dat` without syncing it: its leaves, the
    /// state note of `admission`'s digest and the signed checkpoint. The log refuses
    /// further writes until [`Log::finish`] has settled this one.
    ///
    /// # Errors
    /// A batch planned against another size ([`LogError::Derived`]); I/O. The log then
    /// refuses writes until reopened.
    pub fn write<A: Admission>(
        &mut self,
        planned: Planned<A::Refusal>,
        admission: &mut A,
    ) -> Result<Written<A::Refusal>, LogError> {
        if self.failed {
            return Err(LogError::Failed);
        }
        // Cleared by `finish` once the batch is synced; a fault or a batch never
        // finished leaves buffers and the in-memory tree ahead of the file, so from then
        // on this handle refuses to write, and reopening recovers from log.dat.
        self.failed = true;
        if planned.size != self.frontier.size() {
            return Err(LogError::Derived {
                reason: format!(
                    "a batch planned at size {} was written at size {}",
                    planned.size,
                    self.frontier.size()
                ),
            });
        }
        let mut written = Written {
            pending: planned.pending,
            unsynced: None,
            completed: Vec::new(),
            index_batch: IndexBatch::default(),
            root: self.frontier.root(),
            checkpoint: None,
        };
        if planned.leaves.is_empty() {
            return Ok(written);
        }
        for leaf in &planned.leaves {
            let offset = self.records.append(RecordKind::Leaf, &leaf.bytes)?;
            self.offsets.append(offset).map_err(derived)?;
            self.ids
                .append(*leaf.entry_id.as_bytes())
                .map_err(derived)?;
            if let Some(client) = &leaf.client {
                written
                    .index_batch
                    .insert_client(client, *leaf.entry_id.as_bytes())
                    .map_err(derived)?;
            }
            self.frontier
                .push(leaf.hash, &mut written.completed)
                .map_err(|e| LogError::Damaged {
                    index: self.frontier.size(),
                    what: e.to_string(),
                })?;
        }
        written.root = self.frontier.root();
        if let Some(digest) = admission.state_digest() {
            self.write_state_note(digest)?;
        }
        let checkpoint = self.signed_checkpoint(written.root)?;
        self.records
            .append(RecordKind::Checkpoint, checkpoint.text().as_bytes())?;
        written.checkpoint = Some(checkpoint);
        written.unsynced = self.records.write_pending()?;
        self.last_time_micros = planned.last_time_micros;
        failpoint::before_sync(planned.size, self.frontier.size());
        Ok(written)
    }

    /// The `fdatasync` of `log.dat`, for whichever thread syncs a written batch.
    pub fn syncer(&self) -> Syncer {
        self.records.syncer()
    }

    /// Step 3: settles a written batch once its sync returned (`synced`; `Ok(())` for a
    /// batch that needed none): committed, the derived stores flushed, each entry's
    /// outcome in order. A failed sync is never retried.
    ///
    /// # Errors
    /// The sync's failure and faults of the derived stores: nothing of the batch is
    /// acknowledged and the log refuses writes until reopened.
    pub fn finish<R>(
        &mut self,
        written: Written<R>,
        synced: std::io::Result<()>,
    ) -> Result<Vec<Outcome<R>>, LogError> {
        if let Some(unsynced) = written.unsynced {
            // The commit point: after this the batch may be acknowledged.
            self.records.settle(unsynced, synced)?;
            for &(level, node_index, node) in &written.completed {
                self.tree.append(level, node_index, node).map_err(derived)?;
            }
            self.tree.flush().map_err(derived)?;
            self.offsets.flush().map_err(derived)?;
            self.ids.flush().map_err(derived)?;
            let head = Head {
                size: self.frontier.size(),
                record_end: self.records.len(),
                root: written.root,
            };
            self.index
                .apply(&written.index_batch, head)
                .map_err(derived)?;
        }
        if let Some(checkpoint) = written.checkpoint {
            self.checkpoint = checkpoint;
        }
        self.failed = false;
        self.outcomes(written.pending)
    }

    /// The state note of `digest` for the batch being written: signed, appended, and
    /// kept to serve once the batch is committed (a failed write fails the log).
    fn write_state_note(&mut self, digest: [u8; 32]) -> Result<(), LogError> {
        let note = StateNote {
            origin: self.origin.as_str().to_string(),
            size: self.frontier.size(),
            root: digest,
        };
        let mut text = note.sign(&self.signer).map_err(|e| LogError::Key {
            reason: e.to_string(),
        })?;
        if let Some(line) = self.handover_line(&note.body()) {
            text.push_str(&line);
        }
        self.records
            .append(RecordKind::StateNote, text.as_bytes())?;
        self.state_note = Some((note.size, text));
        Ok(())
    }

    /// The checkpoint of the tree as written, with the next key's line in a handover.
    fn signed_checkpoint(&self, root: Hash) -> Result<SignedCheckpoint, LogError> {
        let mut checkpoint =
            sign_checkpoint(&self.origin, self.frontier.size(), root, &self.signer);
        if let Some(line) = self.handover_line(&checkpoint.checkpoint().to_body()) {
            checkpoint
                .add_signature_lines(&line)
                .map_err(|e| LogError::Key {
                    reason: e.to_string(),
                })?;
        }
        Ok(checkpoint)
    }

    /// Each entry's outcome, with its receipt against the current checkpoint.
    fn outcomes<R>(&self, pending: Vec<Pending<R>>) -> Result<Vec<Outcome<R>>, LogError> {
        let size = self.frontier.size();
        let mut outcomes = Vec::with_capacity(pending.len());
        for p in pending {
            outcomes.push(match p {
                Pending::New {
                    index,
                    time_micros,
                    entry_id,
                    hash,
                } => Outcome::Ok(self.receipt_for(index, time_micros, entry_id, hash, size)?),
                Pending::Existing { index, entry_id } => {
                    let time_micros = self.entry(index)?.time_micros;
                    let hash = self.leaf_hash_at(index)?;
                    Outcome::Exists(self.receipt_for(index, time_micros, entry_id, hash, size)?)
                }
                Pending::Done(outcome) => outcome,
            });
        }
        Ok(outcomes)
    }
}
