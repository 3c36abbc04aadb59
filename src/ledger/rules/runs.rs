//! Rules of `match_run` (the operator records one run of the matcher) and of the `run`
//! field of `allocation_made`.
//!
//! A run declares its parameters, how many allocations it makes and a digest of its
//! plans; the allocations that follow name it. The rules check what can be checked
//! entry by entry — the operator's signature, a new run id, counts within limits, an
//! allocation naming a recorded run that still has room — and keep a counter per run.
//! Whether the allocations are *the matcher's* allocations is a question about the whole
//! run, answered by `verify`, which re-runs the matcher ([`crate::runs::RunAudit`]).

use super::Cx;
use crate::ledger::error::RuleError;
use crate::ledger::limits::{
    CLAIM_LESSONS_MAX, MATCH_RUN_ALLOCATIONS_MAX, PRICE_PER_LESSON_FEN_MAX,
};
use crate::ledger::objects::RunRecord;
use crate::ledger::payload::{MatchRun, Role};
use crate::ledger::state::StateView;
use crate::ledger::units::{is_digest_hex, Id};
use crate::matching::Fairness;

/// The largest first-pass cap that means anything: the largest claim's value.
const CAP_FEN_MAX: u64 = CLAIM_LESSONS_MAX * PRICE_PER_LESSON_FEN_MAX;

pub(super) fn match_run<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &MatchRun,
) -> Result<(), RuleError> {
    let run = Id::new("run", &p.run)?;
    if p.allocations > MATCH_RUN_ALLOCATIONS_MAX {
        return Err(RuleError::MatchRunTooLarge {
            allocations: p.allocations,
            max: MATCH_RUN_ALLOCATIONS_MAX,
        });
    }
    if !is_digest_hex(&p.plans_digest) {
        return Err(RuleError::PlansDigestInvalid);
    }
    if let Fairness::CappedFirstPass { cap_fen } = p.params.fairness {
        if !(1..=CAP_FEN_MAX).contains(&cap_fen.0) {
            return Err(RuleError::MatchParamsInvalid {
                detail: format!("cap_fen {} outside 1..={CAP_FEN_MAX}", cap_fen.0),
            });
        }
    }
    // A run states the date its inputs were read at; a date after its own recording
    // would let it use pledges not yet valid when it was written.
    if p.params.at_micros > cx.ctx.time_micros {
        return Err(RuleError::MatchRunInFuture {
            at: p.params.at_micros,
            time: cx.ctx.time_micros,
        });
    }
    cx.signers.require_role(Role::Operator)?;
    if cx.tx.find::<RunRecord>(run.as_str())?.is_some() {
        return Err(RuleError::MatchRunExists {
            run: run.to_string(),
        });
    }
    cx.tx.put(RunRecord {
        run,
        index: cx.ctx.index,
        params: p.params,
        allocations: p.allocations,
        made: 0,
        plans_digest: p.plans_digest.clone(),
    });
    Ok(())
}

/// Counts one allocation against the run it names: the run must be recorded and must
/// not have all its declared allocations already.
pub(super) fn count_allocation<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    run: &Id,
) -> Result<(), RuleError> {
    let mut record: RunRecord = cx.tx.need(run.as_str(), || RuleError::MatchRunUnknown {
        run: run.to_string(),
    })?;
    if record.made >= record.allocations {
        return Err(RuleError::MatchRunFull {
            run: run.to_string(),
            allocations: record.allocations,
        });
    }
    record.made += 1;
    cx.tx.put(record);
    Ok(())
}
