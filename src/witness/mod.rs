//! A C2SP tlog-witness (<https://c2sp.org/tlog-witness>): `lesson-ledger witness`, the
//! server a consumer association runs to cosign the checkpoints of logs it watches —
//! this ledger's, or any C2SP log's: each log's origin and key come from the command
//! line, nothing here knows lessons.
//!
//! `POST /add-checkpoint` takes an old size, a consistency proof and a checkpoint; the
//! witness checks, in the order tlog-witness gives them, that the checkpoint is signed by
//! a key it trusts for the origin (404 unknown origin, 403 no trusted signature or a bad
//! one), that the old size is not above the checkpoint's (400), that the old size is the
//! size it holds (409, the size it holds in `text/x.tlog.size`), and that the proof
//! carries what it holds to the new checkpoint (422); then it stores the new checkpoint
//! durably and answers one timestamped `cosignature/v1` line
//! (<https://c2sp.org/tlog-cosignature>). Check and store happen under the log's lock,
//! so two requests can never roll the state back (the race tlog-witness describes).
//!
//! A checkpoint signed by the log that does not extend the one held is a **split view**:
//! refused with 422, logged at error level and recorded with the held checkpoint in
//! `DIR/logs/<origin hash>/split-views/` ([`store`]); `GET /split-views` serves them.
//! `GET /<origin hash>/checkpoint` serves the latest cosigned checkpoint (monitoring).
//!
//! Cosignatures are Ed25519 `cosignature/v1` (type 0x04), not the ML-DSA-44 that
//! tlog-witness recommends: the ledger's parties hold Ed25519 keys, and an association's
//! registered key, read as a cosigner key, is what a family's client counts.
//!
//! ```
//! use lesson_ledger::log::note::{KeyName, NoteSigner, Origin};
//! use lesson_ledger::witness::{TrustedLog, Witness};
//! let dir = tempfile::tempdir().unwrap();
//! let log = NoteSigner::new(KeyName::new("example.com/log").unwrap(), ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
//! let me = NoteSigner::new(KeyName::new("assoc-01").unwrap(), ed25519_dalek::SigningKey::from_bytes(&[2; 32]));
//! let trusted = TrustedLog::new(Origin::new("example.com/log").unwrap(), vec![log.verifier()]);
//! let witness = Witness::open(dir.path(), me, vec![trusted]).unwrap();
//! assert_eq!(witness.held(&Origin::new("example.com/log").unwrap()), None);
//! ```

pub mod protocol;
pub mod server;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::log::hash::Hash;
use crate::log::note::{
    checkpoint_head, cosign_note, Checkpoint, Note, NoteError, NoteSigner, NoteVerifier, Origin,
};
use crate::log::proof::{verify_consistency, VerifyError};
use protocol::{AddCheckpoint, ProtocolError};
use store::{Held, LogDir, SplitView, StoreError};

pub use server::WitnessServer;

/// A log the witness cosigns: its origin and the keys it trusts to sign its checkpoints
/// (more than one during a key rotation).
#[derive(Debug, Clone)]
pub struct TrustedLog {
    origin: Origin,
    keys: Vec<NoteVerifier>,
}

impl TrustedLog {
    /// A log of `origin` whose checkpoints any of `keys` may sign.
    pub fn new(origin: Origin, keys: Vec<NoteVerifier>) -> TrustedLog {
        TrustedLog { origin, keys }
    }

