//! Where the public key a keyid names comes from: the keyid itself (a C2SP verifier key
//! is self-certifying), a fixed set, or a bounded cache in front of decoding.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use super::EnvelopeError;
use crate::log::note::NoteVerifier;

/// Where the public key a keyid names comes from.
pub trait KeyLookup {
    /// The key that `keyid` names.
    ///
    /// # Errors
    /// [`EnvelopeError::UnknownKey`] when the keyid names no key this lookup accepts.
    fn lookup(&self, keyid: &str) -> Result<VerifyingKey, EnvelopeError>;
}

/// Takes a keyid for what it says: a C2SP verifier key with a matching key id, parsed
/// strictly. It proves only that the holder of that key signed; the ledger decides
/// whether the key is registered and has authority.
#[derive(Clone, Copy, Debug, Default)]
pub struct SelfCertifying;

impl KeyLookup for SelfCertifying {
    fn lookup(&self, keyid: &str) -> Result<VerifyingKey, EnvelopeError> {
        NoteVerifier::from_vkey(keyid)
            .map(|verifier| *verifier.verifying_key())
            .map_err(|_| EnvelopeError::UnknownKey {
                keyid: keyid.to_owned(),
            })
    }
}

/// A fixed set of trusted keys, looked up by their exact verifier key text.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl KeySet {
    /// The keys of `verifiers`, by key id.
    pub fn new(verifiers: impl IntoIterator<Item = NoteVerifier>) -> KeySet {
        KeySet {
            keys: verifiers
                .into_iter()
                .map(|v| (v.to_vkey(), *v.verifying_key()))
                .collect(),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl KeyLookup for KeySet {
    fn lookup(&self, keyid: &str) -> Result<VerifyingKey, EnvelopeError> {
        self.keys
            .get(keyid)
            .copied()
            .ok_or_else(|| EnvelopeError::UnknownKey {
                keyid: keyid.to_owned(),
            })
    }
}

/// [`SelfCertifying`] with a memory: parsing a verifier key decompresses a curve point,
/// which costs a fifth of a verification, and a ledger sees the same few keys again and
/// again. Bounded: when full it starts over, so hostile input cannot grow it.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: std::sync::RwLock<HashMap<String, VerifyingKey>>,
}

/// Most keys [`KeyCache`] remembers before it starts over.
const KEY_CACHE_ENTRIES_MAX: usize = 65_536;

impl KeyCache {
    /// An empty cache in front of [`SelfCertifying`].
    pub fn self_certifying() -> KeyCache {
        KeyCache::default()
    }
}

impl KeyLookup for KeyCache {
    fn lookup(&self, keyid: &str) -> Result<VerifyingKey, EnvelopeError> {
        // A poisoned lock only means another thread panicked mid-insert of a parsed
        // key; the map is still a valid cache, so keep using it.
        if let Some(key) = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(keyid)
        {
            return Ok(*key);
        }
        let key = SelfCertifying.lookup(keyid)?;
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= KEY_CACHE_ENTRIES_MAX {
            keys.clear();
        }
        keys.insert(keyid.to_owned(), key);
        Ok(key)
    }
}
