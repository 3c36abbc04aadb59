//! RFC 6962 / RFC 9162 §2.1.1 Merkle hashing, and nothing else.
//!
//! The Merkle Tree Hash of a list of leaves uses SHA-256 with domain separation:
//! `leaf_hash(d) = SHA-256(0x00 || d)` and `node_hash(l, r) = SHA-256(0x01 || l || r)`;
//! the hash of an empty tree is `SHA-256("")`. This module knows which bytes go into a
//! hash; which nodes make a proof lives in [`super::proof`], where they are stored in
//! the storage modules.
//!
//! ```
//! use lesson_ledger::log::hash::{leaf_hash, node_hash, Hash};
//! let root = node_hash(&leaf_hash(b"a"), &leaf_hash(b"b"));
//! assert_eq!(Hash::from_hex(&root.to_hex()).unwrap(), root);
//! ```

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Length of a SHA-256 digest in bytes.
pub const HASH_LEN: usize = 32;

/// A SHA-256 digest in the Merkle tree: a leaf hash, an interior node or a root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The root of the empty tree, `SHA-256("")` (RFC 9162 §2.1.1).
    pub fn empty_root() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Parses exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; HASH_LEN]>::try_from(bytes).ok().map(Hash)
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// From 64 hex characters; `None` if it is not that.
    pub fn from_hex(text: &str) -> Option<Hash> {
        let bytes = hex_decode(text)?;
        Hash::from_slice(&bytes)
    }

    /// Standard base64 with padding, as checkpoints and proofs carry hashes.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// From the standard base64 of 32 bytes; `None` if it is not that.
    pub fn from_base64(text: &str) -> Option<Hash> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Hash::from_slice(&bytes)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// `SHA-256(0x00 || leaf)`: the hash of one leaf's exact bytes.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Lowercase hexadecimal, two digits a byte.
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Hexadecimal of either case; `None` on an odd length or a non-hex digit.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Where the hashes of complete subtrees come from: the on-disk tree in production, a
/// vector in tests. Node `(level, index)` is the root of the perfect subtree over leaves
/// `[index · 2^level, (index + 1) · 2^level)`; level 0 holds the leaf hashes.
pub trait NodeSource {
    /// The hash of a complete subtree that the source holds.
    ///
    /// # Errors
    /// When the node is not (yet) stored or cannot be read.
    fn node(&self, level: u8, index: u64) -> Result<Hash, NodeError>;

    /// The hash of the tree of `size` leaves' right edge at `level`: the subtree over
    /// leaves `[⌊(size − 1) / 2^level⌋ · 2^level, size)`, which holds the last leaf and
    /// is incomplete unless `size` is a multiple of `2^level`, if the source keeps it.
    /// `None` (the default) has the caller hash it from complete nodes; a source that
    /// answers must give exactly that hash.
    fn right_edge(&self, level: u8, size: u64) -> Option<Hash> {
        let _ = (level, size);
        None
    }
}

/// A node the [`NodeSource`] could not give.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Node at level `level` index `index` is not in the tree.
    #[error("node at level {level} index {index} is not in the tree")]
    Missing {
        /// The tree level (0: leaves).
        level: u8,
        /// The entry's index in the log.
        index: u64,
    },
    /// Reading node at level `level` index `index`: `source`.
    #[error("reading node at level {level} index {index}: {source}")]
    Io {
        /// The tree level (0: leaves).
        level: u8,
        /// The entry's index in the log.
        index: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_and_empty_leaf_match_rfc_vectors() {
        assert_eq!(
            Hash::empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            leaf_hash(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_base64(&h.to_base64()), Some(h));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(Hash::from_hex("00"), None);
    }
}
