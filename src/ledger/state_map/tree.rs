//! The map's nodes in memory: a binary trie in two arenas (leaves, internal nodes),
//! updated a batch at a time.
//!
//! A batch's changed keys are sorted and pushed down the trie together: at each node
//! they split by the node's bit, so every touched internal node is rehashed once per
//! batch, however many of the batch's keys lie below it (the root once, not once per
//! object). A lone leaf is never pushed down (a subtree of one object is its leaf), and
//! a subtree left with one leaf by a delete collapses back up.
//!
//! Footprint: 64 bytes a leaf (key, value hash) and 40 bytes an internal node (two
//! 32-bit child references and the cached hash); random keys make about 1.44 internal
//! nodes a leaf, so ~122 bytes an object, freed slots reused.

use super::proof::{bit, internal_hash, leaf_hash, Hash, ProofLeaf, StateProof, ZERO};

/// A child reference: empty, a leaf or an internal node (by arena index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    Empty,
    Leaf(u32),
    Node(u32),
}

#[derive(Debug, Clone, Copy)]
struct Internal {
    left: Ref,
    right: Ref,
    hash: Hash,
}

/// A change to one key: its new value hash, or `None` to remove it.
pub type Change = (Hash, Option<Hash>);

/// The compact sparse Merkle tree of `schemas/README.md` ("State map"), in memory.
#[derive(Debug, Clone)]
pub struct MapTree {
    root: Ref,
    leaves: Vec<(Hash, Hash)>,
    nodes: Vec<Internal>,
    free_leaves: Vec<u32>,
    free_nodes: Vec<u32>,
}

impl Default for MapTree {
    fn default() -> Self {
        MapTree {
            root: Ref::Empty,
            leaves: Vec::new(),
            nodes: Vec::new(),
            free_leaves: Vec::new(),
            free_nodes: Vec::new(),
        }
    }
}

impl MapTree {
    /// The empty map.
    #[must_use]
    pub fn new() -> MapTree {
        MapTree::default()
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

    /// Bytes held by the arenas (capacity, not just use).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.leaves.capacity() * std::mem::size_of::<(Hash, Hash)>()
            + self.nodes.capacity() * std::mem::size_of::<Internal>()
            + (self.free_leaves.capacity() + self.free_nodes.capacity()) * 4
    }

    /// Applies a batch of changes. A key given twice keeps its last change.
    pub fn update(&mut self, mut changes: Vec<Change>) {
        // Stable sort, then keep the last change of each key.
        changes.sort_by_key(|c| c.0);
        let mut deduped: Vec<Change> = Vec::with_capacity(changes.len());
        for c in changes {
            match deduped.last_mut() {
                Some(last) if last.0 == c.0 => *last = c,
                _ => deduped.push(c),
            }
        }
        self.root = self.update_at(self.root, &deduped, 0);
    }

    /// The proof for `key` against [`MapTree::root`].
    #[must_use]
    pub fn prove(&self, key: &Hash) -> StateProof {
        let mut siblings = Vec::new();
        let mut at = self.root;
        let mut depth = 0;
        let leaf = loop {
            match at {
                Ref::Empty => break None,
                Ref::Leaf(i) => {
                    let (k, v) = self.leaves[i as usize];
                    break Some(ProofLeaf {
                        key: k,
                        value_hash: v,
                    });
                }
                Ref::Node(i) => {
                    let n = self.nodes[i as usize];
                    let (on, beside) = if bit(key, depth) {
                        (n.right, n.left)
                    } else {
                        (n.left, n.right)
                    };
                    siblings.push(self.hash_of(beside));
                    at = on;
                    depth += 1;
                }
            }
        };
        StateProof {
            key: *key,
            siblings,
            leaf,
        }
    }

    /// The value hash stored under `key`, if any.
    #[must_use]
    pub fn get(&self, key: &Hash) -> Option<Hash> {
        self.prove(key)
            .leaf
            .filter(|l| &l.key == key)
            .map(|l| l.value_hash)
    }

