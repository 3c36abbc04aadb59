//! Balances with their proofs: `GET /v1/claims/{id}`, `/v1/pledges/{id}`,
//! `/v1/allocations/{id}`, `/v1/students/{ref}`, and the totals `GET /v1/pool` and
//! `GET /v1/institutions/{id}/report`.
//!
//! A balance is answered with the entries it derives from, each with its RFC 9162
//! inclusion proof against the checkpoint served alongside (all read under one lock, so
//! they agree). A client holding the operator's key checks the checkpoint's signature,
//! rebuilds each leaf from `index`, `time_micros` and the envelope
//! ([`crate::log::leaf::encode_parts`]), and verifies its inclusion: it then knows these
//! entries are in the log the operator signed, without trusting the server, and can
//! recompute the balance from their payloads.
//!
//! ```
//! use lesson_ledger::http::balances::ProvenBalance;
//! let b: ProvenBalance = serde_json::from_str(
//!     r#"{"balance":{},"checkpoint":"x","entries":[]}"#).unwrap();
//! assert!(b.entries.is_empty());
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::entries::{entry_view, EntryView};
use super::error::ApiError;
use super::AppState;
use crate::ledger::error::RuleError;
use crate::ledger::queries;
use crate::ledger::units::Id;
use crate::ledger::writer::Ledger;
use crate::log::hash::Hash;

/// An entry with its inclusion proof against the checkpoint it is served with.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEntry {
    pub index: u64,
    pub time_micros: u64,
    pub entry_id: String,
    /// RFC 6962 leaf hash, base64.
    pub leaf_hash: String,
    /// The DSSE envelope (JSON).
    pub envelope: Box<RawValue>,
    /// Sibling hashes from the leaf up to the checkpoint's root, base64.
    pub inclusion_proof: Vec<String>,
}

/// A balance, the entries it derives from, and the checkpoint they are proven against.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenBalance {
    /// The balance as the ledger's queries give it.
    pub balance: Value,
    /// The signed checkpoint (C2SP signed note) every proof is against.
    pub checkpoint: String,
    /// The entries, in log order.
    pub entries: Vec<ProvenEntry>,
}

fn state_fault(e: RuleError) -> ApiError {
    ApiError::internal(e)
}

fn valid_id(field: &'static str, id: &str) -> Result<(), ApiError> {
    Id::new(field, id)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("malformed_id", e.to_string()))
}

/// Most entries [`EntryCache`] holds (about a kilobyte each: the envelope's JSON and
/// two hex/base64 strings), so at most some 16 MiB.
pub const ENTRY_CACHE_ENTRIES_MAX: usize = 16_384;

/// Served forms of entries, by index. An entry never changes once it is in the log, so
/// an entry cached is never stale; a balance's entries are read again on every request
/// for it, and reading one costs a record read, its checksum, decoding the leaf and the
/// envelope, re-encoding the envelope and hashing it for its id.
#[derive(Debug, Default)]
pub struct EntryCache {
    entries: Mutex<HashMap<u64, Arc<EntryView>>>,
}

