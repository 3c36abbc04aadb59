//! The state map's hashing and proofs: the pure, storage-free part of the map, what a
//! client needs to check one object against a signed state root
//! (`schemas/README.md`, "State map").
//!
//! - Map key: `BLAKE3::derive_key("lesson-ledger v1 state-map key",
//!   u32be(len(t)) || t || u32be(len(i)) || i)` for table name `t` and id `i`; its path is
//!   its 256 bits, most significant bit of byte 0 first, 0 = left.
//! - Value hash: `BLAKE3(value bytes)`, the value bytes being the object's canonical JSON.
//! - Leaf: `BLAKE3(0x00 || key || value_hash)`; internal node: `BLAKE3(0x01 || left || right)`;
//!   empty subtree: 32 zero bytes.
//! - A subtree holding one object is that object's leaf, at whatever depth (a lone leaf is
//!   never pushed further down), so the tree is as deep as keys need to be told apart
//!   (about log2(n) + 1 levels for random keys).
//! - A proof for key `k`: the siblings from the root down, then what is at the end of
//!   `k`'s path: nothing, or one leaf (`k`'s own for presence, another key sharing the
//!   path for absence).
//!
//! ```
//! use lesson_ledger::ledger::state_map::proof::{map_key, root_of, reference_proof, value_hash};
//! use lesson_ledger::ledger::Table;
//! let objects = [("c-1", b"{\"a\":1}".as_slice()), ("c-2", b"{\"a\":2}".as_slice())];
//! let pairs: Vec<_> = objects
//!     .iter()
//!     .map(|(id, bytes)| (map_key(Table::Claim, id), value_hash(bytes)))
//!     .collect();
//! let root = root_of(pairs.iter().copied());
//! let proof = reference_proof(pairs.iter().copied(), &map_key(Table::Claim, "c-1"));
//! proof.verify_present(&root, Table::Claim, "c-1", b"{\"a\":1}").unwrap();
//! let err = proof.verify_present(&root, Table::Claim, "c-1", b"{\"a\":3}").unwrap_err();
//! assert_eq!(err.code(), "proof_value_mismatch");
//! let absent = reference_proof(pairs.iter().copied(), &map_key(Table::Claim, "c-3"));
//! absent.verify_absent(&root, Table::Claim, "c-3").unwrap();
//! ```

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::ledger::state::{Table, Value};
use crate::ledger::units::hex;

/// A 32-byte hash (map key, value hash, node hash).
pub type Hash = [u8; 32];

/// The hash of an empty subtree (and the root of the empty state).
pub const ZERO: Hash = [0; 32];

/// Bits in a map key: the most siblings a proof can have.
pub const KEY_BITS: usize = 256;

/// BLAKE3 derive-key context of map keys.
pub const KEY_CONTEXT: &str = "lesson-ledger v1 state-map key";

