//! [`Entry`]: one parsed entry payload, of any kind, and what every kind has (its
//! `kind`, `id` and `ledger`). Re-exported by [`super`].

use super::{
    AllocationMade, AllocationRef, ClaimPreferencesSet, ClaimRecorded, DisputeResolved, Genesis,
    InstitutionStatus, KeyRecovered, KeyRevoked, KeyRotated, LessonDisputed, LessonOnAllocation,
    LessonRef, MatchRun, MatchRunClosed, PartyRegistered, PledgeOffered, PledgeRef,
    PledgeWithdrawn, TimeAttested,
};

/// One parsed entry payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Entry 0: the ledger's parameters.
    Genesis(Genesis),
    /// `party_registered`.
    PartyRegistered(PartyRegistered),
    /// `key_rotated`.
    KeyRotated(KeyRotated),
    /// `key_revoked`.
    KeyRevoked(KeyRevoked),
    /// `key_recovered`.
    KeyRecovered(KeyRecovered),
    /// `institution_closed`.
    InstitutionClosed(InstitutionStatus),
    /// `institution_whitelisted`.
    InstitutionWhitelisted(InstitutionStatus),
    /// `institution_blacklisted`.
    InstitutionBlacklisted(InstitutionStatus),
    /// `claim_recorded`.
    ClaimRecorded(ClaimRecorded),
    /// `claim_preferences_set`.
    ClaimPreferencesSet(ClaimPreferencesSet),
    /// `pledge_offered`.
    PledgeOffered(PledgeOffered),
    /// `pledge_approved`.
    PledgeApproved(PledgeRef),
    /// `pledge_withdrawn`.
    PledgeWithdrawn(PledgeWithdrawn),
    /// `allocation_made`.
    AllocationMade(AllocationMade),
    /// `match_run`.
    MatchRun(MatchRun),
    /// `match_run_closed`.
    MatchRunClosed(MatchRunClosed),
    /// `time_attested`.
    TimeAttested(TimeAttested),
    /// `allocation_expired`.
    AllocationExpired(AllocationRef),
    /// `allocation_declined`.
    AllocationDeclined(AllocationRef),
    /// `lesson_consumed`.
    LessonConsumed(LessonOnAllocation),
    /// `lesson_proposed`.
    LessonProposed(LessonOnAllocation),
    /// `lesson_confirmed`.
    LessonConfirmed(LessonRef),
    /// `lesson_disputed`.
    LessonDisputed(LessonDisputed),
    /// `lesson_deemed_confirmed`.
    LessonDeemedConfirmed(LessonRef),
    /// `dispute_resolved`.
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
