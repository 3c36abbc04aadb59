//! The objects of the ledger state: what the rules keep between entries.
//!
//! Each object is stored under a [`Key`](super::state::Key) (table + id) as a
//! [`Value`](super::state::Value). Objects that carry a balance also keep `entries`: the
//! indexes of the entries that changed them, in log order, so every balance can be shown
//! with the entries it derives from. Two aggregates ([`Pool`] and [`Liability`]) are
//! touched by many entries and keep counters only; their derivation is the objects they
//! sum (pledges and claims), each with its own `entries`.
//!
//! Balances hold these identities after every entry: the sums by their types
//! ([`super::conservation`]: private parts, changed only by transfers), the rest checked
//! on every entry by [`decide`](super::decide) ([`super::invariants`]):
//! - claim: `value = unreserved + reserved + consumed`, `value = lessons × price`;
//! - pledge: `capacity = available + reserved + delivered + withdrawn`, where `withdrawn`
//!   is kept as its own bucket;
//! - allocation: `lessons = consumed + pending + remaining + released`.
//!
//! ```
//! use lesson_ledger::ledger::objects::AllocationStatus;
//! assert_eq!(AllocationStatus::Active.as_str(), "active");
//! ```

use serde::{Deserialize, Serialize};

use super::conservation::{AllocationLessons, ClaimValue, PledgeCapacity, Unbalanced};
use super::error::RuleError;
use super::payload::{DisputeOutcome, Role};
use super::units::{Fen, Id, KeyRef, Lessons};

#[macro_use]
mod flat_serde;
mod aggregates;
mod entry_record_serde;

pub use aggregates::{Liability, Pool, StudentIndex};

/// Parameters fixed at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The log's origin (C2SP), which every entry names in `ledger`.
    pub origin: String,
    /// Party id of the operator.
    pub operator: Id,
    /// Days a proposed lesson waits for the student; counted as 24-hour days of ledger
    /// time (the real platform counts working days; the ledger has no calendar).
    pub confirmation_window_days: u64,
    /// Days an allocation stays active before it may expire, 24-hour days of ledger time.
    pub allocation_validity_days: u64,
    /// The ledger's day, in µs of ledger time (see the genesis `day_micros`).
    pub day_micros: u64,
    /// The unit of value: always `CNY-fen` (the ledger counts fen, CNY cents).
    pub unit: String,
    /// The districts a claim or pledge may name.
    pub districts: Vec<Id>,
    /// The subjects a claim or pledge may name.
    pub subjects: Vec<Id>,
    /// Ledger time of the genesis, µs since the Unix epoch.
    pub genesis_time_micros: u64,
}

impl Config {
    /// `days` of this ledger's time, in µs; `overflow` names the quantity if it does not
    /// fit a u64.
    ///
    /// # Errors
    /// `overflow`.
    pub fn days_micros(&self, days: u64, what: &'static str) -> Result<u64, RuleError> {
        days.checked_mul(self.day_micros)
            .ok_or(RuleError::Overflow { what })
    }
}

/// A registered party.
///
/// Bounded: it is read for every entry the party signs, so its lists keep only the
/// recent past (`keys`: at most `PARTY_KEYS_KEPT_MAX`, `entries`: at most
/// `PARTY_ENTRIES_KEPT_MAX`); the key table and the log keep the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The party's opaque id (its keys' name).
    pub party: Id,
    /// What the party is.
    pub role: Role,
    /// The party's most recent keys, oldest first, the current one last (see the key
    /// table for status; every key ever registered has its record there).
    pub keys: Vec<KeyRef>,
    /// Index of the entry that registered it.
    pub registered_at: u64,
    /// Institutions only: entry index of closure, white-listing, black-listing.
    pub closed_at: Option<u64>,
    /// Institutions only: index of the entry that put it on the white list.
    pub whitelisted_at: Option<u64>,
    /// Institutions only: index of the entry that put it on the black list.
    pub banned_at: Option<u64>,
    /// Institutions only: pledges offered and not yet approved (bounded by
    /// `PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX`).
    pub pledges_unapproved: u64,
    /// Indexes of the latest entries that changed it, oldest first (at most `PARTY_ENTRIES_KEPT_MAX`).
    pub entries: Vec<u64>,
}

