//! `POST /v1/cosign`: a consumer association's C2SP tlog-cosignature
//! (<https://c2sp.org/tlog-cosignature>) on the current checkpoint, collected and served
//! appended to `GET /checkpoint`.
//!
//! The request names the party, the tree size it cosigned, and the signature line
//! (`— <name> base64(key id ‖ timestamp ‖ signature)`, as [`crate::log::note::cosign`]
//! makes it):
//!
//! ```json
//! {"party": "assoc-01", "size": 42, "cosignature": "— assoc-01 AbCd...\n"}
//! ```
//!
//! It is accepted only if the party is registered in the ledger with role
//! `association`, the request carries exactly one signature line, that line names one
//! of the party's registered, unrevoked keys as a cosigner (same name, key id of type
//! 0x04), and it verifies, in this request, as a cosignature/v1 over the current
//! checkpoint. The association's registered key is a signed-note vkey (type 0x01); its
//! cosigner identity is the same name and public key with type 0x04, as
//! tlog-cosignature says "Ed25519 public keys MAY be encoded as vkeys with signature
//! type 0x04".
//!
//! Architecture invariant: a line is served only if it was verified against the
//! association's registered key — in the request that brought it, or again when the
//! server starts. Lines are kept per association (a new one replaces the old), never
//! merged into a note from what a client sent, so an anonymous request cannot add a
//! line next to one already collected.
//!
//! Storage: each association's line on a tree size is written (fsync, then rename) to
//! `DIR/cosignatures/<size>/<party>` — not in sled, whose contents are derived from
//! `log.dat` and may be deleted; cosignatures are not derivable. On start the current
//! size's lines are read again and each is verified again against the ledger's keys;
//! a line that does not verify is logged and not served. (A single file
//! `cosignatures/<size>`, the format before lines were kept per association, is not
//! read: its lines were never verified one by one.)
//!
//! ```
//! use lesson_ledger::http::cosign::CosignRequest;
//! let r: CosignRequest = serde_json::from_str(
//!     r#"{"party":"assoc-01","size":1,"cosignature":"— assoc-01 AAAA\n"}"#).unwrap();
//! assert_eq!(r.size, 1);
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::AppState;
use crate::ledger::payload::Role;
use crate::ledger::queries;
use crate::ledger::units::Id;
use crate::ledger::writer::Ledger;
use crate::log::note::{
    verify_cosignature, CosignerKey, KeyId, KeyName, NoteVerifier, SignedCheckpoint,
};

/// Directory, inside the ledger directory, holding the cosignature lines.
pub const COSIGNATURES_DIR: &str = "cosignatures";

pub use crate::limits::COSIGN_BODY_BYTES_MAX;

/// The request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosignRequest {
    /// The association's party ref.
    pub party: String,
    /// The tree size of the checkpoint cosigned (must be the current one).
    pub size: u64,
    /// Exactly one signature line, ending in a newline.
    pub cosignature: String,
}

/// The answer: the checkpoint with every cosignature collected so far.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosignResponse {
    /// The checkpoint note, with the cosignature lines collected so far.
    pub checkpoint: String,
}

/// Verified lines on one checkpoint. Invariant: every line in `lines` verified, as a
/// cosignature on `checkpoint`, under a registered key of the association it is filed
/// under; `text` is `checkpoint` with exactly those lines.
#[derive(Debug)]
struct Collected {
    checkpoint: SignedCheckpoint,
    lines: BTreeMap<String, String>,
    text: String,
}

impl Collected {
    fn empty(checkpoint: &SignedCheckpoint) -> Collected {
        Collected {
            checkpoint: checkpoint.clone(),
            lines: BTreeMap::new(),
            text: checkpoint.text(),
        }
    }

    /// Files `line` (verified by the caller) under `party` and rebuilds the served text.
    fn insert(&mut self, party: &str, line: String) -> Result<(), ApiError> {
        let mut lines = self.lines.clone();
        lines.insert(party.to_owned(), line);
        let mut note = self.checkpoint.clone();
        for line in lines.values() {
            note.add_signature_lines(line)
                .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
        }
        self.text = note.text();
        self.lines = lines;
        Ok(())
    }
}

/// The cosignatures collected on the latest checkpoint.
#[derive(Debug, Default)]
pub struct Cosignatures {
    latest: Mutex<Option<Collected>>,
}

impl Cosignatures {
    /// Loads the lines stored on the ledger's current checkpoint, keeping only those
    /// that verify again under the registered key of the association they are filed
    /// under.
    pub fn load(ledger: &Ledger) -> Cosignatures {
        let log = ledger.log();
        let current = log.checkpoint();
        let dir = dir_for(log.dir(), log.size());
        let mut collected = Collected::empty(current);
        for (party, line) in stored_lines(&dir) {
            match verified_line(ledger, current, &party, &line) {
                Ok(line) => {
                    if let Err(e) = collected.insert(&party, line) {
                        tracing::warn!(party, error = %e, "stored cosignature not served");
                    }
                }
                Err(e) => {
                    tracing::warn!(party, code = e.code(), error = %e, "stored cosignature does not verify; not served");
                }
            }
        }
        Cosignatures {
            latest: Mutex::new(Some(collected)),
        }
    }

