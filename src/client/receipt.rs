//! Checking a receipt against the envelope it was given for (`schemas/README.md` §6),
//! with nothing fetched: the receipt alone ties the statement to a signed checkpoint.
//!
//! 1. the entry id is BLAKE3 of the envelope's PAE (the statement submitted);
//! 2. the leaf rebuilt from the envelope, the receipt's `index` and `time_micros` hashes
//!    to `leaf_hash` (so the leaf proven is the statement's, at that place and time);
//! 3. the checkpoint is signed by the operator key (strictly);
//! 4. the inclusion proof takes `leaf_hash` at `index` to the checkpoint's root.
//!
//! Without the ledger time in the receipt, step 2 needed the entry fetched from the
//! server; a receipt could then prove that *some* leaf is in the log, not which.

use crate::log::envelope::Envelope;
use crate::log::hash::{leaf_hash, Hash};
use crate::log::leaf;
use crate::log::note::{NoteVerifier, SignedCheckpoint};
use crate::log::proof::verify_inclusion;
use crate::log::store::Receipt;

use super::ClientError;

fn failed(index: u64, what: String) -> ClientError {
    ClientError::Verification(format!("receipt of entry {index}: {what}"))
}

/// Checks `receipt` for `envelope` under the `operator` key, as listed in the module
/// documentation, and returns the checkpoint it proves inclusion in.
///
/// # Errors
/// [`ClientError::Verification`] naming the first step that fails.
pub fn verify_receipt(
    receipt: &Receipt,
    envelope: &Envelope,
    operator: &NoteVerifier,
) -> Result<SignedCheckpoint, ClientError> {
    let index = receipt.index;
    let entry_id = envelope.entry_id().to_string();
    if receipt.entry_id != entry_id {
        return Err(failed(
            index,
            format!(
                "entry id {} is not the envelope's {entry_id}",
                receipt.entry_id
            ),
        ));
    }
    let bytes = leaf::encode_parts(
        index,
        receipt.time_micros,
        envelope.payload_type(),
        envelope.payload(),
        envelope.signatures(),
    )
    .map_err(|e| failed(index, format!("the leaf cannot be rebuilt: {e}")))?;
    let rebuilt = leaf_hash(&bytes);
    let claimed = Hash::from_base64(&receipt.leaf_hash)
        .ok_or_else(|| failed(index, "leaf hash is not base64 of 32 bytes".into()))?;
    if rebuilt != claimed {
        return Err(failed(
            index,
            format!(
                "the leaf of this envelope at index {index} and time {} hashes to {}, not {}",
                receipt.time_micros,
                rebuilt.to_base64(),
                receipt.leaf_hash
            ),
        ));
    }
    let cp = SignedCheckpoint::parse_and_verify(receipt.checkpoint.as_bytes(), operator)
        .map_err(|e| failed(index, format!("checkpoint: {e}")))?;
    let proof = receipt
        .inclusion_proof
        .iter()
        .map(|h| Hash::from_base64(h))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            failed(
                index,
                "an inclusion proof hash is not base64 of 32 bytes".into(),
            )
        })?;
    let (size, root) = (cp.checkpoint().size, cp.checkpoint().root);
    verify_inclusion(&claimed, index, size, &proof, &root)
        .map_err(|e| failed(index, format!("inclusion in tree size {size}: {e}")))?;
    Ok(cp)
}
