//! `lesson-ledger mirror`: a C2SP tlog-mirror (<https://c2sp.org/tlog-mirror>) of a
//! Lesson Ledger log, which follows its origin, verifies everything, replays the rules,
//! cosigns as a mirror and serves what it holds (issue 17).
//!
//! The mirror is its own mirror client: it pulls from the origin's read side (our
//! `serve`, or a static tlog-tiles tree with the state notes beside it) rather than
//! waiting for `add-checkpoint` / `add-entries`. Each round ([`Mirror::follow_once`]):
//! 1. the origin's checkpoint, verified under the origin key pinned on the command line
//!    (`--origin-key`) or on first use, its other lines dropped (nothing unverified is
//!    kept);
//! 2. consistency with the mirror's own checkpoint, computed from what the mirror holds
//!    and the origin's leaves — never from the origin's root or proof: the new leaves,
//!    from the entry bundles, must extend the mirror's tree to the checkpoint's root
//!    (a smaller or equal checkpoint must be the root of the mirror's own prefix);
//! 3. every new leaf checked by the audits' leaf checker (canonical, every signature);
//! 4. the leaves replayed through the rules into the mirror's `SledState`, the state map
//!    root compared with the origin's signed state note of the checkpoint's size;
//! 5. leaves and the origin's notes written byte for byte ([`Ledger::import`]), then the
//!    checkpoint cosigned by the mirror's key (a C2SP cosignature, `cosignature/v1`) and
//!    stored before it is served.
//!
//! A checkpoint inconsistent with the mirror's (a fork), or a state note that the
//! replay contradicts, stops the mirror: both signed notes are kept as evidence in
//! `DIR/evidence/` and `DIR/stopped.json` makes every later round refuse
//! ([`evidence`]). Serving goes on, from what was verified ([`serve`]).
//!
//! For any other C2SP log, whose entries are opaque, see [`any`] (`mirror --any-log`).
//!
//! Directory: `mirror.json` (the origin and its pinned key), `log/` (the mirror's
//! ledger: an imported log, [`crate::log::store::Log::open_imported`]), `checkpoint`
//! (the latest checkpoint with the mirror's cosignature), `evidence/`, `stopped.json`.

pub mod any;
pub mod evidence;
pub mod fetch;
pub mod follow;
pub mod serve;
pub mod witnesses;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::ledger::import::ImportError;
use crate::ledger::writer::{Ledger, LedgerError};
use crate::log::note::{NoteError, NoteSigner, NoteVerifier, Origin, SignedCheckpoint};
use fetch::OriginReader;

pub use evidence::Stopped;
pub use follow::Followed;
pub use witnesses::{WitnessPolicy, Witnessed};

/// The file names inside a mirror directory.
pub mod layout {
    /// The origin and its pinned key, [`super::MirrorConfig`].
    pub const CONFIG: &str = "mirror.json";
    /// The mirror's ledger directory: an imported log and its state.
    pub const LOG: &str = "log";
    /// The latest checkpoint with the mirror's cosignature, as served.
    pub const COSIGNED: &str = "checkpoint";
    /// Directory of the signed notes kept as evidence when the mirror stops.
    pub const EVIDENCE: &str = "evidence";
    /// Why the mirror stopped, [`super::Stopped`]; its presence refuses every round.
    pub const STOPPED: &str = "stopped.json";
}

/// What the mirror follows, pinned on first use, `mirror.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The origin's checkpoint origin line.
    pub origin: String,
    /// The origin operator's verifier key: every checkpoint and state note must verify
    /// under it.
    pub operator_vkey: String,
}

