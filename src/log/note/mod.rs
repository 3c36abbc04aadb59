//! C2SP signed notes, their Ed25519 keys, checkpoints and witness cosignatures.
//!
//! This module owns three text formats and nothing else:
//! - [signed notes](https://c2sp.org/signed-note): a text ending in a newline, a blank
//!   line, then signature lines `— <key name> base64(key id ‖ signature)`; keys written
//!   as verifier keys (vkeys) `<name>+<key id hex>+base64(type ‖ public key)`;
//! - [checkpoints](https://c2sp.org/tlog-checkpoint): a note whose text is exactly
//!   `origin\nsize\nbase64(root)\n`;
//! - [cosignatures](https://c2sp.org/tlog-cosignature) `cosignature/v1`: a witness's
//!   timestamped Ed25519 signature line over a checkpoint.
//!
//! Parsing is strict: one byte sequence for one meaning (standard padded base64 with no
//! stray bits, lowercase hex key ids, no leading zeros), so that every note this module
//! accepts is written back byte for byte. Verification uses
//! [`VerifyingKey::verify_strict`]: no small-order key or `R`, canonical `S`.
//!
//! ```
//! use lesson_ledger::log::hash::leaf_hash;
//! use lesson_ledger::log::note::{Checkpoint, KeyName, NoteSigner, Origin, SignedCheckpoint};
//! use ed25519_dalek::SigningKey;
//!
//! let log = NoteSigner::new(KeyName::new("ledger.example/log")?, SigningKey::from_bytes(&[7; 32]));
//! let checkpoint = Checkpoint {
//!     origin: Origin::new("ledger.example/log")?,
//!     size: 1,
//!     root: leaf_hash(b"entry"),
//! };
//! let signed = SignedCheckpoint::sign(checkpoint.clone(), &log);
//! let again = SignedCheckpoint::parse_and_verify(signed.text().as_bytes(), &log.verifier())?;
//! assert_eq!(again.checkpoint(), &checkpoint);
//! # Ok::<(), lesson_ledger::log::note::NoteError>(())
//! ```

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey, PUBLIC_KEY_LENGTH};
use sha2::{Digest, Sha256};

use super::hash::{hex_encode, Hash};
use crate::limits::{CHECKPOINT_BYTES_MAX, ORIGIN_BYTES_MAX};

/// Longest key name, in bytes. (New limit, to move to `limits.rs`: `KEYID_BYTES_MAX`
/// is sized for a verifier key whose name is at most this long.)
pub const KEY_NAME_BYTES_MAX: usize = 128;

/// Most signature lines on one note. The spec asks verifiers to accept at least 16;
/// 100 is the cap of the Go reference implementation (`golang.org/x/mod/sumdb/note`).
/// (New limit, to move to `limits.rs`.)
pub const NOTE_SIGNATURES_MAX: usize = 100;

/// Signature type byte of Ed25519 note signatures (signed-note, "Signature types").
pub const SIG_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of timestamped Ed25519 witness cosignatures (tlog-cosignature).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Largest cosignature timestamp: "It MUST NOT exceed 2^63 - 1".
pub const COSIGNATURE_TIME_MAX: u64 = i64::MAX as u64;

/// Every signature line starts with an em dash (U+2014) and a space.
const SIG_LINE_PREFIX: &str = "\u{2014} ";

/// Bytes of an Ed25519 signature.
const ED25519_SIG_BYTES: usize = 64;

/// Bytes of a cosignature/v1 signature: `u64 timestamp ‖ ed25519_signature[64]`.
const COSIG_V1_BYTES: usize = 8 + ED25519_SIG_BYTES;

// A checkpoint signed by [`SignedCheckpoint::sign`] always fits the note cap, so signing
// a checkpoint cannot fail: origin line, 20 digits of size, 44 base64 characters of root,
// their three newlines, the blank line, and one signature line (em dash, space, name,
// space, base64 of 4 + 64 bytes, newline).
const _: () = assert!(
    ORIGIN_BYTES_MAX + 20 + 44 + 3 + 1 + (4 + KEY_NAME_BYTES_MAX + 1 + 92 + 1)
        <= CHECKPOINT_BYTES_MAX,
    "a checkpoint signed by the log must always fit the checkpoint cap"
);

