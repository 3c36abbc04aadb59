//! The wire types of the read API, shared by the server ([`crate::http`]) and its client
//! ([`crate::client`]); plain serde types that know nothing of axum or reqwest.
//!
//! - [`balances`]: the balance answers (`GET /v1/claims/{id}`, `/v1/allocations/{id}`,
//!   `/v1/pledges/{id}`, `/v1/students/{ref}`, `/v1/pool`,
//!   `/v1/institutions/{id}/report`): each state object itself, typed, with its state
//!   proof against the root of the latest signed state note, that note, the checkpoint of
//!   the same size, and (for the four first) a page of the entries behind it, each with
//!   its inclusion proof; and the absence proof a 404 carries;
//! - the state notes listed for a remote auditor (`GET /v1/state-notes?from=`).
//!
//! Units, everywhere: money in fen (1/100 yuan), lesson counts in lessons, times in µs
//! of ledger time since the Unix epoch, positions as entry indexes.

pub mod balances;
pub mod submission;

pub use balances::{
    Absence, AllocationAnswer, BalanceAnswer, ClaimAnswer, InstitutionAnswer, LessonAnswer,
    PageQuery, PledgeAnswer, PoolAnswer, Proven, ProvenEntry, StateNotePage, StateNoteRow,
    StateNotesQuery, StudentAnswer,
};
