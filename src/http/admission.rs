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
//!
//! Whether a key is registered is read from the ledger's state under its read lock,
//! which the writer holds for a whole group commit, fdatasync included (issue 15: in a
//! profile of single POSTs, requests slept on that lock before verifying, so
//! verification came in bursts after each commit). A key once registered stays
//! registered (no entry deletes an object, `ledger::state`), so the keys found
//! registered are remembered ([`RegisteredKeys`]) and a request whose signers are all
//! remembered or named never takes the lock. Only the positive answer is remembered:
//! an unknown key is asked again each time, and can never fill the memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

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
    /// The stable snake_case code of the refusal (e.g. `unknown_key`).
    pub code: &'static str,
    /// What exactly was wrong, in words.
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
    Repeat {
        /// The earlier envelope's position in the request, from 0.
        of: usize,
    },
}

/// Keys found registered in the ledger, remembered so that admission need not take the
/// ledger's lock for them again (see the module's documentation): at most
/// [`RegisteredKeys::KEYS_MAX`], forgotten all at once when full.
#[derive(Debug, Default)]
pub struct RegisteredKeys {
    known: Mutex<HashSet<String>>,
}

impl RegisteredKeys {
    /// Most keys remembered (about 100 bytes each): a city's active signers.
    pub const KEYS_MAX: usize = 1 << 18;

    fn contains(&self, keyid: &str) -> bool {
        // A poisoned lock means a panic while inserting into a set of strings: the set
        // is still a set of keys that were registered.
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.contains(keyid)
    }

    fn remember(&self, keyid: &str) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= Self::KEYS_MAX {
            known.clear();
        }
        known.insert(keyid.to_owned());
    }
}

/// How admission reads the ledger when a key is not remembered.
pub enum LedgerAccess<'a> {
    /// Wait for the read lock (on the blocking pool).
    Wait(&'a RwLock<Ledger>),
    /// Only if the lock is free now (on the runtime, which must not sleep behind a
    /// group commit): [`Admitted::LedgerBusy`] otherwise.
    IfFree(&'a RwLock<Ledger>),
}

/// What [`admit`] found.
#[derive(Debug)]
pub enum Admitted {
    /// A verdict for each envelope, in order.
    Verdicts(Vec<Verdict>),
    /// The ledger had to be read and its lock was taken ([`LedgerAccess::IfFree`]).
    LedgerBusy,
}

/// Checks the envelopes of one request, in order: a [`Verdict`] for each.
///
/// # Errors
/// `too_many_signatures_in_request` (400) for the request as a whole; store faults.
pub fn admit(
    ledger: LedgerAccess<'_>,
    registered: &RegisteredKeys,
    envelopes: &[Result<Envelope, EnvelopeError>],
) -> Result<Admitted, ApiError> {
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
    let mut keys = Keys {
        access: ledger,
        guard: None,
        registered,
        asked: HashMap::new(),
    };
    let mut seen = HashMap::new();
    let mut named = Named {
        envelopes,
        upto: 0,
        strings: HashSet::new(),
    };
    let mut out = Vec::with_capacity(envelopes.len());
    for (position, envelope) in envelopes.iter().enumerate() {
        let Ok(envelope) = envelope else {
            out.push(Verdict::Verify);
            continue;
        };
        // The whole envelope, not only its entry id: the same statement with other
        // signatures is another envelope, to be verified on its own. (One envelope
        // repeats nothing: no need to write it out again.)
        if envelopes.len() > 1 {
            let text = envelope.to_json();
            if let Some(&of) = seen.get(&text) {
                out.push(Verdict::Repeat { of });
                continue;
            }
            seen.insert(text, position);
        }
        let Some(refusal) = keys.unknown_signer(envelope, position, &mut named)? else {
            out.push(Verdict::Verify);
            continue;
        };
        match refusal {
            Unknown::Key(refusal) => out.push(Verdict::Refuse(refusal)),
            Unknown::LedgerBusy => return Ok(Admitted::LedgerBusy),
        }
    }
    Ok(Admitted::Verdicts(out))
}

/// Why a signer could not be admitted.
enum Unknown {
    /// Neither registered nor named.
    Key(Refusal),
    /// Not known without the ledger, whose lock is taken.
    LedgerBusy,
}

/// Where one request's admission learns whether keys are registered: the remembered
/// keys, then the ledger (read lock taken once, on the first key not remembered).
struct Keys<'a> {
    access: LedgerAccess<'a>,
    guard: Option<RwLockReadGuard<'a, Ledger>>,
    registered: &'a RegisteredKeys,
    /// What the ledger answered for this request's keys.
    asked: HashMap<String, bool>,
}

impl Keys<'_> {
    /// The first signer of `envelope` (at `position`) that is neither registered nor
    /// named in the request up to it.
    fn unknown_signer(
        &mut self,
        envelope: &Envelope,
        position: usize,
        named: &mut Named<'_>,
    ) -> Result<Option<Unknown>, ApiError> {
        for signature in envelope.signatures() {
            let keyid = signature.keyid();
            if self.registered.contains(keyid) || named.names(keyid, position) {
                continue;
            }
            let known = match self.asked.get(keyid) {
                Some(&known) => known,
                None => {
                    let Some(ledger) = self.ledger() else {
                        return Ok(Some(Unknown::LedgerBusy));
                    };
                    let known = get_object::<KeyRecord, _>(ledger.state(), keyid)
                        .map_err(ApiError::internal)?
                        .is_some();
                    if known {
                        self.registered.remember(keyid);
                    }
                    self.asked.insert(keyid.to_owned(), known);
                    known
                }
            };
            if !known {
                return Ok(Some(Unknown::Key(Refusal {
                    code: "unknown_key",
                    detail: format!(
                        "key {keyid} is not registered in this ledger, and no entry of this request registers it"
                    ),
                })));
            }
        }
        Ok(None)
    }

    /// The ledger under its read lock, taken now if not yet; `None` if it is busy and
    /// the access may not wait.
    fn ledger(&mut self) -> Option<&Ledger> {
        if self.guard.is_none() {
            self.guard = Some(match self.access {
                // A poisoned lock means a reader panicked; readers change nothing.
                LedgerAccess::Wait(lock) => lock.read().unwrap_or_else(|p| p.into_inner()),
                LedgerAccess::IfFree(lock) => match lock.try_read() {
                    Ok(guard) => guard,
                    Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => return None,
                },
            });
        }
        self.guard.as_deref()
    }
}

/// The strings the payloads of a request name, read only when a signer is not
/// remembered as registered (a payload's JSON tree is the dearest part of admission).
struct Named<'a> {
    envelopes: &'a [Result<Envelope, EnvelopeError>],
    /// Payloads read so far: `envelopes[..upto]`.
    upto: usize,
    strings: HashSet<String>,
}

impl Named<'_> {
    /// Whether the payload of the envelope at `position` or of one before it names `keyid`.
    fn names(&mut self, keyid: &str, position: usize) -> bool {
        while self.upto <= position && self.upto < self.envelopes.len() {
            if let Ok(envelope) = &self.envelopes[self.upto] {
                named_strings(envelope.payload(), &mut self.strings);
            }
            self.upto += 1;
        }
        self.strings.contains(keyid)
    }
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
