//! Verifying Merkle proofs (RFC 9162 §2.1.3.2 and §2.1.4.2): pure functions, no
//! storage, followed step by step, with the cases outside the RFC's algorithms (empty
//! trees, equal sizes) defined here. The auditor, the client and the tests use these.

use super::{consistency_len, path_len};
use crate::log::hash::{node_hash, Hash};

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// RFC 9162 §2.1.3.2 step 1: the index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The entry's index in the log.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof has more or fewer hashes than the sizes call for.
    #[error("proof has {found} hashes, the sizes call for {expected}")]
    ProofLength {
        /// What was expected.
        expected: usize,
        /// What was found.
        found: usize,
    },
    /// The proof leads to another root than the one given for the tree of `size`.
    #[error("root of the tree of size {size}: expected {expected}, computed {computed}")]
    RootMismatch {
        /// The tree size.
        size: u64,
        /// What was expected.
        expected: Hash,
        /// The key id its key hashes to.
        computed: Hash,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("size1 {size1} is greater than size2 {size2}")]
    SizesOutOfOrder {
        /// The first (smaller) tree size.
        size1: u64,
        /// The second (larger) tree size.
        size2: u64,
    },
    /// The tree of size 0 has one root, `SHA-256("")`; this one is another.
    #[error("the empty tree's root is SHA-256(\"\"), not {root}")]
    EmptyTreeRoot {
        /// The root given for the empty tree.
        root: Hash,
    },
    /// Every tree extends the empty tree: a consistency proof from size 0 proves
    /// nothing, and the RFC's algorithm is undefined for it (`first - 1`).
    #[error("a consistency proof from the empty tree to size {size2} is meaningless")]
    ConsistencyFromEmpty {
        /// The second (larger) tree size.
        size2: u64,
    },
    /// Two trees of the same size are consistent only if they are the same tree.
    #[error("two trees of size {size} with different roots {root1} and {root2}")]
    EqualSizesDifferentRoots {
        /// The tree size.
        size: u64,
        /// The root given for the first tree.
        root1: Hash,
        /// The root given for the second tree.
        root2: Hash,
    },
}

