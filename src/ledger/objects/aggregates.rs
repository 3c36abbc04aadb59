//! The objects that sum others: a student's claims, an institution's liability and the
//! pool's totals. Counters only, touched by many entries; their derivation is the
//! objects they sum, each with its own `entries`.

use serde::{Deserialize, Serialize};

use crate::ledger::units::{Fen, Id, Lessons};

/// The claims of one student (bounded by `CLAIMS_PER_STUDENT_MAX`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentIndex {
    /// Pseudonymous id of the student.
    pub student: Id,
    /// Ids of the student's claims, in the order made.
    pub claims: Vec<Id>,
}

/// What a closed institution owes, kept as counters over its claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liability {
    /// Id of the closed institution.
    pub institution: Id,
    /// Distinct students holding a claim against it.
    pub students: u64,
    /// Claims against it.
    pub claims: u64,
    /// Lessons owed over its claims.
    pub lessons_owed: Lessons,
    /// Value owed over its claims, in fen.
    pub owed: Fen,
    /// Value of the claims' lessons consumed in the pool.
    pub made_good: Fen,
}

/// Totals over the whole pool, in fen. Pledge-side totals count approved pledges only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Number of claims.
    pub claims: u64,
    /// Value of every claim, in fen.
    pub claims_value: Fen,
    /// Claim value not reserved by an allocation, in fen.
    pub claims_unreserved: Fen,
    /// Claim value reserved by allocations, in fen.
    pub claims_reserved: Fen,
    /// Claim value made good by lessons consumed, in fen.
    pub claims_consumed: Fen,
    /// Number of approved pledges.
    pub pledges_approved: u64,
    /// Value of the approved pledges' capacity, in fen.
    pub pledged: Fen,
    /// Pledged value not allocated, in fen.
    pub available: Fen,
    /// Pledged value reserved by allocations, in fen.
    pub reserved: Fen,
    /// Pledged value delivered as lessons consumed, in fen.
    pub delivered: Fen,
    /// Pledged value withdrawn by donors, in fen.
    pub withdrawn: Fen,
}
