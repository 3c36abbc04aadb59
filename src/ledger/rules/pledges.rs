//! Rules of `pledge_offered` (the donor institution), `pledge_approved` (the operator,
//! white-listed and unbanned donors only) and `pledge_withdrawn` (the donor, capacity not
//! yet reserved only).
//!
//! Per pledge, `capacity = available + reserved + delivered + withdrawn`: withdrawn
//! lessons are kept as their own bucket so capacity never changes after the offer.

use super::{in_range, Cx};
use crate::ledger::conservation::PledgeCapacity;
use crate::ledger::error::RuleError;
use crate::ledger::limits::{
    GRADE_MAX, GRADE_MIN, LESSONS_PER_SEAT_MAX, PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX,
    PLEDGE_SEATS_MAX, PRICE_PER_LESSON_FEN_MAX,
};
use crate::ledger::objects::Pledge;
use crate::ledger::payload::{PledgeOffered, PledgeRef, PledgeWithdrawn, Role};
use crate::ledger::state::StateView;
use crate::ledger::units::{Fen, Id, Lessons};

pub(super) fn pledge_offered<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &PledgeOffered,
) -> Result<(), RuleError> {
    let pledge_id = Id::new("pledge", &p.pledge)?;
    let institution = Id::new("institution", &p.institution)?;
    let subject = cx.subject(&p.subject)?;
    check_grade_band(p)?;
    // "district or online": exactly one of the two.
    let district = match (&p.district, p.online) {
        (Some(d), false) => Some(cx.district("district", d)?),
        (None, true) => None,
        _ => return Err(RuleError::LocationInvalid),
    };
    let seats = in_range("seats", p.seats, 1, PLEDGE_SEATS_MAX)?;
    let per_seat = in_range(
        "lessons_per_seat",
        p.lessons_per_seat,
        1,
        LESSONS_PER_SEAT_MAX,
    )?;
    check_price_and_window(p, cx.ctx.time_micros)?;
    let capacity = Lessons(seats).checked_mul(per_seat, "pledge capacity")?;
    // Value of the whole pledge must be representable for the pool totals.
    Fen(p.value_per_lesson_fen).checked_mul(capacity.0, "pledge value")?;

    // "signed by the institution"
    cx.signers.require_party(&institution, "institution")?;
    if cx.tx.find::<Pledge>(pledge_id.as_str())?.is_some() {
        return Err(RuleError::PledgeExists {
            pledge: pledge_id.to_string(),
        });
    }
    // "A banned institution pledges ... nothing after its ban"; a closed one has nothing
    // left to teach with.
    let mut inst = cx.active_institution(&institution)?;
    if inst.pledges_unapproved >= PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX {
        return Err(RuleError::TooManyUnapprovedPledges {
            institution: institution.to_string(),
            max: PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX,
        });
    }
    inst.pledges_unapproved += 1;
    cx.tx.put(inst);
    cx.tx.put(Pledge {
        pledge: pledge_id,
        institution,
        subject,
        grade_min: p.grade_min,
        grade_max: p.grade_max,
        district,
        online: p.online,
        seats,
        lessons_per_seat: per_seat,
        value_per_lesson: Fen(p.value_per_lesson_fen),
        valid_from_micros: p.valid_from_micros,
        valid_until_micros: p.valid_until_micros,
        capacity: PledgeCapacity::new(capacity),
        approved_at: None,
        entries: Vec::new(),
    });
    Ok(())
}

/// The grade band: both ends within the ledger's grades, lowest first.
fn check_grade_band(p: &PledgeOffered) -> Result<(), RuleError> {
    let grades = u64::from(GRADE_MIN)..=u64::from(GRADE_MAX);
    if !grades.contains(&p.grade_min) || !grades.contains(&p.grade_max) || p.grade_min > p.grade_max
    {
        return Err(RuleError::GradeBandInvalid {
            grade_min: p.grade_min,
            grade_max: p.grade_max,
        });
    }
    Ok(())
}

