//! Running the matcher on a ledger and recording the run: the one function behind
//! `lesson-ledger match` and `POST /v1/match`.
//!
//! [`run_match`] reads the inputs from the ledger's committed state, runs the matcher at
//! the ledger's current time, and — unless it is a dry run — appends a `match_run` entry
//! followed by one `allocation_made` per plan (each naming the run), all signed by the
//! operator, in batches of at most [`BATCH_ENTRIES_MAX`]. The caller guarantees, through
//! [`RunWriter`], that nothing else is written between the read and the last batch: the
//! CLI holds the ledger alone; the HTTP service runs this on its one writer thread.
//!
//! Ids: the run is `run-<n>`, its entry `match-<n>`, plan `i`'s entry `match-<n>-<i>` and
//! allocation `a-<n>-<i>`, where `<n>` is the log size when the run read the state (one
//! run per size: every recorded run grows the log).

use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::ledger::writer::{Ledger, LedgerError};
use crate::ledger::{RuleError, PAYLOAD_TYPE};
use crate::limits::BATCH_ENTRIES_MAX;
use crate::log::envelope::{verify_batch, Envelope, EnvelopeError, KeyCache, VerifiedEnvelope};
use crate::log::keyfile;
use crate::log::note::{NoteSigner, NoteVerifier};
use crate::log::store::{layout, LogError, Outcome};
use crate::matching::{
    match_claims, AllocationPlan, MatchError, MatchParams, MatchReport, Matching,
};

/// Where a run reads and writes: the ledger, with no other writer between the read and
/// the run's last entry.
pub trait RunWriter {
    /// Runs `f` on the ledger as it stands now.
    fn read<T>(&self, f: impl FnOnce(&Ledger) -> T) -> T;

    /// Appends one batch (see [`Ledger::submit`]).
    ///
    /// # Errors
    /// As [`Ledger::submit`].
    fn submit(
        &mut self,
        batch: Vec<VerifiedEnvelope>,
    ) -> Result<Vec<Outcome<RuleError>>, LedgerError>;
}

/// A ledger held alone (the CLI).
impl RunWriter for Ledger {
    fn read<T>(&self, f: impl FnOnce(&Ledger) -> T) -> T {
        f(self)
    }

    fn submit(
        &mut self,
        batch: Vec<VerifiedEnvelope>,
    ) -> Result<Vec<Outcome<RuleError>>, LedgerError> {
        Ledger::submit(self, batch)
    }
}

/// Why a run could not be made or recorded.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the ledger state could not be read: {0}")]
    State(RuleError),
    #[error("the matcher refused its input: {0}")]
    Matcher(#[from] MatchError),
    #[error("the operator key: {0}")]
    Key(String),
    #[error("signing the run's entries: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{planned} plans exceed the {max} allocations a run may declare")]
    TooLarge { planned: u64, max: u64 },
    /// An entry of the run was refused; `recorded` of its entries (up to the end of
    /// that batch) are in the log.
    #[error("entry {position} of run {run} was refused ({code}): {detail}; {recorded} of its entries are recorded")]
    Refused {
        run: String,
        position: usize,
        code: &'static str,
        detail: String,
        recorded: u64,
    },
}

impl RunError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::State(e) => e.code(),
            RunError::Matcher(e) => e.code(),
            RunError::Key(_) => "operator_key_unusable",
            RunError::Envelope(e) => e.code(),
            RunError::Ledger(e) => e.code(),
            RunError::Log(e) => e.code(),
            RunError::TooLarge { .. } => "match_run_too_large",
            RunError::Refused { code, .. } => code,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// The run id; `None` for a dry run.
    pub run: Option<String>,
    pub params: MatchParams,
    pub report: MatchReport,
    /// A dry run's plans, what it would allocate; `None` once recorded (they are in the
    /// log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plans: Option<Vec<AllocationPlan>>,
    /// Allocations recorded (0 for a dry run).
    pub allocations: u64,
    /// Index of the `match_run` entry; `None` for a dry run.
    pub first_index: Option<u64>,
    /// The operator-signed checkpoint after the run (before it, for a dry run).
    pub checkpoint: String,
}

/// The operator's signer, from the key file beside the log, checked against the key the
/// log was created with.
///
/// # Errors
/// [`RunError::Key`]: no key file, unreadable, or another key than the log's.
pub fn operator_signer(dir: &Path, operator_vkey: &str) -> Result<NoteSigner, RunError> {
    let verifier =
        NoteVerifier::from_vkey(operator_vkey).map_err(|e| RunError::Key(e.to_string()))?;
    let key = keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY))
        .map_err(|e| RunError::Key(e.to_string()))?;
    let signer = NoteSigner::new(verifier.name().clone(), key);
    if signer.vkey() != operator_vkey {
        return Err(RunError::Key(format!(
            "{} is not the key of the log's operator",
            layout::OPERATOR_KEY
        )));
    }
    Ok(signer)
}