    /// The log's origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

/// Why a checkpoint was not cosigned, each with its HTTP status (tlog-witness).
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The request body is not a tlog-witness `add-checkpoint` body (its own code).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Code `malformed_checkpoint`: the checkpoint is not a signed note with a checkpoint text: `0`.
    #[error("the checkpoint is not a signed note with a checkpoint text: {0}")]
    Checkpoint(#[source] NoteError),
    /// Code `old_size_too_large`: old size `old` is above the checkpoint's size `size`.
    #[error("old size {old} is above the checkpoint's size {size}")]
    OldSizeTooLarge {
        /// The old size the request says the witness holds.
        old: u64,
        /// The checkpoint's tree size.
        size: u64,
    },
    /// Code `unknown_log`: this witness does not know the log `origin`.
    #[error("this witness does not know the log {origin:?}")]
    UnknownLog {
        /// The log's origin, as the checkpoint names it.
        origin: String,
    },
    /// Code `no_trusted_signature`: the checkpoint carries no signature by a key trusted for `origin`.
    #[error("the checkpoint carries no signature by a key trusted for {origin:?}")]
    NoTrustedSignature {
        /// The log's origin, as the checkpoint names it.
        origin: String,
    },
    /// Code `bad_signature`: a signature by a key trusted for the log does not verify: `0`.
    #[error("a signature by a key trusted for the log does not verify: {0}")]
    BadSignature(#[source] NoteError),
    /// Code `old_size_mismatch`: the witness holds size `held`, not `old`.
    #[error("the witness holds size {held}, not {old}")]
    Conflict {
        /// The tree size of the latest checkpoint the witness cosigned for the log.
        held: u64,
        /// The old size the request says the witness holds.
        old: u64,
    },
    /// Code `proof_from_empty_tree`: a consistency proof from the empty tree must be empty.
    #[error("a consistency proof from the empty tree must be empty")]
    ProofFromEmpty,
    /// The checkpoint does not extend the one held: `0`.
    #[error("the checkpoint does not extend the one held: {0}")]
    Inconsistent(#[source] VerifyError),
    /// Code `clock`: the witness's clock reads 0 or more than 2^63 - 1 seconds.
    #[error("the witness's clock reads 0 or more than 2^63 - 1 seconds")]
    Clock,
    /// Code `storage`: the witness's directory could not be read or written; nothing was cosigned.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WitnessError {
    /// The HTTP status tlog-witness gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            WitnessError::Protocol(_)
            | WitnessError::Checkpoint(_)
            | WitnessError::OldSizeTooLarge { .. } => 400,
            WitnessError::NoTrustedSignature { .. } | WitnessError::BadSignature(_) => 403,
            WitnessError::UnknownLog { .. } => 404,
            WitnessError::Conflict { .. } => 409,
            WitnessError::ProofFromEmpty | WitnessError::Inconsistent(_) => 422,
            WitnessError::Clock | WitnessError::Store(_) => 500,
        }
    }

    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            WitnessError::Protocol(e) => e.code(),
            WitnessError::Checkpoint(_) => "malformed_checkpoint",
            WitnessError::OldSizeTooLarge { .. } => "old_size_too_large",
            WitnessError::UnknownLog { .. } => "unknown_log",
            WitnessError::NoTrustedSignature { .. } => "no_trusted_signature",
            WitnessError::BadSignature(_) => "bad_signature",
            WitnessError::Conflict { .. } => "old_size_mismatch",
            WitnessError::ProofFromEmpty => "proof_from_empty_tree",
            WitnessError::Inconsistent(e) => e.code(),
            WitnessError::Clock => "clock",
            WitnessError::Store(_) => "storage",
        }
    }
}

/// One log's slot: its trusted keys, its directory and what is held, behind the lock
/// that makes check-and-store atomic.
#[derive(Debug)]
struct Slot {
    origin: Origin,
    /// The tlog-witness origin hash, the monitoring path.
    hash: String,
    keys: Vec<NoteVerifier>,
    dir: LogDir,
    held: Mutex<Option<Held>>,
}

/// The witness: its signer and the logs it cosigns, with their durable state.
#[derive(Debug)]
pub struct Witness {
    signer: NoteSigner,
    data: PathBuf,
    logs: BTreeMap<String, Slot>,
}

impl Witness {
    /// Opens the witness's state in `data` for `logs` (one entry per origin; keys of
    /// a repeated origin are merged).
    ///
    /// # Errors
    /// A [`StoreError`] when a log's stored checkpoint cannot be read back: the witness
    /// does not start rather than forget what it cosigned.
    pub fn open(
        data: &Path,
        signer: NoteSigner,
        logs: Vec<TrustedLog>,
    ) -> Result<Witness, StoreError> {
        let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
        for log in logs {
            if let Some(slot) = slots.get_mut(log.origin.as_str()) {
                slot.keys.extend(log.keys);
                continue;
            }
            let dir = LogDir::new(data, &log.origin);
            let held = dir.load(&log.origin)?;
            let slot = Slot {
                hash: store::origin_hash(&log.origin),
                origin: log.origin.clone(),
                keys: log.keys,
                dir,
                held: Mutex::new(held),
            };
            slots.insert(log.origin.as_str().to_owned(), slot);
        }
        Ok(Witness {
            signer,
            data: data.to_path_buf(),
            logs: slots,
        })
    }

