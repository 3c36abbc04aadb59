//! One round of following the origin ([`Mirror::follow_once`]): the steps of the module
//! docs of [`super`], and what a refusal is — a fork and a contradicted state note stop
//! the mirror with evidence; anything that may be the network's or a bad tile's fault
//! is an error of this round only.

use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

use super::evidence::stop;
use super::fetch::{Fetched, OriginReader};
use super::{layout, Mirror, MirrorError, Witnessed};
use crate::ledger::import::{ImportError, OriginBatch};
use crate::ledger::writer::{Ledger, LedgerError};
use crate::log::compact::Frontier;
use crate::log::hash::Hash;
use crate::log::note::{Note, NoteVerifier, SignedCheckpoint};

/// About how many entries a chunk of the gap holds (the origin's checkpoints decide):
/// what one commit takes, and, times three, what a round holds in memory at most.
pub const CHUNK_ENTRIES: u64 = 4096;

/// What one round did.
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    /// The mirror's size before the round, in entries.
    pub from: u64,
    /// The mirror's size after the round, in entries.
    pub to: u64,
    /// Envelope signatures verified.
    pub signatures: u64,
    /// Waiting for verified leaves (downloading and checking them, signatures
    /// included, runs alongside the import: this is the time it did not hide).
    pub fetch_verify: Duration,
    /// Replaying the rules and writing the chunks.
    pub import: Duration,
}

impl Mirror {
    /// Follows the origin once: takes its current checkpoint if it extends the mirror's,
    /// with every new leaf verified and replayed (see the module docs of [`super`]),
    /// and cosigns it.
    ///
    /// # Errors
    /// [`MirrorError::Stopped`] when the origin forked or its state note is contradicted
    /// by the replay (now or in an earlier round); [`MirrorError::Refused`] for data
    /// that fails a check without proving anything against the operator; transport.
    pub fn follow_once(&mut self, reader: &OriginReader) -> Result<Followed, MirrorError> {
        if let Some(stopped) = self.stopped()? {
            return Err(MirrorError::Stopped(stopped));
        }
        let served = reader.checkpoint()?;
        let theirs = operator_only(&served, &self.operator)?;
        // Before anything is fetched: a checkpoint without the quorum is not followed.
        let witnessed = self.witnesses.verify(
            &SignedCheckpoint::parse_and_verify(&served, &self.operator)
                .map_err(MirrorError::Checkpoint)?,
        )?;
        let found = theirs.checkpoint().origin.as_str();
        if found != self.origin.as_str() {
            return Err(MirrorError::OriginMismatch {
                found: found.to_owned(),
                pinned: self.origin.as_str().to_owned(),
            });
        }
        let size = theirs.checkpoint().size;
        let held = self.ledger.as_ref().map(|l| {
            let guard = l.read().unwrap_or_else(|p| p.into_inner());
            guard.log().checkpoint().clone()
        });
        let from = held.as_ref().map_or(0, |h| h.checkpoint().size);
        let mut followed = Followed {
            from,
            to: from,
            signatures: 0,
            fetch_verify: Duration::ZERO,
            import: Duration::ZERO,
        };
        if let Some(held) = &held {
            if size <= from {
                self.check_prefix(held, &theirs)?;
                if size == from {
                    self.cosign_new_witnesses(&theirs, &witnessed)?;
                }
                return Ok(followed);
            }
        }
        let targets = self.chunk_ends(reader, from, &theirs)?;
        self.catch_up(reader, from, &targets, &mut followed)?;
        self.cosign(&theirs, &witnessed)?;
        followed.to = size;
        Ok(followed)
    }

    /// The origin's checkpoints the gap `[from, theirs)` is taken in: about
    /// [`CHUNK_ENTRIES`] (or the mirror's setting) apart, from the origin's checkpoint listing, then `theirs`. An
    /// origin without the listing (a static tree) gives one chunk, the whole gap.
    fn chunk_ends(
        &self,
        reader: &OriginReader,
        from: u64,
        theirs: &SignedCheckpoint,
    ) -> Result<Vec<SignedCheckpoint>, MirrorError> {
        let size = theirs.checkpoint().size;
        let mut ends = Vec::new();
        let mut at = from;
        // A new mirror's first chunk is replayed twice (built aside, then opened): the
        // origin's smallest checkpoint, so that it costs nothing.
        let mut wanted = match self.ledger {
            None => 1,
            Some(_) => from + self.chunk_entries,
        };
        while wanted < size {
            let Some(bytes) = reader.checkpoint_from(wanted)? else {
                break;
            };
            let end = operator_only(&bytes, &self.operator)?;
            let end_size = end.checkpoint().size;
            if end.checkpoint().origin != theirs.checkpoint().origin || end_size >= size {
                break;
            }
            if end_size < wanted || end_size <= at {
                return Err(MirrorError::Refused(format!(
                    "the checkpoint listed from size {wanted} is of size {end_size}"
                )));
            }
            ends.push(end);
            at = end_size;
            wanted = at + self.chunk_entries;
        }
        ends.push(theirs.clone());
        Ok(ends)
    }

