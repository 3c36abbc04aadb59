//! DSSE envelopes: parsing, signing and strict Ed25519 verification of the statements
//! the log records.
//!
//! Implements the [DSSE protocol](https://github.com/secure-systems-lab/dsse/blob/master/protocol.md)
//! and its [JSON envelope](https://github.com/secure-systems-lab/dsse/blob/master/envelope.md):
//! `{"payloadType": str, "payload": base64, "signatures": [{"keyid": str, "sig": base64}]}`,
//! each signature over `PAE(payloadType, payload)`.
//!
//! This module is stricter than DSSE, on purpose, so that one statement has one
//! encoding and every signature counts:
//! - only standard base64 *with padding* and no stray bits (RFC 4648 §4); DSSE says
//!   verifiers MUST also accept URL-safe base64, which we refuse so that the stored
//!   envelope has a single text form;
//! - `keyid` is required and names the signer's public key as a C2SP verifier key
//!   ([`super::note::NoteVerifier::to_vkey`]); a [`KeyLookup`] turns it into a key, and
//!   the ledger above decides whether that key has authority;
//! - *every* signature must verify (DSSE's threshold is "all of them"), no keyid and no
//!   key may sign twice, unknown and duplicate JSON fields are refused, and the input is
//!   capped at [`ENVELOPE_BYTES_MAX`] before it is parsed;
//! - signatures are Ed25519, checked with [`VerifyingKey::verify_strict`]: no
//!   small-order public key or `R`, canonical `S` and `R`.
//!
//! ```
//! use lesson_ledger::log::envelope::{Envelope, SelfCertifying};
//! use lesson_ledger::log::note::{KeyName, NoteSigner};
//! use ed25519_dalek::SigningKey;
//!
//! let operator = NoteSigner::new(KeyName::new("operator")?, SigningKey::from_bytes(&[1; 32]));
//! let envelope = Envelope::sign("application/vnd.example+json", b"{}", &[&operator])?;
//! let parsed = Envelope::from_json(envelope.to_json().as_bytes())?;
//! let verified = parsed.verify(&SelfCertifying)?;
//! assert_eq!(verified.payload(), b"{}");
//! assert_eq!(verified.signer_keyids(), vec![operator.vkey().as_str()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;

mod entry_id;
mod error;
mod json;
mod keys;

pub use entry_id::EntryId;
pub use error::EnvelopeError;
pub use keys::{KeyCache, KeyLookup, KeySet, SelfCertifying};

use super::hash::hex_encode;
use super::note::NoteSigner;
use crate::limits::{
    ENVELOPE_BYTES_MAX, KEYID_BYTES_MAX, PAYLOAD_TYPE_BYTES_MAX, SIGNATURES_PER_ENVELOPE_MAX,
};
use json::{Checked, RawEnvelope};

/// Bytes of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// Longest unknown field name echoed back in an error.
const FIELD_NAME_SHOWN_MAX: usize = 64;

/// The pre-authentication encoding that every signature covers:
///
/// ```text
/// PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP + type + SP + LEN(body) + SP + body
/// LEN(s)          = ASCII decimal encoding of the byte length of s, with no leading zeros
/// ```
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        10 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature of an envelope. Invariant: the keyid is well-formed (non-empty, at most
/// [`KEYID_BYTES_MAX`] bytes, no whitespace or control character) and the signature is
/// 64 bytes. Nothing is verified yet.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    keyid: String,
    sig: [u8; SIGNATURE_BYTES],
}

impl EnvelopeSignature {
    /// # Errors
    /// [`EnvelopeError::MalformedKeyId`].
    pub fn new(
        keyid: impl Into<String>,
        sig: [u8; SIGNATURE_BYTES],
    ) -> Result<EnvelopeSignature, EnvelopeError> {
        let keyid = keyid.into();
        check_keyid(&keyid)?;
        Ok(EnvelopeSignature { keyid, sig })
    }

    /// The signer's key id, as the envelope states it.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The Ed25519 signature over the envelope's PAE.
    pub fn sig(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.sig
    }
}

impl fmt::Debug for EnvelopeSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeSignature")
            .field("keyid", &self.keyid)
            .field("sig", &hex_encode(&self.sig))
            .finish()
    }
}

fn check_keyid(keyid: &str) -> Result<(), EnvelopeError> {
    let reason = if keyid.is_empty() {
        Some("empty")
    } else if keyid.len() > KEYID_BYTES_MAX {
        Some("longer than the keyid cap")
    } else if keyid.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace or a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(EnvelopeError::MalformedKeyId { reason }),
        None => Ok(()),
    }
}

