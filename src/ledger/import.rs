//! The ledger over an imported log (a mirror's copy of another operator's ledger): the
//! origin's leaves, replayed through the same rules into the same [`SledState`], each
//! batch's state map root compared with the origin's signed state note before the
//! batch is written.
//!
//! Architecture invariant: a mirror's log never holds a batch whose replayed state map
//! root differs from the origin's state note of the same size: the comparison comes
//! before the commit (and, for the first batch, before the directory is renamed into
//! place).

use std::fs;
use std::path::{Path, PathBuf};

use super::sled_state::SledState;
use super::writer::{replay_one, Ledger, LedgerError};
use crate::log::leaf::Leaf;
use crate::log::note::{NoteVerifier, Origin, SignedCheckpoint};
use crate::log::state_note::StateNote;
use crate::log::store::{ImportBatch, ImportedLeaf, Log, LogError, OpenReport};

/// A batch of the origin as the mirror verified it: the leaves (bytes and entry ids),
/// the same leaves decoded (signatures verified), and the origin's signed notes.
#[derive(Debug, Clone, Copy)]
pub struct OriginBatch<'a> {
    /// The leaves as the origin logged them, in log order, from this ledger's size up
    /// to the checkpoint's.
    pub leaves: &'a [ImportedLeaf],
    /// `leaves` decoded, in the same order.
    pub decoded: &'a [Leaf],
    /// The origin's signed state note of the checkpoint's size (required past size 0).
    pub state_note: Option<&'a str>,
    /// The origin's checkpoint of the batch, with the origin's signature lines only.
    pub checkpoint: &'a SignedCheckpoint,
}

/// Why an origin batch is not taken.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The log below refused or failed; the code is the [`LogError`]'s.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The ledger failed; the code is the [`LedgerError`]'s.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Code `state_root_mismatch`: replaying the batch gives another state root than
    /// the origin's state note signs.
    #[error("the origin's state note of size {size} says root {origin}, the replayed state gives {replayed}")]
    StateRootMismatch {
        /// The tree size of the checkpoint, in entries.
        size: u64,
        /// The root the origin's state note gives, hex.
        origin: String,
        /// The root of the replayed state, hex.
        replayed: String,
    },
    /// Code `state_note_missing`: a batch past size 0 came without a state note.
    #[error("the origin has no state note of size {size}: its state cannot be checked")]
    StateNoteMissing {
        /// The tree size of the checkpoint, in entries.
        size: u64,
    },
    /// The origin's state note does not parse; the code is the `StateNoteError`'s.
    #[error("the state note does not parse: {0}")]
    StateNote(#[source] crate::log::state_note::StateNoteError),
    /// Code `import_mismatched`: `leaves` and `decoded` are not the same length.
    #[error("{leaves} leaves but {decoded} decoded leaves")]
    Mismatched {
        /// Length of [`OriginBatch::leaves`].
        leaves: usize,
        /// Length of [`OriginBatch::decoded`].
        decoded: usize,
    },
    /// Code `io`: a file or directory of the ledger could not be created, read or
    /// renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ImportError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Log(e) => e.code(),
            ImportError::Ledger(e) => e.code(),
            ImportError::StateRootMismatch { .. } => "state_root_mismatch",
            ImportError::StateNoteMissing { .. } => "state_note_missing",
            ImportError::StateNote(e) => e.code(),
            ImportError::Mismatched { .. } => "import_mismatched",
            ImportError::Io { .. } => "io",
        }
    }
}

impl Ledger {
    /// Creates the mirror ledger of `origin` in `dir` from its first batch: built in
    /// `DIR.new`, replayed, its state root checked against the origin's state note, and
    /// only then renamed to `dir`.
    ///
    /// # Errors
    /// As [`Log::create_imported`]; [`ImportError::StateRootMismatch`] (then nothing is
    /// left in place); the rules refusing an entry ([`LedgerError::Diverged`]).
    pub fn create_imported(
        dir: &Path,
        origin: &Origin,
        operator: &NoteVerifier,
        first: OriginBatch<'_>,
    ) -> Result<Ledger, ImportError> {
        let note = expected_root(first, operator)?;
        let building = dir.with_extension("new");
        if building.exists() {
            // A create cut short: never renamed into place, never served.
            fs::remove_dir_all(&building).map_err(io(&building))?;
        }
        let batch = log_batch(first)?;
        let built = Log::create_imported(&building, origin, operator, batch)
            .map_err(ImportError::from)
            .and_then(|(log, _)| replayed(log, first.decoded))
            .and_then(|ledger| {
                check_root(ledger.state(), first.checkpoint, note)?;
                Ok(ledger.close()?)
            });
        if let Err(e) = built {
            let _ = fs::remove_dir_all(&building);
            return Err(e);
        }
        fs::rename(&building, dir).map_err(io(dir))?;
        let parent = dir.parent().unwrap_or(Path::new("."));
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
        Ok(Ledger::open_imported(dir)?.0)
    }

