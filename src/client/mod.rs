//! The client side of the HTTP service (reqwest, blocking): submit envelopes, fetch
//! balances and check their proofs, and audit a remote ledger.
//!
//! Nothing the server says is taken on trust where it can be checked:
//! - [`Client::balance`] follows a balance's pages and, on each, checks the checkpoint
//!   against a [`Trust`] (the operator's signature; for a student's client also the
//!   cosignatures of associations and consistency with the last checkpoint it saw), the
//!   state note of the same size, every object's state proof against the note's root,
//!   that the figures add up and that every open object listed is served ([`proofs`]),
//!   rebuilds every leaf from the served envelope, index and time, and verifies its
//!   RFC 9162 inclusion proof against that checkpoint (`balance`);
//! - every body read is capped before it is read ([`crate::limits::CLIENT_JSON_BYTES_MAX`]
//!   and the others), so a hostile server cannot exhaust the client's memory;
//! - [`audit`] fetches the signed checkpoint and every entry bundle (C2SP tlog-tiles),
//!   verifies each envelope's signatures, recomputes the root and compares it with the
//!   checkpoint; with a state file it remembers the last checkpoint it verified and
//!   next time demands (and checks) a consistency proof from it, so a server that
//!   rewrote its history — even one signing with the same operator key — is caught.
//!
//! ```no_run
//! use lesson_ledger::client::{audit, Client};
//! let client = Client::new("http://127.0.0.1:8080").unwrap();
//! let report = audit(&client, None, Some(std::path::Path::new("audit.json"))).unwrap();
//! println!("{} entries verified", report.size);
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod audit;
mod balance;
mod preferences;
pub mod proofs;
mod reads;
mod receipt;
mod trust;
pub use audit::{audit, audit_visiting, audit_witnessed, AuditReport};
pub use balance::{
    check_absence_problem, decode_answer, verify_answer, verify_answer_page, verify_page,
};
pub use preferences::{preferences_envelope, preferences_id};
pub use proofs::{BalanceError, ProvenObjects};
pub use reads::{BundledLeaf, MatchAnswer};
pub use receipt::verify_receipt;
pub use trust::Trust;

use crate::http::entries::{BatchResults, EntryResult};
use crate::http::reads::LogInfo;
use crate::limits::{CLIENT_CHECKPOINT_BYTES_MAX, CLIENT_JSON_BYTES_MAX};
use crate::log::envelope::Envelope;
use crate::log::hash::Hash;
use crate::log::note::{NoteVerifier, SignedCheckpoint};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the connection failed.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL asked.
        url: String,
        /// Why, in words.
        reason: String,
    },
    /// The server answered with an error (a problem document).
    #[error("{url}: HTTP {status} {code}: {detail}")]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The problem document's stable `code`.
        code: String,
        /// The problem document's `detail`.
        detail: String,
    },
    /// An answer is not what the API documents.
    #[error("{what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// Why, in words.
        reason: String,
    },
    /// The client was asked for something it cannot do (e.g. more witnesses than keys).
    #[error("{0}")]
    Usage(String),
    /// The server sent more than the client reads for this kind of answer.
    #[error("{url}: the answer is larger than {max} bytes")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// Most bytes read for that answer.
        max: usize,
    },
    /// The server's answer does not verify: the thing this client exists to catch.
    #[error("verification failed: {0}")]
    Verification(String),
    /// A balance's state evidence does not verify (its note, an object's proof, its
    /// figures, what it lists as open); each with its own code.
    #[error("verification failed: {0}")]
    Balance(#[from] BalanceError),
    /// The server says no such object exists, and its proof of that checks: the
    /// object's key is absent from the state map root the operator signed at `size`.
    #[error("{table} {id} is not in the ledger (proven absent in the state of size {size})")]
    Absent {
        /// The object's table.
        table: &'static str,
        /// The object's id.
        id: String,
        /// Tree size of the state the absence is proven in.
        size: u64,
    },
    /// The remote audit's replay does not give the state map root the operator signed
    /// in the state note of this size (the first such note).
    #[error("state_root_mismatch: the state note of size {size}: {reason}")]
    StateRoot {
        /// The state note's tree size.
        size: u64,
        /// Why, in words.
        reason: String,
    },
    /// A local file (the audit state, a key) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Transport { .. } => "transport",
            ClientError::Status { .. } => "http_status",
            ClientError::Decode { .. } => "decode",
            ClientError::TooLarge { .. } => "body_too_large",
            ClientError::Usage(_) => "usage",
            ClientError::Verification(_) => "verification_failed",
            ClientError::Balance(e) => e.code(),
            ClientError::Absent { .. } => "object_absent",
            ClientError::StateRoot { .. } => "state_root_mismatch",
            ClientError::Io { .. } => "io",
        }
    }
}

