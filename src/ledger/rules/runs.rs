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
use crate::ledger::payload::{MatchRun, MatchRunClosed, Role};
use crate::ledger::run_params::RunFairness;
use crate::ledger::state::StateView;
use crate::ledger::units::{is_digest_hex, Id};

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
    if let RunFairness::CappedFirstPass { cap_fen } = p.params.fairness {
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
        closed_at: None,
    });
    Ok(())
}

/// `match_run_closed`: the operator ends a run that still expects allocations. What was
/// recorded stays (each allocation is valid on its own, and `verify` checks them as the
/// first plans of the re-run); nothing more may name the run.
pub(super) fn match_run_closed<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &MatchRunClosed,
) -> Result<(), RuleError> {
    let run = Id::new("run", &p.run)?;
    cx.signers.require_role(Role::Operator)?;
    let mut record: RunRecord = cx.tx.need(run.as_str(), || RuleError::MatchRunUnknown {
        run: run.to_string(),
    })?;
    if record.closed_at.is_some() {
        return Err(RuleError::MatchRunClosed {
            run: run.to_string(),
        });
    }
    if record.made >= record.allocations {
        return Err(RuleError::MatchRunComplete {
            run: run.to_string(),
        });
    }
    record.closed_at = Some(cx.ctx.index);
    cx.tx.put(record);
    Ok(())
}

/// Counts one allocation against the run it names: the run must be recorded, not
/// closed, must not have all its declared allocations already, and the allocation must
/// be the next one ([`RunRecord::allocation_id`]): a run's allocations are recorded in
/// plan order without a hole, so a refused one stops every later one of its batch.
pub(super) fn count_allocation<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    run: &Id,
    allocation: &Id,
) -> Result<(), RuleError> {
    let mut record: RunRecord = cx.tx.need(run.as_str(), || RuleError::MatchRunUnknown {
        run: run.to_string(),
    })?;
    if record.closed_at.is_some() {
        return Err(RuleError::MatchRunClosed {
            run: run.to_string(),
        });
    }
    if record.made >= record.allocations {
        return Err(RuleError::MatchRunFull {
            run: run.to_string(),
            allocations: record.allocations,
        });
    }
    let expected = RunRecord::allocation_id(run.as_str(), record.made);
    if allocation.as_str() != expected {
        return Err(RuleError::MatchRunOutOfOrder {
            run: run.to_string(),
            expected,
            found: allocation.to_string(),
        });
    }
    record.made += 1;
    cx.tx.put(record);
    Ok(())
}
