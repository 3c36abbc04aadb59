//! The map's nodes: a binary trie in two arenas of fixed-size records (leaves, internal
//! nodes), on the heap or in files ([`super::arena`]), updated a batch at a time.
//!
//! A batch's changed keys are sorted and pushed down the trie together: at each node
//! they split by the node's bit, so every touched internal node is rehashed once per
//! batch, however many of the batch's keys lie below it (the root once, not once per
//! object). A lone leaf is never pushed down (a subtree of one object is its leaf), and
//! a subtree left with one leaf by a delete collapses back up.
//!
//! Records: a leaf is 64 bytes (key, value hash); an internal node 40 bytes (two
//! 32-bit child references, then its cached hash). A child reference is `0` for an
//! empty subtree, `1 + i` for leaf `i`, `2^31 | i` for node `i`. Random keys make about
//! 1.44 internal nodes a leaf, so ~122 bytes an object, freed slots reused. A subtree is
//! built depth first, children before their parent, so a map built at once (as on open)
//! has each subtree's records side by side and the leaves in key order: a path down
//! touches few pages.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::arena::{ArenaError, Records};
use super::proof::{bit, internal_hash, leaf_hash, Hash, ProofLeaf, StateProof, ZERO};
use super::seal::{self, ArenaSeal, Seal, SealError};

mod parallel;

/// A child reference: empty, a leaf or an internal node (by arena index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    Empty,
    Leaf(u32),
    Node(u32),
}

/// The tag of a reference to an internal node.
const NODE_TAG: u32 = 1 << 31;

impl Ref {
    fn encode(self) -> [u8; 4] {
        match self {
            Ref::Empty => 0,
            // Below RECORDS_MAX (the arena's bound), so neither overflows into the tag.
            Ref::Leaf(i) => i + 1,
            Ref::Node(i) => NODE_TAG | i,
        }
        .to_be_bytes()
    }