/// Why the mirror cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Code `origin_unreachable`: a request to the origin failed or was answered with
    /// an error.
    #[error("the origin at {url}: {reason}")]
    Origin {
        /// The URL asked.
        url: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// Code `origin_data_refused`: what the origin served fails a check (an entry, a
    /// bundle, a tree that does not extend the mirror's); the detail says which.
    #[error("the origin's data is refused: {0}")]
    Refused(String),
    /// The origin's checkpoint or note does not parse or verify, or cosigning it failed;
    /// the code is the [`NoteError`]'s.
    #[error("the origin's checkpoint: {0}")]
    Checkpoint(#[source] NoteError),
    /// Code `origin_key_mismatch`: the origin key given is not the one pinned in
    /// `mirror.json`.
    #[error("the origin key {given} is not the key pinned for this mirror, {pinned}")]
    KeyMismatch {
        /// The key given (`--origin-key`), a verifier key.
        given: String,
        /// The key pinned in `mirror.json`.
        pinned: String,
    },
    /// Code `origin_mismatch`: the origin's checkpoint names another origin than the
    /// one pinned.
    #[error("the origin serves {found:?}, this mirror follows {pinned:?}")]
    OriginMismatch {
        /// The origin line of the checkpoint served.
        found: String,
        /// The origin line pinned in `mirror.json`.
        pinned: String,
    },
    /// The mirror is stopped (a fork or a contradicted state note); the code is the
    /// [`Stopped`] record's (`origin_forked`, `state_root_mismatch`, `state_diverged`,
    /// or `mirror_stopped` for a code this build does not know).
    #[error("{0}")]
    Stopped(Stopped),
    /// Importing a batch failed; the code is the [`ImportError`]'s.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The mirror's ledger failed; the code is the [`LedgerError`]'s.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Code `witness_quorum_not_met`: the origin's checkpoint carries fewer verified
    /// witness cosignatures than the [`WitnessPolicy`] requires, so it is not followed.
    #[error("the origin's checkpoint of size {size} carries {verified} verified witness cosignatures, {required} required")]
    WitnessQuorum {
        /// The checkpoint's tree size, in entries.
        size: u64,
        /// Distinct witness keys whose cosignature verified.
        verified: usize,
        /// The quorum, in distinct witness keys.
        required: usize,
    },
    /// Code `mirror_empty`: the mirror holds no log yet.
    #[error("no mirrored log yet: follow the origin once first")]
    Empty,
    /// Code `io`: a file or directory of the mirror could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Code `mirror_config_invalid`: the mirror's configuration is invalid (`mirror.json`,
    /// a key or the witness policy given); the detail says what.
    #[error("mirror.json: {0}")]
    Config(String),
}

impl MirrorError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            MirrorError::Origin { .. } => "origin_unreachable",
            MirrorError::Refused(_) => "origin_data_refused",
            MirrorError::Checkpoint(e) => e.code(),
            MirrorError::KeyMismatch { .. } => "origin_key_mismatch",
            MirrorError::OriginMismatch { .. } => "origin_mismatch",
            MirrorError::Stopped(s) => s.code_static(),
            MirrorError::Import(e) => e.code(),
            MirrorError::Ledger(e) => e.code(),
            MirrorError::WitnessQuorum { .. } => "witness_quorum_not_met",
            MirrorError::Empty => "mirror_empty",
            MirrorError::Io { .. } => "io",
            MirrorError::Config(_) => "mirror_config_invalid",
        }
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MirrorError + '_ {
    move |source| MirrorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A mirror directory, its key and (once it holds anything) its ledger.
pub struct Mirror {
    dir: PathBuf,
    origin: Origin,
    operator: NoteVerifier,
    signer: NoteSigner,
    /// The witness cosignatures checked on the origin's checkpoints.
    witnesses: WitnessPolicy,
    /// About how many entries a commit of a round takes ([`follow::CHUNK_ENTRIES`]).
    chunk_entries: u64,
    ledger: Option<Arc<RwLock<Ledger>>>,
    /// The latest checkpoint with the mirror's cosignature, as served.
    cosigned: Arc<RwLock<Option<String>>>,
}

