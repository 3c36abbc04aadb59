//! What a client requires of a checkpoint before it believes anything proven against
//! it (issue 11, item 11: split views).
//!
//! The operator's signature alone proves only that the operator said so: an operator
//! can show one student a history different from everybody else's (a split view), and
//! every proof the student checks will verify against it. Two things catch that:
//! - **witnesses**: the checkpoint must carry cosignatures (C2SP cosignature/v1) of at
//!   least `witnesses_min` of the consumer associations the student trusts; an
//!   association cosigns only a checkpoint it has audited as consistent with what it
//!   saw before, so a forked view would need the associations' keys too;
//! - **memory**: with a state file (the same format `verify --url --state` keeps), the
//!   client remembers the last checkpoint it accepted and demands, every time, a
//!   consistency proof from it to the new one: once it has seen a history, it cannot
//!   be shown a different one.
//!
//! ```
//! use lesson_ledger::client::Trust;
//! use lesson_ledger::log::note::{KeyName, NoteSigner};
//! use ed25519_dalek::SigningKey;
//! let operator = NoteSigner::new(KeyName::new("operator")?, SigningKey::from_bytes(&[1; 32]));
//! // A student who trusts no association cannot ask for a cosignature.
//! assert!(Trust::witnessed(operator.verifier(), vec![], 1, None).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{b64, failed, read_state, write_state, AuditState, Client, ClientError};
use crate::http::reads::ConsistencyProof;
use crate::log::note::{verify_cosignature, CosignerKey, NoteVerifier, SignedCheckpoint};
use crate::log::proof::verify_consistency;

/// The keys and the memory a client checks checkpoints with. Invariant: at least
/// `witnesses_min` association keys are known, so the requirement can be met.
#[derive(Debug, Clone)]
pub struct Trust {
    operator: NoteVerifier,
    associations: Vec<CosignerKey>,
    witnesses_min: usize,
    state: Option<PathBuf>,
}

impl Trust {
    /// The operator's signature alone: for the operator's own tools (the demo). A
    /// student's client uses [`Trust::witnessed`].
    pub fn operator_only(operator: NoteVerifier) -> Trust {
        Trust {
            operator,
            associations: Vec::new(),
            witnesses_min: 0,
            state: None,
        }
    }