fn failed(what: impl Into<String>) -> ClientError {
    ClientError::Verification(what.into())
}

/// A blocking client of one server.
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    /// A client of the server at `url` (e.g. `http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// [`ClientError::Transport`] if the HTTP client cannot be built.
    pub fn new(url: &str) -> Result<Client, ClientError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            // The server closes a connection idle for its header timeout; reusing one
            // it is closing at that moment would fail a request that was never sent.
            .pool_idle_timeout(Duration::from_secs(crate::limits::HEADER_SECONDS_MAX / 2))
            .build()
            .map_err(|e| ClientError::Transport {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Client {
            base: url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let response = self.send_any(request, url)?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(status_error(response, url))
    }

    /// Sends `request` and returns the response whatever its status.
    fn send_any(
        &self,
        request: reqwest::blocking::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        request.send().map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    /// `GET path`, reading at most `max` bytes of the answer.
    fn get_bytes(&self, path: &str, max: usize) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.http.get(&url), &url)?;
        read_capped(response, &url, max)
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.get_bytes(path, CLIENT_JSON_BYTES_MAX)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// POSTs `body` as JSON (with `Authorization: Bearer <token>` if given) and decodes
    /// the answer.
    fn post_json<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        bearer: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.post(&url).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = self.send(request, &url)?;
        let bytes = read_capped(response, &url, CLIENT_JSON_BYTES_MAX)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: url,
            reason: e.to_string(),
        })
    }

    /// `GET /v1/log`.
    ///
    /// # Errors
    /// Transport, status and decoding errors.
    pub fn log_info(&self) -> Result<LogInfo, ClientError> {
        self.get_json("/v1/log")
    }

    /// `GET /checkpoint`, verified under `operator`.
    ///
    /// # Errors
    /// [`ClientError::Verification`] if it is not signed by `operator`.
    pub fn checkpoint(&self, operator: &NoteVerifier) -> Result<SignedCheckpoint, ClientError> {
        let bytes = self.get_bytes("/checkpoint", CLIENT_CHECKPOINT_BYTES_MAX)?;
        SignedCheckpoint::parse_and_verify(&bytes, operator)
            .map_err(|e| failed(format!("the checkpoint does not verify: {e}")))
    }

    /// Submits envelopes (JSON texts), in batches of at most
    /// [`ENTRIES_PER_REQUEST_MAX`](crate::limits::ENTRIES_PER_REQUEST_MAX) entries and
    /// [`SIGNATURES_PER_REQUEST_MAX`](crate::limits::SIGNATURES_PER_REQUEST_MAX)
    /// signatures; one result per envelope, in order.
    ///
    /// # Errors
    /// Transport, status and decoding errors for a whole batch.
    pub fn submit(&self, envelopes: &[String]) -> Result<Vec<EntryResult>, ClientError> {
        let mut results = Vec::with_capacity(envelopes.len());
        for chunk in batches(envelopes) {
            results.extend(self.submit_batch(chunk)?);
        }
        Ok(results)
    }

    fn submit_batch(&self, chunk: &[String]) -> Result<Vec<EntryResult>, ClientError> {
        let url = format!("{}/v1/entries", self.base);
        let body = format!("{{\"entries\":[{}]}}", chunk.join(","));
        let response = self.send(
            self.http
                .post(&url)
                .header("content-type", "application/json")
                .body(body),
            &url,
        )?;
        let bytes = read_capped(response, &url, CLIENT_JSON_BYTES_MAX)?;
        let batch: BatchResults =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                what: url.clone(),
                reason: e.to_string(),
            })?;
        if batch.results.len() != chunk.len() {
            return Err(ClientError::Decode {
                what: url,
                reason: format!(
                    "{} results for {} entries",
                    batch.results.len(),
                    chunk.len()
                ),
            });
        }
        Ok(batch.results)
    }

    /// The operator key: `given`, or the one the server announces (trust on first use).
    ///
    /// # Errors
    /// A malformed key; transport errors.
    pub fn operator(&self, given: Option<&str>) -> Result<NoteVerifier, ClientError> {
        let vkey = match given {
            Some(v) => v.to_owned(),
            None => self.log_info()?.operator_vkey,
        };
        NoteVerifier::from_vkey(&vkey).map_err(|e| ClientError::Decode {
            what: "operator key".into(),
            reason: e.to_string(),
        })
    }
}

