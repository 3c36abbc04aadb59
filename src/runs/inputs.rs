//! The matcher's inputs read from a ledger state: claims with value left, and the pledges
//! eligible at the match date — approved, valid at the date, with a lesson left, from an
//! institution neither banned nor closed.
//!
//! One function for the live state and the replayed one, so that `verify` re-runs a
//! match on exactly the inputs the run read. Pledges are filtered *here*, before the
//! matcher counts them against [`MATCH_PLEDGES_MAX`](crate::matching::MATCH_PLEDGES_MAX):
//! otherwise one institution offering pledges it never gets approved (a signature of
//! its own each) would make every run refuse its input (`too_many_pledges`).

use std::collections::HashMap;

use crate::ledger::objects::{Party, Pledge};
use crate::ledger::{RuleError, Table, TableScan, Value};
use crate::matching::{ClaimInput, PledgeInput};

/// Whether `pledge` may be matched at `at_micros`: approved, valid at the date, a lesson
/// left, and its institution neither banned nor closed (as `allocation_made` requires).
#[must_use]
pub fn eligible(pledge: &Pledge, institution: Option<&Party>, at_micros: u64) -> bool {
    let active = institution.is_some_and(|i| i.banned_at.is_none() && i.closed_at.is_none());
    active
        && pledge.approved_at.is_some()
        && (pledge.valid_from_micros..pledge.valid_until_micros).contains(&at_micros)
        && pledge.capacity.available().0 > 0
}

/// Claims with unreserved value and the pledges [`eligible`] at `at_micros`, read from
/// `state`.
///
/// A claim's `closed_at` is its institution's closure entry (claims can only be recorded
/// against a closed institution, so it is always there; a claim without one is a
/// corrupt state, not a claim to serve last).
///
/// # Errors
/// `state_corrupt`: a claim against an institution that is not closed.
pub fn inputs<S: TableScan + ?Sized>(
    state: &S,
    at_micros: u64,
) -> Result<(Vec<ClaimInput>, Vec<PledgeInput>), RuleError> {
    let mut parties: HashMap<String, Party> = HashMap::new();
    for value in state.scan_table(Table::Party) {
        if let Value::Party(p) = value {
            parties.insert(p.party.to_string(), *p);
        }
    }
    let mut claims = Vec::new();
    for value in state.scan_table(Table::Claim) {
        if let Value::Claim(c) = value {
            if c.value.unreserved().0 > 0 {
                let closed_at = parties
                    .get(c.institution.as_str())
                    .and_then(|p| p.closed_at)
                    .ok_or_else(|| RuleError::StateCorrupt {
                        detail: format!(
                            "claim {} against {}, which is not closed",
                            c.claim, c.institution
                        ),
                    })?;
                claims.push(ClaimInput::from_claim(&c, closed_at));
            }
        }
    }
    let mut pledges = Vec::new();
    for value in state.scan_table(Table::Pledge) {
        if let Value::Pledge(p) = value {
            if eligible(&p, parties.get(p.institution.as_str()), at_micros) {
                pledges.push(PledgeInput::from_pledge(&p, false));
            }
        }
    }
    Ok((claims, pledges))
}
