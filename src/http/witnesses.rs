//! The log side of C2SP tlog-witness (<https://c2sp.org/tlog-witness>): the server
//! submits each new checkpoint to the witnesses `serve --witness URL=VKEY` names and
//! files the cosignatures they return, so `GET /checkpoint` (and every balance page)
//! carries them.
//!
//! One task per witness follows the committed size ([`super::sequencer::Sequencer::committed`]):
//! after each group commit it sends the current checkpoint with a consistency proof from
//! the size the witness holds (learned from its `409` answers: a first request from
//! size 0 is answered with the size held, then the proof is sent from there). The writer
//! never waits for a witness: a slow or absent witness delays only its own task, which
//! backs off (1 s doubling to a minute) and then sends the newest checkpoint.
//!
//! Trust anchor: a witness's key must be a consumer association's registered key (by
//! name: the key's name is the association's party id), checked when the server starts,
//! and every returned line goes through the same check as a `POST /v1/cosign` line
//! before it is stored in `DIR/cosignatures/<size>/<party>` or served
//! ([`super::cosign::Cosignatures::file_witness_lines`]). A witness that is not a
//! genesis-declared association therefore cannot add a line a family's client counts.

use std::str::FromStr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cosign::association_cosigner;
use super::error::ApiError;
use super::AppState;
use crate::ledger::writer::Ledger;
use crate::log::note::{CosignerKey, NoteVerifier, SignedCheckpoint};
use crate::witness::protocol::{parse_size_body, AddCheckpoint};

/// Longest one `add-checkpoint` request may take.
const REQUEST_SECONDS_MAX: u64 = 10;

/// Longest wait between two attempts at a witness that failed.
const BACKOFF_SECONDS_MAX: u64 = 60;

/// Most `409` answers followed in a row before backing off (a witness whose size keeps
/// moving is being fed by another copy of the log).
const CONFLICTS_IN_A_ROW_MAX: usize = 3;

/// Longest witness answer read.
const ANSWER_BYTES_MAX: usize = 64 * 1024;

/// A witness the log submits to: its URL (the submission prefix) and its cosigner key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessTarget {
    /// The witness's URL: `POST URL/add-checkpoint`.
    pub url: String,
    /// The key its cosignatures verify under (a registered association's).
    pub key: CosignerKey,
}

/// Why a `--witness` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--witness wants URL=VKEY (the witness's cosigner key, or the association's registered key): {0}")]
pub struct WitnessArgError(String);

impl FromStr for WitnessTarget {
    type Err = WitnessArgError;

    /// `URL=VKEY`: the key as `lesson-ledger witness` prints it (type 0x04) or as the
    /// association's `.pub` file holds it (type 0x01, the same Ed25519 key).
    fn from_str(arg: &str) -> Result<WitnessTarget, WitnessArgError> {
        let (url, vkey) = arg
            .split_once('=')
            .ok_or_else(|| WitnessArgError("no '='".into()))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(WitnessArgError(format!("{url:?} is not an http(s) URL")));
        }
        let key = match CosignerKey::from_vkey(vkey) {
            Ok(key) => key,
            Err(first) => NoteVerifier::from_vkey(vkey)
                .and_then(|v| CosignerKey::new(v.name().clone(), *v.verifying_key()))
                .map_err(|_| WitnessArgError(first.to_string()))?,
        };
        Ok(WitnessTarget {
            url: url.trim_end_matches('/').to_owned(),
            key,
        })
    }
}

impl WitnessTarget {
    /// The association the witness's key belongs to (its key name).
    pub fn party(&self) -> &str {
        self.key.name().as_str()
    }
}