/// Everything that can be wrong with a note, a key or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Code `note_too_large`: note is `len` bytes, more than the `max` allowed.
    #[error("note is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size, in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Code `note_not_utf8`: note is not valid UTF-8 (from byte `offset`).
    #[error("note is not valid UTF-8 (from byte {offset})")]
    NotUtf8 {
        /// Byte offset of the first offending byte.
        offset: usize,
    },
    /// Code `note_control_character`: note has the control character U+`code` at byte `offset`.
    #[error("note has the control character U+{code:04X} at byte {offset}")]
    ControlCharacter {
        /// Byte offset of the first offending byte.
        offset: usize,
        /// The character's code point.
        code: u32,
    },
    /// Code `note_missing_signatures`: note has no signatures: `reason`.
    #[error("note has no signatures: {reason}")]
    MissingSignatures {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `malformed_signature_line`: signature line `line` is malformed: `reason`.
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignatureLine {
        /// The line's number.
        line: usize,
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `too_many_signatures`: note has `count` signature lines, more than the `max` allowed.
    #[error("note has {count} signature lines, more than the {max} allowed")]
    TooManySignatures {
        /// How many there are.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Code `duplicate_signature`: signature line `line` repeats an earlier line.
    #[error("signature line {line} repeats an earlier line")]
    DuplicateSignature {
        /// The line's number.
        line: usize,
    },
    /// Code `invalid_key_name`: invalid key name: `reason`.
    #[error("invalid key name: {reason}")]
    InvalidKeyName {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `malformed_vkey`: malformed verifier key: `reason`.
    #[error("malformed verifier key: {reason}")]
    MalformedVkey {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `unsupported_key_type`: verifier key has signature type 0x`found`, expected 0x`expected`.
    #[error("verifier key has signature type 0x{found:02x}, expected 0x{expected:02x}")]
    UnsupportedKeyType {
        /// What was found.
        found: u8,
        /// What was expected.
        expected: u8,
    },
    /// Code `key_id_mismatch`: verifier key of `name` states key id `stated` but the key hashes to `computed`.
    #[error("verifier key of {name} states key id {stated} but the key hashes to {computed}")]
    KeyIdMismatch {
        /// The key's name.
        name: String,
        /// The key id the verifier key states.
        stated: KeyId,
        /// The key id its key hashes to.
        computed: KeyId,
    },
    /// Code `weak_key`: the key of `name` is a small-order point, under which no signature verifies.
    #[error("the key of {name} is a small-order point, under which no signature verifies")]
    WeakKey {
        /// The key's name.
        name: String,
    },
    /// Code `invalid_note_text`: note text cannot be signed: `reason`.
    #[error("note text cannot be signed: {reason}")]
    InvalidText {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `no_known_signature`: the note has no signature by `name` with key id `key_id`.
    #[error("the note has no signature by {name} with key id {key_id}")]
    NoKnownSignature {
        /// The key's name.
        name: String,
        /// The key id.
        key_id: KeyId,
    },
    /// Code `bad_signature`: the signature by `name` with key id `key_id` does not verify.
    #[error("the signature by {name} with key id {key_id} does not verify")]
    BadSignature {
        /// The key's name.
        name: String,
        /// The key id.
        key_id: KeyId,
    },
    /// Code `invalid_origin`: invalid checkpoint origin: `reason`.
    #[error("invalid checkpoint origin: {reason}")]
    InvalidOrigin {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `malformed_checkpoint`: malformed checkpoint: `reason`.
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `checkpoint_extension_lines`: checkpoint has `count` extension lines, which this ledger does not accept.
    #[error("checkpoint has {count} extension lines, which this ledger does not accept")]
    CheckpointExtensionLines {
        /// How many there are.
        count: usize,
    },
    /// Code `invalid_tree_size`: invalid checkpoint tree size: `reason`.
    #[error("invalid checkpoint tree size: {reason}")]
    InvalidTreeSize {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `invalid_root_hash`: checkpoint root hash is not the standard base64 of 32 bytes.
    #[error("checkpoint root hash is not the standard base64 of 32 bytes")]
    InvalidRootHash,
    /// Code `timestamp_out_of_range`: cosignature timestamp `time` exceeds 2^63 - 1.
    #[error("cosignature timestamp {time} exceeds 2^63 - 1")]
    TimestampOutOfRange {
        /// The timestamp, seconds since the Unix epoch.
        time: u64,
    },
}

impl NoteError {
    /// A stable snake_case code for this error, for logs and API responses.
    pub fn code(&self) -> &'static str {
        match self {
            NoteError::TooLarge { .. } => "note_too_large",
            NoteError::NotUtf8 { .. } => "note_not_utf8",
            NoteError::ControlCharacter { .. } => "note_control_character",
            NoteError::MissingSignatures { .. } => "note_missing_signatures",
            NoteError::MalformedSignatureLine { .. } => "malformed_signature_line",
            NoteError::TooManySignatures { .. } => "too_many_signatures",
            NoteError::DuplicateSignature { .. } => "duplicate_signature",
            NoteError::InvalidKeyName { .. } => "invalid_key_name",
            NoteError::MalformedVkey { .. } => "malformed_vkey",
            NoteError::UnsupportedKeyType { .. } => "unsupported_key_type",
            NoteError::KeyIdMismatch { .. } => "key_id_mismatch",
            NoteError::WeakKey { .. } => "weak_key",
            NoteError::InvalidText { .. } => "invalid_note_text",
            NoteError::NoKnownSignature { .. } => "no_known_signature",
            NoteError::BadSignature { .. } => "bad_signature",
            NoteError::InvalidOrigin { .. } => "invalid_origin",
            NoteError::MalformedCheckpoint { .. } => "malformed_checkpoint",
            NoteError::CheckpointExtensionLines { .. } => "checkpoint_extension_lines",
            NoteError::InvalidTreeSize { .. } => "invalid_tree_size",
            NoteError::InvalidRootHash => "invalid_root_hash",
            NoteError::TimestampOutOfRange { .. } => "timestamp_out_of_range",
        }
    }
}

mod checkpoint;
mod keys;
mod signed;

pub use checkpoint::*;
pub use keys::*;
pub use signed::*;

/// A deterministic signer for unit tests: the same seed gives the same key every run.
#[cfg(test)]
pub(crate) fn test_signer(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::new(
        KeyName::new(name).expect("a valid test key name"),
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_signer as signer;

    #[test]
    fn key_names_follow_the_spec() {
        for good in ["operator", "ledger.example/log", "oid/1.3.6.1", "inst-0007"] {
            assert!(KeyName::new(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(KEY_NAME_BYTES_MAX + 1);
        for bad in [
            "",
            "a+b",
            "a b",
            "a\tb",
            "a\u{00a0}b",
            "a\u{3000}b",
            &too_long,
        ] {
            assert_eq!(
                KeyName::new(bad).unwrap_err().code(),
                "invalid_key_name",
                "{bad:?}"
            );
        }
        assert!(KeyName::new("a".repeat(KEY_NAME_BYTES_MAX)).is_ok());
    }

    #[test]
    fn key_id_hex_is_strict() {
        assert_eq!(
            KeyId::from_hex("c74f20a3"),
            Some(KeyId([0xc7, 0x4f, 0x20, 0xa3]))
        );
        for bad in ["C74F20A3", "c74f20a", "c74f20a30", "g74f20a3", "+74f20a3"] {
            assert_eq!(KeyId::from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn tree_size_is_canonical_decimal() {
        assert_eq!(parse_tree_size("0"), Ok(0));
        assert_eq!(parse_tree_size("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "00",
            "007",
            "+7",
            "-1",
            " 7",
            "7 ",
            "0x10",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            assert_eq!(
                parse_tree_size(bad).unwrap_err().code(),
                "invalid_tree_size",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn signer_debug_hides_the_key() {
        let s = signer("operator", 9);
        let shown = format!("{s:?}");
        assert!(shown.contains("operator"));
        assert!(!shown.contains(&hex_encode(&[9; 32])));
    }

    #[test]
    fn parse_writes_back_the_same_bytes() {
        let s = signer("operator", 1);
        let note = sign_note("a\n\nb\n", &s).unwrap();
        let parsed = Note::parse(note.as_bytes()).unwrap();
        assert_eq!(parsed.text(), "a\n\nb\n");
        assert_eq!(parsed.to_text(), note);
        parsed.verify(&s.verifier()).unwrap();
    }
}
