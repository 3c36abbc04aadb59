//! Balances with their proofs: `GET /v1/claims/{id}`, `/v1/pledges/{id}`,
//! `/v1/allocations/{id}`, `/v1/students/{ref}`, and the totals `GET /v1/pool` and
//! `GET /v1/institutions/{id}/report`.
//!
//! A balance is answered with the entries it derives from, each with its RFC 9162
//! inclusion proof against the checkpoint served alongside (all read under one lock, so
//! they agree), a page at a time: at most [`crate::limits::BALANCE_PAGE_ENTRIES_MAX`]
//! proven entries, from position `?from=` (default 0) of the balance's entries in log
//! order, and `next`, the position of the next page, or `null` on the last one. A page
//! is built under the read lock, bounded, and the lock is released before it is
//! written to the socket. Positions are stable: an object's entries only grow at the
//! end, so a client following `next` sees each entry once even while the log grows
//! (each page is proven against the checkpoint it is served with). A client holding the operator's key checks the checkpoint's signature,
//! rebuilds each leaf from `index`, `time_micros` and the envelope
//! ([`crate::log::leaf::encode_parts`]), and verifies its inclusion: it then knows these
//! entries are in the log the operator signed, without trusting the server, and can
//! recompute the balance from their payloads.
//!
//! ```
//! use lesson_ledger::http::balances::ProvenBalance;
//! let b: ProvenBalance = serde_json::from_str(
//!     r#"{"balance":{},"checkpoint":"x","entries":[],"next":null}"#).unwrap();
//! assert!(b.entries.is_empty() && b.next.is_none());
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
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
    /// This page's entries, in log order.
    pub entries: Vec<ProvenEntry>,
    /// Where the next page starts (`?from=`), or `None` on the last page.
    pub next: Option<u64>,
}

/// The page asked for: `?from=` (a position in the balance's entries, default 0).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    pub from: u64,
}

fn state_fault(e: RuleError) -> ApiError {
    ApiError::internal(e)
}

fn valid_id(field: &'static str, id: &str) -> Result<(), ApiError> {
    Id::new(field, id)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("malformed_id", e.to_string()))
}

/// Most entries [`EntryCache`] holds (about a kilobyte each: the entry's served JSON),
/// so at most some 16 MiB.
pub const ENTRY_CACHE_ENTRIES_MAX: usize = 16_384;

/// An entry's served JSON ([`EntryView`]), made once: an entry never changes once it is
/// in the log. Invariant (checked by [`ServedEntry::new`]): one JSON object, `{…}`.
#[derive(Debug)]
pub struct ServedEntry {
    /// `{"index":…,"time_micros":…,"entry_id":…,"leaf_hash":…,"envelope":{…}}`.
    json: Box<[u8]>,
}

impl ServedEntry {
    fn new(view: &EntryView) -> Result<ServedEntry, ApiError> {
        let json = serde_json::to_vec(view).map_err(ApiError::internal)?;
        // A struct serializes to one object; checked here so that `write_proven` can
        // open it without a case for anything else.
        if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
            return Err(ApiError::internal(
                "an entry did not serialize to a JSON object",
            ));
        }
        Ok(ServedEntry {
            json: json.into_boxed_slice(),
        })
    }

    /// The entry's JSON, as `GET /v1/entries/{index}` serves it.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// Writes this entry as a [`ProvenEntry`]: its object with `inclusion_proof` added.
    fn write_proven(&self, out: &mut Vec<u8>, proof: &[Hash]) {
        // Everything but the closing brace (the invariant: the last byte is `}`).
        out.extend_from_slice(&self.json[..self.json.len() - 1]);
        out.extend_from_slice(b",\"inclusion_proof\":[");
        for (i, hash) in proof.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_base64_string(out, hash);
        }
        out.extend_from_slice(b"]}");
    }
}