/// Checks every target's key is a registered key of the association it names.
///
/// # Errors
/// The first target refused, with the reason.
pub fn check_targets(ledger: &Ledger, targets: &[WitnessTarget]) -> Result<(), WitnessRefused> {
    for target in targets {
        association_cosigner(ledger, target.party(), &target.key).map_err(|source| {
            WitnessRefused {
                url: target.url.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// A `--witness` whose key is not a registered key of a consumer association.
#[derive(Debug, thiserror::Error)]
#[error("--witness {url}: {source}")]
pub struct WitnessRefused {
    /// The witness's URL, as given.
    pub url: String,
    /// Why its key was refused (the association unknown, or the key not its own).
    #[source]
    pub source: ApiError,
}

/// Starts one submitter task per witness on the current runtime.
pub fn spawn(app: &AppState, targets: &[WitnessTarget]) -> Vec<JoinHandle<()>> {
    targets
        .iter()
        .map(|target| {
            let committed = app.sequencer.committed();
            tokio::spawn(follow(app.clone(), target.clone(), committed))
        })
        .collect()
}

/// What a witness answered.
enum Answer {
    Cosigned,
    /// `409`: the size the witness holds.
    Holds(u64),
}

async fn follow(app: AppState, target: WitnessTarget, mut committed: watch::Receiver<u64>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(REQUEST_SECONDS_MAX))
        .build()
    {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "no HTTP client for the witnesses"),
    };
    let mut held: u64 = 0;
    let mut cosigned: Option<u64> = None;
    let mut conflicts = 0;
    let mut backoff = 1;
    loop {
        let size = *committed.borrow_and_update();
        if cosigned == Some(size) {
            if committed.changed().await.is_err() {
                return;
            }
            continue;
        }
        match submit_once(&app, &client, &target, held).await {
            Ok((size, Answer::Cosigned)) => {
                (held, cosigned, conflicts, backoff) = (size, Some(size), 0, 1);
            }
            Ok((size, Answer::Holds(at))) if at <= size && conflicts < CONFLICTS_IN_A_ROW_MAX => {
                tracing::info!(
                    witness = target.url,
                    holds = at,
                    "witness holds another size; proving from it"
                );
                (held, conflicts) = (at, conflicts + 1);
            }
            Ok((size, Answer::Holds(at))) => {
                tracing::error!(
                    witness = target.url,
                    holds = at,
                    size,
                    "the witness holds a size this log cannot prove from"
                );
                (held, conflicts) = (at.min(size), 0);
                backoff = pause(backoff).await;
            }
            Err(e) => {
                tracing::warn!(witness = target.url, error = %e, "witness submission failed; retrying later");
                backoff = pause(backoff).await;
            }
        }
    }
}

async fn pause(backoff: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(backoff)).await;
    (backoff * 2).min(BACKOFF_SECONDS_MAX)
}

/// Sends the current checkpoint with a proof from `held`; files the cosignature lines.
/// Returns the size sent and the answer.
async fn submit_once(
    app: &AppState,
    client: &reqwest::Client,
    target: &WitnessTarget,
    held: u64,
) -> Result<(u64, Answer), String> {
    let (checkpoint, body) = app
        .read(move |ledger| {
            let log = ledger.log();
            let checkpoint = log.checkpoint().clone();
            let size = checkpoint.checkpoint().size;
            let old_size = held.min(size);
            let proof = match old_size {
                0 => Vec::new(),
                _ => log
                    .consistency_proof(old_size, size)
                    .map_err(ApiError::internal)?,
            };
            let request = AddCheckpoint {
                old_size,
                proof,
                checkpoint: checkpoint.text().into_bytes(),
            };
            Ok((checkpoint, request.to_body()))
        })
        .await
        .map_err(|e| e.to_string())?;
    let size = checkpoint.checkpoint().size;
    let response = client
        .post(format!("{}/add-checkpoint", target.url))
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    if bytes.len() > ANSWER_BYTES_MAX {
        return Err(format!("answer of {} bytes", bytes.len()));
    }
    match status.as_u16() {
        200 => {
            let lines = String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())?;
            let filed = file_lines(app, target, checkpoint, lines).await?;
            if filed == 0 {
                return Err("the answer holds no cosignature by the witness's key".into());
            }
            Ok((size, Answer::Cosigned))
        }
        409 => Ok((
            size,
            Answer::Holds(parse_size_body(&bytes).map_err(|e| e.to_string())?),
        )),
        _ => Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&bytes).trim_end()
        )),
    }
}

async fn file_lines(
    app: &AppState,
    target: &WitnessTarget,
    checkpoint: SignedCheckpoint,
    lines: String,
) -> Result<usize, String> {
    let state = app.clone();
    let target = target.clone();
    // Filing fsyncs: on the blocking pool.
    app.read_blocking(move |ledger| {
        state.cosignatures.file_witness_lines(
            ledger,
            &checkpoint,
            target.party(),
            &target.key,
            &lines,
        )
    })
    .await
    .map_err(|e| format!("{}: {e}", e.code()))
}