    /// Opens a mirror ledger ([`Log::open_imported`]), its state caught up by replay.
    ///
    /// # Errors
    /// As [`Ledger::open`].
    pub fn open_imported(dir: &Path) -> Result<(Ledger, OpenReport), LedgerError> {
        let (log, report) = Log::open_imported(dir)?;
        Ok((Ledger::over(log)?, report))
    }

    /// Takes the origin's next batch: every leaf replayed through the rules, the state
    /// map root compared with the origin's state note, then the leaves and notes
    /// written ([`Log::import`]) and the state committed. A refusal changes nothing.
    ///
    /// # Errors
    /// [`ImportError::StateRootMismatch`], [`LedgerError::Diverged`] (an entry the rules
    /// refuse), [`ImportError::Log`] (a check of the log's, or a store fault).
    pub fn import(&mut self, batch: OriginBatch<'_>) -> Result<(), ImportError> {
        let note = expected_root(batch, self.log.verifier())?;
        let log_batch = log_batch(batch)?;
        for leaf in batch.decoded {
            if let Err(e) = replay_one(&mut self.state, leaf) {
                self.state.discard();
                return Err(e.into());
            }
        }
        let checked = self
            .state
            .prepare()
            .map_err(LedgerError::from)
            .map_err(ImportError::from)
            .and_then(|root| check_root_is(root, batch.checkpoint, note));
        if let Err(e) = checked.and_then(|()| Ok(self.log.import(log_batch)?)) {
            self.state.discard();
            return Err(e);
        }
        self.state
            .commit(self.log.size())
            .map_err(LedgerError::from)?;
        Ok(())
    }
}

/// The ledger over a just-created imported `log`, its state replayed from `decoded` (the
/// log's leaves, already in memory), committed every [`REPLAY_BATCH_ENTRIES`].
fn replayed(log: Log, decoded: &[Leaf]) -> Result<Ledger, ImportError> {
    let mut state = SledState::open_with(log.db(), super::writer::map_nodes(&log))
        .map_err(LedgerError::from)?;
    for chunk in decoded.chunks(REPLAY_BATCH_ENTRIES) {
        for leaf in chunk {
            replay_one(&mut state, leaf)?;
        }
        let size = chunk.last().map_or(0, |leaf| leaf.index + 1);
        state.commit(size).map_err(LedgerError::from)?;
    }
    Ok(Ledger { log, state })
}

/// Entries replayed into the state per sled commit (as [`Ledger::open`] catches up).
const REPLAY_BATCH_ENTRIES: usize = 4096;

/// The root the origin's state note states for the batch's end (`None` at size 0).
fn expected_root(
    batch: OriginBatch<'_>,
    operator: &NoteVerifier,
) -> Result<Option<[u8; 32]>, ImportError> {
    let size = batch.checkpoint.checkpoint().size;
    match batch.state_note {
        // Its origin and size are checked by the log, with the checkpoint's.
        Some(text) => Ok(Some(
            StateNote::parse_and_verify(text.as_bytes(), operator)
                .map_err(ImportError::StateNote)?
                .root,
        )),
        None if size == 0 => Ok(None),
        None => Err(ImportError::StateNoteMissing { size }),
    }
}

fn log_batch(batch: OriginBatch<'_>) -> Result<ImportBatch<'_>, ImportError> {
    if batch.leaves.len() != batch.decoded.len() {
        return Err(ImportError::Mismatched {
            leaves: batch.leaves.len(),
            decoded: batch.decoded.len(),
        });
    }
    Ok(ImportBatch {
        leaves: batch.leaves,
        state_note: batch.state_note,
        checkpoint: batch.checkpoint,
    })
}

fn check_root(
    state: &SledState,
    checkpoint: &SignedCheckpoint,
    note: Option<[u8; 32]>,
) -> Result<(), ImportError> {
    check_root_is(state.root(), checkpoint, note)
}

fn check_root_is(
    replayed: [u8; 32],
    checkpoint: &SignedCheckpoint,
    note: Option<[u8; 32]>,
) -> Result<(), ImportError> {
    match note {
        Some(origin) if origin != replayed => Err(ImportError::StateRootMismatch {
            size: checkpoint.checkpoint().size,
            origin: to_hex(&origin),
            replayed: to_hex(&replayed),
        }),
        _ => Ok(()),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
