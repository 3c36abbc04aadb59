//! The one conversion between the parameters the ledger records
//! ([`RunParams`]) and the ones the matcher reads ([`MatchParams`]).
//!
//! Both matches are exhaustive: a matcher field or policy the ledger cannot record stops
//! the build here instead of silently changing the signed `match_run` payload, the
//! stored run record or the state map.

use crate::ledger::run_params::{RunFairness, RunParams};
use crate::matching::{Fairness, MatchParams};

impl From<MatchParams> for RunParams {
    fn from(p: MatchParams) -> RunParams {
        let MatchParams {
            at_micros,
            fairness,
        } = p;
        let fairness = match fairness {
            Fairness::None => RunFairness::None,
            Fairness::CappedFirstPass { cap_fen } => RunFairness::CappedFirstPass { cap_fen },
        };
        RunParams {
            at_micros,
            fairness,
        }
    }
}

impl From<RunParams> for MatchParams {
    fn from(p: RunParams) -> MatchParams {
        let RunParams {
            at_micros,
            fairness,
        } = p;
        let fairness = match fairness {
            RunFairness::None => Fairness::None,
            RunFairness::CappedFirstPass { cap_fen } => Fairness::CappedFirstPass { cap_fen },
        };
        MatchParams {
            at_micros,
            fairness,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Fen;

    #[test]
    fn parameters_survive_the_round_trip_through_the_ledger_unchanged() {
        for params in [
            MatchParams::at(42),
            MatchParams {
                at_micros: 7,
                fairness: Fairness::None,
            },
            MatchParams {
                at_micros: u64::MAX,
                fairness: Fairness::CappedFirstPass { cap_fen: Fen(1) },
            },
        ] {
            let recorded = RunParams::from(params);
            assert_eq!(MatchParams::from(recorded), params);
            // The ledger records exactly what the matcher's parameters serialize to.
            assert_eq!(
                serde_json::to_value(recorded).unwrap(),
                serde_json::to_value(params).unwrap()
            );
            assert_eq!(
                postcard::to_allocvec(&recorded).unwrap(),
                postcard::to_allocvec(&params).unwrap()
            );
        }
    }
}