    /// Takes the chunks ending at `ends` in a pipeline: chunk k+1 is downloaded and its
    /// signatures checked (on all cores) while chunk k is replayed and written; at most
    /// one verified chunk waits, so a gap is never held whole.
    fn catch_up(
        &mut self,
        reader: &OriginReader,
        from: u64,
        ends: &[SignedCheckpoint],
        followed: &mut Followed,
    ) -> Result<(), MirrorError> {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::scope(|scope| {
            // `move`: the sender must drop when the chunks end, or `rx` never does.
            scope.spawn(move || {
                let mut at = from;
                for end in ends {
                    let fetched = reader.leaves(at, end.checkpoint().size);
                    let stop = fetched.is_err();
                    if tx.send((end, fetched)).is_err() || stop {
                        return;
                    }
                    at = end.checkpoint().size;
                }
            });
            let mut waited = Instant::now();
            for (end, fetched) in rx {
                let fetched = fetched?;
                followed.fetch_verify += waited.elapsed();
                let started = Instant::now();
                self.take_chunk(reader, &fetched, end)?;
                followed.import += started.elapsed();
                followed.signatures += fetched.signatures;
                waited = Instant::now();
            }
            Ok(())
        })
    }

    /// One chunk: its leaves must extend the mirror's tree to `end`'s root; then
    /// replayed, checked against the state note of `end`'s size, and written.
    fn take_chunk(
        &mut self,
        reader: &OriginReader,
        fetched: &Fetched,
        end: &SignedCheckpoint,
    ) -> Result<(), MirrorError> {
        if self.root_with(&fetched.hashes)? != end.checkpoint().root {
            let held = self.ledger.as_ref().map(|l| {
                let guard = l.read().unwrap_or_else(|p| p.into_inner());
                guard.log().checkpoint().clone()
            });
            return Err(self.diagnose(reader, held.as_ref(), end));
        }
        let note = match end.checkpoint().size {
            0 => None,
            size => reader.state_note(size)?,
        };
        self.take(fetched, note.as_deref(), end)
    }

    /// A checkpoint no larger than the mirror's must be the root of the mirror's own
    /// leaves at its size; else the origin forked.
    fn check_prefix(
        &self,
        held: &SignedCheckpoint,
        theirs: &SignedCheckpoint,
    ) -> Result<(), MirrorError> {
        let size = theirs.checkpoint().size;
        let ledger = self.ledger.as_ref().ok_or(MirrorError::Empty)?;
        let mine = {
            let guard = ledger.read().unwrap_or_else(|p| p.into_inner());
            guard.log().root_at(size).map_err(LedgerError::from)?
        };
        if mine == theirs.checkpoint().root {
            return Ok(());
        }
        Err(self.forked(
            held,
            theirs,
            "its root at that size is not the root of the mirror's leaves",
        ))
    }

    /// Witnesses cosign after the checkpoint is published: lines verified on the
    /// checkpoint the mirror already holds, and not yet served, are served from now on.
    fn cosign_new_witnesses(
        &mut self,
        theirs: &SignedCheckpoint,
        witnessed: &Witnessed,
    ) -> Result<(), MirrorError> {
        let all_served = self
            .cosigned
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            .is_some_and(|text| witnessed.lines.lines().all(|line| text.contains(line)));
        if all_served {
            return Ok(());
        }
        self.cosign(theirs, witnessed)
    }

    /// The root of the mirror's tree extended by `hashes`.
    fn root_with(&self, hashes: &[Hash]) -> Result<Hash, MirrorError> {
        match &self.ledger {
            Some(ledger) => {
                let guard = ledger.read().unwrap_or_else(|p| p.into_inner());
                Ok(guard
                    .log()
                    .root_extended_by(hashes)
                    .map_err(LedgerError::from)?)
            }
            None => root_of(hashes),
        }
    }