    fn decode(bytes: [u8; 4]) -> Ref {
        match u32::from_be_bytes(bytes) {
            0 => Ref::Empty,
            v if v & NODE_TAG != 0 => Ref::Node(v & !NODE_TAG),
            v => Ref::Leaf(v - 1),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Internal {
    left: Ref,
    right: Ref,
    hash: Hash,
}

const LEAF_BYTES: usize = 64;
const NODE_BYTES: usize = 40;

impl Internal {
    fn encode(&self) -> [u8; NODE_BYTES] {
        let mut r = [0; NODE_BYTES];
        r[..4].copy_from_slice(&self.left.encode());
        r[4..8].copy_from_slice(&self.right.encode());
        r[8..].copy_from_slice(&self.hash);
        r
    }

    fn decode(r: &[u8; NODE_BYTES]) -> Internal {
        let mut hash = [0; 32];
        hash.copy_from_slice(&r[8..]);
        Internal {
            left: Ref::decode([r[0], r[1], r[2], r[3]]),
            right: Ref::decode([r[4], r[5], r[6], r[7]]),
            hash,
        }
    }
}

fn encode_leaf(key: &Hash, value_hash: &Hash) -> [u8; LEAF_BYTES] {
    let mut r = [0; LEAF_BYTES];
    r[..32].copy_from_slice(key);
    r[32..].copy_from_slice(value_hash);
    r
}

fn decode_leaf(r: &[u8; LEAF_BYTES]) -> (Hash, Hash) {
    let (mut key, mut value_hash) = ([0; 32], [0; 32]);
    key.copy_from_slice(&r[..32]);
    value_hash.copy_from_slice(&r[32..]);
    (key, value_hash)
}

/// Changes to an empty tree from this many on are built in parallel
/// ([`MapTree::build_in_parallel`]): the map built on open, not a group commit.
const PARALLEL_BUILD_MIN: usize = 1 << 15;

/// A change to one key: its new value hash, or `None` to remove it.
pub type Change = (Hash, Option<Hash>);

/// A leaf's key and value hash.
type Leaf = (Hash, Hash);

/// File names of a map's arenas in its directory ([`MapTree::in_dir`]).
pub const NODE_FILES: [&str; 2] = ["state-map.leaves", "state-map.nodes"];

/// An arena written to disk, as its seal records it.
fn synced<const N: usize>(records: &Records<N>) -> Result<ArenaSeal, ArenaError> {
    records.sync()?;
    Ok(ArenaSeal {
        records: records.len() as u64,
        crc32c: records.checksum()?,
    })
}

/// The compact sparse Merkle tree of `schemas/README.md` ("State map").
#[derive(Debug)]
pub struct MapTree {
    root: Ref,
    leaves: Records<LEAF_BYTES>,
    nodes: Records<NODE_BYTES>,
    free_leaves: Vec<u32>,
    free_nodes: Vec<u32>,
    /// An update stopped part way: the records no longer make one tree.
    broken: bool,
    /// The directory of the node files (`None` on the heap): where a seal goes.
    dir: Option<PathBuf>,
}

impl Clone for MapTree {
    /// A copy on the heap, whatever the original's arenas: never sealed.
    fn clone(&self) -> Self {
        MapTree {
            root: self.root,
            leaves: self.leaves.clone(),
            nodes: self.nodes.clone(),
            free_leaves: self.free_leaves.clone(),
            free_nodes: self.free_nodes.clone(),
            broken: self.broken,
            dir: None,
        }
    }
}

impl Default for MapTree {
    fn default() -> Self {
        MapTree::with(Records::heap(), Records::heap())
    }
}

impl MapTree {
    /// The empty map, its nodes on the heap.
    #[must_use]
    pub fn new() -> MapTree {
        MapTree::default()
    }

    /// The empty map, its nodes in files of `dir` ([`NODE_FILES`]) created afresh:
    /// whatever they held is removed, never read, and so is a seal.
    ///
    /// # Errors
    /// A file cannot be created, allocated or mapped; the seal cannot be removed.
    pub fn in_dir(dir: &Path) -> Result<MapTree, ArenaError> {
        seal::remove(dir).map_err(|source| ArenaError::File {
            path: dir.join(seal::SEAL_FILE),
            source,
        })?;
        let [leaves, nodes] = NODE_FILES.map(|name| dir.join(name));
        let mut tree = MapTree::with(Records::file(&leaves)?, Records::file(&nodes)?);
        tree.dir = Some(dir.to_path_buf());
        Ok(tree)
    }

    /// The map that a clean close sealed in `dir` ([`MapTree::seal`]) as the state of
    /// `tag` with root `root`, its seal removed first (see the `seal` module: [`SealError`]).
    ///
    /// # Errors
    /// Why it cannot be reused: no seal, another state's, files not as sealed.
    pub fn unseal(dir: &Path, tag: u64, root: &Hash) -> Result<MapTree, SealError> {
        let seal = Seal::take(dir)?;
        if seal.tag != tag || seal.root != *root {
            return Err(SealError::OtherState {
                sealed: seal.tag,
                head: tag,
            });
        }
        let reopen = |name: &str, arena: ArenaSeal| {
            let len = usize::try_from(arena.records).map_err(|_| ArenaError::Full)?;
            Ok::<_, ArenaError>((dir.join(name), len, arena.crc32c))
        };
        let (leaves, nodes) = (
            reopen(NODE_FILES[0], seal.leaves)?,
            reopen(NODE_FILES[1], seal.nodes)?,
        );
        // The two files are read to check them; each on a core.
        let (leaves, nodes) = rayon::join(
            || Records::reopen(&leaves.0, leaves.1, leaves.2),
            || Records::reopen(&nodes.0, nodes.1, nodes.2),
        );
        let tree = MapTree {
            root: Ref::decode(seal.root_ref),
            leaves: leaves?,
            nodes: nodes?,
            free_leaves: seal.free_leaves,
            free_nodes: seal.free_nodes,
            broken: false,
            dir: Some(dir.to_path_buf()),
        };
        // Indexes in range (the checksums make a bad one unlikely, not impossible), and
        // the root the head names.
        let leaf_ok = |i: &u32| (*i as usize) < tree.leaves.len();
        let node_ok = |i: &u32| (*i as usize) < tree.nodes.len();
        let root_ok = match tree.root {
            Ref::Empty => true,
            Ref::Leaf(i) => leaf_ok(&i),
            Ref::Node(i) => node_ok(&i),
        };
        if !(root_ok && tree.free_leaves.iter().all(leaf_ok) && tree.free_nodes.iter().all(node_ok))
            || tree.root() != *root
        {
            return Err(SealError::Garbled);
        }
        Ok(tree)
    }

    /// Writes the node files to disk and seals them, for the next open, as the map of
    /// the state of `tag` (the log size): see the `seal` module. Nothing for a map on the
    /// heap.
    ///
    /// # Errors
    /// The files cannot be synced or read back, the seal cannot be written; the tree
    /// is broken ([`ArenaError::Broken`]).
    pub fn seal(&self, tag: u64) -> Result<(), SealError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        if self.broken {
            return Err(ArenaError::Broken.into());
        }
        let (leaves, nodes) = (synced(&self.leaves)?, synced(&self.nodes)?);
        let seal = Seal {
            tag,
            root: self.root(),
            root_ref: self.root.encode(),
            leaves,
            nodes,
            free_leaves: self.free_leaves.clone(),
            free_nodes: self.free_nodes.clone(),
        };
        Ok(seal.write(dir)?)
    }

    fn with(leaves: Records<LEAF_BYTES>, nodes: Records<NODE_BYTES>) -> MapTree {
        MapTree {
            root: Ref::Empty,
            leaves,
            nodes,
            free_leaves: Vec::new(),
            free_nodes: Vec::new(),
            broken: false,
            dir: None,
        }
    }

    /// The map root.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.hash_of(self.root)
    }

    /// Number of objects.
    #[must_use]
    pub fn len(&self) -> usize {
        self.leaves.len() - self.free_leaves.len()
    }

    /// Whether the map holds no object.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held on the heap by the arenas and free lists (capacity, not just use).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.leaves.heap_bytes()
            + self.nodes.heap_bytes()
            + (self.free_leaves.capacity() + self.free_nodes.capacity()) * 4
    }