/// The value per lesson within bounds, and a validity window that is not empty and not
/// already over at the offer's ledger time `now` (such a window can never be used).
fn check_price_and_window(p: &PledgeOffered, now: u64) -> Result<(), RuleError> {
    if !(1..=PRICE_PER_LESSON_FEN_MAX).contains(&p.value_per_lesson_fen) {
        return Err(RuleError::PriceOutOfRange {
            value: p.value_per_lesson_fen,
            max: PRICE_PER_LESSON_FEN_MAX,
        });
    }
    if p.valid_from_micros >= p.valid_until_micros || p.valid_until_micros <= now {
        return Err(RuleError::ValidityWindowInvalid {
            valid_from: p.valid_from_micros,
            valid_until: p.valid_until_micros,
        });
    }
    Ok(())
}

pub(super) fn pledge_approved<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &PledgeRef,
) -> Result<(), RuleError> {
    let pledge_id = Id::new("pledge", &p.pledge)?;
    cx.signers.require_role(Role::Operator)?;
    let mut pledge: Pledge = cx
        .tx
        .need(pledge_id.as_str(), || RuleError::PledgeUnknown {
            pledge: pledge_id.to_string(),
        })?;
    if pledge.approved_at.is_some() {
        return Err(RuleError::PledgeAlreadyApproved {
            pledge: pledge_id.to_string(),
        });
    }
    // "only for a white-listed, not banned institution"
    let mut inst = cx.active_institution(&pledge.institution)?;
    if inst.whitelisted_at.is_none() {
        return Err(RuleError::InstitutionNotWhitelisted {
            institution: inst.party.to_string(),
        });
    }
    inst.pledges_unapproved =
        inst.pledges_unapproved
            .checked_sub(1)
            .ok_or_else(|| RuleError::StateCorrupt {
                detail: format!("institution {} counts no unapproved pledge", inst.party),
            })?;
    cx.tx.put(inst);
    pledge.approved_at = Some(cx.ctx.index);
    let v = pledge.value_per_lesson;
    let mut pool = cx.pool()?;
    pool.pledges_approved = pool
        .pledges_approved
        .checked_add(1)
        .ok_or(RuleError::Overflow { what: "pledges" })?;
    pool.pledged = pool.pledged.checked_add(
        v.checked_mul(pledge.capacity.total().0, "pledged")?,
        "pool pledged",
    )?;
    pool.available = pool.available.checked_add(
        v.checked_mul(pledge.capacity.available().0, "available")?,
        "pool available",
    )?;
    pool.withdrawn = pool.withdrawn.checked_add(
        v.checked_mul(pledge.capacity.withdrawn().0, "withdrawn")?,
        "pool withdrawn",
    )?;
    cx.tx.put(pledge);
    cx.tx.put(pool);
    Ok(())
}

pub(super) fn pledge_withdrawn<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &PledgeWithdrawn,
) -> Result<(), RuleError> {
    let pledge_id = Id::new("pledge", &p.pledge)?;
    let mut pledge: Pledge = cx
        .tx
        .need(pledge_id.as_str(), || RuleError::PledgeUnknown {
            pledge: pledge_id.to_string(),
        })?;
    // "the institution": withdrawing is allowed even after a ban, since it only shrinks
    // what the pool may count on.
    cx.signers
        .require_party(&pledge.institution, "institution")?;
    if !(1..=pledge.capacity.total().0).contains(&p.lessons) {
        return Err(RuleError::LessonsOutOfRange {
            value: p.lessons,
            max: pledge.capacity.total().0,
        });
    }
    // "only capacity not yet reserved"
    if p.lessons > pledge.capacity.available().0 {
        return Err(RuleError::WithdrawExceedsAvailable {
            requested: p.lessons,
            available: pledge.capacity.available().0,
        });
    }
    let l = Lessons(p.lessons);
    pledge.capacity.withdraw(l)?;
    if pledge.approved_at.is_some() {
        let value = pledge
            .value_per_lesson
            .checked_mul(l.0, "withdrawn value")?;
        let mut pool = cx.pool()?;
        pool.available = pool.available.checked_sub(value, "pool available")?;
        pool.withdrawn = pool.withdrawn.checked_add(value, "pool withdrawn")?;
        cx.tx.put(pool);
    }
    cx.tx.put(pledge);
    Ok(())
}
