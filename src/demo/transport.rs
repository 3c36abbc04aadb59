//! How the demo reaches the ledger: the [`Transport`] trait, and [`LocalLedger`], its
//! implementation on the library (the writer in this process).
//!
//! The trait is the seam for issue 4: an HTTP transport will send the same envelopes
//! to `POST` endpoints and read the same balances and proofs from the read API; the
//! story above it does not change. The server side verifies envelopes, so
//! [`Transport::submit`] takes them signed but unverified; [`LocalLedger`] verifies them
//! as `append` does (`verify_batch` with a [`KeyCache`]).
//!
//! ```no_run
//! use lesson_ledger::demo::{LocalLedger, Transport};
//! let (ledger, _operator) = LocalLedger::create(std::path::Path::new("/tmp/l"), "demo.example/sh")?;
//! assert_eq!(ledger.size(), 0);
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::path::{Path, PathBuf};

use super::DemoError;
use crate::ledger::objects::Pool;
use crate::ledger::queries::{self, ClaimBalance, InstitutionReport, StudentSummary};
use crate::ledger::replay::Replayer;
use crate::ledger::sled_state::SledState;
use crate::ledger::writer::Ledger;
use crate::log::audit::{audit_with, AuditError, AuditOptions, AuditSummary};
use crate::log::envelope::{verify_batch, Envelope, KeyCache};
use crate::log::hash::Hash;
use crate::log::keyfile;
use crate::log::note::{KeyName, NoteSigner};
use crate::log::store::{layout, Outcome};

/// The operator's key name and party ref.
pub const OPERATOR: &str = "operator";

/// What became of one submitted envelope, as any transport reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Appended at this index.
    Accepted { index: u64 },
    /// Already in the log at this index (answered with the first result).
    Exists { index: u64 },
    /// Not appended: the stable error code and the message.
    Refused { code: String, message: String },
}

/// An independent audit of the whole ledger, as an auditor outside the writer does it.
pub struct Audited {
    pub summary: AuditSummary,
    /// The auditor's own replay of every entry under the rules.
    pub replayed: Replayer,
    /// Whether the writer's stored state equals the replay, in words.
    pub state_line: String,
}

/// The ledger as the demo sees it: submit envelopes, read balances and proofs, audit.
pub trait Transport {
    /// Submits envelopes in one batch; one answer each, in order.
    ///
    /// # Errors
    /// Faults of the ledger (never an entry's fault: those are [`Submitted::Refused`]).
    fn submit(&mut self, batch: Vec<Envelope>) -> Result<Vec<Submitted>, DemoError>;
    /// Entries in the log.
    fn size(&self) -> u64;
    /// The latest signed checkpoint (C2SP signed note).
    fn checkpoint_text(&self) -> String;
    /// The operator's verifier key.
    fn operator_vkey(&self) -> String;
    /// # Errors
    /// Store faults.
    fn pool_totals(&self) -> Result<Pool, DemoError>;
    /// # Errors
    /// Store faults.
    fn claim_balance(&self, claim: &str) -> Result<Option<ClaimBalance>, DemoError>;
    /// # Errors
    /// Store faults.
    fn student_summary(&self, student: &str) -> Result<Option<StudentSummary>, DemoError>;
    /// # Errors
    /// Store faults.
    fn institution_report(&self, inst: &str) -> Result<Option<InstitutionReport>, DemoError>;
    /// The canonical leaf bytes of entry `index` (hashed by the client itself).
    ///
    /// # Errors
    /// Out of range; store faults.
    fn leaf_bytes(&self, index: u64) -> Result<Vec<u8>, DemoError>;
    /// # Errors
    /// Out of range; store faults.
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, DemoError>;
    /// Audits the whole log from outside the writer and replays it under the rules.
    ///
    /// # Errors
    /// [`DemoError::AuditFailed`] with the first finding; faults.
    fn audit(&mut self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<Audited, DemoError>;
}

/// The library transport: a [`Ledger`] writer in this process.
pub struct LocalLedger {
    dir: PathBuf,
    /// `None` only while the audit has the directory to itself.
    ledger: Option<Ledger>,
    keys: KeyCache,
}

impl LocalLedger {
    /// Creates a new ledger in `dir` (refusing to overwrite one) and returns it with the
    /// operator's signer (its key made by the log, read back from `operator.key`).
    ///
    /// # Errors
    /// [`crate::log::store::LogError::AlreadyExists`]; I/O; an unreadable key.
    pub fn create(dir: &Path, origin: &str) -> Result<(LocalLedger, NoteSigner), DemoError> {
        let ledger = Ledger::create(dir, origin, OPERATOR)?;
        let key = keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY))
            .map_err(|e| DemoError::Setup(format!("operator key: {e}")))?;
        let operator = NoteSigner::new(KeyName::new(OPERATOR)?, key);
        if operator.vkey() != ledger.log().config().operator_vkey {
            return Err(DemoError::check(
                "operator key",
                &ledger.log().config().operator_vkey,
                operator.vkey(),
            ));
        }
        Ok((
            LocalLedger {
                dir: dir.to_path_buf(),
                ledger: Some(ledger),
                keys: KeyCache::self_certifying(),
            },
            operator,
        ))
    }

    /// Closes the writer (flushing everything derived).
    ///
    /// # Errors
    /// I/O.
    pub fn close(mut self) -> Result<(), DemoError> {
        if let Some(ledger) = self.ledger.take() {
            ledger.close()?;
        }
        Ok(())
    }

    fn ledger(&self) -> Result<&Ledger, DemoError> {
        self.ledger
            .as_ref()
            .ok_or_else(|| DemoError::Setup("the ledger is closed".into()))
    }

    /// Compares the replay with the state the writer stored (as `verify` does).
    fn compare_stored_state(&self, replayer: &Replayer) -> Result<String, DemoError> {
        let index = self.dir.join(layout::INDEX);
        let db = sled::open(&index)
            .map_err(|e| DemoError::Setup(format!("{}: {e}", index.display())))?;
        let state = SledState::open(&db).map_err(|e| DemoError::Setup(e.to_string()))?;
        if state.size() != replayer.entries() {
            return Err(DemoError::AuditFailed(format!(
                "the stored state reflects {} entries, the log holds {}",
                state.size(),
                replayer.entries()
            )));
        }
        replayer.compare(&state).map_err(|d| {
            DemoError::AuditFailed(format!("stored state differs from the replay: {d}"))
        })?;
        Ok(format!(
            "state: replayed {} entries, {} objects, digest {}, equal to the stored state",
            replayer.entries(),
            replayer.state().len(),
            crate::ledger::units::hex(&replayer.state().digest())
        ))
    }
}

