//! The right edge of an append-only Merkle tree: enough to append a leaf and compute
//! the root, and nothing of the nodes to its left.
//!
//! A tree of `size` leaves is, left to right, a run of perfect subtrees whose sizes are
//! the powers of two set in `size`, largest first (RFC 9162 §2.1.1, "the largest power
//! of two smaller than n" applied over and over: <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1>).
//! Their roots are the *peaks*; a [`Frontier`] holds the size and the peaks, at most 64
//! of them. This is the compact range `[0, size)` of transparency-dev/merkle's
//! `compact` package.
//!
//! Appending a leaf merges it with every peak of the same height, exactly as a binary
//! counter carries: each merge completes one interior node. [`Frontier::push`] hands
//! each completed node to the caller, who stores it so that a
//! [`NodeSource`] can serve it to [`super::proof`] later; [`Frontier::restore`] reads
//! the peaks back from that store when a log is reopened.
//!
//! ```
//! use lesson_ledger::log::compact::Frontier;
//! use lesson_ledger::log::hash::{leaf_hash, node_hash};
//!
//! let mut frontier = Frontier::new();
//! let mut completed = Vec::new();
//! for leaf in [b"a", b"b", b"c"] {
//!     frontier.push(leaf_hash(leaf), &mut completed)?;
//! }
//! let ab = node_hash(&leaf_hash(b"a"), &leaf_hash(b"b"));
//! assert_eq!(frontier.root(), node_hash(&ab, &leaf_hash(b"c")));
//! // Leaves 0, 1 and 2, and the node over leaves [0, 2), in the order they completed.
//! let levels: Vec<(u8, u64)> = completed.iter().map(|&(l, i, _)| (l, i)).collect();
//! assert_eq!(levels, [(0, 0), (0, 1), (1, 0), (0, 2)]);
//! # Ok::<(), lesson_ledger::log::compact::CompactError>(())
//! ```

use std::fmt;

use super::hash::{node_hash, Hash, NodeError, NodeSource};

/// Most peaks a tree can have: one per bit of a `u64` size.
pub const PEAKS_MAX: usize = 64;

/// A node that became complete: `(level, index, hash)`, the root of the perfect subtree
/// over leaves `[index · 2^level, (index + 1) · 2^level)`.
pub type CompletedNode = (u8, u64, Hash);

/// The size of an append-only tree and the roots of the perfect subtrees that make it
/// up, largest (leftmost) first.
///
/// Invariant: exactly `size.count_ones()` peaks are live, and peak `i` is the root of
/// the perfect subtree for the `i`-th highest set bit of `size`.
#[derive(Clone)]
pub struct Frontier {
    size: u64,
    // A fixed array rather than a Vec: `push` is on the append hot path and must not
    // allocate; 2 KiB is cheap to keep, and `Clone` stays a memcpy.
    peaks: [Hash; PEAKS_MAX],
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier {
            size: 0,
            peaks: [Hash::default(); PEAKS_MAX],
        }
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The live peaks, largest (leftmost) subtree first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks[..self.peak_count()]
    }

    fn peak_count(&self) -> usize {
        // count_ones() of a u64 is at most 64: the cast cannot truncate.
        self.size.count_ones() as usize
    }

    /// The RFC 9162 §2.1.1 Merkle Tree Hash of all leaves so far;
    /// [`Hash::empty_root`] for the empty tree.
    pub fn root(&self) -> Hash {
        let peaks = self.peaks();
        let Some((last, rest)) = peaks.split_last() else {
            // "The hash of an empty list is the hash of an empty string: MTH({}) = SHA-256()."
            return Hash::empty_root();
        };
        // MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of
        // two below n: the left part is the largest peak, the right part is the tree of
        // the remaining peaks — so fold from the smallest peak leftwards.
        rest.iter()
            .rev()
            .fold(*last, |right, left| node_hash(left, &right))
    }

    /// Appends the leaf whose hash is `leaf_hash`, and pushes onto `completed` every node
    /// that this completes: the leaf itself at level 0 first, then each interior node
    /// upwards. Nothing is pushed when an error is returned.
    ///
    /// # Errors
    /// [`CompactError::TreeFull`] when the tree already holds `u64::MAX` leaves, the
    /// most a `u64` size can count.
    pub fn push(
        &mut self,
        leaf_hash: Hash,
        completed: &mut Vec<CompletedNode>,
    ) -> Result<(), CompactError> {
        let new_size = self
            .size
            .checked_add(1)
            .ok_or(CompactError::TreeFull { size: self.size })?;
        let leaf_index = self.size;
        completed.push((0, leaf_index, leaf_hash));

        // Each trailing one bit of the old size is a peak as tall as the node being
        // carried, directly to its left: merge them, like a binary counter's carry.
        // The old size is below u64::MAX, so it has a zero bit: at most 63 merges, and
        // levels stay below 64.
        let merges = self.size.trailing_ones();
        let mut live = self.peak_count();
        let mut carried = leaf_hash;
        for level in 1..=merges {
            live -= 1;
            carried = node_hash(&self.peaks[live], &carried);
            // The merged node ends at leaf `new_size`, so its index is
            // new_size / 2^level - 1, which is leaf_index >> level since the low
            // `level` bits of leaf_index are all ones.
            // `level` <= 63 (see above): the cast cannot truncate.
            completed.push((level as u8, leaf_index >> level, carried));
        }
        self.peaks[live] = carried;
        self.size = new_size;
        debug_assert_eq!(self.peak_count(), live + 1);
        Ok(())
    }

    /// Loads the frontier of a tree of `size` leaves from the nodes `src` holds: one
    /// read per peak, at most 64.
    ///
    /// # Errors
    /// [`CompactError::Node`] when `src` lacks a peak or cannot read it.
    pub fn restore(size: u64, src: &impl NodeSource) -> Result<Frontier, CompactError> {
        let mut frontier = Frontier::new();
        let mut live = 0;
        // Peaks from the highest set bit (largest, leftmost subtree) down.
        for level in (0..u64::BITS).rev() {
            if (size >> level) & 1 == 0 {
                continue;
            }
            // The peak for bit `level` ends where the bits of `size` from `level` up
            // end: at leaf (size >> level) << level, so its index at its level is
            // (size >> level) - 1 (>= 0: bit `level` is set).
            let index = (size >> level) - 1;
            // `level` < 64: the cast cannot truncate.
            frontier.peaks[live] = src.node(level as u8, index)?;
            live += 1;
        }
        frontier.size = size;
        debug_assert_eq!(frontier.peak_count(), live);
        Ok(frontier)
    }
}

