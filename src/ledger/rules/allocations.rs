//! Rules of `allocation_made` (the operator, from a match run; by hand only with a consumer
//! association's co-signature), `allocation_expired` (the
//! operator, once past expiry) and `allocation_declined` (the student).
//!
//! An allocation of k lessons of a pledge worth v fen each "reserves k lessons of the
//! pledge and k·v fen of the claim's unreserved value (what is too small for one more
//! lesson stays unreserved)". It expires at the entry's ledger time plus the genesis
//! `allocation_validity_days`, or at the pledge's `valid_until`, whichever is first.
//!
//! Open allocations of a banned or closed donor: the operator may expire them at once,
//! without waiting for their expiry; lessons proposed before the ban may still be
//! confirmed, disputed or deemed confirmed, since they were taught before it.

use super::Cx;
use crate::ledger::conservation::AllocationLessons;
use crate::ledger::error::RuleError;
use crate::ledger::limits::{CLAIM_ALLOCATIONS_OPEN_MAX, CLAIM_LESSONS_MAX};
use crate::ledger::objects::{
    Allocation, AllocationStatus, Claim, Compatibility, Party, Pledge, Pool,
};
use crate::ledger::payload::{AllocationMade, AllocationRef, Role};
use crate::ledger::state::StateView;
use crate::ledger::units::{Fen, Id, Lessons};

pub(super) fn allocation_made<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &AllocationMade,
) -> Result<(), RuleError> {
    let alloc_id = Id::new("allocation", &p.allocation)?;
    let claim_id = Id::new("claim", &p.claim)?;
    let pledge_id = Id::new("pledge", &p.pledge)?;
    let run = p.run.as_deref().map(|r| Id::new("run", r)).transpose()?;
    if !(1..=CLAIM_LESSONS_MAX).contains(&p.lessons) {
        return Err(RuleError::LessonsOutOfRange {
            value: p.lessons,
            max: CLAIM_LESSONS_MAX,
        });
    }
    let k = Lessons(p.lessons);
    cx.signers.require_role(Role::Operator)?;
    // A run's allocations are checked by re-running the matcher (`verify`); one made by
    // hand has no such check, so a consumer association co-signs it: it vouches that
    // this exception to the matcher's order is fair to the families waiting.
    if run.is_none() {
        cx.signers.require_cosigner(Role::Association)?;
    }
    if cx.tx.find::<Allocation>(alloc_id.as_str())?.is_some() {
        return Err(RuleError::AllocationExists {
            allocation: alloc_id.to_string(),
        });
    }
    if let Some(run) = &run {
        super::runs::count_allocation(cx, run, &alloc_id)?;
    }
    let mut claim: Claim = cx.tx.need(claim_id.as_str(), || RuleError::ClaimUnknown {
        claim: claim_id.to_string(),
    })?;
    let mut pledge: Pledge = cx
        .tx
        .need(pledge_id.as_str(), || RuleError::PledgeUnknown {
            pledge: pledge_id.to_string(),
        })?;
    let t = cx.ctx.time_micros;
    usable_pledge(cx, &pledge, &pledge_id)?;
    compatible(&claim, &pledge)?;
    let need = fits(&claim, &pledge, k, &claim_id)?;
    let expires_at_micros = expiry(cx, t, &pledge)?;

    claim.value.reserve(need)?;
    claim.allocations.push(alloc_id.clone());
    pledge.capacity.reserve(k)?;
    let pool = reserve_in_pool(cx, need)?;
    cx.tx.put(Allocation {
        allocation: alloc_id,
        claim: claim_id,
        pledge: pledge_id,
        student: claim.student.clone(),
        institution: pledge.institution.clone(),
        lessons: AllocationLessons::new(k),
        value_per_lesson: pledge.value_per_lesson,
        status: AllocationStatus::Active,
        expires_at_micros,
        open_lessons: Vec::new(),
        entries: Vec::new(),
        run,
    });
    cx.tx.put(claim);
    cx.tx.put(pledge);
    cx.tx.put(pool);
    Ok(())
}

/// How an allocation ends: which entry ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AllocationEnd {
    /// `allocation_expired`: the operator, once past expiry (or the donor gone).
    Expired,
    /// `allocation_declined`: the student, at any time while active.
    Declined,
}

