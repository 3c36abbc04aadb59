//! The matcher's inputs read from a ledger state: claims with value left, and every
//! pledge (the matcher itself keeps the approved, valid, unbanned ones).
//!
//! One function for the live state and the replayed one, so that `verify` re-runs a
//! match on exactly the inputs the run read.

use std::collections::HashMap;

use crate::ledger::objects::Party;
use crate::ledger::{RuleError, Table, TableScan, Value};
use crate::matching::{ClaimInput, PledgeInput};

/// Claims with unreserved value and every pledge, read from `state`.
///
/// A claim's `closed_at` is its institution's closure entry (claims can only be recorded
/// against a closed institution, so it is always there); a pledge is `banned` when its
/// institution is black-listed or closed, as `allocation_made` refuses both.
///
/// # Errors
/// The store's faults (`state_unavailable`, `state_corrupt`).
pub fn inputs<S: TableScan + ?Sized>(
    state: &S,
) -> Result<(Vec<ClaimInput>, Vec<PledgeInput>), RuleError> {
    let mut parties: HashMap<String, Party> = HashMap::new();
    for value in state.scan_table(Table::Party) {
        if let Value::Party(p) = value? {
            parties.insert(p.party.to_string(), *p);
        }
    }
    let mut claims = Vec::new();
    for value in state.scan_table(Table::Claim) {
        if let Value::Claim(c) = value? {
            if c.value.unreserved().0 > 0 {
                let closed_at = parties
                    .get(c.institution.as_str())
                    .and_then(|p| p.closed_at)
                    .unwrap_or(u64::MAX);
                claims.push(ClaimInput::from_claim(&c, closed_at));
            }
        }
    }
    let mut pledges = Vec::new();
    for value in state.scan_table(Table::Pledge) {
        if let Value::Pledge(p) = value? {
            let banned = parties
                .get(p.institution.as_str())
                .is_some_and(|i| i.banned_at.is_some() || i.closed_at.is_some());
            pledges.push(PledgeInput::from_pledge(&p, banned));
        }
    }
    Ok((claims, pledges))
}
