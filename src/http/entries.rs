//! `POST /v1/entries` (one envelope, or a batch) and the entry reads
//! `GET /v1/entries/{index}`, `GET /v1/entries/by-id/{id}`.
//!
//! A submission is parsed and its signatures verified (off the runtime, in parallel
//! with rayon for a batch) *before* it is queued, so the writer only ever sees
//! [`VerifiedEnvelope`](crate::log::envelope::VerifiedEnvelope)s, through the one
//! submission path the CLI's `append` uses too ([`crate::api::submission`], which words
//! every result). Each entry gets a result, as TigerBeetle answers each event:
//!
//! | `status` | meaning | single-envelope HTTP status |
//! |---|---|---|
//! | `ok` | appended and durable; `receipt` | 200 |
//! | `exists` | the same statement was logged before; its `receipt` | 200 |
//! | `exists_with_different_payload` | another statement uses this entry id | 409 (problem) |
//! | a rule code, e.g. `claim_exceeds_…` | the lesson rules refused it | 422 (problem) |
//! | an envelope code, e.g. `bad_signature` | refused before the log (shape, signature) | 400 (problem) |
//!
//! A batch (`{"entries": [envelope, ...]}`, at most [`ENTRIES_PER_REQUEST_MAX`]) is
//! always answered `200 {"results": [...]}` with one result per entry, in order; only a
//! problem with the batch itself (not JSON, not that shape, too many) is an error.
//!
//! ```
//! use lesson_ledger::http::entries::ENTRIES_PER_REQUEST_MAX;
//! assert!(ENTRIES_PER_REQUEST_MAX <= lesson_ledger::limits::BATCH_ENTRIES_MAX);
//! ```

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::admission::{Admitted, LedgerAccess, Verdict};
use super::error::ApiError;
use super::sequencer::{QueueError, RETRY_AFTER_SECS};
use super::AppState;
use crate::api::submission::{self, Answer, Family, Screen, Slot};
use crate::ledger::writer::Ledger;
use crate::log::envelope::{EntryId, Envelope, EnvelopeError};
use crate::log::store::LogError;

pub use crate::api::submission::EntryResult;

pub use crate::limits::{ENTRIES_PER_REQUEST_MAX, REQUEST_BODY_BYTES_MAX};

/// How a single submission's answer is sent: the result, or its refusal as a problem.
fn into_single(answer: Answer) -> Result<Response, ApiError> {
    let detail = answer.result.error.clone().unwrap_or_default();
    let code = answer.code;
    match answer.family {
        Family::Accepted => Ok((StatusCode::OK, Json(answer.result)).into_response()),
        Family::Envelope => Err(ApiError::Envelope { code, detail }),
        Family::Conflict => Err(ApiError::Conflict { code, detail }),
        Family::Refused => Err(ApiError::Refused { code, detail }),
    }
}

/// Batch request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody<'a> {
    #[serde(borrow)]
    entries: Vec<&'a RawValue>,
}

/// Batch response body.
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BatchResults {
    /// One per submitted entry, in order.
    pub results: Vec<EntryResult>,
}

/// `POST /v1/entries`.
///
/// # Errors
/// Problems for the batch (malformed, too many entries, too large), a full queue (429),
/// and, for a single envelope, its refusal.
pub async fn post_entries(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    if body.len() > REQUEST_BODY_BYTES_MAX {
        return Err(ApiError::TooLarge {
            max: REQUEST_BODY_BYTES_MAX,
        });
    }
    let (batch, slots) = match screen_inline(&app, &body)? {
        Some(screened) => screened,
        None => {
            let app = app.clone();
            // On the blocking pool, not rayon's: bounding verification to one rayon
            // thread a core was tried and, on this shared two-core machine, cut single
            // POSTs by a quarter (median 2,770/s against 3,800/s over four runs each).
            tokio::task::spawn_blocking(move || {
                let (batch, envelopes) = parse_submission(&body)?;
                let access = LedgerAccess::Wait(&app.ledger);
                match screen_and_verify(access, &app, envelopes)? {
                    Some(slots) => Ok((batch, slots)),
                    None => Err(ApiError::internal(
                        "admission gave up waiting for the ledger",
                    )),
                }
            })
            .await
            .map_err(ApiError::internal)??
        }
    };

    // Entries refused before the log keep their answer; the rest go to the writer,
    // and their outcomes fill the empty slots in order.
    let (to_append, pending) = submission::split(slots);
    let outcomes = if to_append.is_empty() {
        Vec::new()
    } else {
        match app.sequencer.submit(to_append).await {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(fault)) => return Err(ApiError::internal(fault)),
            Err(QueueError::Full) => {
                return Err(ApiError::QueueFull {
                    retry_after_secs: RETRY_AFTER_SECS,
                })
            }
            Err(e @ (QueueError::Stopped | QueueError::Failed)) => {
                return Err(ApiError::Unavailable { reason: e.code() })
            }
        }
    };
    let answers = pending.merge(outcomes).map_err(ApiError::internal)?;
    if batch {
        let results = answers.into_iter().map(|a| a.result).collect();
        return Ok(Json(BatchResults { results }).into_response());
    }
    match answers.into_iter().next() {
        Some(answer) => into_single(answer),
        None => Err(ApiError::internal("a single submission produced no result")),
    }
}

