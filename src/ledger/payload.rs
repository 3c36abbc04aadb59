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

// Every public item here is documented, and stays so (issue 16, item 7).
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

pub use super::parse::{parse, KINDS};

mod entry;
mod reasons;

pub use entry::Entry;

pub use reasons::{
    DisputeOutcome, DisputeReason, ResolutionReason, RevocationReason, Role, StatusReason,
};

/// `genesis`: entry 0, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The log's origin line (C2SP checkpoint), which names the ledger.
    pub origin: String,
    /// The operator's party id.
    pub operator: String,
    /// The operator's verifier key (C2SP note `vkey`).
    pub operator_key: String,
    /// Days a student has to confirm or dispute a proposed lesson.
    #[serde(default = "default_window")]
    pub confirmation_window_days: u64,
    /// Days an allocation stays valid after it is made (or until its pledge's end).
    pub allocation_validity_days: u64,
    /// Length of the ledger's "day" in µs of ledger time: 86,400,000,000 (the default)
    /// for a real ledger; a test or demonstration ledger may declare shorter days, in the
    /// open, so that windows and validities pass within a run.
    #[serde(default = "default_day_micros")]
    pub day_micros: u64,
    /// The currency unit of every value (`CNY_fen`).
    pub unit: String,
    /// The districts claims and pledges may name.
    pub districts: Vec<String>,
    /// The subjects claims and pledges may name.
    pub subjects: Vec<String>,
    /// The consumer associations whose co-signature registrations, claims and hand-made
    /// allocations need; each co-signs the genesis with its key (proof of possession).
    pub associations: Vec<DeclaredAssociation>,
}

/// A consumer association the genesis declares: its party id and its key, whose name is
/// the party id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredAssociation {
    /// The association's party id.
    pub party: String,
    /// Its verifier key (C2SP note `vkey`), named after the party.
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
pub struct PartyRegistered {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The party concerned, by id.
    pub party: String,
    /// The party's role.
    pub role: Role,
    /// A verifier key (C2SP note `vkey`), named after the party.
    pub key: String,
}

/// `key_rotated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotated {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The party concerned, by id.
    pub party: String,
    /// The key being replaced.
    pub old_key: String,
    /// The key that replaces it, which co-signs the entry (proof of possession).
    pub new_key: String,
}

/// `key_revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRevoked {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The party concerned, by id.
    pub party: String,
    /// A verifier key (C2SP note `vkey`), named after the party.
    pub key: String,
    /// Why the key is revoked.
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
pub struct KeyRecovered {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The party concerned, by id.
    pub party: String,
    /// The key that replaces it, which co-signs the entry (proof of possession).
    pub new_key: String,
}

/// `institution_closed`, `institution_whitelisted`, `institution_blacklisted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstitutionStatus {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The institution concerned, by party id.
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
pub struct ClaimRecorded {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The claim concerned, by id.
    pub claim: String,
    /// The student, by pseudonymous ref.
    pub student: String,
    /// The institution concerned, by party id.
    pub institution: String,
    /// A number of lessons.
    pub lessons: u64,
    /// What the student paid per lesson, in fen.
    pub price_per_lesson_fen: u64,
    /// The subject, one the genesis declares.
    pub subject: String,
    /// The student's school grade, 1..=12.
    pub grade: u64,
    /// The district, one the genesis declares.
    pub district: String,
    /// BLAKE3 (hex) of the evidence the association checked (contract, payment record), kept off the log.
    pub evidence_digest: String,
    /// Whether the student accepts online lessons.
    pub accepts_online: bool,
    /// Districts the student accepts besides their own.
    pub accepted_districts: Vec<String>,
}

/// `claim_preferences_set`: what a family accepts in redeeming a claim (issue 18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimPreferencesSet {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The claim concerned, by id.
    pub claim: String,
    /// Accepted subjects, most wanted first.
    pub subjects: Vec<String>,
    /// Whether the student accepts online lessons.
    pub accepts_online: bool,
    /// Districts the student accepts besides their own.
    pub accepted_districts: Vec<String>,
    /// Requested pledges, most wanted first.
    pub requests: Vec<String>,
}

/// `pledge_offered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PledgeOffered {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The pledge concerned, by id.
    pub pledge: String,
    /// The institution concerned, by party id.
    pub institution: String,
    /// The subject, one the genesis declares.
    pub subject: String,
    /// Lowest grade taught.
    pub grade_min: u64,
    /// Highest grade taught.
    pub grade_max: u64,
    /// Where the course is taught; absent for an online course.
    #[serde(default)]
    pub district: Option<String>,
    /// Whether the course is taught online (then it has no district).
    #[serde(default)]
    pub online: bool,
    /// Students the course takes.
    pub seats: u64,
    /// Lessons each student is given.
    pub lessons_per_seat: u64,
    /// What one lesson is worth, in fen.
    pub value_per_lesson_fen: u64,
    /// Start of the pledge's validity, µs of ledger time.
    pub valid_from_micros: u64,
    /// End of the pledge's validity (excluded), µs of ledger time.
    pub valid_until_micros: u64,
}

/// `pledge_approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PledgeRef {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The pledge concerned, by id.
    pub pledge: String,
}

/// `pledge_withdrawn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PledgeWithdrawn {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The pledge concerned, by id.
    pub pledge: String,
    /// Lessons withdrawn, at most those still available.
    pub lessons: u64,
}

/// `allocation_made`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationMade {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The allocation concerned, by id.
    pub allocation: String,
    /// The claim concerned, by id.
    pub claim: String,
    /// The pledge concerned, by id.
    pub pledge: String,
    /// Lessons reserved: at most one seat's.
    pub lessons: u64,
    /// The `match_run` this allocation belongs to; absent for one made by hand.
    #[serde(default)]
    pub run: Option<String>,
}

/// `match_run`: the operator's record of one run of the matcher, appended just before
/// the run's allocations so that `verify` can re-run it on the state at this point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRun {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The match run, by id.
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
pub struct MatchRunClosed {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The match run, by id.
    pub run: String,
}

/// `time_attested`: a consumer association states the time on its own clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeAttested {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// µs since 1970-01-01T00:00:00Z on the association's clock.
    pub at_micros: u64,
}

/// `allocation_expired`, `allocation_declined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationRef {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The allocation concerned, by id.
    pub allocation: String,
}

/// `lesson_consumed`, `lesson_proposed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonOnAllocation {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The lesson concerned, by id.
    pub lesson: String,
    /// The allocation concerned, by id.
    pub allocation: String,
}

/// `lesson_confirmed`, `lesson_deemed_confirmed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonRef {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The lesson concerned, by id.
    pub lesson: String,
}

/// `lesson_disputed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonDisputed {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The dispute, by id.
    pub dispute: String,
    /// The lesson concerned, by id.
    pub lesson: String,
    /// Why the student disputes the lesson.
    pub reason: DisputeReason,
    /// BLAKE3 (hex) of evidence kept off the log.
    #[serde(default)]
    pub evidence_digest: Option<String>,
}

/// `dispute_resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeResolved {
    /// The entry's id, chosen by its author: an idempotency key, unique per author.
    pub id: String,
    /// The ledger this statement is made in: its genesis `origin` (refused elsewhere).
    pub ledger: String,
    /// The dispute, by id.
    pub dispute: String,
    /// How the dispute was resolved.
    pub outcome: DisputeOutcome,
    /// Why it was resolved so.
    pub reason: ResolutionReason,
    /// BLAKE3 (hex) of evidence kept off the log.
    #[serde(default)]
    pub evidence_digest: Option<String>,
}
