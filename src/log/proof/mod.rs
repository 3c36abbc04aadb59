//! Merkle inclusion and consistency proofs: which nodes make them, and how to verify
//! them — RFC 9162 §2.1.3 and §2.1.4 (<https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3>),
//! which keep RFC 6962's tree and proofs (<https://www.rfc-editor.org/rfc/rfc6962#section-2.1>).
//!
//! **Generation** reads the hashes of complete subtrees from any [`NodeSource`] that
//! holds a tree of at least the requested size; a node on the right edge of a tree
//! whose size is not a power of two is hashed on the fly from complete nodes. Each
//! needed node is read once: O(log n) reads, and no allocation but the result.
//!
//! **Verification** ([`verify_inclusion`], [`verify_consistency`], in `verify.rs`) needs
//! no storage: pure functions following RFC 9162 §2.1.3.2 and §2.1.4.2 step by step,
//! with the cases outside the RFC's algorithm (empty trees, equal sizes) defined there.
//! These are the verifiers the auditor, the client and the tests use.
//!
//! Verifying an inclusion proof shows that the leaf is under `root`; it is the signed
//! checkpoint that binds `root` to `size`. On its own, a proof for a tree of size 3 can
//! also verify against the same root when told the size is 4, as the RFC's algorithm
//! walks the same path for both: take `root` and `size` from one checkpoint.
//!
//! ```
//! use std::collections::HashMap;
//! use lesson_ledger::log::compact::Frontier;
//! use lesson_ledger::log::hash::{leaf_hash, Hash, NodeError, NodeSource};
//! use lesson_ledger::log::proof;
//!
//! // A store of complete nodes, filled by the frontier as leaves are appended.
//! struct Store(HashMap<(u8, u64), Hash>);
//! impl NodeSource for Store {
//!     fn node(&self, level: u8, index: u64) -> Result<Hash, NodeError> {
//!         self.0.get(&(level, index)).copied().ok_or(NodeError::Missing { level, index })
//!     }
//! }
//!
//! let (mut frontier, mut completed) = (Frontier::new(), Vec::new());
//! let mut roots = vec![frontier.root()];
//! for i in 0u32..7 {
//!     frontier.push(leaf_hash(&i.to_be_bytes()), &mut completed)?;
//!     roots.push(frontier.root());
//! }
//! let store = Store(completed.into_iter().map(|(l, i, h)| ((l, i), h)).collect());
//! assert_eq!(proof::root(&store, 7)?, roots[7]);
//!
//! let path = proof::inclusion_proof(&store, 2, 7)?;
//! proof::verify_inclusion(&leaf_hash(&2u32.to_be_bytes()), 2, 7, &path, &roots[7])?;
//!
//! let path = proof::consistency_proof(&store, 3, 7)?;
//! proof::verify_consistency(3, 7, &roots[3], &roots[7], &path)?;
//! assert!(proof::verify_consistency(3, 7, &roots[4], &roots[7], &path).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::hash::{node_hash, Hash, NodeError, NodeSource};

/// Why a proof could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The leaf is not in a tree of that size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof goes from a smaller tree to a larger one.
    #[error("size1 {size1} is greater than size2 {size2}")]
    SizesOutOfOrder {
        /// The first (smaller) tree size.
        size1: u64,
        /// The second (larger) tree size.
        size2: u64,
    },
    /// Every tree extends the empty tree; there is nothing to prove, and
    /// [`verify_consistency`] refuses such a proof.
    #[error("a consistency proof from the empty tree to size {size2} is meaningless")]
    ConsistencyFromEmpty {
        /// The second (larger) tree size.
        size2: u64,
    },
    /// `begin > end`.
    #[error("leaf range [{begin}, {end}) is reversed")]
    RangeReversed {
        /// First leaf of the range.
        begin: u64,
        /// End of the range (excluded).
        end: u64,
    },
    /// `[begin, end)` is not a subtree: `begin` is not a multiple of the smallest power
    /// of two at least `end - begin`.
    #[error("leaf range [{begin}, {end}) is not a subtree of the tree")]
    NotASubtree {
        /// First leaf of the range.
        begin: u64,
        /// End of the range (excluded).
        end: u64,
    },
    /// The source could not give a node the proof needs.
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl ProofError {
    /// A stable snake_case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::IndexOutOfRange { .. } => "index_out_of_range",
            ProofError::SizesOutOfOrder { .. } => "sizes_out_of_order",
            ProofError::ConsistencyFromEmpty { .. } => "consistency_from_empty_tree",
            ProofError::RangeReversed { .. } => "range_reversed",
            ProofError::NotASubtree { .. } => "not_a_subtree",
            ProofError::Node(NodeError::Missing { .. }) => "node_missing",
            ProofError::Node(NodeError::Io { .. }) => "node_io",
        }
    }
}

