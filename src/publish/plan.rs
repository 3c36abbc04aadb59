//! Which tiles a publication writes: going from a published tree of size `old` to one
//! of size `new`, every tile (and entry bundle) that is new or has grown.
//!
//! C2SP tlog-tiles: "the partial tile at level l for a tree of size s has
//! floor(s / 256**l) mod 256 entries"; a full tile never changes. So at tile level `l`
//! the tree of size `s` has `s >> 8l` complete nodes; the tiles from the one holding
//! node `old >> 8l` (partial or absent at `old`) up to the last full one are written,
//! and the partial tile of `new` at every level that has one (unchanged or not: the
//! publisher computes the signed root from them).
//!
//! ```
//! use lesson_ledger::publish::plan::hash_tiles;
//! // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
//! // level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
//! // width 17, and one partial level 2 tile of width 1."
//! let tiles = hash_tiles(0, 70_000);
//! assert_eq!(tiles.len(), 273 + 1 + 1 + 1 + 1);
//! assert_eq!(tiles.last().unwrap().to_path(), "tile/2/000.p/1");
//! ```

use super::{TileKind, TilePath, TILE_LEVEL_MAX, TILE_WIDTH};

/// Tree levels per tile level.
const TILE_HEIGHT: u32 = 8;

/// The tiles of one tile level (`kind`) whose `nodes(size)` complete nodes grew from
/// `old` to `new`: the first one touched through the partial tile of `new`.
fn tiles_of_level(kind: TileKind, old_nodes: u64, new_nodes: u64) -> Vec<TilePath> {
    let mut tiles = Vec::new();
    let full_end = new_nodes / TILE_WIDTH;
    for index in old_nodes / TILE_WIDTH..full_end {
        tiles.push(TilePath {
            kind,
            index,
            width: TILE_WIDTH,
        });
    }
    let partial = new_nodes % TILE_WIDTH;
    // The partial tile of `new`, even where `old` had the very same one: the root of
    // `new` is computed from every level's partial tile (rewriting it is harmless).
    if partial != 0 {
        tiles.push(TilePath {
            kind,
            index: full_end,
            width: partial,
        });
    }
    tiles
}

/// The Merkle hash tiles to write, lowest level first, each level in index order.
pub fn hash_tiles(old: u64, new: u64) -> Vec<TilePath> {
    let mut tiles = Vec::new();
    for level in 0..=TILE_LEVEL_MAX {
        let shift = u32::from(level) * TILE_HEIGHT;
        let (old_nodes, new_nodes) = (old >> shift, new >> shift);
        if new_nodes == 0 {
            break;
        }
        tiles.extend(tiles_of_level(
            TileKind::Hashes { level },
            old_nodes,
            new_nodes,
        ));
    }
    tiles
}

/// The entry bundles to write, in index order.
pub fn entry_bundles(old: u64, new: u64) -> Vec<TilePath> {
    tiles_of_level(TileKind::Entries, old, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(tiles: &[TilePath]) -> Vec<String> {
        tiles.iter().map(TilePath::to_path).collect()
    }

    #[test]
    fn a_tree_of_256_is_a_full_level_0_tile_and_a_partial_level_1_tile_of_width_1() {
        assert_eq!(paths(&hash_tiles(0, 256)), ["tile/0/000", "tile/1/000.p/1"]);
        assert_eq!(paths(&entry_bundles(0, 256)), ["tile/entries/000"]);
    }

    #[test]
    fn growing_rewrites_only_the_tile_that_was_partial_and_the_new_right_edge() {
        // 300 -> 1000: level 0 tile 1 (partial at 300) becomes full, 2 and 3 are new
        // (3 partial, width 232); level 1 partial grows from width 1 to width 3.
        assert_eq!(
            paths(&hash_tiles(300, 1000)),
            [
                "tile/0/001",
                "tile/0/002",
                "tile/0/003.p/232",
                "tile/1/000.p/3"
            ]
        );
        assert_eq!(
            paths(&entry_bundles(300, 1000)),
            [
                "tile/entries/001",
                "tile/entries/002",
                "tile/entries/003.p/232"
            ]
        );
    }

    #[test]
    fn an_upper_level_that_did_not_grow_still_has_its_partial_tile_in_the_plan() {
        // 490 -> 495: level 1 holds one node before and after; the root of 495 needs it.
        assert_eq!(
            paths(&hash_tiles(490, 495)),
            ["tile/0/001.p/239", "tile/1/000.p/1"]
        );
        assert_eq!(
            paths(&hash_tiles(1000, 1000)),
            ["tile/0/003.p/232", "tile/1/000.p/3"]
        );
        assert!(hash_tiles(0, 0).is_empty());
    }

    #[test]
    fn a_size_on_a_tile_boundary_has_no_partial_tile_at_that_level() {
        // 512: two full level 0 tiles, level 1 partial of width 2.
        assert_eq!(
            paths(&hash_tiles(256, 512)),
            ["tile/0/001", "tile/1/000.p/2"]
        );
    }
}