/// The map key of the object `id` of `table`.
#[must_use]
pub fn map_key(table: Table, id: &str) -> Hash {
    let (t, i) = (table.name().as_bytes(), id.as_bytes());
    let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    // Lengths fit u32: table names are constants, ids are capped at 256 bytes; an id
    // that did not fit would still be framed unambiguously by the saturated length
    // followed by every byte, and no such id is ever stored.
    h.update(&u32::try_from(t.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(t);
    h.update(&u32::try_from(i.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(i);
    *h.finalize().as_bytes()
}

/// The canonical bytes of a stored value (its canonical JSON), what the map hashes.
#[must_use]
pub fn value_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    super::canonical::canonical_json(value, &mut out);
    out
}

/// `BLAKE3(value bytes)`.
#[must_use]
pub fn value_hash(value_bytes: &[u8]) -> Hash {
    *blake3::hash(value_bytes).as_bytes()
}

/// `BLAKE3(0x00 || key || value_hash)`.
#[must_use]
pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(key);
    h.update(value_hash);
    *h.finalize().as_bytes()
}

/// `BLAKE3(0x01 || left || right)`.
#[must_use]
pub fn internal_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// Bit `depth` of `key` (0 = the most significant bit of byte 0); `true` = right.
#[must_use]
pub fn bit(key: &Hash, depth: usize) -> bool {
    (key[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// Whether `a` and `b` agree on their first `depth` bits.
#[must_use]
pub fn same_prefix(a: &Hash, b: &Hash, depth: usize) -> bool {
    let (bytes, bits) = (depth / 8, depth % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    if bits == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - bits);
    (a[bytes] & mask) == (b[bytes] & mask)
}

/// The leaf at the end of a proof's path: a key and its value hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofLeaf {
    /// The leaf's map key.
    pub key: Hash,
    /// BLAKE3 of the leaf's value bytes.
    pub value_hash: Hash,
}

/// A proof of presence or absence of one key against a state root.
///
/// JSON form (`schemas/README.md`, "State map"):
/// `{"key": hex, "siblings": base64(d × 32 bytes), "leaf": null | {"key": hex, "value_hash": hex}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StateProofJson", into = "StateProofJson")]
pub struct StateProof {
    /// The map key proven present or absent.
    pub key: Hash,
    /// Sibling hashes from depth 0 downwards (at most [`KEY_BITS`]).
    pub siblings: Vec<Hash>,
    /// What ends the path at depth `siblings.len()`: `None` for an empty subtree.
    pub leaf: Option<ProofLeaf>,
}

/// Why a proof is refused. Every variant has its own stable [code](ProofError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is not well formed (bad hex or base64, wrong lengths, not canonical).
    #[error("state proof is malformed: {0}")]
    Malformed(String),
    /// More siblings than a key has bits.
    #[error("state proof has {0} siblings, at most 256")]
    TooDeep(usize),
    /// The proof is for another key than the object asked about.
    #[error("state proof is for key {found}, not {expected}")]
    KeyMismatch {
        /// The key of the object asked about (hex).
        expected: String,
        /// The proof's key (hex).
        found: String,
    },
    /// A presence proof whose path ends in nothing or in another key's leaf.
    #[error("state proof shows the key absent")]
    KeyAbsent,
    /// A presence proof whose leaf holds another value than the one given.
    #[error("state proof's value hash is {found}, the value given hashes to {expected}")]
    ValueMismatch {
        /// BLAKE3 of the value bytes given (hex).
        expected: String,
        /// The leaf's value hash (hex).
        found: String,
    },
    /// An absence proof whose path ends in the key's own leaf.
    #[error("absence proof ends in the key's own leaf: the key is present")]
    AbsentKeyPresent,
    /// An absence proof whose leaf does not share the key's path.
    #[error("absence proof's leaf is not on the key's path")]
    LeafOffPath,
    /// The hashes do not lead to the root.
    #[error("state proof leads to root {found}, not {expected}")]
    RootMismatch {
        /// The signed root (hex).
        expected: String,
        /// The root the proof leads to (hex).
        found: String,
    },
}

impl ProofError {
    /// Stable error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::Malformed(_) => "proof_malformed",
            ProofError::TooDeep(_) => "proof_too_deep",
            ProofError::KeyMismatch { .. } => "proof_key_mismatch",
            ProofError::KeyAbsent => "proof_key_absent",
            ProofError::ValueMismatch { .. } => "proof_value_mismatch",
            ProofError::AbsentKeyPresent => "proof_absent_key_present",
            ProofError::LeafOffPath => "proof_leaf_off_path",
            ProofError::RootMismatch { .. } => "proof_root_mismatch",
        }
    }
}

impl StateProof {
    /// Check that object `id` of `table` holds exactly `value_bytes` in the state whose
    /// map root is `root`.
    ///
    /// # Errors
    /// A [`ProofError`] naming the first check that failed.
    pub fn verify_present(
        &self,
        root: &Hash,
        table: Table,
        id: &str,
        value_bytes: &[u8],
    ) -> Result<(), ProofError> {
        self.check_shape(table, id)?;
        let leaf = match &self.leaf {
            Some(leaf) if leaf.key == self.key => leaf,
            _ => return Err(ProofError::KeyAbsent),
        };
        let expected = value_hash(value_bytes);
        if leaf.value_hash != expected {
            return Err(ProofError::ValueMismatch {
                expected: hex(&expected),
                found: hex(&leaf.value_hash),
            });
        }
        self.check_root(root)
    }

    /// Check that no object `id` of `table` is in the state whose map root is `root`.
    ///
    /// # Errors
    /// A [`ProofError`] naming the first check that failed.
    pub fn verify_absent(&self, root: &Hash, table: Table, id: &str) -> Result<(), ProofError> {
        self.check_shape(table, id)?;
        if let Some(leaf) = &self.leaf {
            if leaf.key == self.key {
                return Err(ProofError::AbsentKeyPresent);
            }
            if !same_prefix(&leaf.key, &self.key, self.siblings.len()) {
                return Err(ProofError::LeafOffPath);
            }
        }
        self.check_root(root)
    }

    /// The root this proof leads to (the recomputation of `schemas/README.md`).
    #[must_use]
    pub fn computed_root(&self) -> Hash {
        let mut h = match &self.leaf {
            None => ZERO,
            Some(leaf) => leaf_hash(&leaf.key, &leaf.value_hash),
        };
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            h = if bit(&self.key, depth) {
                internal_hash(sibling, &h)
            } else {
                internal_hash(&h, sibling)
            };
        }
        h
    }

    /// Size of the proof in bytes as a verifier needs it (key, siblings, leaf).
    #[must_use]
    pub fn byte_len(&self) -> usize {
        32 + 32 * self.siblings.len() + self.leaf.map_or(0, |_| 64)
    }

    /// The key is the object's, the depth possible, and the last sibling not empty: a
    /// tree never ends a path beside an empty subtree (the lone object or the emptiness
    /// would have been one level up), so such a proof was edited.
    fn check_shape(&self, table: Table, id: &str) -> Result<(), ProofError> {
        let expected = map_key(table, id);
        if self.key != expected {
            return Err(ProofError::KeyMismatch {
                expected: hex(&expected),
                found: hex(&self.key),
            });
        }
        if self.siblings.len() > KEY_BITS {
            return Err(ProofError::TooDeep(self.siblings.len()));
        }
        if self.siblings.last() == Some(&ZERO) {
            return Err(ProofError::Malformed(
                "the last sibling is empty (not a proof a tree gives)".into(),
            ));
        }
        Ok(())
    }

    fn check_root(&self, root: &Hash) -> Result<(), ProofError> {
        let found = self.computed_root();
        if &found != root {
            return Err(ProofError::RootMismatch {
                expected: hex(root),
                found: hex(&found),
            });
        }
        Ok(())
    }

    /// Parse the JSON form.
    ///
    /// # Errors
    /// `proof_malformed` for anything but a well-formed proof; `proof_too_deep` for more
    /// than 256 siblings.
    pub fn from_json(bytes: &[u8]) -> Result<StateProof, ProofError> {
        let wire: StateProofJson =
            serde_json::from_slice(bytes).map_err(|e| ProofError::Malformed(e.to_string()))?;
        StateProof::try_from(wire)
    }
}