/// The [`ClientError::Status`] of an answer that is not a success; a problem document
/// names its code, anything else is reported by status.
fn status_error(response: reqwest::blocking::Response, url: &str) -> ClientError {
    let status = response.status();
    let problem = read_capped(response, url, PROBLEM_BYTES_MAX)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    status_of(status.as_u16(), problem.as_ref(), url)
}

/// [`ClientError::Status`] for `status` and its problem document, if any.
fn status_of(status: u16, problem: Option<&serde_json::Value>, url: &str) -> ClientError {
    let field = |name: &str| {
        problem
            .and_then(|p| p[name].as_str())
            .map_or_else(|| "(no problem document)".to_owned(), str::to_owned)
    };
    ClientError::Status {
        url: url.to_owned(),
        status,
        code: field("code"),
        detail: field("detail"),
    }
}

fn b64(what: &str, text: &str) -> Result<Hash, ClientError> {
    Hash::from_base64(text).ok_or_else(|| failed(format!("{what} is not a base64 hash")))
}

/// Largest problem document the client reads from an error answer.
pub(crate) const PROBLEM_BYTES_MAX: usize = 64 * 1024;

/// Reads `response`'s body, refusing one larger than `max` before reading past it.
fn read_capped(
    response: reqwest::blocking::Response,
    url: &str,
    max: usize,
) -> Result<Vec<u8>, ClientError> {
    use std::io::Read;
    let too_large = || ClientError::TooLarge {
        url: url.to_owned(),
        max,
    };
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    response
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    if body.len() > max {
        return Err(too_large());
    }
    Ok(body)
}

/// Splits envelopes into batches the server takes: at most
/// [`ENTRIES_PER_REQUEST_MAX`](crate::limits::ENTRIES_PER_REQUEST_MAX) entries and
/// [`SIGNATURES_PER_REQUEST_MAX`](crate::limits::SIGNATURES_PER_REQUEST_MAX) signatures.
fn batches(envelopes: &[String]) -> Vec<&[String]> {
    use crate::limits::{ENTRIES_PER_REQUEST_MAX, SIGNATURES_PER_REQUEST_MAX};
    let mut out = Vec::new();
    let (mut start, mut signatures) = (0, 0);
    for (i, text) in envelopes.iter().enumerate() {
        // An envelope that does not parse is sent anyway, for the server to refuse with
        // its code; it is counted as the most signatures one may carry.
        let count = match Envelope::from_json(text.as_bytes()) {
            Ok(envelope) => envelope.signatures().len(),
            Err(_) => crate::limits::SIGNATURES_PER_ENVELOPE_MAX,
        };
        if i > start
            && (i - start == ENTRIES_PER_REQUEST_MAX
                || signatures + count > SIGNATURES_PER_REQUEST_MAX)
        {
            out.push(&envelopes[start..i]);
            (start, signatures) = (i, 0);
        }
        signatures += count;
    }
    if start < envelopes.len() {
        out.push(&envelopes[start..]);
    }
    out
}

/// What the auditor remembers between runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditState {
    /// The operator key trusted (pinned on first use).
    pub operator_vkey: String,
    /// The last checkpoint verified, as served.
    pub checkpoint: String,
}

pub(crate) fn read_state(path: &Path) -> Result<Option<AuditState>, ClientError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClientError::Decode {
                what: path.display().to_string(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ClientError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn write_state(path: &Path, state: &AuditState) -> Result<(), ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(state).map_err(|e| ClientError::Decode {
        what: "audit state".into(),
        reason: e.to_string(),
    })?;
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}
