//! The live map's nodes in sled, behind a bounded cache: the same tree as [`super::tree`]
//! (same hashing, same proofs, same roots), but no node needs to be in memory.
//!
//! Layout (in the state's sled tree, next to its snapshot and deltas):
//! - `\x03`: the root slot;
//! - `\x03` prefix (32 bytes, the first `depth` bits of any key below, the rest zero)
//!   depth (u8): the internal node at that position, its two child slots.
//!
//! A slot is `0x00` (empty subtree), `0x01` key value-hash (a leaf, 64 bytes) or `0x02`
//! hash (an internal node, whose record is at the child's position). A node keeps its
//! children's hashes, so a proof reads one record a level, never the siblings'.
//! Positions, not content addresses: a batch overwrites the records it changes and
//! removes those a delete collapses, so the store holds exactly the live tree (no
//! garbage to collect) and a reader finds a node without an index.
//!
//! A batch is worked out without touching the store ([`PagedMap::prepare`] returns the
//! records to write and the new root slot); the state writes them in the same atomic
//! sled batch as its delta and its head, then tells the map ([`PagedMap::committed`]).
//! A crash therefore leaves either the old records and head or the new ones. On open the
//! root slot must hash to the head's root (for an internal node, its record's two child
//! hashes must): the check costs one read, not a rebuild.
//!
//! The cache: records above [`STATE_MAP_PINNED_DEPTH`] stay once read (at most
//! 2^depth − 1 of them: every batch rewrites them); the others sit in a two-generation
//! cache of at most [`STATE_MAP_CACHE_NODES`] records (a hit moves a record to the young
//! generation; when that is full, the old one is dropped): an LRU to within a factor two,
//! with no list to maintain.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::proof::{bit, internal_hash, leaf_hash, Hash, ProofLeaf, StateProof, ZERO};
use super::tree::Change;
use crate::ledger::limits::{STATE_MAP_CACHE_NODES, STATE_MAP_PINNED_DEPTH};

/// First byte of every map record in the state's sled tree.
pub const NODE_TAG: u8 = 3;
const ROOT_KEY: [u8; 1] = [NODE_TAG];

/// The sled key of an internal node: tag, masked prefix, depth.
type NodeKey = [u8; 34];

/// Why the paged map could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MapStoreError {
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A record is missing or does not decode, or the root is not the head's.
    #[error("state map record {key} is damaged: {reason}")]
    Corrupt {
        /// Which record.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn damaged(key: &[u8], reason: &'static str) -> MapStoreError {
    MapStoreError::Corrupt {
        key: crate::ledger::units::hex(key),
        reason,
    }
}

/// A child of an internal node, or the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Leaf(Hash, Hash),
    Node(Hash),
}

impl Slot {
    fn hash(&self) -> Hash {
        match self {
            Slot::Empty => ZERO,
            Slot::Leaf(k, v) => leaf_hash(k, v),
            Slot::Node(h) => *h,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Slot::Empty => out.push(0),
            Slot::Leaf(k, v) => {
                out.push(1);
                out.extend_from_slice(k);
                out.extend_from_slice(v);
            }
            Slot::Node(h) => {
                out.push(2);
                out.extend_from_slice(h);
            }
        }
    }

    /// The slot at the start of `bytes` and the bytes after it.
    fn decode(bytes: &[u8]) -> Option<(Slot, &[u8])> {
        let (&tag, rest) = bytes.split_first()?;
        let hash = |b: &[u8]| -> Option<Hash> { b.try_into().ok() };
        match tag {
            0 => Some((Slot::Empty, rest)),
            1 if rest.len() >= 64 => Some((
                Slot::Leaf(hash(&rest[..32])?, hash(&rest[32..64])?),
                &rest[64..],
            )),
            2 if rest.len() >= 32 => Some((Slot::Node(hash(&rest[..32])?), &rest[32..])),
            _ => None,
        }
    }
}

/// An internal node: its left and right children.
type Record = (Slot, Slot);

fn encode_record((left, right): &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(130);
    left.encode(&mut out);
    right.encode(&mut out);
    out
}

fn decode_record(bytes: &[u8]) -> Option<Record> {
    let (left, rest) = Slot::decode(bytes)?;
    let (right, rest) = Slot::decode(rest)?;
    rest.is_empty().then_some((left, right))
}

/// The position of the internal node at `depth` on `key`'s path.
fn node_key(depth: usize, key: &Hash) -> NodeKey {
    let mut k = [0u8; 34];
    k[0] = NODE_TAG;
    let (bytes, bits) = (depth / 8, depth % 8);
    k[1..1 + bytes].copy_from_slice(&key[..bytes]);
    if bits > 0 {
        k[1 + bytes] = key[bytes] & (0xffu8 << (8 - bits));
    }
    // Internal nodes sit above two keys that differ, so at depth < 256.
    k[33] = u8::try_from(depth).unwrap_or(u8::MAX);
    k
}

/// Records read from sled, bounded (see the module's documentation).
struct Cache {
    pinned: HashMap<NodeKey, Record>,
    young: HashMap<NodeKey, Record>,
    old: HashMap<NodeKey, Record>,
    pinned_depth: usize,
    capacity: usize,
}

