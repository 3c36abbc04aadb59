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
//! Ids: the run is `run-<r>`, its entry `match-<r>`, plan `i`'s entry `match-<r>-<i>` and
//! allocation `run-<r>.<i>` ([`RunRecord::allocation_id`]), where `<r>` is 128 random
//! bits, drawn when the run starts, one letter `a`..=`p` per 4 bits: nobody can take a
//! run's ids before it writes them (predictable ids let any party block every run by
//! using them first). Letters, not hex digits, because a run of 11 digits in an id is
//! refused as a suspected phone number (`personal_data_suspected`), which 32 random
//! hex digits would hold about one time in eight.
//!
//! All or nothing, in effect: the rules take a run's allocations only in plan order, so
//! a run in the log is always a run's first plans without a hole. A run that stops
//! before its last entry (a refused entry, a crash between two batches) is closed with a
//! `match_run_closed` entry — at once when the run sees the refusal, and otherwise by
//! [`close_open_runs`] before the next run (and when the server starts) — after which
//! `verify` checks the allocations recorded as the first plans of the re-run and the
//! next run matches what is left.
//!
//! [`RunRecord::allocation_id`]: crate::ledger::objects::RunRecord::allocation_id

use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::ledger::objects::RunRecord;
use crate::ledger::run_params::RunParams;
use crate::ledger::writer::{Ledger, LedgerError};
use crate::ledger::{RuleError, Table, TableScan, Value, PAYLOAD_TYPE};
use crate::limits::BATCH_ENTRIES_MAX;
use crate::log::envelope::{verify_batch, Envelope, EnvelopeError, KeyCache, VerifiedEnvelope};
use crate::log::keyfile::{self, KeyFileError};
use crate::log::note::{NoteError, NoteSigner, NoteVerifier};
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

    /// Most entries of a run per batch (one group commit each): [`BATCH_ENTRIES_MAX`].
    /// A test writer may lower it, to cut a small run at each of several batch
    /// boundaries; it is used within `1..=BATCH_ENTRIES_MAX`.
    fn batch_entries_max(&self) -> usize {
        BATCH_ENTRIES_MAX
    }
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
    /// Code `state_corrupt`: the ledger's state could not give the matcher its inputs.
    #[error("the ledger state could not be read: {0}")]
    State(RuleError),
    /// The matcher refused its input (its own code).
    #[error("the matcher refused its input: {0}")]
    Matcher(#[from] MatchError),
    /// The log's operator verifier key does not parse.
    #[error("the operator key: the log's verifier key: {0}")]
    OperatorVkey(#[source] NoteError),
    /// The operator's key file is missing or unreadable.
    #[error("the operator key: {0}")]
    OperatorKeyFile(#[source] KeyFileError),
    /// The key file holds another key than the one the log was created with.
    #[error("the operator key: {file} is not the key of the log's operator")]
    NotTheOperatorsKey {
        /// The key file, beside the log.
        file: &'static str,
    },
    /// A run that writes needs the operator's key, and there is none.
    #[error("the operator key: no operator key to sign the run")]
    NoOperatorKey,
    /// An entry of the run could not be signed.
    #[error("signing the run's entries: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The ledger refused a batch of the run.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The log failed under the run.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Code `match_run_too_large`: `planned` plans exceed the `max` allocations a run may declare.
    #[error("{planned} plans exceed the {max} allocations a run may declare")]
    TooLarge {
        /// Plans the matcher made.
        planned: u64,
        /// Most allocations a run may declare.
        max: u64,
    },
    /// An entry of the run was refused; `recorded` of its entries (up to the end of
    /// that batch) are in the log.
    #[error("entry {position} of run {run} was refused ({code}): {detail}; {recorded} of its entries are recorded")]
    Refused {
        /// The run's id.
        run: String,
        /// The entry's position in the run (0: the `match_run` entry).
        position: usize,
        /// The refusal's stable code.
        code: &'static str,
        /// The refusal, in words.
        detail: String,
        /// Entries of the run in the log.
        recorded: u64,
    },
}

impl RunError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::State(e) => e.code(),
            RunError::Matcher(e) => e.code(),
            RunError::OperatorVkey(_)
            | RunError::OperatorKeyFile(_)
            | RunError::NotTheOperatorsKey { .. }
            | RunError::NoOperatorKey => "operator_key_unusable",
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
    /// The parameters the matcher ran with.
    pub params: MatchParams,
    /// The matcher's figures.
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
/// [`RunError::OperatorVkey`], [`RunError::OperatorKeyFile`] (no key file, unreadable),
/// [`RunError::NotTheOperatorsKey`].
pub fn operator_signer(dir: &Path, operator_vkey: &str) -> Result<NoteSigner, RunError> {
    let verifier = NoteVerifier::from_vkey(operator_vkey).map_err(RunError::OperatorVkey)?;
    let key = keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY))
        .map_err(RunError::OperatorKeyFile)?;
    let signer = NoteSigner::new(verifier.name().clone(), key);
    if signer.vkey() != operator_vkey {
        return Err(RunError::NotTheOperatorsKey {
            file: layout::OPERATOR_KEY,
        });
    }
    Ok(signer)
}