impl Default for Frontier {
    fn default() -> Frontier {
        Frontier::new()
    }
}

impl PartialEq for Frontier {
    fn eq(&self, other: &Frontier) -> bool {
        // Dead slots of the peak array are leftovers, not state.
        self.size == other.size && self.peaks() == other.peaks()
    }
}

impl Eq for Frontier {}

impl fmt::Debug for Frontier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frontier")
            .field("size", &self.size)
            .field("peaks", &self.peaks())
            .finish()
    }
}

/// Why the frontier could not grow or be restored.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The tree holds `u64::MAX` leaves; one more cannot be counted.
    #[error("tree of {size} leaves is full")]
    TreeFull {
        /// The tree's size: 2^64 - 1 leaves.
        size: u64,
    },
    /// A peak could not be read back from storage.
    #[error("restoring the frontier: {0}")]
    Node(#[from] NodeError),
}

impl CompactError {
    /// A stable snake_case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            CompactError::TreeFull { .. } => "tree_full",
            CompactError::Node(NodeError::Missing { .. }) => "node_missing",
            CompactError::Node(NodeError::Io { .. }) => "node_io",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::hash::leaf_hash;

    /// A tree of `u64::MAX` copies of one leaf: node (level, index) is the same hash for
    /// every index, so the whole tree is 64 hashes. A real tree, not a stand-in: it
    /// lets the tests reach the largest sizes.
    struct UniformTree {
        by_level: Vec<Hash>,
    }

    impl UniformTree {
        fn new(leaf: Hash) -> UniformTree {
            let mut by_level = vec![leaf];
            for _ in 1..64 {
                let below = by_level[by_level.len() - 1];
                by_level.push(node_hash(&below, &below));
            }
            UniformTree { by_level }
        }
    }

    impl NodeSource for UniformTree {
        fn node(&self, level: u8, index: u64) -> Result<Hash, NodeError> {
            // Nodes of the tree of u64::MAX leaves: [index·2^level, (index+1)·2^level)
            // must end at or before u64::MAX.
            let complete = u32::from(level) < 64
                && index
                    .checked_add(1)
                    .and_then(|end| end.checked_mul(1u64 << level))
                    .is_some();
            match self.by_level.get(usize::from(level)) {
                Some(hash) if complete => Ok(*hash),
                _ => Err(NodeError::Missing { level, index }),
            }
        }
    }

    struct Nothing;

    impl NodeSource for Nothing {
        fn node(&self, level: u8, index: u64) -> Result<Hash, NodeError> {
            Err(NodeError::Missing { level, index })
        }
    }

