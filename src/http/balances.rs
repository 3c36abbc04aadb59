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
//!
//! A page, once made, is kept until the next batch ([`cache::AnswerCache`]): a read
//! between two batches is a lookup and a copy, with the checkpoint (and the cosignatures
//! collected so far) written in afresh. The state notes themselves are listed, a page at
//! a time, by `GET /v1/state-notes?from=` ([`get_state_notes`]), so that a remote
//! auditor checks the root of every one.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;

use super::error::ApiError;
use super::AppState;
use crate::api::balances::{
    Absence, AllocationAnswer, BalanceAnswer, ClaimAnswer, InstitutionAnswer, PageQuery,
    PledgeAnswer, PoolAnswer, Proven, StateNotePage, StateNoteRow, StateNotesQuery, StudentAnswer,
};
use crate::ledger::error::RuleError;
use crate::ledger::objects::{Allocation, Claim, Liability, Party, Pledge, Pool, StudentIndex};
use crate::ledger::state::{get_object, Key, Object, POOL_ID};
use crate::ledger::state_map::StateProof;
use crate::ledger::units::Id;
use crate::ledger::writer::Ledger;

mod cache;

pub use cache::{AnswerCache, EntryCache, PagedAnswer, ProvenPage, ServedEntry};
pub use cache::{ANSWER_CACHE_BYTES_MAX, ENTRY_CACHE_ENTRIES_MAX};

fn state_fault(e: RuleError) -> ApiError {
    ApiError::internal(e)
}

fn valid_id(field: &'static str, id: &str) -> Result<(), ApiError> {
    Id::new(field, id)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("malformed_id", e.to_string()))
}

/// Writes a paged answer whole: `answer` (its `entries` empty, its `next` set) with the
/// page's entries ([`PagedAnswer::new`]).
///
/// # Errors
/// Internal faults.
pub(super) fn write_paged<A: BalanceAnswer>(
    answer: &A,
    entries: &ProvenPage,
) -> Result<Vec<u8>, ApiError> {
    PagedAnswer::new(answer, entries)?.write(answer.checkpoint())
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

/// The size of the state every answer read now is of, once checked that the state, the
/// latest state note and the latest checkpoint are all of it.
///
/// # Errors
/// `unavailable` (503) before the first state note, or if the note is not of the
/// checkpoint's size (a batch whose state could not be committed: the writer stops).
fn evidence_size(ledger: &Ledger) -> Result<u64, ApiError> {
    let log = ledger.log();
    let size = log.checkpoint().checkpoint().size;
    let (note_size, _) = log.state_note().ok_or(ApiError::Unavailable {
        reason: "no state note has been signed yet",
    })?;
    if note_size != size || ledger.state().size() != size {
        return Err(ApiError::Unavailable {
            reason: "the state, its note and the checkpoint are not of one size",
        });
    }
    Ok(size)
}

/// The checkpoint served with answers: the latest, with the associations' verified
/// cosignatures (a student's client requires them).
fn served_checkpoint(app: &AppState, ledger: &Ledger) -> String {
    app.cosignatures.served(ledger.log().checkpoint())
}

/// The signed state note and checkpoint every object of an answer is proven against:
/// the latest of each, which must be of one size, the size of the state read.
///
/// # Errors
/// As [`evidence_size`].
pub(super) fn evidence(app: &AppState, ledger: &Ledger) -> Result<(String, String), ApiError> {
    evidence_size(ledger)?;
    let note = ledger.log().state_note().map(|(_, note)| note.to_owned());
    let note = note.ok_or(ApiError::Unavailable {
        reason: "no state note has been signed yet",
    })?;
    Ok((note, served_checkpoint(app, ledger)))
}

/// The proof of the object under `key`, or of its absence, against the current state
/// map root: the one place the balances ask the state for a proof.
fn state_proof(ledger: &Ledger, key: &Key) -> StateProof {
    ledger.state().prove(key)
}

/// `object` with its proof against the current state map root.
pub(super) fn proven<T: Object>(ledger: &Ledger, object: T) -> Proven<T> {
    let proof = state_proof(ledger, &Key::new(T::TABLE, object.id()));
    Proven { object, proof }
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
            proof: state_proof(ledger, &Key::new(T::TABLE, id)),
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
            Ok(proven(ledger, object))
        })
        .collect()
}

/// What an answer is made from, under the read lock: the server, the ledger, the id
/// asked for, where the page starts, and the state note (its checkpoint is left empty
/// and written in when served, [`PagedAnswer`]).
struct Making<'a> {
    app: &'a AppState,
    ledger: &'a Ledger,
    id: &'a str,
    from: u64,
    state_note: String,
}

