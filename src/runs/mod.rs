//! Match runs in the log: the seam between the ledger and the matcher (issue 5).
//!
//! The matcher ([`crate::matching`]) is a pure function and knows nothing of the log.
//! This module gives it a place in the log:
//! - [`inputs`](mod@inputs): the matcher's inputs read from a state, live ([`SledState`]) or
//!   replayed ([`MemoryState`]), through one function ([`inputs::inputs`]);
//! - [`record`]: the one function that runs the matcher on a ledger and records the run
//!   — a `match_run` entry, then one `allocation_made` per plan, all signed by the
//!   operator — used by `lesson-ledger match` and by `POST /v1/match`;
//! - [`audit`]: what `verify` does at each recorded run: the same inputs from the
//!   replayed state at that point, the matcher again with the recorded parameters, and
//!   the run's allocations compared with the plans one by one;
//! - [`replay`]: the auditor's replay of the whole log into a fresh state, which calls
//!   [`audit`] at each run (it sees both the ledger and the runs, so it lives here);
//! - [`params`]: the conversion between the parameters the ledger records
//!   ([`RunParams`](crate::ledger::run_params::RunParams)) and the matcher's.
//!
//! # The plans digest
//! A `match_run` carries `plans_digest`, the BLAKE3 hash (lowercase hex) of
//!
//! ```text
//! "lesson-ledger/match-plans/v1\n" || for each plan, in order: claim SP pledge SP lessons LF
//! ```
//!
//! ids as they are (their alphabet has no space or newline), `lessons` in decimal.
//!
//! ```
//! use lesson_ledger::runs::plans_digest;
//! let empty = plans_digest(std::iter::empty());
//! assert_eq!(empty, blake3::hash(b"lesson-ledger/match-plans/v1\n").to_hex().to_string());
//! assert_ne!(plans_digest([("c-1", "p-1", 3)]), empty);
//! ```
//!
//! [`SledState`]: crate::ledger::sled_state::SledState
//! [`MemoryState`]: crate::ledger::MemoryState

pub mod audit;
pub mod inputs;
pub mod params;
pub mod record;
pub mod replay;

pub use audit::{RunAudit, RunDivergence};
pub use inputs::inputs;
pub use record::{
    close_open_runs, close_runs_left_open, open_runs, operator_signer, run_match, RunError,
    RunOutcome, RunWriter,
};

/// First line of the plans' canonical encoding: names the format and its version.
pub const PLANS_DIGEST_CONTEXT: &[u8] = b"lesson-ledger/match-plans/v1\n";

/// The digest of a plan list, `(claim, pledge, lessons)` in order (see the module docs).
pub fn plans_digest<'a>(plans: impl IntoIterator<Item = (&'a str, &'a str, u64)>) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(PLANS_DIGEST_CONTEXT);
    for (claim, pledge, lessons) in plans {
        hasher.update(claim.as_bytes());
        hasher.update(b" ");
        hasher.update(pledge.as_bytes());
        hasher.update(b" ");
        hasher.update(lessons.to_string().as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
}

/// The digest of the matcher's plans.
pub fn digest_of(plans: &[crate::matching::AllocationPlan]) -> String {
    plans_digest(
        plans
            .iter()
            .map(|p| (p.claim.as_str(), p.pledge.as_str(), p.lessons.0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_covers_every_field_and_the_order() {
        let base = plans_digest([("c-1", "p-1", 3), ("c-2", "p-1", 1)]);
        for other in [
            plans_digest([("c-2", "p-1", 1), ("c-1", "p-1", 3)]),
            plans_digest([("c-1", "p-2", 3), ("c-2", "p-1", 1)]),
            plans_digest([("c-1", "p-1", 4), ("c-2", "p-1", 1)]),
            plans_digest([("c-1", "p-1", 3)]),
            // No ambiguity where one field ends: the separator is outside the id alphabet.
            plans_digest([("c-1", "p-13", 1), ("c-2", "p-1", 1)]),
        ] {
            assert_ne!(base, other);
        }
        let expected = blake3::hash(b"lesson-ledger/match-plans/v1\nc-1 p-1 3\nc-2 p-1 1\n");
        assert_eq!(base, expected.to_hex().to_string());
    }

    #[test]
    fn the_published_example_names_the_digest_of_its_one_plan() {
        let example: serde_json::Value = serde_json::from_str(include_str!(
            "../../schemas/examples/entries/match_run.json"
        ))
        .unwrap();
        assert_eq!(
            example["plans_digest"],
            plans_digest([("c-0001", "p-0001", 10)]),
            "schemas/examples/entries/match_run.json: one plan, as allocation_made.json"
        );
    }
}