mod verify;

pub use verify::{verify_consistency, verify_inclusion, VerifyError};

// ---------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------

/// The Merkle Tree Hash (RFC 9162 §2.1.1) of leaves `[begin, end)`, where the range is
/// a subtree of the tree: `begin` is a multiple of the smallest power of two at least
/// `end - begin` (the subtrees of draft-ietf-plants-merkle-tree-certs). Every node of
/// an RFC 6962 tree, and every sibling in its proofs, is such a range. An empty range
/// has the hash of the empty list, [`Hash::empty_root`].
///
/// Reads one complete node per bit set in `end - begin`.
///
/// # Errors
/// [`ProofError::RangeReversed`] if `begin > end`, [`ProofError::NotASubtree`] if the
/// range is not aligned as above, [`ProofError::Node`] if `src` lacks a node.
pub fn subtree_root<S: NodeSource + ?Sized>(
    src: &S,
    begin: u64,
    end: u64,
) -> Result<Hash, ProofError> {
    let Some(count) = end.checked_sub(begin) else {
        return Err(ProofError::RangeReversed { begin, end });
    };
    if count == 0 {
        // "The hash of an empty list is the hash of an empty string: MTH({}) = SHA-256()."
        return Ok(Hash::empty_root());
    }
    let aligned = match count.checked_next_power_of_two() {
        Some(width) => begin % width == 0,
        // count > 2^63: its power-of-two ceiling is 2^64, a multiple of which only 0 is.
        None => begin == 0,
    };
    if !aligned {
        return Err(ProofError::NotASubtree { begin, end });
    }
    // The range splits, left to right, into perfect subtrees whose sizes are the bits
    // of `count`, largest first; aligned since `begin` is a multiple of them all. MTH
    // puts the largest on the left and the MTH of the rest on the right, so fold from
    // the smallest (rightmost) leftwards.
    let mut right: Option<Hash> = None;
    for level in 0..u64::BITS {
        if (count >> level) & 1 == 0 {
            continue;
        }
        // The chunk for bit `level` starts after the chunks for the higher bits.
        // `count` with bits 0..=level cleared (`level` < 64, so the shift is in range).
        let before = count & !(u64::MAX >> (u64::BITS - 1 - level));
        let start = begin + before; // <= end: no overflow.
                                    // `level` < 64: the cast cannot truncate.
        let chunk = src.node(level as u8, start >> level)?;
        right = Some(match right {
            None => chunk,
            Some(right) => node_hash(&chunk, &right),
        });
    }
    // count > 0 has a set bit, so the loop set `right`; were it not so, the range is
    // not a subtree this function can hash, and no hash is made up for it.
    right.ok_or(ProofError::NotASubtree { begin, end })
}

