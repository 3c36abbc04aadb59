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
//! `association`, and the line verifies, as a cosignature/v1 (key type 0x04) over the
//! current checkpoint, under one of the party's registered, unrevoked Ed25519 keys.
//! The association's registered key is a signed-note vkey (type 0x01); its cosigner
//! identity is the same name and public key with type 0x04, as tlog-cosignature says
//! "Ed25519 public keys MAY be encoded as vkeys with signature type 0x04".
//!
//! Storage: the cosigned note of each tree size is written (fsync, then rename) to
//! `DIR/cosignatures/<size>` — not in sled, whose contents are derived from `log.dat`
//! and may be deleted; cosignatures are not derivable. On start the current size's file
//! is loaded again, and verified again.
//!
//! ```
//! use lesson_ledger::http::cosign::CosignRequest;
//! let r: CosignRequest = serde_json::from_str(
//!     r#"{"party":"assoc-01","size":1,"cosignature":"— assoc-01 AAAA\n"}"#).unwrap();
//! assert_eq!(r.size, 1);
//! ```

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
use crate::ledger::writer::Ledger;
use crate::log::note::{verify_cosignature, CosignerKey, NoteVerifier, SignedCheckpoint};

/// Directory, inside the ledger directory, holding the cosigned checkpoints.
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
    /// The signature line(s).
    pub cosignature: String,
}

/// The answer: the checkpoint with every cosignature collected so far.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosignResponse {
    pub checkpoint: String,
}

/// The cosignatures collected on the latest cosigned checkpoint.
#[derive(Debug, Default)]
pub struct Cosignatures {
    latest: Mutex<Option<SignedCheckpoint>>,
}

impl Cosignatures {
    /// Loads the cosigned note of the ledger's current checkpoint, if one was stored
    /// and still verifies under the operator's key.
    pub fn load(ledger: &Ledger) -> Cosignatures {
        let log = ledger.log();
        let path = file_for(log.dir(), log.size());
        let latest = fs::read(&path).ok().and_then(|bytes| {
            match SignedCheckpoint::parse_and_verify(&bytes, log.verifier()) {
                Ok(cp) if cp.checkpoint() == log.checkpoint().checkpoint() => Some(cp),
                Ok(_) | Err(_) => {
                    tracing::warn!(path = %path.display(), "stored cosignatures do not match the checkpoint; ignored");
                    None
                }
            }
        });
        Cosignatures {
            latest: Mutex::new(latest),
        }
    }

    /// `current` with the cosignatures collected on it, as served at `/checkpoint`.
    pub fn served(&self, current: &SignedCheckpoint) -> String {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        match &*latest {
            Some(cp) if cp.checkpoint() == current.checkpoint() => cp.text(),
            _ => current.text(),
        }
    }
}

fn file_for(dir: &Path, size: u64) -> PathBuf {
    dir.join(COSIGNATURES_DIR).join(format!("{size:020}"))
}

/// Writes `text` to `path` durably: a temporary file, fsync, rename, fsync of the dir.
fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
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

/// `POST /v1/cosign`.
///
/// # Errors
/// `malformed_request` (400), `checkpoint_superseded` (409) when the checkpoint moved
/// on, `party_not_found` (404), `not_an_association` (403), `bad_cosignature` (403).
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
        let cosignatures = &state.cosignatures;
        let log = ledger.log();
        let current = log.checkpoint();
        if request.size != current.checkpoint().size {
            return Err(ApiError::Conflict {
                code: "checkpoint_superseded",
                detail: format!(
                    "the current checkpoint has size {}, not {}",
                    current.checkpoint().size,
                    request.size
                ),
            });
        }
        let party = queries::party(ledger.state(), &request.party)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::NotFound {
                what: "party",
                id: request.party.clone(),
            })?;
        if party.role != Role::Association {
            return Err(forbidden(
                "not_an_association",
                format!("{} is not a consumer association", request.party),
            ));
        }
        let mut latest = cosignatures.latest.lock().unwrap_or_else(|p| p.into_inner());
        let mut cosigned = match &*latest {
            Some(cp) if cp.checkpoint() == current.checkpoint() => cp.clone(),
            _ => current.clone(),
        };
        cosigned
            .add_signature_lines(&request.cosignature)
            .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
        // "Ed25519 public keys MAY be encoded as vkeys with signature type 0x04": the
        // registered key, under its name, as a cosigner.
        let verified = party
            .keys
            .iter()
            .filter(|(_, revoked)| revoked.is_none())
            .filter_map(|(key, _)| NoteVerifier::from_vkey(key.as_str()).ok())
            .filter_map(|v| CosignerKey::new(v.name().clone(), *v.verifying_key()).ok())
            .any(|cosigner| verify_cosignature(&cosigned, &cosigner).is_ok());
        if !verified {
            return Err(forbidden(
                "bad_cosignature",
                "no cosignature on the current checkpoint verifies under a registered key of this association",
            ));
        }
        // Every line merged must be one we can vouch for: the association's own
        // (verified above) or those already collected. A second, unverified line
        // smuggled into the same request is refused.
        let before = latest
            .as_ref()
            .filter(|cp| cp.checkpoint() == current.checkpoint())
            .map_or(1, |cp| cp.note().signatures().len());
        if cosigned.note().signatures().len() > before + 1 {
            return Err(ApiError::bad_request(
                "too_many_cosignatures",
                "post one cosignature line at a time",
            ));
        }
        let text = cosigned.text();
        write_durably(&file_for(log.dir(), current.checkpoint().size), &text)
            .map_err(ApiError::internal)?;
        *latest = Some(cosigned);
        Ok(CosignResponse { checkpoint: text })
    })
    .await
    .map(Json)
}
