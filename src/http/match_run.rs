//! `POST /v1/match`: the operator runs the matcher on the ledger and records the run
//! (issue 5), through the same function as `lesson-ledger match` ([`crate::runs::run_match`]).
//!
//! Authorization: `Authorization: Bearer <DIR/operator.token>` ([`super::operator`]);
//! otherwise `401` problem+json. Body: `{"dry_run": bool}`, nothing else (`400`).
//!
//! The run happens on the sequencer's writer thread ([`Sequencer::exclusive`]), so no
//! entry can come between the state the matcher read and the run's entries; they are
//! appended in group commits of at most `BATCH_ENTRIES_MAX`, signed with the operator key
//! the server holds. The answer:
//!
//! | field | meaning |
//! |---|---|
//! | `run` | the run id (`null` for a dry run) |
//! | `params` | the recorded parameters (match date, fairness policy) |
//! | `report` | the matcher's figures: `matched_fen`, `bound_fen`, `ratio_ppm`, … |
//! | `allocations` | allocations recorded (0 for a dry run) |
//! | `first_index` | index of the `match_run` entry (`null` for a dry run) |
//! | `checkpoint` | the operator-signed checkpoint after the run (before, for a dry run) |
//! | `plans` | dry run only: what would be allocated |
//!
//! [`Sequencer::exclusive`]: super::sequencer::Sequencer::exclusive

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::sequencer::{QueueError, Writer, RETRY_AFTER_SECS};
use super::AppState;
use crate::ledger::writer::{Ledger, LedgerError};
use crate::ledger::RuleError;
use crate::log::envelope::VerifiedEnvelope;
use crate::log::store::Outcome;
use crate::runs::{run_match, RunError, RunOutcome, RunWriter};

/// The request body.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// Answer the plans and write nothing.
    pub dry_run: bool,
}

/// The writer thread's hold on the ledger is where a run reads and writes.
impl RunWriter for Writer<'_> {
    fn read<T>(&self, f: impl FnOnce(&Ledger) -> T) -> T {
        f(&Writer::read(self))
    }

    fn submit(
        &mut self,
        batch: Vec<VerifiedEnvelope>,
    ) -> Result<Vec<Outcome<RuleError>>, LedgerError> {
        Writer::submit(self, batch)
    }
}

fn queue_error(e: QueueError) -> ApiError {
    match e {
        QueueError::Full => ApiError::QueueFull {
            retry_after_secs: RETRY_AFTER_SECS,
        },
        QueueError::Stopped | QueueError::Failed => ApiError::Unavailable { reason: e.code() },
    }
}

fn run_error(e: RunError) -> ApiError {
    match e {
        RunError::Matcher(_) | RunError::TooLarge { .. } | RunError::Refused { .. } => {
            ApiError::Refused {
                code: e.code(),
                detail: e.to_string(),
            }
        }
        other => ApiError::internal(other),
    }
}

/// The body, `{"dry_run": bool}` and nothing else.
fn parse_request(body: &[u8]) -> Result<MatchRequest, ApiError> {
    let malformed = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(
            "malformed_body",
            format!("the body must be {{\"dry_run\": true|false}}: {e}"),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
    // serde would also read a struct from an array (`[false]`); only an object is one.
    if !value.is_object() {
        return Err(malformed(&"not a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| malformed(&e))
}

/// `POST /v1/match`.
///
/// # Errors
/// `401` without the operator's token; `400` for a body other than `{"dry_run": bool}`;
/// `422` when the matcher refuses its input or the rules refuse an entry of the run;
/// `429`/`503` from the writer's queue; `503` when the server has no operator
/// credentials.
pub async fn post_match(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RunOutcome>, ApiError> {
    let operator = state.operator.clone().ok_or(ApiError::Unavailable {
        reason: "operator_credentials_unavailable",
    })?;
    // Credentials before the body: an unauthorized client learns nothing about it.
    operator.authorize(&headers)?;
    let body = body.map_err(super::entries::body_error)?;
    let request = parse_request(&body)?;
    let outcome = state
        .sequencer
        .exclusive(move |writer| {
            run_match(
                writer,
                Some(Arc::as_ref(&operator).signer()),
                request.dry_run,
            )
        })
        .await
        .map_err(queue_error)?
        .map_err(run_error)?;
    Ok(Json(outcome))
}