impl Mirror {
    /// Opens (or creates) the mirror in `dir` following the origin at `reader`: the
    /// origin key is `origin_key`, else the one pinned in `mirror.json`, else the
    /// origin's own on first use. The mirror's ledger is opened if there is one, and
    /// its checkpoint cosigned again if the stored cosignature is behind it.
    ///
    /// # Errors
    /// [`MirrorError::KeyMismatch`] for a key other than the pinned one; I/O; the origin.
    pub fn open(
        dir: &Path,
        signer: NoteSigner,
        reader: &OriginReader,
        origin_key: Option<&str>,
    ) -> Result<Mirror, MirrorError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        if dir.join(any::CONFIG).exists() {
            return Err(MirrorError::Config(format!(
                "{} is an any-log mirror's directory (mirror --any-log)",
                dir.display()
            )));
        }
        let config = pinned_config(dir, reader, origin_key)?;
        let bad = |e: NoteError| MirrorError::Config(e.to_string());
        let origin = Origin::new(config.origin.as_str()).map_err(bad)?;
        let operator = NoteVerifier::from_vkey(&config.operator_vkey).map_err(bad)?;
        let log_dir = dir.join(layout::LOG);
        let ledger = if log_dir.join(crate::log::store::layout::CONFIG).exists() {
            Some(Arc::new(RwLock::new(Ledger::open_imported(&log_dir)?.0)))
        } else {
            None
        };
        let cosigned = fs::read_to_string(dir.join(layout::COSIGNED)).ok();
        let mut mirror = Mirror {
            dir: dir.to_path_buf(),
            origin,
            operator,
            signer,
            witnesses: WitnessPolicy::default(),
            chunk_entries: follow::CHUNK_ENTRIES,
            ledger,
            cosigned: Arc::new(RwLock::new(cosigned)),
        };
        mirror.cosign_current()?;
        Ok(mirror)
    }

    /// Checks the origin's witness cosignatures under `policy` from the next round on:
    /// the verified ones are served beside the mirror's, and a checkpoint without the
    /// quorum is not followed.
    pub fn set_witnesses(&mut self, policy: WitnessPolicy) {
        self.witnesses = policy;
    }

    /// Takes a gap in chunks of about `entries` (at least 1) instead of
    /// [`follow::CHUNK_ENTRIES`]: what a round holds in memory, and how often it commits.
    pub fn set_chunk_entries(&mut self, entries: u64) {
        self.chunk_entries = entries.max(1);
    }

    /// The mirror's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The origin followed.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The mirror's cosigner key (C2SP `cosignature/v1`), for clients to trust.
    pub fn cosigner_vkey(&self) -> String {
        self.signer.cosigner_key().to_vkey()
    }

    /// The mirror's ledger, once it holds a checkpoint.
    pub fn ledger(&self) -> Option<Arc<RwLock<Ledger>>> {
        self.ledger.clone()
    }

    /// The latest cosigned checkpoint, shared with the server.
    pub fn cosigned(&self) -> Arc<RwLock<Option<String>>> {
        Arc::clone(&self.cosigned)
    }

    /// Why the mirror stopped following, if it did.
    ///
    /// # Errors
    /// A `stopped.json` that cannot be read.
    pub fn stopped(&self) -> Result<Option<Stopped>, MirrorError> {
        evidence::read_stopped(&self.dir)
    }

    /// Cosigns the ledger's checkpoint if the stored cosigned one is of another size
    /// (a crash between the import and the cosignature), durably, then serves it.
    fn cosign_current(&mut self) -> Result<(), MirrorError> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let current = ledger
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .log()
            .checkpoint()
            .clone();
        let stored = self
            .cosigned
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let held = stored.as_deref().and_then(|text| {
            SignedCheckpoint::parse_and_verify(text.as_bytes(), &self.operator).ok()
        });
        if held.is_some_and(|c| c.checkpoint() == current.checkpoint()) {
            return Ok(());
        }
        // The witness lines of a crash's lost round are not known: served again once
        // the origin's checkpoint moves on.
        self.cosign(&current, &Witnessed::default())
    }

    /// Adds the verified witness lines and the mirror's cosignature to `checkpoint`,
    /// writes it durably to `DIR/checkpoint` and serves it ("The mirror MUST persist
    /// the new checkpoint before responding").
    fn cosign(
        &mut self,
        checkpoint: &SignedCheckpoint,
        witnessed: &Witnessed,
    ) -> Result<(), MirrorError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| MirrorError::Config("the clock is before 1970".into()))?
            .as_secs();
        let line = crate::log::note::cosign(checkpoint, &self.signer, now)
            .map_err(MirrorError::Checkpoint)?;
        let mut cosigned = checkpoint.clone();
        cosigned
            .add_signature_lines(&format!("{}{line}", witnessed.lines))
            .map_err(MirrorError::Checkpoint)?;
        let text = cosigned.text();
        evidence::write_durably(&self.dir, layout::COSIGNED, text.as_bytes())?;
        *self.cosigned.write().unwrap_or_else(|p| p.into_inner()) = Some(text);
        Ok(())
    }
}

