//! The log on disk: one writer appending group-committed batches, readers serving
//! entries, checkpoints and proofs.
//!
//! A log directory holds:
//! - `log.json`: the origin and the operator's verifier key, written once by [`Log::create`];
//! - `operator.key`: the operator's current Ed25519 key, PKCS#8 PEM, mode 0600 (the key
//!   `log.json` names until the first handover, [`Log::append_handover`]);
//! - `operator.key.next`: only during a handover, the next key (see there);
//! - `log.dat`: the append-only record file, **the source of truth** ([`super::records`]);
//! - `tree/`, `offsets.dat`, `index.sled/`: derived from `log.dat`, rebuilt when behind.
//!
//! An append goes: verified envelopes in → deduplicated (entry id, client id) → admitted
//! by the layer above ([`Admission`]) → leaves and one signed checkpoint written as
//! records → one fdatasync → derived stores updated → receipts out. Nothing is
//! acknowledged before the fdatasync, and the checkpoint record is the commit marker:
//! on open, leaves after the last checkpoint record were never acknowledged and are cut.
//!
//! Architecture invariant: this module knows nothing of lessons. What a client id is,
//! and whether an entry is allowed, come from the layer above through [`Idempotency`]
//! and [`Admission`].

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::log::compact::Frontier;
use crate::log::envelope::{EntryId, Envelope, VerifiedEnvelope};
use crate::log::hash::{leaf_hash, Hash};
use crate::log::id_index::IdIndex;
use crate::log::index::{Head, Index, IndexBatch, IndexError};
use crate::log::leaf::{self, Leaf, LeafError};
use crate::log::note::{Checkpoint, KeyName, NoteSigner, NoteVerifier, Origin, SignedCheckpoint};
use crate::log::offsets::Offsets;
use crate::log::proof::{self, ProofError};
use crate::log::records::{RecordFile, RecordKind, RecordsError, Seal};
use crate::log::state_note::StateNote;
use crate::log::tree_file::TreeFile;
use crate::log::{keyfile, records};

/// The file names inside a log directory.
pub mod layout {
    /// The log's fixed identity, [`super::LogConfig`], written once.
    pub const CONFIG: &str = "log.json";
    /// The operator's current Ed25519 key, PKCS#8 PEM, mode 0600.
    pub const OPERATOR_KEY: &str = "operator.key";
    /// The next operator key, present only during a key handover.
    pub const OPERATOR_KEY_NEXT: &str = "operator.key.next";
    /// The record file, the source of truth ([`crate::log::records`]).
    pub const RECORDS: &str = "log.dat";
    /// Directory of the Merkle node hashes, derived ([`crate::log::tree_file`]).
    pub const TREE: &str = "tree";
    /// Leaf index → record offset in `log.dat`, derived ([`crate::log::offsets`]).
    pub const OFFSETS: &str = "offsets.dat";
    /// Leaf index → entry id, derived ([`crate::log::id_index`]).
    pub const IDS: &str = "ids.dat";
    /// The sled index of client ids and the head, derived ([`crate::log::index`]).
    pub const INDEX: &str = "index.sled";
}

/// What a read asked for past the log, said in the terms of the request, so that the
/// message names the number that was wrong (a tree size too large is not reported as
/// an index out of range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Range {
    /// An entry index at or past the tree size it is read in.
    #[error("index {index} is out of range for tree size {size}")]
    Index {
        /// The entry index asked for.
        index: u64,
        /// The tree size it was asked in, in entries.
        size: u64,
    },
    /// A subtree node whose leaves are not all in the log.
    #[error("node {index} at level {level} is not complete in a tree of size {size}")]
    Node {
        /// The node's level (0 for leaves).
        level: u8,
        /// The node's index within its level.
        index: u64,
        /// The tree size, in entries.
        size: u64,
    },
    /// A tree size larger than the log.
    #[error("tree size {size} is larger than the log ({log_size} entries)")]
    TreeSize {
        /// The tree size asked for, in entries.
        size: u64,
        /// The log's size, in entries.
        log_size: u64,
    },
    /// A consistency proof asked from a larger tree to a smaller one.
    #[error("from {from} is larger than to {to}")]
    SizesReversed {
        /// The tree size the proof was asked from, in entries.
        from: u64,
        /// The tree size the proof was asked to, in entries.
        to: u64,
    },
}