/// The JSON form of a proof's leaf.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofLeafJson {
    /// Lowercase hex of the leaf's map key.
    pub key: String,
    /// Lowercase hex of the leaf's value hash.
    pub value_hash: String,
}

/// The JSON form of a [`StateProof`], as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateProofJson {
    /// Lowercase hex of the map key.
    pub key: String,
    /// Base64 (standard, padded) of the siblings' concatenation.
    pub siblings: String,
    /// The leaf ending the path, or `null`.
    pub leaf: Option<ProofLeafJson>,
}

impl From<StateProof> for StateProofJson {
    fn from(p: StateProof) -> Self {
        StateProofJson {
            key: hex(&p.key),
            siblings: STANDARD.encode(p.siblings.concat()),
            leaf: p.leaf.map(|l| ProofLeafJson {
                key: hex(&l.key),
                value_hash: hex(&l.value_hash),
            }),
        }
    }
}

impl TryFrom<StateProofJson> for StateProof {
    type Error = ProofError;

    fn try_from(w: StateProofJson) -> Result<Self, ProofError> {
        let raw = STANDARD
            .decode(w.siblings.as_bytes())
            .map_err(|e| ProofError::Malformed(format!("siblings: {e}")))?;
        if raw.len() % 32 != 0 {
            return Err(ProofError::Malformed(format!(
                "siblings are {} bytes, not a multiple of 32",
                raw.len()
            )));
        }
        if raw.len() / 32 > KEY_BITS {
            return Err(ProofError::TooDeep(raw.len() / 32));
        }
        let siblings = raw
            .chunks_exact(32)
            .map(|c| {
                let mut h = ZERO;
                h.copy_from_slice(c);
                h
            })
            .collect();
        let leaf = match w.leaf {
            None => None,
            Some(l) => Some(ProofLeaf {
                key: hash_hex("leaf.key", &l.key)?,
                value_hash: hash_hex("leaf.value_hash", &l.value_hash)?,
            }),
        };
        Ok(StateProof {
            key: hash_hex("key", &w.key)?,
            siblings,
            leaf,
        })
    }
}