/// Most signatures a submission may carry to be verified right on the runtime (a
/// registration carries three: the operator's, the new key's, an association's).
const INLINE_SIGNATURES_MAX: usize = 4;

/// The hot path, one envelope of a few signatures, screened and verified right here on
/// the runtime worker: `None` for anything else, or when admission would have to wait
/// for the ledger's lock (the writer holds it for a whole group commit), which is then
/// done on the blocking pool. Issue 15's profile of single POSTs: the hop to the blocking
/// pool and back, and up to one blocking thread a connection contending for two cores,
/// cost more kernel time (context switches) than the two or three verifications it moved.
fn screen_inline(app: &AppState, body: &[u8]) -> Result<Option<(bool, Vec<Slot>)>, ApiError> {
    if body.len() > crate::limits::ENVELOPE_BYTES_MAX {
        return Ok(None);
    }
    let (batch, envelopes) = parse_submission(body)?;
    let signatures: usize = envelopes
        .iter()
        .flatten()
        .map(|e| e.signatures().len())
        .sum();
    if envelopes.len() != 1 || signatures > INLINE_SIGNATURES_MAX {
        return Ok(None);
    }
    let access = LedgerAccess::IfFree(&app.ledger);
    Ok(screen_and_verify(access, app, envelopes)?.map(|slots| (batch, slots)))
}

/// Refuses what [`super::admission::admit`] refuses and verifies the rest (in parallel
/// for a batch): one slot per envelope, in order; `None` if admission needed the ledger
/// and `access` may not wait for it.
fn screen_and_verify(
    access: LedgerAccess<'_>,
    app: &AppState,
    envelopes: Vec<Result<Envelope, EnvelopeError>>,
) -> Result<Option<Vec<Slot>>, ApiError> {
    // Cheap refusals first: no signature is verified for an unknown key, a repeated
    // envelope or an oversized request.
    let admitted = match super::admission::admit(access, &app.registered, &envelopes)? {
        Admitted::Verdicts(verdicts) => verdicts,
        Admitted::LedgerBusy => return Ok(None),
    };
    // Verified in parallel (rayon); shape errors and refusals already have their result.
    let screens = admitted
        .into_iter()
        .map(|verdict| match verdict {
            Verdict::Verify => Screen::Verify,
            Verdict::Refuse(r) => Screen::Refuse {
                code: r.code,
                detail: r.detail,
            },
            Verdict::Repeat { of } => Screen::Repeat { of },
        })
        .collect();
    let slots = submission::verify(envelopes, screens, &*app.keys).map_err(ApiError::internal)?;
    Ok(Some(slots))
}

/// Why the body could not be read: too large, too slow, or broken off.
pub(super) fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge {
            max: REQUEST_BODY_BYTES_MAX,
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::Timeout;
        }
        source = e.source();
    }
    ApiError::bad_request("body_unreadable", rejection.body_text())
}

/// Parses the body: a single envelope, or `{"entries": [...]}`. Returns whether it was
/// a batch and each envelope (or why it is not one).
#[allow(clippy::type_complexity)]
fn parse_submission(body: &[u8]) -> Result<(bool, Vec<Result<Envelope, EnvelopeError>>), ApiError> {
    // The hot path is one envelope, so try that first: its strict parser names an
    // unknown top-level member, which is how a batch announces itself.
    match Envelope::from_json(body) {
        Ok(envelope) => return Ok((false, vec![Ok(envelope)])),
        Err(EnvelopeError::UnknownField { field }) if field == "entries" => {}
        Err(EnvelopeError::TooLarge { .. }) if looks_like_batch(body) => {}
        Err(e) => {
            return Err(ApiError::Envelope {
                code: e.code(),
                detail: e.to_string(),
            })
        }
    }
    let parsed: BatchBody<'_> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_batch", e.to_string()))?;
    if parsed.entries.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "a batch must hold at least one entry",
        ));
    }
    if parsed.entries.len() > ENTRIES_PER_REQUEST_MAX {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "a batch holds at most {ENTRIES_PER_REQUEST_MAX} entries, not {}",
                parsed.entries.len()
            ),
        ));
    }
    let envelopes = parsed
        .entries
        .iter()
        .map(|raw| Envelope::from_json(raw.get().as_bytes()))
        .collect();
    Ok((true, envelopes))
}

