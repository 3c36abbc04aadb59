//! The state map: a compact sparse Merkle tree over every state object (every table,
//! entry records and quota counters included), whose root the operator signs in each
//! batch's state note, so that one object, or its absence, can be proven against a
//! signed root (`schemas/README.md`, "State map").
//!
//! - [`proof`]: the format — map keys, node hashes, [`StateProof`] and its verification;
//!   pure, what a client needs.
//! - [`canonical`]: the canonical bytes of an object (what a leaf's value hash covers).
//! - `tree`: the nodes, updated a batch at a time, in an `arena` on the heap or in
//!   files.
//! - [`StateMap`]: objects in, root and proofs out; the live state ([`super::sled_state`])
//!   and the replay ([`super::state::MemoryState`]) each keep one.
//!
//! Why our own tree and not the `jmt` crate: the format fits on one page and a stranger
//! implements it from that page (the Python verifier does); it hashes with BLAKE3 like the
//! rest of the ledger; and its root is settled in the ledger's own commit, with no second
//! store to keep in step with sled.
//!
//! Where the nodes live: in two arenas of fixed-size records (`arena`, ~122 bytes an
//! object, see `tree`), on the heap (tests, the replay's [`super::state::MemoryState`])
//! or, for the live state, in two files of the data directory mapped shared
//! (`state-map.leaves`, `state-map.nodes`). A file arena leaves residency to the kernel:
//! its pages are page cache, counted in the process's `RssFile`, not `RssAnon`, and
//! under memory pressure the kernel writes the dirty ones back to the file and evicts
//! them, so what must stay resident is the working set (the upper levels every batch
//! touches, the paths of the keys being changed or proven), not one record per object.
//! The writer's cost is the same algorithm on the same records; what it adds is a
//! record encoded and decoded at each access, and the write-back of dirtied pages,
//! done by the kernel off the writer's thread (`BENCHMARKS.md`, "State map nodes in a
//! file").
//!
//! The files are a cache, never a source of truth: sled stores only the root, in the
//! state's head, written in the same atomic batch as the batch's objects. A clean close
//! writes the files to disk and seals them (`seal`: the log size and root of the state
//! they hold, and each file's checksum); the next open reuses them only under a seal
//! that names the head's state and matches the files, and removes the seal before
//! anything can change them, so a seal never outlives a crash. Otherwise (a crash, a
//! file cut short or garbled, another state's seal) the map is rebuilt from the objects
//! (which the live state holds in memory anyway) into files created afresh, what they
//! held removed unread (the objects hashed and the tree built on all cores), and its
//! root must equal the head's: the cheap check that the LtHash digest used to give, now
//! on the one commitment. A crash therefore cannot leave map and state apart: the map
//! is a function of the objects, and the head names both. After a rebuild the pages are
//! released ([`StateMap::release`], `MADV_DONTNEED`), and a reused map's were never
//! touched: "resident after open" shows the bound; the price is a minor fault (or a
//! read from disk) the first time each page is touched.

mod arena;
pub mod canonical;
pub mod proof;
mod seal;
mod tree;

#[cfg(test)]
mod tests;

pub use arena::{ArenaError, RECORDS_MAX};
pub use proof::{map_key, Hash, ProofError, StateProof, ZERO};
pub use seal::{SealError, SEAL_FILE};
pub use tree::{Change, MapTree, NODE_FILES};

use super::state::{Key, Value};

