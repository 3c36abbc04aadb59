//! The entry payloads (format v2, payload type [`PAYLOAD_TYPE`](super::PAYLOAD_TYPE)): one
//! JSON object per entry, `kind` + `id` + `ledger` + kind-specific fields, and the parser
//! that turns payload bytes into a typed [`Entry`]. `ledger` names the ledger (its genesis
//! `origin`) so that a statement signed for one ledger is refused in another; reasons are
//! closed lists of codes, never free text.
//!
//! Spec: `schemas/entries/<kind>.schema.json` (JSON Schema draft 2020-12, one per kind,
//! `additionalProperties: false`). The parser applies, in order:
//! 1. the byte cap [`PAYLOAD_BYTES_MAX`](super::limits::PAYLOAD_BYTES_MAX), before parsing;
//! 2. JSON syntax, a top-level object, no field twice (`duplicate_field`);
//! 3. `kind` a known kind (`unknown_kind`);
//! 4. no field outside the kind's list (`unknown_field`), every required one present
//!    (`missing_field`);
//! 5. field types (`malformed_payload`).
//!
//! Field *values* (ids, ranges, text) are validated by the rules, which own their meaning.
//!
//! ```
//! use lesson_ledger::ledger::payload::{parse, Entry};
//! let e = parse(br#"{"kind":"pledge_approved","id":"e-1","ledger":"l.example/a","pledge":"p-1"}"#).unwrap();
//! assert!(matches!(e, Entry::PledgeApproved(_)));
//! assert_eq!(e.ledger(), "l.example/a");
//! let err = parse(br#"{"kind":"pledge_approved","id":"e-1","ledger":"l.example/a"}"#).unwrap_err();
//! assert_eq!(err.code(), "missing_field");
//! ```

use serde::{Deserialize, Serialize};

pub use super::parse::{parse, KINDS};

/// Role of a registered party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The education bureau's supervision platform.
    Operator,
    /// A tutoring institution: closed (owes lessons) or donor (pledges).
    Institution,
    /// A student or guardian, by pseudonymous ref.
    Student,
    /// A consumer association (消费者协会).
    Association,
}

impl Role {
    /// The role's snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Institution => "institution",
            Role::Student => "student",
            Role::Association => "association",
        }
    }
}

/// How the operator resolved a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The dispute is right: the lesson is void and its value returns.
    Upheld,
    /// The dispute is wrong: the lesson stands and is final.
    Rejected,
}

/// Why a key is revoked: a closed list, so that no free text reaches the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum RevocationReason {
    Lost,
    Compromised,
    Retired,
    PartyRequest,
}

/// Why an institution's status changes; which codes fit which kind: [`StatusReason::fits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum StatusReason {
    // institution_closed
    CeasedTrading,
    AbnormalClosure,
    LicenceRevoked,
    Bankrupt,
    // institution_whitelisted
    ApprovedDonor,
    // institution_blacklisted
    FundOutflow,
    FalsePledge,
    FailedDelivery,
    RegulatoryOrder,
}

impl StatusReason {
    /// The reason's code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StatusReason::CeasedTrading => "ceased_trading",
            StatusReason::AbnormalClosure => "abnormal_closure",
            StatusReason::LicenceRevoked => "licence_revoked",
            StatusReason::Bankrupt => "bankrupt",
            StatusReason::ApprovedDonor => "approved_donor",
            StatusReason::FundOutflow => "fund_outflow",
            StatusReason::FalsePledge => "false_pledge",
            StatusReason::FailedDelivery => "failed_delivery",
            StatusReason::RegulatoryOrder => "regulatory_order",
        }
    }

    /// Whether this reason may be given for `kind` (`institution_closed`,
    /// `institution_whitelisted`, `institution_blacklisted`).
    #[must_use]
    pub fn fits(self, kind: &str) -> bool {
        use StatusReason as R;
        match kind {
            "institution_closed" => matches!(
                self,
                R::CeasedTrading | R::AbnormalClosure | R::LicenceRevoked | R::Bankrupt
            ),
            "institution_whitelisted" => self == R::ApprovedDonor,
            "institution_blacklisted" => matches!(
                self,
                R::FundOutflow | R::FalsePledge | R::FailedDelivery | R::RegulatoryOrder
            ),
            _ => false,
        }
    }
}

