//! What the matcher reads and returns: claims, pledges and parameters in; plans and
//! figures out; and the limits of one run.

use serde::{Deserialize, Serialize};

// The run limits are the ledger's: it bounds quotas and run sizes by them.
use crate::ledger::limits::{
    CLAIM_LESSONS_MAX, LESSONS_PER_SEAT_MAX, PLEDGE_SEATS_MAX, PRICE_PER_LESSON_FEN_MAX,
};
pub use crate::ledger::limits::{MATCH_CLAIMS_MAX, MATCH_PLEDGES_MAX};
use crate::ledger::objects::{Claim, ClaimPreferences, Pledge};
use crate::ledger::units::{Fen, Id, Lessons};

/// Most distinct districts (claims' and pledges' together): the genesis limit, which lets
/// a claim's accepted districts be a 64-bit mask.
pub const MATCH_DISTRICTS_MAX: usize = 64;
/// Default first-pass cap per claim: 2,000 yuan, about six lessons at the median price.
pub const FIRST_PASS_CAP_FEN_DEFAULT: u64 = 200_000;

pub(super) const UNRESERVED_FEN_MAX: u64 = CLAIM_LESSONS_MAX * PRICE_PER_LESSON_FEN_MAX;
pub(super) const PLEDGE_LESSONS_MAX: u64 = PLEDGE_SEATS_MAX * LESSONS_PER_SEAT_MAX;

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

/// An open claim as the matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimInput {
    /// The claim's id.
    pub claim: Id,
    /// Pseudonymous id of its student.
    pub student: Id,
    /// Entry index of the closure of the claim's institution: earlier closures are
    /// served first among otherwise equal claims.
    pub closed_at: u64,
    /// The claim's own subject.
    pub subject: Id,
    /// The student's grade, 1 to 12.
    pub grade: u64,
    /// The student's district.
    pub district: Id,
    /// Whether the claim's own terms accept online courses.
    pub accepts_online: bool,
    /// Districts accepted besides its own.
    pub accepted_districts: Vec<Id>,
    /// Value not yet reserved, in fen: the most the matcher may reserve for it.
    pub unreserved_fen: Fen,
    /// The family's choices (`claim_preferences_set`); when present its subjects,
    /// online acceptance, districts and requests replace the claim's own (the claim's
    /// own district stays accepted). `None`: the claim matches as before issue 18.
    pub preferences: Option<ClaimPreferences>,
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
            unreserved_fen: c.value.unreserved(),
            preferences: c.preferences.clone(),
        }
    }
}

/// A pledge as the matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PledgeInput {
    /// The pledge's id.
    pub pledge: Id,
    /// Id of the donor institution.
    pub institution: Id,
    /// The subject taught.
    pub subject: Id,
    /// Lowest grade taught, 1 to 12.
    pub grade_min: u64,
    /// Highest grade taught, 1 to 12.
    pub grade_max: u64,
    /// `None` for an online course.
    pub district: Option<Id>,
    /// Whether it is taught online.
    pub online: bool,
    /// Lessons not yet allocated.
    pub available_lessons: Lessons,
    /// Lessons one seat holds: no plan gives a claim more of this pledge.
    pub lessons_per_seat: u64,
    /// Value of one lesson, in fen.
    pub value_per_lesson_fen: Fen,
    /// Start of validity, µs of ledger time since the epoch.
    pub valid_from_micros: u64,
    /// End of validity (excluded), µs of ledger time since the epoch.
    pub valid_until_micros: u64,
    /// Whether an association approved it (unapproved pledges are not matched).
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
            available_lessons: p.capacity.available(),
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
pub struct AllocationPlan {
    /// Id of the claim served.
    pub claim: Id,
    /// Id of the pledge drawn on.
    pub pledge: Id,
    /// Lessons allocated.
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
pub struct MatchReport {
    /// Claims with unreserved value and pledges eligible at the match time.
    pub claims: u64,
    /// Pledges eligible at the match time.
    pub pledges_eligible: u64,
    /// Classes of claims with the same terms (the flow network's sources).
    pub classes: u64,
    /// Connected components of the network, solved apart.
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
    /// Value of the flow solution after rounding and fill, in fen.
    pub flow_fen: Fen,
    /// Value of the greedy baseline.
    pub greedy_fen: Fen,
    /// Which solution was returned.
    pub method: Method,
    /// Plans returned.
    pub allocations: u64,
    /// Claims with at least one plan.
    pub claims_served: u64,
    /// Distinct students holding at least one allocation.
    pub students_served: u64,
    /// Value reserved by the requests phase: courses families asked for by id.
    pub requested_fen: Fen,
    /// Value matched to pledges with a district, and online.
    pub in_district_fen: Fen,
    /// Value matched to online pledges, in fen.
    pub online_fen: Fen,
}

/// The outcome: the plans in claim order (closure, claim id), then pledge id; and figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matching {
    /// The allocations to record, in that order.
    pub plans: Vec<AllocationPlan>,
    /// The run's figures.
    pub report: MatchReport,
}