impl Party {
    /// Adds `key` as the party's newest key, forgetting the oldest kept beyond
    /// `PARTY_KEYS_KEPT_MAX` (its record stays in the key table).
    pub fn push_key(&mut self, key: KeyRef) {
        self.keys.push(key);
        let over = self
            .keys
            .len()
            .saturating_sub(super::limits::PARTY_KEYS_KEPT_MAX);
        self.keys.drain(..over);
    }
}

/// What one institution or student has signed in the current quota day (see
/// `ENTRIES_PER_PARTY_PER_DAY_MAX`). Counters only, never listed entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyQuota {
    /// Id of the party counted.
    pub party: Id,
    /// The quota day counted: ledger time since genesis / `QUOTA_DAY_MICROS`.
    pub day: u64,
    /// Entries signed by the party that day.
    pub entries: u64,
    /// Key changes of the party that day.
    pub key_changes: u64,
}

/// A registered key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key's id (its verifier key, C2SP form).
    pub key: KeyRef,
    /// Id of the party it signs for.
    pub party: Id,
    /// Index of the entry that registered it.
    pub registered_at: u64,
    /// Entry index from which the key signs nothing (revocation or rotation).
    pub revoked_at: Option<u64>,
}

/// A student's unfinished prepaid lessons at a closed institution.
///
/// Stored and served flat (`value`, `unreserved`, `reserved`, `consumed` beside the other
/// fields); [`ClaimValue`] keeps the parts summing to the value, and a stored claim whose
/// parts do not is refused when decoded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ClaimRepr")]
pub struct Claim {
    /// The claim's id.
    pub claim: Id,
    /// Pseudonymous id of the student who holds it.
    pub student: Id,
    /// Id of the closed institution that owes the lessons.
    pub institution: Id,
    /// The subject of the lessons owed (a genesis subject).
    pub subject: Id,
    /// The student's grade, 1 to 12.
    pub grade: u64,
    /// The student's district (a genesis district).
    pub district: Id,
    /// Whether the claim's own terms accept online courses.
    pub accepts_online: bool,
    /// Districts accepted besides its own, by the claim's own terms.
    pub accepted_districts: Vec<Id>,
    /// BLAKE3 of the evidence the association saw, kept off the log, 64 lowercase hex characters.
    pub evidence_digest: String,
    /// Lessons prepaid and not taken at closure.
    pub lessons: Lessons,
    /// What one of those lessons cost, in fen.
    pub price_per_lesson: Fen,
    /// The value and its parts.
    pub value: ClaimValue,
    /// The claim's open allocations, oldest first: every allocation of the claim that is
    /// active or still has a lesson pending or disputed
    /// ([`Allocation::is_open`]). An allocation leaves the list when it is neither, so
    /// a family sees, proven with the claim, every allocation a proposal may wait on.
    /// Bounded by [`CLAIM_ALLOCATIONS_OPEN_MAX`](super::limits::CLAIM_ALLOCATIONS_OPEN_MAX).
    pub allocations: Vec<Id>,
    /// Indexes of the entries that changed it, oldest first.
    pub entries: Vec<u64>,
    /// The family's choices (`claim_preferences_set`, the latest one); `None`: the claim
    /// redeems its own subject, where its own fields say.
    pub preferences: Option<ClaimPreferences>,
}

flat_serde! {
    Claim, ClaimRepr, ClaimRef, value: ClaimValue, Fen,
    { claim: Id, student: Id, institution: Id, subject: Id, grade: u64, district: Id,
      accepts_online: bool, accepted_districts: Vec<Id>, evidence_digest: String,
      lessons: Lessons, price_per_lesson: Fen },
    {},
    [unreserved, reserved, consumed],
    { allocations: Vec<Id>, entries: Vec<u64>, preferences: Option<ClaimPreferences> }
}