/// The log's fixed identity, `log.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The checkpoint origin line (C2SP tlog-checkpoint), e.g. `lessons.example/shanghai`.
    pub origin: String,
    /// The operator's first C2SP signed-note verifier key: checkpoints are signed by it
    /// until the first key handover, and verifiers follow the handovers from it.
    pub operator_vkey: String,
    /// The leaf format version, [`leaf::LEAF_VERSION`].
    pub leaf_version: u8,
}

/// How the layer above names the idempotency key of an entry: two different entries
/// may not share one. The log layer cannot know it (it would have to read payloads), so
/// it is told; the same function is used again when derived indexes are rebuilt.
pub trait Idempotency: Send + Sync {
    /// The client-chosen id of this entry, if it has one.
    fn client_id(&self, envelope: &Envelope) -> Option<Vec<u8>>;
}

/// No client ids: deduplication by entry id only (the raw log).
pub struct EntryIdOnly;

impl Idempotency for EntryIdOnly {
    fn client_id(&self, _: &Envelope) -> Option<Vec<u8>> {
        None
    }
}

/// The layer above's say on each new entry, called inside the writer in log order.
pub trait Admission {
    /// Why an entry is refused.
    type Refusal;
    /// Decides on one entry that would get `index` and `time_micros`. An accepted entry
    /// must be staged so that later entries of the same batch see it.
    ///
    /// # Errors
    /// The refusal; the log then writes nothing for this entry.
    fn admit(
        &mut self,
        index: u64,
        time_micros: u64,
        entry: &VerifiedEnvelope,
    ) -> Result<(), Self::Refusal>;

    /// 32 bytes committing to the state after the entries admitted so far (the layer
    /// above's state map root), which the log signs into a state note just before the
    /// batch's checkpoint ([`crate::log::state_note`]);
    /// `None` for no note. Called once per batch that appends anything.
    fn state_digest(&mut self) -> Option<[u8; 32]> {
        None
    }
}

/// Admits everything (the raw log, no rules above it).
pub struct AdmitAll;

impl Admission for AdmitAll {
    type Refusal = std::convert::Infallible;
    fn admit(&mut self, _: u64, _: u64, _: &VerifiedEnvelope) -> Result<(), Self::Refusal> {
        Ok(())
    }
}

/// Proof that an entry is in the log: where, what, and an RFC 9162 inclusion proof
/// against a checkpoint the operator signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The entry's leaf index in the log, from 0.
    pub index: u64,
    /// The entry's ledger time (µs since the epoch), as in its leaf: with the envelope
    /// and `index` it rebuilds the leaf, so the receipt ties `entry_id` to `leaf_hash`
    /// without fetching the entry.
    pub time_micros: u64,
    /// BLAKE3 of the envelope's PAE, lowercase hex.
    pub entry_id: String,
    /// The Merkle leaf hash, standard base64.
    pub leaf_hash: String,
    /// The signed checkpoint (C2SP signed note) the proof is against.
    pub checkpoint: String,
    /// Sibling hashes from the leaf up, standard base64.
    pub inclusion_proof: Vec<String>,
}

/// What became of one submitted entry.
#[derive(Debug)]
pub enum Outcome<R> {
    /// Newly appended and durable.
    Ok(Receipt),
    /// The same statement was already in the log: its first receipt (against the
    /// current checkpoint).
    Exists(Receipt),
    /// Another entry already uses this client id.
    ExistsWithDifferentPayload {
        /// The client id, as [`Idempotency::client_id`] gave it.
        client_id: Vec<u8>,
        /// The entry id of the entry that already holds it.
        existing: EntryId,
    },
    /// The layer above refused it.
    Refused(R),
}

