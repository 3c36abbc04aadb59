//! The import path: a log that holds another operator's leaves, byte for byte, under
//! that operator's own signed checkpoints and state notes (a mirror's copy, C2SP
//! tlog-mirror). It cannot sign as the operator and never does.
//!
//! An imported log directory is an ordinary log directory (`log.json`, `log.dat`, the
//! derived stores) without `operator.key`: its `log.json` names the origin and the
//! origin's verifier key, and each batch in `log.dat` is the origin's leaves followed by
//! the origin's state note and checkpoint of the batch's end, as the origin signed them.
//! So every read of [`Log`] (entries, tiles, proofs, checkpoints, state notes) serves
//! exactly what the origin serves at the same size.
//!
//! [`Log::import`] checks a batch completely before writing any of it: each leaf is the
//! next index with a later ledger time, the leaves extend this log's tree to the root
//! of the checkpoint, the checkpoint and the state note are the origin key's, of this
//! origin and of the new size. Then the records are written under one fdatasync (the
//! commit point, as for [`Log::append`]) and the derived stores updated.
//!
//! Architecture invariant: an imported log never signs. Its [`Log::append`] is refused
//! (the handle is opened in the refusing state `log_failed`), so a write that reaches it
//! by mistake cannot put a key of the mirror's under the origin's name.

use std::fs;
use std::path::Path;

use super::open::{open_index, scan_start, DerivedStores};
use super::{io, layout, read_config, EntryIdOnly, Log, LogConfig, LogError, OpenReport};
use crate::log::compact::Frontier;
use crate::log::disk::Disk;
use crate::log::envelope::EntryId;
use crate::log::hash::{leaf_hash, Hash};
use crate::log::index::{Head, IndexBatch};
use crate::log::note::{NoteSigner, NoteVerifier, Origin, SignedCheckpoint};
use crate::log::records::{self, RecordFile, RecordKind};
use crate::log::state_note::StateNote;
use crate::log::{keyfile, leaf};

/// One of the origin's leaves: its bytes as the origin logged them and its entry id
/// (from the envelope the caller decoded and verified from these bytes).
#[derive(Debug, Clone)]
pub struct ImportedLeaf {
    /// The leaf as the origin logged it (the bytes its leaf hash is of).
    pub bytes: Vec<u8>,
    /// The entry id of the envelope in it.
    pub entry_id: EntryId,
}

/// A batch of the origin: the leaves from this log's size up to the checkpoint's, and
/// the origin's signed notes of that size.
#[derive(Debug, Clone, Copy)]
pub struct ImportBatch<'a> {
    /// The leaves, in log order, from this log's size up to the checkpoint's.
    pub leaves: &'a [ImportedLeaf],
    /// The origin's signed state note of the checkpoint's size, if it has one.
    pub state_note: Option<&'a str>,
    /// The origin's checkpoint, with the origin's signature lines only (the mirror
    /// keeps no line it has not verified).
    pub checkpoint: &'a SignedCheckpoint,
}

/// A batch whose every check passed: what its commit needs.
struct CheckedBatch {
    frontier: Frontier,
    /// The Merkle nodes the leaves completed, for the tree file.
    completed: Vec<(u8, u64, Hash)>,
    last_time_micros: u64,
}

