//! The matcher (issue 5): which lessons of which approved pledges to reserve for which open
//! claims. A pure function of its input — no storage, no clock, no randomness — so that
//! `lesson-ledger verify` can re-run a recorded match and compare.
//!
//! # What it owns
//! - [`ClaimInput`], [`PledgeInput`], [`MatchParams`]: what the matcher reads (built by the
//!   caller from the ledger state; see [`ClaimInput::from_claim`] and
//!   [`PledgeInput::from_pledge`]).
//! - [`match_claims`]: the plan, a list of [`AllocationPlan`] (each one becomes one
//!   `allocation_made` entry) and a [`MatchReport`] with the figures.
//! - `flow`: Dinic's maximum flow, hand-written, integer only.
//!
//! # Compatibility (exactly what `allocation_made` checks)
//! Same subject; the claim's grade in the pledge's band; the pledge's district is the
//! claim's district or among its accepted districts, or the pledge is online (no district)
//! and the claim accepts online; the pledge approved, valid at `at_micros`
//! (`valid_from <= t < valid_until`), its institution not banned; the claim's unreserved
//! value buys at least one lesson. An allocation is `1..=min(lessons_per_seat,
//! CLAIM_LESSONS_MAX)` lessons (one seat), within the pledge's available lessons and the
//! claim's unreserved value; a claim gets at most one allocation per pledge.
//!
//! # Method
//! 1. **Classes.** Claims that share subject, grade, own district, accepted districts and
//!    online acceptance are interchangeable for compatibility: they form one class.
//! 2. **Relaxation (value).** Measured in fen, the fractional problem is a max flow:
//!    source → class (capacity: the class's unreserved value), class → pledge (capacity:
//!    Σ over the class's claims that can buy one lesson of `min(unreserved, seat value)`),
//!    pledge → sink (available × value per lesson). Every whole-lesson matching is a
//!    flow of this network, so its maximum (`bound_fen`) bounds every matching. Solved
//!    exactly with Dinic per connected component (components in parallel).
//! 3. **Fairness.** The flow is found in phases, each continuing from the last:
//!    (a) class capacities capped at `cap × claims` (each claim counts at most
//!    `min(unreserved, cap)`), in-district edges only; (b) online edges added;
//!    (c) full capacities. Augmenting paths never lower a source edge, so what a class got
//!    in the capped pass it keeps, and the final flow is still maximum: value first,
//!    fairness second.
//! 4. **Rounding.** A class's flow to a pledge becomes `floor(flow / value_per_lesson)`
//!    lessons (so a pledge is never over-reserved), handed out inside the class in claim
//!    order (earliest closure, then claim id) in two passes: first each claim up to the
//!    cap (its first lesson is always allowed, even if dearer than the cap), then up to
//!    its unreserved value. Within a claim, pledges are taken dearest first (then
//!    in-district before online, then pledge id), so that what a claim has left is small.
//!    What a class could not place, it could not because whole lessons do not divide its
//!    claims' values as the fractional flow did; so the relaxation is solved again on
//!    what is left and handed out again, up to `FLOW_ROUNDS` (4) rounds in all. Only the
//!    first round's optimum is the bound.
//! 5. **Fill.** What is still left goes to the greedy of step 7 run on the residual
//!    state: claims in order, two passes (capped, then full), each claim taking from its
//!    compatible pledges dearest first.
//! 6. **Exchange.** A claim whose remainder buys no lesson on offer gives back one lesson
//!    when what that frees buys strictly more of another compatible pledge (one lesson of
//!    600 yuan and 400 left become two of 500); then the fill runs again for the lessons
//!    given back. Each exchange raises the value; at most `EXCHANGES_PER_CLAIM_MAX` (4)
//!    per claim.
//! 7. **Greedy.** The same greedy from the empty state is the baseline (`greedy_fen`). The
//!    result is the flow solution unless the greedy matched strictly more value, in which
//!    case the greedy's plan is returned (both follow the same fairness policy; the report
//!    says which was chosen).
//!
//! # Fairness policy (and why)
//! [`Fairness::CappedFirstPass`]: first, every claim is offered up to `cap_fen` (at least
//! one lesson), and only then does anyone get more. When the pool is worth less than what
//! is owed, a maximum alone would let the first claims in order take whole seats while
//! others of the same kind get nothing; a cap spreads the pool over more students without
//! lowering the relaxation's value, since the last phase still reaches the maximum flow.
//! A cap rather than exact max-min fairness, because it is one parameter that an auditor
//! can recompute and a family can understand. Guarantee, tested: within a class, a claim
//! holds more than `max(cap, its dearest lesson)` only if every claim of its class whose
//! value buys a lesson of the dearest pledge it holds has been served. Across classes the
//! cap acts on the flow (phase a), not claim by claim. The cap is per claim (a student
//! with claims at two closed institutions counts twice); distinct students served are
//! reported.
//!
//! # Locality
//! In-district before online at equal value is a preference, not an optimum: the flow's
//! first phase uses in-district edges only, the search tries in-district arcs first, and
//! hand-out and fill take in-district lessons first among equally priced ones.
//!
//! # Architecture invariants
//! The matcher knows nothing of storage, entries, signatures, HTTP or the CLI: it reads
//! inputs and returns plans and figures. It reads no clock and no randomness, and its
//! parallelism (rayon, one task per component) joins results in a fixed order.
//!
//! # Figures (benches/matching.rs, 2 cores shared with other work, load ≈ 5)
//! - 1,000,000 claims × 10,000 pledges (pool about a third of what is owed): 9–15 s,
//!   0.77 GiB peak RSS including the input; matched 100.00% of the bound.
//! - 1,000,000 × 30,000 (pool about equal to what is owed, both sides bind): 20 s,
//!   1.06 GiB, 99.72%. 100,000 × 3,000 (same shape, smaller): 98.85–99.02%.
//! - Stress, students accepting up to three districts anywhere (373k classes, 31M
//!   class–pledge edges): 44 s and 2.1 GiB, over the target. The cost grows with
//!   classes × compatible pledges; see the report for the remedy (district hub nodes).
//!
//! # Determinism
//! Claims are sorted by (closed_at, claim id), pledges by pledge id, before anything else;
//! every later order derives from these, so the same input in any order gives the same
//! plans, byte for byte. Plans are listed in claim order, then pledge id.
//!
//! ```
//! use lesson_ledger::ledger::{Fen, Id, Lessons};
//! use lesson_ledger::matching::{match_claims, ClaimInput, Fairness, MatchParams, PledgeInput};
//! let id = |s: &str| Id::new("id", s).unwrap();
//! let claim = ClaimInput {
//!     claim: id("c-1"), student: id("stu-3f9a"), closed_at: 7, subject: id("math"),
//!     grade: 5, district: id("huangpu"), accepts_online: true, accepted_districts: vec![],
//!     unreserved_fen: Fen(100_000),
//! };
//! let pledge = PledgeInput {
//!     pledge: id("p-1"), institution: id("inst-0007"), subject: id("math"),
//!     grade_min: 4, grade_max: 6, district: Some(id("huangpu")), online: false,
//!     available_lessons: Lessons(100), lessons_per_seat: 20, value_per_lesson_fen: Fen(30_000),
//!     valid_from_micros: 0, valid_until_micros: 10, approved: true, banned: false,
//! };
//! let params = MatchParams { at_micros: 5, fairness: Fairness::None };
//! let m = match_claims(&[claim], &[pledge], &params).unwrap();
//! assert_eq!(m.plans.len(), 1);
//! assert_eq!(m.plans[0].lessons, Lessons(3)); // 3 × 300 yuan fits 1,000 yuan
//! assert_eq!(m.report.matched_fen, Fen(90_000));
//! assert_eq!(m.report.bound_fen, Fen(100_000));
//! ```

