//! The auditor: re-reads a whole log directory from disk, trusting nothing derived.
//!
//! For every record: framing and checksum; for every leaf: its index follows the last,
//! its ledger time is strictly later, it decodes canonically, every signature verifies
//! (strict Ed25519 over DSSE PAE), and its leaf hash goes into a fresh Merkle tree; for
//! every checkpoint: it is signed by the operator key, names the log's origin, and its
//! size and root are exactly those of the tree recomputed so far. Finally the derived
//! index must not claim more than the log holds, and a checkpoint the auditor brings
//! from outside (a receipt, an earlier audit) must be a prefix of this log.
//!
//! The first problem found is reported precisely — byte offset, entry index, what,
//! expected and found — and the audit stops there: after one problem, later ones are
//! consequences, not news.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::log::hash::Hash;
use crate::log::index::Index;
use crate::log::leaf::Leaf;
use crate::log::note::{Checkpoint, NoteVerifier, SignedCheckpoint};
use crate::log::records::{self, RecordKind};
use crate::log::state_note::StateNote;
use crate::log::store::{layout, read_config, LogError};

mod ahead;
mod run;

use run::Run;

/// What an auditor brings from outside the directory.
#[derive(Default)]
pub struct AuditOptions {
    /// The operator key the auditor trusts. Without it, the key in `log.json` is used —
    /// which proves internal consistency, not who signed.
    pub operator_vkey: Option<String>,
    /// A signed checkpoint obtained earlier (a receipt's, a witness's): the log must
    /// contain exactly that tree as a prefix.
    pub known_checkpoint: Option<String>,
}

/// One problem, precisely.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Byte offset in `log.dat` of the record concerned.
    pub offset: u64,
    /// The entry index concerned, when there is one.
    pub index: Option<u64>,
    /// What was checked (a record, a signature, a root, …).
    pub what: String,
    /// What it should have been.
    pub expected: String,
    /// What the log holds.
    pub found: String,
    /// The layer above's own error, when it is the one that refused (`found` is its
    /// text): kept as [`std::error::Error::source`].
    pub source: Option<std::sync::Arc<VisitError>>,
}

/// Two findings are the same problem at the same place; the source is not compared.
impl PartialEq for Finding {
    fn eq(&self, other: &Finding) -> bool {
        (
            self.offset,
            self.index,
            &self.what,
            &self.expected,
            &self.found,
        ) == (
            other.offset,
            other.index,
            &other.what,
            &other.expected,
            &other.found,
        )
    }
}

impl Eq for Finding {}

impl std::error::Error for Finding {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(VisitError::get_ref)
    }
}

/// Why the layer above refuses what the audit showed it: its own error, kept as the
/// source (the log layer cannot name the ledger's error types, so it holds them boxed).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct VisitError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl VisitError {
    /// The layer above's error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> VisitError {
        VisitError(Box::new(e))
    }

    /// The layer above's error itself (to downcast to its own type).
    pub fn get_ref(&self) -> &(dyn std::error::Error + 'static) {
        &*self.0
    }
}

/// A refusal said in words only (a comparison's two sides, say).
impl From<String> for VisitError {
    fn from(text: String) -> VisitError {
        VisitError(text.into())
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}", self.offset)?;
        if let Some(index) = self.index {
            write!(f, ", entry {index}")?;
        }
        write!(f, ": {}", self.what)?;
        if !self.expected.is_empty() || !self.found.is_empty() {
            write!(f, " (expected {}, found {})", self.expected, self.found)?;
        }
        Ok(())
    }
}

/// What a clean audit establishes.
#[derive(Debug, Clone)]
pub struct AuditSummary {
    /// The log's origin.
    pub origin: String,
    /// Entries audited.
    pub entries: u64,
    /// Signatures verified.
    pub signatures: u64,
    /// Checkpoints verified.
    pub checkpoints: u64,
    /// Bytes of `log.dat` read.
    pub bytes: u64,
    /// The root hash of the whole tree.
    pub root: Hash,
    /// How long the audit took.
    pub elapsed: Duration,
}

/// Why an audit did not pass.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log is not what it claims: the first problem.
    #[error(transparent)]
    Finding(Finding),
    /// The directory could not be read at all.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What the layer above sees of the log as the audit reads it, in log order.
pub trait AuditVisitor {
    /// A leaf whose record, order and signatures have been checked. An `Err` is
    /// reported as a finding at that entry.
    ///
    /// # Errors
    /// What the layer above finds wrong with the entry.
    fn leaf(&mut self, leaf: &Leaf) -> Result<(), VisitError>;

    /// A state note signed by the operator (checked), committing to the state after
    /// `note.size` entries.
    ///
    /// # Errors
    /// When the state the layer above computed differs.
    fn state_note(&mut self, note: &StateNote) -> Result<(), VisitError> {
        let _ = note;
        Ok(())
    }

    /// The operator key (C2SP verifier key) the layer above's statements name after the
    /// leaves seen so far; `None` when it names none (the log alone). When it differs
    /// from the key the audit trusts, the next state note and checkpoint must be signed
    /// by both (the handover), and the audit trusts the new key from that checkpoint on.
    ///
    /// # Errors
    /// When the layer above cannot tell (its state is inconsistent).
    fn operator_vkey(&mut self) -> Result<Option<String>, VisitError> {
        Ok(None)
    }
}

