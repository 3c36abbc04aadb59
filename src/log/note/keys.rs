//! Signed-note keys: names, key ids, verifier keys, signers.

use super::*;

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

    /// The name, as written in notes.
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
pub struct KeyId(pub(super) [u8; 4]);

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

    /// A key id from its 4 bytes.
    pub fn from_bytes(bytes: [u8; 4]) -> KeyId {
        KeyId(bytes)
    }

    /// The 4 bytes.
    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// Parses exactly 8 lowercase hex digits, the one form a vkey writes.
    pub fn from_hex(text: &str) -> Option<KeyId> {
        let lowercase_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if text.len() != 8 || !text.bytes().all(lowercase_hex) {
            return None;
        }
        let bytes = crate::log::hash::hex_decode(text)?;
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
pub(super) fn parse_vkey(
    vkey: &str,
    expected_type: u8,
) -> Result<(KeyName, KeyId, VerifyingKey), NoteError> {
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
    // RFC 8032 §5.1.3: decoding fails if y >= p. The decoder used reduces such a y, so
    // without this one point would have two keys (and two key ids); nobody can sign
    // under the non-canonical ones, but a verifier should not have to know that.
    if key.to_edwards().compress().to_bytes() != key_bytes {
        return Err(malformed(
            "Ed25519 public key is not canonically encoded (y is not below p)",
        ));
    }
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

pub(super) fn write_vkey(
    name: &KeyName,
    key_id: KeyId,
    sig_type: u8,
    key: &VerifyingKey,
) -> String {
    let mut raw = Vec::with_capacity(1 + PUBLIC_KEY_LENGTH);
    raw.push(sig_type);
    raw.extend_from_slice(key.as_bytes());
    format!("{name}+{key_id}+{}", STANDARD.encode(raw))
}

/// An Ed25519 note key of signature type `T`: 0x01 for signed notes ([`NoteVerifier`]),
/// 0x04 for tlog cosignatures ([`CosignerKey`]: "Ed25519 public keys MAY be encoded as
/// vkeys with signature type 0x04"). One type, so the two can never drift apart.
/// Invariant: the key id is the hash of the name, the type and the key, and the key is
/// not of small order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedKey<const T: u8> {
    pub(super) name: KeyName,
    pub(super) key_id: KeyId,
    pub(super) key: VerifyingKey,
}

/// A trusted Ed25519 note key (signature type 0x01).
pub type NoteVerifier = TypedKey<SIG_TYPE_ED25519>;

/// A witness's cosigning key (signature type 0x04, tlog-cosignature).
pub type CosignerKey = TypedKey<SIG_TYPE_COSIGNATURE_V1>;

impl<const T: u8> TypedKey<T> {
    /// A key for `key` under `name`.
    ///
    /// # Errors
    /// [`NoteError::WeakKey`] for a small-order key.
    pub fn new(name: KeyName, key: VerifyingKey) -> Result<TypedKey<T>, NoteError> {
        if key.is_weak() {
            return Err(NoteError::WeakKey {
                name: name.to_string(),
            });
        }
        let key_id = KeyId::compute(&name, T, key.as_bytes());
        Ok(TypedKey { name, key_id, key })
    }

    /// Parses a verifier key `<name>+<key id>+base64(T ‖ public key)`, strictly: the
    /// key id in lowercase hex, standard padded base64, 32 bytes of key.
    ///
    /// # Errors
    /// [`NoteError::MalformedVkey`], [`NoteError::InvalidKeyName`],
    /// [`NoteError::UnsupportedKeyType`] (not `T`), [`NoteError::KeyIdMismatch`],
    /// [`NoteError::WeakKey`].
    pub fn from_vkey(vkey: &str) -> Result<TypedKey<T>, NoteError> {
        let (name, key_id, key) = parse_vkey(vkey, T)?;
        Ok(TypedKey { name, key_id, key })
    }

    /// The verifier key text; `from_vkey(v.to_vkey()) == v`.
    pub fn to_vkey(&self) -> String {
        write_vkey(&self.name, self.key_id, T, &self.key)
    }

    /// The key's name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id: the first 4 bytes of SHA-256(name, newline, type, key).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A named Ed25519 signing key. Its `Debug` shows the name and key id, never the key.
pub struct NoteSigner {
    pub(super) name: KeyName,
    pub(super) key: SigningKey,
}

impl NoteSigner {
    /// A signer named `name` with `key`.
    pub fn new(name: KeyName, key: SigningKey) -> NoteSigner {
        // A key from a 32-byte seed has a clamped scalar, a non-zero multiple of 8 below
        // 2^255, so its public key always has the full order ℓ.
        debug_assert!(!key.verifying_key().is_weak());
        NoteSigner { name, key }
    }

    /// The key's name.
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

    /// The Ed25519 public key.
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
