//! Balances with their proofs: `GET /v1/claims/{id}`, `/v1/pledges/{id}`,
//! `/v1/allocations/{id}`, `/v1/students/{ref}`, and the totals `GET /v1/pool` and
//! `GET /v1/institutions/{id}/report`, answered with the typed wire types of
//! [`crate::api::balances`].
//!
//! Every answer is read under one read lock, so it is of one state: the objects, each
//! with its state proof against the map root of the latest state note, that note, and
//! the checkpoint of the same size (the writer holds the write lock for a whole batch,
//! from the first entry to the state's commit, so between batches the state, the note
//! and the checkpoint are all at the log's size; an answer is refused, 503, if they are
//! not). A 404 for a well-formed id carries the proof that no such object exists.
//!
//! The four first answers also carry the entries their objects derive from, each with
//! its RFC 9162 inclusion proof against the checkpoint, a page at a time: at most
//! [`crate::limits::BALANCE_PAGE_ENTRIES_MAX`] proven entries, from position `?from=`
//! (default 0) of the entries in log order, and `next`, the position of the next page,
//! or `null` on the last one. Every page carries the objects and their proofs again, so
//! each page checks on its own. A page is built under the read lock, bounded, and the
//! lock is released before it is written to the socket. Positions are stable: an
//! object's entries only grow at the end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;

use super::entries::{entry_view, EntryView};
use super::error::ApiError;
use super::AppState;
use crate::api::balances::{
    Absence, AllocationAnswer, BalanceAnswer, ClaimAnswer, InstitutionAnswer, PageQuery,
    PledgeAnswer, PoolAnswer, Proven, StudentAnswer,
};
use crate::ledger::error::RuleError;
use crate::ledger::objects::{Allocation, Claim, Liability, Party, Pledge, Pool, StudentIndex};
use crate::ledger::state::{get_object, Key, Object, POOL_ID};
use crate::ledger::units::Id;
use crate::ledger::writer::Ledger;
use crate::log::hash::Hash;

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

/// A page of proven entries: each served entry with its inclusion proof.
type ProvenPage = Vec<(Arc<ServedEntry>, Vec<Hash>)>;

/// Writes a paged answer: `answer` (its `entries` empty, its `next` set) serialized
/// from its type, with the page's entries spliced into its `entries` from their cached
/// JSON. The answer's last two fields are `entries` and `next` ([`crate::api`]'s
/// declaration order), so its JSON ends with `,"entries":[],"next":…}`; that is checked,
/// and anything else is an internal fault rather than a wrong answer.
pub(super) fn write_paged<A: BalanceAnswer>(
    answer: &A,
    entries: &ProvenPage,
) -> Result<Vec<u8>, ApiError> {
    let head = serde_json::to_vec(answer).map_err(ApiError::internal)?;
    let next = serde_json::to_string(&answer.next()).map_err(ApiError::internal)?;
    let tail = format!(",\"entries\":[],\"next\":{next}}}");
    let Some(head) = head.strip_suffix(tail.as_bytes()) else {
        return Err(ApiError::internal(
            "a balance answer does not end with its entries and next",
        ));
    };
    // Sized up front: growing the buffer by doubling copied a page several times over.
    let capacity = head.len()
        + tail.len()
        + entries
            .iter()
            .map(|(entry, proof)| entry.json.len() + 48 * proof.len() + 32)
            .sum::<usize>();
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(head);
    out.extend_from_slice(b",\"entries\":[");
    for (i, (entry, proof)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        entry.write_proven(&mut out, proof);
    }
    out.extend_from_slice(b"],\"next\":");
    out.extend_from_slice(next.as_bytes());
    out.push(b'}');
    Ok(out)
}

/// One page of `indexes` — at most the server's page size, from position `from` of
/// them in log order — each entry with its inclusion proof against the current
/// checkpoint, read under the read lock the caller holds (so the checkpoint and the
/// proofs agree); and where the next page starts.
///
/// # Errors
/// `page_out_of_range` (400) for a position past the end; internal faults.
pub(super) fn page(
    app: &AppState,
    ledger: &Ledger,
    mut indexes: Vec<u64>,
    from: u64,
) -> Result<(ProvenPage, Option<u64>), ApiError> {
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
    Ok((entries, next))
}

