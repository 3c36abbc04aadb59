//! The ledger commands: balances and reports, each printed as JSON together with the
//! entries it derives from.

use serde_json::{json, Value};

use super::{BalanceArgs, CliError, ReportArgs};
use crate::ledger::error::RuleError;
use crate::ledger::queries;
use crate::ledger::writer::Ledger;

fn fault(e: RuleError) -> CliError {
    CliError::Ledger(crate::ledger::writer::LedgerError::StateFault(e))
}

/// The entries a balance derives from: index, entry id, leaf hash and payload.
fn entries(ledger: &Ledger, indexes: &[u64]) -> Result<Vec<Value>, CliError> {
    indexes
        .iter()
        .map(|&i| {
            let leaf = ledger.log().entry(i)?;
            let payload: Value =
                serde_json::from_slice(leaf.envelope.payload()).unwrap_or(Value::Null);
            Ok(json!({
                "index": i,
                "time_micros": leaf.time_micros,
                "entry_id": leaf.envelope.entry_id().to_string(),
                "leaf_hash": ledger.log().leaf_hash_at(i)?.to_base64(),
                "payload": payload,
            }))
        })
        .collect()
}

fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// `balance`.
///
/// # Errors
/// [`CliError::NotFound`] for an unknown id; store faults.
pub fn balance(args: BalanceArgs) -> Result<(), CliError> {
    let (ledger, _) = Ledger::open(&args.data.data)?;
    let state = ledger.state();
    let t = args.target;
    let (balance, indexes) = if let Some(id) = &t.claim {
        let b = queries::claim_balance(state, id)
            .map_err(fault)?
            .ok_or_else(|| CliError::NotFound {
                what: "claim",
                id: id.clone(),
            })?;
        let idx = b.entries.clone();
        (serde_json::to_value(b).unwrap_or_default(), idx)
    } else if let Some(id) = &t.pledge {
        let b = queries::pledge_balance(state, id)
            .map_err(fault)?
            .ok_or_else(|| CliError::NotFound {
                what: "pledge",
                id: id.clone(),
            })?;
        let idx = b.entries.clone();
        (serde_json::to_value(b).unwrap_or_default(), idx)
    } else if let Some(id) = &t.allocation {
        let b = queries::allocation_balance(state, id)
            .map_err(fault)?
            .ok_or_else(|| CliError::NotFound {
                what: "allocation",
                id: id.clone(),
            })?;
        let idx = b.entries.clone();
        (serde_json::to_value(b).unwrap_or_default(), idx)
    } else if let Some(id) = &t.student {
        let b = queries::student_summary(state, id)
            .map_err(fault)?
            .ok_or_else(|| CliError::NotFound {
                what: "student",
                id: id.clone(),
            })?;
        let mut idx: Vec<u64> = b
            .claims
            .iter()
            .flat_map(|c| c.entries.iter().copied())
            .collect();
        idx.sort_unstable();
        idx.dedup();
        (serde_json::to_value(b).unwrap_or_default(), idx)
    } else {
        return Err(CliError::Usage(
            "give --claim, --pledge, --allocation or --student".into(),
        ));
    };
    let out = json!({
        "balance": balance,
        "entries": entries(&ledger, &indexes)?,
        "checkpoint": ledger.log().checkpoint().text(),
        "state_root": crate::ledger::units::hex(&state.root()),
    });
    print(&out);
    Ok(())
}

/// `report`.
///
/// # Errors
/// [`CliError::NotFound`] for an unknown institution; store faults.
pub fn report(args: ReportArgs) -> Result<(), CliError> {
    let (ledger, _) = Ledger::open(&args.data.data)?;
    let state = ledger.state();
    let out = if let Some(id) = &args.target.institution {
        let r = queries::institution_report(state, id)
            .map_err(fault)?
            .ok_or_else(|| CliError::NotFound {
                what: "institution",
                id: id.clone(),
            })?;
        json!({ "institution_report": r, "checkpoint": ledger.log().checkpoint().text() })
    } else {
        let pool = queries::pool_totals(state).map_err(fault)?;
        json!({ "pool": pool, "checkpoint": ledger.log().checkpoint().text() })
    };
    print(&out);
    Ok(())
}
