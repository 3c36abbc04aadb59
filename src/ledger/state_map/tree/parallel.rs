//! The map built from nothing with its hashing spread over the cores: how `serve`
//! rebuilds a city's state in seconds (issue 15).

use rayon::prelude::*;

use super::{ArenaError, Change, Hash, Internal, MapTree, Ref};

/// A parallel build splits the keys by this many leading bits: 32 subtrees, so that a
/// few built at once hold a small part of the map twice.
const PARALLEL_BUILD_BITS: usize = 5;

impl MapTree {
    /// The map of `changes` (sorted, distinct) built from nothing: the tree
    /// [`MapTree::build`] builds, leaves still in key order and each subtree's records
    /// side by side, with the hashing spread over the pool's threads: the subtrees under each of the [`PARALLEL_BUILD_BITS`]-bit
    /// prefixes are built in heap arenas of their own, a few at a time (what is held
    /// twice at once is a few of them, not the map), moved into this tree in key order,
    /// then joined. How `serve` opens a city's state in seconds (issue 15).
    pub(super) fn build_in_parallel(&mut self, changes: &[Change]) -> Result<Ref, ArenaError> {
        let prefix = |key: &Hash| usize::from(key[0] >> (8 - PARALLEL_BUILD_BITS));
        let mut groups = Vec::with_capacity(1 << PARALLEL_BUILD_BITS);
        let mut rest = changes;
        for g in 0..1 << PARALLEL_BUILD_BITS {
            let (group, after) = rest.split_at(rest.partition_point(|c| prefix(&c.0) == g));
            groups.push(group);
            rest = after;
        }
        let mut subtrees = Vec::with_capacity(groups.len());
        for wave in groups.chunks(rayon::current_num_threads().max(1)) {
            let built: Vec<(MapTree, Ref)> = wave
                .par_iter()
                .map(|group| {
                    let mut sub = MapTree::new();
                    let at = sub.build(group, PARALLEL_BUILD_BITS)?;
                    Ok((sub, at))
                })
                .collect::<Result<_, ArenaError>>()?;
            for (sub, at) in built {
                subtrees.push(self.graft(&sub, at)?);
            }
        }
        // Up the prefix bits, the last first: subtrees 2i and 2i+1 differ in it.
        while subtrees.len() > 1 {
            subtrees = subtrees
                .chunks(2)
                .map(|pair| self.join(pair[0], pair[1]))
                .collect::<Result<_, ArenaError>>()?;
        }
        Ok(subtrees[0])
    }

    /// Moves `sub`'s records (all of them one subtree, `at`) to the end of this tree's
    /// arenas; `at`'s reference here.
    fn graft(&mut self, sub: &MapTree, at: Ref) -> Result<Ref, ArenaError> {
        // Both below RECORDS_MAX, which `push` keeps.
        let leaf_base = self.leaves.len() as u32;
        let node_base = self.nodes.len() as u32;
        let moved = |r: Ref| match r {
            Ref::Empty => Ref::Empty,
            Ref::Leaf(i) => Ref::Leaf(leaf_base + i),
            Ref::Node(i) => Ref::Node(node_base + i),
        };
        for i in 0..sub.leaves.len() as u32 {
            self.leaves.push(&sub.leaves.get(i))?;
        }
        for i in 0..sub.nodes.len() as u32 {
            let node = sub.node(i);
            let record = Internal {
                left: moved(node.left),
                right: moved(node.right),
                hash: node.hash,
            };
            self.nodes.push(&record.encode())?;
        }
        Ok(moved(at))
    }
}
