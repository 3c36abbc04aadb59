//! The publisher's check of what it copies: the hash tiles fetched for a new size
//! must give the signed checkpoint's root, each full tile must hash to its parent in
//! the level above, each entry bundle's leaves must hash to its level-0 tile, and the
//! same tiles must give the root of the size published before (so a new checkpoint is
//! only published over one it extends). Nothing the operator serves is written to the
//! destination unless it is what the signed checkpoint commits to.
//!
//! A tile at level `l` holds nodes of tree level `8l`; a node of tree level `8l + j`
//! (`j < 8`) is the RFC 6962 subtree hash of `2^j` consecutive nodes of that tile level,
//! and the root of a tree of size `s` is the hash of its perfect subtrees, one per bit
//! of `s` (RFC 9162 §2.1.1), largest first.

use std::collections::HashMap;

use super::{PublishError, TileKind, TilePath, TILE_WIDTH};
use crate::log::hash::{leaf_hash, node_hash, Hash, HASH_LEN};

/// The hash tiles of one publication, by (tile level, index).
#[derive(Debug, Default)]
pub struct TileSet {
    tiles: HashMap<(u8, u64), Vec<u8>>,
}

impl TileSet {
    /// Adds a hash tile as fetched; its length must be its width's.
    ///
    /// # Errors
    /// [`PublishError::Tile`] for a tile of the wrong length, or an entry bundle.
    pub fn insert(&mut self, tile: &TilePath, bytes: Vec<u8>) -> Result<(), PublishError> {
        let TileKind::Hashes { level } = tile.kind else {
            return Err(tile_error(tile, "an entry bundle is not a hash tile"));
        };
        if bytes.len() as u64 != tile.width * HASH_LEN as u64 {
            return Err(tile_error(
                tile,
                &format!("{} bytes, not {} hashes", bytes.len(), tile.width),
            ));
        }
        self.tiles.insert((level, tile.index), bytes);
        Ok(())
    }

    /// The bytes of a hash tile inserted (empty if it was not).
    pub fn bytes(&self, tile: &TilePath) -> &[u8] {
        let level = match tile.kind {
            TileKind::Hashes { level } => level,
            TileKind::Entries => return &[],
        };
        self.tiles
            .get(&(level, tile.index))
            .map_or(&[], Vec::as_slice)
    }

    /// Node `index` of tree level `8·level`, if a tile holding it was fetched.
    fn node(&self, level: u8, index: u64) -> Option<Hash> {
        let tile = self.tiles.get(&(level, index / TILE_WIDTH))?;
        let at = (index % TILE_WIDTH) as usize * HASH_LEN;
        Hash::from_slice(tile.get(at..at + HASH_LEN)?)
    }

    /// The node of tree level `8·level + j` at `index`, from the tiles of `level`.
    fn subtree(&self, level: u8, j: u32, index: u64) -> Option<Hash> {
        if j == 0 {
            return self.node(level, index);
        }
        let left = self.subtree(level, j - 1, index.checked_mul(2)?)?;
        let right = self.subtree(level, j - 1, index.checked_mul(2)?.checked_add(1)?)?;
        Some(node_hash(&left, &right))
    }

    /// The root of the tree of `size` leaves, from the tiles held; `None` if a tile it
    /// needs is not held.
    pub fn root(&self, size: u64) -> Option<Hash> {
        if size == 0 {
            return Some(Hash::empty_root());
        }
        let mut peaks = Vec::new();
        let mut offset = 0u64;
        for k in (0..64u32).rev() {
            if size & (1u64 << k) == 0 {
                continue;
            }
            let level = u8::try_from(k / 8).ok()?;
            peaks.push(self.subtree(level, k % 8, offset >> k)?);
            offset += 1u64 << k;
        }
        let mut root = peaks.pop()?;
        while let Some(left) = peaks.pop() {
            root = node_hash(&left, &root);
        }
        Some(root)
    }

    /// Checks that every full tile held hashes to its node in the level above.
    ///
    /// # Errors
    /// [`PublishError::Tile`] for a full tile whose hash is not its parent's (or whose
    /// parent was not fetched).
    pub fn check_full_tiles(&self) -> Result<(), PublishError> {
        for (&(level, index), bytes) in &self.tiles {
            if bytes.len() != TILE_WIDTH as usize * HASH_LEN {
                continue;
            }
            let tile = TilePath {
                kind: TileKind::Hashes { level },
                index,
                width: TILE_WIDTH,
            };
            let mut one = TileSet::default();
            one.tiles.insert((0, 0), bytes.clone());
            let hash = one.subtree(0, 8, 0);
            let parent = level.checked_add(1).and_then(|up| self.node(up, index));
            if hash.is_none() || hash != parent {
                return Err(tile_error(
                    &tile,
                    "does not hash to its node in the level above",
                ));
            }
        }
        Ok(())
    }

