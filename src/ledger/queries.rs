//! Read-only queries over the state, pure functions of a [`StateView`]: the balances of a
//! claim, a pledge, an allocation, a student and a party, the pool totals, and the
//! liability report of a closed institution. Each balance lists the entry indexes it
//! derives from (the `entries` kept on the objects).
//!
//! ```
//! use lesson_ledger::ledger::{queries, MemoryState};
//! let s = MemoryState::new();
//! assert_eq!(queries::claim_balance(&s, "c-1").unwrap(), None);
//! assert_eq!(queries::pool_totals(&s).unwrap().claims, 0);
//! ```

use serde::{Deserialize, Serialize};

use super::error::RuleError;
use super::objects::{Allocation, Claim, KeyRecord, Liability, Party, Pledge, Pool, StudentIndex};
use super::payload::Role;
use super::state::{get_object, StateView, POOL_ID};
use super::units::{Fen, Id, KeyRef, Lessons};

/// A claim's balance, in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimBalance {
    /// The claim's id.
    pub claim: Id,
    /// Pseudonymous id of the student who holds it.
    pub student: Id,
    /// Id of the closed institution that owes it.
    pub institution: Id,
    /// Lessons prepaid and not taken at closure.
    pub lessons: Lessons,
    /// What one of those lessons cost, in fen.
    pub price_per_lesson: Fen,
    /// `lessons × price_per_lesson`, in fen.
    pub value: Fen,
    /// Value not yet reserved by an allocation, in fen.
    pub unreserved: Fen,
    /// Value reserved by open allocations, in fen.
    pub reserved: Fen,
    /// Value made good by lessons consumed, in fen.
    pub consumed: Fen,
    /// Indexes of the entries that changed it, oldest first.
    pub entries: Vec<u64>,
}

impl From<Claim> for ClaimBalance {
    fn from(c: Claim) -> Self {
        ClaimBalance {
            claim: c.claim,
            student: c.student,
            institution: c.institution,
            lessons: c.lessons,
            price_per_lesson: c.price_per_lesson,
            value: c.value.total(),
            unreserved: c.value.unreserved(),
            reserved: c.value.reserved(),
            consumed: c.value.consumed(),
            entries: c.entries,
        }
    }
}

/// The balance of a claim.
///
/// # Errors
/// `state_corrupt`: an object of another type under the id.
pub fn claim_balance<V: StateView + ?Sized>(
    view: &V,
    claim: &str,
) -> Result<Option<ClaimBalance>, RuleError> {
    Ok(get_object::<Claim, V>(view, claim)?.map(ClaimBalance::from))
}

/// The balance of a pledge (the pledge object: lessons per bucket and its entries).
///
/// # Errors
/// `state_corrupt`: an object of another type under the id.
pub fn pledge_balance<V: StateView + ?Sized>(
    view: &V,
    pledge: &str,
) -> Result<Option<Pledge>, RuleError> {
    get_object::<Pledge, V>(view, pledge)
}

/// The balance of an allocation (lessons per bucket and its entries).
///
/// # Errors
/// `state_corrupt`: an object of another type under the id.
pub fn allocation_balance<V: StateView + ?Sized>(
    view: &V,
    allocation: &str,
) -> Result<Option<Allocation>, RuleError> {
    get_object::<Allocation, V>(view, allocation)
}

/// All claims of one student, with their totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentSummary {
    /// Pseudonymous id of the student.
    pub student: Id,
    /// Each of the student's claims.
    pub claims: Vec<ClaimBalance>,
    /// Sum of the claims' values, in fen.
    pub value: Fen,
    /// Sum of their unreserved values, in fen.
    pub unreserved: Fen,
    /// Sum of their reserved values, in fen.
    pub reserved: Fen,
    /// Sum of their consumed values, in fen.
    pub consumed: Fen,
}

/// The summary of a student's claims; `None` if the student holds none.
///
/// # Errors
/// `state_*` from the store; `overflow` summing (cannot happen within the limits).
pub fn student_summary<V: StateView + ?Sized>(
    view: &V,
    student: &str,
) -> Result<Option<StudentSummary>, RuleError> {
    let Some(index) = get_object::<StudentIndex, V>(view, student)? else {
        return Ok(None);
    };
    let mut claims = Vec::with_capacity(index.claims.len());
    for id in &index.claims {
        claims.push(get_object::<Claim, V>(view, id.as_str())?.ok_or_else(|| {
            RuleError::StateCorrupt {
                detail: format!("student index names unknown claim {id}"),
            }
        })?);
    }
    StudentSummary::of(index.student, claims).map(Some)
}