/// Everything that can go wrong opening, appending to or reading a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Code `log_exists`: [`Log::create`] found a log in the directory already.
    #[error("{path}: a log already exists here; refusing to overwrite it")]
    AlreadyExists {
        /// The log directory.
        path: PathBuf,
    },
    /// Code `log_not_found`: no log in the directory.
    #[error("{path}: no log here (run `lesson-ledger init` first)")]
    NotFound {
        /// The log directory.
        path: PathBuf,
    },
    /// Code `io`: a file of the log directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Code `log_config_invalid`: the log's identity is invalid (`log.json` read back, or
    /// the origin or key it is created with).
    #[error("log.json is invalid: {reason}")]
    Config {
        /// What is wrong, in words.
        reason: String,
    },
    /// Code `operator_key_invalid`: an operator key cannot sign or be written, or is not
    /// the key the log expects.
    #[error("operator key: {reason}")]
    Key {
        /// What is wrong, in words.
        reason: String,
    },
    /// The record file failed; the code is the [`RecordsError`]'s (`records_…`).
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// Code `derived_data_damaged`: a derived store (`tree/`, `offsets.dat`, `ids.dat`,
    /// `index.sled/`) failed or disagrees with `log.dat`.
    #[error("derived data: {reason}")]
    Derived {
        /// What is wrong, in words.
        reason: String,
    },
    /// A derived store failed, with its own error as the source.
    #[error("derived data: {0}")]
    DerivedStore(#[from] DerivedError),
    /// Code `log_damaged`: what `log.dat` holds is not a valid log (a record, leaf,
    /// checkpoint or state note that does not check).
    #[error("log damaged at index {index}: {what}")]
    Damaged {
        /// The entry index (or tree size) at which the damage was found.
        index: u64,
        /// What is wrong, in words.
        what: String,
    },
    /// A proof could not be built; the code is the [`ProofError`]'s.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A leaf did not decode; the code is the [`LeafError`]'s.
    #[error(transparent)]
    Leaf(#[from] LeafError),
    /// Code `out_of_range`: a read past the log.
    #[error("{range}")]
    OutOfRange {
        /// What was asked for, in the request's terms.
        range: Range,
    },
    /// Code `log_failed`: an earlier write failed, so the log refuses writes until it is
    /// reopened.
    #[error("an earlier write failed; reopen the log to recover from log.dat")]
    Failed,
    /// Code `batch_too_large`: more entries in one append than allowed.
    #[error("batch of {len} entries exceeds the {max} allowed")]
    BatchTooLarge {
        /// Entries in the batch.
        len: usize,
        /// The most allowed in one batch, in entries.
        max: usize,
    },
    /// Code `import_refused`: an imported batch failed a check ([`Log::import`]);
    /// nothing was written.
    #[error("import refused: {what}")]
    Import {
        /// The check that failed, in words.
        what: String,
    },
}

impl LogError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            LogError::AlreadyExists { .. } => "log_exists",
            LogError::NotFound { .. } => "log_not_found",
            LogError::Io { .. } => "io",
            LogError::Config { .. } => "log_config_invalid",
            LogError::Key { .. } => "operator_key_invalid",
            LogError::Records(e) => e.code(),
            LogError::Derived { .. } | LogError::DerivedStore(_) => "derived_data_damaged",
            LogError::Damaged { .. } => "log_damaged",
            LogError::Proof(e) => e.code(),
            LogError::Leaf(e) => e.code(),
            LogError::OutOfRange { .. } => "out_of_range",
            LogError::BatchTooLarge { .. } => "batch_too_large",
            LogError::Failed => "log_failed",
            LogError::Import { .. } => "import_refused",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`Log::open`] found and did, for the operator's log.
#[derive(Debug, Default, Clone)]
pub struct OpenReport {
    /// Bytes of an unacknowledged torn tail cut from `log.dat`, and why.
    pub cut: Option<(u64, String)>,
    /// Entries replayed into the derived stores because they were behind.
    pub replayed: u64,
    /// Where a database sled called corrupt was moved before it was rebuilt.
    pub index_moved_aside: Option<PathBuf>,
}