/// The Merkle Tree Hash of the first `size` leaves: the root of the tree of that size.
///
/// # Errors
/// [`ProofError::Node`] if `src` lacks a node of that tree.
pub fn root<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Hash, ProofError> {
    subtree_root(src, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves: RFC 9162
/// §2.1.3.1's `PATH(m, D[n])`, the siblings of the path from the leaf to the root,
/// leaf level first.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] if `index >= size`, [`ProofError::Node`] if `src`
/// lacks a node of that tree.
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = path_len(index, size - 1);
    let mut proof = Vec::with_capacity(expected);
    push_path(src, 0, index, size, &mut proof)?;
    debug_assert_eq!(proof.len(), expected);
    Ok(proof)
}

/// The consistency proof from the tree of `size1` leaves to the tree of `size2`:
/// RFC 9162 §2.1.4.1's `PROOF(m, D[n])`.
///
/// Outside the RFC's `0 < m < n`: equal sizes (`0` included) give the empty proof, as
/// the RFC's `SUBPROOF(m, D[m], true)` does and [`verify_consistency`] expects; from
/// size 0 to a larger size is [`ProofError::ConsistencyFromEmpty`], since every tree
/// extends the empty one and the verifier refuses such a proof.
///
/// # Errors
/// [`ProofError::SizesOutOfOrder`] if `size1 > size2`,
/// [`ProofError::ConsistencyFromEmpty`] if `0 == size1 < size2`, [`ProofError::Node`]
/// if `src` lacks a node of the tree of `size2`.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    src: &S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == size2 {
        return Ok(Vec::new());
    }
    if size1 == 0 {
        return Err(ProofError::ConsistencyFromEmpty { size2 });
    }
    // The smallest peak of the old tree, node (level, index), ends at leaf size1; the
    // proof is that node followed by its inclusion path in the new tree. When size1 is
    // a power of two that node is the old root, which the verifier already has
    // (§2.1.4.2 step 2 prepends it), so it is left out.
    let level = size1.trailing_zeros();
    let index = (size1 - 1) >> level;
    let expected = consistency_len(size1, size2);
    let mut proof = Vec::with_capacity(expected);
    if index != 0 {
        // `level` < 64: the cast cannot truncate.
        proof.push(src.node(level as u8, index)?);
    }
    push_path(src, level, index, size2, &mut proof)?;
    debug_assert_eq!(proof.len(), expected);
    Ok(proof)
}

/// Pushes onto `out`, lowest first, the siblings on the path from node
/// `(level, index)` to the root of the tree of `size` leaves. The node must lie in that
/// tree: `index · 2^level < size`.
///
/// With `fn = index` and `sn = (size - 1) >> level` (the last node at this level), the
/// path has three parts, as in transparency-dev/merkle's `proof.nodes`:
/// - below `inner`, the bit length of `fn ^ sn`, the path lies inside a complete
///   subtree: every sibling is a stored node, except the topmost one, the right half of
///   the fork, which holds the last leaf and may be incomplete: hashed from its peaks;
/// - from `inner` up, the path follows the right edge of the tree: a sibling exists
///   only on the left (where `fn` has a bit set), and it is complete.
fn push_path<S: NodeSource + ?Sized>(
    src: &S,
    level: u32,
    index: u64,
    size: u64,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    debug_assert!(level < u64::BITS && size > 0);
    let fn_ = index;
    let sn = (size - 1) >> level;
    debug_assert!(fn_ <= sn);
    let inner = u64::BITS - (fn_ ^ sn).leading_zeros();
    // Every absolute level below is level + l < 64: casts to u8 cannot truncate.
    for l in 0..inner.saturating_sub(1) {
        out.push(src.node((level + l) as u8, (fn_ >> l) ^ 1)?);
    }
    if inner > 0 {
        // At l = inner - 1, fn has a 0 and sn a 1 with the same bits above: the sibling
        // is the node sn >> l, which holds the last leaf and runs to the end of the tree.
        let l = inner - 1;
        // (level + l) < 64: the cast cannot truncate.
        let sibling = match src.right_edge((level + l) as u8, size) {
            Some(hash) => hash,
            None => {
                let begin = (sn >> l) << (level + l); // <= size - 1: no overflow.
                subtree_root(src, begin, size)?
            }
        };
        out.push(sibling);
    }
    for l in inner..(u64::BITS - level) {
        let here = fn_ >> l;
        if here & 1 == 1 {
            out.push(src.node((level + l) as u8, here - 1)?);
        }
    }
    Ok(())
}

/// Number of hashes on the path from node `fn_` to the root, `sn` being the last node
/// at the same level: the inner part plus one per set bit of the border part.
pub(super) fn path_len(fn_: u64, sn: u64) -> usize {
    let inner = u64::BITS - (fn_ ^ sn).leading_zeros();
    // Shifting out all 64 bits leaves no border.
    let border = if inner >= u64::BITS {
        0
    } else {
        (fn_ >> inner).count_ones()
    };
    // Both are at most 64.
    (inner + border) as usize
}