impl Transport for LocalLedger {
    fn submit(&mut self, batch: Vec<Envelope>) -> Result<Vec<Submitted>, DemoError> {
        let ledger = self
            .ledger
            .as_mut()
            .ok_or_else(|| DemoError::Setup("the ledger is closed".into()))?;
        // As `append`: verify every signature first (in parallel); only verified
        // envelopes reach the writer, and the answers keep the submitted order.
        let mut answers: Vec<Option<Submitted>> = vec![None; batch.len()];
        let mut good = Vec::with_capacity(batch.len());
        let mut good_at = Vec::with_capacity(batch.len());
        for (i, v) in verify_batch(batch, &self.keys).into_iter().enumerate() {
            match v {
                Ok(env) => {
                    good.push(env);
                    good_at.push(i);
                }
                Err(e) => {
                    answers[i] = Some(Submitted::Refused {
                        code: e.code().to_string(),
                        message: e.to_string(),
                    })
                }
            }
        }
        for (outcome, i) in ledger.submit(good)?.into_iter().zip(good_at) {
            answers[i] = Some(match outcome {
                Outcome::Ok(r) => Submitted::Accepted { index: r.index },
                Outcome::Exists(r) => Submitted::Exists { index: r.index },
                Outcome::ExistsWithDifferentPayload { existing, .. } => Submitted::Refused {
                    code: "exists_with_different_payload".into(),
                    message: format!("client id already used by entry {existing}"),
                },
                Outcome::Refused(e) => Submitted::Refused {
                    code: e.code().to_string(),
                    message: e.to_string(),
                },
            });
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| DemoError::Setup("an envelope got no answer".into())))
            .collect()
    }

    fn size(&self) -> u64 {
        self.ledger.as_ref().map_or(0, |l| l.log().size())
    }

    fn checkpoint_text(&self) -> String {
        self.ledger
            .as_ref()
            .map_or_else(String::new, |l| l.log().checkpoint().text())
    }

    fn operator_vkey(&self) -> String {
        self.ledger
            .as_ref()
            .map_or_else(String::new, |l| l.log().config().operator_vkey.clone())
    }

    fn pool_totals(&self) -> Result<Pool, DemoError> {
        Ok(queries::pool_totals(self.ledger()?.state())?)
    }

    fn claim_balance(&self, claim: &str) -> Result<Option<ClaimBalance>, DemoError> {
        Ok(queries::claim_balance(self.ledger()?.state(), claim)?)
    }

    fn student_summary(&self, student: &str) -> Result<Option<StudentSummary>, DemoError> {
        Ok(queries::student_summary(self.ledger()?.state(), student)?)
    }

    fn institution_report(&self, inst: &str) -> Result<Option<InstitutionReport>, DemoError> {
        Ok(queries::institution_report(self.ledger()?.state(), inst)?)
    }

    fn leaf_bytes(&self, index: u64) -> Result<Vec<u8>, DemoError> {
        Ok(self.ledger()?.log().leaf_bytes(index)?)
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, DemoError> {
        Ok(self.ledger()?.log().inclusion_proof(index, size)?)
    }

    fn audit(&mut self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<Audited, DemoError> {
        // The auditor reads the directory alone: close the writer (flushing what is
        // derived), audit, compare, then open the ledger again for the report. The
        // auditor brings the operator key it trusts (from the genesis it registered
        // under), so the audit proves who signed, not only internal consistency.
        let options = AuditOptions {
            operator_vkey: Some(self.operator_vkey()),
            known_checkpoint: Some(self.checkpoint_text()),
        };
        if let Some(ledger) = self.ledger.take() {
            ledger.close()?;
        }
        let mut replayer = Replayer::new();
        let result = audit_with(&self.dir, &options, progress, &mut replayer);
        let summary = match result {
            Ok(s) => s,
            Err(AuditError::Finding(f)) => return Err(DemoError::AuditFailed(f.to_string())),
            Err(AuditError::Log(e)) => return Err(e.into()),
        };
        let state_line = self.compare_stored_state(&replayer)?;
        let (ledger, _) = Ledger::open(&self.dir)?;
        self.ledger = Some(ledger);
        Ok(Audited {
            summary,
            replayed: replayer,
            state_line,
        })
    }
}