fn check_payload_type(payload_type: &str) -> Result<(), EnvelopeError> {
    let reason = if payload_type.is_empty() {
        Some("empty")
    } else if payload_type.len() > PAYLOAD_TYPE_BYTES_MAX {
        Some("longer than the payloadType cap")
    } else if payload_type.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(EnvelopeError::PayloadTypeInvalid { reason }),
        None => Ok(()),
    }
}

/// A well-formed, *unverified* DSSE envelope. Invariant: valid payloadType,
/// 1..=[`SIGNATURES_PER_ENVELOPE_MAX`] well-formed signatures with distinct keyids, and
/// its JSON within [`ENVELOPE_BYTES_MAX`]. Only [`Envelope::verify`] makes it trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    payload_type: String,
    payload: Vec<u8>,
    signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Assembles an envelope from its parts, with the checks of [`Envelope::from_json`].
    ///
    /// # Errors
    /// [`EnvelopeError::PayloadTypeInvalid`], [`EnvelopeError::NoSignatures`],
    /// [`EnvelopeError::TooManySignatures`], [`EnvelopeError::DuplicateSignature`],
    /// [`EnvelopeError::TooLarge`] when its JSON would pass the cap.
    pub fn new(
        payload_type: impl Into<String>,
        payload: Vec<u8>,
        signatures: Vec<EnvelopeSignature>,
    ) -> Result<Envelope, EnvelopeError> {
        let payload_type = payload_type.into();
        check_payload_type(&payload_type)?;
        check_payload_size(&payload)?;
        check_signature_count(signatures.len())?;
        let mut seen = HashSet::with_capacity(signatures.len());
        for signature in &signatures {
            if !seen.insert(signature.keyid.as_str()) {
                return Err(EnvelopeError::DuplicateSignature {
                    keyid: signature.keyid.clone(),
                });
            }
        }
        let envelope = Envelope {
            payload_type,
            payload,
            signatures,
        };
        let len = envelope.to_json().len();
        if len > ENVELOPE_BYTES_MAX {
            return Err(EnvelopeError::TooLarge {
                len,
                max: ENVELOPE_BYTES_MAX,
            });
        }
        Ok(envelope)
    }

    /// Signs `PAE(payload_type, payload)` with each signer; each keyid is the signer's
    /// verifier key.
    ///
    /// # Errors
    /// As [`Envelope::new`]: invalid payloadType, no or too many signers, the same
    /// signer twice, or an envelope too large to be accepted back.
    pub fn sign(
        payload_type: &str,
        payload: &[u8],
        signers: &[&NoteSigner],
    ) -> Result<Envelope, EnvelopeError> {
        // Check before signing, so that a bad call costs no signatures.
        check_payload_type(payload_type)?;
        check_payload_size(payload)?;
        check_signature_count(signers.len())?;
        let message = pae(payload_type, payload);
        let signatures = signers
            .iter()
            .map(|signer| {
                EnvelopeSignature::new(signer.vkey(), signer.sign_bytes(&message).to_bytes())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Envelope::new(payload_type, payload.to_vec(), signatures)
    }

    /// Parses the JSON envelope, strictly, after capping its size.
    ///
    /// # Errors
    /// [`EnvelopeError::TooLarge`] (checked before parsing), [`EnvelopeError::MalformedJson`]
    /// (syntax, wrong types, trailing bytes), [`EnvelopeError::UnknownField`],
    /// [`EnvelopeError::MissingField`], [`EnvelopeError::DuplicateField`],
    /// [`EnvelopeError::PayloadTypeInvalid`], [`EnvelopeError::MalformedBase64`],
    /// [`EnvelopeError::NoSignatures`], [`EnvelopeError::TooManySignatures`],
    /// [`EnvelopeError::MalformedKeyId`], [`EnvelopeError::BadSignatureLength`],
    /// [`EnvelopeError::DuplicateSignature`].
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > ENVELOPE_BYTES_MAX {
            return Err(EnvelopeError::TooLarge {
                len: bytes.len(),
                max: ENVELOPE_BYTES_MAX,
            });
        }
        let Checked(raw) = serde_json::from_slice::<Checked<RawEnvelope>>(bytes).map_err(|e| {
            EnvelopeError::MalformedJson {
                category: match e.classify() {
                    serde_json::error::Category::Io => "io",
                    serde_json::error::Category::Syntax => "syntax",
                    serde_json::error::Category::Data => "data",
                    serde_json::error::Category::Eof => "eof",
                },
                line: e.line(),
                column: e.column(),
            }
        })?;
        let raw = raw?;
        check_payload_type(&raw.payload_type)?;
        let payload = decode_base64(&raw.payload, "payload")?;
        let mut signatures = Vec::with_capacity(raw.signatures.len());
        for raw_signature in raw.signatures {
            check_keyid(&raw_signature.keyid)?;
            let sig = decode_base64(&raw_signature.sig, "sig")?;
            let sig = <[u8; SIGNATURE_BYTES]>::try_from(sig.as_slice()).map_err(|_| {
                EnvelopeError::BadSignatureLength {
                    keyid: raw_signature.keyid.clone(),
                    len: sig.len(),
                }
            })?;
            signatures.push(EnvelopeSignature {
                keyid: raw_signature.keyid,
                sig,
            });
        }
        Envelope::new(raw.payload_type, payload, signatures)
    }

    /// The canonical JSON: fields in the order `payloadType`, `payload`, `signatures`
    /// (`keyid`, `sig`), no spaces, standard padded base64. `from_json(to_json())` gives
    /// back the same envelope, and canonical input gives back the same bytes.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(
            (self.payload.len() / 3 + 1)
                .saturating_mul(4)
                .saturating_add(64 + 400 * self.signatures.len()),
        );
        out.push_str("{\"payloadType\":");
        push_json_string(&mut out, &self.payload_type);
        out.push_str(",\"payload\":\"");
        out.push_str(&STANDARD.encode(&self.payload));
        out.push_str("\",\"signatures\":[");
        for (i, signature) in self.signatures.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"keyid\":");
            push_json_string(&mut out, &signature.keyid);
            out.push_str(",\"sig\":\"");
            out.push_str(&STANDARD.encode(signature.sig));
            out.push_str("\"}");
        }
        out.push_str("]}");
        out
    }

    /// The DSSE payload type.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The payload bytes, as signed.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signatures, in the envelope's order.
    pub fn signatures(&self) -> &[EnvelopeSignature] {
        &self.signatures
    }

    /// The entry id: BLAKE3 of the PAE.
    pub fn entry_id(&self) -> EntryId {
        EntryId::of(&self.payload_type, &self.payload)
    }

    /// Verifies every signature over `PAE(payloadType, payload)` with the key its keyid
    /// names, strictly ([`VerifyingKey::verify_strict`]: no small-order key or `R`,
    /// canonical `S` and `R`). Two keyids that name the same key are refused: one key is
    /// one consent.
    ///
    /// # Errors
    /// [`EnvelopeError::UnknownKey`] from the lookup, [`EnvelopeError::BadSignature`],
    /// [`EnvelopeError::DuplicateSignature`].
    pub fn verify(self, keys: &impl KeyLookup) -> Result<VerifiedEnvelope, EnvelopeError> {
        // "Verify SIGNATURE against PAE(UTF8(PAYLOAD_TYPE), SERIALIZED_BODY). Reject if
        // the verification fails."
        let message = pae(&self.payload_type, &self.payload);
        let mut signer_keys: Vec<VerifyingKey> = Vec::with_capacity(self.signatures.len());
        for signature in &self.signatures {
            let key = keys.lookup(&signature.keyid)?;
            if signer_keys.contains(&key) {
                return Err(EnvelopeError::DuplicateSignature {
                    keyid: signature.keyid.clone(),
                });
            }
            key.verify_strict(&message, &Signature::from_bytes(&signature.sig))
                .map_err(|_| EnvelopeError::BadSignature {
                    keyid: signature.keyid.clone(),
                })?;
            signer_keys.push(key);
        }
        Ok(VerifiedEnvelope {
            entry_id: EntryId::from_bytes(*blake3::hash(&message).as_bytes()),
            envelope: self,
            signer_keys,
        })
    }
}

