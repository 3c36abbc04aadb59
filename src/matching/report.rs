//! The outcome: plans in claim order, then pledge id, and the figures of the run.

use super::classes::{Problem, State};
use super::error::MatchError;
use super::types::{AllocationPlan, MatchReport, Matching, Method};
use crate::ledger::units::{Fen, Lessons};

/// What the driver measured along the way.
pub(super) struct Figures {
    pub(super) matched: u64,
    pub(super) bound: u64,
    pub(super) first_pass: u64,
    pub(super) edges: u64,
    pub(super) components: u64,
    pub(super) rounded: u64,
    pub(super) flow: u64,
    pub(super) greedy: u64,
    pub(super) method: Method,
    pub(super) requested: u64,
}

/// The plans held in `state` and the report.
pub(super) fn assemble(
    problem: &Problem<'_>,
    state: &State,
    figures: Figures,
) -> Result<Matching, MatchError> {
    let Figures {
        matched,
        bound,
        first_pass,
        edges,
        components,
        rounded,
        flow: flow_value,
        greedy: greedy_value,
        method,
        requested,
    } = figures;
    let (n_claims, n_pledges) = (problem.claims.len(), problem.pledges.len());
    let served = plans_of(problem, state)?;
    let ratio_ppm = if bound == 0 {
        1_000_000
    } else {
        // u128: matched × 10^6 may exceed u64 for a large pool.
        u64::try_from(u128::from(matched) * 1_000_000 / u128::from(bound))
            .map_err(|_| MatchError::Overflow { what: "ratio" })?
    };
    let report = MatchReport {
        claims: n_claims as u64,
        pledges_eligible: n_pledges as u64,
        classes: problem.classes.len() as u64,
        components,
        edges,
        matched_fen: Fen(matched),
        bound_fen: Fen(bound),
        ratio_ppm,
        first_pass_flow_fen: Fen(first_pass),
        rounded_fen: Fen(rounded),
        flow_fen: Fen(flow_value),
        greedy_fen: Fen(greedy_value),
        method,
        allocations: served.plans.len() as u64,
        claims_served: served.claims,
        students_served: served.students,
        requested_fen: Fen(requested),
        in_district_fen: Fen(served.in_district),
        online_fen: Fen(served.online),
    };
    Ok(Matching {
        plans: served.plans,
        report,
    })
}

/// The plans held in a state and what they serve.
struct Served {
    plans: Vec<AllocationPlan>,
    in_district: u64,
    online: u64,
    claims: u64,
    students: u64,
}

/// The plans held in `state`, in claim order then pledge order, with the value served in
/// a district and online and the claims and distinct students served.
fn plans_of(problem: &Problem<'_>, state: &State) -> Result<Served, MatchError> {
    let mut plans = Vec::new();
    let mut served_students: Vec<&str> = Vec::new();
    let mut in_district: u64 = 0;
    let mut online: u64 = 0;
    let mut claims_served: u64 = 0;
    for (c, held) in state.held.iter().enumerate() {
        if held.is_empty() {
            continue;
        }
        claims_served += 1;
        served_students.push(problem.claims[c].student.as_str());
        let mut held = held.clone();
        held.sort_unstable();
        for (p, k) in held {
            let pi = p as usize;
            let v = problem.value[pi]
                .checked_mul(u64::from(k))
                .ok_or(MatchError::Overflow { what: "plan value" })?;
            if problem.pledges[pi].district.is_some() {
                in_district += v;
            } else {
                online += v;
            }
            plans.push(AllocationPlan {
                claim: problem.claims[c].claim.clone(),
                pledge: problem.pledges[pi].pledge.clone(),
                lessons: Lessons(u64::from(k)),
                value_fen: Fen(v),
            });
        }
    }
    served_students.sort_unstable();
    served_students.dedup();
    Ok(Served {
        plans,
        in_district,
        online,
        claims: claims_served,
        students: served_students.len() as u64,
    })
}