/// Why a lesson is disputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum DisputeReason {
    NotTaught,
    NotAttended,
    WrongCourse,
    Duplicate,
    Quality,
}

impl DisputeReason {
    /// The reason's code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeReason::NotTaught => "not_taught",
            DisputeReason::NotAttended => "not_attended",
            DisputeReason::WrongCourse => "wrong_course",
            DisputeReason::Duplicate => "duplicate",
            DisputeReason::Quality => "quality",
        }
    }
}

/// Why the operator resolved a dispute as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ResolutionReason {
    DeliveryNotProven,
    DeliveryProven,
    DisputeWithdrawn,
}

impl ResolutionReason {
    /// The reason's code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionReason::DeliveryNotProven => "delivery_not_proven",
            ResolutionReason::DeliveryProven => "delivery_proven",
            ResolutionReason::DisputeWithdrawn => "dispute_withdrawn",
        }
    }
}

/// `genesis`: entry 0, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Genesis {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub origin: String,
    pub operator: String,
    pub operator_key: String,
    #[serde(default = "default_window")]
    pub confirmation_window_days: u64,
    pub allocation_validity_days: u64,
    /// Length of the ledger's "day" in µs of ledger time: 86,400,000,000 (the default)
    /// for a real ledger; a test or demonstration ledger may declare shorter days, in the
    /// open, so that windows and validities pass within a run.
    #[serde(default = "default_day_micros")]
    pub day_micros: u64,
    pub unit: String,
    pub districts: Vec<String>,
    pub subjects: Vec<String>,
    /// The consumer associations whose co-signature registrations, claims and hand-made
    /// allocations need; each co-signs the genesis with its key (proof of possession).
    pub associations: Vec<DeclaredAssociation>,
}

/// A consumer association the genesis declares: its party id and its key, whose name is
/// the party id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct DeclaredAssociation {
    pub party: String,
    pub key: String,
}

fn default_day_micros() -> u64 {
    super::limits::DAY_MICROS
}

fn default_window() -> u64 {
    u64::from(super::limits::CONFIRMATION_WINDOW_DAYS_DEFAULT)
}

/// `party_registered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PartyRegistered {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub party: String,
    pub role: Role,
    pub key: String,
}

/// `key_rotated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct KeyRotated {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub party: String,
    pub old_key: String,
    pub new_key: String,
}

/// `key_revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct KeyRevoked {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub party: String,
    pub key: String,
    pub reason: RevocationReason,
    /// BLAKE3 (hex) of evidence kept off the log.
    #[serde(default)]
    pub evidence_digest: Option<String>,
}

/// `key_recovered`: a party's key replaced under two-party control (the operator and a
/// consumer association), the new key proving possession; every live key of the party
/// is revoked by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct KeyRecovered {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub party: String,
    pub new_key: String,
}

/// `institution_closed`, `institution_whitelisted`, `institution_blacklisted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct InstitutionStatus {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub institution: String,
    /// Checked against the kind: [`StatusReason::fits`].
    pub reason: StatusReason,
    /// BLAKE3 (hex) of evidence kept off the log (the decision, the bank's warning).
    #[serde(default)]
    pub evidence_digest: Option<String>,
}

/// `claim_recorded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ClaimRecorded {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub claim: String,
    pub student: String,
    pub institution: String,
    pub lessons: u64,
    pub price_per_lesson_fen: u64,
    pub subject: String,
    pub grade: u64,
    pub district: String,
    pub evidence_digest: String,
    pub accepts_online: bool,
    pub accepted_districts: Vec<String>,
}

/// `claim_preferences_set`: what a family accepts in redeeming a claim (issue 18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ClaimPreferencesSet {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub claim: String,
    /// Accepted subjects, most wanted first.
    pub subjects: Vec<String>,
    pub accepts_online: bool,
    pub accepted_districts: Vec<String>,
    /// Requested pledges, most wanted first.
    pub requests: Vec<String>,
}