/// Audits the log alone.
struct LogOnly;

impl AuditVisitor for LogOnly {
    fn leaf(&mut self, _: &Leaf) -> Result<(), VisitError> {
        Ok(())
    }
}

/// Audits the log in `dir`. `progress` is told the bytes read so far and the total.
///
/// # Errors
/// [`AuditError::Finding`] with the first problem; [`AuditError::Log`] when the
/// directory cannot be read.
pub fn audit(
    dir: &Path,
    options: &AuditOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<AuditSummary, AuditError> {
    audit_with(dir, options, progress, &mut LogOnly)
}

fn finding(
    offset: u64,
    index: Option<u64>,
    what: &str,
    expected: String,
    found: String,
) -> AuditError {
    AuditError::Finding(Finding {
        offset,
        index,
        what: what.to_string(),
        expected,
        found,
        source: None,
    })
}

/// [`audit`], showing every checked leaf and state note to `visitor` (the layer above
/// replays entries under its rules in the same pass).
///
/// # Errors
/// As [`audit`]; a visitor's `Err` becomes a finding.
pub fn audit_with(
    dir: &Path,
    options: &AuditOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
    visitor: &mut dyn AuditVisitor,
) -> Result<AuditSummary, AuditError> {
    let started = Instant::now();
    let config = read_config(dir)?;
    let (verifier, known) = trust(&config.operator_vkey, options)?;
    let (file, seal) = records::open_reader(dir.join(layout::RECORDS)).map_err(|e| match e {
        records::RecordsError::BadHeader { .. }
        | records::RecordsError::OldFormat { .. }
        | records::RecordsError::SealDamaged { .. } => finding(
            0,
            None,
            "log.dat header is damaged",
            format!("{:?} and a valid seal", records::MAGIC),
            e.to_string(),
        ),
        other => AuditError::Log(other.into()),
    })?;
    let total = file.len();
    let mut run = Run::new(&config.origin, verifier, known, total);
    let (last_kind, last_offset) = run.read_all(&file, progress, visitor)?;
    let size = run.frontier.size();
    if last_kind != Some(RecordKind::Checkpoint) {
        return Err(finding(
            last_offset,
            Some(size),
            "log does not end with a checkpoint: its last batch was never committed",
            "a checkpoint record".into(),
            "end of file".into(),
        ));
    }
    if let (Some(false), Some(k)) = (run.known_matched, &run.known) {
        return Err(finding(
            last_offset,
            None,
            "the log does not contain the checkpoint brought to the audit",
            format!("size {} root {}", k.size, k.root.to_base64()),
            format!("size {size}"),
        ));
    }
    // The seal is written with each commit: the file must reach it, with its leaves.
    if last_offset < seal.end || (last_offset == seal.end && size != seal.leaves) {
        return Err(finding(
            last_offset,
            Some(size),
            "log.dat holds fewer entries than its header seals as committed (truncated log)",
            format!("{} entries ending at byte {}", seal.leaves, seal.end),
            format!("{size} entries ending at byte {last_offset}"),
        ));
    }
    check_index_not_ahead(dir, size, last_offset)?;
    run.summary.root = run.frontier.root();
    run.summary.elapsed = started.elapsed();
    Ok(run.summary)
}

/// The operator key the audit trusts (the auditor's, which `log.json` must name too),
/// and the checkpoint the auditor brings, verified under it.
fn trust(
    config_vkey: &str,
    options: &AuditOptions,
) -> Result<(NoteVerifier, Option<Checkpoint>), AuditError> {
    let trusted_vkey = options
        .operator_vkey
        .clone()
        .unwrap_or_else(|| config_vkey.to_owned());
    if trusted_vkey != config_vkey {
        return Err(finding(
            0,
            None,
            "log.json names another operator key",
            trusted_vkey,
            config_vkey.to_owned(),
        ));
    }
    let verifier = NoteVerifier::from_vkey(&trusted_vkey).map_err(|e| LogError::Config {
        reason: e.to_string(),
    })?;
    let known = match &options.known_checkpoint {
        Some(text) => Some(
            SignedCheckpoint::parse_and_verify(text.as_bytes(), &verifier)
                .map_err(|e| {
                    finding(
                        0,
                        None,
                        "the checkpoint brought to the audit does not verify",
                        "signed by the operator".into(),
                        e.to_string(),
                    )
                })?
                .checkpoint()
                .clone(),
        ),
        None => None,
    };
    Ok((verifier, known))
}

/// The index is derived and written after each commit: it can lag, never lead. An index
/// that cannot be read is not a finding (it is not trusted for anything else).
fn check_index_not_ahead(dir: &Path, size: u64, last_offset: u64) -> Result<(), AuditError> {
    let index_path = dir.join(layout::INDEX);
    if let Some(index) = index_path
        .exists()
        .then(|| Index::open(&index_path).ok())
        .flatten()
    {
        if let Ok(Some(head)) = index.head() {
            if head.size > size {
                return Err(finding(
                    last_offset,
                    Some(size),
                    "log.dat holds fewer entries than were acknowledged (truncated log)",
                    format!("at least {} entries", head.size),
                    format!("{size} entries"),
                ));
            }
        }
    }
    Ok(())
}