/// What a family accepts in redeeming a claim, as its student signed it
/// (`claim_preferences_set`). Lists are distinct and ordered as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimPreferences {
    /// Accepted subjects, most wanted first (1..=8 genesis subjects).
    pub subjects: Vec<Id>,
    /// Whether online courses are accepted.
    pub accepts_online: bool,
    /// Accepted districts besides the claim's own (0..=16 genesis districts).
    pub accepted_districts: Vec<Id>,
    /// Requested pledges, most wanted first (0..=5).
    pub requests: Vec<Id>,
    /// Index of the entry that set them.
    pub set_at: u64,
}

impl Claim {
    /// The subjects the claim may redeem, most wanted first: its preferences' or, without
    /// any, its own subject alone.
    #[must_use]
    pub fn accepted_subjects(&self) -> &[Id] {
        match &self.preferences {
            Some(p) => &p.subjects,
            None => std::slice::from_ref(&self.subject),
        }
    }

    /// Whether the family takes online courses (its preferences', else the claim's).
    #[must_use]
    pub fn takes_online(&self) -> bool {
        self.preferences
            .as_ref()
            .map_or(self.accepts_online, |p| p.accepts_online)
    }

    /// Districts accepted besides the claim's own (its preferences', else the claim's).
    #[must_use]
    pub fn other_districts(&self) -> &[Id] {
        match &self.preferences {
            Some(p) => &p.accepted_districts,
            None => &self.accepted_districts,
        }
    }

    /// The pledges the family requested, most wanted first (none without preferences).
    #[must_use]
    pub fn requests(&self) -> &[Id] {
        self.preferences.as_ref().map_or(&[], |p| &p.requests)
    }

    /// Whether a pledge of `subject`, taught in `district` (`None`: online, if `online`),
    /// for `grade_min..=grade_max`, may be redeemed by this claim: the one compatibility
    /// rule of `allocation_made` and the matcher. A pledge the family requested by id is
    /// accepted wherever it is taught (the family chose it, place included).
    #[must_use]
    pub fn accepts(&self, pledge: &Pledge) -> Compatibility {
        if !self.accepted_subjects().contains(&pledge.subject) {
            return Compatibility::Subject;
        }
        if !(pledge.grade_min..=pledge.grade_max).contains(&self.grade) {
            return Compatibility::Grade;
        }
        let place = match &pledge.district {
            None => pledge.online && self.takes_online(),
            Some(d) => *d == self.district || self.other_districts().contains(d),
        };
        if place || self.requests().contains(&pledge.pledge) {
            Compatibility::Compatible
        } else {
            Compatibility::Location
        }
    }
}

/// The outcome of [`Claim::accepts`]: compatible, or the first test that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    /// The claim may redeem the pledge.
    Compatible,
    /// The pledge's subject is not accepted.
    Subject,
    /// The claim's grade is outside the pledge's band.
    Grade,
    /// Neither an accepted place nor a requested course.
    Location,
}

/// A course a donor institution puts into the pool.
///
/// Stored and served flat; [`PledgeCapacity`] keeps `capacity = available + reserved +
/// delivered + withdrawn`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PledgeRepr")]
pub struct Pledge {
    /// The pledge's id.
    pub pledge: Id,
    /// Id of the donor institution.
    pub institution: Id,
    /// The subject taught (a genesis subject).
    pub subject: Id,
    /// Lowest grade taught, 1 to 12.
    pub grade_min: u64,
    /// Highest grade taught, 1 to 12.
    pub grade_max: u64,
    /// Where it is taught; `None` for an online course.
    pub district: Option<Id>,
    /// Whether it is taught online (then `district` is `None`).
    pub online: bool,
    /// Number of seats offered.
    pub seats: u64,
    /// Lessons one seat holds.
    pub lessons_per_seat: u64,
    /// Value of one lesson, in fen: what a lesson consumed makes good.
    pub value_per_lesson: Fen,
    /// Start of validity, µs of ledger time since the epoch.
    pub valid_from_micros: u64,
    /// End of validity (excluded), µs of ledger time since the epoch.
    pub valid_until_micros: u64,
    /// The capacity and its parts.
    pub capacity: PledgeCapacity,
    /// Index of the entry that approved it; `None` until approved.
    pub approved_at: Option<u64>,
    /// Entries that changed the pledge's definition or reservations. Lessons delivered
    /// are listed on the allocations (a pledge may deliver 10^5 lessons; listing each here
    /// would make every delivery rewrite a large object).
    pub entries: Vec<u64>,
}

