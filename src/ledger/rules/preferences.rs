//! Rule of `claim_preferences_set` (issue 18): a family says what it will redeem its
//! claim for — the subjects it accepts in ranked order, where (districts, online), and
//! which pledged courses it asks for by id. Signed by the claim's student alone; it
//! supersedes the claim's earlier preferences and changes no value.
//!
//! Limits (`ledger::limits`): 1..=[`PREFERENCE_SUBJECTS_MAX`] subjects,
//! 0..=[`PREFERENCE_DISTRICTS_MAX`] districts besides the claim's own,
//! 0..=[`PREFERENCE_REQUESTS_MAX`] requests; each list distinct. A requested course must
//! be one the family could be given: a known pledge, approved, not expired, not fully
//! withdrawn, its institution neither banned nor closed, the claim's grade in its band,
//! its subject among the accepted ones. Its place need not be accepted: naming the
//! course is accepting where it is taught ([`Claim::accepts`]).

use super::Cx;
use crate::ledger::error::RuleError;
use crate::ledger::limits::{
    PREFERENCE_DISTRICTS_MAX, PREFERENCE_REQUESTS_MAX, PREFERENCE_SUBJECTS_MAX,
};
use crate::ledger::objects::{Claim, ClaimPreferences, Party, Pledge};
use crate::ledger::payload::ClaimPreferencesSet;
use crate::ledger::state::StateView;
use crate::ledger::units::Id;

pub(super) fn claim_preferences_set<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &ClaimPreferencesSet,
) -> Result<(), RuleError> {
    let claim_id = Id::new("claim", &p.claim)?;
    let subjects = subjects(cx, &p.subjects)?;
    let districts = districts(cx, &p.accepted_districts)?;
    let requests = requests(&p.requests)?;

    let mut claim: Claim = cx.tx.need(claim_id.as_str(), || RuleError::ClaimUnknown {
        claim: claim_id.to_string(),
    })?;
    // "the claim's student alone": another student, the operator or an institution
    // signing is `not_authorized`; no signature of the student, `missing_signature`.
    cx.signers.require_party(&claim.student, "student")?;
    if claim.value.unreserved().0 == 0 {
        return Err(RuleError::ClaimClosed {
            claim: claim_id.to_string(),
        });
    }
    for pledge_id in &requests {
        requestable(cx, &claim, &subjects, pledge_id)?;
    }
    claim.preferences = Some(ClaimPreferences {
        subjects,
        accepts_online: p.accepts_online,
        accepted_districts: districts,
        requests,
        set_at: cx.ctx.index,
    });
    cx.tx.put(claim);
    Ok(())
}

fn subjects<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    listed: &[String],
) -> Result<Vec<Id>, RuleError> {
    if listed.is_empty() {
        return Err(RuleError::ValueOutOfRange {
            field: "subjects",
            value: 0,
            min: 1,
            max: PREFERENCE_SUBJECTS_MAX as u64,
        });
    }
    if listed.len() > PREFERENCE_SUBJECTS_MAX {
        return Err(RuleError::TooManySubjects {
            items: listed.len(),
            max: PREFERENCE_SUBJECTS_MAX,
        });
    }
    let mut out: Vec<Id> = Vec::with_capacity(listed.len());
    for s in listed {
        let id = cx.subject(s).map_err(|e| match e {
            RuleError::UnknownSubject { subject } => {
                RuleError::PreferenceSubjectUnknown { subject }
            }
            other => other,
        })?;
        if out.contains(&id) {
            return Err(RuleError::PreferenceSubjectRepeated {
                subject: id.to_string(),
            });
        }
        out.push(id);
    }
    Ok(out)
}

fn districts<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    listed: &[String],
) -> Result<Vec<Id>, RuleError> {
    if listed.len() > PREFERENCE_DISTRICTS_MAX {
        return Err(RuleError::TooManyDistricts {
            items: listed.len(),
            max: PREFERENCE_DISTRICTS_MAX,
        });
    }
    let mut out: Vec<Id> = Vec::with_capacity(listed.len());
    for d in listed {
        let id = cx.district("accepted_districts", d).map_err(|e| match e {
            RuleError::UnknownDistrict { district } => {
                RuleError::PreferenceDistrictUnknown { district }
            }
            other => other,
        })?;
        if out.contains(&id) {
            return Err(RuleError::PreferenceDistrictRepeated {
                district: id.to_string(),
            });
        }
        out.push(id);
    }
    Ok(out)
}

fn requests(listed: &[String]) -> Result<Vec<Id>, RuleError> {
    if listed.len() > PREFERENCE_REQUESTS_MAX {
        return Err(RuleError::TooManyRequests {
            items: listed.len(),
            max: PREFERENCE_REQUESTS_MAX,
        });
    }
    let mut out: Vec<Id> = Vec::with_capacity(listed.len());
    for r in listed {
        let id = Id::new("requests", r)?;
        if out.contains(&id) {
            return Err(RuleError::RequestRepeated {
                pledge: id.to_string(),
            });
        }
        out.push(id);
    }
    Ok(out)
}

/// A requested course the claim could be given (see the module docs).
fn requestable<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    claim: &Claim,
    subjects: &[Id],
    pledge_id: &Id,
) -> Result<(), RuleError> {
    let pledge: Pledge = cx
        .tx
        .need(pledge_id.as_str(), || RuleError::PledgeUnknown {
            pledge: pledge_id.to_string(),
        })?;
    let not_eligible = |why| RuleError::PledgeNotEligible {
        pledge: pledge_id.to_string(),
        why,
    };
    if pledge.approved_at.is_none() {
        return Err(not_eligible("not approved"));
    }
    if cx.ctx.time_micros >= pledge.valid_until_micros {
        return Err(not_eligible("expired"));
    }
    if pledge.capacity.available().0 == 0 && pledge.capacity.withdrawn().0 > 0 {
        return Err(not_eligible("withdrawn"));
    }
    let inst: Party = cx
        .tx
        .need(pledge.institution.as_str(), || RuleError::StateCorrupt {
            detail: format!("pledge {pledge_id} names an unknown institution"),
        })?;
    if inst.banned_at.is_some() {
        return Err(not_eligible("its institution is banned"));
    }
    if inst.closed_at.is_some() {
        return Err(not_eligible("its institution is closed"));
    }
    if !(pledge.grade_min..=pledge.grade_max).contains(&claim.grade) {
        return Err(RuleError::PledgeGradeMismatch {
            pledge: pledge_id.to_string(),
            grade: claim.grade,
            grade_min: pledge.grade_min,
            grade_max: pledge.grade_max,
        });
    }
    if !subjects.contains(&pledge.subject) {
        return Err(RuleError::PledgeSubjectNotAccepted {
            pledge: pledge_id.to_string(),
            subject: pledge.subject.to_string(),
        });
    }
    Ok(())
}
