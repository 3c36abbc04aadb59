//! The ledger: the log with the lesson rules in front of it and the state behind it.
//!
//! [`Ledger::submit`] hands a batch of verified envelopes to the log's single writer,
//! which asks the rules ([`super::decide`]) about each new entry in log order; accepted
//! entries are appended under one fdatasync, then their state changes are committed to
//! sled. [`Ledger::open`] brings a state that is behind the log (a crash between the two
//! writes) up to date by replaying the missing entries through the same rules.
//!
//! Architecture invariant: the rules never see an entry the log has not verified, and
//! the state never holds a change whose entry is not durable in `log.dat`.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::RuleError;
use super::sled_state::{SledState, StateStoreError};
use super::state::{Key, StateView, Value};
use super::state_map::Nodes;
use super::{decide, EntryContext, PAYLOAD_TYPE};
use crate::log::envelope::{Envelope, KeyCache, VerifiedEnvelope};
use crate::log::leaf::Leaf;
use crate::log::note::NoteSigner;
use crate::log::records::Syncer;
use crate::log::store::{
    Admission, EntryIdOnly, Log, LogError, OpenReport, Outcome, Planned, Written,
};

/// Entries replayed into the state per sled commit when catching up.
const REPLAY_BATCH_ENTRIES: u64 = 4096;
/// Entries the live state commits in memory before it writes them to sled
/// ([`SledState::persist_every`]): a crash costs at most this many entries replayed on
/// open, and the writer pays sled's atomic batch once for them, not per group commit.
const STATE_PERSIST_ENTRIES: u64 = 4096;

/// Why the ledger cannot go on (never an entry's fault: those are [`Outcome::Refused`]).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The log failed; the code is the [`LogError`]'s.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The state store failed; the code is the [`StateStoreError`]'s.
    #[error(transparent)]
    State(#[from] StateStoreError),
    /// Code `state_diverged`: on replay, the rules refuse an entry the log already holds,
    /// so the state cannot be rebuilt from the log.
    #[error("the rules refuse entry {index} already in the log ({code}: {reason}): the state cannot be rebuilt")]
    Diverged {
        /// The entry's leaf index.
        index: u64,
        /// The refusal's stable code ([`RuleError::code`], or `payload_type_unsupported`).
        code: &'static str,
        /// The refusal, in words.
        reason: String,
    },
    /// Code `state_ahead_of_log`: the state store reflects more entries than the log holds.
    #[error("the state reflects {state} entries but the log holds only {log}")]
    StateAhead {
        /// Entries the state reflects.
        state: u64,
        /// Entries in the log.
        log: u64,
    },
    /// The state store could not be read while deciding (a store fault, not the
    /// entry's); the code is the [`RuleError`]'s.
    #[error("the state could not be read: {0}")]
    StateFault(RuleError),
    /// The operator's `key_rotated` entry could not be signed; the code is the
    /// `EnvelopeError`'s.
    #[error("the operator's key change could not be signed")]
    HandoverEnvelope(#[source] crate::log::envelope::EnvelopeError),
    /// Code `genesis_required`: a key change asked of a ledger without a genesis entry.
    #[error("the ledger has no genesis: there is no operator key to change")]
    NoGenesis,
}

impl LedgerError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::Log(e) => e.code(),
            LedgerError::State(e) => e.code(),
            LedgerError::Diverged { .. } => "state_diverged",
            LedgerError::StateAhead { .. } => "state_ahead_of_log",
            LedgerError::StateFault(e) => e.code(),
            LedgerError::HandoverEnvelope(e) => e.code(),
            LedgerError::NoGenesis => "genesis_required",
        }
    }
}

/// The rules as the log's [`Admission`]: each entry decided on the state with the
/// batch's accepted changes on top (`top`, kept out of the state so that a batch can be
/// planned while the one before it is still being synced), the batch staged in the
/// state when its state note is due.
struct Rules<'a> {
    state: &'a mut SledState,
    /// The changes of this batch's accepted entries, each object as last written.
    top: BTreeMap<Key, Value>,
    /// A fault of the store (not of the entry) met while deciding.
    fault: Option<RuleError>,
}

/// The state with a batch's own changes on top: what its next entry is decided on.
struct Layered<'a> {
    top: &'a BTreeMap<Key, Value>,
    base: &'a SledState,
}

impl StateView for Layered<'_> {
    fn get(&self, key: &Key) -> Option<Value> {
        match self.top.get(key) {
            Some(value) => Some(value.clone()),
            None => self.base.get(key),
        }
    }
}

