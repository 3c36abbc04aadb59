//! Balances, page by page, every page verified (issue 11, items 4 and 11).
//!
//! A balance is served in pages ([`crate::http::balances`]); [`Client::balance_with`]
//! follows them and checks each one completely before asking for the next: its
//! checkpoint against the client's [`Trust`], that its entries are exactly the next
//! ones the balance lists ([`verify_page`]), and each leaf's inclusion. Then it checks
//! that the checkpoints of the pages (and the one remembered, if any) are one history.
//!
//! Nothing malformed is read as empty: a balance whose `entries` (or a claim's) is not
//! a list of entry indexes fails verification.

use serde_json::Value;

use super::{b64, failed, BalanceKind, Client, ClientError, Trust};
use crate::http::balances::{ProvenBalance, ProvenEntry};
use crate::log::envelope::Envelope;
use crate::log::hash::leaf_hash;
use crate::log::leaf;
use crate::log::note::{NoteVerifier, SignedCheckpoint};
use crate::log::proof::verify_inclusion;

impl Client {
    /// A balance with all its entries, every page verified against a checkpoint signed
    /// by `operator` (the operator's own tools; a student's client uses
    /// [`Client::balance_with`] and witnesses).
    ///
    /// # Errors
    /// As [`Client::balance_with`].
    pub fn balance(
        &self,
        kind: BalanceKind,
        id: &str,
        operator: &NoteVerifier,
    ) -> Result<ProvenBalance, ClientError> {
        self.balance_with(kind, id, &Trust::operator_only(operator.clone()))
    }

    /// A balance with all its entries, following its pages. Each page's checkpoint is
    /// checked against `trust` and each entry proven included in its page's checkpoint;
    /// those checkpoints are proven consistent with one another and with the one
    /// `trust` remembers. The answer holds the last page's balance and checkpoint and
    /// every page's entries (each with the proof it was checked with); `next` is `None`.
    ///
    /// # Errors
    /// [`ClientError::Verification`] if anything does not verify; transport, status.
    pub fn balance_with(
        &self,
        kind: BalanceKind,
        id: &str,
        trust: &Trust,
    ) -> Result<ProvenBalance, ClientError> {
        let mut checkpoints = Vec::new();
        let mut entries = Vec::new();
        let mut from = 0u64;
        let last = loop {
            let page: ProvenBalance =
                self.get_json(&format!("/v1/{}/{id}?from={from}", kind.path()))?;
            let cp = trust.checkpoint(page.checkpoint.as_bytes())?;
            let listed = verify_page(&page, &cp, from)?;
            checkpoints.push(cp);
            let ProvenBalance {
                balance,
                checkpoint,
                entries: served,
                next,
            } = page;
            entries.extend(served);
            match next {
                Some(next) => from = next,
                None => {
                    // Pages are positions in a list that only grows at the end: all of
                    // them together must be exactly what the last page lists.
                    let all: Vec<u64> = entries.iter().map(|e: &ProvenEntry| e.index).collect();
                    if all != listed {
                        return Err(failed(
                            "the balance's entries changed while its pages were read; ask again",
                        ));
                    }
                    break ProvenBalance {
                        balance,
                        checkpoint,
                        entries,
                        next: None,
                    };
                }
            }
        };
        trust.remember(self, &checkpoints)?;
        Ok(last)
    }
}

/// The entry indexes a balance lists, sorted and distinct: its `entries`, or for a
/// student every claim's `entries`.
///
/// # Errors
/// [`ClientError::Verification`] when neither is a list of entry indexes.
pub fn listed_entries(balance: &Value) -> Result<Vec<u64>, ClientError> {
    let indexes = |v: &Value, what: &str| {
        serde_json::from_value::<Vec<u64>>(v.clone())
            .map_err(|e| failed(format!("{what} is not a list of entry indexes: {e}")))
    };
    let mut listed = match (balance.get("entries"), balance.get("claims")) {
        (Some(entries), None) => indexes(entries, "the balance's entries")?,
        (None, Some(Value::Array(claims))) => {
            let mut all = Vec::new();
            for claim in claims {
                let entries = claim
                    .get("entries")
                    .ok_or_else(|| failed("a claim of the balance lists no entries"))?;
                all.extend(indexes(entries, "a claim's entries")?);
            }
            all
        }
        _ => {
            return Err(failed(
                "the balance lists its entries neither in `entries` nor in `claims`",
            ))
        }
    };
    listed.sort_unstable();
    listed.dedup();
    Ok(listed)
}

/// Checks one page of a balance served from position `from` against its checkpoint
/// `cp` (already checked by the caller's [`Trust`]): its entries are exactly the next
/// ones the balance lists, `next` says where the rest starts, and each entry's leaf,
/// rebuilt from what was served, is included in `cp`. Returns the listed indexes.
///
/// # Errors
/// [`ClientError::Verification`] naming the first thing that does not verify.
pub fn verify_page(
    page: &ProvenBalance,
    cp: &SignedCheckpoint,
    from: u64,
) -> Result<Vec<u64>, ClientError> {
    let listed = listed_entries(&page.balance)?;
    let start = usize::try_from(from).map_err(|_| failed("page position out of range"))?;
    let end = start
        .checked_add(page.entries.len())
        .filter(|&end| end <= listed.len())
        .ok_or_else(|| failed("the page serves more entries than the balance lists"))?;
    let served: Vec<u64> = page.entries.iter().map(|e| e.index).collect();
    if served != listed[start..end] {
        return Err(failed(format!(
            "the page from {from} serves entries {served:?}, the balance lists {:?} there",
            &listed[start..end]
        )));
    }
    let expected_next = (end < listed.len()).then_some(end as u64);
    if page.entries.is_empty() && expected_next.is_some() || page.next != expected_next {
        return Err(failed(format!(
            "the page says the next starts at {:?}; the balance lists {} entries and this page ends at {end}",
            page.next,
            listed.len()
        )));
    }
    let (size, root) = (cp.checkpoint().size, cp.checkpoint().root);
    for e in &page.entries {
        let envelope = Envelope::from_json(e.envelope.get().as_bytes())
            .map_err(|err| failed(format!("entry {}: {err}", e.index)))?;
        let bytes = leaf::encode_parts(
            e.index,
            e.time_micros,
            envelope.payload_type(),
            envelope.payload(),
            envelope.signatures(),
        )
        .map_err(|err| failed(format!("entry {}: {err}", e.index)))?;
        let hash = leaf_hash(&bytes);
        if hash != b64("leaf hash", &e.leaf_hash)? {
            return Err(failed(format!(
                "entry {}: leaf hash does not match its content",
                e.index
            )));
        }
        let proof = e
            .inclusion_proof
            .iter()
            .map(|h| b64("proof node", h))
            .collect::<Result<Vec<_>, _>>()?;
        verify_inclusion(&hash, e.index, size, &proof, &root)
            .map_err(|err| failed(format!("entry {}: {err}", e.index)))?;
    }
    Ok(listed)
}

/// Checks a whole balance served in one page: the checkpoint's signature under
/// `operator`, and [`verify_page`] from position 0 with no page after it.
///
/// # Errors
/// [`ClientError::Verification`] naming the first thing that does not verify.
pub fn verify_balance(b: &ProvenBalance, operator: &NoteVerifier) -> Result<(), ClientError> {
    let cp = SignedCheckpoint::parse_and_verify(b.checkpoint.as_bytes(), operator)
        .map_err(|e| failed(format!("balance checkpoint: {e}")))?;
    verify_page(b, &cp, 0)?;
    if b.next.is_some() {
        return Err(failed("the balance has more pages than the one given"));
    }
    Ok(())
}
