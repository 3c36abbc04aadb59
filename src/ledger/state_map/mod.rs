//! The state map: a compact sparse Merkle tree over every state object (every table,
//! entry records and quota counters included), whose root the operator signs in each
//! batch's state note, so that one object, or its absence, can be proven against a
//! signed root (`schemas/README.md`, "State map").
//!
//! - [`proof`]: the format — map keys, node hashes, [`StateProof`] and its verification;
//!   pure, what a client needs.
//! - [`canonical`]: the canonical bytes of an object (what a leaf's value hash covers).
//! - [`tree`]: the nodes, in memory, updated a batch at a time.
//! - [`StateMap`]: objects in, root and proofs out; the live state ([`super::sled_state`])
//!   and the replay ([`super::state::MemoryState`]) each keep one.
//!
//! Why our own tree and not the `jmt` crate: the format fits on one page and a stranger
//! implements it from that page (the Python verifier does); it hashes with BLAKE3 like the
//! rest of the ledger; and its root is settled in the ledger's own commit, with no second
//! store to keep in step with sled.
//!
//! Where the nodes live: in memory, in two arenas (~122 bytes an object, see [`tree`]);
//! sled stores only the root, in the state's head, written in the same atomic batch as
//! the batch's objects. On open the map is rebuilt from the objects (which the live
//! state holds in memory anyway) and its root must equal the head's: the cheap check
//! that the LtHash digest used to give, now on the one commitment. A crash therefore
//! cannot leave map and state apart: the map is a function of the objects, and the head
//! names both. (Not done: nodes paged to sled so that a city-scale map need not be
//! in memory; see `BENCHMARKS.md` for the footprint measured.)

pub mod canonical;
pub mod proof;
mod tree;

#[cfg(test)]
mod tests;

pub use proof::{map_key, Hash, ProofError, StateProof, ZERO};
pub use tree::{Change, MapTree};

use super::state::{Key, Value};

/// The state map of a set of objects.
#[derive(Debug, Clone, Default)]
pub struct StateMap {
    tree: MapTree,
}

impl StateMap {
    /// The empty map (root [`ZERO`]).
    #[must_use]
    pub fn new() -> StateMap {
        StateMap::default()
    }

    /// The map of `objects`, built from scratch.
    pub fn of<'a>(objects: impl IntoIterator<Item = (&'a Key, &'a Value)>) -> StateMap {
        let mut map = StateMap::new();
        map.write(objects.into_iter().map(|(k, v)| (k, Some(v))).collect());
        map
    }

    /// The map root.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// Number of objects.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the map is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Bytes of memory the nodes take.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.tree.heap_bytes()
    }

    /// The proof for `key` against [`StateMap::root`].
    #[must_use]
    pub fn prove(&self, key: &Key) -> StateProof {
        self.tree.prove(&map_key(key.table, &key.id))
    }

    /// The changes that writing each key to its value (`None`: removing it) makes,
    /// value hashes computed in parallel.
    #[must_use]
    pub fn changes(writes: Vec<(&Key, Option<&Value>)>) -> Vec<Change> {
        use rayon::prelude::*;
        let hash = || {
            writes
                .into_par_iter()
                .map(|(key, value)| {
                    let value_hash = value.map(|v| proof::value_hash(&proof::value_bytes(v)));
                    (map_key(key.table, &key.id), value_hash)
                })
                .collect()
        };
        match map_pool() {
            Some(pool) => pool.install(hash),
            None => hash(),
        }
    }

    /// Applies writes: each key to its value, or removed for `None`.
    pub fn write(&mut self, writes: Vec<(&Key, Option<&Value>)>) {
        self.tree.update(StateMap::changes(writes));
    }

    /// Applies changes already hashed ([`StateMap::changes`]) and returns what undoes them.
    pub fn apply(&mut self, changes: Vec<Change>) -> Vec<Change> {
        let undo = changes
            .iter()
            .map(|(k, _)| (*k, self.tree.get(k)))
            .collect();
        self.tree.update(changes);
        undo
    }

    /// The underlying tree (by map key), for benchmarks and tests.
    #[must_use]
    pub fn tree(&self) -> &MapTree {
        &self.tree
    }
}

/// The map's own thread pool for value hashes, one thread per core; `None` if threads
/// cannot be started (then the global pool is used). Own pool: the writer asks once per
/// batch and waits, and on the global pool it would queue behind the signature
/// verification of the next batch.
fn map_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("state-map-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}
