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

use crate::log::compact::Frontier;
use crate::log::envelope::KeyCache;
use crate::log::hash::Hash;
use crate::log::index::Index;
use crate::log::leaf::Leaf;
use crate::log::leaf_check::{check_leaves, CheckedLeaf, LeafOrder, LeafProblem};
use crate::log::note::{Checkpoint, NoteVerifier, SignedCheckpoint};
use crate::log::records::{self, Record, RecordKind};
use crate::log::state_note::StateNote;
use crate::log::store::{layout, read_config, LogError};

/// Leaves verified together, in parallel, between two sequential tree updates.
const AUDIT_CHUNK_RECORDS: usize = 4096;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Byte offset in `log.dat` of the record concerned.
    pub offset: u64,
    /// The entry index concerned, when there is one.
    pub index: Option<u64>,
    pub what: String,
    pub expected: String,
    pub found: String,
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
    pub origin: String,
    pub entries: u64,
    pub signatures: u64,
    pub checkpoints: u64,
    pub bytes: u64,
    pub root: Hash,
    pub elapsed: Duration,
}

/// Why an audit did not pass.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log is not what it claims: the first problem.
    #[error("{0}")]
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
    fn leaf(&mut self, leaf: &Leaf) -> Result<(), String>;

    /// A state note signed by the operator (checked), committing to the state after
    /// `note.size` entries.
    ///
    /// # Errors
    /// When the state the layer above computed differs.
    fn state_note(&mut self, note: &StateNote) -> Result<(), String> {
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
    fn operator_vkey(&mut self) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// Audits the log alone.
struct LogOnly;

impl AuditVisitor for LogOnly {
    fn leaf(&mut self, _: &Leaf) -> Result<(), String> {
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
    let trusted_vkey = options
        .operator_vkey
        .clone()
        .unwrap_or_else(|| config.operator_vkey.clone());
    if trusted_vkey != config.operator_vkey {
        return Err(finding(
            0,
            None,
            "log.json names another operator key",
            trusted_vkey,
            config.operator_vkey,
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
    let mut run = Run {
        keys: KeyCache::self_certifying(),
        verifier,
        origin: config.origin.clone(),
        frontier: Frontier::new(),
        completed: Vec::new(),
        order: LeafOrder::default(),
        known_matched: known
            .as_ref()
            .map(|k| k.size == 0 && k.root == Hash::empty_root()),
        known,
        summary: AuditSummary {
            origin: config.origin.clone(),
            entries: 0,
            signatures: 0,
            checkpoints: 0,
            bytes: total,
            root: Hash::empty_root(),
            elapsed: Duration::ZERO,
        },
    };
    let mut last_kind = None;
    let mut last_offset = records::HEADER_LEN;
    let mut iter = file
        .iter(records::HEADER_LEN, total)
        .map_err(|e| AuditError::Log(e.into()))?;
    loop {
        let mut chunk: Vec<Record> = Vec::with_capacity(AUDIT_CHUNK_RECORDS);
        let mut damage = None;
        for record in iter.by_ref().take(AUDIT_CHUNK_RECORDS) {
            match record {
                Ok(r) => chunk.push(r),
                Err(e) => {
                    damage = Some(e);
                    break;
                }
            }
        }
        // What was read before any damage is checked first: it may hold an earlier problem.
        run.process_chunk(&chunk, visitor)?;
        if let Some(last) = chunk.last() {
            last_kind = Some(last.kind);
            last_offset = last.end();
        }
        if let Some(e) = damage {
            let at = e.offset().unwrap_or(last_offset);
            return Err(finding(
                at,
                Some(run.frontier.size()),
                "record is damaged",
                "a well-formed record with a valid checksum".into(),
                e.to_string(),
            ));
        }
        if chunk.is_empty() {
            break;
        }
        progress(last_offset, total);
    }
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
    // The index is derived and written after each commit: it can lag, never lead.
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
    run.summary.root = run.frontier.root();
    run.summary.elapsed = started.elapsed();
    Ok(run.summary)
}

/// A finding for a leaf the shared checker refused, worded as the audit reports it.
fn leaf_finding(at: u64, index: u64, problem: &LeafProblem) -> AuditError {
    let (what, expected, found) = match problem {
        LeafProblem::OutOfPlace { expected, found } => (
            "entry out of place (removed, duplicated or reordered record)",
            format!("index {expected}"),
            format!("index {found}"),
        ),
        LeafProblem::TimeNotIncreasing { previous, found } => (
            "ledger time does not increase",
            format!("after {previous}"),
            found.to_string(),
        ),
        LeafProblem::Undecodable(_) | LeafProblem::Signature(_) => (
            "leaf is invalid",
            "a canonical, correctly signed leaf".to_string(),
            problem.to_string(),
        ),
    };
    finding(at, Some(index), what, expected, found)
}

/// The state of one audit as it reads the file.
struct Run {
    keys: KeyCache,
    verifier: NoteVerifier,
    origin: String,
    frontier: Frontier,
    completed: Vec<(u8, u64, Hash)>,
    order: LeafOrder,
    known: Option<Checkpoint>,
    /// Whether the tree at the known checkpoint's size had its root (None: no such checkpoint).
    known_matched: Option<bool>,
    summary: AuditSummary,
}

impl Run {
    /// The operator key the layer above names now, if it is not the key trusted so far:
    /// the note at hand is then the handover's and must carry both signatures.
    fn handover(
        &self,
        visitor: &mut dyn AuditVisitor,
    ) -> Result<Option<NoteVerifier>, (String, String, String)> {
        let named = visitor.operator_vkey().map_err(|e| {
            (
                "the ledger's operator key cannot be read".to_string(),
                String::new(),
                e,
            )
        })?;
        match named {
            Some(vkey) if vkey != self.verifier.to_vkey() => {
                NoteVerifier::from_vkey(&vkey).map(Some).map_err(|e| {
                    (
                        "the ledger names an operator key that is not a verifier key".to_string(),
                        String::new(),
                        e.to_string(),
                    )
                })
            }
            _ => Ok(None),
        }
    }

    fn process_chunk(
        &mut self,
        chunk: &[Record],
        visitor: &mut dyn AuditVisitor,
    ) -> Result<(), AuditError> {
        // The expensive part — decoding, signature checks, leaf hashes — runs on all
        // cores, through the checker the remote audit uses too; only the order and the
        // tree update are sequential.
        let leaves: Vec<&[u8]> = chunk
            .iter()
            .filter(|r| r.kind == RecordKind::Leaf)
            .map(|r| r.body.as_slice())
            .collect();
        let mut checked = check_leaves(&leaves, &self.keys).into_iter();
        for record in chunk {
            let at = record.offset;
            let index = self.frontier.size();
            let fail = |what: &str, expected: String, found: String| {
                finding(at, Some(index), what, expected, found)
            };
            match record.kind {
                RecordKind::Leaf => {
                    let Some(checked) = checked.next() else {
                        // check_leaves yields one result per leaf record given.
                        return Err(fail(
                            "internal: leaf not checked",
                            String::new(),
                            String::new(),
                        ));
                    };
                    let CheckedLeaf { leaf, hash } = checked
                        .and_then(|c| self.order.accept(&c.leaf).map(|()| c))
                        .map_err(|problem| leaf_finding(at, index, &problem))?;
                    visitor.leaf(&leaf).map_err(|problem| {
                        fail(
                            "entry breaks the ledger's rules",
                            "an entry the rules accept".into(),
                            problem,
                        )
                    })?;
                    self.completed.clear();
                    self.frontier
                        .push(hash, &mut self.completed)
                        .map_err(|e| fail("the tree cannot grow", String::new(), e.to_string()))?;
                    self.summary.entries += 1;
                    self.summary.signatures += leaf.envelope.signatures().len() as u64;
                    if let Some(k) = &self.known {
                        if k.size == self.frontier.size() {
                            self.known_matched = Some(k.root == self.frontier.root());
                        }
                    }
                }
                RecordKind::Checkpoint => {
                    let next = self.handover(visitor).map_err(|e| fail(&e.0, e.1, e.2))?;
                    let signed = SignedCheckpoint::parse_and_verify(&record.body, &self.verifier)
                        .map_err(|e| {
                        fail(
                            "checkpoint is not signed by the operator key",
                            self.verifier.to_vkey(),
                            e.to_string(),
                        )
                    })?;
                    if let Some(next) = next {
                        signed.note().verify(&next).map_err(|e| {
                            fail(
                                "the operator's key changed but the checkpoint is not signed by the new key too",
                                next.to_vkey(),
                                e.to_string(),
                            )
                        })?;
                        // From this checkpoint on, the new key alone signs.
                        self.verifier = next;
                    }
                    let cp = signed.checkpoint();
                    if cp.origin.as_str() != self.origin {
                        return Err(fail(
                            "checkpoint names another origin",
                            self.origin.clone(),
                            cp.origin.as_str().to_string(),
                        ));
                    }
                    if cp.size != index {
                        return Err(fail(
                            "checkpoint size differs from the entries before it",
                            index.to_string(),
                            cp.size.to_string(),
                        ));
                    }
                    let root = self.frontier.root();
                    if cp.root != root {
                        return Err(fail(
                            "checkpoint root is not the root of the log",
                            root.to_base64(),
                            cp.root.to_base64(),
                        ));
                    }
                    self.summary.checkpoints += 1;
                }
                RecordKind::StateNote => {
                    let next = self.handover(visitor).map_err(|e| fail(&e.0, e.1, e.2))?;
                    let note =
                        StateNote::parse_and_verify(&record.body, &self.verifier).map_err(|e| {
                            fail(
                                "state note is not signed by the operator key",
                                self.verifier.to_vkey(),
                                e.to_string(),
                            )
                        })?;
                    if let Some(next) = &next {
                        StateNote::parse_and_verify(&record.body, next).map_err(|e| {
                            fail(
                                "the operator's key changed but the state note is not signed by the new key too",
                                next.to_vkey(),
                                e.to_string(),
                            )
                        })?;
                    }
                    if note.origin != self.origin || note.size != index {
                        return Err(fail(
                            "state note is for another log or size",
                            format!("{} at size {index}", self.origin),
                            format!("{} at size {}", note.origin, note.size),
                        ));
                    }
                    visitor.state_note(&note).map_err(|problem| {
                        fail(
                            "state_root_mismatch: the operator's signed state map root differs from the replayed state's",
                            "the replayed state's map root".into(),
                            problem,
                        )
                    })?;
                }
            }
        }
        Ok(())
    }
}
