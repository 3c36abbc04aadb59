//! How the demo reaches the ledger: [`HttpLedger`], the HTTP API of a running server
//! through [`crate::client`] — the same requests any party would send.
//!
//! Envelopes are signed in the demo and verified by the server; each submission is one
//! `POST /v1/entries` batch (at most [`ENTRIES_PER_REQUEST_MAX`]) answered per entry.
//! Balances come as state objects with their state proofs, and with their entries and
//! inclusion proofs, which [`Client::balance`] checks against the operator-signed state
//! note and checkpoint before the demo sees a figure.
//!
//! ```no_run
//! use lesson_ledger::demo::HttpLedger;
//! let ledger = HttpLedger::new("http://127.0.0.1:8080", "operator+1a2b3c4d+A...")?;
//! println!("{} fen pledged", ledger.pool()?.pledged.0);
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use crate::api::{AllocationAnswer, StudentAnswer};
use crate::client::{Client, ClientError, MatchAnswer, Trust};
use crate::http::entries::ENTRIES_PER_REQUEST_MAX;
use crate::ledger::objects::{Allocation, Pool};
use crate::ledger::queries::{InstitutionReport, StudentSummary};
use crate::log::envelope::Envelope;
use crate::log::leaf::Leaf;
use crate::log::note::NoteVerifier;

use super::DemoError;

/// What became of one submitted envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Appended at this index.
    Accepted {
        /// The entry's index in the log.
        index: u64,
    },
    /// Already in the log at this index (answered with the first result).
    Exists {
        /// The entry's index in the log.
        index: u64,
    },
    /// Not appended: the stable error code and the message.
    Refused {
        /// The refusal's stable code.
        code: String,
        /// The refusal, in words.
        message: String,
    },
}

/// The ledger behind a server's HTTP API.
pub struct HttpLedger {
    url: String,
    client: Client,
    operator: NoteVerifier,
}

/// `None` for a 404, the value otherwise.
fn found<T>(r: Result<T, ClientError>) -> Result<Option<T>, DemoError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::Status { status: 404, .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl HttpLedger {
    /// The server at `url`, whose checkpoints must be signed by `operator_vkey` (the
    /// key the demo's ledger was created with, not one the server announces).
    ///
    /// # Errors
    /// A malformed key; the HTTP client cannot be built.
    pub fn new(url: &str, operator_vkey: &str) -> Result<HttpLedger, DemoError> {
        Ok(HttpLedger {
            url: url.to_owned(),
            client: Client::new(url)?,
            operator: NoteVerifier::from_vkey(operator_vkey)?,
        })
    }

    /// The base URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client beneath (audits, cosignatures).
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The operator key checkpoints are verified under.
    #[must_use]
    pub fn operator(&self) -> &NoteVerifier {
        &self.operator
    }

    /// Submits envelopes in `POST /v1/entries` batches; one answer each, in order.
    ///
    /// # Errors
    /// Transport and status errors of a whole request (never an entry's own fault:
    /// that is [`Submitted::Refused`]).
    pub fn submit(&self, batch: &[Envelope]) -> Result<Vec<Submitted>, DemoError> {
        let texts: Vec<String> = batch.iter().map(Envelope::to_json).collect();
        let mut answers = Vec::with_capacity(batch.len());
        for chunk in texts.chunks(ENTRIES_PER_REQUEST_MAX) {
            for r in self.client.submit(chunk)? {
                let index = r.receipt.as_ref().map(|r| r.index);
                answers.push(match (r.status.as_str(), index) {
                    ("ok", Some(index)) => Submitted::Accepted { index },
                    ("exists", Some(index)) => Submitted::Exists { index },
                    _ => Submitted::Refused {
                        message: r.error.unwrap_or_default(),
                        code: r.status,
                    },
                });
            }
        }
        Ok(answers)
    }

    /// Entries in the log (`GET /v1/log`).
    ///
    /// # Errors
    /// Transport, status and decoding errors.
    pub fn size(&self) -> Result<u64, DemoError> {
        Ok(self.client.log_info()?.size)
    }

    /// `GET /v1/pool`.
    ///
    /// # Errors
    /// Transport, status and decoding errors.
    pub fn pool(&self) -> Result<Pool, DemoError> {
        Ok(self
            .client
            .pool(&Trust::operator_only(self.operator.clone()))?)
    }

    /// `GET /v1/students/{ref}`, every proof verified; `None` if the student holds no
    /// claim.
    ///
    /// # Errors
    /// [`ClientError::Verification`] if a proof fails; transport, status, decoding.
    pub fn student(&self, student: &str) -> Result<Option<StudentSummary>, DemoError> {
        let Some(answer) = found(
            self.client
                .balance::<StudentAnswer>(student, &self.operator),
        )?
        else {
            return Ok(None);
        };
        let claims = answer.claims.into_iter().map(|c| c.object).collect();
        Ok(Some(StudentSummary::of(
            answer.student.object.student,
            claims,
        )?))
    }

    /// `GET /v1/allocations/{id}`, every proof verified.
    ///
    /// # Errors
    /// As [`HttpLedger::student`].
    pub fn allocation(&self, allocation: &str) -> Result<Option<Allocation>, DemoError> {
        let answer = found(
            self.client
                .balance::<AllocationAnswer>(allocation, &self.operator),
        )?;
        Ok(answer.map(|a| a.allocation.object))
    }

    /// `GET /v1/institutions/{id}/report`; `None` if it never closed.
    ///
    /// # Errors
    /// Transport, status and decoding errors.
    pub fn institution_report(&self, inst: &str) -> Result<Option<InstitutionReport>, DemoError> {
        found(
            self.client
                .institution_report(inst, &Trust::operator_only(self.operator.clone())),
        )
    }

    /// Leaves `[from, to)` from the entry bundles.
    ///
    /// # Errors
    /// Transport, status and verification errors.
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<Leaf>, DemoError> {
        Ok(self.client.entries(from, to)?)
    }

    /// The ledger time the server stamped on entry `index`.
    ///
    /// # Errors
    /// Transport, status and decoding errors.
    pub fn time_of(&self, index: u64) -> Result<u64, DemoError> {
        Ok(self.client.entry(index)?.time_micros)
    }

    /// `POST /v1/match` with the operator's bearer token: the matcher runs on the
    /// server's state and its allocations are appended.
    ///
    /// # Errors
    /// Transport, status (401 for a wrong token) and decoding errors.
    pub fn run_match(&self, token: &str) -> Result<MatchAnswer, DemoError> {
        Ok(self.client.run_match(token, false)?)
    }
}