pub mod flow;

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ledger::limits::{
    CLAIM_LESSONS_MAX, GRADE_MAX, GRADE_MIN, LESSONS_PER_SEAT_MAX, PLEDGE_SEATS_MAX,
    PRICE_PER_LESSON_FEN_MAX,
};
use crate::ledger::objects::{Claim, Pledge};
use crate::ledger::units::{Fen, Id, Lessons};
use flow::FlowGraph;

/// Most claims one match run reads (4× the 1,000,000 target). Proposed for `limits.rs`.
pub const MATCH_CLAIMS_MAX: usize = 4_000_000;
/// Most pledges one match run reads (10× the 10,000 target). Proposed for `limits.rs`.
pub const MATCH_PLEDGES_MAX: usize = 100_000;
/// Most distinct districts (claims' and pledges' together): the genesis limit, which lets
/// a claim's accepted districts be a 64-bit mask.
pub const MATCH_DISTRICTS_MAX: usize = 64;
/// Default first-pass cap per claim: 2,000 yuan, about six lessons at the median price.
pub const FIRST_PASS_CAP_FEN_DEFAULT: u64 = 200_000;

const UNRESERVED_FEN_MAX: u64 = CLAIM_LESSONS_MAX * PRICE_PER_LESSON_FEN_MAX;
const PLEDGE_LESSONS_MAX: u64 = PLEDGE_SEATS_MAX * LESSONS_PER_SEAT_MAX;

const _: () = assert!(
    (MATCH_CLAIMS_MAX as u64)
        .checked_mul(UNRESERVED_FEN_MAX)
        .is_some(),
    "the source capacities of the flow must sum within u64"
);
const _: () = assert!(
    (MATCH_PLEDGES_MAX as u64)
        .checked_mul(PLEDGE_LESSONS_MAX * PRICE_PER_LESSON_FEN_MAX)
        .is_some(),
    "the sink capacities of the flow must sum within u64"
);
const _: () = assert!(
    MATCH_CLAIMS_MAX < u32::MAX as usize,
    "claims are indexed by u32"
);
const _: () = assert!(
    MATCH_PLEDGES_MAX < u32::MAX as usize,
    "pledges are indexed by u32"
);
const _: () = assert!(
    LESSONS_PER_SEAT_MAX <= CLAIM_LESSONS_MAX,
    "one seat must fit one allocation_made (lessons <= CLAIM_LESSONS_MAX)"
);

/// Errors of the matcher: input that the ledger could not have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)]
pub enum MatchError {
    #[error("{count} claims exceed the cap of {max} per match run")]
    TooManyClaims { count: usize, max: usize },
    #[error("{count} pledges exceed the cap of {max} per match run")]
    TooManyPledges { count: usize, max: usize },
    #[error("{count} distinct districts exceed the cap of {max}")]
    TooManyDistricts { count: usize, max: usize },
    #[error("claim {claim} appears twice")]
    DuplicateClaim { claim: String },
    #[error("pledge {pledge} appears twice")]
    DuplicatePledge { pledge: String },
    #[error("{what} {id}: grade {grade} outside {GRADE_MIN}..={GRADE_MAX}")]
    GradeOutOfRange {
        what: &'static str,
        id: String,
        grade: u64,
    },
    #[error("claim {claim}: unreserved {value} fen above the cap of {max}")]
    UnreservedOutOfRange { claim: String, value: u64, max: u64 },
    #[error("pledge {pledge}: value per lesson {value} fen outside 1..={max}")]
    PledgeValueOutOfRange {
        pledge: String,
        value: u64,
        max: u64,
    },
    #[error("pledge {pledge}: {field} {value} outside {min}..={max}")]
    PledgeLessonsOutOfRange {
        pledge: String,
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("arithmetic overflow in {what}")]
    Overflow { what: &'static str },
}

impl MatchError {
    /// Stable snake_case code of the error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            MatchError::TooManyClaims { .. } => "too_many_claims",
            MatchError::TooManyPledges { .. } => "too_many_pledges",
            MatchError::TooManyDistricts { .. } => "too_many_districts",
            MatchError::DuplicateClaim { .. } => "duplicate_claim",
            MatchError::DuplicatePledge { .. } => "duplicate_pledge",
            MatchError::GradeOutOfRange { .. } => "grade_out_of_range",
            MatchError::UnreservedOutOfRange { .. } => "unreserved_out_of_range",
            MatchError::PledgeValueOutOfRange { .. } => "pledge_value_out_of_range",
            MatchError::PledgeLessonsOutOfRange { .. } => "pledge_lessons_out_of_range",
            MatchError::Overflow { .. } => "overflow",
        }
    }
}