/// `mirror.json`, written on first use from the origin (and `origin_key` if given);
/// later, a given key must be the pinned one.
fn pinned_config(
    dir: &Path,
    reader: &OriginReader,
    origin_key: Option<&str>,
) -> Result<MirrorConfig, MirrorError> {
    let path = dir.join(layout::CONFIG);
    if path.exists() {
        let bytes = fs::read(&path).map_err(io(&path))?;
        let config: MirrorConfig =
            serde_json::from_slice(&bytes).map_err(|e| MirrorError::Config(e.to_string()))?;
        if let Some(given) = origin_key {
            if given != config.operator_vkey {
                return Err(MirrorError::KeyMismatch {
                    given: given.to_owned(),
                    pinned: config.operator_vkey,
                });
            }
        }
        return Ok(config);
    }
    let vkey = match origin_key {
        Some(key) => key.to_owned(),
        None => reader.operator_vkey()?,
    };
    let operator =
        NoteVerifier::from_vkey(&vkey).map_err(|e| MirrorError::Config(e.to_string()))?;
    let bytes = reader.checkpoint()?;
    let checkpoint =
        SignedCheckpoint::parse_and_verify(&bytes, &operator).map_err(MirrorError::Checkpoint)?;
    let config = MirrorConfig {
        origin: checkpoint.checkpoint().origin.as_str().to_owned(),
        operator_vkey: vkey,
    };
    let json =
        serde_json::to_vec_pretty(&config).map_err(|e| MirrorError::Config(e.to_string()))?;
    evidence::write_durably(dir, layout::CONFIG, &json)?;
    Ok(config)
}

/// How fast this machine checks the mirror's leaves alone (decoding, every signature,
/// the leaf hash, on all cores): the bound a mirror's catch-up is measured against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifyLimit {
    /// Leaves checked.
    pub entries: u64,
    /// Envelope signatures verified among them.
    pub signatures: u64,
    /// Wall time of the check, in seconds.
    pub seconds: f64,
}

/// Checks every leaf the mirror holds with [`crate::log::leaf_check::check_leaves`]
/// and times it (the leaves are read first, untimed).
///
/// # Errors
/// [`MirrorError::Empty`]; read faults; a leaf that fails (it passed when imported).
pub fn verify_limit(mirror: &Mirror) -> Result<VerifyLimit, MirrorError> {
    let ledger = mirror.ledger().ok_or(MirrorError::Empty)?;
    let guard = ledger.read().unwrap_or_else(|p| p.into_inner());
    let log = guard.log();
    let bytes = (0..log.size())
        .map(|i| log.leaf_bytes(i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(LedgerError::from)?;
    drop(guard);
    let keys = crate::log::envelope::KeyCache::self_certifying();
    let started = std::time::Instant::now();
    let checked = crate::log::leaf_check::check_leaves(&bytes, &keys);
    let seconds = started.elapsed().as_secs_f64();
    let mut signatures = 0u64;
    for (index, leaf) in checked.into_iter().enumerate() {
        let leaf = leaf.map_err(|e| MirrorError::Refused(format!("entry {index}: {e}")))?;
        signatures += leaf.signatures() as u64;
    }
    Ok(VerifyLimit {
        entries: bytes.len() as u64,
        signatures,
        seconds,
    })
}
