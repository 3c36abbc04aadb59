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
use super::payload::{Outcome, Role};
use super::units::{Fen, Id, KeyRef, Lessons};

/// Serde for an object holding a conserved balance (`$bal`, whose total is stored under
/// the same name): the stored and served form is flat, as it was before the balance had
/// a type, so neither the state digest nor any JSON changes; decoding checks the parts
/// (`from_parts`), so an unbalanced stored object is refused, never loaded.
macro_rules! flat_serde {
    ($t:ident, $repr:ident, $borrowed:ident, $bal:ident: $balty:ident, $unit:ty,
     { $($b:ident: $bt:ty),* $(,)? },
     { $($m:ident: $mt:ty),* $(,)? },
     [ $($p:ident),* ],
     { $($a:ident: $at:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        struct $repr { $($b: $bt,)* $bal: $unit, $($m: $mt,)* $($p: $unit,)* $($a: $at,)* }

        impl TryFrom<$repr> for $t {
            type Error = Unbalanced;
            fn try_from(r: $repr) -> Result<Self, Unbalanced> {
                Ok($t {
                    $bal: $balty::from_parts(r.$bal, $(r.$p),*)?,
                    $($b: r.$b,)* $($m: r.$m,)* $($a: r.$a,)*
                })
            }
        }

        #[derive(Serialize)]
        struct $borrowed<'a> {
            $($b: &'a $bt,)* $bal: $unit, $($m: &'a $mt,)* $($p: $unit,)* $($a: &'a $at,)*
        }

        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $borrowed {
                    $($b: &self.$b,)*
                    $bal: self.$bal.total(),
                    $($m: &self.$m,)*
                    $($p: self.$bal.$p(),)*
                    $($a: &self.$a,)*
                }
                .serialize(s)
            }
        }
    };
}