/// An open claim as the matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct ClaimInput {
    pub claim: Id,
    pub student: Id,
    /// Entry index of the closure of the claim's institution: earlier closures are
    /// served first among otherwise equal claims.
    pub closed_at: u64,
    pub subject: Id,
    pub grade: u64,
    pub district: Id,
    pub accepts_online: bool,
    pub accepted_districts: Vec<Id>,
    pub unreserved_fen: Fen,
}

impl ClaimInput {
    /// The matcher's view of a stored claim, given its institution's closure index.
    #[must_use]
    pub fn from_claim(c: &Claim, closed_at: u64) -> ClaimInput {
        ClaimInput {
            claim: c.claim.clone(),
            student: c.student.clone(),
            closed_at,
            subject: c.subject.clone(),
            grade: c.grade,
            district: c.district.clone(),
            accepts_online: c.accepts_online,
            accepted_districts: c.accepted_districts.clone(),
            unreserved_fen: c.unreserved,
        }
    }
}

/// A pledge as the matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct PledgeInput {
    pub pledge: Id,
    pub institution: Id,
    pub subject: Id,
    pub grade_min: u64,
    pub grade_max: u64,
    /// `None` for an online course.
    pub district: Option<Id>,
    pub online: bool,
    pub available_lessons: Lessons,
    pub lessons_per_seat: u64,
    pub value_per_lesson_fen: Fen,
    pub valid_from_micros: u64,
    pub valid_until_micros: u64,
    pub approved: bool,
    /// The donor institution is black-listed (or closed).
    pub banned: bool,
}

impl PledgeInput {
    /// The matcher's view of a stored pledge, given whether its institution is banned.
    #[must_use]
    pub fn from_pledge(p: &Pledge, banned: bool) -> PledgeInput {
        PledgeInput {
            pledge: p.pledge.clone(),
            institution: p.institution.clone(),
            subject: p.subject.clone(),
            grade_min: p.grade_min,
            grade_max: p.grade_max,
            district: p.district.clone(),
            online: p.online,
            available_lessons: p.available,
            lessons_per_seat: p.lessons_per_seat,
            value_per_lesson_fen: p.value_per_lesson,
            valid_from_micros: p.valid_from_micros,
            valid_until_micros: p.valid_until_micros,
            approved: p.approved_at.is_some(),
            banned,
        }
    }
}

/// The fairness policy (see the module docs for the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fairness {
    /// Maximum value only; ties in claim order.
    None,
    /// Every claim first up to `cap_fen` (at least one lesson), then the rest.
    CappedFirstPass {
        /// The first-pass share per claim.
        cap_fen: Fen,
    },
}

/// Parameters of a match run; recorded in the log with the run so it can be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchParams {
    /// Ledger time of the run: pledges must be valid at it.
    pub at_micros: u64,
    /// The fairness policy.
    pub fairness: Fairness,
}

impl MatchParams {
    /// The default policy at time `at_micros`: capped first pass at
    /// [`FIRST_PASS_CAP_FEN_DEFAULT`].
    #[must_use]
    pub fn at(at_micros: u64) -> MatchParams {
        MatchParams {
            at_micros,
            fairness: Fairness::CappedFirstPass {
                cap_fen: Fen(FIRST_PASS_CAP_FEN_DEFAULT),
            },
        }
    }
}

/// One allocation to make: `lessons` of `pledge` for `claim` (one `allocation_made`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct AllocationPlan {
    pub claim: Id,
    pub pledge: Id,
    pub lessons: Lessons,
    /// `lessons × value_per_lesson`, reserved from the claim.
    pub value_fen: Fen,
}

/// Which solution was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Flow relaxation, rounded and filled.
    Flow,
    /// The greedy baseline matched strictly more.
    Greedy,
}

/// Figures of a match run. Ratios are integers in parts per million (no floating point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct MatchReport {
    /// Claims with unreserved value and pledges eligible at the match time.
    pub claims: u64,
    pub pledges_eligible: u64,
    pub classes: u64,
    pub components: u64,
    /// Class → pledge edges of the flow network.
    pub edges: u64,
    /// Value of the returned plan.
    pub matched_fen: Fen,
    /// The relaxation's optimum: no matching can exceed it.
    pub bound_fen: Fen,
    /// `matched / bound` in parts per million (1,000,000 when the bound is 0).
    pub ratio_ppm: u64,
    /// Value the flow reached after the capped first pass (fairness phase).
    pub first_pass_flow_fen: Fen,
    /// Value of the flow solution after rounding only, and after fill.
    pub rounded_fen: Fen,
    pub flow_fen: Fen,
    /// Value of the greedy baseline.
    pub greedy_fen: Fen,
    pub method: Method,
    pub allocations: u64,
    pub claims_served: u64,
    /// Distinct students holding at least one allocation.
    pub students_served: u64,
    /// Value matched to pledges with a district, and online.
    pub in_district_fen: Fen,
    pub online_fen: Fen,
}

/// The outcome: the plans in claim order (closure, claim id), then pledge id; and figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct Matching {
    pub plans: Vec<AllocationPlan>,
    pub report: MatchReport,
}

/// Locality rank of a pledge for a class: own district, other accepted district, online.
const RANK_ONLINE: u8 = 2;

/// A claim's compatibility key plus the derived data of its class.
#[derive(Debug)]
struct Class {
    subject: u32,
    grade: u8,
    own: u8,
    mask: u64,
    online: bool,
    /// Claim indices, in claim order.
    claims: Vec<u32>,
    /// Compatible pledges `(pledge, rank)`, dearest first, then rank, then pledge order.
    pledges: Vec<(u32, u8)>,
}

/// Per-claim and per-pledge residual state of a solution being built.
#[derive(Debug, Clone)]
struct State {
    unreserved: Vec<u64>,
    available: Vec<u64>,
    /// Per claim: `(pledge, lessons)`.
    held: Vec<Vec<(u32, u32)>>,
}

