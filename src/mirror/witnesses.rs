//! The origin's witness cosignatures (C2SP tlog-cosignature), kept by the mirror only
//! once verified against the witness keys it is configured with (`--witness-key`,
//! repeatable, and `--witnesses K`: the policy of the client's
//! [`crate::client::Trust`]).
//!
//! A checkpoint served by the origin may carry any lines; the mirror serves beside its
//! own cosignature only the lines of a configured key whose cosignature verifies, in
//! this round, over this checkpoint's body. A key with a line that does not verify has
//! none of its lines kept (a replayed or forged line is never served). Fewer verified
//! keys than the quorum and the mirror does not advance to that checkpoint.

use std::collections::BTreeSet;

use super::MirrorError;
use crate::log::note::{verify_cosignature, CosignerKey, NoteVerifier, SignedCheckpoint};

/// The witness keys the mirror checks, and how many of them a checkpoint needs.
/// Invariant: at least `quorum` distinct keys, so the quorum can be met.
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    keys: Vec<CosignerKey>,
    quorum: usize,
}

/// The witness lines of a checkpoint that verified, and how many keys they are of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Witnessed {
    /// The verified signature lines, each ending in a newline.
    pub lines: String,
    /// Distinct witness keys whose cosignature verified (what the quorum counts).
    pub keys: usize,
}

impl WitnessPolicy {
    /// `vkeys`: a witness's cosigner key (type 0x04) or a signed-note key (type 0x01,
    /// an association's registered key, taken as the same name and public key as a
    /// cosigner, as the client does); `quorum`: default 1 when keys are given, else 0.
    ///
    /// # Errors
    /// [`MirrorError::Config`] for a key that does not parse, or a quorum above the
    /// number of distinct keys.
    pub fn new(vkeys: &[String], quorum: Option<usize>) -> Result<WitnessPolicy, MirrorError> {
        let keys = vkeys
            .iter()
            .map(|vkey| cosigner_key(vkey))
            .collect::<Result<Vec<_>, _>>()?;
        let distinct: BTreeSet<String> = keys.iter().map(CosignerKey::to_vkey).collect();
        let quorum = quorum.unwrap_or(usize::from(!keys.is_empty()));
        if quorum > distinct.len() {
            return Err(MirrorError::Config(format!(
                "{quorum} witness cosignatures required, but {} witness keys given",
                distinct.len()
            )));
        }
        Ok(WitnessPolicy { keys, quorum })
    }

    /// The lines of `checkpoint` (the origin's, with every line it was served with)
    /// that verify under a configured key.
    ///
    /// # Errors
    /// [`MirrorError::WitnessQuorum`] when fewer than the quorum of keys verified.
    pub fn verify(&self, checkpoint: &SignedCheckpoint) -> Result<Witnessed, MirrorError> {
        let mut witnessed = Witnessed::default();
        let mut counted = BTreeSet::new();
        for key in &self.keys {
            if verify_cosignature(checkpoint, key).is_err() || !counted.insert(key.to_vkey()) {
                continue;
            }
            for line in checkpoint.note().signatures() {
                if line.name() == key.name() && line.key_id() == key.key_id() {
                    witnessed.lines.push_str(&line.to_line());
                }
            }
        }
        witnessed.keys = counted.len();
        if witnessed.keys < self.quorum {
            return Err(MirrorError::WitnessQuorum {
                size: checkpoint.checkpoint().size,
                verified: witnessed.keys,
                required: self.quorum,
            });
        }
        Ok(witnessed)
    }
}

fn cosigner_key(vkey: &str) -> Result<CosignerKey, MirrorError> {
    let bad =
        |e: crate::log::note::NoteError| MirrorError::Config(format!("witness key {vkey}: {e}"));
    match CosignerKey::from_vkey(vkey) {
        Ok(key) => Ok(key),
        Err(_) => {
            let note_key = NoteVerifier::from_vkey(vkey).map_err(bad)?;
            CosignerKey::new(note_key.name().clone(), *note_key.verifying_key()).map_err(bad)
        }
    }
}
