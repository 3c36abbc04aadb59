//! The parameters of a match run as the ledger records them: in the signed `match_run`
//! payload and in the stored run record (so in the state map too).
//!
//! The ledger owns this type rather than borrowing the matcher's `MatchParams`: renaming
//! or adding a matcher field must never silently change an entry schema, the stored state
//! or its digest. `src/runs/` converts between the two, with exhaustive matches, so a
//! matcher change that the ledger cannot record fails to compile there.
//!
//! The serde shape is the published one (`schemas/entries/match_run.schema.json`,
//! `params`): `{"at_micros": u64, "fairness": "none" | {"capped_first_pass": {"cap_fen": u64}}}`.
//! The field and variant order is part of the postcard encoding of the stored record.

use serde::{Deserialize, Serialize};

use super::units::Fen;

/// The fairness policy a run was made under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RunFairness {
    /// Maximum value only; ties in claim order.
    None,
    /// Every claim first up to `cap_fen` (at least one lesson), then the rest.
    CappedFirstPass {
        /// The first-pass share per claim.
        cap_fen: Fen,
    },
}

/// Every parameter a run's output depends on, recorded with the run so that `verify`
/// can re-run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// Ledger time of the run: pledges must be valid at it.
    pub at_micros: u64,
    /// The fairness policy.
    pub fairness: RunFairness,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_parameters_keep_the_published_json_shape() {
        let capped = RunParams {
            at_micros: 5,
            fairness: RunFairness::CappedFirstPass { cap_fen: Fen(7) },
        };
        let text = r#"{"at_micros":5,"fairness":{"capped_first_pass":{"cap_fen":7}}}"#;
        assert_eq!(serde_json::to_string(&capped).unwrap(), text);
        assert_eq!(serde_json::from_str::<RunParams>(text).unwrap(), capped);
        let none = r#"{"at_micros":5,"fairness":"none"}"#;
        let plain = RunParams {
            at_micros: 5,
            fairness: RunFairness::None,
        };
        assert_eq!(serde_json::to_string(&plain).unwrap(), none);
        for bad in [
            r#"{"at_micros":5,"fairness":"none","extra":1}"#,
            r#"{"at_micros":5,"fairness":{"capped_first_pass":{"cap_fen":7,"x":1}}}"#,
            r#"{"at_micros":5,"fairness":"capped"}"#,
        ] {
            assert!(serde_json::from_str::<RunParams>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_stored_encoding_is_the_one_records_were_written_with() {
        // postcard: at_micros varint, variant index varint, cap_fen varint.
        let capped = RunParams {
            at_micros: 5,
            fairness: RunFairness::CappedFirstPass { cap_fen: Fen(7) },
        };
        assert_eq!(postcard::to_allocvec(&capped).unwrap(), [5, 1, 7]);
        let plain = RunParams {
            at_micros: 300,
            fairness: RunFairness::None,
        };
        assert_eq!(postcard::to_allocvec(&plain).unwrap(), [0xac, 0x02, 0]);
    }
}