/// The signed state note and checkpoint every object of an answer is proven against:
/// the latest of each, which must be of one size, the size of the state read.
///
/// # Errors
/// `unavailable` (503) before the first state note, or if the note is not of the
/// checkpoint's size (a batch whose state could not be committed: the writer stops).
pub(super) fn evidence(app: &AppState, ledger: &Ledger) -> Result<(String, String), ApiError> {
    let log = ledger.log();
    let size = log.checkpoint().checkpoint().size;
    let (note_size, note) = log.state_note().ok_or(ApiError::Unavailable {
        reason: "no state note has been signed yet",
    })?;
    if note_size != size || ledger.state().size() != size {
        return Err(ApiError::Unavailable {
            reason: "the state, its note and the checkpoint are not of one size",
        });
    }
    // With the associations' verified cosignatures: a student's client requires them.
    Ok((note.to_owned(), app.cosignatures.served(log.checkpoint())))
}

/// `object` with its proof against the current state map root.
///
/// # Errors
/// The state map's nodes could not be read (internal fault).
pub(super) fn proven<T: Object>(ledger: &Ledger, object: T) -> Result<Proven<T>, ApiError> {
    let proof = ledger
        .state()
        .prove(&Key::new(T::TABLE, object.id()))
        .map_err(ApiError::internal)?;
    Ok(Proven { object, proof })
}

/// Object `id` of its table, or a 404 carrying the proof that there is none.
///
/// # Errors
/// `{what}_not_found` (404) with the absence proof; `unavailable`; internal faults.
pub(super) fn find<T: Object>(
    app: &AppState,
    ledger: &Ledger,
    what: &'static str,
    id: &str,
) -> Result<T, ApiError> {
    if let Some(object) = get_object::<T, _>(ledger.state(), id).map_err(state_fault)? {
        return Ok(object);
    }
    let (state_note, checkpoint) = evidence(app, ledger)?;
    Err(ApiError::Absent {
        what,
        absence: Box::new(Absence {
            table: T::TABLE.name().to_owned(),
            id: id.to_owned(),
            proof: ledger
                .state()
                .prove(&Key::new(T::TABLE, id))
                .map_err(ApiError::internal)?,
            state_note,
            checkpoint,
        }),
    })
}

/// The objects an object names (a student's claims, a claim's allocations), each with
/// its proof: each must exist, so a missing one is a fault of the state.
fn named<T: Object>(ledger: &Ledger, ids: &[Id]) -> Result<Vec<Proven<T>>, ApiError> {
    ids.iter()
        .map(|id| {
            let object = get_object::<T, _>(ledger.state(), id.as_str())
                .map_err(state_fault)?
                .ok_or_else(|| {
                    ApiError::internal(format!("{} {id} is named but absent", T::TABLE.name()))
                })?;
            proven(ledger, object)
        })
        .collect()
}

/// `GET /v1/claims/{id}`.
///
/// # Errors
/// `malformed_id` (400), `claim_not_found` (404, with its absence proof),
/// `page_out_of_range` (400), `unavailable` (503).
pub async fn get_claim(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(page_query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("claim", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let claim: Claim = find(&state, ledger, "claim", &id)?;
        let (state_note, checkpoint) = evidence(&state, ledger)?;
        let (entries, next) = page(&state, ledger, claim.entries.clone(), page_query.from)?;
        let answer = ClaimAnswer {
            claim: proven(ledger, claim)?,
            state_note,
            checkpoint,
            entries: Vec::new(),
            next,
        };
        write_paged(&answer, &entries)
    })
    .await
    .map(super::json_body)
}

/// `GET /v1/pledges/{id}`.
///
/// # Errors
/// `malformed_id` (400), `pledge_not_found` (404, with its absence proof),
/// `page_out_of_range` (400), `unavailable` (503).
pub async fn get_pledge(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(page_query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("pledge", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let pledge: Pledge = find(&state, ledger, "pledge", &id)?;
        let (state_note, checkpoint) = evidence(&state, ledger)?;
        let (entries, next) = page(&state, ledger, pledge.entries.clone(), page_query.from)?;
        let answer = PledgeAnswer {
            pledge: proven(ledger, pledge)?,
            state_note,
            checkpoint,
            entries: Vec::new(),
            next,
        };
        write_paged(&answer, &entries)
    })
    .await
    .map(super::json_body)
}

/// `GET /v1/allocations/{id}`.
///
/// # Errors
/// `malformed_id` (400), `allocation_not_found` (404, with its absence proof),
/// `page_out_of_range` (400), `unavailable` (503).
pub async fn get_allocation(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(page_query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("allocation", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let allocation: Allocation = find(&state, ledger, "allocation", &id)?;
        let (state_note, checkpoint) = evidence(&state, ledger)?;
        let (entries, next) = page(&state, ledger, allocation.entries.clone(), page_query.from)?;
        let answer = AllocationAnswer {
            allocation: proven(ledger, allocation)?,
            state_note,
            checkpoint,
            entries: Vec::new(),
            next,
        };
        write_paged(&answer, &entries)
    })
    .await
    .map(super::json_body)
}

