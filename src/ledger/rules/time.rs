//! Ledger time the associations attest (`time_attested`), and the deadlines measured on
//! it: a confirmation window ends, and an allocation expires, only once an association
//! has attested a time past the deadline — the operator's clock alone ends neither.
//!
//! Why this is enough: an attestation may not be ahead of the ledger time of its own
//! entry (`time_attested_in_future`), and ledger time strictly increases; so every entry
//! after an attestation is dated after the attested time. The operator can therefore
//! neither back-date a proposal or an allocation to before the latest attestation (at
//! most to just after it: the shortening is bounded by the time since the last
//! attestation), nor end a deadline early by running its clock fast (the attested clock
//! does not follow). An operator holding its clock back only gets attestations refused,
//! which ends no deadline: that fails safe for the families.

use super::Cx;
use crate::ledger::error::RuleError;
use crate::ledger::objects::AttestedClock;
use crate::ledger::payload::{Role, TimeAttested};
use crate::ledger::state::{StateView, CLOCK_ID};

/// `time_attested`: a consumer association's signature over the time on its clock; it
/// must not go backwards and must not be after the entry's ledger time.
pub(super) fn time_attested<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &TimeAttested,
) -> Result<(), RuleError> {
    if p.at_micros > cx.ctx.time_micros {
        return Err(RuleError::TimeAttestedInFuture {
            at: p.at_micros,
            time: cx.ctx.time_micros,
        });
    }
    let by = cx.signers.require_role(Role::Association)?;
    let latest = attested(cx)?;
    if p.at_micros <= latest {
        return Err(RuleError::TimeAttestedBackwards {
            at: p.at_micros,
            latest,
        });
    }
    cx.tx.put(AttestedClock {
        at_micros: p.at_micros,
        by,
        index: cx.ctx.index,
    });
    Ok(())
}

/// The latest attested time (0 before any attestation).
fn attested<V: StateView + ?Sized>(cx: &Cx<'_, '_, V>) -> Result<u64, RuleError> {
    Ok(cx
        .tx
        .find::<AttestedClock>(CLOCK_ID)?
        .map_or(0, |c| c.at_micros))
}

/// Whether both clocks have passed `deadline`: the entry's ledger time and the latest
/// attested time.
pub(super) fn passed<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    deadline: u64,
) -> Result<bool, RuleError> {
    Ok(cx.ctx.time_micros >= deadline && attested(cx)? >= deadline)
}

/// Refuses unless an association has attested a time at or past `deadline` (the ledger
/// time is checked by the caller, with its own error).
pub(super) fn require_attested<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    what: &'static str,
    deadline: u64,
) -> Result<(), RuleError> {
    let attested = attested(cx)?;
    if attested < deadline {
        return Err(RuleError::DeadlineNotAttested {
            what,
            deadline,
            attested,
        });
    }
    Ok(())
}