    /// The witness's cosigner verifier key (`<name>+<id>+base64(0x04 ‖ key)`).
    pub fn cosigner_vkey(&self) -> String {
        self.signer.cosigner_key().to_vkey()
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The latest checkpoint cosigned for `origin`.
    pub fn held(&self, origin: &Origin) -> Option<Held> {
        let slot = self.logs.get(origin.as_str())?;
        lock(&slot.held).clone()
    }

    /// The latest cosigned checkpoint of the log whose origin hashes to `hash`.
    pub fn held_by_hash(&self, hash: &str) -> Option<Held> {
        let slot = self.logs.values().find(|s| s.hash == hash)?;
        lock(&slot.held).clone()
    }

    /// Every split view recorded, log by log.
    ///
    /// # Errors
    /// [`StoreError`] for unreadable records.
    pub fn split_views(&self) -> Result<Vec<SplitView>, StoreError> {
        let mut out = Vec::new();
        for slot in self.logs.values() {
            out.extend(slot.dir.split_views()?);
        }
        Ok(out)
    }

    /// `add-checkpoint`: checks `body` and, if it extends what is held, stores the new
    /// checkpoint durably and returns the cosignature line (with its newline), made at
    /// POSIX time `now`.
    ///
    /// # Errors
    /// A [`WitnessError`], whose [`WitnessError::status`] is the HTTP answer.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, WitnessError> {
        let request = AddCheckpoint::parse(body)?;
        let note = Note::parse(&request.checkpoint).map_err(WitnessError::Checkpoint)?;
        let head = checkpoint_head(note.text()).map_err(WitnessError::Checkpoint)?;
        let slot = self
            .logs
            .get(head.origin.as_str())
            .ok_or_else(|| WitnessError::UnknownLog {
                origin: head.origin.to_string(),
            })?;
        let log_lines = verified_log_lines(slot, &note, &head.origin)?;
        if request.old_size > head.size {
            return Err(WitnessError::OldSizeTooLarge {
                old: request.old_size,
                size: head.size,
            });
        }
        let mut held = lock(&slot.held);
        let held_size = held.as_ref().map_or(0, |h| h.size);
        if request.old_size != held_size {
            return Err(WitnessError::Conflict {
                held: held_size,
                old: request.old_size,
            });
        }
        if let Err(e) = check_consistency(held.as_ref(), &request, &head) {
            Witness::report_split_view(slot, held.as_ref(), body, &e, now);
            return Err(e);
        }
        if now == 0 {
            // "The cosignature MUST NOT omit the timestamp, i.e. the timestamp MUST NOT
            // be zero."
            return Err(WitnessError::Clock);
        }
        let line = cosign_note(&note, &self.signer, now).map_err(|_| WitnessError::Clock)?;
        let next = Held {
            size: head.size,
            root: head.root,
            note: format!("{}\n{log_lines}{line}", note.text()),
        };
        // "The witness MUST persist the new checkpoint before responding."
        slot.dir.save(&next)?;
        *held = Some(next);
        Ok(line)
    }

    fn report_split_view(
        slot: &Slot,
        held: Option<&Held>,
        body: &[u8],
        error: &WitnessError,
        now: u64,
    ) {
        // Only a checkpoint that contradicts one held is evidence; a proof sent from
        // the empty tree is merely malformed.
        let Some(held) = held else { return };
        let WitnessError::Inconsistent(_) = error else {
            return;
        };
        let origin = slot.origin.to_string();
        let view = SplitView {
            origin: origin.clone(),
            reason: error.code().to_owned(),
            detail: error.to_string(),
            time: now,
            held: held.note.clone(),
            submitted: String::from_utf8_lossy(body).into_owned(),
        };
        match slot.dir.record_split_view(&view) {
            Ok(path) => tracing::error!(
                origin,
                held_size = held.size,
                reason = view.reason,
                file = ?path,
                "SPLIT VIEW: the log signed a checkpoint inconsistent with the one this witness cosigned"
            ),
            Err(e) => tracing::error!(origin, error = %e, "SPLIT VIEW seen but not recorded"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a request panicked between check and store; what is held
    // is only replaced after the store succeeded, so it is still the durable state.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// "The witness MUST verify the checkpoint signature against the public key(s) it
/// trusts for the checkpoint origin, and it MUST ignore signatures from unknown keys."
/// Returns the verified lines, to be served with the cosignature.
fn verified_log_lines(slot: &Slot, note: &Note, origin: &Origin) -> Result<String, WitnessError> {
    let mut lines = String::new();
    for key in &slot.keys {
        match note.verify(key) {
            Ok(()) => {
                for s in note.signatures() {
                    if s.name() == key.name() && s.key_id() == key.key_id() {
                        lines.push_str(&s.to_line());
                    }
                }
            }
            Err(NoteError::NoKnownSignature { .. }) => {}
            Err(e) => return Err(WitnessError::BadSignature(e)),
        }
    }
    if lines.is_empty() {
        return Err(WitnessError::NoTrustedSignature {
            origin: origin.to_string(),
        });
    }
    Ok(lines)
}

/// The consistency checks of tlog-witness, from what is held to the new checkpoint.
fn check_consistency(
    held: Option<&Held>,
    request: &AddCheckpoint,
    head: &Checkpoint,
) -> Result<(), WitnessError> {
    // "A checkpoint of size zero MUST have the root hash of the empty tree"
    if head.size == 0 && head.root != Hash::empty_root() {
        return Err(WitnessError::Inconsistent(VerifyError::EmptyTreeRoot {
            root: head.root,
        }));
    }
    match held {
        // "If the old size is zero, the consistency proof MUST be empty"
        _ if request.old_size == 0 => match request.proof.is_empty() {
            true => Ok(()),
            false => Err(WitnessError::ProofFromEmpty),
        },
        Some(held) => {
            verify_consistency(held.size, head.size, &held.root, &head.root, &request.proof)
                .map_err(WitnessError::Inconsistent)
        }
        // The old size matched what is held, so a non-zero old size means something
        // is held.
        None => Err(WitnessError::Conflict {
            held: 0,
            old: request.old_size,
        }),
    }
}
