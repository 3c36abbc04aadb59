//! The matcher's one error type: input that the ledger could not have produced.

use crate::ledger::limits::{GRADE_MAX, GRADE_MIN};

/// Errors of the matcher: input that the ledger could not have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// Code `too_many_claims`: `count` claims exceed the cap of `max` per match run.
    #[error("{count} claims exceed the cap of {max} per match run")]
    TooManyClaims {
        /// How many the input holds.
        count: usize,
        /// Most claims a run takes.
        max: usize,
    },
    /// Code `too_many_pledges`: `count` pledges exceed the cap of `max` per match run.
    #[error("{count} pledges exceed the cap of {max} per match run")]
    TooManyPledges {
        /// How many the input holds.
        count: usize,
        /// Most pledges a run takes.
        max: usize,
    },
    /// Code `too_many_districts`: `count` distinct districts exceed the cap of `max`.
    #[error("{count} distinct districts exceed the cap of {max}")]
    TooManyDistricts {
        /// How many the input holds.
        count: usize,
        /// Most distinct districts a run takes.
        max: usize,
    },
    /// Code `duplicate_claim`: claim `claim` appears twice.
    #[error("claim {claim} appears twice")]
    DuplicateClaim {
        /// Id of the claim.
        claim: String,
    },
    /// Code `duplicate_pledge`: pledge `pledge` appears twice.
    #[error("pledge {pledge} appears twice")]
    DuplicatePledge {
        /// Id of the pledge.
        pledge: String,
    },
    /// Code `grade_out_of_range`: `what` `id`: grade `grade` outside `GRADE_MIN`..=`GRADE_MAX`.
    #[error("{what} {id}: grade {grade} outside {GRADE_MIN}..={GRADE_MAX}")]
    GradeOutOfRange {
        /// What it is (`claim` or `pledge`).
        what: &'static str,
        /// Its id.
        id: String,
        /// The grade given.
        grade: u64,
    },
    /// Code `unreserved_out_of_range`: claim `claim`: unreserved `value` fen above the cap of `max`.
    #[error("claim {claim}: unreserved {value} fen above the cap of {max}")]
    UnreservedOutOfRange {
        /// Id of the claim.
        claim: String,
        /// The unreserved value, in fen.
        value: u64,
        /// Most a claim may be worth, in fen.
        max: u64,
    },
    /// Code `pledge_value_out_of_range`: pledge `pledge`: value per lesson `value` fen outside 1..=`max`.
    #[error("pledge {pledge}: value per lesson {value} fen outside 1..={max}")]
    PledgeValueOutOfRange {
        /// Id of the pledge.
        pledge: String,
        /// The value per lesson, in fen.
        value: u64,
        /// Highest value per lesson, in fen.
        max: u64,
    },
    /// Code `pledge_lessons_out_of_range`: pledge `pledge`: `field` `value` outside `min`..=`max`.
    #[error("pledge {pledge}: {field} {value} outside {min}..={max}")]
    PledgeLessonsOutOfRange {
        /// Id of the pledge.
        pledge: String,
        /// Which field (`lessons_per_seat` or `available_lessons`).
        field: &'static str,
        /// The value given.
        value: u64,
        /// Lowest value allowed.
        min: u64,
        /// Highest value allowed.
        max: u64,
    },
    /// Code `overflow`: arithmetic overflow in `what`.
    #[error("arithmetic overflow in {what}")]
    Overflow {
        /// The quantity being computed.
        what: &'static str,
    },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_stable() {
        let e = MatchError::Overflow { what: "x" };
        assert_eq!(e.code(), "overflow");
        let e = MatchError::DuplicateClaim { claim: "c".into() };
        assert_eq!(e.code(), "duplicate_claim");
    }
}