/// The state read and the plans made, before anything is written.
struct Planned {
    size: u64,
    params: MatchParams,
    matching: Matching,
    checkpoint: String,
    /// The ledger's origin, which every entry names (`ledger`).
    origin: String,
}

fn plan(ledger: &Ledger) -> Result<Planned, RunError> {
    let log = ledger.log();
    let size = log.size();
    // The match date: now, but never before the last entry, so that the run's own entry
    // (whose ledger time is after both) is never dated before the inputs it read.
    let last = match size {
        0 => 0,
        n => log.entry(n - 1)?.time_micros,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let params = MatchParams::at(now.max(last));
    let (claims, pledges) = super::inputs(ledger.state()).map_err(RunError::State)?;
    Ok(Planned {
        size,
        params,
        matching: match_claims(&claims, &pledges, &params)?,
        checkpoint: log.checkpoint().text(),
        origin: log.config().origin.clone(),
    })
}

/// Runs the matcher on the ledger behind `writer` and, unless `dry_run`, records the run
/// signed by `operator` (see the module docs). A run with no plan is recorded too: the
/// log then says that matching was run and found nothing to allocate.
///
/// # Errors
/// [`RunError`]: the state unreadable, the matcher's input refused, a refused entry
/// (what came before it is recorded, and `verify` will report the run as incomplete),
/// store faults.
pub fn run_match<W: RunWriter>(
    writer: &mut W,
    operator: Option<&NoteSigner>,
    dry_run: bool,
) -> Result<RunOutcome, RunError> {
    let planned = writer.read(plan)?;
    let Planned {
        size,
        params,
        matching,
        checkpoint,
        origin,
    } = planned;
    if dry_run {
        return Ok(RunOutcome {
            run: None,
            params,
            report: matching.report,
            plans: Some(matching.plans),
            allocations: 0,
            first_index: None,
            checkpoint,
        });
    }
    let operator =
        operator.ok_or_else(|| RunError::Key("no operator key to sign the run".into()))?;
    let planned_count = matching.plans.len() as u64;
    if planned_count > crate::ledger::limits::MATCH_RUN_ALLOCATIONS_MAX {
        return Err(RunError::TooLarge {
            planned: planned_count,
            max: crate::ledger::limits::MATCH_RUN_ALLOCATIONS_MAX,
        });
    }
    let run = format!("run-{size}");
    let header = json!({
        "kind": "match_run", "id": format!("match-{size}"), "ledger": origin, "run": run, "params": params,
        "allocations": planned_count, "plans_digest": super::digest_of(&matching.plans),
    });
    let payload = |position: usize| -> serde_json::Value {
        if position == 0 {
            return header.clone();
        }
        let n = position - 1;
        let plan = &matching.plans[n];
        json!({
            "kind": "allocation_made", "id": format!("match-{size}-{n}"), "ledger": origin,
            "allocation": format!("a-{size}-{n}"), "claim": plan.claim, "pledge": plan.pledge,
            "lessons": plan.lessons, "run": run,
        })
    };
    let keys = KeyCache::self_certifying();
    let total = matching.plans.len() + 1;
    let (mut recorded, mut first_index) = (0u64, None);
    // Signed batch by batch, so that a run of a million plans never holds a million
    // envelopes at once.
    for start in (0..total).step_by(BATCH_ENTRIES_MAX) {
        let end = (start + BATCH_ENTRIES_MAX).min(total);
        let envelopes: Vec<Envelope> = (start..end)
            .into_par_iter()
            .map(|position| {
                Envelope::sign(
                    PAYLOAD_TYPE,
                    payload(position).to_string().as_bytes(),
                    &[operator],
                )
            })
            .collect::<Result<_, _>>()?;
        let verified = verify_batch(envelopes, &keys)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let mut refused = None;
        for (offset, outcome) in writer.submit(verified)?.into_iter().enumerate() {
            let (code, detail) = match outcome {
                Outcome::Ok(receipt) => {
                    first_index.get_or_insert(receipt.index);
                    recorded += 1;
                    continue;
                }
                Outcome::Refused(e) => (e.code(), e.to_string()),
                // The ids are new for each log size: an entry already there means the
                // log moved under the run, which its writer promised could not happen.
                Outcome::Exists(_) => ("exists", "the entry is already in the log".into()),
                Outcome::ExistsWithDifferentPayload { .. } => (
                    "exists_with_different_payload",
                    "another entry holds this id".into(),
                ),
            };
            refused.get_or_insert((start + offset, code, detail));
        }
        if let Some((position, code, detail)) = refused {
            return Err(RunError::Refused {
                run,
                position,
                code,
                detail,
                recorded,
            });
        }
    }
    let checkpoint = writer.read(|ledger| ledger.log().checkpoint().text());
    Ok(RunOutcome {
        run: Some(run),
        params,
        report: matching.report,
        plans: None,
        // The first entry recorded is the run's own.
        allocations: recorded.saturating_sub(1),
        first_index,
        checkpoint,
    })
}