    /// Checks an entry bundle against the level-0 tile of the same index: as many
    /// entries as its width, each "a big-endian uint16 length followed by the entry
    /// bytes", each hashing to its leaf hash.
    ///
    /// # Errors
    /// [`PublishError::Tile`] for a truncated bundle, a wrong count or a wrong leaf.
    pub fn check_bundle(&self, bundle: &TilePath, bytes: &[u8]) -> Result<(), PublishError> {
        let mut rest = bytes;
        let mut index = bundle.index * TILE_WIDTH;
        let end = index + bundle.width;
        while !rest.is_empty() {
            let (len, body) = match rest {
                [hi, lo, body @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), body),
                _ => return Err(tile_error(bundle, "truncated")),
            };
            let leaf = body
                .get(..len)
                .ok_or_else(|| tile_error(bundle, "truncated"))?;
            if index >= end || self.node(0, index) != Some(leaf_hash(leaf)) {
                return Err(tile_error(
                    bundle,
                    &format!("entry {index} is not the leaf the tree holds"),
                ));
            }
            index += 1;
            rest = &body[len..];
        }
        if index != end {
            return Err(tile_error(
                bundle,
                &format!("ends at entry {index}, not {end}"),
            ));
        }
        Ok(())
    }
}

fn tile_error(tile: &TilePath, why: &str) -> PublishError {
    PublishError::Tile {
        path: tile.to_path(),
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::compact::Frontier;
    use crate::publish::plan::{entry_bundles, hash_tiles};

    /// Leaves, their bundles and every node of the tree, computed from the definition.
    fn tree(size: u64) -> (Vec<Vec<u8>>, Vec<Vec<Hash>>) {
        let leaves: Vec<Vec<u8>> = (0..size)
            .map(|i| format!("leaf {i}").into_bytes())
            .collect();
        let mut levels = vec![leaves.iter().map(|l| leaf_hash(l)).collect::<Vec<_>>()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().unwrap_or(&Vec::new()).clone();
            levels.push(
                below
                    .chunks_exact(2)
                    .map(|p| node_hash(&p[0], &p[1]))
                    .collect(),
            );
        }
        (leaves, levels)
    }

    fn fetch(levels: &[Vec<Hash>], tile: &TilePath) -> Vec<u8> {
        let TileKind::Hashes { level } = tile.kind else {
            unreachable!()
        };
        let nodes = &levels[usize::from(level) * 8];
        let first = tile.index * TILE_WIDTH;
        (first..first + tile.width)
            .flat_map(|i| nodes[i as usize].as_bytes().to_vec())
            .collect()
    }

    fn frontier_root(leaves: &[Vec<u8>], size: u64) -> Hash {
        let mut f = Frontier::new();
        for leaf in &leaves[..size as usize] {
            f.push(leaf_hash(leaf), &mut Vec::new()).unwrap();
        }
        f.root()
    }

    #[test]
    fn the_tiles_of_a_publication_give_the_roots_of_the_old_and_the_new_size() {
        let (leaves, levels) = tree(70_000);
        for (old, new) in [
            (0, 1),
            (0, 256),
            (255, 257),
            (300, 1000),
            (1000, 70_000),
            (65_536, 69_999),
        ] {
            let mut set = TileSet::default();
            for tile in hash_tiles(old, new) {
                set.insert(&tile, fetch(&levels, &tile)).unwrap();
            }
            set.check_full_tiles().unwrap();
            assert_eq!(
                set.root(new),
                Some(frontier_root(&leaves, new)),
                "{old}->{new}"
            );
            assert_eq!(
                set.root(old),
                Some(frontier_root(&leaves, old)),
                "{old}->{new}"
            );
        }
    }

    #[test]
    fn a_bundle_or_tile_that_is_not_the_trees_is_refused() {
        let (leaves, levels) = tree(600);
        let mut set = TileSet::default();
        for tile in hash_tiles(0, 600) {
            set.insert(&tile, fetch(&levels, &tile)).unwrap();
        }
        let bundles = entry_bundles(0, 600);
        let bundle = |b: &TilePath, swap: bool| {
            let first = (b.index * TILE_WIDTH) as usize;
            let mut out = Vec::new();
            let mine = &leaves[first..first + b.width as usize];
            for (i, original) in mine.iter().enumerate() {
                let leaf = if swap && i == 3 {
                    b"forged".to_vec()
                } else {
                    original.clone()
                };
                out.extend_from_slice(&(leaf.len() as u16).to_be_bytes());
                out.extend_from_slice(&leaf);
            }
            out
        };
        for b in &bundles {
            set.check_bundle(b, &bundle(b, false)).unwrap();
            assert!(set.check_bundle(b, &bundle(b, true)).is_err());
            let short = bundle(b, false);
            assert!(set.check_bundle(b, &short[..short.len() - 1]).is_err());
        }
        // A full level-0 tile with one hash changed no longer hashes to its parent.
        let mut bad = fetch(&levels, &hash_tiles(0, 600)[0]);
        bad[5] ^= 1;
        set.insert(&hash_tiles(0, 600)[0], bad).unwrap();
        assert_eq!(set.check_full_tiles().unwrap_err().code(), "tile_mismatch");
    }
}
