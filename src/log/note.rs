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
    #[error("note is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("note is not valid UTF-8 (from byte {offset})")]
    NotUtf8 { offset: usize },
    #[error("note has the control character U+{code:04X} at byte {offset}")]
    ControlCharacter { offset: usize, code: u32 },
    #[error("note has no signatures: {reason}")]
    MissingSignatures { reason: &'static str },
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignatureLine { line: usize, reason: &'static str },
    #[error("note has {count} signature lines, more than the {max} allowed")]
    TooManySignatures { count: usize, max: usize },
    #[error("signature line {line} repeats an earlier line")]
    DuplicateSignature { line: usize },
    #[error("invalid key name: {reason}")]
    InvalidKeyName { reason: &'static str },
    #[error("malformed verifier key: {reason}")]
    MalformedVkey { reason: &'static str },
    #[error("verifier key has signature type 0x{found:02x}, expected 0x{expected:02x}")]
    UnsupportedKeyType { found: u8, expected: u8 },
    #[error("verifier key of {name} states key id {stated} but the key hashes to {computed}")]
    KeyIdMismatch {
        name: String,
        stated: KeyId,
        computed: KeyId,
    },
    #[error("the key of {name} is a small-order point, under which no signature verifies")]
    WeakKey { name: String },
    #[error("note text cannot be signed: {reason}")]
    InvalidText { reason: &'static str },
    #[error("the note has no signature by {name} with key id {key_id}")]
    NoKnownSignature { name: String, key_id: KeyId },
    #[error("the signature by {name} with key id {key_id} does not verify")]
    BadSignature { name: String, key_id: KeyId },
    #[error("invalid checkpoint origin: {reason}")]
    InvalidOrigin { reason: &'static str },
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint { reason: &'static str },
    #[error("checkpoint has {count} extension lines, which this ledger does not accept")]
    CheckpointExtensionLines { count: usize },
    #[error("invalid checkpoint tree size: {reason}")]
    InvalidTreeSize { reason: &'static str },
    #[error("checkpoint root hash is not the standard base64 of 32 bytes")]
    InvalidRootHash,
    #[error("cosignature timestamp {time} exceeds 2^63 - 1")]
    TimestampOutOfRange { time: u64 },
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

/// The name of a key. Invariant: non-empty, at most [`KEY_NAME_BYTES_MAX`] bytes, no
/// Unicode whitespace, no `+` and no control character ("Key names MUST be
/// non-empty and MUST NOT contain any Unicode spaces or plus (U+002B) characters").
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Checks and wraps a key name.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`] when the name breaks the invariant.
    pub fn new(name: impl Into<String>) -> Result<KeyName, NoteError> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("empty")
        } else if name.len() > KEY_NAME_BYTES_MAX {
            Some("longer than 128 bytes")
        } else if name.contains('+') {
            Some("contains '+'")
        } else if name.chars().any(char::is_whitespace) {
            Some("contains whitespace")
        } else if name.chars().any(char::is_control) {
            Some("contains a control character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(NoteError::InvalidKeyName { reason }),
            None => Ok(KeyName(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({:?})", self.0)
    }
}

/// A 32-bit key id, big-endian, shown as 8 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 4]);

impl KeyId {
    /// `key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]`
    pub fn compute(name: &KeyName, sig_type: u8, public_key: &[u8]) -> KeyId {
        let mut h = Sha256::new();
        h.update(name.as_str().as_bytes());
        h.update([b'\n', sig_type]);
        h.update(public_key);
        let digest = h.finalize();
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }

    pub fn from_bytes(bytes: [u8; 4]) -> KeyId {
        KeyId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// Parses exactly 8 lowercase hex digits, the one form a vkey writes.
    pub fn from_hex(text: &str) -> Option<KeyId> {
        let lowercase_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if text.len() != 8 || !text.bytes().all(lowercase_hex) {
            return None;
        }
        let bytes = super::hash::hex_decode(text)?;
        <[u8; 4]>::try_from(bytes.as_slice()).ok().map(KeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Parses a verifier key `<name>+<key id>+base64(type ‖ 32-byte key)` of the expected
/// type, checking each part and that the key id is the hash of the rest.
fn parse_vkey(vkey: &str, expected_type: u8) -> Result<(KeyName, KeyId, VerifyingKey), NoteError> {
    let malformed = |reason| NoteError::MalformedVkey { reason };
    if vkey.len() > crate::limits::KEYID_BYTES_MAX {
        return Err(malformed("longer than the largest key id"));
    }
    // The name holds no '+' and the key id is hex, so the first two '+' split the
    // parts; the base64 may itself contain '+'.
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("not three '+'-separated parts"));
    };
    let name = KeyName::new(name)?;
    let stated = KeyId::from_hex(id).ok_or(malformed("key id is not 8 lowercase hex digits"))?;
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| malformed("key is not standard padded base64"))?;
    let (&sig_type, key_bytes) = raw.split_first().ok_or(malformed("empty key"))?;
    if sig_type != expected_type {
        return Err(NoteError::UnsupportedKeyType {
            found: sig_type,
            expected: expected_type,
        });
    }
    let key_bytes = <[u8; PUBLIC_KEY_LENGTH]>::try_from(key_bytes)
        .map_err(|_| malformed("Ed25519 public key is not 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| malformed("Ed25519 public key is not a curve point"))?;
    let computed = KeyId::compute(&name, sig_type, &key_bytes);
    if computed != stated {
        return Err(NoteError::KeyIdMismatch {
            name: name.to_string(),
            stated,
            computed,
        });
    }
    if key.is_weak() {
        return Err(NoteError::WeakKey {
            name: name.to_string(),
        });
    }
    Ok((name, stated, key))
}

fn write_vkey(name: &KeyName, key_id: KeyId, sig_type: u8, key: &VerifyingKey) -> String {
    let mut raw = Vec::with_capacity(1 + PUBLIC_KEY_LENGTH);
    raw.push(sig_type);
    raw.extend_from_slice(key.as_bytes());
    format!("{name}+{key_id}+{}", STANDARD.encode(raw))
}

/// A trusted Ed25519 note key (signature type 0x01). Invariant: the key id is the hash
/// of the name and key, and the key is not of small order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: KeyName,
    key_id: KeyId,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for `key` under `name`.
    ///
    /// # Errors
    /// [`NoteError::WeakKey`] for a small-order key.
    pub fn new(name: KeyName, key: VerifyingKey) -> Result<NoteVerifier, NoteError> {
        if key.is_weak() {
            return Err(NoteError::WeakKey {
                name: name.to_string(),
            });
        }
        let key_id = KeyId::compute(&name, SIG_TYPE_ED25519, key.as_bytes());
        Ok(NoteVerifier { name, key_id, key })
    }

    /// Parses a verifier key `<name>+<key id>+base64(0x01 ‖ public key)`, strictly: the
    /// key id in lowercase hex, standard padded base64, 32 bytes of key.
    ///
    /// # Errors
    /// [`NoteError::MalformedVkey`], [`NoteError::InvalidKeyName`],
    /// [`NoteError::UnsupportedKeyType`] (not 0x01), [`NoteError::KeyIdMismatch`],
    /// [`NoteError::WeakKey`].
    pub fn from_vkey(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let (name, key_id, key) = parse_vkey(vkey, SIG_TYPE_ED25519)?;
        Ok(NoteVerifier { name, key_id, key })
    }

    /// The verifier key text; `from_vkey(v.to_vkey()) == v`.
    pub fn to_vkey(&self) -> String {
        write_vkey(&self.name, self.key_id, SIG_TYPE_ED25519, &self.key)
    }

    pub fn name(&self) -> &KeyName {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A witness's cosigning key (signature type 0x04, tlog-cosignature): "Ed25519 public
/// keys MAY be encoded as vkeys with signature type 0x04". Invariant as
/// [`NoteVerifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignerKey {
    name: KeyName,
    key_id: KeyId,
    key: VerifyingKey,
}

impl CosignerKey {
    /// A cosigner key for `key` under `name`.
    ///
    /// # Errors
    /// [`NoteError::WeakKey`] for a small-order key.
    pub fn new(name: KeyName, key: VerifyingKey) -> Result<CosignerKey, NoteError> {
        if key.is_weak() {
            return Err(NoteError::WeakKey {
                name: name.to_string(),
            });
        }
        let key_id = KeyId::compute(&name, SIG_TYPE_COSIGNATURE_V1, key.as_bytes());
        Ok(CosignerKey { name, key_id, key })
    }

    /// Parses a verifier key `<name>+<key id>+base64(0x04 ‖ public key)`.
    ///
    /// # Errors
    /// As [`NoteVerifier::from_vkey`], with type 0x04 expected.
    pub fn from_vkey(vkey: &str) -> Result<CosignerKey, NoteError> {
        let (name, key_id, key) = parse_vkey(vkey, SIG_TYPE_COSIGNATURE_V1)?;
        Ok(CosignerKey { name, key_id, key })
    }

    pub fn to_vkey(&self) -> String {
        write_vkey(&self.name, self.key_id, SIG_TYPE_COSIGNATURE_V1, &self.key)
    }

    pub fn name(&self) -> &KeyName {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A named Ed25519 signing key. Its `Debug` shows the name and key id, never the key.
pub struct NoteSigner {
    name: KeyName,
    key: SigningKey,
}

impl NoteSigner {
    pub fn new(name: KeyName, key: SigningKey) -> NoteSigner {
        // A key from a 32-byte seed has a clamped scalar, a non-zero multiple of 8 below
        // 2^255, so its public key always has the full order ℓ.
        debug_assert!(!key.verifying_key().is_weak());
        NoteSigner { name, key }
    }

    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id of this key's note signatures (type 0x01).
    pub fn key_id(&self) -> KeyId {
        KeyId::compute(
            &self.name,
            SIG_TYPE_ED25519,
            self.key.verifying_key().as_bytes(),
        )
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The verifier of this key's note signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id(),
            key: self.key.verifying_key(),
        }
    }

    /// The verifier key text, `<name>+<key id>+base64(0x01 ‖ public key)`.
    pub fn vkey(&self) -> String {
        self.verifier().to_vkey()
    }

    /// The key by which this signer's cosignatures are checked (type 0x04).
    pub fn cosigner_key(&self) -> CosignerKey {
        let key = self.key.verifying_key();
        CosignerKey {
            name: self.name.clone(),
            key_id: KeyId::compute(&self.name, SIG_TYPE_COSIGNATURE_V1, key.as_bytes()),
            key,
        }
    }

    /// Signs raw bytes; for the envelope layer, which signs DSSE PAE bytes.
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// One signature line of a note: `— <name> base64(key id ‖ signature)`. The signature
/// bytes are not checked until a verifier with the same name and key id asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    name: KeyName,
    key_id: KeyId,
    signature: Vec<u8>,
}

impl NoteSignature {
    fn parse_line(line: &str) -> Result<NoteSignature, &'static str> {
        // "em dash (U+2014), space (U+0020), key name, space, base64-encoded signature"
        let rest = line
            .strip_prefix(SIG_LINE_PREFIX)
            .ok_or("does not start with an em dash and a space")?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or("no space between the key name and the signature")?;
        let name = KeyName::new(name).map_err(|_| "invalid key name")?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| "signature is not standard padded base64")?;
        // "Signatures are the base64 encoding of 4+n bytes."
        if raw.len() < 5 {
            return Err("signature is shorter than a key id and one byte");
        }
        let (id, signature) = raw.split_at(4);
        Ok(NoteSignature {
            name,
            key_id: KeyId([id[0], id[1], id[2], id[3]]),
            signature: signature.to_vec(),
        })
    }

    fn new(name: &KeyName, key_id: KeyId, signature: &[u8]) -> NoteSignature {
        NoteSignature {
            name: name.clone(),
            key_id,
            signature: signature.to_vec(),
        }
    }

    pub fn name(&self) -> &KeyName {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The signature bytes after the key id.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line, with its final newline.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        format!("{SIG_LINE_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// "Signed notes MUST be valid UTF-8 and MUST NOT contain any ASCII control characters
/// (those below U+0020) other than newline."
fn check_characters(text: &str) -> Result<(), NoteError> {
    match text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        Some((offset, c)) => Err(NoteError::ControlCharacter {
            offset,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// A parsed signed note: its text and its signature lines, none yet verified.
/// Invariant: it is within [`CHECKPOINT_BYTES_MAX`] and [`NOTE_SIGNATURES_MAX`],
/// has at least one signature, no two identical lines, and [`Note::to_text`] gives back
/// the exact bytes it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note strictly, after capping its size.
    ///
    /// # Errors
    /// [`NoteError::TooLarge`] (checked before anything else), [`NoteError::NotUtf8`],
    /// [`NoteError::ControlCharacter`], [`NoteError::MissingSignatures`] (no blank line,
    /// or nothing after it), [`NoteError::MalformedSignatureLine`],
    /// [`NoteError::TooManySignatures`], [`NoteError::DuplicateSignature`].
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > CHECKPOINT_BYTES_MAX {
            return Err(NoteError::TooLarge {
                len: bytes.len(),
                max: CHECKPOINT_BYTES_MAX,
            });
        }
        let all = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        check_characters(all)?;
        // "The note text includes the final newline but not the separating blank line.
        // [...] the text is separated from the signatures by the last empty line in the
        // note."
        let split = all.rfind("\n\n").ok_or(NoteError::MissingSignatures {
            reason: "no blank line after the text",
        })?;
        let (text, block) = (&all[..split + 1], &all[split + 2..]);
        if block.is_empty() {
            return Err(NoteError::MissingSignatures {
                reason: "nothing after the blank line",
            });
        }
        let Some(block) = block.strip_suffix('\n') else {
            return Err(NoteError::MalformedSignatureLine {
                line: block.split('\n').count(),
                reason: "does not end in a newline",
            });
        };
        // After the last blank line no line can be empty, so each piece is one line.
        let count = block.split('\n').count();
        if count > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures {
                count,
                max: NOTE_SIGNATURES_MAX,
            });
        }
        let mut signatures: Vec<NoteSignature> = Vec::with_capacity(count);
        for (index, line) in block.split('\n').enumerate() {
            let line_number = index + 1;
            let signature = NoteSignature::parse_line(line).map_err(|reason| {
                NoteError::MalformedSignatureLine {
                    line: line_number,
                    reason,
                }
            })?;
            if signatures.contains(&signature) {
                return Err(NoteError::DuplicateSignature { line: line_number });
            }
            signatures.push(signature);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text, with its final newline. Ignore it until [`Note::verify`] passes.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// The whole note: text, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 1 + 128 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.to_line());
        }
        out
    }

    /// Checks the note's signatures by `verifier`, ignoring every other line.
    ///
    /// "Verifiers MUST ignore signatures from unknown keys, even if they share a name or
    /// ID (but not both) with a known key. If the key name and ID match a known key,
    /// verifiers MUST verify the signature. If a signature from a known key fails to
    /// verify, clients SHOULD reject the whole note. If no signature from a known key
    /// verifies successfully, clients MUST reject the note."
    ///
    /// # Errors
    /// [`NoteError::BadSignature`] when a line of this key fails,
    /// [`NoteError::NoKnownSignature`] when there is no such line.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<(), NoteError> {
        let bad = || NoteError::BadSignature {
            name: verifier.name.to_string(),
            key_id: verifier.key_id,
        };
        let mut verified = false;
        for signature in self.lines_of(&verifier.name, verifier.key_id) {
            let signature = Signature::from_slice(&signature.signature).map_err(|_| bad())?;
            verifier
                .key
                .verify_strict(self.text.as_bytes(), &signature)
                .map_err(|_| bad())?;
            verified = true;
        }
        if verified {
            Ok(())
        } else {
            Err(NoteError::NoKnownSignature {
                name: verifier.name.to_string(),
                key_id: verifier.key_id,
            })
        }
    }

    /// Merges signature lines (each ending in a newline), e.g. cosignatures sent back
    /// by witnesses. A line already on the note is skipped, so merging is idempotent.
    /// The lines are not verified here: verify them with the key you trust. Returns how
    /// many lines were added; on an error the note is unchanged.
    ///
    /// # Errors
    /// [`NoteError::MalformedSignatureLine`], [`NoteError::ControlCharacter`],
    /// [`NoteError::MissingSignatures`] (no line given), [`NoteError::TooManySignatures`],
    /// [`NoteError::TooLarge`] when the merged note would pass the cap.
    pub fn add_signature_lines(&mut self, lines: &str) -> Result<usize, NoteError> {
        check_characters(lines)?;
        if lines.is_empty() {
            return Err(NoteError::MissingSignatures {
                reason: "no signature line given",
            });
        }
        let Some(lines) = lines.strip_suffix('\n') else {
            return Err(NoteError::MalformedSignatureLine {
                line: lines.split('\n').count(),
                reason: "does not end in a newline",
            });
        };
        let mut merged = self.signatures.clone();
        for (index, line) in lines.split('\n').enumerate() {
            let signature = NoteSignature::parse_line(line).map_err(|reason| {
                NoteError::MalformedSignatureLine {
                    line: index + 1,
                    reason,
                }
            })?;
            if !merged.contains(&signature) {
                merged.push(signature);
            }
        }
        if merged.len() > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures {
                count: merged.len(),
                max: NOTE_SIGNATURES_MAX,
            });
        }
        let added = merged.len() - self.signatures.len();
        let candidate = Note {
            text: self.text.clone(),
            signatures: merged,
        };
        let len = candidate.to_text().len();
        if len > CHECKPOINT_BYTES_MAX {
            return Err(NoteError::TooLarge {
                len,
                max: CHECKPOINT_BYTES_MAX,
            });
        }
        *self = candidate;
        Ok(added)
    }

    fn lines_of<'a>(
        &'a self,
        name: &'a KeyName,
        key_id: KeyId,
    ) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        self.signatures
            .iter()
            .filter(move |s| &s.name == name && s.key_id == key_id)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// "A signed note consists of a text ending in newline (U+000A)": checks a text we are
/// asked to sign.
fn check_text_to_sign(text: &str) -> Result<(), NoteError> {
    if text.is_empty() {
        return Err(NoteError::InvalidText { reason: "empty" });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::InvalidText {
            reason: "does not end in a newline",
        });
    }
    check_characters(text)
}

/// Signs `text` and returns the whole note: text, blank line, one signature line.
///
/// # Errors
/// [`NoteError::InvalidText`] when the text is empty or does not end in a newline,
/// [`NoteError::ControlCharacter`], [`NoteError::TooLarge`] when the note would pass the
/// cap that [`Note::parse`] applies.
pub fn sign_note(text: &str, signer: &NoteSigner) -> Result<String, NoteError> {
    check_text_to_sign(text)?;
    let note = Note {
        text: text.to_owned(),
        signatures: vec![sign_text(text, signer)],
    };
    let out = note.to_text();
    if out.len() > CHECKPOINT_BYTES_MAX {
        return Err(NoteError::TooLarge {
            len: out.len(),
            max: CHECKPOINT_BYTES_MAX,
        });
    }
    Ok(out)
}

fn sign_text(text: &str, signer: &NoteSigner) -> NoteSignature {
    // "Ed25519 signatures are generated according to RFC 8032 over the note text."
    let signature = signer.key.sign(text.as_bytes());
    NoteSignature::new(&signer.name, signer.key_id(), &signature.to_bytes())
}

/// The origin line of a checkpoint. Invariant: non-empty, at most
/// [`ORIGIN_BYTES_MAX`] bytes, no newline or other ASCII control character.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// Checks and wraps an origin.
    ///
    /// # Errors
    /// [`NoteError::InvalidOrigin`] when the origin breaks the invariant.
    pub fn new(origin: impl Into<String>) -> Result<Origin, NoteError> {
        let origin = origin.into();
        // "The origin MUST be non-empty"; a newline would end the line, and notes hold
        // no other control character.
        let reason = if origin.is_empty() {
            Some("empty")
        } else if origin.len() > ORIGIN_BYTES_MAX {
            Some("longer than the origin cap")
        } else if origin.contains('\n') {
            Some("contains a newline")
        } else if origin.chars().any(|c| c < ' ') {
            Some("contains a control character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(NoteError::InvalidOrigin { reason }),
            None => Ok(Origin(origin)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({:?})", self.0)
    }
}

/// A tree head: the log's origin, its size and its RFC 6962 root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: Origin,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text `origin\nsize\nbase64(root)\n`.
    pub fn to_body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        )
    }

    /// Parses a checkpoint's note text. Extension lines are refused: tlog-checkpoint
    /// calls them "NOT RECOMMENDED, as they are not auditable by log monitors", this
    /// ledger writes none, and refusing them keeps one text per tree head.
    ///
    /// # Errors
    /// [`NoteError::MalformedCheckpoint`], [`NoteError::CheckpointExtensionLines`],
    /// [`NoteError::InvalidOrigin`], [`NoteError::InvalidTreeSize`],
    /// [`NoteError::InvalidRootHash`].
    pub fn from_body(body: &str) -> Result<Checkpoint, NoteError> {
        // "The note text is a sequence of at least three non-empty lines, separated by
        // newlines (U+000A)." The note text ends in a newline.
        let body = body
            .strip_suffix('\n')
            .ok_or(NoteError::MalformedCheckpoint {
                reason: "does not end in a newline",
            })?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.iter().any(|line| line.is_empty()) {
            return Err(NoteError::MalformedCheckpoint {
                reason: "has an empty line",
            });
        }
        let [origin, size, root] = lines[..] else {
            return Err(if lines.len() < 3 {
                NoteError::MalformedCheckpoint {
                    reason: "has fewer than three lines",
                }
            } else {
                NoteError::CheckpointExtensionLines {
                    count: lines.len() - 3,
                }
            });
        };
        // "1. The first line is the origin [...] The origin MUST be non-empty"
        let origin = Origin::new(origin)?;
        // "2. The second line is the tree size, the ASCII decimal representation of the
        // number of leaves in the tree, with no leading zeroes (unless the tree is
        // empty, in which case the tree size is `0`)."
        let size = parse_tree_size(size)?;
        // "3. The third line is the root hash, the base64 encoding of the root"
        let root = parse_root(root)?;
        Ok(Checkpoint { origin, size, root })
    }
}

fn parse_tree_size(text: &str) -> Result<u64, NoteError> {
    // Digits only: `u64::from_str` would also take a leading '+'.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NoteError::InvalidTreeSize {
            reason: "not a decimal number",
        });
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(NoteError::InvalidTreeSize {
            reason: "has a leading zero",
        });
    }
    text.parse::<u64>().map_err(|_| NoteError::InvalidTreeSize {
        reason: "exceeds 2^64 - 1",
    })
}

