//! Shared helpers for the integration tests: real keys (seeded), real envelopes, real
//! log directories in temporary folders.

use std::path::Path;

use ed25519_dalek::SigningKey;
use lesson_ledger::log::envelope::{Envelope, KeyCache, VerifiedEnvelope};
use lesson_ledger::log::note::{KeyName, NoteSigner};
use lesson_ledger::log::store::{EntryIdOnly, Log};

pub const PAYLOAD_TYPE: &str = "application/vnd.lesson-ledger.test+json";

/// A deterministic signer: the same seed gives the same key in every run.
pub fn signer(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::new(
        KeyName::new(name).expect("valid test key name"),
        SigningKey::from_bytes(&[seed; 32]),
    )
}

/// A signed envelope whose payload is `{"id":"<id>","n":<n>}`.
pub fn envelope(signers: &[&NoteSigner], id: &str, n: u64) -> Envelope {
    let payload = format!("{{\"id\":\"{id}\",\"n\":{n}}}");
    Envelope::sign(PAYLOAD_TYPE, payload.as_bytes(), signers).expect("signable")
}

pub fn verified(envelope: Envelope) -> VerifiedEnvelope {
    envelope
        .verify(&KeyCache::self_certifying())
        .expect("test envelope verifies")
}

/// A new raw log (no rules above) in `dir`.
pub fn new_log(dir: &Path) -> Log {
    Log::create(
        dir,
        "lessons.example/test",
        "operator",
        Box::new(EntryIdOnly),
    )
    .expect("create log")
}

pub fn reopen(dir: &Path) -> Log {
    Log::open(dir, Box::new(EntryIdOnly)).expect("reopen log").0
}