/// The prepared problem: claims and pledges in their canonical orders.
struct Problem<'a> {
    claims: Vec<&'a ClaimInput>,
    pledges: Vec<&'a PledgeInput>,
    /// Per claim: its class.
    class_of: Vec<u32>,
    classes: Vec<Class>,
    /// Per pledge: value per lesson, seat (lessons) cap.
    value: Vec<u64>,
    seat: Vec<u64>,
    cap: Option<u64>,
}

/// Match `claims` to `pledges` at `params.at_micros` (see the module docs).
///
/// Claims with no unreserved value and pledges not eligible at the time (not approved,
/// banned, outside validity, no lesson available) are left out without error.
///
/// # Errors
/// Input the ledger would not hold: too many claims, pledges or districts; a claim or
/// pledge id twice; a grade outside 1..=12; an unreserved value, value per lesson or
/// lesson count outside the ledger's limits. Arithmetic is checked (`overflow`).
pub fn match_claims(
    claims: &[ClaimInput],
    pledges: &[PledgeInput],
    params: &MatchParams,
) -> Result<Matching, MatchError> {
    let started = std::time::Instant::now();
    let problem = prepare(claims, pledges, params)?;
    tracing::debug!(elapsed = ?started.elapsed(), classes = problem.classes.len(), "match: prepared");
    let n_claims = problem.claims.len();
    let n_pledges = problem.pledges.len();
    let empty = State {
        unreserved: problem.claims.iter().map(|c| c.unreserved_fen.0).collect(),
        available: problem
            .pledges
            .iter()
            .map(|p| p.available_lessons.0)
            .collect(),
        held: vec![Vec::new(); n_claims],
    };

    // Relaxation per component, then rounding inside each class.
    let comps = components(&problem);
    let mut bound: u64 = 0;
    let mut first_pass: u64 = 0;
    let mut edges: u64 = 0;
    let mut flow_state = empty.clone();
    for round in 0..FLOW_ROUNDS {
        let solved: Vec<Solved> = comps
            .par_iter()
            .map(|c| solve_component(&problem, c, &flow_state))
            .collect::<Result<_, _>>()?;
        let mut added = false;
        for s in &solved {
            if round == 0 {
                // The first round is the relaxation of the whole problem: its optimum
                // bounds every matching. Later rounds only guide the rounding.
                bound = bound
                    .checked_add(s.flow)
                    .ok_or(MatchError::Overflow { what: "bound" })?;
                first_pass = first_pass
                    .checked_add(s.first_pass)
                    .ok_or(MatchError::Overflow { what: "first pass" })?;
                edges += s.edges;
            }
            for &(c, p, k) in &s.allocations {
                apply(&problem, &mut flow_state, c, p, u64::from(k))?;
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    tracing::debug!(elapsed = ?started.elapsed(), components = comps.len(), "match: flow solved and rounded");
    let rounded = value_of(&problem, &flow_state)?;
    greedy(&problem, &mut flow_state)?;
    if exchange(&problem, &mut flow_state)? {
        // Lessons given back by the exchanges go out again, capped pass first.
        greedy(&problem, &mut flow_state)?;
    }
    let flow_value = value_of(&problem, &flow_state)?;
    tracing::debug!(elapsed = ?started.elapsed(), "match: filled");

    let mut greedy_state = empty;
    greedy(&problem, &mut greedy_state)?;
    let greedy_value = value_of(&problem, &greedy_state)?;
    tracing::debug!(elapsed = ?started.elapsed(), "match: greedy baseline");

    let (state, method) = if greedy_value > flow_value {
        (greedy_state, Method::Greedy)
    } else {
        (flow_state, Method::Flow)
    };
    let matched = value_of(&problem, &state)?;
    // Pair of the bound's defining property: a plan above it means a bug in the model.
    assert!(
        matched <= bound,
        "matched {matched} above the bound {bound}"
    );

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
        components: comps.len() as u64,
        edges,
        matched_fen: Fen(matched),
        bound_fen: Fen(bound),
        ratio_ppm,
        first_pass_flow_fen: Fen(first_pass),
        rounded_fen: Fen(rounded),
        flow_fen: Fen(flow_value),
        greedy_fen: Fen(greedy_value),
        method,
        allocations: plans.len() as u64,
        claims_served,
        students_served: served_students.len() as u64,
        in_district_fen: Fen(in_district),
        online_fen: Fen(online),
    };
    Ok(Matching { plans, report })
}

/// Validate, filter, sort into canonical order, and group claims into classes.
fn prepare<'a>(
    claims: &'a [ClaimInput],
    pledges: &'a [PledgeInput],
    params: &MatchParams,
) -> Result<Problem<'a>, MatchError> {
    if claims.len() > MATCH_CLAIMS_MAX {
        return Err(MatchError::TooManyClaims {
            count: claims.len(),
            max: MATCH_CLAIMS_MAX,
        });
    }
    if pledges.len() > MATCH_PLEDGES_MAX {
        return Err(MatchError::TooManyPledges {
            count: pledges.len(),
            max: MATCH_PLEDGES_MAX,
        });
    }
    let grades = u64::from(GRADE_MIN)..=u64::from(GRADE_MAX);
    for c in claims {
        if !grades.contains(&c.grade) {
            return Err(MatchError::GradeOutOfRange {
                what: "claim",
                id: c.claim.to_string(),
                grade: c.grade,
            });
        }
        if c.unreserved_fen.0 > UNRESERVED_FEN_MAX {
            return Err(MatchError::UnreservedOutOfRange {
                claim: c.claim.to_string(),
                value: c.unreserved_fen.0,
                max: UNRESERVED_FEN_MAX,
            });
        }
    }
    for p in pledges {
        for g in [p.grade_min, p.grade_max] {
            if !grades.contains(&g) {
                return Err(MatchError::GradeOutOfRange {
                    what: "pledge",
                    id: p.pledge.to_string(),
                    grade: g,
                });
            }
        }
        if !(1..=PRICE_PER_LESSON_FEN_MAX).contains(&p.value_per_lesson_fen.0) {
            return Err(MatchError::PledgeValueOutOfRange {
                pledge: p.pledge.to_string(),
                value: p.value_per_lesson_fen.0,
                max: PRICE_PER_LESSON_FEN_MAX,
            });
        }
        let lessons_bad = |field, value, min, max| MatchError::PledgeLessonsOutOfRange {
            pledge: p.pledge.to_string(),
            field,
            value,
            min,
            max,
        };
        if !(1..=LESSONS_PER_SEAT_MAX).contains(&p.lessons_per_seat) {
            return Err(lessons_bad(
                "lessons_per_seat",
                p.lessons_per_seat,
                1,
                LESSONS_PER_SEAT_MAX,
            ));
        }
        if p.available_lessons.0 > PLEDGE_LESSONS_MAX {
            return Err(lessons_bad(
                "available_lessons",
                p.available_lessons.0,
                0,
                PLEDGE_LESSONS_MAX,
            ));
        }
    }

    // Canonical orders: claims by (closure, id), pledges by id. Duplicates are errors,
    // found next to each other once sorted.
    let mut cl: Vec<&ClaimInput> = claims.iter().collect();
    cl.par_sort_unstable_by(|a, b| (a.closed_at, &a.claim).cmp(&(b.closed_at, &b.claim)));
    let mut by_id: Vec<&Id> = cl.iter().map(|c| &c.claim).collect();
    by_id.par_sort_unstable();
    if let Some(w) = by_id.windows(2).find(|w| w[0] == w[1]) {
        return Err(MatchError::DuplicateClaim {
            claim: w[0].to_string(),
        });
    }
    drop(by_id);
    let mut pl: Vec<&PledgeInput> = pledges.iter().collect();
    pl.sort_unstable_by(|a, b| a.pledge.cmp(&b.pledge));
    if let Some(w) = pl.windows(2).find(|w| w[0].pledge == w[1].pledge) {
        return Err(MatchError::DuplicatePledge {
            pledge: w[0].pledge.to_string(),
        });
    }

    // Districts (claims' and pledges') as bits of a u64. Interned in canonical order so
    // that the numbering, too, is independent of input order.
    let mut districts: HashMap<&str, u8> = HashMap::new();
    let mut intern = |d: &'a Id| -> Result<u8, MatchError> {
        let n = districts.len();
        match districts.get(d.as_str()) {
            Some(&i) => Ok(i),
            None if n < MATCH_DISTRICTS_MAX => {
                let i = u8::try_from(n).map_err(|_| MatchError::Overflow { what: "district" })?;
                districts.insert(d.as_str(), i);
                Ok(i)
            }
            None => Err(MatchError::TooManyDistricts {
                count: n + 1,
                max: MATCH_DISTRICTS_MAX,
            }),
        }
    };
    let mut subjects: HashMap<&str, u32> = HashMap::new();

    // "the pledge approved, valid on the match date, its institution not banned"
    let t = params.at_micros;
    pl.retain(|p| {
        p.approved
            && !p.banned
            && (p.valid_from_micros..p.valid_until_micros).contains(&t)
            && p.available_lessons.0 > 0
    });
    let mut pledge_district: Vec<Option<u8>> = Vec::with_capacity(pl.len());
    let mut pledge_subject: Vec<u32> = Vec::with_capacity(pl.len());
    for p in pl.iter().copied() {
        pledge_district.push(match &p.district {
            Some(d) => Some(intern(d)?),
            None => None,
        });
        let n =
            u32::try_from(subjects.len()).map_err(|_| MatchError::Overflow { what: "subjects" })?;
        pledge_subject.push(*subjects.entry(p.subject.as_str()).or_insert(n));
    }

    cl.retain(|c| c.unreserved_fen.0 > 0);
    let mut class_index: HashMap<(u32, u8, u8, u64, bool), u32> = HashMap::new();
    let mut classes: Vec<Class> = Vec::new();
    let mut class_of: Vec<u32> = Vec::with_capacity(cl.len());
    for (i, c) in cl.iter().copied().enumerate() {
        let own = intern(&c.district)?;
        let mut mask = 1u64 << own;
        for d in &c.accepted_districts {
            mask |= 1u64 << intern(d)?;
        }
        // A subject no pledge offers still forms classes (they get nothing).
        let n =
            u32::try_from(subjects.len()).map_err(|_| MatchError::Overflow { what: "subjects" })?;
        let subject = *subjects.entry(c.subject.as_str()).or_insert(n);
        // Checked above: 1..=12.
        let grade = u8::try_from(c.grade).map_err(|_| MatchError::Overflow { what: "grade" })?;
        let key = (subject, grade, own, mask, c.accepts_online);
        let next =
            u32::try_from(classes.len()).map_err(|_| MatchError::Overflow { what: "classes" })?;
        let k = *class_index.entry(key).or_insert(next);
        if k == next {
            classes.push(Class {
                subject,
                grade,
                own,
                mask,
                online: c.accepts_online,
                claims: Vec::new(),
                pledges: Vec::new(),
            });
        }
        let idx = u32::try_from(i).map_err(|_| MatchError::Overflow { what: "claims" })?;
        classes[k as usize].claims.push(idx);
        class_of.push(k);
    }

    // Pledges by (subject, grade), to find each class's compatible pledges.
    let mut by_subject_grade: HashMap<(u32, u8), Vec<u32>> = HashMap::new();
    for (j, p) in pl.iter().enumerate() {
        for g in p.grade_min..=p.grade_max {
            let g = u8::try_from(g).map_err(|_| MatchError::Overflow { what: "grade" })?;
            let j = u32::try_from(j).map_err(|_| MatchError::Overflow { what: "pledges" })?;
            by_subject_grade
                .entry((pledge_subject[j as usize], g))
                .or_default()
                .push(j);
        }
    }
    let value: Vec<u64> = pl.iter().map(|p| p.value_per_lesson_fen.0).collect();
    let seat: Vec<u64> = pl
        .iter()
        .map(|p| p.lessons_per_seat.min(CLAIM_LESSONS_MAX))
        .collect();
    classes.par_iter_mut().for_each(|class| {
        let max_u = class
            .claims
            .iter()
            .map(|&i| cl[i as usize].unreserved_fen.0)
            .max()
            .unwrap_or(0);
        let Some(cands) = by_subject_grade.get(&(class.subject, class.grade)) else {
            return;
        };
        for &j in cands {
            // "the pledge's district among the districts the student accepts, or the
            // pledge is online and the student accepts online"
            let rank = match pledge_district[j as usize] {
                Some(d) if d == class.own => 0,
                Some(d) if class.mask & (1u64 << d) != 0 => 1,
                Some(_) => continue,
                None if pl[j as usize].online && class.online => RANK_ONLINE,
                None => continue,
            };
            // "the claim's unreserved value buys at least one lesson of the pledge"
            if max_u >= value[j as usize] {
                class.pledges.push((j, rank));
            }
        }
        class.pledges.sort_unstable_by(|a, b| {
            (value[b.0 as usize], a.1, a.0).cmp(&(value[a.0 as usize], b.1, b.0))
        });
    });
    let cap = match params.fairness {
        Fairness::None => None,
        Fairness::CappedFirstPass { cap_fen } => Some(cap_fen.0),
    };
    Ok(Problem {
        claims: cl,
        pledges: pl,
        class_of,
        classes,
        value,
        seat,
        cap,
    })
}