/// An open log: the single writer, and the reads it serves.
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    origin: Origin,
    signer: NoteSigner,
    verifier: NoteVerifier,
    idempotency: Box<dyn Idempotency>,
    records: RecordFile,
    tree: TreeFile,
    offsets: Offsets,
    ids: IdIndex,
    index: Index,
    frontier: Frontier,
    last_time_micros: u64,
    checkpoint: SignedCheckpoint,
    /// The latest state note (its text, as logged) and its size, if any batch has one.
    state_note: Option<(u64, String)>,
    /// Set while a write is in progress and left set if it fails.
    failed: bool,
    /// During [`Log::append_handover`] only: the next key, which signs the batch's notes
    /// beside the current one.
    handover: Option<NoteSigner>,
}

mod batch;
mod failpoint;
mod handover;
mod import;
mod open;
mod reads;

pub use batch::{Planned, Written};
pub use import::{ImportBatch, ImportedLeaf};
pub use open::{read_config, DerivedError};

impl Log {
    /// The log's identity.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The directory holding this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The operator's current checkpoint verifier (the key of `log.json`, or the last
    /// one handed over to).
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// The operator's current signing key.
    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The latest signed checkpoint.
    pub fn checkpoint(&self) -> &SignedCheckpoint {
        &self.checkpoint
    }

    /// The latest state note's size and signed text, as logged (`None` before the first
    /// batch with one). Under the same lock as [`Log::checkpoint`] it is the note of the
    /// checkpoint's batch, unless that batch had none.
    pub fn state_note(&self) -> Option<(u64, &str)> {
        self.state_note
            .as_ref()
            .map(|(size, text)| (*size, text.as_str()))
    }

    /// The sled database, for derived state kept by the layer above.
    pub fn db(&self) -> &sled::Db {
        self.index.db()
    }

    fn receipt_for(
        &self,
        index: u64,
        time_micros: u64,
        entry_id: EntryId,
        hash: Hash,
        size: u64,
    ) -> Result<Receipt, LogError> {
        let proof = proof::inclusion_proof(&self.tree.reader(), index, size)?;
        Ok(Receipt {
            index,
            time_micros,
            entry_id: entry_id.to_string(),
            leaf_hash: hash.to_base64(),
            checkpoint: self.checkpoint.text().to_string(),
            inclusion_proof: proof.iter().map(Hash::to_base64).collect(),
        })
    }

    /// Flushes derived stores to disk, and makes the seal of the last batch durable (its
    /// records are synced already; its seal would otherwise wait for the next batch's
    /// sync or the kernel's writeback).
    ///
    /// # Errors
    /// I/O.
    pub fn close(mut self) -> Result<(), LogError> {
        self.records.sync()?;
        self.tree.sync().map_err(derived)?;
        self.offsets.sync().map_err(derived)?;
        self.ids.sync().map_err(derived)?;
        self.index.flush().map_err(derived)?;
        Ok(())
    }
}

/// A fault of a derived store: the log file is fine, what was derived from it is not.
fn derived(e: impl std::fmt::Display) -> LogError {
    LogError::Derived {
        reason: e.to_string(),
    }
}

fn leaf_offset(offsets: &Offsets, index: u64) -> Result<u64, LogError> {
    offsets
        .get(index)
        .map_err(derived)?
        .ok_or_else(|| LogError::Derived {
            reason: format!("no offset stored for entry {index}"),
        })
}

/// Ledger time: the wall clock in µs, but always strictly after the previous entry.
fn next_time(previous: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    now.max(previous.saturating_add(1))
}

fn sign_checkpoint(
    origin: &Origin,
    size: u64,
    root: Hash,
    signer: &NoteSigner,
) -> SignedCheckpoint {
    SignedCheckpoint::sign(
        Checkpoint {
            origin: origin.clone(),
            size,
            root,
        },
        signer,
    )
}