impl Log {
    /// Creates the imported log of `origin` (verifier key `operator`) in `dir` holding
    /// `first`, its first batch (from size 0; it may hold no leaf). A crash may leave the
    /// directory without a checkpoint, which [`Log::open_imported`] refuses: the layer
    /// above builds it aside and renames it into place (`Ledger::create_imported`).
    ///
    /// # Errors
    /// [`LogError::AlreadyExists`]; any check of [`Log::import`]; I/O.
    pub fn create_imported(
        dir: &Path,
        origin: &Origin,
        operator: &NoteVerifier,
        first: ImportBatch<'_>,
    ) -> Result<(Log, OpenReport), LogError> {
        if dir.exists() {
            return Err(LogError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        check_batch(origin, operator, &Frontier::new(), None, first)?;
        fs::create_dir_all(dir).map_err(io(dir))?;
        let config = LogConfig {
            origin: origin.as_str().to_string(),
            operator_vkey: operator.to_vkey(),
            leaf_version: leaf::LEAF_VERSION,
        };
        let json = serde_json::to_vec_pretty(&config).map_err(|e| LogError::Config {
            reason: e.to_string(),
        })?;
        let config_path = dir.join(layout::CONFIG);
        fs::write(&config_path, json)
            .and_then(|()| fs::File::open(&config_path)?.sync_all())
            .map_err(io(&config_path))?;
        let mut records = RecordFile::create(dir.join(layout::RECORDS))?;
        write_records(&mut records, first)?;
        records.commit()?;
        drop(records);
        Log::open_imported(dir)
    }

    /// Opens an imported log: recovery of `log.dat` and the derived stores as
    /// [`Log::open`] does them, then the last checkpoint and state note checked under
    /// the origin's key from `log.json`.
    ///
    /// # Errors
    /// As [`Log::open`]; [`LogError::Damaged`] when the last checkpoint is not the
    /// origin's signed root of the tree.
    pub fn open_imported(dir: &Path) -> Result<(Log, OpenReport), LogError> {
        let config = read_config(dir)?;
        let bad_config = |e: crate::log::note::NoteError| LogError::Config {
            reason: e.to_string(),
        };
        let origin = Origin::new(config.origin.as_str()).map_err(bad_config)?;
        let verifier = NoteVerifier::from_vkey(&config.operator_vkey).map_err(bad_config)?;
        let mut records = RecordFile::open(dir.join(layout::RECORDS))?;
        let (index, moved_aside) = open_index(dir)?;
        let mut stores = DerivedStores::open(dir, Disk::os())?;
        let head = index.head()?;
        let mut report = recover(&mut records, head.as_ref())?;
        report.index_moved_aside = moved_aside;
        let (frontier, log_state) =
            stores.catch_up(&records, (&index, head.as_ref()), &EntryIdOnly, &mut report)?;
        let root = frontier.root();
        let (checkpoint, state_note) = settle_notes(
            &records,
            &stores,
            (&origin, log_state.size, root),
            &verifier,
        )?;
        let DerivedStores { tree, offsets, ids } = stores;
        // Never used to sign: `failed` below refuses every append (module docs).
        let signer = NoteSigner::new(verifier.name().clone(), keyfile::generate());
        let log = Log {
            dir: dir.to_path_buf(),
            config,
            origin,
            signer,
            verifier,
            idempotency: Box::new(EntryIdOnly),
            records,
            tree,
            offsets,
            ids,
            index,
            frontier,
            last_time_micros: log_state.last_time_micros,
            checkpoint,
            state_note,
            failed: true,
            handover: None,
        };
        Ok((log, report))
    }

    /// Appends the origin's `batch` (see the module docs for the checks, all made before
    /// anything is written).
    ///
    /// # Errors
    /// [`LogError::Import`] when a check fails (nothing written); I/O faults of the
    /// store, after which this handle must be dropped and the log reopened.
    pub fn import(&mut self, batch: ImportBatch<'_>) -> Result<(), LogError> {
        let last_time = (self.size() > 0).then_some(self.last_time_micros);
        let checked = check_batch(
            &self.origin,
            &self.verifier,
            &self.frontier,
            last_time,
            batch,
        )?;
        let offsets = write_records(&mut self.records, batch)?;
        for (leaf, offset) in batch.leaves.iter().zip(offsets) {
            self.offsets.append(offset)?;
            self.ids.append(*leaf.entry_id.as_bytes())?;
        }
        // The commit point: after this fdatasync the batch is the mirror's.
        self.records.commit()?;
        for &(level, node_index, node) in &checked.completed {
            self.tree.append(level, node_index, node)?;
        }
        self.tree.flush()?;
        self.offsets.flush()?;
        self.ids.flush()?;
        let head = Head {
            size: checked.frontier.size(),
            record_end: self.records.len(),
            root: checked.frontier.root(),
        };
        self.index.apply(&IndexBatch::default(), head)?;
        self.frontier = checked.frontier;
        self.last_time_micros = checked.last_time_micros;
        self.checkpoint = batch.checkpoint.clone();
        if let Some(text) = batch.state_note {
            self.state_note = Some((self.frontier.size(), text.to_string()));
        }
        Ok(())
    }

    /// The root this log's tree would have with `hashes` appended (a mirror's check
    /// that an origin's new leaves extend what it holds, before it replays them).
    ///
    /// # Errors
    /// A tree past 2^64 leaves.
    pub fn root_extended_by(&self, hashes: &[Hash]) -> Result<Hash, LogError> {
        let mut frontier = self.frontier.clone();
        let mut completed = Vec::new();
        for hash in hashes {
            frontier.push(*hash, &mut completed)?;
            completed.clear();
        }
        Ok(frontier.root())
    }
}

/// Every check of an import, on copies: leaves in place and in time, the root, the notes.
fn check_batch(
    origin: &Origin,
    operator: &NoteVerifier,
    frontier: &Frontier,
    mut last_time: Option<u64>,
    batch: ImportBatch<'_>,
) -> Result<CheckedBatch, LogError> {
    let refuse = |what: String| LogError::Import { what };
    let mut frontier = frontier.clone();
    let mut completed = Vec::new();
    for leaf in batch.leaves {
        let index = frontier.size();
        let (found, time) = leaf::peek_index_time(&leaf.bytes)?;
        if found != index {
            return Err(refuse(format!("leaf {index} says it is entry {found}")));
        }
        if last_time.is_some_and(|previous| time <= previous) {
            return Err(refuse(format!(
                "leaf {index}: ledger time does not increase"
            )));
        }
        last_time = Some(time);
        frontier.push(leaf_hash(&leaf.bytes), &mut completed)?;
    }
    check_checkpoint(batch.checkpoint, (origin, frontier.size(), frontier.root()))
        .map_err(refuse)?;
    batch.checkpoint.note().verify(operator).map_err(|e| {
        refuse(format!(
            "the checkpoint is not signed by the origin key: {e}"
        ))
    })?;
    if let Some(text) = batch.state_note {
        check_note(text, operator, origin, frontier.size()).map_err(refuse)?;
    }
    Ok(CheckedBatch {
        last_time_micros: last_time.unwrap_or(0),
        frontier,
        completed,
    })
}

/// The batch's records: leaves, state note, checkpoint (the commit marker), buffered;
/// returns the leaves' offsets.
fn write_records(records: &mut RecordFile, batch: ImportBatch<'_>) -> Result<Vec<u64>, LogError> {
    let mut offsets = Vec::with_capacity(batch.leaves.len());
    for leaf in batch.leaves {
        offsets.push(records.append(RecordKind::Leaf, &leaf.bytes)?);
    }
    if let Some(text) = batch.state_note {
        records.append(RecordKind::StateNote, text.as_bytes())?;
    }
    records.append(RecordKind::Checkpoint, batch.checkpoint.text().as_bytes())?;
    Ok(offsets)
}

/// The checkpoint is of `origin`, at `size`, with `root`.
fn check_checkpoint(
    checkpoint: &SignedCheckpoint,
    (origin, size, root): (&Origin, u64, Hash),
) -> Result<(), String> {
    let c = checkpoint.checkpoint();
    if &c.origin != origin {
        return Err(format!(
            "origin {:?}, not {:?}",
            c.origin.as_str(),
            origin.as_str()
        ));
    }
    if c.size != size {
        return Err(format!("size {}, but the leaves make {size}", c.size));
    }
    if c.root != root {
        return Err(format!(
            "root {} at size {size}, but the leaves give {}",
            c.root.to_base64(),
            root.to_base64()
        ));
    }
    Ok(())
}

/// The state note is the operator's, of `origin`, at `size`.
fn check_note(
    text: &str,
    operator: &NoteVerifier,
    origin: &Origin,
    size: u64,
) -> Result<(), String> {
    let note = StateNote::parse_and_verify(text.as_bytes(), operator)
        .map_err(|e| format!("the state note does not verify: {e}"))?;
    if note.origin != origin.as_str() || note.size != size {
        return Err(format!(
            "the state note is of {:?} at size {}, not {:?} at size {size}",
            note.origin,
            note.size,
            origin.as_str()
        ));
    }
    Ok(())
}

/// The last checkpoint and state note of an imported log, checked: the origin's, of
/// its origin, and of the tree (`expected`: origin, size, root) the records rebuilt.
fn settle_notes(
    records: &RecordFile,
    stores: &DerivedStores,
    expected: (&Origin, u64, Hash),
    verifier: &NoteVerifier,
) -> Result<(SignedCheckpoint, Option<(u64, String)>), LogError> {
    let (origin, size, _) = expected;
    let tail_from = match size.checked_sub(1) {
        Some(last) => records
            .read_at(super::leaf_offset(&stores.offsets, last)?)?
            .end(),
        None => records::HEADER_LEN,
    };
    let (checkpoint, state_note) = last_notes(records, tail_from, verifier)?;
    check_checkpoint(&checkpoint, expected).map_err(|what| LogError::Damaged {
        index: size,
        what: format!("the last checkpoint in log.dat: {what}"),
    })?;
    if let Some((_, text)) = &state_note {
        check_note(text, verifier, origin, size).map_err(|what| LogError::Damaged {
            index: size,
            what: format!("the last state note in log.dat: {what}"),
        })?;
    }
    Ok((checkpoint, state_note))
}

/// The last checkpoint (verified under `operator`) and state note after the last leaf.
fn last_notes(
    records: &RecordFile,
    from: u64,
    operator: &NoteVerifier,
) -> Result<(SignedCheckpoint, Option<(u64, String)>), LogError> {
    let (mut checkpoint, mut note) = (None, None);
    for record in records.iter(from, records.len())? {
        let record = record?;
        match record.kind {
            RecordKind::Checkpoint => checkpoint = Some(record.body),
            RecordKind::StateNote => note = Some(record.body),
            RecordKind::Leaf => {}
        }
    }
    let damaged = |what: String| LogError::Damaged { index: 0, what };
    let checkpoint =
        checkpoint.ok_or_else(|| damaged("no checkpoint after the last leaf".into()))?;
    let checkpoint = SignedCheckpoint::parse_and_verify(&checkpoint, operator)
        .map_err(|e| damaged(format!("the last checkpoint does not verify: {e}")))?;
    let size = checkpoint.checkpoint().size;
    let note = note
        .map(|body| String::from_utf8(body).map(|text| (size, text)))
        .transpose()
        .map_err(|_| damaged("the last state note is not UTF-8".into()))?;
    Ok((checkpoint, note))
}

/// [`RecordFile::recover`] from the index head, failing closed if the index is ahead
/// of the file (as [`Log::open`] does); an imported log always has a checkpoint.
fn recover(records: &mut RecordFile, head: Option<&Head>) -> Result<OpenReport, LogError> {
    let recovery = records.recover(scan_start(records, head)?)?;
    if recovery.end == records::HEADER_LEN {
        return Err(LogError::Damaged {
            index: 0,
            what: "an imported log without a checkpoint".into(),
        });
    }
    Ok(OpenReport {
        cut: recovery
            .cut
            .as_ref()
            .map(|c| (c.bytes, format!("{:?}", c.reason))),
        ..OpenReport::default()
    })
}