/// Connected components of the class–pledge graph, as lists of classes (in class order);
/// classes with no compatible pledge are left out. Largest first, for load balance.
fn components(problem: &Problem<'_>) -> Vec<Vec<u32>> {
    let nc = problem.classes.len();
    let mut parent: Vec<u32> = (0..(nc + problem.pledges.len()) as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let up = parent[parent[x as usize] as usize];
            parent[x as usize] = up;
            x = up;
        }
        x
    }
    for (k, class) in problem.classes.iter().enumerate() {
        for &(j, _) in &class.pledges {
            let a = find(&mut parent, k as u32);
            let b = find(&mut parent, (nc as u32) + j);
            if a != b {
                parent[a.max(b) as usize] = a.min(b);
            }
        }
    }
    let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
    for (k, class) in problem.classes.iter().enumerate() {
        if !class.pledges.is_empty() {
            let r = find(&mut parent, k as u32);
            groups.entry(r).or_default().push(k as u32);
        }
    }
    let mut out: Vec<Vec<u32>> = groups.into_values().collect();
    // Deterministic order: size descending, then first class.
    out.sort_unstable_by(|a, b| (b.len(), a[0]).cmp(&(a.len(), b[0])));
    out
}

struct Solved {
    flow: u64,
    first_pass: u64,
    edges: u64,
    /// `(claim, pledge, lessons)` from rounding inside classes.
    allocations: Vec<(u32, u32, u32)>,
}