/// `allocation_expired` or `allocation_declined`.
pub(super) fn allocation_ended<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &AllocationRef,
    end: AllocationEnd,
) -> Result<(), RuleError> {
    let declined = end == AllocationEnd::Declined;
    let alloc_id = Id::new("allocation", &p.allocation)?;
    let mut alloc: Allocation = cx
        .tx
        .need(alloc_id.as_str(), || RuleError::AllocationUnknown {
            allocation: alloc_id.to_string(),
        })?;
    if declined {
        // "allocation_declined {allocation}: the student"
        cx.signers.require_party(&alloc.student, "student")?;
    } else {
        cx.signers.require_role(Role::Operator)?;
    }
    if alloc.status != AllocationStatus::Active {
        return Err(RuleError::AllocationNotActive {
            allocation: alloc_id.to_string(),
            status: alloc.status.as_str(),
        });
    }
    if !declined {
        // "only when the entry's ledger time is past expiry", or at once when the donor
        // was banned or closed.
        let inst: Party = cx
            .tx
            .need(alloc.institution.as_str(), || RuleError::StateCorrupt {
                detail: format!("allocation {alloc_id} names unknown institution"),
            })?;
        let donor_gone = inst.banned_at.is_some() || inst.closed_at.is_some();
        let t = cx.ctx.time_micros;
        if !donor_gone {
            if t < alloc.expires_at_micros {
                return Err(RuleError::AllocationNotExpired {
                    allocation: alloc_id.to_string(),
                    time: t,
                    expires_at: alloc.expires_at_micros,
                });
            }
            // Past expiry on the associations' clock too (`rules/time.rs`).
            super::time::require_attested(cx, "the allocation", alloc.expires_at_micros)?;
        }
    }
    // "Both release what is not consumed (and not pending)"
    let rest = alloc.lessons.release_remaining()?;
    cx.release(&alloc, rest)?;
    alloc.status = if declined {
        AllocationStatus::Declined
    } else {
        AllocationStatus::Expired
    };
    cx.put_allocation(alloc)
}

/// When an allocation made at `t` expires: the genesis `allocation_validity_days`
/// later, or at the pledge's `valid_until`, whichever is first.
fn expiry<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    t: u64,
    pledge: &Pledge,
) -> Result<u64, RuleError> {
    let config = cx.config()?;
    let validity = config.days_micros(config.allocation_validity_days, "allocation validity")?;
    let expires = t.checked_add(validity).ok_or(RuleError::Overflow {
        what: "allocation expiry",
    })?;
    Ok(expires.min(pledge.valid_until_micros))
}

/// "compatible (... pledge approved and valid at the entry's ledger time, institution
/// not banned)"
fn usable_pledge<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    pledge: &Pledge,
    pledge_id: &Id,
) -> Result<(), RuleError> {
    if pledge.approved_at.is_none() {
        return Err(RuleError::PledgeNotApproved {
            pledge: pledge_id.to_string(),
        });
    }
    cx.active_institution(&pledge.institution)?;
    let t = cx.ctx.time_micros;
    if !(pledge.valid_from_micros..pledge.valid_until_micros).contains(&t) {
        return Err(RuleError::PledgeNotValidAtTime {
            pledge: pledge_id.to_string(),
            time: t,
            valid_from: pledge.valid_from_micros,
            valid_until: pledge.valid_until_micros,
        });
    }
    Ok(())
}

/// "subject accepted, grade in band, district accepted or online accepted, or the
/// course requested" (the claim's preferences if set, else its own fields).
fn compatible(claim: &Claim, pledge: &Pledge) -> Result<(), RuleError> {
    match claim.accepts(pledge) {
        Compatibility::Compatible => Ok(()),
        Compatibility::Subject => Err(RuleError::IncompatibleSubject {
            claim_subject: claim.subject.to_string(),
            pledge_subject: pledge.subject.to_string(),
        }),
        Compatibility::Grade => Err(RuleError::IncompatibleGrade {
            grade: claim.grade,
            grade_min: pledge.grade_min,
            grade_max: pledge.grade_max,
        }),
        Compatibility::Location => Err(RuleError::IncompatibleLocation),
    }
}

/// `k` lessons fit one seat of the pledge, its available lessons, the claim's unreserved
/// value and the claim's open allocations; returns the value they reserve.
fn fits(claim: &Claim, pledge: &Pledge, k: Lessons, claim_id: &Id) -> Result<Fen, RuleError> {
    // One allocation is one student's seat.
    if k.0 > pledge.lessons_per_seat {
        return Err(RuleError::AllocationExceedsSeat {
            requested: k.0,
            per_seat: pledge.lessons_per_seat,
        });
    }
    if k > pledge.capacity.available() {
        return Err(RuleError::InsufficientCapacity {
            requested: k.0,
            available: pledge.capacity.available().0,
        });
    }
    let need = pledge
        .value_per_lesson
        .checked_mul(k.0, "allocation value")?;
    if need > claim.value.unreserved() {
        return Err(RuleError::InsufficientClaimValue {
            needed: need.0,
            unreserved: claim.value.unreserved().0,
        });
    }
    if claim.allocations.len() >= CLAIM_ALLOCATIONS_OPEN_MAX {
        return Err(RuleError::ClaimAllocationsFull {
            claim: claim_id.to_string(),
            max: CLAIM_ALLOCATIONS_OPEN_MAX,
        });
    }
    Ok(need)
}

/// The pool with `need` moved from unreserved to reserved, on both sides.
fn reserve_in_pool<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    need: Fen,
) -> Result<Pool, RuleError> {
    let mut pool = cx.pool()?;
    pool.claims_unreserved = pool
        .claims_unreserved
        .checked_sub(need, "pool claims unreserved")?;
    pool.claims_reserved = pool
        .claims_reserved
        .checked_add(need, "pool claims reserved")?;
    pool.available = pool.available.checked_sub(need, "pool available")?;
    pool.reserved = pool.reserved.checked_add(need, "pool reserved")?;
    Ok(pool)
}
