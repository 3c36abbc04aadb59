//! One audit's pass over `log.dat`: every record checked in order — leaves (through the
//! shared leaf checker, in parallel by chunks, ahead of the pass: `ahead`), checkpoints and state notes (signed by
//! the operator key, and by the new one too at a handover) — with the tree recomputed.

use std::time::Duration;

use super::ahead::with_chunks_ahead;
use super::{finding, AuditError, AuditSummary, AuditVisitor, Finding, VisitError};
use crate::log::compact::Frontier;
use crate::log::hash::Hash;
use crate::log::leaf_check::{CheckedLeaf, LeafOrder, LeafProblem};
use crate::log::note::{Checkpoint, NoteVerifier, SignedCheckpoint};
use crate::log::records::{self, Record, RecordKind};
use crate::log::state_note::StateNote;

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
pub(super) struct Run {
    verifier: NoteVerifier,
    origin: String,
    pub(super) frontier: Frontier,
    completed: Vec<(u8, u64, Hash)>,
    order: LeafOrder,
    pub(super) known: Option<Checkpoint>,
    /// Whether the tree at the known checkpoint's size had its root (None: no such checkpoint).
    pub(super) known_matched: Option<bool>,
    pub(super) summary: AuditSummary,
}

/// A finding at one record: what, expected, found, and the layer above's error when it
/// is the one that refused.
struct Problem {
    what: String,
    expected: String,
    found: String,
    source: Option<VisitError>,
}

impl Problem {
    fn new(what: &str, expected: String, found: String) -> Problem {
        Problem {
            what: what.to_owned(),
            expected,
            found,
            source: None,
        }
    }

    /// The layer above refused: its error's text is what was found, and its source.
    fn visitor(what: &str, expected: String, e: VisitError) -> Problem {
        Problem {
            found: e.to_string(),
            source: Some(e),
            ..Problem::new(what, expected, String::new())
        }
    }

    fn at(self, offset: u64, index: u64) -> AuditError {
        AuditError::Finding(Finding {
            offset,
            index: Some(index),
            what: self.what,
            expected: self.expected,
            found: self.found,
            source: self.source.map(std::sync::Arc::new),
        })
    }
}

impl Run {
    pub(super) fn new(
        origin: &str,
        verifier: NoteVerifier,
        known: Option<Checkpoint>,
        total: u64,
    ) -> Run {
        Run {
            verifier,
            origin: origin.to_owned(),
            frontier: Frontier::new(),
            completed: Vec::new(),
            order: LeafOrder::default(),
            known_matched: known
                .as_ref()
                .map(|k| k.size == 0 && k.root == Hash::empty_root()),
            known,
            summary: AuditSummary {
                origin: origin.to_owned(),
                entries: 0,
                signatures: 0,
                checkpoints: 0,
                bytes: total,
                root: Hash::empty_root(),
                elapsed: Duration::ZERO,
            },
        }
    }

    /// Reads every record in chunks, checking each (read and checked ahead on other
    /// threads, taken here in order); returns the last record's kind and where it ends.
    pub(super) fn read_all(
        &mut self,
        file: &records::RecordReader,
        progress: &(dyn Fn(u64, u64) + Sync),
        visitor: &mut dyn AuditVisitor,
    ) -> Result<(Option<RecordKind>, u64), AuditError> {
        let total = file.len();
        let iter = file
            .iter(records::HEADER_LEN, total)
            .map_err(|e| AuditError::Log(e.into()))?;
        with_chunks_ahead(iter, |chunks| {
            let mut last_kind = None;
            let mut last_offset = records::HEADER_LEN;
            for chunk in chunks {
                // What was read before any damage is checked first: it may hold an
                // earlier problem.
                self.process_chunk(&chunk.records, chunk.leaves, visitor)?;
                if let Some(last) = chunk.records.last() {
                    last_kind = Some(last.kind);
                    last_offset = last.end();
                }
                if let Some(e) = chunk.damage {
                    let at = e.offset().unwrap_or(last_offset);
                    return Err(finding(
                        at,
                        Some(self.frontier.size()),
                        "record is damaged",
                        "a well-formed record with a valid checksum".into(),
                        e.to_string(),
                    ));
                }
                if chunk.records.is_empty() {
                    break;
                }
                progress(last_offset, total);
            }
            Ok((last_kind, last_offset))
        })
    }