/// The state read and the plans made, before anything is written.
struct Planned {
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
    let (claims, pledges) =
        super::inputs(ledger.state(), params.at_micros).map_err(RunError::State)?;
    Ok(Planned {
        params,
        matching: match_claims(&claims, &pledges, &params)?,
        checkpoint: log.checkpoint().text(),
        origin: log.config().origin.clone(),
    })
}

/// A fresh run id: `run-` and 128 random bits, a letter `a`..=`p` per 4 bits (see the
/// module docs).
fn new_run_id() -> String {
    use rand::RngCore;
    let mut bits = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bits);
    let letter = |nibble: u8| char::from(b'a' + nibble);
    let token: String = bits
        .iter()
        .flat_map(|b| [letter(b >> 4), letter(b & 0x0f)])
        .collect();
    format!("run-{token}")
}

/// Signs `payloads` with the operator key, verifies them and appends them as one batch.
fn append_signed<W: RunWriter>(
    writer: &mut W,
    operator: &NoteSigner,
    payloads: Vec<serde_json::Value>,
) -> Result<Vec<Outcome<RuleError>>, RunError> {
    let envelopes: Vec<Envelope> = payloads
        .into_par_iter()
        .map(|payload| Envelope::sign(PAYLOAD_TYPE, payload.to_string().as_bytes(), &[operator]))
        .collect::<Result<_, _>>()?;
    let verified = verify_batch(envelopes, &KeyCache::self_certifying())
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(writer.submit(verified)?)
}

/// Runs recorded and still open (declared allocations missing, not closed), read from
/// the ledger's state.
pub fn open_runs(ledger: &Ledger) -> Vec<RunRecord> {
    let mut open = Vec::new();
    for value in ledger.state().scan_table(Table::Run) {
        if let Value::Run(record) = value {
            if record.is_open() {
                open.push(*record);
            }
        }
    }
    open
}

/// Closes every open run with a `match_run_closed` entry signed by `operator`; returns
/// the runs closed. Idempotent: a closing entry already in the log answers `exists`.
///
/// # Errors
/// [`RunError::Refused`] if a closing entry is refused; the state and store faults.
pub fn close_open_runs<W: RunWriter>(
    writer: &mut W,
    operator: &NoteSigner,
) -> Result<Vec<String>, RunError> {
    let open = writer.read(open_runs);
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let runs: Vec<String> = open.iter().map(|r| r.run.to_string()).collect();
    let origin = writer.read(|ledger| ledger.log().config().origin.clone());
    let payloads = runs
        .iter()
        .map(|run| {
            json!({"kind": "match_run_closed", "id": format!("close-{run}"), "ledger": origin,
                "run": run})
        })
        .collect();
    for (position, outcome) in append_signed(writer, operator, payloads)?
        .into_iter()
        .enumerate()
    {
        if let Outcome::Refused(e) = outcome {
            return Err(RunError::Refused {
                run: runs[position].clone(),
                position,
                code: e.code(),
                detail: e.to_string(),
                recorded: 0,
            });
        }
    }
    tracing::warn!(?runs, "match runs cut short were closed");
    Ok(runs)
}

/// On opening a ledger to serve it: closes the runs a crash left open, signed with the
/// operator key beside the log (nothing to do, and no key needed, when none is open).
///
/// # Errors
/// The key's [`RunError`] (`OperatorKeyFile`, `NotTheOperatorsKey`, `NoOperatorKey`)
/// when a run is open and the key is unusable; as [`close_open_runs`].
pub fn close_runs_left_open(ledger: &mut Ledger) -> Result<Vec<String>, RunError> {
    if open_runs(ledger).is_empty() {
        return Ok(Vec::new());
    }
    let operator = operator_signer(ledger.log().dir(), &ledger.log().config().operator_vkey)?;
    close_open_runs(ledger, &operator)
}