    /// Files `line`, verified by [`verified_line`] on `checkpoint`, under `party`:
    /// written durably to `cosignatures/<size>/<party>`, and served if `checkpoint` is
    /// still the ledger's current one. Returns the text served for `checkpoint`.
    fn file(
        &self,
        ledger: &Ledger,
        checkpoint: &SignedCheckpoint,
        party: &str,
        line: String,
    ) -> Result<String, ApiError> {
        let log = ledger.log();
        let path = dir_for(log.dir(), checkpoint.checkpoint().size).join(party);
        if log.checkpoint().checkpoint() != checkpoint.checkpoint() {
            // Superseded while the witness answered: kept on disk, not served.
            write_durably(&path, &line).map_err(ApiError::internal)?;
            let mut alone = Collected::empty(checkpoint);
            alone.insert(party, line)?;
            return Ok(alone.text);
        }
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let mut collected = match latest.take() {
            Some(c) if c.checkpoint.checkpoint() == checkpoint.checkpoint() => c,
            _ => Collected::empty(checkpoint),
        };
        let stored = collected
            .insert(party, line.clone())
            .and_then(|()| write_durably(&path, &line).map_err(ApiError::internal));
        let text = collected.text.clone();
        *latest = Some(collected);
        stored?;
        Ok(text)
    }

    /// Files the lines a tlog-witness returned for `checkpoint` (its `add-checkpoint`
    /// answer) under the association `party` whose registered key is `key`: each line
    /// of `key` goes through the same check as a `POST /v1/cosign` line
    /// (`verified_line`) before it is stored or served; lines of other keys are
    /// ignored, as tlog-witness says ("The client MUST ignore any cosignatures from
    /// unknown keys"). Returns how many lines were filed.
    ///
    /// # Errors
    /// As `verified_line`; internal faults writing the line.
    pub fn file_witness_lines(
        &self,
        ledger: &Ledger,
        checkpoint: &SignedCheckpoint,
        party: &str,
        key: &CosignerKey,
        lines: &str,
    ) -> Result<usize, ApiError> {
        let mut filed = 0;
        for line in lines.split_inclusive('\n') {
            let mut probe = checkpoint.clone();
            probe
                .add_signature_lines(line)
                .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
            let ours = probe.note().signatures().iter().any(|s| {
                s.name() == key.name() && s.key_id() == key.key_id() && s.to_line() == line
            });
            if !ours {
                continue;
            }
            let line = verified_line(ledger, checkpoint, party, line)?;
            self.file(ledger, checkpoint, party, line)?;
            filed += 1;
        }
        Ok(filed)
    }

    /// `current` with the cosignatures collected on it, as served at `/checkpoint`.
    pub fn served(&self, current: &SignedCheckpoint) -> String {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        match &*latest {
            Some(c) if c.checkpoint.checkpoint() == current.checkpoint() => c.text.clone(),
            _ => current.text(),
        }
    }
}

/// `checkpoint`, one the log signed (the current one or an older one), with the
/// cosignature lines stored for its tree size that verify again, in this call, under a
/// registered key of the association each is filed under (the checkpoint history,
/// `GET /v1/checkpoints`). A line that does not verify is logged and left out.
pub(crate) fn with_stored_cosignatures(ledger: &Ledger, checkpoint: &SignedCheckpoint) -> String {
    let size = checkpoint.checkpoint().size;
    let mut collected = Collected::empty(checkpoint);
    for (party, line) in stored_lines(&dir_for(ledger.log().dir(), size)) {
        let verified = verified_line(ledger, checkpoint, &party, &line)
            .and_then(|line| collected.insert(&party, line));
        if let Err(e) = verified {
            tracing::warn!(party, size, code = e.code(), error = %e, "stored cosignature does not verify; not served");
        }
    }
    collected.text
}

/// The `(party, line)` files of a size's directory; unreadable ones are logged and
/// skipped (they are verified before use anyway).
fn stored_lines(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            continue;
        }
        match fs::read_to_string(entry.path()) {
            Ok(line) => out.push((name, line)),
            Err(e) => {
                tracing::warn!(path = %entry.path().display(), error = %e, "unreadable cosignature")
            }
        }
    }
    out
}

fn dir_for(dir: &Path, size: u64) -> PathBuf {
    dir.join(COSIGNATURES_DIR).join(format!("{size:020}"))
}

/// Writes `text` to `path` durably: a temporary file, fsync, rename, fsync of the dir.
fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // The format before lines were kept per association was one file where this
    // directory goes: set it aside, unread (its lines were never verified one by one).
    if dir.is_file() {
        fs::rename(dir, dir.with_extension("unverified"))?;
    }
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