/// Σ over `us` (sorted ascending, with prefix sums `pre`) of `min(u, limit)` for `u >= lo`.
fn sum_min(us: &[u64], pre: &[u64], lo: u64, limit: u64) -> u64 {
    let start = us.partition_point(|&u| u < lo);
    let mid = us.partition_point(|&u| u <= limit).max(start);
    // us[start..mid] are <= limit: their sum; us[mid..] count `limit` each.
    let below = pre[mid] - pre[start];
    let above = (us.len() - mid) as u64;
    below.saturating_add(above.saturating_mul(limit))
}

fn solve_component(
    problem: &Problem<'_>,
    comp: &[u32],
    state: &State,
) -> Result<Solved, MatchError> {
    let overflow = |what| MatchError::Overflow { what };
    // Local numbering: 0 source, 1 sink, 2.. classes, then the pledges that some edge
    // reaches. Edges that can carry nothing (a pledge with no lesson left, no claim of
    // the class able to buy one) are left out: later rounds are then small graphs.
    const NONE: u32 = u32::MAX;
    let mut pledge_local: Vec<u32> = vec![NONE; problem.pledges.len()];
    let mut pledges: Vec<u32> = Vec::new();
    let base = 2 + comp.len() as u32;
    let mut edges: Vec<(u32, u32, u64)> = Vec::new();
    let mut source_full: Vec<(usize, u64)> = Vec::with_capacity(comp.len());
    // Online edges start closed (the first phase is in-district only): (edge, capacity).
    let mut online_edges: Vec<(usize, u64)> = Vec::new();
    // Per class: its edges (edge index, pledge), in the class's pledge order.
    let mut class_edges: Vec<Vec<(u32, u32)>> = Vec::with_capacity(comp.len());
    for (ci, &k) in comp.iter().enumerate() {
        let class = &problem.classes[k as usize];
        let mut us: Vec<u64> = class
            .claims
            .iter()
            .map(|&i| state.unreserved[i as usize])
            .collect();
        us.sort_unstable();
        let mut pre = Vec::with_capacity(us.len() + 1);
        pre.push(0u64);
        for &u in &us {
            let last = *pre.last().unwrap_or(&0);
            pre.push(last.checked_add(u).ok_or(overflow("class value"))?);
        }
        let full = *pre.last().unwrap_or(&0);
        let mut mine = Vec::new();
        if full == 0 {
            class_edges.push(mine);
            continue;
        }
        let first = match problem.cap {
            // What each claim may still take within its first-pass share.
            Some(cap) => class
                .claims
                .iter()
                .map(|&i| {
                    let u = state.unreserved[i as usize];
                    let spent = problem.claims[i as usize].unreserved_fen.0 - u;
                    u.min(cap.saturating_sub(spent))
                })
                .try_fold(0u64, |a, b| a.checked_add(b))
                .ok_or(overflow("class value"))?,
            None => full,
        };
        source_full.push((edges.len(), full));
        edges.push((0, 2 + ci as u32, first));
        for &(j, rank) in &class.pledges {
            if state.available[j as usize] == 0 {
                continue;
            }
            let v = problem.value[j as usize];
            let seat_value = v
                .checked_mul(problem.seat[j as usize])
                .ok_or(overflow("seat value"))?;
            let c = sum_min(&us, &pre, v, seat_value);
            if c == 0 {
                continue;
            }
            if pledge_local[j as usize] == NONE {
                pledge_local[j as usize] = pledges.len() as u32;
                pledges.push(j);
            }
            let local = base + pledge_local[j as usize];
            let e = u32::try_from(edges.len()).map_err(|_| overflow("edges"))?;
            mine.push((e, j));
            if rank == RANK_ONLINE {
                online_edges.push((edges.len(), c));
                edges.push((2 + ci as u32, local, 0));
            } else {
                edges.push((2 + ci as u32, local, c));
            }
        }
        class_edges.push(mine);
    }
    for (pi, &j) in pledges.iter().enumerate() {
        let cap = state.available[j as usize]
            .checked_mul(problem.value[j as usize])
            .ok_or(overflow("pledge value"))?;
        edges.push((base + pi as u32, 1, cap));
    }
    let nodes = base as usize + pledges.len();
    let mut g = FlowGraph::new(nodes, &edges);
    drop(edges);
    let run = |g: &mut FlowGraph, total: u64| -> Result<u64, MatchError> {
        let f = g.max_flow(0, 1).ok_or(overflow("flow"))?;
        total.checked_add(f).ok_or(overflow("flow"))
    };
    // (a) capped, in-district only.
    let mut total = run(&mut g, 0)?;
    // (b) capped, with online edges.
    for &(e, c) in &online_edges {
        g.raise(e, c).ok_or(overflow("raise"))?;
    }
    total = run(&mut g, total)?;
    let first_pass = total;
    // (c) full capacities: augmenting paths never lower a source edge.
    for &(e, full) in &source_full {
        g.raise(e, full).ok_or(overflow("raise"))?;
    }
    total = run(&mut g, total)?;

    // Rounding: floor(flow / v) lessons per class and pledge, handed out in the class.
    let mut allocations = Vec::new();
    let mut n_edges = 0u64;
    for (ci, &k) in comp.iter().enumerate() {
        let mine = &class_edges[ci];
        n_edges += mine.len() as u64;
        let targets: Vec<(u32, u64)> = mine
            .iter()
            .map(|&(e, j)| (j, g.flow(e as usize) / problem.value[j as usize]))
            .filter(|&(_, n)| n > 0)
            .collect();
        hand_out(problem, state, k, targets, &mut allocations)?;
    }
    Ok(Solved {
        flow: total,
        first_pass,
        edges: n_edges,
        allocations,
    })
}