/// Base64 only grows the payload, so one larger than the envelope cap can never fit:
/// refuse it before encoding or signing it.
fn check_payload_size(payload: &[u8]) -> Result<(), EnvelopeError> {
    if payload.len() > ENVELOPE_BYTES_MAX {
        return Err(EnvelopeError::TooLarge {
            len: payload.len(),
            max: ENVELOPE_BYTES_MAX,
        });
    }
    Ok(())
}

fn check_signature_count(count: usize) -> Result<(), EnvelopeError> {
    if count == 0 {
        return Err(EnvelopeError::NoSignatures);
    }
    if count > SIGNATURES_PER_ENVELOPE_MAX {
        return Err(EnvelopeError::TooManySignatures {
            count,
            max: SIGNATURES_PER_ENVELOPE_MAX,
        });
    }
    Ok(())
}

/// Standard alphabet, padding required, no stray bits: one text per byte string.
fn decode_base64(text: &str, field: &'static str) -> Result<Vec<u8>, EnvelopeError> {
    STANDARD
        .decode(text)
        .map_err(|_| EnvelopeError::MalformedBase64 { field })
}

/// Appends `text` as a JSON string (RFC 8259 §7): quote, backslash and control
/// characters escaped, everything else as is.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Verify envelopes in parallel (rayon); the results keep the input order and equal
/// what [`Envelope::verify`] returns for each one.
///
/// Each signature is checked by itself with `verify_strict`, not with ed25519-dalek's
/// batch verification: the batch equation does not refuse small-order keys and `R`
/// and treats mixed-order points differently from the single check, so it does not
/// accept exactly the set that `verify_strict` accepts, and an envelope's fate must not
/// depend on the path that checked it.
pub fn verify_batch(
    envelopes: Vec<Envelope>,
    keys: &(impl KeyLookup + Sync),
) -> Vec<Result<VerifiedEnvelope, EnvelopeError>> {
    envelopes
        .into_par_iter()
        .map(|envelope| envelope.verify(keys))
        .collect()
}

