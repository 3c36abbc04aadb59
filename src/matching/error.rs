//! The matcher's one error type: input that the ledger could not have produced.

use crate::ledger::limits::{GRADE_MAX, GRADE_MIN};

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