    /// Bytes of the node files (0 on the heap).
    #[must_use]
    pub fn file_bytes(&self) -> usize {
        self.leaves.file_bytes() + self.nodes.file_bytes()
    }

    /// Lets the kernel drop the node files' pages from the resident set (see
    /// `Records::release`); nothing on the heap.
    ///
    /// # Errors
    /// `madvise` refused.
    pub fn release(&self) -> Result<(), ArenaError> {
        self.leaves.release()?;
        self.nodes.release()
    }

    /// Writes the node files' dirty pages back now (see `Records::flush`); nothing on
    /// the heap.
    ///
    /// # Errors
    /// `msync` refused.
    pub fn flush(&self) -> Result<(), ArenaError> {
        self.leaves.flush()?;
        self.nodes.flush()
    }

    /// Applies a batch of changes. A key given twice keeps its last change.
    ///
    /// # Errors
    /// A file arena that cannot grow; then this tree refuses every later update
    /// ([`ArenaError::Broken`]) and must be rebuilt.
    pub fn update(&mut self, changes: Vec<Change>) -> Result<(), ArenaError> {
        self.apply(changes).map(drop)
    }

    /// [`MapTree::update`], returning the changes that undo it: each key changed, with
    /// the value hash it had (`None`: it was absent). Found on the way down, so the
    /// writer, which prepares every group commit this way, walks each path once.
    ///
    /// # Errors
    /// As [`MapTree::update`].
    pub fn update_with_undo(&mut self, changes: Vec<Change>) -> Result<Vec<Change>, ArenaError> {
        let (changes, replaced) = self.apply(changes)?;
        // Both in key order: the walk meets leaves left to right.
        let mut replaced = replaced.into_iter().peekable();
        Ok(changes
            .iter()
            .map(|(key, _)| {
                let before = replaced.next_if(|(k, _)| k == key).map(|(_, v)| v);
                (*key, before)
            })
            .collect())
    }