/// 64 lowercase hex digits as a hash.
fn hash_hex(field: &str, text: &str) -> Result<Hash, ProofError> {
    let bad = || ProofError::Malformed(format!("{field} is not 64 lowercase hex digits"));
    if !crate::ledger::units::is_digest_hex(text) {
        return Err(bad());
    }
    let mut out = ZERO;
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The map root of a set of (key, value hash) pairs, computed from scratch by the
/// definition: the reference the stored and in-memory maps are tested against. A key
/// given twice keeps its last value hash.
#[must_use]
pub fn root_of(pairs: impl IntoIterator<Item = (Hash, Hash)>) -> Hash {
    let sorted: Vec<(Hash, Hash)> = pairs
        .into_iter()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    subtree_root(&sorted, 0)
}

/// The hash of the subtree at `depth` holding exactly `sorted` (keys sharing their
/// first `depth` bits, in order).
fn subtree_root(sorted: &[(Hash, Hash)], depth: usize) -> Hash {
    match sorted {
        [] => ZERO,
        [(k, v)] => leaf_hash(k, v),
        _ => {
            let split = sorted.partition_point(|(k, _)| !bit(k, depth));
            let (left, right) = sorted.split_at(split);
            internal_hash(
                &subtree_root(left, depth + 1),
                &subtree_root(right, depth + 1),
            )
        }
    }
}

/// The proof for `key` over a set of pairs, computed from scratch by the definition
/// (the reference for the maps' `prove`).
#[must_use]
pub fn reference_proof(pairs: impl IntoIterator<Item = (Hash, Hash)>, key: &Hash) -> StateProof {
    let sorted: Vec<(Hash, Hash)> = pairs
        .into_iter()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let mut here: &[(Hash, Hash)] = &sorted;
    let mut siblings = Vec::new();
    let mut depth = 0;
    while here.len() > 1 {
        let split = here.partition_point(|(k, _)| !bit(k, depth));
        let (left, right) = here.split_at(split);
        let (on_path, beside) = if bit(key, depth) {
            (right, left)
        } else {
            (left, right)
        };
        siblings.push(subtree_root(beside, depth + 1));
        here = on_path;
        depth += 1;
    }
    StateProof {
        key: *key,
        siblings,
        leaf: here.first().map(|(k, v)| ProofLeaf {
            key: *k,
            value_hash: *v,
        }),
    }
}