/// Serves answer `A` for `id` from position `from`: the page made at the current state
/// size if the cache has it, else made by `make` and kept.
async fn serve<A: BalanceAnswer + 'static>(
    app: AppState,
    id: String,
    from: u64,
    make: fn(&Making<'_>) -> Result<(A, ProvenPage), ApiError>,
) -> Result<Response, ApiError> {
    let state = app.clone();
    app.read(move |ledger| {
        let size = evidence_size(ledger)?;
        let key = (A::PATH, id, from);
        let answer = match state.answer_cache.get(size, &key) {
            Some(answer) => answer,
            None => {
                let (state_note, _) = evidence(&state, ledger)?;
                let making = Making {
                    app: &state,
                    ledger,
                    id: &key.1,
                    from,
                    state_note,
                };
                let (answer, entries) = make(&making)?;
                let paged = Arc::new(PagedAnswer::new(&answer, &entries)?);
                state.answer_cache.insert(size, key, Arc::clone(&paged));
                paged
            }
        };
        answer.write(&served_checkpoint(&state, ledger))
    })
    .await
    .map(super::json_body)
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
    serve(app, id, page_query.from, |m| {
        let claim: Claim = find(m.app, m.ledger, "claim", m.id)?;
        let (entries, next) = page(m.app, m.ledger, claim.entries.clone(), m.from)?;
        let answer = ClaimAnswer {
            claim: proven(m.ledger, claim),
            state_note: m.state_note.clone(),
            checkpoint: String::new(),
            entries: Vec::new(),
            next,
        };
        Ok((answer, entries))
    })
    .await
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
    serve(app, id, page_query.from, |m| {
        let pledge: Pledge = find(m.app, m.ledger, "pledge", m.id)?;
        let (entries, next) = page(m.app, m.ledger, pledge.entries.clone(), m.from)?;
        let answer = PledgeAnswer {
            pledge: proven(m.ledger, pledge),
            state_note: m.state_note.clone(),
            checkpoint: String::new(),
            entries: Vec::new(),
            next,
        };
        Ok((answer, entries))
    })
    .await
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
    serve(app, id, page_query.from, |m| {
        let allocation: Allocation = find(m.app, m.ledger, "allocation", m.id)?;
        let (entries, next) = page(m.app, m.ledger, allocation.entries.clone(), m.from)?;
        let answer = AllocationAnswer {
            allocation: proven(m.ledger, allocation),
            state_note: m.state_note.clone(),
            checkpoint: String::new(),
            entries: Vec::new(),
            next,
        };
        Ok((answer, entries))
    })
    .await
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
    serve(app, student, page_query.from, |m| {
        let index: StudentIndex = find(m.app, m.ledger, "student", m.id)?;
        let claims: Vec<Proven<Claim>> = named(m.ledger, &index.claims)?;
        let mut allocations = Vec::new();
        for claim in &claims {
            allocations.extend(named::<Allocation>(m.ledger, &claim.object.allocations)?);
        }
        let indexes = claims
            .iter()
            .flat_map(|c| c.object.entries.iter().copied())
            .collect();
        let (entries, next) = page(m.app, m.ledger, indexes, m.from)?;
        let answer = StudentAnswer {
            student: proven(m.ledger, index),
            claims,
            allocations,
            state_note: m.state_note.clone(),
            checkpoint: String::new(),
            entries: Vec::new(),
            next,
        };
        Ok((answer, entries))
    })
    .await
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
            pool: proven(ledger, pool),
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
            liability: proven(ledger, liability),
            institution: proven(ledger, party),
            state_note,
            checkpoint,
        })
    })
    .await
    .map(Json)
}

/// Most state notes in one page of `GET /v1/state-notes`.
pub const STATE_NOTE_PAGE_MAX: usize = 256;

/// `GET /v1/state-notes?from=`: the operator's signed state notes of the batches that
/// ended at tree size `from` (default 1) and above, oldest first, as stored, a bounded
/// page at a time (the batches are found from the checkpoint records of `log.dat`,
/// reading at most [`super::listings::CHECKPOINT_PAGE_RECORDS_MAX`] records), so that
/// a remote auditor replaying the log compares every root the operator signed.
///
/// # Errors
/// `size_out_of_range` (400) for `from` past the log's size.
pub async fn get_state_notes(
    State(app): State<AppState>,
    Query(query): Query<StateNotesQuery>,
) -> Result<Json<StateNotePage>, ApiError> {
    let from = query.from.unwrap_or(1).max(1);
    // Reads log.dat: off the runtime.
    app.read_blocking(move |ledger| {
        let log = ledger.log();
        super::listings::listed_from(log, from)?;
        let (batches, next) = log
            .checkpoints_from(
                from,
                STATE_NOTE_PAGE_MAX,
                super::listings::CHECKPOINT_PAGE_RECORDS_MAX,
            )
            .map_err(ApiError::internal)?;
        let mut state_notes = Vec::with_capacity(batches.len());
        for (size, _) in batches {
            // A batch without a note (none before the ledger's first) is not listed.
            if let Some(note) = log.state_note_at(size).map_err(ApiError::internal)? {
                state_notes.push(StateNoteRow { size, note });
            }
        }
        Ok(StateNotePage { state_notes, next })
    })
    .await
    .map(Json)
}