/// Whether a rule error is the store's fault rather than the entry's.
fn is_store_fault(e: &RuleError) -> bool {
    matches!(
        e,
        RuleError::StateUnavailable { .. } | RuleError::StateCorrupt { .. }
    )
}

impl Admission for Rules<'_> {
    type Refusal = RuleError;

    fn admit(
        &mut self,
        index: u64,
        time_micros: u64,
        entry: &VerifiedEnvelope,
    ) -> Result<(), RuleError> {
        if self.fault.is_some() {
            return Err(RuleError::StateUnavailable {
                detail: "an earlier entry of this batch met a store fault".into(),
            });
        }
        if entry.payload_type() != PAYLOAD_TYPE {
            return Err(RuleError::PayloadTypeUnsupported {
                found: entry.payload_type().to_string(),
            });
        }
        let ctx = EntryContext {
            index,
            time_micros,
            signers: entry
                .signer_keyids()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        let view = Layered {
            top: &self.top,
            base: &*self.state,
        };
        match decide(&view, &ctx, entry.payload()) {
            Ok(changes) => {
                self.top.extend(changes);
                Ok(())
            }
            Err(e) => {
                if is_store_fault(&e) {
                    self.fault = Some(e.clone());
                }
                if let RuleError::InvariantViolated { detail } = &e {
                    // Nothing of the entry is staged or written; say so loudly.
                    tracing::error!(index, %detail, "an entry would break a balance identity");
                }
                Err(e)
            }
        }
    }

    fn state_digest(&mut self) -> Option<[u8; 32]> {
        self.state
            .stage(std::mem::take(&mut self.top).into_iter().collect());
        match self.state.prepare() {
            Ok(digest) => Some(digest),
            Err(e) => {
                // No note for this batch; the fault stops the ledger after the commit.
                self.fault = Some(RuleError::StateUnavailable {
                    detail: e.to_string(),
                });
                None
            }
        }
    }
}

/// A batch decided on and not yet written ([`Ledger::plan`]).
#[must_use = "a planned batch is appended only by `Ledger::write`"]
pub struct PlannedBatch {
    planned: Planned<RuleError>,
    top: BTreeMap<Key, Value>,
    fault: Option<RuleError>,
}

impl PlannedBatch {
    /// Number of new entries the batch would append.
    pub fn new_entries(&self) -> usize {
        self.planned.new_entries()
    }
}

/// A batch written and not yet synced ([`Ledger::write`]).
#[must_use = "a written batch is acknowledged only by `Ledger::finish` after its sync"]
pub struct WrittenBatch {
    written: Written<RuleError>,
    fault: Option<RuleError>,
}

impl WrittenBatch {
    /// Whether the batch must be synced before [`Ledger::finish`].
    pub fn needs_sync(&self) -> bool {
        self.written.needs_sync()
    }
}

/// The log, the rules and the state, with one writer.
pub struct Ledger {
    pub(super) log: Log,
    pub(super) state: SledState,
}

impl Ledger {
    /// Creates a new ledger (an empty log; the first entry must be the genesis).
    ///
    /// # Errors
    /// As [`Log::create`].
    pub fn create(dir: &Path, origin: &str, key_name: &str) -> Result<Ledger, LedgerError> {
        let log = Log::create(dir, origin, key_name, Box::new(EntryIdOnly))?;
        let mut state = SledState::open_with(log.db(), map_nodes(&log))?;
        state.persist_every(STATE_PERSIST_ENTRIES);
        Ok(Ledger { log, state })
    }

    /// Opens a ledger, recovering the log (see [`Log::open`]) and replaying into the
    /// state any entries it is behind on.
    ///
    /// # Errors
    /// [`LedgerError::Diverged`] if a logged entry is refused on replay; log and store faults.
    pub fn open(dir: &Path) -> Result<(Ledger, OpenReport), LedgerError> {
        let started = std::time::Instant::now();
        let (log, report) = Log::open(dir, Box::new(EntryIdOnly))?;
        tracing::info!(
            entries = log.size(),
            seconds = started.elapsed().as_secs_f64(),
            "log opened"
        );
        Ok((Ledger::over(log)?, report))
    }