fn forbidden(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::Forbidden {
        code,
        detail: detail.into(),
    }
}

/// "Ed25519 public keys MAY be encoded as vkeys with signature type 0x04": the
/// association's registered, unrevoked key named `name` with cosigner key id `key_id`.
fn registered_cosigner(
    keys: &[(crate::ledger::units::KeyRef, Option<u64>)],
    name: &KeyName,
    key_id: KeyId,
) -> Option<CosignerKey> {
    keys.iter()
        .filter(|(_, revoked)| revoked.is_none())
        .filter_map(|(key, _)| NoteVerifier::from_vkey(key.as_str()).ok())
        .filter_map(|v| CosignerKey::new(v.name().clone(), *v.verifying_key()).ok())
        .find(|c| c.name() == name && c.key_id() == key_id)
}

/// The association `party`'s registered, unrevoked key as the cosigner `key`: what
/// `serve --witness` checks before it asks a witness for cosignatures, so that every
/// line a witness returns can be filed under the association it is (schemas/README.md,
/// "Witnesses").
///
/// # Errors
/// As `verified_line` for the party; `bad_cosignature` (403) when the key is not one
/// of its registered, unrevoked keys.
pub fn association_cosigner(
    ledger: &Ledger,
    party: &str,
    key: &CosignerKey,
) -> Result<(), ApiError> {
    let info = association(ledger, party)?;
    registered_cosigner(&info.keys, key.name(), key.key_id())
        .filter(|c| c == key)
        .map(|_| ())
        .ok_or_else(|| {
            forbidden(
                "bad_cosignature",
                format!("{} is not a registered key of {party}", key.to_vkey()),
            )
        })
}

fn association(ledger: &Ledger, party: &str) -> Result<queries::PartyInfo, ApiError> {
    Id::new("party", party).map_err(|e| ApiError::bad_request("malformed_id", e.to_string()))?;
    let info = queries::party(ledger.state(), party)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound {
            what: "party",
            id: party.to_owned(),
        })?;
    if info.role != Role::Association {
        return Err(forbidden(
            "not_an_association",
            format!("{party} is not a consumer association"),
        ));
    }
    Ok(info)
}

/// Checks that `line` is exactly one signature line, by a registered, unrevoked key of
/// the association `party`, that verifies on `current`; returns it as it will be served.
///
/// # Errors
/// `malformed_id` (400), `party_not_found` (404), `not_an_association` (403),
/// `too_many_cosignatures` / `malformed_signature_line` (400), `bad_cosignature` (403).
fn verified_line(
    ledger: &Ledger,
    current: &SignedCheckpoint,
    party: &str,
    line: &str,
) -> Result<String, ApiError> {
    let info = association(ledger, party)?;
    // The operator's checkpoint and this one line, nothing else: what verifies below is
    // exactly what will be served.
    let mut alone = current.clone();
    let before = alone.note().signatures().len();
    let added = alone
        .add_signature_lines(line)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    if line.matches('\n').count() != 1 || added != 1 {
        return Err(ApiError::bad_request(
            "too_many_cosignatures",
            "post exactly one new cosignature line",
        ));
    }
    let signature = alone.note().signatures()[before].clone();
    let cosigner = registered_cosigner(&info.keys, signature.name(), signature.key_id())
        .ok_or_else(|| {
            forbidden(
                "bad_cosignature",
                format!("the line is not signed by a registered cosigner key of {party}"),
            )
        })?;
    verify_cosignature(&alone, &cosigner).map_err(|e| {
        forbidden(
            "bad_cosignature",
            format!("the cosignature of {party} does not verify on the current checkpoint: {e}"),
        )
    })?;
    Ok(signature.to_line())
}

/// `POST /v1/cosign`.
///
/// # Errors
/// `malformed_request` (400), `checkpoint_superseded` (409) when the checkpoint moved
/// on, `party_not_found` (404), `not_an_association` (403), `too_many_cosignatures`
/// (400), `bad_cosignature` (403).
pub async fn post_cosign(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<Json<CosignResponse>, ApiError> {
    if body.len() > COSIGN_BODY_BYTES_MAX {
        return Err(ApiError::TooLarge {
            max: COSIGN_BODY_BYTES_MAX,
        });
    }
    let request: CosignRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
    let state = app.clone();
    // Not `read`: storing a cosignature fsyncs, which must not run on the runtime.
    app.read_blocking(move |ledger| {
        let log = ledger.log();
        let current = log.checkpoint();
        let size = current.checkpoint().size;
        if request.size != size {
            return Err(ApiError::Conflict {
                code: "checkpoint_superseded",
                detail: format!(
                    "the current checkpoint has size {size}, not {}",
                    request.size
                ),
            });
        }
        let line = verified_line(ledger, current, &request.party, &request.cosignature)?;
        let text = state
            .cosignatures
            .file(ledger, current, &request.party, line)?;
        Ok(CosignResponse { checkpoint: text })
    })
    .await
    .map(Json)
}
