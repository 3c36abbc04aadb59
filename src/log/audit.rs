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

use rayon::prelude::*;

use crate::log::compact::Frontier;
use crate::log::envelope::KeyCache;
use crate::log::hash::{leaf_hash, Hash};
use crate::log::index::Index;
use crate::log::leaf::Leaf;
use crate::log::note::{Checkpoint, NoteVerifier, SignedCheckpoint};
use crate::log::records::{self, Record, RecordKind};
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

/// Audits the log in `dir`. `progress` is told the bytes read so far.
///
/// # Errors
/// [`AuditError::Finding`] with the first problem; [`AuditError::Log`] when the
/// directory cannot be read.
pub fn audit(
    dir: &Path,
    options: &AuditOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<AuditSummary, AuditError> {
    audit_with(dir, options, progress, &mut |_| Ok(()))
}

/// Called with every leaf, in log order, once its record, order and signatures have
/// been checked; an `Err` is reported as a finding at that entry. The layer above uses
/// it to replay entries under its rules in the same pass.
pub type LeafVisitor<'a> = dyn FnMut(&Leaf) -> Result<(), String> + 'a;

/// [`audit`], showing every checked leaf to `visit`.
///
/// # Errors
/// As [`audit`]; a visitor's `Err` becomes a finding.
pub fn audit_with(
    dir: &Path,
    options: &AuditOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
    visit: &mut LeafVisitor<'_>,
) -> Result<AuditSummary, AuditError> {
    let started = Instant::now();
    let config = read_config(dir)?;
    let finding = |offset: u64, index: Option<u64>, what: &str, expected: String, found: String| {
        AuditError::Finding(Finding {
            offset,
            index,
            what: what.to_string(),
            expected,
            found,
        })
    };
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

    let file = records::open_reader(dir.join(layout::RECORDS)).map_err(|e| match e {
        records::RecordsError::BadHeader { .. } => finding(
            0,
            None,
            "log.dat header is damaged",
            format!("{:?}", records::MAGIC),
            e.to_string(),
        ),
        other => AuditError::Log(other.into()),
    })?;
    let total = file.len();
    let keys = KeyCache::self_certifying();
    let mut frontier = Frontier::new();
    let mut completed = Vec::new();
    let mut last_time: Option<u64> = None;
    let mut summary = AuditSummary {
        origin: config.origin.clone(),
        entries: 0,
        signatures: 0,
        checkpoints: 0,
        bytes: total,
        root: Hash::empty_root(),
        elapsed: Duration::ZERO,
    };
    let mut last_kind = None;
    let mut last_offset = records::HEADER_LEN;
    let mut known_matched = known
        .as_ref()
        .map(|k| k.size == 0 && k.root == Hash::empty_root());

    let mut iter = file
        .iter(records::HEADER_LEN, total)
        .map_err(|e| AuditError::Log(e.into()))?;
    loop {
        let mut chunk: Vec<Record> = Vec::with_capacity(AUDIT_CHUNK_RECORDS);
        for record in iter.by_ref().take(AUDIT_CHUNK_RECORDS) {
            match record {
                Ok(r) => chunk.push(r),
                Err(e) => {
                    // Check what was read before the damage first: it may hold an earlier problem.
                    let at = e.offset().unwrap_or(last_offset);
                    process_chunk(
                        &chunk,
                        &keys,
                        &verifier,
                        &config.origin,
                        &mut frontier,
                        &mut completed,
                        &mut last_time,
                        &mut summary,
                        &known,
                        &mut known_matched,
                        visit,
                    )?;
                    return Err(finding(
                        at,
                        Some(frontier.size()),
                        "record is damaged",
                        "a well-formed record with a valid checksum".into(),
                        e.to_string(),
                    ));
                }
            }
        }
        if chunk.is_empty() {
            break;
        }
        let last = chunk.last().map(|r| (r.kind, r.end()));
        process_chunk(
            &chunk,
            &keys,
            &verifier,
            &config.origin,
            &mut frontier,
            &mut completed,
            &mut last_time,
            &mut summary,
            &known,
            &mut known_matched,
            visit,
        )?;
        if let Some((kind, end)) = last {
            last_kind = Some(kind);
            last_offset = end;
        }
        progress(last_offset, total);
    }
    if last_kind != Some(RecordKind::Checkpoint) {
        return Err(finding(
            last_offset,
            Some(frontier.size()),
            "log does not end with a checkpoint: its last batch was never committed",
            "a checkpoint record".into(),
            "end of file".into(),
        ));
    }
    if known_matched == Some(false) {
        let k = known
            .as_ref()
            .map(|k| format!("size {} root {}", k.size, k.root.to_base64()))
            .unwrap_or_default();
        return Err(finding(
            last_offset,
            None,
            "the log does not contain the checkpoint brought to the audit",
            k,
            format!("size {}", frontier.size()),
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
            if head.size > frontier.size() {
                return Err(finding(
                    last_offset,
                    Some(frontier.size()),
                    "log.dat holds fewer entries than were acknowledged (truncated log)",
                    format!("at least {} entries", head.size),
                    format!("{} entries", frontier.size()),
                ));
            }
        }
    }
    summary.root = frontier.root();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn process_chunk(
    chunk: &[Record],
    keys: &KeyCache,
    verifier: &NoteVerifier,
    origin: &str,
    frontier: &mut Frontier,
    completed: &mut Vec<(u8, u64, Hash)>,
    last_time: &mut Option<u64>,
    summary: &mut AuditSummary,
    known: &Option<Checkpoint>,
    known_matched: &mut Option<bool>,
    visit: &mut LeafVisitor<'_>,
) -> Result<(), AuditError> {
    // The expensive part — decoding, signature checks, leaf hashes — runs on all cores;
    // only the tree update is sequential.
    let checked: Vec<Result<(Option<Leaf>, Hash, usize), String>> = chunk
        .par_iter()
        .map(|record| match record.kind {
            RecordKind::Leaf => {
                let leaf =
                    Leaf::decode(&record.body).map_err(|e| format!("leaf does not decode: {e}"))?;
                let signatures = leaf.envelope.signatures().len();
                leaf.envelope
                    .clone()
                    .verify(keys)
                    .map_err(|e| format!("signature check failed: {e}"))?;
                Ok((Some(leaf), leaf_hash(&record.body), signatures))
            }
            RecordKind::Checkpoint => Ok((None, Hash::default(), 0)),
        })
        .collect();
    for (record, result) in chunk.iter().zip(checked) {
        let at = record.offset;
        let index = frontier.size();
        let fail = |what: &str, expected: String, found: String| {
            AuditError::Finding(Finding {
                offset: at,
                index: Some(index),
                what: what.to_string(),
                expected,
                found,
            })
        };
        match (record.kind, result) {
            (_, Err(problem)) => {
                return Err(fail(
                    "leaf is invalid",
                    "a canonical, correctly signed leaf".into(),
                    problem,
                ))
            }
            (RecordKind::Leaf, Ok((Some(leaf), hash, signatures))) => {
                if leaf.index != frontier.size() {
                    return Err(fail(
                        "entry out of place (removed, duplicated or reordered record)",
                        format!("index {}", frontier.size()),
                        format!("index {}", leaf.index),
                    ));
                }
                if let Some(previous) = *last_time {
                    if leaf.time_micros <= previous {
                        return Err(fail(
                            "ledger time does not increase",
                            format!("after {previous}"),
                            leaf.time_micros.to_string(),
                        ));
                    }
                }
                *last_time = Some(leaf.time_micros);
                visit(&leaf).map_err(|problem| {
                    fail(
                        "entry breaks the ledger's rules",
                        "an entry the rules accept".into(),
                        problem,
                    )
                })?;
                completed.clear();
                frontier
                    .push(hash, completed)
                    .map_err(|e| fail("the tree cannot grow", String::new(), e.to_string()))?;
                summary.entries += 1;
                summary.signatures += signatures as u64;
                if let Some(k) = known {
                    if k.size == frontier.size() {
                        *known_matched = Some(k.root == frontier.root());
                    }
                }
            }
            (RecordKind::Checkpoint, Ok(_)) => {
                let signed =
                    SignedCheckpoint::parse_and_verify(&record.body, verifier).map_err(|e| {
                        fail(
                            "checkpoint is not signed by the operator key",
                            verifier.to_vkey(),
                            e.to_string(),
                        )
                    })?;
                let cp = signed.checkpoint();
                if cp.origin.as_str() != origin {
                    return Err(fail(
                        "checkpoint names another origin",
                        origin.to_string(),
                        cp.origin.as_str().to_string(),
                    ));
                }
                if cp.size != frontier.size() {
                    return Err(fail(
                        "checkpoint size differs from the entries before it",
                        frontier.size().to_string(),
                        cp.size.to_string(),
                    ));
                }
                let root = frontier.root();
                if cp.root != root {
                    return Err(fail(
                        "checkpoint root is not the root of the log",
                        root.to_base64(),
                        cp.root.to_base64(),
                    ));
                }
                summary.checkpoints += 1;
            }
            (RecordKind::Leaf, Ok((None, _, _))) => {
                unreachable!("leaf records always decode to a leaf above")
            }
        }
    }
    Ok(())
}