impl EntryCache {
    /// Entry `index` in its served form, from the cache or read and cached.
    ///
    /// # Errors
    /// As [`entry_view`].
    pub fn get(&self, ledger: &Ledger, index: u64) -> Result<Arc<EntryView>, ApiError> {
        if let Some(view) = self.lock().get(&index) {
            return Ok(Arc::clone(view));
        }
        // Read outside the mutex: two readers may both read it; either copy is right.
        let view = Arc::new(entry_view(ledger, index)?);
        let mut entries = self.lock();
        if entries.len() >= ENTRY_CACHE_ENTRIES_MAX {
            // Evict an arbitrary entry (the map's hashing is randomly seeded): cheap, and
            // fair enough for balances that are read at random.
            if let Some(&old) = entries.keys().next() {
                entries.remove(&old);
            }
        }
        entries.insert(index, Arc::clone(&view));
        Ok(view)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<EntryView>>> {
        // Nothing is left half-done under this lock: a panic elsewhere cannot poison it
        // into a wrong state.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// [`ProvenEntry`] as it is written: borrowed from the cache, not copied into a new one.
#[derive(Serialize)]
struct ProvenEntryOut<'a> {
    index: u64,
    time_micros: u64,
    entry_id: &'a str,
    leaf_hash: &'a str,
    envelope: &'a RawValue,
    inclusion_proof: Vec<String>,
}

/// [`ProvenBalance`] as it is written: the balance serialized straight from the query's
/// type rather than through a `serde_json::Value` tree.
#[derive(Serialize)]
struct ProvenBalanceOut<'a, B: Serialize> {
    balance: &'a B,
    checkpoint: String,
    entries: Vec<ProvenEntryOut<'a>>,
}

/// Proves `indexes` against the current checkpoint and writes the [`ProvenBalance`]
/// JSON, all under the read lock the caller holds (so the checkpoint and the proofs
/// agree).
fn prove<B: Serialize>(
    app: &AppState,
    ledger: &Ledger,
    balance: &B,
    mut indexes: Vec<u64>,
) -> Result<Vec<u8>, ApiError> {
    indexes.sort_unstable();
    indexes.dedup();
    let log = ledger.log();
    let size = log.size();
    let checkpoint = log.checkpoint().text();
    let views = indexes
        .iter()
        .map(|&index| app.entry_cache.get(ledger, index))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let entries: Vec<ProvenEntryOut> = views
        .iter()
        .map(|view| {
            let proof = log
                .inclusion_proof(view.index, size)
                .map_err(ApiError::internal)?;
            Ok(ProvenEntryOut {
                index: view.index,
                time_micros: view.time_micros,
                entry_id: &view.entry_id,
                leaf_hash: &view.leaf_hash,
                envelope: &view.envelope,
                inclusion_proof: proof.iter().map(Hash::to_base64).collect(),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    // Sized up front: a balance of a few entries is some kilobytes, and growing the
    // buffer by doubling copied it several times over.
    let proofs: usize = entries.iter().map(|e| e.inclusion_proof.len()).sum();
    let envelopes: usize = entries.iter().map(|e| e.envelope.get().len()).sum();
    let mut body =
        Vec::with_capacity(1024 + checkpoint.len() + envelopes + 48 * proofs + 256 * entries.len());
    serde_json::to_writer(
        &mut body,
        &ProvenBalanceOut {
            balance,
            checkpoint,
            entries,
        },
    )
    .map_err(ApiError::internal)?;
    Ok(body)
}

fn to_value(v: impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

fn not_found(what: &'static str, id: String) -> ApiError {
    ApiError::NotFound { what, id }
}

/// `GET /v1/claims/{id}`.
///
/// # Errors
/// `malformed_id` (400), `claim_not_found` (404).
pub async fn get_claim(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    valid_id("claim", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let b = queries::claim_balance(ledger.state(), &id)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("claim", id))?;
        prove(&state, ledger, &b, b.entries.clone())
    })
    .await
    .map(super::json_body)
}

/// `GET /v1/pledges/{id}`.
///
/// # Errors
/// `malformed_id` (400), `pledge_not_found` (404).
pub async fn get_pledge(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    valid_id("pledge", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let b = queries::pledge_balance(ledger.state(), &id)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("pledge", id))?;
        prove(&state, ledger, &b, b.entries.clone())
    })
    .await
    .map(super::json_body)
}

/// `GET /v1/allocations/{id}`.
///
/// # Errors
/// `malformed_id` (400), `allocation_not_found` (404).
pub async fn get_allocation(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    valid_id("allocation", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let b = queries::allocation_balance(ledger.state(), &id)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("allocation", id))?;
        prove(&state, ledger, &b, b.entries.clone())
    })
    .await
    .map(super::json_body)
}

/// `GET /v1/students/{ref}`: all of a student's claims, with every entry behind them.
///
/// # Errors
/// `malformed_id` (400), `student_not_found` (404).
pub async fn get_student(
    State(app): State<AppState>,
    Path(student): Path<String>,
) -> Result<Response, ApiError> {
    valid_id("student", &student)?;
    let state = app.clone();
    app.read(move |ledger| {
        let s = queries::student_summary(ledger.state(), &student)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("student", student))?;
        let indexes = s.claims.iter().flat_map(|c| c.entries.clone()).collect();
        prove(&state, ledger, &s, indexes)
    })
    .await
    .map(super::json_body)
}

/// `GET /v1/pool`: the pool's totals.
///
/// # Errors
/// Store faults only.
pub async fn get_pool(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    app.read(|ledger| to_value(queries::pool_totals(ledger.state()).map_err(state_fault)?))
        .await
        .map(Json)
}

/// `GET /v1/institutions/{id}/report`: a closed institution's liability report.
///
/// # Errors
/// `malformed_id` (400), `institution_not_found` (404, also when never closed).
pub async fn get_institution_report(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    valid_id("institution", &id)?;
    app.read(move |ledger| {
        let r = queries::institution_report(ledger.state(), &id)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("institution", id))?;
        to_value(r)
    })
    .await
    .map(Json)
}