    /// The operator key the layer above names now, if it is not the key trusted so far:
    /// the note at hand is then the handover's and must carry both signatures.
    fn handover(&self, visitor: &mut dyn AuditVisitor) -> Result<Option<NoteVerifier>, Problem> {
        let named = visitor.operator_vkey().map_err(|e| {
            Problem::visitor("the ledger's operator key cannot be read", String::new(), e)
        })?;
        match named {
            Some(vkey) if vkey != self.verifier.to_vkey() => {
                NoteVerifier::from_vkey(&vkey).map(Some).map_err(|e| {
                    Problem::new(
                        "the ledger names an operator key that is not a verifier key",
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
        checked: Vec<Result<CheckedLeaf, LeafProblem>>,
        visitor: &mut dyn AuditVisitor,
    ) -> Result<(), AuditError> {
        // The expensive part — decoding, signature checks, leaf hashes — was done ahead,
        // on all cores, by the checker the remote audit uses too; only the order and
        // the tree update are sequential.
        let mut checked = checked.into_iter();
        for record in chunk {
            let at = record.offset;
            let index = self.frontier.size();
            match record.kind {
                RecordKind::Leaf => {
                    let Some(checked) = checked.next() else {
                        // check_leaves yields one result per leaf record given.
                        return Err(Problem::new(
                            "internal: leaf not checked",
                            String::new(),
                            String::new(),
                        )
                        .at(at, index));
                    };
                    let checked = checked
                        .and_then(|c| self.order.accept(&c.leaf).map(|()| c))
                        .map_err(|problem| leaf_finding(at, index, &problem))?;
                    self.leaf(checked, visitor)
                }
                RecordKind::Checkpoint => self.checkpoint(&record.body, index, visitor),
                RecordKind::StateNote => self.state_note(&record.body, index, visitor),
            }
            .map_err(|p| p.at(at, index))?;
        }
        Ok(())
    }

    /// A leaf the shared checker accepted, in order: shown to the layer above, then
    /// added to the tree.
    fn leaf(
        &mut self,
        checked: CheckedLeaf,
        visitor: &mut dyn AuditVisitor,
    ) -> Result<(), Problem> {
        let CheckedLeaf { leaf, hash } = checked;
        visitor.leaf(&leaf).map_err(|e| {
            Problem::visitor(
                "entry breaks the ledger's rules",
                "an entry the rules accept".into(),
                e,
            )
        })?;
        self.completed.clear();
        self.frontier
            .push(hash, &mut self.completed)
            .map_err(|e| Problem::new("the tree cannot grow", String::new(), e.to_string()))?;
        self.summary.entries += 1;
        self.summary.signatures += leaf.envelope.signatures().len() as u64;
        if let Some(k) = &self.known {
            if k.size == self.frontier.size() {
                self.known_matched = Some(k.root == self.frontier.root());
            }
        }
        Ok(())
    }

    /// A checkpoint: signed by the operator key (and by the new one too at a
    /// handover), for this log, at the size and root of the tree so far.
    fn checkpoint(
        &mut self,
        body: &[u8],
        index: u64,
        visitor: &mut dyn AuditVisitor,
    ) -> Result<(), Problem> {
        let next = self.handover(visitor)?;
        let signed = SignedCheckpoint::parse_and_verify(body, &self.verifier).map_err(|e| {
            Problem::new(
                "checkpoint is not signed by the operator key",
                self.verifier.to_vkey(),
                e.to_string(),
            )
        })?;
        if let Some(next) = next {
            signed.note().verify(&next).map_err(|e| {
                Problem::new(
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
            return Err(Problem::new(
                "checkpoint names another origin",
                self.origin.clone(),
                cp.origin.as_str().to_string(),
            ));
        }
        if cp.size != index {
            return Err(Problem::new(
                "checkpoint size differs from the entries before it",
                index.to_string(),
                cp.size.to_string(),
            ));
        }
        let root = self.frontier.root();
        if cp.root != root {
            return Err(Problem::new(
                "checkpoint root is not the root of the log",
                root.to_base64(),
                cp.root.to_base64(),
            ));
        }
        self.summary.checkpoints += 1;
        Ok(())
    }

    /// A state note: signed like a checkpoint, for this log at this size, and equal to
    /// what the layer above computed.
    fn state_note(
        &mut self,
        body: &[u8],
        index: u64,
        visitor: &mut dyn AuditVisitor,
    ) -> Result<(), Problem> {
        let next = self.handover(visitor)?;
        let note = StateNote::parse_and_verify(body, &self.verifier).map_err(|e| {
            Problem::new(
                "state note is not signed by the operator key",
                self.verifier.to_vkey(),
                e.to_string(),
            )
        })?;
        if let Some(next) = &next {
            StateNote::parse_and_verify(body, next).map_err(|e| {
                Problem::new(
                    "the operator's key changed but the state note is not signed by the new key too",
                    next.to_vkey(),
                    e.to_string(),
                )
            })?;
        }
        if note.origin != self.origin || note.size != index {
            return Err(Problem::new(
                "state note is for another log or size",
                format!("{} at size {index}", self.origin),
                format!("{} at size {}", note.origin, note.size),
            ));
        }
        visitor.state_note(&note).map_err(|e| {
            Problem::visitor(
                "state_root_mismatch: the operator's signed state map root differs from the replayed state's",
                "the replayed state's map root".into(),
                e,
            )
        })
    }
}