/// Runs the matcher on the ledger behind `writer` and, unless `dry_run`, records the run
/// signed by `operator` (see the module docs). A run with no plan is recorded too: the
/// log then says that matching was run and found nothing to allocate. Any run left open
/// by an earlier one that stopped short is closed first.
///
/// # Errors
/// [`RunError`]: the state unreadable, the matcher's input refused, a refused entry
/// (what came before it is recorded, and the run is closed), store faults.
pub fn run_match<W: RunWriter>(
    writer: &mut W,
    operator: Option<&NoteSigner>,
    dry_run: bool,
) -> Result<RunOutcome, RunError> {
    if !dry_run {
        let operator = operator.ok_or(RunError::NoOperatorKey)?;
        close_open_runs(writer, operator)?;
    }
    let planned = writer.read(plan)?;
    let Planned {
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
    let operator = operator.ok_or(RunError::NoOperatorKey)?;
    let planned_count = matching.plans.len() as u64;
    if planned_count > crate::ledger::limits::MATCH_RUN_ALLOCATIONS_MAX {
        return Err(RunError::TooLarge {
            planned: planned_count,
            max: crate::ledger::limits::MATCH_RUN_ALLOCATIONS_MAX,
        });
    }
    let run = new_run_id();
    let (recorded, first_index) = record(writer, operator, &run, &origin, &params, &matching)?;
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

/// Appends run `run`: its `match_run` entry, then one `allocation_made` per plan, in
/// batches. Returns the entries recorded and the index of the first.
fn record<W: RunWriter>(
    writer: &mut W,
    operator: &NoteSigner,
    run: &str,
    origin: &str,
    params: &MatchParams,
    matching: &Matching,
) -> Result<(u64, Option<u64>), RunError> {
    let token = run.trim_start_matches("run-");
    let payload = |position: usize| -> serde_json::Value {
        let Some(n) = position.checked_sub(1) else {
            return json!({
                "kind": "match_run", "id": format!("match-{token}"), "ledger": origin, "run": run,
                "params": RunParams::from(*params), "allocations": matching.plans.len() as u64,
                "plans_digest": super::digest_of(&matching.plans),
            });
        };
        let plan = &matching.plans[n];
        json!({
            "kind": "allocation_made", "id": format!("match-{token}-{n}"), "ledger": origin,
            "allocation": RunRecord::allocation_id(run, n as u64), "claim": plan.claim,
            "pledge": plan.pledge, "lessons": plan.lessons, "run": run,
        })
    };
    let total = matching.plans.len() + 1;
    let batch = writer.batch_entries_max().clamp(1, BATCH_ENTRIES_MAX);
    let (mut recorded, mut first_index) = (0u64, None);
    // Signed batch by batch, so that a run of a million plans never holds a million
    // envelopes at once.
    for start in (0..total).step_by(batch) {
        let end = (start + batch).min(total);
        let outcomes = append_signed(writer, operator, (start..end).map(payload).collect())?;
        let mut refused = None;
        for (offset, outcome) in outcomes.into_iter().enumerate() {
            let (code, detail) = match outcome {
                Outcome::Ok(receipt) => {
                    first_index.get_or_insert(receipt.index);
                    recorded += 1;
                    continue;
                }
                Outcome::Refused(e) => (e.code(), e.to_string()),
                // The ids are drawn at random for each run: an entry already there
                // means the log moved under the run, which its writer promised could
                // not happen.
                Outcome::Exists(_) => ("exists", "the entry is already in the log".into()),
                Outcome::ExistsWithDifferentPayload { .. } => (
                    "exists_with_different_payload",
                    "another entry holds this id".into(),
                ),
            };
            refused.get_or_insert((start + offset, code, detail));
        }
        if let Some((position, code, detail)) = refused {
            // The rules took nothing of the run after the refused entry (plan order):
            // close it now so that it reads as a run cut short, not a run still open.
            if recorded > 0 {
                close_open_runs(writer, operator)?;
            }
            return Err(RunError::Refused {
                run: run.to_owned(),
                position,
                code,
                detail,
                recorded,
            });
        }
    }
    Ok((recorded, first_index))
}