/// Parameters fixed at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Config {
    pub origin: String,
    pub operator: Id,
    /// Days a proposed lesson waits for the student; counted as 24-hour days of ledger
    /// time (the real platform counts working days; the ledger has no calendar).
    pub confirmation_window_days: u64,
    pub allocation_validity_days: u64,
    /// The ledger's day, in µs of ledger time (see the genesis `day_micros`).
    pub day_micros: u64,
    pub unit: String,
    pub districts: Vec<Id>,
    pub subjects: Vec<Id>,
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
#[allow(missing_docs)]
pub struct Party {
    pub party: Id,
    pub role: Role,
    /// The party's most recent keys, oldest first, the current one last (see the key
    /// table for status; every key ever registered has its record there).
    pub keys: Vec<KeyRef>,
    pub registered_at: u64,
    /// Institutions only: entry index of closure, white-listing, black-listing.
    pub closed_at: Option<u64>,
    pub whitelisted_at: Option<u64>,
    pub banned_at: Option<u64>,
    /// Institutions only: pledges offered and not yet approved (bounded by
    /// `PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX`).
    pub pledges_unapproved: u64,
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
#[allow(missing_docs)]
pub struct PartyQuota {
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
#[allow(missing_docs)]
pub struct KeyRecord {
    pub key: KeyRef,
    pub party: Id,
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
#[allow(missing_docs)]
pub struct Claim {
    pub claim: Id,
    pub student: Id,
    pub institution: Id,
    pub subject: Id,
    pub grade: u64,
    pub district: Id,
    pub accepts_online: bool,
    pub accepted_districts: Vec<Id>,
    pub evidence_digest: String,
    pub lessons: Lessons,
    pub price_per_lesson: Fen,
    /// The value and its parts.
    pub value: ClaimValue,
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
    { entries: Vec<u64>, preferences: Option<ClaimPreferences> }
}

/// What a family accepts in redeeming a claim, as its student signed it
/// (`claim_preferences_set`). Lists are distinct and ordered as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ClaimPreferences {
    /// Accepted subjects, most wanted first (1..=8 genesis subjects).
    pub subjects: Vec<Id>,
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
#[allow(missing_docs)]
pub struct Pledge {
    pub pledge: Id,
    pub institution: Id,
    pub subject: Id,
    pub grade_min: u64,
    pub grade_max: u64,
    pub district: Option<Id>,
    pub online: bool,
    pub seats: u64,
    pub lessons_per_seat: u64,
    pub value_per_lesson: Fen,
    pub valid_from_micros: u64,
    pub valid_until_micros: u64,
    /// The capacity and its parts.
    pub capacity: PledgeCapacity,
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
#[allow(missing_docs)]
pub enum AllocationStatus {
    Active,
    Expired,
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
#[allow(missing_docs)]
pub struct Allocation {
    pub allocation: Id,
    pub claim: Id,
    pub pledge: Id,
    pub student: Id,
    pub institution: Id,
    /// The lessons allocated (k) and their parts.
    pub lessons: AllocationLessons,
    pub value_per_lesson: Fen,
    pub status: AllocationStatus,
    pub expires_at_micros: u64,
    pub entries: Vec<u64>,
    /// The match run that made it, if any. Always serialized (as `null` when absent):
    /// the stored state is postcard, which has no field names and cannot skip one.
    pub run: Option<Id>,
}

flat_serde! {
    Allocation, AllocationRepr, AllocationRef, lessons: AllocationLessons, Lessons,
    { allocation: Id, claim: Id, pledge: Id, student: Id, institution: Id },
    { value_per_lesson: Fen },
    [consumed, pending, remaining, released],
    { status: AllocationStatus, expires_at_micros: u64, entries: Vec<u64>, run: Option<Id> }
}

/// A recorded match run (`match_run`): what it declared and how many of its allocations
/// have been recorded so far. Counters only: a run may make millions of allocations, and
/// listing each here would rewrite a growing object with every one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunRecord {
    pub run: Id,
    /// Index of the `match_run` entry.
    pub index: u64,
    pub params: super::run_params::RunParams,
    /// Allocations declared by the run.
    pub allocations: u64,
    /// Allocations naming the run recorded so far (never more than declared).
    pub made: u64,
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
#[allow(missing_docs)]
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
#[allow(missing_docs)]
pub enum LessonStatus {
    Pending,
    Disputed,
    Final,
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
#[allow(missing_docs)]
pub struct Lesson {
    pub lesson: Id,
    pub allocation: Id,
    pub status: LessonStatus,
    /// End of the confirmation window (proposals only).
    pub window_end_micros: Option<u64>,
    pub dispute: Option<Id>,
    pub entries: Vec<u64>,
}

/// Where a dispute is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum DisputeStatus {
    Open,
    Resolved(Outcome),
}

/// A dispute against a proposed lesson.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Dispute {
    pub dispute: Id,
    pub lesson: Id,
    pub raised_by: Id,
    pub reason: String,
    pub status: DisputeStatus,
    pub resolution: Option<String>,
    pub entries: Vec<u64>,
}

/// The claims of one student (bounded by `CLAIMS_PER_STUDENT_MAX`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct StudentIndex {
    pub student: Id,
    pub claims: Vec<Id>,
}

/// What a closed institution owes, kept as counters over its claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Liability {
    pub institution: Id,
    /// Distinct students holding a claim against it.
    pub students: u64,
    pub claims: u64,
    pub lessons_owed: Lessons,
    pub owed: Fen,
    /// Value of the claims' lessons consumed in the pool.
    pub made_good: Fen,
}

/// Totals over the whole pool, in fen. Pledge-side totals count approved pledges only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Pool {
    pub claims: u64,
    pub claims_value: Fen,
    pub claims_unreserved: Fen,
    pub claims_reserved: Fen,
    pub claims_consumed: Fen,
    pub pledges_approved: u64,
    pub pledged: Fen,
    pub available: Fen,
    pub reserved: Fen,
    pub delivered: Fen,
    pub withdrawn: Fen,
}

/// The record of an entry id (idempotency key) already used by its author. Entry ids are
/// scoped per author (the party of the entry's first registered signer), so one party
/// can never take an id another party will need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct EntryRecord {
    /// The state key: `<author>/<id>` (`/` is in no id, so the pair is unambiguous).
    pub key: String,
    pub author: Id,
    pub id: Id,
    pub index: u64,
    pub kind: String,
    /// BLAKE3 of the payload bytes, hex.
    pub payload_digest: String,
}