/// Whether an oversize body starts like `{"entries"`: only then is it parsed as a batch
/// (a single oversize envelope is refused as `envelope_too_large` without more work).
fn looks_like_batch(body: &[u8]) -> bool {
    let mut rest = body.iter().skip_while(|b| b.is_ascii_whitespace());
    if rest.next() != Some(&b'{') {
        return false;
    }
    let rest: Vec<u8> = rest
        .skip_while(|b| b.is_ascii_whitespace())
        .take(9)
        .copied()
        .collect();
    rest == b"\"entries\""
}

/// An entry as served: where, when, what.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryView {
    /// The entry's leaf index in the log, from 0.
    pub index: u64,
    /// The entry's ledger time, in microseconds since the Unix epoch (as in its leaf).
    pub time_micros: u64,
    /// BLAKE3 of the envelope's PAE, lowercase hex.
    pub entry_id: String,
    /// RFC 6962 leaf hash, standard base64.
    pub leaf_hash: String,
    /// The DSSE envelope, as submitted (JSON).
    pub envelope: Box<RawValue>,
}

/// Reads entry `index` into its served form.
///
/// # Errors
/// [`ApiError::NotFound`] past the end; store faults.
pub fn entry_view(ledger: &Ledger, index: u64) -> Result<EntryView, ApiError> {
    let log = ledger.log();
    let leaf = log.entry(index).map_err(|e| not_found_or_fault(e, index))?;
    let leaf_hash = log
        .leaf_hash_at(index)
        .map_err(|e| not_found_or_fault(e, index))?;
    let envelope = RawValue::from_string(leaf.envelope.to_json()).map_err(ApiError::internal)?;
    Ok(EntryView {
        index,
        time_micros: leaf.time_micros,
        entry_id: leaf.envelope.entry_id().to_string(),
        leaf_hash: leaf_hash.to_base64(),
        envelope,
    })
}

fn not_found_or_fault(e: LogError, index: u64) -> ApiError {
    match e {
        LogError::OutOfRange { .. } => ApiError::NotFound {
            what: "entry",
            id: index.to_string(),
        },
        other => ApiError::internal(other),
    }
}

/// Parses a decimal index path segment.
///
/// # Errors
/// `malformed_index`.
pub fn parse_index(text: &str) -> Result<u64, ApiError> {
    // `u64::from_str` accepts a leading `+`; an index is digits only.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "malformed_index",
            format!("{text:?} is not a decimal entry index"),
        ));
    }
    text.parse()
        .map_err(|_| ApiError::bad_request("malformed_index", format!("{text:?} is out of range")))
}

/// `GET /v1/entries/{index}`.
///
/// # Errors
/// `malformed_index` (400), `entry_not_found` (404).
pub async fn get_entry(
    State(app): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let index = parse_index(&index)?;
    let state = app.clone();
    app.read(move |ledger| Ok(state.entry_cache.get(ledger, index)?.json().to_vec()))
        .await
        .map(super::json_body)
}

/// `GET /v1/entries/by-id/{id}`.
///
/// # Errors
/// `malformed_entry_id` (400), `entry_not_found` (404).
pub async fn get_entry_by_id(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let entry_id = EntryId::from_str(&id).map_err(|_| {
        ApiError::bad_request(
            "malformed_entry_id",
            "an entry id is 64 lowercase hex digits",
        )
    })?;
    let state = app.clone();
    app.read(move |ledger| {
        let index = ledger
            .log()
            .index_of(&entry_id)
            .map_err(ApiError::internal)?
            .ok_or(ApiError::NotFound { what: "entry", id })?;
        Ok(state.entry_cache.get(ledger, index)?.json().to_vec())
    })
    .await
    .map(super::json_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_recognised_by_its_member() {
        assert!(looks_like_batch(b"  { \"entries\": []}"));
        assert!(!looks_like_batch(b"{\"payloadType\":\"x\"}"));
        assert!(!looks_like_batch(b"[]"));
    }

    #[test]
    fn indexes_are_plain_decimal() {
        assert_eq!(parse_index("0").unwrap(), 0);
        assert_eq!(parse_index("42").unwrap(), 42);
        for bad in ["", "+1", "-1", "1e3", "0x10", "18446744073709551616"] {
            assert_eq!(
                parse_index(bad).unwrap_err().code(),
                "malformed_index",
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_and_oversize_batches_are_refused() {
        assert_eq!(
            parse_submission(br#"{"entries":[]}"#).unwrap_err().code(),
            "empty_batch"
        );
        let many = format!(
            "{{\"entries\":[{}]}}",
            vec!["{}"; ENTRIES_PER_REQUEST_MAX + 1].join(",")
        );
        assert_eq!(
            parse_submission(many.as_bytes()).unwrap_err().code(),
            "batch_too_large"
        );
        assert_eq!(
            parse_submission(br#"{"entries":[], "more": 1}"#)
                .unwrap_err()
                .code(),
            "malformed_batch"
        );
    }
}
