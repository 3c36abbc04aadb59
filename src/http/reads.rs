//! The log reads: `GET /checkpoint` (C2SP signed note, <https://c2sp.org/tlog-checkpoint>),
//! `GET /v1/proofs/inclusion`, `GET /v1/proofs/consistency` (RFC 9162 §2.1.3 and §2.1.4,
//! <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3>), `GET /v1/log` and `GET /healthz`.
//!
//! Proof hashes are standard base64, as in receipts. Query parameters are parsed here,
//! strictly: a missing, malformed or unknown parameter is a `400` problem naming it.
//!
//! ```
//! use lesson_ledger::http::reads::Params;
//! let p = Params::parse(Some("index=3&size=10"), &["index", "size"]).unwrap();
//! assert_eq!(p.u64("index").unwrap(), Some(3));
//! assert_eq!(Params::parse(Some("idx=3"), &["index"]).unwrap_err().code(), "unknown_parameter");
//! ```

use std::sync::atomic::Ordering;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::ApiError;
use super::AppState;
use crate::log::hash::Hash;
use crate::log::store::LogError;

/// Strictly parsed query parameters: each known at most once, no others.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `query`, allowing only the names in `known`.
    ///
    /// # Errors
    /// `unknown_parameter`, `duplicate_parameter`, `malformed_query`.
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            if !known.contains(&name) {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!("unknown query parameter {:?}", truncate(name)),
                ));
            }
            if pairs.iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad_request(
                    "duplicate_parameter",
                    format!("query parameter {name:?} given twice"),
                ));
            }
            pairs.push((name.to_owned(), value.to_owned()));
        }
        Ok(Params { pairs })
    }

    /// A decimal `u64` parameter, if present.
    ///
    /// # Errors
    /// `malformed_parameter`.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some((_, value)) = self.pairs.iter().find(|(n, _)| n == name) else {
            return Ok(None);
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request(
                "malformed_parameter",
                format!("{name} must be a decimal number"),
            ));
        }
        value.parse().map(Some).map_err(|_| {
            ApiError::bad_request("malformed_parameter", format!("{name} is out of range"))
        })
    }

    /// A required decimal `u64` parameter.
    ///
    /// # Errors
    /// `missing_parameter`, `malformed_parameter`.
    pub fn required_u64(&self, name: &str) -> Result<u64, ApiError> {
        self.u64(name)?.ok_or_else(|| {
            ApiError::bad_request(
                "missing_parameter",
                format!("query parameter {name} is required"),
            )
        })
    }
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `GET /checkpoint`: the latest signed checkpoint, with the cosignatures collected.
pub async fn get_checkpoint(State(app): State<AppState>) -> Result<Response, ApiError> {
    let text = app.checkpoint_text().await?;
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `GET /v1/state-notes/{size}`: the operator's signed state note of the batch that
/// ended at `size`, as stored (`text/plain`), so that a remote auditor who replays the
/// log can compare the state map root the operator signed at that size.
///
/// # Errors
/// `malformed_index` (400); `state_note_not_found` (404) when no batch ended there.
pub async fn get_state_note(
    State(app): State<AppState>,
    axum::extract::Path(size): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let size = super::entries::parse_index(&size)?;
    let note = app
        .read(move |ledger| ledger.log().state_note_at(size).map_err(ApiError::internal))
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "state note",
            id: size.to_string(),
        })?;
    let mut response = (StatusCode::OK, note).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

/// An inclusion proof as served.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Index of the entry proven.
    pub index: u64,
    /// Tree size the proof is for.
    pub size: u64,
    /// The leaf hash of entry `index`, base64.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up, base64.
    pub proof: Vec<String>,
}

/// A consistency proof as served.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The smaller tree size.
    pub from: u64,
    /// The larger tree size.
    pub to: u64,
    /// RFC 9162 §2.1.4 proof nodes, base64.
    pub proof: Vec<String>,
}

fn b64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_base64).collect()
}

/// Store range errors are the client's (400 `out_of_range`); the rest are faults.
fn range_or_fault(e: LogError) -> ApiError {
    match e {
        // The store's message names the number that was wrong (index, size, or order).
        LogError::OutOfRange { range } => ApiError::bad_request("out_of_range", range.to_string()),
        LogError::Proof(p) => ApiError::bad_request(p.code(), p.to_string()),
        other => ApiError::internal(other),
    }
}