    #[test]
    fn empty_frontier_has_the_empty_root_and_no_peaks() {
        let frontier = Frontier::new();
        assert_eq!(frontier.size(), 0);
        assert!(frontier.peaks().is_empty());
        assert_eq!(frontier.root(), Hash::empty_root());
        assert_eq!(frontier, Frontier::default());
    }

    #[test]
    fn one_leaf_is_its_own_root() {
        let mut frontier = Frontier::new();
        let mut completed = Vec::new();
        let leaf = leaf_hash(b"inst-0007");
        frontier.push(leaf, &mut completed).unwrap();
        assert_eq!(frontier.root(), leaf);
        assert_eq!(completed, [(0, 0, leaf)]);
    }

    #[test]
    fn four_leaves_complete_one_node_per_carry() {
        let leaves: Vec<Hash> = (0u8..4).map(|i| leaf_hash(&[i])).collect();
        let mut frontier = Frontier::new();
        let mut completed = Vec::new();
        for leaf in &leaves {
            frontier.push(*leaf, &mut completed).unwrap();
        }
        let n01 = node_hash(&leaves[0], &leaves[1]);
        let n23 = node_hash(&leaves[2], &leaves[3]);
        let root = node_hash(&n01, &n23);
        assert_eq!(
            completed,
            [
                (0, 0, leaves[0]),
                (0, 1, leaves[1]),
                (1, 0, n01),
                (0, 2, leaves[2]),
                (0, 3, leaves[3]),
                (1, 1, n23),
                (2, 0, root),
            ]
        );
        assert_eq!(frontier.peaks(), [root]);
        assert_eq!(frontier.root(), root);
    }

    #[test]
    fn restore_reads_the_peaks_of_the_largest_tree() {
        let leaf = leaf_hash(b"stu-3f9a");
        let tree = UniformTree::new(leaf);
        let frontier = Frontier::restore(u64::MAX, &tree).unwrap();
        assert_eq!(frontier.size(), u64::MAX);
        assert_eq!(frontier.peaks().len(), 64);
        assert_eq!(frontier.peaks()[0], tree.by_level[63]);
        assert_eq!(frontier.peaks()[63], leaf);
    }

    #[test]
    fn push_onto_a_full_tree_is_an_error_and_changes_nothing() {
        let tree = UniformTree::new(leaf_hash(b"stu-3f9a"));
        let mut frontier = Frontier::restore(u64::MAX, &tree).unwrap();
        let before = frontier.clone();
        let mut completed = Vec::new();
        let err = frontier
            .push(leaf_hash(b"one too many"), &mut completed)
            .unwrap_err();
        assert!(matches!(err, CompactError::TreeFull { size: u64::MAX }));
        assert_eq!(err.code(), "tree_full");
        assert!(completed.is_empty());
        assert_eq!(frontier, before);
    }

    #[test]
    fn push_up_to_the_last_leaf_merges_63_levels() {
        let leaf = leaf_hash(b"stu-3f9a");
        let tree = UniformTree::new(leaf);
        let mut frontier = Frontier::restore(u64::MAX - 1, &tree).unwrap();
        let mut completed = Vec::new();
        frontier.push(leaf, &mut completed).unwrap();
        assert_eq!(frontier.size(), u64::MAX);
        assert_eq!(frontier, Frontier::restore(u64::MAX, &tree).unwrap());
        // u64::MAX - 1 has no trailing ones: only the leaf completes.
        assert_eq!(completed, [(0, u64::MAX - 1, leaf)]);

        let mut frontier = Frontier::restore((1 << 63) - 1, &tree).unwrap();
        completed.clear();
        frontier.push(leaf, &mut completed).unwrap();
        assert_eq!(completed.len(), 64);
        assert_eq!(completed[63], (63, 0, tree.by_level[63]));
        assert_eq!(frontier.peaks(), [tree.by_level[63]]);
    }

    #[test]
    fn restore_from_a_source_missing_the_peak_is_an_error() {
        let err = Frontier::restore(6, &Nothing).unwrap_err();
        assert!(matches!(
            err,
            CompactError::Node(NodeError::Missing { level: 2, index: 0 })
        ));
        assert_eq!(err.code(), "node_missing");
        assert_eq!(Frontier::restore(0, &Nothing).unwrap(), Frontier::new());
    }

    #[test]
    fn io_failures_have_their_own_code() {
        let err = CompactError::from(NodeError::Io {
            level: 3,
            index: 9,
            source: std::io::Error::other("disk gone"),
        });
        assert_eq!(err.code(), "node_io");
    }
}