/// `pledge_offered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PledgeOffered {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub pledge: String,
    pub institution: String,
    pub subject: String,
    pub grade_min: u64,
    pub grade_max: u64,
    #[serde(default)]
    pub district: Option<String>,
    #[serde(default)]
    pub online: bool,
    pub seats: u64,
    pub lessons_per_seat: u64,
    pub value_per_lesson_fen: u64,
    pub valid_from_micros: u64,
    pub valid_until_micros: u64,
}

/// `pledge_approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PledgeRef {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub pledge: String,
}

/// `pledge_withdrawn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PledgeWithdrawn {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub pledge: String,
    pub lessons: u64,
}

/// `allocation_made`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct AllocationMade {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub allocation: String,
    pub claim: String,
    pub pledge: String,
    pub lessons: u64,
    /// The `match_run` this allocation belongs to; absent for one made by hand.
    #[serde(default)]
    pub run: Option<String>,
}

/// `match_run`: the operator's record of one run of the matcher, appended just before
/// the run's allocations so that `verify` can re-run it on the state at this point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MatchRun {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub run: String,
    /// Every parameter the matcher's output depends on.
    pub params: super::run_params::RunParams,
    /// How many `allocation_made` entries name this run.
    pub allocations: u64,
    /// BLAKE3 (hex) of the plans' canonical encoding ([`crate::runs::plans_digest`]).
    pub plans_digest: String,
}

/// `match_run_closed`: the operator ends a run before all its declared allocations are
/// recorded (a run cut short by a crash); `verify` then checks the allocations recorded
/// as the first plans of the re-run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MatchRunClosed {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub run: String,
}

/// `time_attested`: a consumer association states the time on its own clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TimeAttested {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// µs since 1970-01-01T00:00:00Z on the association's clock.
    pub at_micros: u64,
}

/// `allocation_expired`, `allocation_declined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct AllocationRef {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub allocation: String,
}

/// `lesson_consumed`, `lesson_proposed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LessonOnAllocation {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub lesson: String,
    pub allocation: String,
}

/// `lesson_confirmed`, `lesson_deemed_confirmed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LessonRef {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub lesson: String,
}

/// `lesson_disputed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LessonDisputed {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub dispute: String,
    pub lesson: String,
    pub reason: DisputeReason,
    /// BLAKE3 (hex) of evidence kept off the log.
    #[serde(default)]
    pub evidence_digest: Option<String>,
}

/// `dispute_resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct DisputeResolved {
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    pub dispute: String,
    pub outcome: Outcome,
    pub reason: ResolutionReason,
    /// BLAKE3 (hex) of evidence kept off the log.
    #[serde(default)]
    pub evidence_digest: Option<String>,
}

/// One parsed entry payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Entry {
    Genesis(Genesis),
    PartyRegistered(PartyRegistered),
    KeyRotated(KeyRotated),
    KeyRevoked(KeyRevoked),
    KeyRecovered(KeyRecovered),
    InstitutionClosed(InstitutionStatus),
    InstitutionWhitelisted(InstitutionStatus),
    InstitutionBlacklisted(InstitutionStatus),
    ClaimRecorded(ClaimRecorded),
    ClaimPreferencesSet(ClaimPreferencesSet),
    PledgeOffered(PledgeOffered),
    PledgeApproved(PledgeRef),
    PledgeWithdrawn(PledgeWithdrawn),
    AllocationMade(AllocationMade),
    MatchRun(MatchRun),
    MatchRunClosed(MatchRunClosed),
    TimeAttested(TimeAttested),
    AllocationExpired(AllocationRef),
    AllocationDeclined(AllocationRef),
    LessonConsumed(LessonOnAllocation),
    LessonProposed(LessonOnAllocation),
    LessonConfirmed(LessonRef),
    LessonDisputed(LessonDisputed),
    LessonDeemedConfirmed(LessonRef),
    DisputeResolved(DisputeResolved),
}