/// `GET /v1/students/{ref}`: the student's index, its claims, their open allocations
/// and every entry behind the claims.
///
/// # Errors
/// `malformed_id` (400), `student_not_found` (404, with its absence proof),
/// `page_out_of_range` (400), `unavailable` (503).
pub async fn get_student(
    State(app): State<AppState>,
    Path(student): Path<String>,
    Query(page_query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("student", &student)?;
    let state = app.clone();
    app.read(move |ledger| {
        let index: StudentIndex = find(&state, ledger, "student", &student)?;
        let (state_note, checkpoint) = evidence(&state, ledger)?;
        let claims: Vec<Proven<Claim>> = named(ledger, &index.claims)?;
        let mut allocations = Vec::new();
        for claim in &claims {
            allocations.extend(named::<Allocation>(ledger, &claim.object.allocations)?);
        }
        let indexes = claims
            .iter()
            .flat_map(|c| c.object.entries.iter().copied())
            .collect();
        let (entries, next) = page(&state, ledger, indexes, page_query.from)?;
        let answer = StudentAnswer {
            student: proven(ledger, index)?,
            claims,
            allocations,
            state_note,
            checkpoint,
            entries: Vec::new(),
            next,
        };
        write_paged(&answer, &entries)
    })
    .await
    .map(super::json_body)
}

/// `GET /v1/pool`: the pool's totals with their proof.
///
/// # Errors
/// `unavailable` (503) before genesis; store faults.
pub async fn get_pool(State(app): State<AppState>) -> Result<Json<PoolAnswer>, ApiError> {
    let state = app.clone();
    app.read(move |ledger| {
        let pool: Pool = get_object(ledger.state(), POOL_ID)
            .map_err(state_fault)?
            .ok_or(ApiError::Unavailable {
                reason: "the ledger has no genesis yet",
            })?;
        let (state_note, checkpoint) = evidence(&state, ledger)?;
        Ok(PoolAnswer {
            pool: proven(ledger, pool)?,
            state_note,
            checkpoint,
        })
    })
    .await
    .map(Json)
}

/// `GET /v1/institutions/{id}/report`: a closed institution's liability and its party
/// object, with their proofs.
///
/// # Errors
/// `malformed_id` (400), `institution_not_found` (404, also when never closed; with the
/// proof that it has no liability), `unavailable` (503).
pub async fn get_institution_report(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InstitutionAnswer>, ApiError> {
    valid_id("institution", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let liability: Liability = find(&state, ledger, "institution", &id)?;
        let party: Party = get_object(ledger.state(), &id)
            .map_err(state_fault)?
            .ok_or_else(|| ApiError::internal(format!("liability of unknown party {id}")))?;
        let (state_note, checkpoint) = evidence(&state, ledger)?;
        Ok(InstitutionAnswer {
            liability: proven(ledger, liability)?,
            institution: proven(ledger, party)?,
            state_note,
            checkpoint,
        })
    })
    .await
    .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::balances::ProvenEntry;
    use crate::ledger::state_map::StateProof;
    use crate::log::hash::leaf_hash;
    use serde_json::value::RawValue;

    #[test]
    fn a_written_page_is_what_serde_writes_for_the_same_fields() {
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
        let claim: Claim = serde_json::from_value(serde_json::json!({
            "claim": "c-1", "student": "stu-1", "institution": "inst-1", "subject": "math",
            "grade": 3, "district": "xuhui", "accepts_online": true,
            "accepted_districts": [], "evidence_digest": "00", "lessons": 2,
            "price_per_lesson": 5, "value": 10, "unreserved": 10, "reserved": 0,
            "consumed": 0, "allocations": [], "entries": [7]
        }))
        .unwrap();
        let answer = ClaimAnswer {
            claim: Proven {
                object: claim,
                proof: StateProof {
                    key: [3; 32],
                    siblings: vec![[4; 32]],
                    leaf: None,
                },
            },
            state_note: "note\n".into(),
            checkpoint: "origin\n7\nroot=\n\n\u{2014} op key\n".into(),
            entries: Vec::new(),
            next: Some(2),
        };
        let written = write_paged(
            &answer,
            &vec![(Arc::clone(&served), proof.clone()), (served, vec![])],
        )
        .unwrap();

        let parsed: ClaimAnswer = serde_json::from_slice(&written).unwrap();
        assert_eq!(parsed.claim, answer.claim);
        assert_eq!(
            (&parsed.state_note, &parsed.checkpoint),
            (&answer.state_note, &answer.checkpoint)
        );
        assert_eq!(parsed.entries.len(), 2);
        let entry: &ProvenEntry = &parsed.entries[0];
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
