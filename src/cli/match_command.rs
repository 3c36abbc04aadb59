//! `lesson-ledger match`: runs the matcher on the ledger's open claims and approved
//! pledges and records its plans as `allocation_made` entries signed by the operator.

use std::collections::HashMap;

use serde_json::json;

use super::{CliError, MatchArgs};
use crate::ledger::objects::Party;
use crate::ledger::sled_state::SledState;
use crate::ledger::writer::Ledger;
use crate::ledger::{Table, Value, PAYLOAD_TYPE};
use crate::log::envelope::{verify_batch, Envelope, KeyCache};
use crate::log::keyfile;
use crate::log::note::{NoteSigner, NoteVerifier};
use crate::log::store::{layout, Outcome};
use crate::matching::{match_claims, ClaimInput, MatchParams, PledgeInput};

fn state_fault(e: impl std::fmt::Display) -> CliError {
    CliError::Key(format!("the ledger state could not be read: {e}"))
}

/// The matcher's inputs, read from the committed state: claims with value left,
/// every pledge (the matcher itself keeps the approved, valid, unbanned ones).
fn inputs(state: &SledState) -> Result<(Vec<ClaimInput>, Vec<PledgeInput>), CliError> {
    let mut parties: HashMap<String, Party> = HashMap::new();
    for item in state.scan(Table::Party) {
        if let (_, Value::Party(p)) = item.map_err(state_fault)? {
            parties.insert(p.party.to_string(), p);
        }
    }
    let mut claims = Vec::new();
    for item in state.scan(Table::Claim) {
        if let (_, Value::Claim(c)) = item.map_err(state_fault)? {
            if c.unreserved.0 > 0 {
                let closed_at = parties
                    .get(c.institution.as_str())
                    .and_then(|p| p.closed_at)
                    .unwrap_or(u64::MAX);
                claims.push(ClaimInput::from_claim(&c, closed_at));
            }
        }
    }
    let mut pledges = Vec::new();
    for item in state.scan(Table::Pledge) {
        if let (_, Value::Pledge(p)) = item.map_err(state_fault)? {
            let banned = parties
                .get(p.institution.as_str())
                .is_some_and(|i| i.banned_at.is_some());
            pledges.push(PledgeInput::from_pledge(&p, banned));
        }
    }
    Ok((claims, pledges))
}

/// `match`.
///
/// # Errors
/// Store faults; a matcher input over its limits; refused allocations (exit 3).
pub fn run_match(args: MatchArgs) -> Result<(), CliError> {
    let dir = &args.data.data;
    let (mut ledger, _) = Ledger::open(dir)?;
    let (claims, pledges) = inputs(ledger.state())?;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let params = MatchParams::at(at);
    let matching = match_claims(&claims, &pledges, &params)
        .map_err(|e| CliError::Usage(format!("matcher: {} ({})", e, e.code())))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "params": params, "report": matching.report }))
            .unwrap_or_default()
    );
    if args.dry_run {
        for plan in &matching.plans {
            println!(
                "{}",
                json!({"claim": plan.claim, "pledge": plan.pledge, "lessons": plan.lessons})
            );
        }
        return Ok(());
    }
    let verifier = NoteVerifier::from_vkey(&ledger.log().config().operator_vkey)
        .map_err(|e| CliError::Key(e.to_string()))?;
    let key = keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY))
        .map_err(|e| CliError::Key(e.to_string()))?;
    let operator = NoteSigner::new(verifier.name().clone(), key);
    let run = ledger.log().size();
    let envelopes: Vec<Envelope> = matching
        .plans
        .iter()
        .enumerate()
        .map(|(n, plan)| {
            let payload = json!({
                "kind": "allocation_made", "id": format!("match-{run}-{n}"), "allocation": format!("a-{run}-{n}"),
                "claim": plan.claim, "pledge": plan.pledge, "lessons": plan.lessons,
            });
            Envelope::sign(PAYLOAD_TYPE, payload.to_string().as_bytes(), &[&operator]).map_err(|e| CliError::Key(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let keys = KeyCache::self_certifying();
    let (mut made, mut refused) = (0usize, Vec::new());
    for chunk in envelopes.chunks(crate::limits::BATCH_ENTRIES_MAX) {
        let verified = verify_batch(chunk.to_vec(), &keys)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CliError::Key(e.to_string()))?;
        for outcome in ledger.submit(verified)? {
            match outcome {
                Outcome::Ok(_) | Outcome::Exists(_) => made += 1,
                Outcome::Refused(e) => refused.push(e.code()),
                Outcome::ExistsWithDifferentPayload { .. } => {
                    refused.push("exists_with_different_payload")
                }
            }
        }
    }
    ledger.close()?;
    eprintln!("recorded {made} allocations ({} refused)", refused.len());
    if !refused.is_empty() {
        return Err(CliError::Refused {
            refused: refused.len(),
            total: envelopes.len(),
        });
    }
    Ok(())
}