    /// Sorts and applies `changes`; returns them as applied (sorted, one a key) and the
    /// leaves they replaced, in key order.
    fn apply(&mut self, mut changes: Vec<Change>) -> Result<(Vec<Change>, Vec<Leaf>), ArenaError> {
        if self.broken {
            return Err(ArenaError::Broken);
        }
        // Stable sort, then keep the last change of each key (in place: a map rebuilt
        // on open passes every object at once, sorted on the pool's threads).
        if changes.len() >= PARALLEL_BUILD_MIN {
            changes.par_sort_by_key(|c| c.0);
        } else {
            changes.sort_by_key(|c| c.0);
        }
        changes.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                *kept = *later;
            }
            same
        });
        let mut replaced = Vec::new();
        let updated = if self.root == Ref::Empty && changes.len() >= PARALLEL_BUILD_MIN {
            self.build_in_parallel(&changes)
        } else {
            self.update_at(self.root, &changes, 0, &mut replaced)
        };
        match updated {
            Ok(root) => {
                self.root = root;
                Ok((changes, replaced))
            }
            Err(e) => {
                // Nodes were freed and reused on the way: the old root is gone too.
                self.broken = true;
                Err(e)
            }
        }
    }

    /// The proof for `key` against [`MapTree::root`].
    #[must_use]
    pub fn prove(&self, key: &Hash) -> StateProof {
        let mut siblings = Vec::new();
        let leaf = self
            .descend(key, |beside| siblings.push(self.hash_of(beside)))
            .map(|(k, v)| ProofLeaf {
                key: k,
                value_hash: v,
            });
        StateProof {
            key: *key,
            siblings,
            leaf,
        }
    }

    /// The value hash stored under `key`, if any: the walk of [`MapTree::prove`]
    /// without hashing the siblings (the writer asks it of every key it changes).
    #[must_use]
    pub fn get(&self, key: &Hash) -> Option<Hash> {
        self.descend(key, |_| {})
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Walks from the root towards `key`, telling `beside` each sibling passed, and
    /// returns the leaf the walk ends on (its key may be another's).
    fn descend(&self, key: &Hash, mut beside: impl FnMut(Ref)) -> Option<(Hash, Hash)> {
        let mut at = self.root;
        let mut depth = 0;
        loop {
            match at {
                Ref::Empty => return None,
                Ref::Leaf(i) => return Some(self.leaf(i)),
                Ref::Node(i) => {
                    let n = self.node(i);
                    let (on, other) = if bit(key, depth) {
                        (n.right, n.left)
                    } else {
                        (n.left, n.right)
                    };
                    beside(other);
                    at = on;
                    depth += 1;
                }
            }
        }
    }

    fn leaf(&self, i: u32) -> (Hash, Hash) {
        decode_leaf(&self.leaves.get(i))
    }

    fn node(&self, i: u32) -> Internal {
        Internal::decode(&self.nodes.get(i))
    }

    fn hash_of(&self, r: Ref) -> Hash {
        match r {
            Ref::Empty => ZERO,
            Ref::Leaf(i) => {
                let (k, v) = self.leaf(i);
                leaf_hash(&k, &v)
            }
            Ref::Node(i) => self.node(i).hash,
        }
    }

    /// The subtree at `depth` that was `at`, with `changes` (sorted, distinct, all
    /// sharing the subtree's prefix) applied.
    fn update_at(
        &mut self,
        at: Ref,
        changes: &[Change],
        depth: usize,
        replaced: &mut Vec<Leaf>,
    ) -> Result<Ref, ArenaError> {
        if changes.is_empty() {
            return Ok(at);
        }
        match at {
            Ref::Empty => self.build(changes, depth),
            Ref::Leaf(i) => {
                let (k, v) = self.leaf(i);
                self.free_leaves.push(i);
                // The old leaf joins the changes unless a change names its key.
                let mut merged = Vec::with_capacity(changes.len() + 1);
                let pos = changes.partition_point(|c| c.0 < k);
                merged.extend_from_slice(&changes[..pos]);
                if changes.get(pos).map(|c| c.0) == Some(k) {
                    replaced.push((k, v));
                } else {
                    merged.push((k, Some(v)));
                }
                merged.extend_from_slice(&changes[pos..]);
                self.build(&merged, depth)
            }
            Ref::Node(i) => {
                let n = self.node(i);
                let split = changes.partition_point(|c| !bit(&c.0, depth));
                let left = self.update_at(n.left, &changes[..split], depth + 1, replaced)?;
                let right = self.update_at(n.right, &changes[split..], depth + 1, replaced)?;
                self.free_nodes.push(i);
                self.join(left, right)
            }
        }
    }

    /// The subtree of `changes`' present keys alone (sorted, distinct), built depth
    /// first: children are stored before their parent.
    fn build(&mut self, changes: &[Change], depth: usize) -> Result<Ref, ArenaError> {
        let first = changes.iter().position(|c| c.1.is_some());
        let last = changes.iter().rposition(|c| c.1.is_some());
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(Ref::Empty);
        };
        let changes = &changes[first..=last];
        if let [(k, Some(v))] = changes {
            return self.new_leaf(k, v);
        }
        let split = changes.partition_point(|c| !bit(&c.0, depth));
        let left = self.build(&changes[..split], depth + 1)?;
        let right = self.build(&changes[split..], depth + 1)?;
        self.join(left, right)
    }

    /// A node over two halves, or what replaces it when it would hold one leaf or none.
    fn join(&mut self, left: Ref, right: Ref) -> Result<Ref, ArenaError> {
        match (left, right) {
            (Ref::Empty, Ref::Empty) => Ok(Ref::Empty),
            (Ref::Leaf(_), Ref::Empty) => Ok(left),
            (Ref::Empty, Ref::Leaf(_)) => Ok(right),
            _ => {
                let hash = internal_hash(&self.hash_of(left), &self.hash_of(right));
                let record = Internal { left, right, hash }.encode();
                let i = match self.free_nodes.pop() {
                    Some(i) => {
                        self.nodes.put(i, &record);
                        i
                    }
                    None => self.nodes.push(&record)?,
                };
                Ok(Ref::Node(i))
            }
        }
    }

    fn new_leaf(&mut self, key: &Hash, value_hash: &Hash) -> Result<Ref, ArenaError> {
        let record = encode_leaf(key, value_hash);
        let i = match self.free_leaves.pop() {
            Some(i) => {
                self.leaves.put(i, &record);
                i
            }
            None => self.leaves.push(&record)?,
        };
        Ok(Ref::Leaf(i))
    }
}
