//! A family's choices as a signed entry (issue 18): `claim_preferences_set` built from
//! its parts and signed with the student's key, ready for [`Client::submit`]
//! (`lesson-ledger client preferences`). The rules judge it; nothing is checked here
//! that the ledger would not check again.
//!
//! [`Client::submit`]: super::Client::submit

use crate::ledger::payload::ClaimPreferencesSet;
use crate::ledger::PAYLOAD_TYPE;
use crate::log::envelope::{Envelope, EnvelopeError};
use crate::log::note::NoteSigner;

/// The signed `claim_preferences_set` of `prefs` (its `id` and `ledger` as given).
///
/// # Errors
/// As [`Envelope::sign`] (a payload too large to be accepted).
pub fn preferences_envelope(
    prefs: &ClaimPreferencesSet,
    student: &NoteSigner,
) -> Result<Envelope, EnvelopeError> {
    let ClaimPreferencesSet {
        id,
        ledger,
        claim,
        subjects,
        accepts_online,
        accepted_districts,
        requests,
    } = prefs;
    let payload = serde_json::json!({
        "kind": "claim_preferences_set", "id": id, "ledger": ledger, "claim": claim,
        "subjects": subjects, "accepts_online": accepts_online,
        "accepted_districts": accepted_districts, "requests": requests,
    });
    Envelope::sign(PAYLOAD_TYPE, payload.to_string().as_bytes(), &[student])
}

/// A fresh entry id for a claim's preferences: `prefs.<claim>.<r>`, `<r>` 64 bits of
/// `nonce`'s BLAKE3 as letters `a`..=`p` (no run of digits: an id with 11 digits in a
/// row is refused as a suspected phone number). Ids are scoped by their author, the
/// student, so a later choice of the same claim needs only a new nonce.
#[must_use]
pub fn preferences_id(claim: &str, nonce: &[u8]) -> String {
    let h = blake3::hash(nonce);
    let letters: String = h.as_bytes()[..8]
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .map(|n| char::from(b'a' + n))
        .collect();
    let mut claim_part: String = claim.chars().take(40).collect();
    claim_part.retain(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    format!("prefs.{claim_part}.{letters}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::payload::{parse, Entry};

    #[test]
    fn the_envelope_carries_exactly_the_entry_the_rules_parse() {
        let key = crate::log::keyfile::generate();
        let name = crate::log::note::KeyName::new("stu-3f9a").unwrap();
        let signer = NoteSigner::new(name, key);
        let prefs = ClaimPreferencesSet {
            id: preferences_id("c-0001", b"1"),
            ledger: "ledger.example/sh".into(),
            claim: "c-0001".into(),
            subjects: vec!["art".into(), "math".into()],
            accepts_online: true,
            accepted_districts: vec!["minhang".into()],
            requests: vec!["p-0007".into()],
        };
        let e = preferences_envelope(&prefs, &signer).unwrap();
        let Entry::ClaimPreferencesSet(back) = parse(e.payload()).unwrap() else {
            panic!("another kind");
        };
        assert_eq!(back, prefs);
        assert!(prefs.id.starts_with("prefs.c-0001."));
        assert_ne!(preferences_id("c-0001", b"2"), prefs.id);
    }
}