flat_serde! {
    Pledge, PledgeRepr, PledgeRef, capacity: PledgeCapacity, Lessons,
    { pledge: Id, institution: Id, subject: Id, grade_min: u64, grade_max: u64,
      district: Option<Id>, online: bool, seats: u64, lessons_per_seat: u64,
      value_per_lesson: Fen, valid_from_micros: u64, valid_until_micros: u64 },
    {},
    [available, reserved, delivered, withdrawn],
    { approved_at: Option<u64>, entries: Vec<u64> }
}

/// Where an allocation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationStatus {
    /// Lessons may be consumed on it.
    Active,
    /// Its validity passed; its remaining lessons went back to the pledge and the claim.
    Expired,
    /// The student declined it; its lessons went back.
    Declined,
}

impl AllocationStatus {
    /// The status's snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationStatus::Active => "active",
            AllocationStatus::Expired => "expired",
            AllocationStatus::Declined => "declined",
        }
    }
}

/// k lessons of a pledge reserved for a claim.
///
/// Stored and served flat; [`AllocationLessons`] keeps `lessons = consumed + pending +
/// remaining + released`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AllocationRepr")]
pub struct Allocation {
    /// The allocation's id (`RUN.i` when a match run made it).
    pub allocation: Id,
    /// Id of the claim it makes good.
    pub claim: Id,
    /// Id of the pledge it draws on.
    pub pledge: Id,
    /// Pseudonymous id of the claim's student.
    pub student: Id,
    /// Id of the donor institution (the pledge's).
    pub institution: Id,
    /// The lessons allocated (k) and their parts.
    pub lessons: AllocationLessons,
    /// Value of one of its lessons, in fen (the pledge's at allocation).
    pub value_per_lesson: Fen,
    /// Where it is in its life.
    pub status: AllocationStatus,
    /// When it may expire, µs of ledger time since the epoch.
    pub expires_at_micros: u64,
    /// The lessons proposed on the allocation and not yet final or void (pending or
    /// disputed), in the order proposed, each with the end of its confirmation window:
    /// exactly `lessons.pending` of them (so at most the allocation's k lessons, at most
    /// [`CLAIM_LESSONS_MAX`](super::limits::CLAIM_LESSONS_MAX)).
    pub open_lessons: Vec<OpenLesson>,
    /// Indexes of the entries that changed it, oldest first.
    pub entries: Vec<u64>,
    /// The match run that made it, if any. Always serialized (as `null` when absent):
    /// the stored state is postcard, which has no field names and cannot skip one.
    pub run: Option<Id>,
}

impl Allocation {
    /// Whether anything may still happen on the allocation: it is active, or a lesson
    /// proposed on it is still pending or disputed. Its claim lists it while it is.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.status == AllocationStatus::Active || self.lessons.pending().0 > 0
    }
}

/// A lesson waiting on an allocation: proposed by the donor, neither confirmed, deemed
/// confirmed nor resolved yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenLesson {
    /// The lesson's id.
    pub lesson: Id,
    /// End of its confirmation window, µs of ledger time since the epoch: after it an
    /// undisputed proposal may be deemed confirmed.
    pub window_end_micros: u64,
}

flat_serde! {
    Allocation, AllocationRepr, AllocationRef, lessons: AllocationLessons, Lessons,
    { allocation: Id, claim: Id, pledge: Id, student: Id, institution: Id },
    { value_per_lesson: Fen },
    [consumed, pending, remaining, released],
    { status: AllocationStatus, expires_at_micros: u64, open_lessons: Vec<OpenLesson>,
      entries: Vec<u64>, run: Option<Id> }
}