    /// The ledger over an open `log`: its state, caught up with the log by replay.
    ///
    /// # Errors
    /// As [`Ledger::open`].
    pub(super) fn over(log: Log) -> Result<Ledger, LedgerError> {
        let mut state = match SledState::open_with(log.db(), map_nodes(&log)) {
            Ok(state) => state,
            Err(damage @ StateStoreError::Corrupt { .. }) => {
                // The state is derived from the log: rebuild it rather than refuse to open.
                tracing::warn!(%damage, "the stored ledger state is damaged; rebuilding it from the log");
                SledState::empty_with(log.db(), map_nodes(&log))?
            }
            Err(fault) => return Err(fault.into()),
        };
        if state.size() > log.size() {
            return Err(LedgerError::StateAhead {
                state: state.size(),
                log: log.size(),
            });
        }
        while state.size() < log.size() {
            let from = state.size();
            let to = log.size().min(from + REPLAY_BATCH_ENTRIES);
            for index in from..to {
                let leaf = log.entry(index)?;
                replay_one(&mut state, &leaf)?;
            }
            state.commit(to)?;
        }
        state.persist_every(STATE_PERSIST_ENTRIES);
        Ok(Ledger { log, state })
    }

    /// Submits verified envelopes; each gets its outcome, in order. Refusals carry the
    /// rule broken; a reused entry id is `exists_with_different_payload`. The steps
    /// [`Ledger::plan`], [`Ledger::write`], the sync, [`Ledger::finish`] in a row.
    ///
    /// # Errors
    /// Faults of the log or the state: then nothing of the batch is acknowledged.
    pub fn submit(
        &mut self,
        batch: Vec<VerifiedEnvelope>,
    ) -> Result<Vec<Outcome<RuleError>>, LedgerError> {
        let planned = self.plan(batch)?;
        let written = self.write(planned)?;
        let synced = if written.written.needs_sync() {
            self.syncer().sync()
        } else {
            Ok(())
        };
        self.finish(written, synced)
    }

    /// Step 1 of a group commit ([`crate::log::store::Log::plan`]): decides on each entry
    /// against the state and the log as they stand, the last batch written included,
    /// and changes neither. The sequencer plans a batch while the one before it syncs.
    ///
    /// # Errors
    /// As [`Log::plan`].
    pub fn plan(&mut self, batch: Vec<VerifiedEnvelope>) -> Result<PlannedBatch, LedgerError> {
        let mut rules = Rules {
            state: &mut self.state,
            top: BTreeMap::new(),
            fault: None,
        };
        let planned = self.log.plan(batch, &mut rules)?;
        Ok(PlannedBatch {
            planned,
            top: rules.top,
            fault: rules.fault,
        })
    }

    /// Step 2: stages the planned batch in the state, and writes it to `log.dat` with
    /// its state note and checkpoint, unsynced. Must follow the [`Ledger::finish`] of
    /// the batch before it.
    ///
    /// # Errors
    /// As [`Log::write`]: the ledger then refuses writes until reopened.
    pub fn write(&mut self, batch: PlannedBatch) -> Result<WrittenBatch, LedgerError> {
        let mut rules = Rules {
            state: &mut self.state,
            top: batch.top,
            fault: batch.fault,
        };
        match self.log.write(batch.planned, &mut rules) {
            Ok(written) => Ok(WrittenBatch {
                written,
                fault: rules.fault.take(),
            }),
            Err(e) => {
                self.state.discard();
                Err(e.into())
            }
        }
    }

    /// The `fdatasync` of a written batch, for any thread.
    pub fn syncer(&self) -> Syncer {
        self.log.syncer()
    }

    /// Step 3: once the batch's sync returned, commits it (the log, then the state) and
    /// gives each entry's outcome; a failed sync acknowledges nothing.
    ///
    /// # Errors
    /// As [`Ledger::submit`].
    pub fn finish(
        &mut self,
        batch: WrittenBatch,
        synced: std::io::Result<()>,
    ) -> Result<Vec<Outcome<RuleError>>, LedgerError> {
        let result = self.log.finish(batch.written, synced);
        self.settle(result, batch.fault)
    }