/// An envelope whose every signature verified. Only [`Envelope::verify`] builds one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEnvelope {
    envelope: Envelope,
    entry_id: EntryId,
    signer_keys: Vec<VerifyingKey>,
}

impl VerifiedEnvelope {
    /// The DSSE payload type.
    pub fn payload_type(&self) -> &str {
        &self.envelope.payload_type
    }

    /// The payload bytes, as signed.
    pub fn payload(&self) -> &[u8] {
        &self.envelope.payload
    }

    /// The signatures, in the envelope's order.
    pub fn signatures(&self) -> &[EnvelopeSignature] {
        &self.envelope.signatures
    }

    /// The keyids of the signers, in signature order.
    pub fn signer_keyids(&self) -> Vec<&str> {
        self.envelope
            .signatures
            .iter()
            .map(|s| s.keyid.as_str())
            .collect()
    }

    /// The keys the signatures verified under, in signature order.
    pub fn signer_keys(&self) -> &[VerifyingKey] {
        &self.signer_keys
    }

    /// The entry id: BLAKE3 of the PAE.
    pub fn entry_id(&self) -> EntryId {
        self.entry_id
    }

    /// The envelope itself.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The envelope itself, its verification forgotten.
    pub fn into_envelope(self) -> Envelope {
        self.envelope
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::note::test_signer as signer;

    #[test]
    fn pae_of_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("t", b""), b"DSSEv1 1 t 0 ");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\u0001é\"");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\u{1}é");
    }

    #[test]
    fn entry_id_round_trips_through_hex() {
        let id = EntryId::of("t", b"x");
        assert_eq!(id.to_string().parse::<EntryId>(), Ok(id));
        assert_eq!(
            id.to_string().to_uppercase().parse::<EntryId>(),
            Err(EnvelopeError::MalformedEntryId)
        );
        assert_eq!(
            "00".parse::<EntryId>(),
            Err(EnvelopeError::MalformedEntryId)
        );
    }

    /// Why `verify_batch` does not use ed25519-dalek's batch verification: it accepts a
    /// signature by the identity key (small order) that `verify_strict` refuses.
    #[test]
    fn dalek_batch_accepts_what_verify_strict_refuses() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let key = VerifyingKey::from_bytes(&identity).unwrap();
        // R = identity, S = 0: [S]B = R + [k]A holds for any k when A and R are the
        // identity.
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let sig = Signature::from_bytes(&sig);
        let message = pae("t", b"x");
        assert!(key.verify_strict(&message, &sig).is_err());
        assert!(ed25519_dalek::verify_batch(&[message.as_slice()], &[sig], &[key]).is_ok());
    }

    #[test]
    fn same_key_under_two_names_counts_once() {
        let a = signer("operator", 3);
        let b = signer("operator-alias", 3);
        let envelope = Envelope::sign("t", b"x", &[&a, &b]).unwrap();
        assert_eq!(
            envelope.verify(&SelfCertifying).unwrap_err().code(),
            "duplicate_signature"
        );
    }
}