/// A recorded match run (`match_run`): what it declared and how many of its allocations
/// have been recorded so far. Counters only: a run may make millions of allocations, and
/// listing each here would rewrite a growing object with every one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's id (128 random bits, hex).
    pub run: Id,
    /// Index of the `match_run` entry.
    pub index: u64,
    /// The parameters the matcher ran with, as recorded.
    pub params: super::run_params::RunParams,
    /// Allocations declared by the run.
    pub allocations: u64,
    /// Allocations naming the run recorded so far (never more than declared).
    pub made: u64,
    /// BLAKE3 of the plans' canonical encoding, 64 lowercase hex characters.
    pub plans_digest: String,
    /// Index of the `match_run_closed` entry that ended the run before all its
    /// allocations were recorded; `None` while open or once complete.
    pub closed_at: Option<u64>,
}

impl RunRecord {
    /// The id the run's allocation at `position` must have: the run's allocations are
    /// recorded in plan order, each named by its position, so that a run can never have
    /// a hole (an allocation refused while the next one is recorded).
    #[must_use]
    pub fn allocation_id(run: &str, position: u64) -> String {
        format!("{run}.{position}")
    }

    /// Whether allocations may still be recorded for the run.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.made < self.allocations && self.closed_at.is_none()
    }
}

/// The latest time a consumer association has attested (`time_attested`): the clock
/// the confirmation windows and allocation validities are measured against, so that the
/// operator's clock alone ends none of them. Never goes backwards, and never ahead of
/// the ledger time of the entry that attests it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestedClock {
    /// The attested time, µs since the epoch.
    pub at_micros: u64,
    /// The association that attested it.
    pub by: Id,
    /// Index of the `time_attested` entry.
    pub index: u64,
}

/// Where a lesson (消课) is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LessonStatus {
    /// Proposed by the donor, waiting for the student or the end of the window.
    Pending,
    /// The student disputes it; an association resolves it.
    Disputed,
    /// Consumed: confirmed, deemed confirmed, or its dispute rejected.
    Final,
    /// Not consumed: its dispute was upheld, and the lesson went back to the allocation.
    Void,
}

impl LessonStatus {
    /// The status's snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LessonStatus::Pending => "pending",
            LessonStatus::Disputed => "disputed",
            LessonStatus::Final => "final",
            LessonStatus::Void => "void",
        }
    }
}

/// One lesson consumed or proposed on an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lesson {
    /// The lesson's id.
    pub lesson: Id,
    /// Id of the allocation it is consumed on.
    pub allocation: Id,
    /// Where it is in its life.
    pub status: LessonStatus,
    /// End of the confirmation window (proposals only).
    pub window_end_micros: Option<u64>,
    /// Id of the dispute raised against it, if any.
    pub dispute: Option<Id>,
    /// Indexes of the entries that changed it, oldest first.
    pub entries: Vec<u64>,
}

/// Where a dispute is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    /// Waiting for an association to resolve it.
    Open,
    /// Resolved, with its outcome.
    Resolved(DisputeOutcome),
}

/// A dispute against a proposed lesson.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    /// The dispute's id.
    pub dispute: Id,
    /// Id of the lesson disputed.
    pub lesson: Id,
    /// Id of the party that raised it (the student).
    pub raised_by: Id,
    /// Why, as a closed reason code of the schema (never free text).
    pub reason: String,
    /// Open, or how it was resolved.
    pub status: DisputeStatus,
    /// The resolution's reason code, once resolved.
    pub resolution: Option<String>,
    /// Indexes of the entries that changed it, oldest first.
    pub entries: Vec<u64>,
}

/// The record of an entry id (idempotency key) already used by its author. Entry ids are
/// scoped per author (the party of the entry's first registered signer), so one party
/// can never take an id another party will need.
/// Served (JSON) with every field; stored (postcard) without the key it repeats and
/// with the digest as bytes (`entry_record_serde.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    /// The state key: `<author>/<id>` (`/` is in no id, so the pair is unambiguous).
    pub key: String,
    /// Id of the party that wrote the entry (its first registered signer).
    pub author: Id,
    /// The entry's `id`, as its author gave it.
    pub id: Id,
    /// Index of the entry in the log.
    pub index: u64,
    /// The entry's kind.
    pub kind: String,
    /// BLAKE3 of the payload bytes, hex.
    pub payload_digest: String,
}