    /// The operator's signature, cosignatures of at least `witnesses_min` of
    /// `associations` (their registered signed-note keys, as cosigners), and, with
    /// `state`, consistency with the last checkpoint accepted.
    ///
    /// # Errors
    /// [`ClientError::Usage`] when fewer than `witnesses_min` association keys are given.
    pub fn witnessed(
        operator: NoteVerifier,
        associations: Vec<NoteVerifier>,
        witnesses_min: usize,
        state: Option<PathBuf>,
    ) -> Result<Trust, ClientError> {
        let associations: Vec<CosignerKey> = associations
            .iter()
            .map(|v| CosignerKey::new(v.name().clone(), *v.verifying_key()))
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::Usage(format!("association key: {e}")))?;
        let distinct: BTreeSet<_> = associations.iter().map(|a| a.to_vkey()).collect();
        if distinct.len() < witnesses_min {
            return Err(ClientError::Usage(format!(
                "{witnesses_min} association cosignatures required, but {} association keys given",
                distinct.len()
            )));
        }
        Ok(Trust {
            operator,
            associations,
            witnesses_min,
            state,
        })
    }

    /// The operator key.
    pub fn operator(&self) -> &NoteVerifier {
        &self.operator
    }

    /// Parses a served checkpoint and checks the operator's signature and the
    /// cosignatures required.
    ///
    /// # Errors
    /// [`ClientError::Verification`] naming what is missing.
    pub fn checkpoint(&self, text: &[u8]) -> Result<SignedCheckpoint, ClientError> {
        let cp = SignedCheckpoint::parse_and_verify(text, &self.operator)
            .map_err(|e| failed(format!("the checkpoint does not verify: {e}")))?;
        self.cosigned(&cp)?;
        Ok(cp)
    }

    /// Checks that `cp` carries verified cosignatures of at least `witnesses_min` of
    /// the associations (its operator signature is checked by the caller).
    ///
    /// # Errors
    /// [`ClientError::Verification`] naming how many are missing.
    pub fn cosigned(&self, cp: &SignedCheckpoint) -> Result<(), ClientError> {
        let mut witnesses = BTreeSet::new();
        for association in &self.associations {
            if verify_cosignature(cp, association).is_ok() {
                witnesses.insert(association.to_vkey());
            }
        }
        if witnesses.len() < self.witnesses_min {
            return Err(failed(format!(
                "the checkpoint of size {} carries {} verified association cosignatures, {} required (a view no association has checked)",
                cp.checkpoint().size,
                witnesses.len(),
                self.witnesses_min
            )));
        }
        Ok(())
    }

    /// Checks that `seen` (checkpoints accepted in this order) and the one remembered
    /// in the state file form one history: each consistent with the one before, proof
    /// fetched from `client` and checked; then remembers the last.
    ///
    /// # Errors
    /// [`ClientError::Verification`] for a checkpoint not consistent with an earlier
    /// one (a split view or a rewritten history); I/O errors of the state file.
    pub fn remember(&self, client: &Client, seen: &[SignedCheckpoint]) -> Result<(), ClientError> {
        let mut chain = Vec::with_capacity(seen.len() + 1);
        if let Some(path) = &self.state {
            if let Some(state) = read_state(path)? {
                if state.operator_vkey != self.operator.to_vkey() {
                    return Err(failed(format!(
                        "{} remembers operator key {}, not this one",
                        path.display(),
                        state.operator_vkey
                    )));
                }
                let old =
                    SignedCheckpoint::parse_and_verify(state.checkpoint.as_bytes(), &self.operator)
                        .map_err(|e| failed(format!("the remembered checkpoint: {e}")))?;
                chain.push(old);
            }
        }
        chain.extend(seen.iter().cloned());
        for pair in chain.windows(2) {
            consistent(client, &pair[0], &pair[1])?;
        }
        if let (Some(path), Some(last)) = (&self.state, chain.last()) {
            write_state(
                path,
                &AuditState {
                    operator_vkey: self.operator.to_vkey(),
                    checkpoint: last.text(),
                },
            )?;
        }
        Ok(())
    }
}

/// Checks that `new` extends `old`: same origin, not smaller, and, if larger, a
/// consistency proof from the server that verifies between the two signed roots.
fn consistent(
    client: &Client,
    old: &SignedCheckpoint,
    new: &SignedCheckpoint,
) -> Result<(), ClientError> {
    let (old, new) = (old.checkpoint(), new.checkpoint());
    if old.origin != new.origin {
        return Err(failed("the origin changed since the last checkpoint seen"));
    }
    if new.size < old.size {
        return Err(failed(format!(
            "the log shrank: a checkpoint of size {} after one of size {}",
            new.size, old.size
        )));
    }
    if new.size == old.size {
        return if new.root == old.root {
            Ok(())
        } else {
            Err(failed(format!(
                "two different roots for size {}: a split view",
                new.size
            )))
        };
    }
    if old.size == 0 {
        return Ok(());
    }
    let proof: ConsistencyProof = client.get_json(&format!(
        "/v1/proofs/consistency?from={}&to={}",
        old.size, new.size
    ))?;
    let nodes = proof
        .proof
        .iter()
        .map(|h| b64("proof node", h))
        .collect::<Result<Vec<_>, _>>()?;
    verify_consistency(old.size, new.size, &old.root, &new.root, &nodes).map_err(|e| {
        failed(format!(
            "the checkpoint of size {} is not consistent with the one of size {} seen before (a split view, or history rewritten): {e}",
            new.size, old.size
        ))
    })
}