/// `GET /v1/proofs/inclusion?index=I[&size=N]` (`size` defaults to the current size).
///
/// # Errors
/// Parameter problems; `out_of_range` unless `index < size <= current size`.
pub async fn get_inclusion(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<InclusionProof>, ApiError> {
    let params = Params::parse(query.as_deref(), &["index", "size"])?;
    let index = params.required_u64("index")?;
    let size = params.u64("size")?;
    app.read(move |ledger| {
        let log = ledger.log();
        let size = size.unwrap_or(log.size());
        let proof = log.inclusion_proof(index, size).map_err(range_or_fault)?;
        let leaf_hash = log.leaf_hash_at(index).map_err(range_or_fault)?;
        Ok(InclusionProof {
            index,
            size,
            leaf_hash: leaf_hash.to_base64(),
            proof: b64(&proof),
        })
    })
    .await
    .map(Json)
}

/// `GET /v1/proofs/consistency?from=M[&to=N]` (`to` defaults to the current size).
///
/// # Errors
/// Parameter problems; `out_of_range` unless `from <= to <= current size`.
pub async fn get_consistency(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let params = Params::parse(query.as_deref(), &["from", "to"])?;
    let from = params.required_u64("from")?;
    let to = params.u64("to")?;
    app.read(move |ledger| {
        let log = ledger.log();
        let to = to.unwrap_or(log.size());
        let proof = log.consistency_proof(from, to).map_err(range_or_fault)?;
        Ok(ConsistencyProof {
            from,
            to,
            proof: b64(&proof),
        })
    })
    .await
    .map(Json)
}

/// `GET /v1/log`: who this log is.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogInfo {
    /// The checkpoint origin line.
    pub origin: String,
    /// The operator's C2SP signed-note verifier key.
    pub operator_vkey: String,
    /// The leaf format version.
    pub leaf_version: u8,
    /// Current number of entries.
    pub size: u64,
    /// The genesis entry's payload (the ledger's parameters), once there is one.
    pub genesis: Option<Box<RawValue>>,
}

/// `GET /v1/log`.
///
/// # Errors
/// Store faults only.
pub async fn get_log(State(app): State<AppState>) -> Result<Json<LogInfo>, ApiError> {
    app.read(|ledger| {
        let log = ledger.log();
        let genesis = if log.size() == 0 {
            None
        } else {
            let leaf = log.entry(0).map_err(ApiError::internal)?;
            // The rules accepted entry 0, so its payload is JSON; if not, say nothing.
            std::str::from_utf8(leaf.envelope.payload())
                .ok()
                .and_then(|s| RawValue::from_string(s.to_owned()).ok())
        };
        Ok(LogInfo {
            origin: log.config().origin.clone(),
            operator_vkey: log.config().operator_vkey.clone(),
            leaf_version: log.config().leaf_version,
            size: log.size(),
            genesis,
        })
    })
    .await
    .map(Json)
}

/// `GET /healthz`: `200 ok` while the writer can write, `503` once it has failed.
pub async fn get_healthz(State(app): State<AppState>) -> Response {
    if app.sequencer.stats().failed.load(Ordering::Acquire) {
        return ApiError::Unavailable {
            reason: "writer_failed",
        }
        .into_response();
    }
    (StatusCode::OK, "ok\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_strict() {
        let known = &["index", "size"];
        assert_eq!(
            Params::parse(None, known).unwrap().u64("index").unwrap(),
            None
        );
        let p = Params::parse(Some("index=1"), known).unwrap();
        assert_eq!(
            p.required_u64("size").unwrap_err().code(),
            "missing_parameter"
        );
        for (q, code) in [
            ("index=1&index=2", "duplicate_parameter"),
            ("bogus=1", "unknown_parameter"),
        ] {
            assert_eq!(
                Params::parse(Some(q), known).unwrap_err().code(),
                code,
                "{q}"
            );
        }
        for q in [
            "index=",
            "index=-1",
            "index=%31",
            "index=99999999999999999999",
        ] {
            let p = Params::parse(Some(q), known).unwrap();
            assert_eq!(
                p.u64("index").unwrap_err().code(),
                "malformed_parameter",
                "{q}"
            );
        }
    }
}