/// Number of hashes in the consistency proof for `0 < size1 < size2`.
pub(super) fn consistency_len(size1: u64, size2: u64) -> usize {
    let level = size1.trailing_zeros();
    let fn_ = (size1 - 1) >> level;
    let sn = (size2 - 1) >> level;
    path_len(fn_, sn) + usize::from(fn_ != 0)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::log::hash::leaf_hash;

    /// Every complete node of a tree, level by level, hashed straight from the
    /// definition (no Frontier): `levels[l][i]` is node (l, i).
    pub(super) struct Levels(Vec<Vec<Hash>>);

    impl Levels {
        pub(super) fn new(size: u64) -> Levels {
            let mut levels = vec![(0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect()];
            loop {
                let below: &Vec<Hash> = &levels[levels.len() - 1];
                if below.len() < 2 {
                    break;
                }
                let above = below
                    .chunks_exact(2)
                    .map(|pair| node_hash(&pair[0], &pair[1]))
                    .collect();
                levels.push(above);
            }
            Levels(levels)
        }

        pub(super) fn leaf(&self, index: u64) -> Hash {
            self.0[0][index as usize]
        }
    }

    impl NodeSource for Levels {
        fn node(&self, level: u8, index: u64) -> Result<Hash, NodeError> {
            self.0
                .get(usize::from(level))
                .and_then(|row| row.get(usize::try_from(index).ok()?))
                .copied()
                .ok_or(NodeError::Missing { level, index })
        }
    }

    /// MTH over leaf hashes, RFC 6962 §2.1: split at the largest power of two below n.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Hash::empty_root(),
            1 => leaves[0],
            n => {
                let k = 1 << (usize::BITS - (n - 1).leading_zeros() - 1);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let tree = Levels::new(40);
        for size in 0..=40u64 {
            assert_eq!(
                root(&tree, size).unwrap(),
                mth(&tree.0[0][..size as usize]),
                "size {size}"
            );
        }
    }

    #[test]
    fn subtree_root_refuses_reversed_and_unaligned_ranges() {
        let tree = Levels::new(8);
        let err = subtree_root(&tree, 5, 4).unwrap_err();
        assert!(matches!(
            err,
            ProofError::RangeReversed { begin: 5, end: 4 }
        ));
        assert_eq!(err.code(), "range_reversed");
        // [2, 5): 3 leaves need a multiple of 4 as start.
        let err = subtree_root(&tree, 2, 5).unwrap_err();
        assert!(matches!(err, ProofError::NotASubtree { begin: 2, end: 5 }));
        assert_eq!(err.code(), "not_a_subtree");
        // [1, 2) is leaf 1, [4, 7) is a subtree.
        assert_eq!(subtree_root(&tree, 1, 2).unwrap(), tree.leaf(1));
        assert_eq!(subtree_root(&tree, 4, 7).unwrap(), mth(&tree.0[0][4..7]));
        assert_eq!(subtree_root(&tree, 3, 3).unwrap(), Hash::empty_root());
    }

    #[test]
    fn subtree_root_of_more_than_half_the_u64_range_must_start_at_zero() {
        let tree = Levels::new(1);
        let err = subtree_root(&tree, 1, u64::MAX).unwrap_err();
        assert!(matches!(err, ProofError::NotASubtree { .. }));
        // Starting at 0 it is aligned, and the first peak is simply missing here.
        let err = subtree_root(&tree, 0, u64::MAX).unwrap_err();
        assert_eq!(err.code(), "node_missing");
    }

    #[test]
    fn generation_beyond_the_source_is_a_node_error() {
        let tree = Levels::new(5);
        let err = inclusion_proof(&tree, 0, 9).unwrap_err();
        assert!(matches!(err, ProofError::Node(NodeError::Missing { .. })));
        assert_eq!(err.code(), "node_missing");
        let err = consistency_proof(&tree, 3, 9).unwrap_err();
        assert_eq!(err.code(), "node_missing");
        let err = ProofError::from(NodeError::Io {
            level: 0,
            index: 0,
            source: std::io::Error::other("disk gone"),
        });
        assert_eq!(err.code(), "node_io");
    }

    #[test]
    fn inclusion_proof_of_a_leaf_outside_the_tree_is_refused() {
        let tree = Levels::new(4);
        let err = inclusion_proof(&tree, 4, 4).unwrap_err();
        assert!(matches!(
            err,
            ProofError::IndexOutOfRange { index: 4, size: 4 }
        ));
        assert_eq!(err.code(), "index_out_of_range");
        assert_eq!(
            inclusion_proof(&tree, 0, 0).unwrap_err().code(),
            "index_out_of_range"
        );
    }

    #[test]
    fn consistency_proof_sizes_outside_the_rfc_are_defined() {
        let tree = Levels::new(4);
        let err = consistency_proof(&tree, 3, 2).unwrap_err();
        assert!(matches!(
            err,
            ProofError::SizesOutOfOrder { size1: 3, size2: 2 }
        ));
        assert_eq!(err.code(), "sizes_out_of_order");
        let err = consistency_proof(&tree, 0, 2).unwrap_err();
        assert!(matches!(err, ProofError::ConsistencyFromEmpty { size2: 2 }));
        assert_eq!(err.code(), "consistency_from_empty_tree");
        assert_eq!(consistency_proof(&tree, 0, 0).unwrap(), []);
        assert_eq!(consistency_proof(&tree, 3, 3).unwrap(), []);
    }

    #[test]
    fn rfc_example_proofs_for_the_seven_leaf_tree() {
        // RFC 6962 §2.1.3's tree of seven leaves: a..f are the leaves d0..d5 and j is
        // d6; g, h, i are the level-1 nodes; k is [0, 4) and l is [4, 7).
        let tree = Levels::new(7);
        let n = |level: u8, index: u64| tree.node(level, index).unwrap();
        // "The audit path for d0 is [b, h, l]."
        assert_eq!(
            inclusion_proof(&tree, 0, 7).unwrap(),
            [n(0, 1), n(1, 1), subtree_root(&tree, 4, 7).unwrap()]
        );
        // "The audit path for d3 is [c, g, l]."
        assert_eq!(
            inclusion_proof(&tree, 3, 7).unwrap(),
            [n(0, 2), n(1, 0), subtree_root(&tree, 4, 7).unwrap()]
        );
        // "The audit path for d4 is [f, j, k]."
        assert_eq!(
            inclusion_proof(&tree, 4, 7).unwrap(),
            [n(0, 5), n(0, 6), n(2, 0)]
        );
        // "The audit path for d6 is [i, k]."
        assert_eq!(inclusion_proof(&tree, 6, 7).unwrap(), [n(1, 2), n(2, 0)]);
        // §2.1.4: "The consistency proof between hash0 and hash is PROOF(3, D[7]) =
        // [c, d, g, l]."
        assert_eq!(
            consistency_proof(&tree, 3, 7).unwrap(),
            [
                n(0, 2),
                n(0, 3),
                n(1, 0),
                subtree_root(&tree, 4, 7).unwrap()
            ]
        );
        // "... between hash1 and hash is PROOF(4, D[7]) = [l]."
        assert_eq!(
            consistency_proof(&tree, 4, 7).unwrap(),
            [subtree_root(&tree, 4, 7).unwrap()]
        );
        // "... between hash2 and hash is PROOF(6, D[7]) = [i, j, k]."
        assert_eq!(
            consistency_proof(&tree, 6, 7).unwrap(),
            [n(1, 2), n(0, 6), n(2, 0)]
        );
    }

    #[test]
    fn every_proof_up_to_33_leaves_verifies_and_has_the_computed_length() {
        let tree = Levels::new(33);
        for size in 1..=33u64 {
            let root_n = root(&tree, size).unwrap();
            for index in 0..size {
                let proof = inclusion_proof(&tree, index, size).unwrap();
                assert_eq!(proof.len(), path_len(index, size - 1));
                verify_inclusion(&tree.leaf(index), index, size, &proof, &root_n).unwrap();
            }
            for size1 in 1..size {
                let proof = consistency_proof(&tree, size1, size).unwrap();
                assert_eq!(proof.len(), consistency_len(size1, size));
                let root_m = root(&tree, size1).unwrap();
                verify_consistency(size1, size, &root_m, &root_n, &proof).unwrap();
            }
        }
    }
}