/// Where a map keeps its nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nodes {
    /// On the heap: small maps, tests, the replay.
    Heap,
    /// In files of this directory ([`NODE_FILES`]): the live state's, created afresh or
    /// reopened under their seal ([`StateMap::unseal`]).
    InDir(std::path::PathBuf),
}

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

    /// The empty map, its nodes where `nodes` says (files created afresh: see the
    /// module doc).
    ///
    /// # Errors
    /// A file cannot be created, allocated or mapped.
    pub fn empty_at(nodes: &Nodes) -> Result<StateMap, ArenaError> {
        let tree = match nodes {
            Nodes::Heap => MapTree::new(),
            Nodes::InDir(dir) => MapTree::in_dir(dir)?,
        };
        Ok(StateMap { tree })
    }

    /// The map that the last clean close sealed in `dir` as the state of `tag` (the log
    /// size) with root `root`; the seal is removed first, whatever follows (see
    /// `seal`).
    ///
    /// # Errors
    /// Why the sealed map cannot be reused; then rebuild it from the objects.
    pub fn unseal(dir: &std::path::Path, tag: u64, root: &Hash) -> Result<StateMap, SealError> {
        let tree = StateMap::in_pool(|| MapTree::unseal(dir, tag, root))?;
        Ok(StateMap { tree })
    }

    /// Writes the node files to disk and seals them for the next open as the map of
    /// the state of `tag` (the log size); nothing for a map on the heap.
    ///
    /// # Errors
    /// As [`MapTree::seal`].
    pub fn seal(&self, tag: u64) -> Result<(), SealError> {
        self.tree.seal(tag)
    }

    /// The map of `objects`, built from scratch on the heap.
    pub fn of<'a>(objects: impl IntoIterator<Item = (&'a Key, &'a Value)>) -> StateMap {
        let mut map = StateMap::new();
        map.write(objects.into_iter().map(|(k, v)| (k, Some(v))).collect())
            .expect("a heap arena fails only past RECORDS_MAX (2^31) objects");
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

    /// Bytes of heap the nodes take (0 for nodes in files, bar the free lists).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.tree.heap_bytes()
    }

    /// Bytes of the node files (0 on the heap).
    #[must_use]
    pub fn file_bytes(&self) -> usize {
        self.tree.file_bytes()
    }

    /// Lets the kernel drop the node files' pages from the resident set (kept in the
    /// page cache, faulted back in on the next touch); nothing on the heap.
    ///
    /// # Errors
    /// `madvise` refused.
    pub fn release(&self) -> Result<(), ArenaError> {
        self.tree.release()
    }

    /// The proof for `key` against [`StateMap::root`].
    #[must_use]
    pub fn prove(&self, key: &Key) -> StateProof {
        self.tree.prove(&map_key(key.table, &key.id))
    }

    /// The changes that writing each key to its value (`None`: removing it) makes,
    /// value hashes computed in parallel for many writes.
    #[must_use]
    pub fn changes(writes: Vec<(&Key, Option<&Value>)>) -> Vec<Change> {
        use rayon::prelude::*;
        let change = |(key, value)| StateMap::change(key, value);
        if writes.len() < PARALLEL_WRITES_MIN {
            return writes.into_iter().map(change).collect();
        }
        StateMap::in_pool(|| writes.into_par_iter().map(change).collect())
    }

    /// The change that writing `key` to `value` (`None`: removing it) makes.
    #[must_use]
    pub fn change(key: &Key, value: Option<&Value>) -> Change {
        let value_hash = value.map(|v| proof::value_hash(&proof::value_bytes(v)));
        (map_key(key.table, &key.id), value_hash)
    }

    /// Runs `work` on the map's own pool, one thread per core (its own, so that it does
    /// not queue behind the signature checks on the global pool).
    pub fn in_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
        match map_pool() {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// Applies writes: each key to its value, or removed for `None`.
    ///
    /// # Errors
    /// As [`MapTree::update`].
    pub fn write(&mut self, writes: Vec<(&Key, Option<&Value>)>) -> Result<(), ArenaError> {
        self.update(StateMap::changes(writes))
    }

    /// Applies changes already hashed ([`StateMap::changes`]).
    ///
    /// # Errors
    /// As [`MapTree::update`].
    pub fn update(&mut self, changes: Vec<Change>) -> Result<(), ArenaError> {
        self.on_pool_if_large(changes, MapTree::update)
    }

    /// Applies changes already hashed ([`StateMap::changes`]) and returns what undoes them.
    ///
    /// # Errors
    /// As [`MapTree::update`].
    pub fn apply(&mut self, changes: Vec<Change>) -> Result<Vec<Change>, ArenaError> {
        self.on_pool_if_large(changes, MapTree::update_with_undo)
    }

    /// Runs `work` on the tree: on the map's pool for a large update (it sorts and
    /// builds there), on this thread for a group commit's few dozen changes, for which
    /// `install` would wake the pool's threads to spin waiting for more work (a tenth
    /// of the machine's samples under single POSTs, issue 15).
    fn on_pool_if_large<R: Send>(
        &mut self,
        changes: Vec<Change>,
        work: impl FnOnce(&mut MapTree, Vec<Change>) -> Result<R, ArenaError> + Send,
    ) -> Result<R, ArenaError> {
        let tree = &mut self.tree;
        if changes.len() < PARALLEL_WRITES_MIN {
            return work(tree, changes);
        }
        StateMap::in_pool(|| work(tree, changes))
    }

    /// The underlying tree (by map key), for benchmarks and tests.
    #[must_use]
    pub fn tree(&self) -> &MapTree {
        &self.tree
    }
}

/// Hands back to the system the memory that the calling thread and the map's pool
/// threads have freed. mimalloc (the binary's allocator) purges a thread's freed pages
/// lazily, on that thread's next allocations; after a large build (the open) the pool's
/// threads go idle and would hold its transient buffers, about 250 bytes an object,
/// resident for good (`scripts/footprint.sh`: 360 MiB after the open of a million
/// objects, 540-610 without this).
pub fn return_freed_memory() {
    // SAFETY: `mi_collect` takes no pointer and only walks the calling thread's own
    // mimalloc heap; with another global allocator it finds that heap empty.
    let collect = || unsafe { libmimalloc_sys::mi_collect(true) };
    if let Some(pool) = map_pool() {
        pool.broadcast(|_| collect());
    }
    collect();
}

/// Fewer writes than this are hashed on the caller's thread: a group commit of a few
/// dozen objects costs less than waking the pool's threads and waiting for them, on a
/// machine whose cores are busy verifying the next requests' signatures (issue 15).
const PARALLEL_WRITES_MIN: usize = 256;

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
