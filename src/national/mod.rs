//! The national view (issue 17, "Many cities"): every city's published tree read as a
//! stranger reads it — the checkpoint verified under the city operator's key (and the
//! association cosignatures required), the state note of the same size verified against
//! it, the pool object's state proof verified against the note's root — and each city's
//! pool, claims and coverage reported with the national totals of the cities verified.
//!
//! A city that fails any step, or cannot be reached, is reported with its error code
//! and left out of the totals: a total never includes a figure that was not proven.
//!
//! Each city is read from its published tree (`lesson-ledger publish`, served by any web
//! server) at three paths: `checkpoint`, `v1/state-notes/<size>` and `v1/pool`
//! (`schemas/README.md`, "The published tree and the national view"). The pool answer
//! must be proven against that note and a checkpoint of the same size and root.

pub mod report;

use rayon::prelude::*;
use serde::Serialize;

use crate::api::PoolAnswer;
use crate::client::proofs::{state_root, BalanceError, ProvenObjects};
use crate::client::{decode_answer, ClientError, Trust};
use crate::ledger::objects::Pool;
use crate::log::note::{NoteError, SignedCheckpoint};
use crate::publish::source::{Body, HttpSource};
use crate::publish::PublishError;

/// One city: its name, the base URL of its published tree, and how its checkpoints are
/// trusted (its operator's key, the associations' cosignatures required).
#[derive(Debug, Clone)]
pub struct City {
    /// The city's name, as the report shows it (the operator's choice, not verified).
    pub name: String,
    /// The base URL of the city's published tree (`checkpoint`, `v1/pool`, … under it).
    pub url: String,
    /// The operator's key and the cosignatures required of its checkpoints.
    pub trust: Trust,
}

/// Why a city is not in the totals. Every variant has its own stable
/// [code](CityError::code).
#[derive(Debug, thiserror::Error)]
pub enum CityError {
    /// The tree could not be read (transport, a status other than 200 or 404, a body
    /// over its cap).
    #[error("unreachable: {0}")]
    Unreachable(#[source] PublishError),
    /// A path the view needs is not published.
    #[error("{path} is not published")]
    NotPublished {
        /// The path, relative to the city's URL.
        path: String,
    },
    /// The checkpoint is not signed by the city operator's key.
    #[error("the checkpoint does not verify: {0}")]
    Checkpoint(#[source] NoteError),
    /// The checkpoint lacks the association cosignatures required.
    #[error("{0}")]
    Cosignatures(#[source] ClientError),
    /// A note published is not text.
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The path, relative to the city's URL.
        path: String,
    },
    /// The state note of the checkpoint's size does not verify against it.
    #[error("the state note: {0}")]
    StateNote(#[source] BalanceError),
    /// The pool answer does not decode, or its figures do not add up.
    #[error("the pool answer: {0}")]
    PoolAnswer(#[source] ClientError),
    /// The pool answer is proven against another checkpoint than the one published.
    #[error("the pool is proven against the checkpoint of size {pool_size}, the published one is of size {size} (or another root)")]
    PoolCheckpoint {
        /// The published checkpoint's tree size.
        size: u64,
        /// The tree size of the checkpoint the pool answer carries.
        pool_size: u64,
    },
    /// The pool answer carries another state note than the one published at its size.
    #[error("the pool is proven against another state note than the one published")]
    PoolStateNote,
    /// The pool object's proof does not verify against the note's root.
    #[error("the pool's proof: {0}")]
    PoolProof(#[source] BalanceError),
}

impl CityError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CityError::Unreachable(_) => "city_unreachable",
            CityError::NotPublished { .. } => "not_published",
            CityError::Checkpoint(_) => "checkpoint_unverified",
            CityError::Cosignatures(_) => "cosignatures_missing",
            CityError::NotText { .. } => "state_note_invalid",
            CityError::StateNote(e) => e.code(),
            CityError::PoolAnswer(e) => match e {
                ClientError::Balance(b) => b.code(),
                _ => "pool_malformed",
            },
            CityError::PoolCheckpoint { .. } => "pool_checkpoint_mismatch",
            CityError::PoolStateNote => "pool_state_note_mismatch",
            CityError::PoolProof(e) => e.code(),
        }
    }
}

/// A city's figures, every one read from its pool object proven against its state note
/// and checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The tree size of the checkpoint verified.
    pub size: u64,
    /// The pool object as proven.
    pub pool: Pool,
}

/// One city's outcome.
#[derive(Debug)]
pub struct CityReport {
    /// The city's name, as given.
    pub name: String,
    /// The base URL of its published tree.
    pub url: String,
    /// Its verified figures, or why it is left out of the totals.
    pub outcome: Result<Verified, CityError>,
}

/// Reads and verifies every city, in parallel, in the order given.
pub fn survey(cities: &[City]) -> Vec<CityReport> {
    cities
        .par_iter()
        .map(|city| CityReport {
            name: city.name.clone(),
            url: city.url.clone(),
            outcome: verify_city(city),
        })
        .collect()
}

/// `GET url/path` of a published object that must be there.
fn fetch(source: &HttpSource, path: &str, kind: Body) -> Result<Vec<u8>, CityError> {
    source
        .get(path, kind)
        .map_err(CityError::Unreachable)?
        .ok_or_else(|| CityError::NotPublished {
            path: format!("{}/{path}", source.url()),
        })
}

/// One city, step by step: checkpoint, cosignatures, state note, pool answer, proof.
///
/// # Errors
/// The first step that fails, as a [`CityError`].
pub fn verify_city(city: &City) -> Result<Verified, CityError> {
    let source = HttpSource::new(&city.url).map_err(CityError::Unreachable)?;
    let operator = city.trust.operator();
    // 1. The checkpoint, under the operator's key; then the cosignatures required.
    let text = fetch(&source, "checkpoint", Body::Note)?;
    let cp = SignedCheckpoint::parse_and_verify(&text, operator).map_err(CityError::Checkpoint)?;
    city.trust.cosigned(&cp).map_err(CityError::Cosignatures)?;
    let size = cp.checkpoint().size;
    // 2. The state note of the same size and origin, signed by the operator.
    let note_path = format!("v1/state-notes/{size}");
    let note = fetch(&source, &note_path, Body::Note)?;
    let note = String::from_utf8(note).map_err(|_| CityError::NotText { path: note_path })?;
    let root = state_root(&note, &cp, operator).map_err(CityError::StateNote)?;
    // 3. The pool answer: its figures add up, and it is proven against this note and a
    // checkpoint of this size and root (its cosignature lines may be others).
    let bytes = fetch(&source, "v1/pool", Body::Json)?;
    let answer: PoolAnswer = decode_answer("/v1/pool", &bytes).map_err(CityError::PoolAnswer)?;
    if answer.state_note != note {
        return Err(CityError::PoolStateNote);
    }
    let pool_cp = SignedCheckpoint::parse_and_verify(answer.checkpoint.as_bytes(), operator)
        .map_err(CityError::Checkpoint)?;
    let (pool_size, pool_root) = (pool_cp.checkpoint().size, pool_cp.checkpoint().root);
    if pool_size != size || pool_root != cp.checkpoint().root {
        return Err(CityError::PoolCheckpoint { size, pool_size });
    }
    // 4. The pool object's proof against the note's root.
    answer
        .check_objects("", &root)
        .map_err(CityError::PoolProof)?;
    Ok(Verified {
        size,
        pool: answer.pool.object,
    })
}