    /// The new leaves do not lead to the origin's root: either the origin forked (its
    /// own hash tiles give its root, and their prefix is not the mirror's), or it serves
    /// entry bundles that are not its log's (a refusal of this round only).
    fn diagnose(
        &self,
        reader: &OriginReader,
        held: Option<&SignedCheckpoint>,
        theirs: &SignedCheckpoint,
    ) -> MirrorError {
        let bundles_wrong = || {
            MirrorError::Refused(format!(
                "the entry bundles do not give the root of the checkpoint of size {}",
                theirs.checkpoint().size
            ))
        };
        let hashes = match reader.leaf_hashes(theirs.checkpoint().size) {
            Ok(hashes) => hashes,
            Err(e) => return e,
        };
        if root_of(&hashes).ok() != Some(theirs.checkpoint().root) {
            return bundles_wrong();
        }
        let Some(held) = held else {
            return bundles_wrong();
        };
        let size = usize::try_from(held.checkpoint().size).unwrap_or(usize::MAX);
        match root_of(&hashes[..size.min(hashes.len())]) {
            Ok(root) if root == held.checkpoint().root => bundles_wrong(),
            _ => self.forked(held, theirs, "its tree does not extend the mirror's"),
        }
    }

    /// Stops the mirror on a fork, keeping both checkpoints.
    fn forked(&self, held: &SignedCheckpoint, theirs: &SignedCheckpoint, why: &str) -> MirrorError {
        let detail = format!(
            "the origin key signed a checkpoint of size {} that is not consistent with the mirror's of size {}: {why}",
            theirs.checkpoint().size,
            held.checkpoint().size
        );
        let notes = [
            ("the checkpoint the mirror holds", held.text()),
            ("the checkpoint the origin served", theirs.text()),
        ];
        let notes: Vec<(&str, &str)> = notes.iter().map(|(t, n)| (*t, n.as_str())).collect();
        match stop(
            &self.dir,
            "origin_forked",
            held.checkpoint().size,
            detail,
            &notes,
        ) {
            Ok(stopped) => MirrorError::Stopped(stopped),
            Err(e) => e,
        }
    }

    /// Replays and writes the batch (creating the mirror's ledger on the first one); a
    /// contradicted state note or an entry the rules refuse stops the mirror.
    fn take(
        &mut self,
        fetched: &Fetched,
        note: Option<&str>,
        theirs: &SignedCheckpoint,
    ) -> Result<(), MirrorError> {
        let batch = OriginBatch {
            leaves: &fetched.leaves,
            decoded: &fetched.decoded,
            state_note: note,
            checkpoint: theirs,
        };
        let result = match &self.ledger {
            Some(ledger) => ledger
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .import(batch),
            None => {
                let dir = self.dir.join(layout::LOG);
                Ledger::create_imported(&dir, &self.origin, &self.operator, batch).map(|ledger| {
                    self.ledger = Some(Arc::new(RwLock::new(ledger)));
                })
            }
        };
        let (code, size) = match &result {
            Err(ImportError::StateRootMismatch { size, .. }) => ("state_root_mismatch", *size),
            Err(ImportError::Ledger(LedgerError::Diverged { index, .. })) => {
                ("state_diverged", *index)
            }
            _ => return Ok(result?),
        };
        let detail = result.err().map(|e| e.to_string()).unwrap_or_default();
        let theirs_text = theirs.text();
        let mut notes = vec![("the checkpoint the origin served", theirs_text.as_str())];
        if let Some(note) = note {
            notes.push(("the state note the origin served", note));
        }
        Err(MirrorError::Stopped(stop(
            &self.dir, code, size, detail, &notes,
        )?))
    }
}

/// The origin's checkpoint verified under its key, with only that key's lines kept
/// (cosignatures the mirror has not verified are neither stored nor served).
fn operator_only(bytes: &[u8], operator: &NoteVerifier) -> Result<SignedCheckpoint, MirrorError> {
    let note = Note::parse(bytes).map_err(MirrorError::Checkpoint)?;
    note.verify(operator).map_err(MirrorError::Checkpoint)?;
    let mut text = format!("{}\n", note.text());
    for line in note.signatures() {
        if line.name() == operator.name() && line.key_id() == operator.key_id() {
            text.push_str(&line.to_line());
        }
    }
    SignedCheckpoint::parse_and_verify(text.as_bytes(), operator).map_err(MirrorError::Checkpoint)
}

/// The RFC 6962 root of `hashes`, from scratch.
fn root_of(hashes: &[Hash]) -> Result<Hash, MirrorError> {
    let mut frontier = Frontier::new();
    let mut completed = Vec::new();
    for hash in hashes {
        frontier
            .push(*hash, &mut completed)
            .map_err(|e| MirrorError::Refused(e.to_string()))?;
        completed.clear();
    }
    Ok(frontier.root())
}