    /// Changes the operator's key to `next_key`, both keys signing during the change:
    /// appends the operator's `key_rotated` (signed by the current and the next key) in a
    /// batch of its own whose state note and checkpoint both keys sign
    /// ([`Log::append_handover`]); from then on the log, and every operator entry, is
    /// signed by the next key, which is the data directory's `operator.key`.
    ///
    /// # Errors
    /// As [`Ledger::submit`]; the rules' refusal comes back as the outcome (and nothing
    /// changes).
    pub fn rotate_operator_key(
        &mut self,
        next_key: ed25519_dalek::SigningKey,
        entry_id: &str,
    ) -> Result<Outcome<RuleError>, LedgerError> {
        let config: super::objects::Config =
            super::get_object(&self.state, super::state::CONFIG_ID)
                .map_err(LedgerError::StateFault)?
                .ok_or(LedgerError::NoGenesis)?;
        let current = self.log.signer();
        let next = NoteSigner::new(current.name().clone(), next_key.clone());
        let payload = serde_json::json!({
            "kind": "key_rotated", "id": entry_id, "ledger": config.origin,
            "party": config.operator.as_str(),
            "old_key": current.vkey(), "new_key": next.vkey(),
        });
        let envelope = Envelope::sign(
            PAYLOAD_TYPE,
            payload.to_string().as_bytes(),
            &[current, &next],
        )
        .and_then(|e| e.verify(&KeyCache::self_certifying()))
        .map_err(LedgerError::HandoverEnvelope)?;
        let mut rules = Rules {
            state: &mut self.state,
            top: BTreeMap::new(),
            fault: None,
        };
        let result = self
            .log
            .append_handover(vec![envelope], &mut rules, next_key);
        let fault = rules.fault.take();
        let mut outcomes = self.settle(result, fault)?;
        outcomes.pop().ok_or_else(|| {
            LedgerError::Log(LogError::Derived {
                reason: "an append of one entry gave no outcome".into(),
            })
        })
    }

    /// Commits the state of an append (or drops it if the append failed) and maps the
    /// outcomes.
    fn settle(
        &mut self,
        result: Result<Vec<Outcome<RuleError>>, LogError>,
        fault: Option<RuleError>,
    ) -> Result<Vec<Outcome<RuleError>>, LedgerError> {
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(e) => {
                self.state.discard();
                return Err(e.into());
            }
        };
        self.state.commit(self.log.size())?;
        if let Some(fault) = fault {
            return Err(LedgerError::StateFault(fault));
        }
        outcomes
            .into_iter()
            .map(|o| match o {
                Outcome::Refused(RuleError::IdReused { id, first_index }) => {
                    // The log's entry-id check ran first, so this is another statement
                    // under a client id already used.
                    let existing = self.log.entry(first_index)?.envelope.entry_id();
                    Ok(Outcome::ExistsWithDifferentPayload {
                        client_id: id.into_bytes(),
                        existing,
                    })
                }
                other => Ok(other),
            })
            .collect()
    }

    /// The log beneath.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The state, for queries ([`super::queries`]).
    pub fn state(&self) -> &SledState {
        &self.state
    }

    /// Writes the state's last committed entries to sled, flushes everything derived
    /// and closes.
    ///
    /// # Errors
    /// I/O.
    pub fn close(mut self) -> Result<(), LedgerError> {
        // The state's last entries to sled first: the log's close flushes the database.
        self.state.persist()?;
        // Then the map, so that the next open need not rebuild it: a cache, so a
        // failure costs that open a rebuild, not this close.
        if let Err(why) = self.state.seal_map() {
            tracing::warn!(%why, "the state map was not sealed; the next open rebuilds it");
        }
        self.log.close()?;
        Ok(())
    }
}

/// Where a ledger's state map keeps its nodes: in files of its data directory (a cache
/// sealed at a clean close, rebuilt after a crash: see [`super::state_map`]), beside the
/// store whose lock gives the directory to one process.
pub(super) fn map_nodes(log: &Log) -> Nodes {
    Nodes::InDir(log.dir().to_path_buf())
}

/// Feeds one logged entry through the rules into `state` (staged; the caller commits).
///
/// # Errors
/// [`LedgerError::Diverged`] when the rules refuse an entry the log holds.
pub fn replay_one(state: &mut SledState, leaf: &Leaf) -> Result<(), LedgerError> {
    let ctx = EntryContext::of_leaf(leaf);
    if leaf.envelope.payload_type() != PAYLOAD_TYPE {
        return Err(LedgerError::Diverged {
            index: leaf.index,
            code: "payload_type_unsupported",
            reason: leaf.envelope.payload_type().to_string(),
        });
    }
    match decide(&*state, &ctx, leaf.envelope.payload()) {
        Ok(changes) => {
            state.stage(changes);
            Ok(())
        }
        Err(e) if is_store_fault(&e) => Err(LedgerError::StateFault(e)),
        Err(e) => Err(LedgerError::Diverged {
            index: leaf.index,
            code: e.code(),
            reason: e.to_string(),
        }),
    }
}