impl StudentSummary {
    /// The summary of `student`'s `claims` (a client builds it from proven claims).
    ///
    /// # Errors
    /// `overflow` summing (cannot happen within the limits).
    pub fn of(student: Id, claims: Vec<Claim>) -> Result<StudentSummary, RuleError> {
        let mut s = StudentSummary {
            student,
            claims: Vec::with_capacity(claims.len()),
            value: Fen(0),
            unreserved: Fen(0),
            reserved: Fen(0),
            consumed: Fen(0),
        };
        for c in claims {
            s.value = s.value.checked_add(c.value.total(), "student value")?;
            s.unreserved = s
                .unreserved
                .checked_add(c.value.unreserved(), "student unreserved")?;
            s.reserved = s
                .reserved
                .checked_add(c.value.reserved(), "student reserved")?;
            s.consumed = s
                .consumed
                .checked_add(c.value.consumed(), "student consumed")?;
            s.claims.push(c.into());
        }
        Ok(s)
    }
}

/// A party and the status of each of its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartyInfo {
    /// The party's opaque id.
    pub party: Id,
    /// What the party is.
    pub role: Role,
    /// Each key with the entry index of its revocation, if revoked.
    pub keys: Vec<(KeyRef, Option<u64>)>,
    /// Institutions only: index of the entry that closed it.
    pub closed_at: Option<u64>,
    /// Institutions only: index of the entry that white-listed it.
    pub whitelisted_at: Option<u64>,
    /// Institutions only: index of the entry that black-listed it.
    pub banned_at: Option<u64>,
    /// Indexes of the latest entries that changed it, oldest first (bounded).
    pub entries: Vec<u64>,
}

/// A party, with its keys' status.
///
/// # Errors
/// `state_corrupt`: an object of another type under an id, or a key the party names missing.
pub fn party<V: StateView + ?Sized>(view: &V, party: &str) -> Result<Option<PartyInfo>, RuleError> {
    let Some(p) = get_object::<Party, V>(view, party)? else {
        return Ok(None);
    };
    let mut keys = Vec::with_capacity(p.keys.len());
    for k in p.keys {
        let rec = get_object::<KeyRecord, V>(view, k.as_str())?.ok_or_else(|| {
            RuleError::StateCorrupt {
                detail: format!("party {party} names unknown key"),
            }
        })?;
        keys.push((k, rec.revoked_at));
    }
    Ok(Some(PartyInfo {
        party: p.party,
        role: p.role,
        keys,
        closed_at: p.closed_at,
        whitelisted_at: p.whitelisted_at,
        banned_at: p.banned_at,
        entries: p.entries,
    }))
}

/// The pool totals (all zero before genesis).
///
/// # Errors
/// `state_corrupt`: an object of another type under the id.
pub fn pool_totals<V: StateView + ?Sized>(view: &V) -> Result<Pool, RuleError> {
    Ok(get_object::<Pool, V>(view, POOL_ID)?.unwrap_or_default())
}

/// What a closed institution owes: the evidence for a collective claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitutionReport {
    /// Id of the institution.
    pub institution: Id,
    /// Entry index of the closure.
    pub closed_at: Option<u64>,
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
    /// `owed − made_good`: what the family's legal claim against the institution still covers.
    pub outstanding: Fen,
}

/// The liability report of a closed institution; `None` if it was never closed.
///
/// # Errors
/// `state_*` from the store; `underflow` if the stored counters are inconsistent.
pub fn institution_report<V: StateView + ?Sized>(
    view: &V,
    institution: &str,
) -> Result<Option<InstitutionReport>, RuleError> {
    let Some(l) = get_object::<Liability, V>(view, institution)? else {
        return Ok(None);
    };
    let party =
        get_object::<Party, V>(view, institution)?.ok_or_else(|| RuleError::StateCorrupt {
            detail: format!("liability of unknown party {institution}"),
        })?;
    InstitutionReport::of(l, &party).map(Some)
}

impl InstitutionReport {
    /// The report of a liability and its institution's party object (a client builds it
    /// from the proven objects).
    ///
    /// # Errors
    /// `underflow` if the counters are inconsistent.
    pub fn of(l: Liability, institution: &Party) -> Result<InstitutionReport, RuleError> {
        Ok(InstitutionReport {
            outstanding: l.owed.checked_sub(l.made_good, "outstanding")?,
            institution: l.institution,
            closed_at: institution.closed_at,
            students: l.students,
            claims: l.claims,
            lessons_owed: l.lessons_owed,
            owed: l.owed,
            made_good: l.made_good,
        })
    }
}
