//! The one leaf checker of both audits: the file audit ([`crate::log::audit`],
//! `verify --data`) and the remote audit (`crate::client::audit`, `verify --url`).
//! Two copies of these rules drifted once (the remote audit did not check that ledger
//! time increases); one function used by both cannot.
//!
//! A leaf is checked in two steps:
//! 1. [`check_leaf`], on its bytes alone (so it runs in parallel): it decodes
//!    canonically (`schemas/README.md` §2: version 1, no trailing bytes, valid UTF-8),
//!    every signature verifies (strict Ed25519 over the DSSE PAE), and it is hashed;
//! 2. [`LeafOrder::accept`], in log order: its index is the next one and its ledger
//!    time is strictly later than the previous leaf's.
//!
//! ```
//! use lesson_ledger::log::leaf_check::{check_leaf, LeafOrder};
//! use lesson_ledger::log::envelope::KeyCache;
//! let keys = KeyCache::self_certifying();
//! let problem = check_leaf(b"\x01 not a leaf", &keys).unwrap_err();
//! assert_eq!(problem.code(), "leaf_undecodable");
//! let order = LeafOrder::default();
//! assert_eq!(order.next_index(), 0);
//! ```

use rayon::prelude::*;

use crate::log::envelope::{EnvelopeError, KeyLookup};
use crate::log::hash::{leaf_hash, Hash};
use crate::log::leaf::{Leaf, LeafError};

/// A leaf whose bytes decoded canonically and whose every signature verified.
#[derive(Debug, Clone)]
pub struct CheckedLeaf {
    /// The decoded leaf.
    pub leaf: Leaf,
    /// The Merkle leaf hash of the bytes checked.
    pub hash: Hash,
}

impl CheckedLeaf {
    /// Number of signatures verified.
    pub fn signatures(&self) -> usize {
        self.leaf.envelope.signatures().len()
    }
}

/// Why a leaf is refused, by either audit.
#[derive(Debug, thiserror::Error)]
pub enum LeafProblem {
    /// Code `leaf_undecodable`: leaf does not decode: `0`.
    #[error("leaf does not decode: {0}")]
    Undecodable(#[source] LeafError),
    /// Code `leaf_signature_invalid`: signature check failed: `0`.
    #[error("signature check failed: {0}")]
    Signature(#[source] EnvelopeError),
    /// Code `leaf_out_of_place`: entry out of place (removed, duplicated or reordered): expected index `expected`, found `found`.
    #[error("entry out of place (removed, duplicated or reordered): expected index {expected}, found {found}")]
    OutOfPlace {
        /// The index due next.
        expected: u64,
        /// The index the leaf holds.
        found: u64,
    },
    /// Code `leaf_time_not_increasing`: ledger time does not increase: `found` µs after `previous` µs.
    #[error("ledger time does not increase: {found} µs after {previous} µs")]
    TimeNotIncreasing {
        /// The previous leaf's ledger time, µs since the Unix epoch.
        previous: u64,
        /// This leaf's ledger time, µs since the Unix epoch.
        found: u64,
    },
}

impl LeafProblem {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            LeafProblem::Undecodable(_) => "leaf_undecodable",
            LeafProblem::Signature(_) => "leaf_signature_invalid",
            LeafProblem::OutOfPlace { .. } => "leaf_out_of_place",
            LeafProblem::TimeNotIncreasing { .. } => "leaf_time_not_increasing",
        }
    }
}

/// Step 1: decodes `bytes` canonically, verifies every signature with `keys`, and
/// hashes the bytes.
///
/// # Errors
/// [`LeafProblem::Undecodable`] or [`LeafProblem::Signature`].
pub fn check_leaf(bytes: &[u8], keys: &impl KeyLookup) -> Result<CheckedLeaf, LeafProblem> {
    let leaf = Leaf::decode(bytes).map_err(LeafProblem::Undecodable)?;
    leaf.envelope
        .clone()
        .verify(keys)
        .map_err(LeafProblem::Signature)?;
    Ok(CheckedLeaf {
        hash: leaf_hash(bytes),
        leaf,
    })
}

/// [`check_leaf`] on every item, on all cores, results in order.
pub fn check_leaves<B: AsRef<[u8]> + Sync>(
    items: &[B],
    keys: &(impl KeyLookup + Sync),
) -> Vec<Result<CheckedLeaf, LeafProblem>> {
    items
        .par_iter()
        .map(|bytes| check_leaf(bytes.as_ref(), keys))
        .collect()
}

/// Step 2: where the audit is in the log — the next index, and the last ledger time.
#[derive(Debug, Clone, Default)]
pub struct LeafOrder {
    next: u64,
    last_time: Option<u64>,
}

impl LeafOrder {
    /// The index the next leaf must carry.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Takes `leaf` as the next leaf of the log.
    ///
    /// # Errors
    /// [`LeafProblem::OutOfPlace`] or [`LeafProblem::TimeNotIncreasing`]; the order is
    /// then unchanged.
    pub fn accept(&mut self, leaf: &Leaf) -> Result<(), LeafProblem> {
        if leaf.index != self.next {
            return Err(LeafProblem::OutOfPlace {
                expected: self.next,
                found: leaf.index,
            });
        }
        if let Some(previous) = self.last_time {
            if leaf.time_micros <= previous {
                return Err(LeafProblem::TimeNotIncreasing {
                    previous,
                    found: leaf.time_micros,
                });
            }
        }
        self.next += 1;
        self.last_time = Some(leaf.time_micros);
        Ok(())
    }
}