/// How many lessons of pledge `j` a claim may take now: its seat's room, the lessons on
/// offer, and what its value allows (within the first-pass budget if `capped`).
fn take(
    problem: &Problem<'_>,
    j: usize,
    offer: u64,
    unreserved: u64,
    spent: u64,
    held_of_j: u64,
    capped: bool,
) -> u64 {
    let v = problem.value[j];
    let room = problem.seat[j].saturating_sub(held_of_j).min(offer);
    let budget = match (capped, problem.cap) {
        (true, Some(cap)) => {
            // The first lesson is always allowed, even when dearer than the cap.
            let allowed = if spent == 0 { cap.max(v) } else { cap };
            unreserved.min(allowed.saturating_sub(spent))
        }
        _ => unreserved,
    };
    room.min(budget / v)
}

fn passes(problem: &Problem<'_>) -> &'static [bool] {
    if problem.cap.is_some() {
        &[true, false]
    } else {
        &[false]
    }
}

/// Hand out a class's `targets` (pledge, lessons; in the class's pledge order) to its
/// claims in claim order: capped pass, then full pass.
fn hand_out(
    problem: &Problem<'_>,
    state: &State,
    k: u32,
    mut targets: Vec<(u32, u64)>,
    out: &mut Vec<(u32, u32, u32)>,
) -> Result<(), MatchError> {
    let class = &problem.classes[k as usize];
    let n = class.claims.len();
    let mut unreserved: Vec<u64> = class
        .claims
        .iter()
        .map(|&i| state.unreserved[i as usize])
        .collect();
    let mut spent: Vec<u64> = class
        .claims
        .iter()
        .zip(&unreserved)
        .map(|(&i, &u)| problem.claims[i as usize].unreserved_fen.0 - u)
        .collect();
    let mut held: Vec<Vec<(u32, u64)>> = class
        .claims
        .iter()
        .map(|&i| {
            state.held[i as usize]
                .iter()
                .map(|&(j, x)| (j, u64::from(x)))
                .collect()
        })
        .collect();
    let mut given: Vec<(u32, u32, u32)> = Vec::new();
    for &capped in passes(problem) {
        for pos in 0..n {
            for t in targets.iter_mut() {
                if t.1 == 0 {
                    continue;
                }
                let j = t.0 as usize;
                let h = held[pos].iter().find(|x| x.0 == t.0).map_or(0, |x| x.1);
                let x = take(problem, j, t.1, unreserved[pos], spent[pos], h, capped);
                if x == 0 {
                    continue;
                }
                let v = problem.value[j] * x;
                unreserved[pos] -= v;
                spent[pos] += v;
                t.1 -= x;
                match held[pos].iter_mut().find(|x| x.0 == t.0) {
                    Some(e) => e.1 += x,
                    None => held[pos].push((t.0, x)),
                }
                let x = u32::try_from(x).map_err(|_| MatchError::Overflow { what: "lessons" })?;
                given.push((class.claims[pos], t.0, x));
            }
        }
    }
    out.append(&mut given);
    Ok(())
}

/// Record `k` lessons of pledge `p` for claim `c` in `state`.
fn apply(
    problem: &Problem<'_>,
    state: &mut State,
    c: u32,
    p: u32,
    k: u64,
) -> Result<(), MatchError> {
    let v = problem.value[p as usize]
        .checked_mul(k)
        .ok_or(MatchError::Overflow { what: "value" })?;
    let u = &mut state.unreserved[c as usize];
    *u = u.checked_sub(v).ok_or(MatchError::Overflow {
        what: "claim unreserved",
    })?;
    let a = &mut state.available[p as usize];
    *a = a.checked_sub(k).ok_or(MatchError::Overflow {
        what: "pledge available",
    })?;
    let k32 = u32::try_from(k).map_err(|_| MatchError::Overflow { what: "lessons" })?;
    let held = &mut state.held[c as usize];
    match held.iter_mut().find(|x| x.0 == p) {
        Some(e) => e.1 += k32,
        None => held.push((p, k32)),
    }
    Ok(())
}

/// The greedy: claims in claim order, each taking from its class's pledges dearest first,
/// as much as the seat, the offer and its value allow; a capped pass first if the policy
/// has one. Exhausted pledges are dropped from each class's list as they are met.
fn greedy(problem: &Problem<'_>, state: &mut State) -> Result<(), MatchError> {
    let mut lists: Vec<Vec<u32>> = problem
        .classes
        .iter()
        .map(|c| c.pledges.iter().map(|&(j, _)| j).collect())
        .collect();
    let min_value: Vec<u64> = lists
        .iter()
        .map(|l| {
            l.iter()
                .map(|&j| problem.value[j as usize])
                .min()
                .unwrap_or(u64::MAX)
        })
        .collect();
    for &capped in passes(problem) {
        for c in 0..problem.claims.len() {
            let k = problem.class_of[c] as usize;
            if state.unreserved[c] < min_value[k] {
                continue;
            }
            let list = &mut lists[k];
            let mut w = 0;
            let mut r = 0;
            while r < list.len() {
                let j = list[r];
                r += 1;
                let offer = state.available[j as usize];
                if offer == 0 {
                    continue; // dropped: availability never grows back
                }
                list[w] = j;
                w += 1;
                let u = state.unreserved[c];
                if u < min_value[k] {
                    break;
                }
                let held = &state.held[c];
                let spent = problem.claims[c].unreserved_fen.0 - u;
                let h = held.iter().find(|x| x.0 == j).map_or(0, |x| u64::from(x.1));
                let x = take(problem, j as usize, offer, u, spent, h, capped);
                if x > 0 {
                    apply(problem, state, c as u32, j, x)?;
                }
            }
            // Keep the unvisited tail.
            list.copy_within(r.., w);
            let len = w + (list.len() - r);
            list.truncate(len);
        }
    }
    Ok(())
}

/// Rounds of relaxation and rounding: each later round solves the relaxation again on
/// what is left and hands it out, so that little is left to the greedy fill.
const FLOW_ROUNDS: usize = 4;

/// Most exchanges tried per claim: each strictly raises the claim's value, so a few
/// suffice to use up what whole lessons left; the bound keeps the pass linear.
const EXCHANGES_PER_CLAIM_MAX: usize = 4;

/// The exchange pass: a claim whose unreserved value buys no lesson still on offer gives
/// back one lesson of a pledge it holds when the value freed (that lesson and what was
/// left) buys strictly more value of another compatible pledge (for example, one lesson
/// of 600 yuan and 400 left become two of 500). Each exchange raises the value matched.
/// Returns whether any lesson was given back.
fn exchange(problem: &Problem<'_>, state: &mut State) -> Result<bool, MatchError> {
    // Pledges with lessons left, per class, in the class's pledge order.
    let live: Vec<Vec<u32>> = problem
        .classes
        .iter()
        .map(|c| {
            c.pledges
                .iter()
                .map(|&(j, _)| j)
                .filter(|&j| state.available[j as usize] > 0)
                .collect()
        })
        .collect();
    let mut gave_back = false;
    for c in 0..problem.claims.len() {
        let list = &live[problem.class_of[c] as usize];
        if list.is_empty() {
            continue;
        }
        for _ in 0..EXCHANGES_PER_CLAIM_MAX {
            let left = state.unreserved[c];
            if left == 0 {
                break;
            }
            // The best exchange: (gain, give-back pledge, take pledge, lessons taken).
            let mut best: Option<(u64, u32, u32, u64)> = None;
            for &(j, _) in &state.held[c] {
                let vj = problem.value[j as usize];
                let freed = left + vj;
                for &j2 in list {
                    if j2 == j {
                        continue;
                    }
                    let offer = state.available[j2 as usize];
                    if offer == 0 {
                        continue;
                    }
                    let h = state.held[c]
                        .iter()
                        .find(|x| x.0 == j2)
                        .map_or(0, |x| u64::from(x.1));
                    let v2 = problem.value[j2 as usize];
                    let x = problem.seat[j2 as usize]
                        .saturating_sub(h)
                        .min(offer)
                        .min(freed / v2);
                    let gain = (x * v2).saturating_sub(vj);
                    if gain > 0 && best.map_or(true, |b| gain > b.0) {
                        best = Some((gain, j, j2, x));
                    }
                }
            }
            let Some((_, j, j2, x)) = best else { break };
            give_back(problem, state, c, j)?;
            apply(problem, state, c as u32, j2, x)?;
            gave_back = true;
        }
    }
    Ok(gave_back)
}

/// Return one lesson of pledge `j` held by claim `c`.
fn give_back(problem: &Problem<'_>, state: &mut State, c: usize, j: u32) -> Result<(), MatchError> {
    let held = &mut state.held[c];
    let Some(pos) = held.iter().position(|x| x.0 == j) else {
        return Err(MatchError::Overflow { what: "give back" });
    };
    held[pos].1 -= 1;
    if held[pos].1 == 0 {
        held.remove(pos);
    }
    let v = problem.value[j as usize];
    state.unreserved[c] = state.unreserved[c]
        .checked_add(v)
        .ok_or(MatchError::Overflow { what: "give back" })?;
    state.available[j as usize] = state.available[j as usize]
        .checked_add(1)
        .ok_or(MatchError::Overflow { what: "give back" })?;
    Ok(())
}

fn value_of(problem: &Problem<'_>, state: &State) -> Result<u64, MatchError> {
    let mut total: u64 = 0;
    for (c, u) in state.unreserved.iter().enumerate() {
        let spent = problem.claims[c].unreserved_fen.0 - u;
        total = total
            .checked_add(spent)
            .ok_or(MatchError::Overflow { what: "matched" })?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_min_counts_only_claims_that_buy_a_lesson() {
        let us = [100, 250, 400, 1000];
        let mut pre = vec![0];
        for u in us {
            pre.push(pre.last().unwrap() + u);
        }
        // lo 200 drops 100; limit 500 caps 1000.
        assert_eq!(sum_min(&us, &pre, 200, 500), 250 + 400 + 500);
        assert_eq!(sum_min(&us, &pre, 0, u64::MAX), 1750);
        assert_eq!(sum_min(&us, &pre, 2000, 5000), 0);
        assert_eq!(sum_min(&us, &pre, 0, 50), 200);
    }

    #[test]
    fn error_codes_are_stable() {
        let e = MatchError::Overflow { what: "x" };
        assert_eq!(e.code(), "overflow");
        let e = MatchError::DuplicateClaim { claim: "c".into() };
        assert_eq!(e.code(), "duplicate_claim");
    }
}