/// Writes `hash` as a JSON string of standard base64. The base64 alphabet (`A–Z a–z
/// 0–9 + / =`) needs no JSON escaping, so this is what `serde_json` would write, without
/// scanning every byte for escapes: that scan was a tenth of a balance's CPU.
fn write_base64_string(out: &mut Vec<u8>, hash: &Hash) {
    use base64::Engine;
    let mut text = [0u8; 44]; // 4 * ceil(32 / 3)
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(hash.as_bytes(), &mut text)
        .unwrap_or(0); // 44 bytes always fit a 32-byte hash
    out.push(b'"');
    out.extend_from_slice(&text[..written]);
    out.push(b'"');
}

/// Served entries, by index. A balance's entries are read again on every request for
/// it, and reading one costs a record read, its checksum, decoding the leaf and the
/// envelope, re-encoding the envelope, hashing it for its id and serializing it all.
#[derive(Debug, Default)]
pub struct EntryCache {
    entries: Mutex<HashMap<u64, Arc<ServedEntry>>>,
}

impl EntryCache {
    /// Entry `index` served, from the cache or read and cached.
    ///
    /// # Errors
    /// As [`entry_view`].
    pub fn get(&self, ledger: &Ledger, index: u64) -> Result<Arc<ServedEntry>, ApiError> {
        if let Some(entry) = self.lock().get(&index) {
            return Ok(Arc::clone(entry));
        }
        // Read outside the mutex: two readers may both read it; either copy is right.
        let entry = Arc::new(ServedEntry::new(&entry_view(ledger, index)?)?);
        let mut entries = self.lock();
        if entries.len() >= ENTRY_CACHE_ENTRIES_MAX {
            // Evict an arbitrary entry (the map's hashing is randomly seeded): cheap, and
            // fair enough for balances that are read at random.
            if let Some(&old) = entries.keys().next() {
                entries.remove(&old);
            }
        }
        entries.insert(index, Arc::clone(&entry));
        Ok(entry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ServedEntry>>> {
        // Nothing is left half-done under this lock: a panic elsewhere cannot poison it
        // into a wrong state.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes a [`ProvenBalance`]: the balance serialized straight from the query's type,
/// the checkpoint, and each entry's cached JSON with its proof.
fn write_proven_balance<B: Serialize>(
    balance: &B,
    checkpoint: &str,
    entries: &[(Arc<ServedEntry>, Vec<Hash>)],
    next: Option<u64>,
) -> Result<Vec<u8>, ApiError> {
    // Sized up front: a balance of a few entries is some kilobytes, and growing the
    // buffer by doubling copied it several times over.
    let capacity = 1024
        + checkpoint.len()
        + entries
            .iter()
            .map(|(entry, proof)| entry.json.len() + 48 * proof.len() + 32)
            .sum::<usize>();
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(b"{\"balance\":");
    serde_json::to_writer(&mut out, balance).map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"checkpoint\":");
    serde_json::to_writer(&mut out, checkpoint).map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"entries\":[");
    for (i, (entry, proof)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        entry.write_proven(&mut out, proof);
    }
    out.extend_from_slice(b"],\"next\":");
    serde_json::to_writer(&mut out, &next).map_err(ApiError::internal)?;
    out.push(b'}');
    Ok(out)
}

/// Proves one page of `indexes` — at most the server's page size, from position
/// `from` of them in log order — against the current checkpoint and writes the
/// [`ProvenBalance`] JSON, all under the read lock the caller holds (so the checkpoint
/// and the proofs agree).
///
/// # Errors
/// `page_out_of_range` (400) for a position past the end; internal faults.
pub(super) fn prove<B: Serialize>(
    app: &AppState,
    ledger: &Ledger,
    balance: &B,
    mut indexes: Vec<u64>,
    from: u64,
) -> Result<Vec<u8>, ApiError> {
    indexes.sort_unstable();
    indexes.dedup();
    let total = indexes.len() as u64;
    if from > total {
        return Err(ApiError::bad_request(
            "page_out_of_range",
            format!("this balance has {total} entries; a page cannot start at {from}"),
        ));
    }
    // `from <= total`, and `total` came from a length.
    let start = usize::try_from(from).map_err(ApiError::internal)?;
    let end = start
        .saturating_add(app.balance_page_entries)
        .min(indexes.len());
    let next = (end < indexes.len()).then_some(end as u64);
    let log = ledger.log();
    let size = log.size();
    let entries = indexes[start..end]
        .iter()
        .map(|&index| {
            let entry = app.entry_cache.get(ledger, index)?;
            let proof = log
                .inclusion_proof(index, size)
                .map_err(ApiError::internal)?;
            Ok((entry, proof))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    // With the associations' verified cosignatures: a student's client requires them.
    let checkpoint = app.cosignatures.served(log.checkpoint());
    write_proven_balance(balance, &checkpoint, &entries, next)
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
    Query(page): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("claim", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let b = queries::claim_balance(ledger.state(), &id)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("claim", id))?;
        prove(&state, ledger, &b, b.entries.clone(), page.from)
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
    Query(page): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("pledge", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let b = queries::pledge_balance(ledger.state(), &id)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("pledge", id))?;
        prove(&state, ledger, &b, b.entries.clone(), page.from)
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
    Query(page): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("allocation", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let b = queries::allocation_balance(ledger.state(), &id)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("allocation", id))?;
        prove(&state, ledger, &b, b.entries.clone(), page.from)
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
    Query(page): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("student", &student)?;
    let state = app.clone();
    app.read(move |ledger| {
        let s = queries::student_summary(ledger.state(), &student)
            .map_err(state_fault)?
            .ok_or_else(|| not_found("student", student))?;
        let indexes = s.claims.iter().flat_map(|c| c.entries.clone()).collect();
        prove(&state, ledger, &s, indexes, page.from)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::hash::leaf_hash;

    #[test]
    fn a_written_balance_is_what_serde_writes_for_the_same_fields() {
        let view = EntryView {
            index: 7,
            time_micros: 1_700_000_000_000_123,
            entry_id: "ab".repeat(32),
            leaf_hash: leaf_hash(b"7").to_base64(),
            envelope: RawValue::from_string(
                r#"{"payload":"e30=","payloadType":"x","signatures":[]}"#.into(),
            )
            .unwrap(),
        };
        // Every byte value, so that hashes whose base64 holds `+` and `/` are covered.
        let proof: Vec<Hash> = (0..=255u8).map(|b| Hash([b; 32])).collect();
        let served = Arc::new(ServedEntry::new(&view).unwrap());
        let balance = serde_json::json!({"claim": "c-1", "unreserved": 3});
        let checkpoint = "origin\n7\nroot=\n\n\u{2014} op key\n";
        let written = write_proven_balance(
            &balance,
            checkpoint,
            &[(Arc::clone(&served), proof.clone()), (served, vec![])],
            Some(2),
        )
        .unwrap();

        let parsed: ProvenBalance = serde_json::from_slice(&written).unwrap();
        assert_eq!(parsed.balance, balance);
        assert_eq!(parsed.checkpoint, checkpoint);
        assert_eq!(parsed.entries.len(), 2);
        let entry = &parsed.entries[0];
        assert_eq!(
            (
                entry.index,
                entry.time_micros,
                &entry.entry_id,
                &entry.leaf_hash
            ),
            (
                view.index,
                view.time_micros,
                &view.entry_id,
                &view.leaf_hash
            )
        );
        assert_eq!(entry.envelope.get(), view.envelope.get());
        let expected: Vec<String> = proof.iter().map(Hash::to_base64).collect();
        assert_eq!(entry.inclusion_proof, expected);
        assert!(parsed.entries[1].inclusion_proof.is_empty());
        assert_eq!(parsed.next, Some(2));
    }
}