impl Cache {
    fn new(pinned_depth: usize, capacity: usize) -> Cache {
        Cache {
            pinned: HashMap::new(),
            young: HashMap::new(),
            old: HashMap::new(),
            pinned_depth,
            capacity: capacity.max(2),
        }
    }

    fn get(&mut self, key: &NodeKey) -> Option<Record> {
        if let Some(r) = self.pinned.get(key).or_else(|| self.young.get(key)) {
            return Some(*r);
        }
        let r = self.old.remove(key)?;
        self.put(*key, r);
        Some(r)
    }

    fn put(&mut self, key: NodeKey, record: Record) {
        if usize::from(key[33]) < self.pinned_depth {
            self.pinned.insert(key, record);
            return;
        }
        if self.young.len() >= self.capacity / 2 && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.old.remove(&key);
        self.young.insert(key, record);
    }

    fn remove(&mut self, key: &NodeKey) {
        self.pinned.remove(key);
        self.young.remove(key);
        self.old.remove(key);
    }

    fn len(&self) -> usize {
        self.pinned.len() + self.young.len() + self.old.len()
    }
}

/// A batch worked out against the committed map: the new root slot and the records to
/// write (`None`: to remove).
pub struct PreparedMap {
    root: Slot,
    writes: BTreeMap<NodeKey, Option<Record>>,
}

impl PreparedMap {
    /// The root the map will have once this batch is committed.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.root.hash()
    }

    /// Records written or removed.
    #[must_use]
    pub fn records(&self) -> usize {
        self.writes.len()
    }

    /// Adds this batch's records and root slot to `batch`.
    pub fn write_to(&self, batch: &mut sled::Batch) {
        for (key, record) in &self.writes {
            match record {
                Some(r) => batch.insert(&key[..], encode_record(r)),
                None => batch.remove(&key[..]),
            }
        }
        let mut root = Vec::with_capacity(65);
        self.root.encode(&mut root);
        batch.insert(&ROOT_KEY[..], root);
    }
}

/// The state map with its nodes in a sled tree.
pub struct PagedMap {
    tree: sled::Tree,
    root: Slot,
    cache: Mutex<Cache>,
}

impl PagedMap {
    /// The empty map over `tree` (whatever map records it holds are not read: the state
    /// clears them before its first commit).
    #[must_use]
    pub fn empty(tree: sled::Tree) -> PagedMap {
        PagedMap::with_cache(tree, STATE_MAP_PINNED_DEPTH, STATE_MAP_CACHE_NODES)
    }

    /// The empty map with a cache of another size (tests make eviction happen).
    #[must_use]
    pub fn with_cache(tree: sled::Tree, pinned_depth: usize, capacity: usize) -> PagedMap {
        PagedMap {
            tree,
            root: Slot::Empty,
            cache: Mutex::new(Cache::new(pinned_depth, capacity)),
        }
    }

    /// The map stored in `tree`, whose root must be `root` (the head's): checked by
    /// hashing the root's record, without rebuilding anything.
    ///
    /// # Errors
    /// sled faults; a missing or damaged root record; another root than `root`.
    pub fn open(tree: sled::Tree, root: &Hash) -> Result<PagedMap, MapStoreError> {
        let mut map = PagedMap::empty(tree);
        map.root = match map.tree.get(ROOT_KEY)? {
            Some(bytes) => match Slot::decode(&bytes) {
                Some((slot, [])) => slot,
                _ => return Err(damaged(&ROOT_KEY, "the root slot does not decode")),
            },
            None if root == &ZERO => Slot::Empty,
            None => return Err(damaged(&ROOT_KEY, "the root slot is missing")),
        };
        if let Slot::Node(h) = map.root {
            let (left, right) = map.record(&node_key(0, &ZERO))?;
            if internal_hash(&left.hash(), &right.hash()) != h {
                return Err(damaged(
                    &ROOT_KEY,
                    "the root node does not hash to its slot",
                ));
            }
        }
        if &map.root.hash() != root {
            return Err(damaged(&ROOT_KEY, "the stored root is not the head's"));
        }
        Ok(map)
    }