    fn hash_of(&self, r: Ref) -> Hash {
        match r {
            Ref::Empty => ZERO,
            Ref::Leaf(i) => {
                let (k, v) = &self.leaves[i as usize];
                leaf_hash(k, v)
            }
            Ref::Node(i) => self.nodes[i as usize].hash,
        }
    }

    /// The subtree at `depth` that was `at`, with `changes` (sorted, distinct, all
    /// sharing the subtree's prefix) applied.
    fn update_at(&mut self, at: Ref, changes: &[Change], depth: usize) -> Ref {
        if changes.is_empty() {
            return at;
        }
        match at {
            Ref::Empty => self.build(changes, depth),
            Ref::Leaf(i) => {
                let (k, v) = self.leaves[i as usize];
                self.free_leaves.push(i);
                // The old leaf joins the changes unless a change names its key.
                let mut merged = Vec::with_capacity(changes.len() + 1);
                let pos = changes.partition_point(|c| c.0 < k);
                merged.extend_from_slice(&changes[..pos]);
                if changes.get(pos).map(|c| c.0) != Some(k) {
                    merged.push((k, Some(v)));
                }
                merged.extend_from_slice(&changes[pos..]);
                self.build(&merged, depth)
            }
            Ref::Node(i) => {
                let n = self.nodes[i as usize];
                let split = changes.partition_point(|c| !bit(&c.0, depth));
                let left = self.update_at(n.left, &changes[..split], depth + 1);
                let right = self.update_at(n.right, &changes[split..], depth + 1);
                self.free_nodes.push(i);
                self.join(left, right)
            }
        }
    }

    /// The subtree of `changes`' present keys alone (sorted, distinct).
    fn build(&mut self, changes: &[Change], depth: usize) -> Ref {
        let first = changes.iter().position(|c| c.1.is_some());
        let last = changes.iter().rposition(|c| c.1.is_some());
        let (Some(first), Some(last)) = (first, last) else {
            return Ref::Empty;
        };
        let changes = &changes[first..=last];
        if let [(k, Some(v))] = changes {
            return self.new_leaf(*k, *v);
        }
        let split = changes.partition_point(|c| !bit(&c.0, depth));
        let left = self.build(&changes[..split], depth + 1);
        let right = self.build(&changes[split..], depth + 1);
        self.join(left, right)
    }

    /// A node over two halves, or what replaces it when it would hold one leaf or none.
    fn join(&mut self, left: Ref, right: Ref) -> Ref {
        match (left, right) {
            (Ref::Empty, Ref::Empty) => Ref::Empty,
            (Ref::Leaf(_), Ref::Empty) => left,
            (Ref::Empty, Ref::Leaf(_)) => right,
            _ => {
                let hash = internal_hash(&self.hash_of(left), &self.hash_of(right));
                let node = Internal { left, right, hash };
                let i = match self.free_nodes.pop() {
                    Some(i) => {
                        self.nodes[i as usize] = node;
                        i
                    }
                    None => {
                        self.nodes.push(node);
                        arena_index(self.nodes.len() - 1)
                    }
                };
                Ref::Node(i)
            }
        }
    }

    fn new_leaf(&mut self, key: Hash, value_hash: Hash) -> Ref {
        let i = match self.free_leaves.pop() {
            Some(i) => {
                self.leaves[i as usize] = (key, value_hash);
                i
            }
            None => {
                self.leaves.push((key, value_hash));
                arena_index(self.leaves.len() - 1)
            }
        };
        Ref::Leaf(i)
    }
}

/// An arena index as a 32-bit reference: 4 billion objects is far beyond any state this
/// ledger holds (a city is ~11 million); past it, failing loudly beats a wrong root.
fn arena_index(i: usize) -> u32 {
    u32::try_from(i).expect("the state map holds at most 2^32 nodes")
}