fn parse_root(text: &str) -> Result<Hash, NoteError> {
    let root = Hash::from_base64(text).ok_or(NoteError::InvalidRootHash)?;
    // The standard engine already refuses missing padding and stray bits; comparing the
    // re-encoding makes "one text per hash" an explicit check.
    if root.to_base64() != text {
        return Err(NoteError::InvalidRootHash);
    }
    Ok(root)
}

/// A checkpoint with its note. Invariant: the note's text is the checkpoint's body and
/// the note carries a signature by the log key that built or verified it (more lines,
/// e.g. cosignatures, may follow).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: Note,
}

impl SignedCheckpoint {
    /// Signs a checkpoint with the log key.
    pub fn sign(checkpoint: Checkpoint, signer: &NoteSigner) -> SignedCheckpoint {
        let text = checkpoint.to_body();
        let note = Note {
            signatures: vec![sign_text(&text, signer)],
            text,
        };
        // The compile-time bound above guarantees this; pair it with a runtime check.
        debug_assert!(note.to_text().len() <= CHECKPOINT_BYTES_MAX);
        SignedCheckpoint { checkpoint, note }
    }

    /// Parses a signed checkpoint and verifies the log's signature on it. Lines of
    /// other keys (witnesses, rotated keys) are kept but not checked.
    ///
    /// # Errors
    /// Any error of [`Note::parse`], [`Note::verify`] and [`Checkpoint::from_body`].
    pub fn parse_and_verify(
        bytes: &[u8],
        verifier: &NoteVerifier,
    ) -> Result<SignedCheckpoint, NoteError> {
        let note = Note::parse(bytes)?;
        note.verify(verifier)?;
        let checkpoint = Checkpoint::from_body(note.text())?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The whole note text, as served to clients and witnesses.
    pub fn text(&self) -> String {
        self.note.to_text()
    }

    /// Merges signature lines (e.g. from [`cosign`]) into the note; see
    /// [`Note::add_signature_lines`]. They are not verified here: check them with
    /// [`verify_cosignature`].
    ///
    /// # Errors
    /// As [`Note::add_signature_lines`].
    pub fn add_signature_lines(&mut self, lines: &str) -> Result<usize, NoteError> {
        self.note.add_signature_lines(lines)
    }
}

/// "The signed message MUST be two newline (U+000A) terminated lines (one header line
/// and one timestamp line) followed by the whole note body of the cosigned checkpoint"
fn cosigned_message(time: u64, body: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{body}").into_bytes()
}

/// A witness cosigns a checkpoint it has verified: returns the signature line
/// `— <name> base64(key id ‖ timestamp ‖ signature)\n`, key id of type 0x04, timestamp
/// as a big-endian u64 (seconds since the epoch).
///
/// # Errors
/// [`NoteError::TimestampOutOfRange`] when `time` passes 2^63 - 1.
pub fn cosign(
    checkpoint: &SignedCheckpoint,
    signer: &NoteSigner,
    time: u64,
) -> Result<String, NoteError> {
    // "It MUST NOT exceed 2^63 - 1"
    if time > COSIGNATURE_TIME_MAX {
        return Err(NoteError::TimestampOutOfRange { time });
    }
    let message = cosigned_message(time, checkpoint.note.text());
    let signature = signer.key.sign(&message);
    // "timestamped_signature: u64 timestamp; ed25519_signature[64]", big-endian.
    let mut raw = Vec::with_capacity(COSIG_V1_BYTES);
    raw.extend_from_slice(&time.to_be_bytes());
    raw.extend_from_slice(&signature.to_bytes());
    let key_id = signer.cosigner_key().key_id;
    Ok(NoteSignature::new(&signer.name, key_id, &raw).to_line())
}

/// Verifies the cosignature of `cosigner` on a signed checkpoint and returns its
/// timestamp (the latest, if the witness signed more than once).
///
/// # Errors
/// [`NoteError::NoKnownSignature`] when the note has no line with this name and key id;
/// [`NoteError::BadSignature`] when such a line is not 72 bytes or does not verify;
/// [`NoteError::TimestampOutOfRange`] for a timestamp past 2^63 - 1.
pub fn verify_cosignature(
    checkpoint: &SignedCheckpoint,
    cosigner: &CosignerKey,
) -> Result<u64, NoteError> {
    let bad = || NoteError::BadSignature {
        name: cosigner.name.to_string(),
        key_id: cosigner.key_id,
    };
    let mut latest = None;
    for line in checkpoint.note.lines_of(&cosigner.name, cosigner.key_id) {
        let raw = <[u8; COSIG_V1_BYTES]>::try_from(line.signature()).map_err(|_| bad())?;
        let (time, signature) = raw.split_at(8);
        let time = u64::from_be_bytes(<[u8; 8]>::try_from(time).map_err(|_| bad())?);
        if time > COSIGNATURE_TIME_MAX {
            return Err(NoteError::TimestampOutOfRange { time });
        }
        let signature = Signature::from_slice(signature).map_err(|_| bad())?;
        let message = cosigned_message(time, checkpoint.note.text());
        cosigner
            .key
            .verify_strict(&message, &signature)
            .map_err(|_| bad())?;
        latest = latest.max(Some(time));
    }
    latest.ok_or(NoteError::NoKnownSignature {
        name: cosigner.name.to_string(),
        key_id: cosigner.key_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::new(
            KeyName::new(name).unwrap(),
            SigningKey::from_bytes(&[seed; 32]),
        )
    }

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