    /// The map root.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.root.hash()
    }

    /// Records in the cache, and an estimate of the memory they take (key, record and the
    /// hash maps' slot overhead).
    #[must_use]
    pub fn cache_usage(&self) -> (usize, usize) {
        let n = self.lock().len();
        let per = std::mem::size_of::<NodeKey>() + std::mem::size_of::<Record>() + 16;
        (n, n * per * 8 / 7)
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        // A panic while the lock was held cannot leave a record half-written (records
        // are copied in whole): the cache stays usable.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The committed record at `key`, from the cache or sled.
    fn record(&self, key: &NodeKey) -> Result<Record, MapStoreError> {
        if let Some(r) = self.lock().get(key) {
            return Ok(r);
        }
        let bytes = self
            .tree
            .get(key)?
            .ok_or_else(|| damaged(key, "a node names a child that is not stored"))?;
        let record = decode_record(&bytes).ok_or_else(|| damaged(key, "does not decode"))?;
        self.lock().put(*key, record);
        Ok(record)
    }

    /// The proof for `key` against [`PagedMap::root`].
    ///
    /// # Errors
    /// sled faults; a missing or damaged record.
    pub fn prove(&self, key: &Hash) -> Result<StateProof, MapStoreError> {
        let mut siblings = Vec::new();
        let mut at = self.root;
        let leaf = loop {
            match at {
                Slot::Empty => break None,
                Slot::Leaf(key, value_hash) => break Some(ProofLeaf { key, value_hash }),
                Slot::Node(_) => {
                    let depth = siblings.len();
                    let (left, right) = self.record(&node_key(depth, key))?;
                    let (on, beside) = if bit(key, depth) {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    siblings.push(beside.hash());
                    at = on;
                }
            }
        };
        Ok(StateProof {
            key: *key,
            siblings,
            leaf,
        })
    }

    /// Works out a batch of changes (a key given twice keeps its last change) against the
    /// committed map, which it leaves as it is.
    ///
    /// # Errors
    /// sled faults; a missing or damaged record.
    pub fn prepare(&self, mut changes: Vec<Change>) -> Result<PreparedMap, MapStoreError> {
        changes.sort_by_key(|c| c.0);
        let mut deduped: Vec<Change> = Vec::with_capacity(changes.len());
        for c in changes {
            match deduped.last_mut() {
                Some(last) if last.0 == c.0 => *last = c,
                _ => deduped.push(c),
            }
        }
        let mut writes = BTreeMap::new();
        let root = Update {
            map: self,
            writes: &mut writes,
        }
        .at(self.root, &deduped, 0)?;
        Ok(PreparedMap { root, writes })
    }

    /// Takes in a batch that was written to sled.
    pub fn committed(&mut self, prepared: PreparedMap) {
        let mut cache = self.lock();
        for (key, record) in prepared.writes {
            match record {
                Some(r) => cache.put(key, r),
                None => cache.remove(&key),
            }
        }
        drop(cache);
        self.root = prepared.root;
    }
}

/// One batch's descent: the same algorithm as [`super::tree::MapTree::update`], with
/// records read from the map and written to `writes`.
struct Update<'a> {
    map: &'a PagedMap,
    writes: &'a mut BTreeMap<NodeKey, Option<Record>>,
}

impl Update<'_> {
    /// The subtree at `depth` that was `at`, with `changes` (sorted, distinct, sharing
    /// the subtree's prefix) applied.
    fn at(&mut self, at: Slot, changes: &[Change], depth: usize) -> Result<Slot, MapStoreError> {
        let Some(first) = changes.first() else {
            return Ok(at);
        };
        match at {
            Slot::Empty => Ok(self.build(changes, depth)),
            Slot::Leaf(k, v) => {
                // The old leaf joins the changes unless a change names its key.
                let mut merged = Vec::with_capacity(changes.len() + 1);
                let pos = changes.partition_point(|c| c.0 < k);
                merged.extend_from_slice(&changes[..pos]);
                if changes.get(pos).map(|c| c.0) != Some(k) {
                    merged.push((k, Some(v)));
                }
                merged.extend_from_slice(&changes[pos..]);
                Ok(self.build(&merged, depth))
            }
            Slot::Node(_) => {
                let key = node_key(depth, &first.0);
                let (left, right) = self.map.record(&key)?;
                let split = changes.partition_point(|c| !bit(&c.0, depth));
                let left = self.at(left, &changes[..split], depth + 1)?;
                let right = self.at(right, &changes[split..], depth + 1)?;
                let joined = self.join(left, right, key);
                if !matches!(joined, Slot::Node(_)) {
                    self.writes.insert(key, None);
                }
                Ok(joined)
            }
        }
    }

    /// The subtree of `changes`' present keys alone (sorted, distinct).
    fn build(&mut self, changes: &[Change], depth: usize) -> Slot {
        let first = changes.iter().position(|c| c.1.is_some());
        let last = changes.iter().rposition(|c| c.1.is_some());
        let (Some(first), Some(last)) = (first, last) else {
            return Slot::Empty;
        };
        let changes = &changes[first..=last];
        if let [(k, Some(v))] = changes {
            return Slot::Leaf(*k, *v);
        }
        let split = changes.partition_point(|c| !bit(&c.0, depth));
        let left = self.build(&changes[..split], depth + 1);
        let right = self.build(&changes[split..], depth + 1);
        self.join(left, right, node_key(depth, &changes[0].0))
    }

    /// A node over two halves (its record written at `key`), or what replaces it when
    /// it would hold one leaf or none.
    fn join(&mut self, left: Slot, right: Slot, key: NodeKey) -> Slot {
        match (left, right) {
            (Slot::Empty, Slot::Empty) => Slot::Empty,
            (Slot::Leaf(..), Slot::Empty) => left,
            (Slot::Empty, Slot::Leaf(..)) => right,
            _ => {
                self.writes.insert(key, Some((left, right)));
                Slot::Node(internal_hash(&left.hash(), &right.hash()))
            }
        }
    }
}

#[cfg(test)]
#[path = "paged_tests.rs"]
mod tests;
