//! `lesson-ledger match`: runs the matcher on the ledger's open claims and approved
//! pledges and records the run — a `match_run` entry, then its `allocation_made` entries —
//! signed by the operator (see [`crate::runs::record`]); `--dry-run` prints the plans.

use serde_json::json;

use super::{CliError, MatchArgs};
use crate::ledger::writer::Ledger;
use crate::runs::{operator_signer, run_match, RunError};

impl From<RunError> for CliError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Ledger(e) => CliError::Ledger(e),
            RunError::Log(e) => CliError::Log(e),
            RunError::Matcher(e) => CliError::Usage(format!("matcher: {e} ({})", e.code())),
            other => CliError::Run(other),
        }
    }
}

/// `match`.
///
/// # Errors
/// Store faults; a matcher input over its limits; a refused entry (exit 3).
pub fn run_match_command(args: MatchArgs) -> Result<(), CliError> {
    let dir = &args.data.data;
    let (mut ledger, _) = Ledger::open(dir)?;
    let operator = if args.dry_run {
        None
    } else {
        Some(operator_signer(dir, &ledger.log().verifier().to_vkey())?)
    };
    let outcome = run_match(&mut ledger, operator.as_ref(), args.dry_run);
    ledger.close()?;
    let outcome = outcome?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "run": outcome.run, "params": outcome.params, "report": outcome.report,
            "allocations": outcome.allocations, "first_index": outcome.first_index,
        }))
        .unwrap_or_default()
    );
    for plan in outcome.plans.iter().flatten() {
        println!(
            "{}",
            json!({"claim": plan.claim, "pledge": plan.pledge, "lessons": plan.lessons})
        );
    }
    if let Some(run) = &outcome.run {
        eprintln!(
            "recorded run {run} with {} allocations",
            outcome.allocations
        );
    }
    Ok(())
}
