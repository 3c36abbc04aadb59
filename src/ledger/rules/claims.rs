//! Rule of `claim_recorded`: a student's unfinished prepaid lessons at a closed
//! institution, recorded by the operator, co-signed by the student (双签字) and by a
//! consumer association that checked the evidence whose digest the claim carries.

use super::Cx;
use crate::ledger::conservation::ClaimValue;
use crate::ledger::error::RuleError;
use crate::ledger::limits::{
    ACCEPTED_DISTRICTS_MAX, CLAIMS_PER_STUDENT_MAX, CLAIM_LESSONS_MAX, GRADE_MAX, GRADE_MIN,
    PRICE_PER_LESSON_FEN_MAX,
};
use crate::ledger::objects::{Claim, Liability, StudentIndex};
use crate::ledger::payload::{ClaimRecorded, Role};
use crate::ledger::state::StateView;
use crate::ledger::units::{evidence_digest, Fen, Id, Lessons};

pub(super) fn claim_recorded<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &ClaimRecorded,
) -> Result<(), RuleError> {
    let claim_id = Id::new("claim", &p.claim)?;
    let student = Id::new("student", &p.student)?;
    let institution = Id::new("institution", &p.institution)?;
    check_ranges(p)?;
    let subject = cx.subject(&p.subject)?;
    let district = cx.district("district", &p.district)?;
    let digest = evidence_digest(&p.evidence_digest)?;
    let accepted = accepted_districts(cx, &p.accepted_districts)?;
    // "Value = lessons × price (checked)."
    let value = Fen(p.price_per_lesson_fen).checked_mul(p.lessons, "claim value")?;

    // "signed by an operator AND the student (double signature)", AND by a consumer
    // association the genesis declared, which has seen the evidence (the contract and the
    // payment record, off the log, bound here by `evidence_digest`): a claim creates a
    // debt, and no single key may create value.
    cx.signers.require_role(Role::Operator)?;
    cx.signers.require_cosigner(Role::Association)?;
    cx.signers.require_party(&student, "student")?;

    if cx.tx.find::<Claim>(claim_id.as_str())?.is_some() {
        return Err(RuleError::ClaimExists {
            claim: claim_id.to_string(),
        });
    }
    cx.party_with_role(&student, Role::Student)?;
    let inst = cx.party_with_role(&institution, Role::Institution)?;
    if inst.closed_at.is_none() {
        return Err(RuleError::InstitutionNotClosed {
            institution: institution.to_string(),
        });
    }
    let mut index = student_index(cx, &student)?;
    let new_student = !holds_claim_against(cx, &index, &institution)?;
    let liability = owe_more(cx, &institution, new_student, Lessons(p.lessons), value)?;
    let mut pool = cx.pool()?;
    pool.claims = pool.claims.checked_add(1).ok_or(RuleError::Overflow {
        what: "pool claims",
    })?;
    pool.claims_value = pool.claims_value.checked_add(value, "pool claims value")?;
    pool.claims_unreserved = pool
        .claims_unreserved
        .checked_add(value, "pool claims unreserved")?;
    index.claims.push(claim_id.clone());

    cx.tx.put(Claim {
        claim: claim_id,
        student,
        institution,
        subject,
        grade: p.grade,
        district,
        accepts_online: p.accepts_online,
        accepted_districts: accepted,
        evidence_digest: digest,
        lessons: Lessons(p.lessons),
        price_per_lesson: Fen(p.price_per_lesson_fen),
        value: ClaimValue::new(value),
        allocations: Vec::new(),
        entries: Vec::new(),
        preferences: None,
    });
    cx.tx.put(index);
    cx.tx.put(liability);
    cx.tx.put(pool);
    Ok(())
}

/// Lessons, price and grade within the ledger's bounds.
fn check_ranges(p: &ClaimRecorded) -> Result<(), RuleError> {
    if !(1..=CLAIM_LESSONS_MAX).contains(&p.lessons) {
        return Err(RuleError::LessonsOutOfRange {
            value: p.lessons,
            max: CLAIM_LESSONS_MAX,
        });
    }
    if !(1..=PRICE_PER_LESSON_FEN_MAX).contains(&p.price_per_lesson_fen) {
        return Err(RuleError::PriceOutOfRange {
            value: p.price_per_lesson_fen,
            max: PRICE_PER_LESSON_FEN_MAX,
        });
    }
    if !(u64::from(GRADE_MIN)..=u64::from(GRADE_MAX)).contains(&p.grade) {
        return Err(RuleError::GradeOutOfRange { value: p.grade });
    }
    Ok(())
}

/// The accepted districts: at most [`ACCEPTED_DISTRICTS_MAX`], each declared, none twice.
fn accepted_districts<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    districts: &[String],
) -> Result<Vec<Id>, RuleError> {
    if districts.len() > ACCEPTED_DISTRICTS_MAX {
        return Err(RuleError::TooManyItems {
            field: "accepted_districts",
            items: districts.len(),
            max: ACCEPTED_DISTRICTS_MAX,
        });
    }
    let mut accepted: Vec<Id> = Vec::with_capacity(districts.len());
    for d in districts {
        let d = cx.district("accepted_districts", d)?;
        if accepted.contains(&d) {
            return Err(RuleError::DuplicateItem {
                field: "accepted_districts",
                value: d.to_string(),
            });
        }
        accepted.push(d);
    }
    Ok(accepted)
}

/// The student's claims so far (none yet: a new index), with room for one more.
fn student_index<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    student: &Id,
) -> Result<StudentIndex, RuleError> {
    let index = cx
        .tx
        .find::<StudentIndex>(student.as_str())?
        .unwrap_or_else(|| StudentIndex {
            student: student.clone(),
            claims: Vec::new(),
        });
    if index.claims.len() >= CLAIMS_PER_STUDENT_MAX {
        return Err(RuleError::StudentClaimsFull {
            student: student.to_string(),
            max: CLAIMS_PER_STUDENT_MAX,
        });
    }
    Ok(index)
}

/// Whether the student already holds a claim against `institution`: a student counts
/// once per institution, however many claims they hold against it.
fn holds_claim_against<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    index: &StudentIndex,
    institution: &Id,
) -> Result<bool, RuleError> {
    let mut holds = false;
    for c in &index.claims {
        let other: Claim = cx.tx.need(c.as_str(), || RuleError::StateCorrupt {
            detail: format!("student index names unknown claim {c}"),
        })?;
        if other.institution == *institution {
            holds = true;
        }
    }
    Ok(holds)
}

/// The closed institution's liability with one more claim of `lessons` worth `value`
/// (and one more student if `new_student`).
fn owe_more<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    institution: &Id,
    new_student: bool,
    lessons: Lessons,
    value: Fen,
) -> Result<Liability, RuleError> {
    let mut liability: Liability =
        cx.tx
            .need(institution.as_str(), || RuleError::StateCorrupt {
                detail: format!("closed institution {institution} has no liability"),
            })?;
    if new_student {
        liability.students = liability
            .students
            .checked_add(1)
            .ok_or(RuleError::Overflow { what: "students" })?;
    }
    liability.claims = liability
        .claims
        .checked_add(1)
        .ok_or(RuleError::Overflow { what: "claims" })?;
    liability.lessons_owed = liability
        .lessons_owed
        .checked_add(lessons, "lessons owed")?;
    liability.owed = liability.owed.checked_add(value, "value owed")?;
    Ok(liability)
}
