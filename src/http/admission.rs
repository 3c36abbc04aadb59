//! Cheap checks on a submission before any signature is verified (issue 11, item 8:
//! one envelope with 8 signatures, repeated 1,024 times in one request, cost 0.27 s of
//! server CPU before anything looked at whose keys they were).
//!
//! In order, each costing a hash or a lookup, never an Ed25519 verification:
//! - the request carries at most [`SIGNATURES_PER_REQUEST_MAX`] signatures in all, or
//!   it is refused whole (`too_many_signatures_in_request`, 400);
//! - an envelope that repeats an earlier one of the same request is not verified
//!   again: it shares the earlier one's verdict (and, appended, answers `exists`, as
//!   a client retrying within one batch expects);
//! - every signing key must be registered in the ledger (revoked or not: the rules
//!   decide that), or be named by the payload of this or an earlier envelope of the
//!   request — a self-registration's or a rotation's new key, possibly used again
//!   later in the same batch, is the one legitimate unknown key. Any other is answered
//!   `unknown_key` without its signature being checked.
//!
//! What remains of the amplification is bounded: at most
//! [`SIGNATURES_PER_REQUEST_MAX`] verifications a request, by keys the ledger knows or
//! the request names.

#![allow(missing_docs)] // items not yet documented one by one (issue 16): this list only shrinks

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::error::ApiError;
use crate::ledger::objects::KeyRecord;
use crate::ledger::state::get_object;
use crate::ledger::writer::Ledger;
use crate::limits::SIGNATURES_PER_REQUEST_MAX;
use crate::log::envelope::{Envelope, EnvelopeError};

/// Why an envelope was refused before verification: a stable code and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub detail: String,
}

/// What to do with one envelope of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Verify its signatures (also said of envelopes that did not parse, which keep
    /// their own error).
    Verify,
    /// Refused without verifying.
    Refuse(Refusal),
    /// The same envelope as the one at this earlier position: share its verdict.
    Repeat { of: usize },
}

/// Checks the envelopes of one request, in order: a [`Verdict`] for each.
///
/// # Errors
/// `too_many_signatures_in_request` (400) for the request as a whole; store faults.
pub fn admit(
    ledger: &Ledger,
    envelopes: &[Result<Envelope, EnvelopeError>],
) -> Result<Vec<Verdict>, ApiError> {
    let signatures: usize = envelopes
        .iter()
        .flatten()
        .map(|e| e.signatures().len())
        .sum();
    if signatures > SIGNATURES_PER_REQUEST_MAX {
        return Err(ApiError::bad_request(
            "too_many_signatures_in_request",
            format!(
                "the request carries {signatures} signatures, more than the {SIGNATURES_PER_REQUEST_MAX} allowed; send it in smaller batches"
            ),
        ));
    }
    let mut seen = HashMap::new();
    let mut named: HashSet<String> = HashSet::new();
    let mut registered: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::with_capacity(envelopes.len());
    for (position, envelope) in envelopes.iter().enumerate() {
        let Ok(envelope) = envelope else {
            out.push(Verdict::Verify);
            continue;
        };
        // The whole envelope, not only its entry id: the same statement with other
        // signatures is another envelope, to be verified on its own.
        let text = envelope.to_json();
        if let Some(&of) = seen.get(&text) {
            out.push(Verdict::Repeat { of });
            continue;
        }
        seen.insert(text, position);
        named_strings(envelope.payload(), &mut named);
        out.push(
            match unknown_signer(ledger, envelope, &named, &mut registered)? {
                Some(refusal) => Verdict::Refuse(refusal),
                None => Verdict::Verify,
            },
        );
    }
    Ok(out)
}

/// The first signer of `envelope` that is neither registered nor named in the request.
fn unknown_signer(
    ledger: &Ledger,
    envelope: &Envelope,
    named: &HashSet<String>,
    registered: &mut HashMap<String, bool>,
) -> Result<Option<Refusal>, ApiError> {
    for signature in envelope.signatures() {
        let keyid = signature.keyid();
        if named.contains(keyid) {
            continue;
        }
        let known = match registered.get(keyid) {
            Some(&known) => known,
            None => {
                let known = get_object::<KeyRecord, _>(ledger.state(), keyid)
                    .map_err(ApiError::internal)?
                    .is_some();
                registered.insert(keyid.to_owned(), known);
                known
            }
        };
        if !known {
            return Ok(Some(Refusal {
                code: "unknown_key",
                detail: format!(
                    "key {keyid} is not registered in this ledger, and no entry of this request registers it"
                ),
            }));
        }
    }
    Ok(None)
}

/// Adds every string value of the payload's JSON (at any depth) to `named`: the keys
/// a registration or a rotation introduces are among them. A payload that is not JSON
/// names nothing (the rules will refuse it).
fn named_strings(payload: &[u8], named: &mut HashSet<String>) {
    fn walk(value: Value, named: &mut HashSet<String>) {
        match value {
            Value::String(s) => {
                named.insert(s);
            }
            Value::Array(items) => items.into_iter().for_each(|v| walk(v, named)),
            Value::Object(map) => map.into_iter().for_each(|(_, v)| walk(v, named)),
            _ => {}
        }
    }
    if let Ok(value) = serde_json::from_slice::<Value>(payload) {
        walk(value, named);
    }
}