impl VerifyError {
    /// A stable snake_case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::IndexOutOfRange { .. } => "index_out_of_range",
            VerifyError::ProofLength { .. } => "proof_length",
            VerifyError::RootMismatch { .. } => "root_mismatch",
            VerifyError::SizesOutOfOrder { .. } => "sizes_out_of_order",
            VerifyError::EmptyTreeRoot { .. } => "empty_tree_root_mismatch",
            VerifyError::ConsistencyFromEmpty { .. } => "consistency_from_empty_tree",
            VerifyError::EqualSizesDifferentRoots { .. } => "equal_sizes_different_roots",
        }
    }
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is
/// `root`, given its inclusion `proof`: RFC 9162 §2.1.3.2.
///
/// # Errors
/// [`VerifyError::IndexOutOfRange`] if `index >= size`, [`VerifyError::ProofLength`] if
/// the proof is longer or shorter than the sizes call for, [`VerifyError::RootMismatch`]
/// if it leads to another root.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    // "1. Compare leaf_index from the inclusion_proof_v2 structure against tree_size.
    //     If leaf_index is greater than or equal to tree_size, then fail the proof
    //     verification."
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    // Not an RFC step: the steps below accept exactly this many hashes (4a and 5 fail
    // otherwise); checking first lets the error say how many were expected.
    let expected = path_len(index, size - 1);
    let length_error = VerifyError::ProofLength {
        expected,
        found: proof.len(),
    };
    if proof.len() != expected {
        return Err(length_error);
    }
    // "2. Set fn to leaf_index and sn to tree_size - 1."
    let mut fn_ = index;
    let mut sn = size - 1;
    // "3. Set r to hash."
    let mut r = *leaf_hash;
    // "4. For each value p in the inclusion_path array:"
    for p in proof {
        // "a. If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0 {
            return Err(length_error);
        }
        // "b. If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn_ & 1 == 1 || fn_ == sn {
            // "i. Set r to HASH(0x01 || p || r)."
            r = node_hash(p, &r);
            // "ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            //      either LSB(fn) is set or fn is 0."
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // "Otherwise: i. Set r to HASH(0x01 || r || p)."
            r = node_hash(&r, p);
        }
        // "c. Finally, right-shift both fn and sn one time."
        fn_ >>= 1;
        sn >>= 1;
    }
    // "5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r
    //     and the root_hash are equal, then the log has proven the inclusion of hash.
    //     Otherwise, fail the proof verification."
    if sn != 0 {
        return Err(length_error);
    }
    if r != *root {
        return Err(VerifyError::RootMismatch {
            size,
            expected: *root,
            computed: r,
        });
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of
/// `size1` leaves with root `root1`, given the consistency `proof`: RFC 9162 §2.1.4.2.
///
/// The RFC's algorithm covers `0 < size1 < size2`. Outside it: equal sizes need an
/// empty proof and equal roots (and for size 0, the roots must be the empty tree's);
/// `size1 == 0 < size2` is refused, as a proof from the empty tree proves nothing —
/// check instead that `root1` is [`Hash::empty_root`].
///
/// # Errors
/// [`VerifyError::SizesOutOfOrder`] if `size1 > size2`,
/// [`VerifyError::ConsistencyFromEmpty`] if `0 == size1 < size2`,
/// [`VerifyError::EmptyTreeRoot`] if both sizes are 0 and a root is not the empty
/// tree's, [`VerifyError::EqualSizesDifferentRoots`] for equal sizes with different
/// roots, [`VerifyError::ProofLength`] if the proof is longer or shorter than the sizes
/// call for, [`VerifyError::RootMismatch`] if it leads to other roots.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if size1 > size2 {
        return Err(VerifyError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == size2 {
        return verify_equal_sizes(size1, root1, root2, proof);
    }
    if size1 == 0 {
        return Err(VerifyError::ConsistencyFromEmpty { size2 });
    }
    // From here on 0 < size1 < size2, the RFC's case.
    let expected = consistency_len(size1, size2);
    let length_error = VerifyError::ProofLength {
        expected,
        found: proof.len(),
    };
    // "1. If consistency_path is an empty array, stop and fail the proof verification."
    if proof.is_empty() {
        return Err(length_error);
    }
    // Not an RFC step: the steps below accept exactly this many hashes (6a and 7 fail
    // otherwise); checking first lets the error say how many were expected.
    if proof.len() != expected {
        return Err(length_error);
    }
    let (fr, sr) = consistency_roots(size1, size2, root1, proof, length_error)?;
    if fr != *root1 {
        return Err(VerifyError::RootMismatch {
            size: size1,
            expected: *root1,
            computed: fr,
        });
    }
    if sr != *root2 {
        return Err(VerifyError::RootMismatch {
            size: size2,
            expected: *root2,
            computed: sr,
        });
    }
    Ok(())
}

/// [`verify_consistency`] for `size1 == size2`: an empty proof and equal roots (the
/// empty tree's, for size 0).
fn verify_equal_sizes(
    size: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if !proof.is_empty() {
        return Err(VerifyError::ProofLength {
            expected: 0,
            found: proof.len(),
        });
    }
    if size == 0 {
        let empty = Hash::empty_root();
        if let Some(root) = [root1, root2].into_iter().find(|root| **root != empty) {
            return Err(VerifyError::EmptyTreeRoot { root: *root });
        }
    }
    if root1 != root2 {
        return Err(VerifyError::EqualSizesDifferentRoots {
            size,
            root1: *root1,
            root2: *root2,
        });
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2 steps 2 to 7 for `0 < size1 < size2` and a proof of the expected
/// length: the roots `(fr, sr)` the proof leads to, or `length_error` if the steps
/// fail. The caller compares them with the roots it was given.
fn consistency_roots(
    size1: u64,
    size2: u64,
    root1: &Hash,
    proof: &[Hash],
    length_error: VerifyError,
) -> Result<(Hash, Hash), VerifyError> {
    // "2. If first is an exact power of 2, then prepend first_hash to the
    //     consistency_path array."
    let prepended = size1.is_power_of_two().then_some(root1);
    let mut path = prepended.into_iter().chain(proof);
    // "3. Set fn to first - 1 and sn to second - 1."
    let mut fn_ = size1 - 1;
    let mut sn = size2 - 1;
    // "4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is
    //     not set."
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // "5. Set both fr and sr to the first value in the consistency_path array."
    let Some(first) = path.next() else {
        return Err(length_error);
    };
    let mut fr = *first;
    let mut sr = *first;
    // "6. For each subsequent value c in the consistency_path array:"
    for c in path {
        // "a. If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0 {
            return Err(length_error);
        }
        // "b. If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn_ & 1 == 1 || fn_ == sn {
            // "i. Set fr to HASH(0x01 || c || fr)."
            fr = node_hash(c, &fr);
            // "ii. Set sr to HASH(0x01 || c || sr)."
            sr = node_hash(c, &sr);
            // "iii. If LSB(fn) is not set, then right-shift both fn and sn equally
            //       until either LSB(fn) is set or fn is 0."
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // "Otherwise: i. Set sr to HASH(0x01 || sr || c)."
            sr = node_hash(&sr, c);
        }
        // "c. Finally, right-shift both fn and sn one time."
        fn_ >>= 1;
        sn >>= 1;
    }
    // "7. After completing iterating through the consistency_path array as described
    //     above, verify that the fr calculated is equal to the first_hash supplied,
    //     that the sr calculated is equal to the second_hash supplied, and that sn is
    //     0."
    if sn != 0 {
        return Err(length_error);
    }
    Ok((fr, sr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::proof::tests::Levels;
    use crate::log::proof::{consistency_proof, inclusion_proof, root};

    #[test]
    fn verify_inclusion_errors_say_what_was_wrong() {
        let tree = Levels::new(6);
        let root6 = root(&tree, 6).unwrap();
        let proof = inclusion_proof(&tree, 2, 6).unwrap();
        let leaf = tree.leaf(2);

        let err = verify_inclusion(&leaf, 6, 6, &proof, &root6).unwrap_err();
        assert_eq!(err, VerifyError::IndexOutOfRange { index: 6, size: 6 });
        assert_eq!(err.code(), "index_out_of_range");

        let err = verify_inclusion(&leaf, 2, 6, &proof[..2], &root6).unwrap_err();
        assert_eq!(
            err,
            VerifyError::ProofLength {
                expected: 3,
                found: 2
            }
        );
        assert_eq!(err.code(), "proof_length");

        let wrong_leaf = tree.leaf(3);
        let err = verify_inclusion(&wrong_leaf, 2, 6, &proof, &root6).unwrap_err();
        let VerifyError::RootMismatch {
            size,
            expected,
            computed,
        } = err.clone()
        else {
            panic!("expected a root mismatch, got {err:?}");
        };
        assert_eq!((size, expected), (6, root6));
        assert_ne!(computed, root6);
        assert_eq!(err.code(), "root_mismatch");
    }

    #[test]
    fn an_inclusion_proof_alone_does_not_bind_the_size() {
        // Why the root and size must come from one checkpoint: leaf 0's path in the tree
        // of 3 is walked the same way for a claimed size of 4.
        let tree = Levels::new(4);
        let root3 = root(&tree, 3).unwrap();
        let proof = inclusion_proof(&tree, 0, 3).unwrap();
        assert_eq!(
            verify_inclusion(&tree.leaf(0), 0, 4, &proof, &root3),
            Ok(())
        );
        // The true tree of 4 has another root, which this proof does not reach.
        let root4 = root(&tree, 4).unwrap();
        assert!(verify_inclusion(&tree.leaf(0), 0, 4, &proof, &root4).is_err());
    }

    #[test]
    fn verify_consistency_errors_say_what_was_wrong_with_the_sizes() {
        let tree = Levels::new(7);
        let (root3, root7) = (root(&tree, 3).unwrap(), root(&tree, 7).unwrap());
        let proof = consistency_proof(&tree, 3, 7).unwrap();
        let empty = Hash::empty_root();

        let err = verify_consistency(7, 3, &root7, &root3, &proof).unwrap_err();
        assert_eq!(err, VerifyError::SizesOutOfOrder { size1: 7, size2: 3 });
        assert_eq!(err.code(), "sizes_out_of_order");

        let err = verify_consistency(0, 7, &empty, &root7, &[]).unwrap_err();
        assert_eq!(err, VerifyError::ConsistencyFromEmpty { size2: 7 });
        assert_eq!(err.code(), "consistency_from_empty_tree");

        let err = verify_consistency(0, 0, &empty, &root3, &[]).unwrap_err();
        assert_eq!(err, VerifyError::EmptyTreeRoot { root: root3 });
        assert_eq!(err.code(), "empty_tree_root_mismatch");
        let err = verify_consistency(0, 0, &root3, &root3, &[]).unwrap_err();
        assert_eq!(err, VerifyError::EmptyTreeRoot { root: root3 });
        assert_eq!(verify_consistency(0, 0, &empty, &empty, &[]), Ok(()));

        let err = verify_consistency(3, 3, &root3, &root7, &[]).unwrap_err();
        assert_eq!(
            err,
            VerifyError::EqualSizesDifferentRoots {
                size: 3,
                root1: root3,
                root2: root7
            }
        );
        assert_eq!(err.code(), "equal_sizes_different_roots");
        assert_eq!(verify_consistency(3, 3, &root3, &root3, &[]), Ok(()));
    }

    #[test]
    fn verify_consistency_errors_say_what_was_wrong_with_the_proof() {
        let tree = Levels::new(7);
        let (root3, root7) = (root(&tree, 3).unwrap(), root(&tree, 7).unwrap());
        let proof = consistency_proof(&tree, 3, 7).unwrap();
        let empty = Hash::empty_root();

        let err = verify_consistency(3, 3, &root3, &root3, &proof[..1]).unwrap_err();
        assert_eq!(
            err,
            VerifyError::ProofLength {
                expected: 0,
                found: 1
            }
        );

        let err = verify_consistency(3, 7, &root3, &root7, &[]).unwrap_err();
        assert_eq!(
            err,
            VerifyError::ProofLength {
                expected: 4,
                found: 0
            }
        );
        let mut longer = proof.clone();
        longer.push(empty);
        let err = verify_consistency(3, 7, &root3, &root7, &longer).unwrap_err();
        assert_eq!(
            err,
            VerifyError::ProofLength {
                expected: 4,
                found: 5
            }
        );

        let root4 = root(&tree, 4).unwrap();
        let err = verify_consistency(3, 7, &root4, &root7, &proof).unwrap_err();
        assert!(matches!(
            err,
            VerifyError::RootMismatch { size: 3, expected, .. } if expected == root4
        ));
        assert_eq!(err.code(), "root_mismatch");
        let root6 = root(&tree, 6).unwrap();
        let err = verify_consistency(3, 7, &root3, &root6, &proof).unwrap_err();
        assert!(matches!(
            err,
            VerifyError::RootMismatch { size: 7, expected, .. } if expected == root6
        ));
    }
}