impl Entry {
    /// The entry's `kind`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Genesis(_) => "genesis",
            Entry::PartyRegistered(_) => "party_registered",
            Entry::KeyRotated(_) => "key_rotated",
            Entry::KeyRevoked(_) => "key_revoked",
            Entry::KeyRecovered(_) => "key_recovered",
            Entry::InstitutionClosed(_) => "institution_closed",
            Entry::InstitutionWhitelisted(_) => "institution_whitelisted",
            Entry::InstitutionBlacklisted(_) => "institution_blacklisted",
            Entry::ClaimRecorded(_) => "claim_recorded",
            Entry::ClaimPreferencesSet(_) => "claim_preferences_set",
            Entry::PledgeOffered(_) => "pledge_offered",
            Entry::PledgeApproved(_) => "pledge_approved",
            Entry::PledgeWithdrawn(_) => "pledge_withdrawn",
            Entry::AllocationMade(_) => "allocation_made",
            Entry::MatchRun(_) => "match_run",
            Entry::MatchRunClosed(_) => "match_run_closed",
            Entry::TimeAttested(_) => "time_attested",
            Entry::AllocationExpired(_) => "allocation_expired",
            Entry::AllocationDeclined(_) => "allocation_declined",
            Entry::LessonConsumed(_) => "lesson_consumed",
            Entry::LessonProposed(_) => "lesson_proposed",
            Entry::LessonConfirmed(_) => "lesson_confirmed",
            Entry::LessonDisputed(_) => "lesson_disputed",
            Entry::LessonDeemedConfirmed(_) => "lesson_deemed_confirmed",
            Entry::DisputeResolved(_) => "dispute_resolved",
        }
    }

    /// The ledger the entry names (unvalidated).
    #[must_use]
    pub fn ledger(&self) -> &str {
        match self {
            Entry::Genesis(p) => &p.ledger,
            Entry::PartyRegistered(p) => &p.ledger,
            Entry::KeyRotated(p) => &p.ledger,
            Entry::KeyRevoked(p) => &p.ledger,
            Entry::KeyRecovered(p) => &p.ledger,
            Entry::MatchRunClosed(p) => &p.ledger,
            Entry::TimeAttested(p) => &p.ledger,
            Entry::InstitutionClosed(p)
            | Entry::InstitutionWhitelisted(p)
            | Entry::InstitutionBlacklisted(p) => &p.ledger,
            Entry::ClaimRecorded(p) => &p.ledger,
            Entry::ClaimPreferencesSet(p) => &p.ledger,
            Entry::PledgeOffered(p) => &p.ledger,
            Entry::PledgeApproved(p) => &p.ledger,
            Entry::PledgeWithdrawn(p) => &p.ledger,
            Entry::AllocationMade(p) => &p.ledger,
            Entry::MatchRun(p) => &p.ledger,
            Entry::AllocationExpired(p) | Entry::AllocationDeclined(p) => &p.ledger,
            Entry::LessonConsumed(p) | Entry::LessonProposed(p) => &p.ledger,
            Entry::LessonConfirmed(p) | Entry::LessonDeemedConfirmed(p) => &p.ledger,
            Entry::LessonDisputed(p) => &p.ledger,
            Entry::DisputeResolved(p) => &p.ledger,
        }
    }

    /// The entry's client-chosen idempotency key (unvalidated).
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Entry::Genesis(p) => &p.id,
            Entry::PartyRegistered(p) => &p.id,
            Entry::KeyRotated(p) => &p.id,
            Entry::KeyRevoked(p) => &p.id,
            Entry::KeyRecovered(p) => &p.id,
            Entry::InstitutionClosed(p)
            | Entry::InstitutionWhitelisted(p)
            | Entry::InstitutionBlacklisted(p) => &p.id,
            Entry::ClaimRecorded(p) => &p.id,
            Entry::ClaimPreferencesSet(p) => &p.id,
            Entry::PledgeOffered(p) => &p.id,
            Entry::PledgeApproved(p) => &p.id,
            Entry::PledgeWithdrawn(p) => &p.id,
            Entry::AllocationMade(p) => &p.id,
            Entry::MatchRun(p) => &p.id,
            Entry::MatchRunClosed(p) => &p.id,
            Entry::TimeAttested(p) => &p.id,
            Entry::AllocationExpired(p) | Entry::AllocationDeclined(p) => &p.id,
            Entry::LessonConsumed(p) | Entry::LessonProposed(p) => &p.id,
            Entry::LessonConfirmed(p) | Entry::LessonDeemedConfirmed(p) => &p.id,
            Entry::LessonDisputed(p) => &p.id,
            Entry::DisputeResolved(p) => &p.id,
        }
    }
}
