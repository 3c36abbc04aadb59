//! The C2SP tlog-tiles layout (<https://c2sp.org/tlog-tiles>): which tiles a tree has,
//! the path of each, and the parse of a path. Pure arithmetic and text, no I/O and no
//! HTTP: the read API (`GET /tile/...`, in `http::tiles`), the client, the remote audit
//! and a static publisher that writes tiles to a directory all use this one encoding.
//!
//! - A **hash tile** at level L and index N "holds the hashes of the level-8L nodes
//!   [N·256, N·256 + W)" — 32 bytes each, 256 in a full tile, W (1..255) in a partial
//!   one. Its path is `tile/<L>/<N>[.p/<W>]`.
//! - An **entry bundle** at index N holds leaves [N·256, N·256 + W), each "a big-endian
//!   uint16 length followed by the entry bytes" ([`encode_bundle_entry`]). Its path is
//!   `tile/entries/<N>[.p/<W>]`.
//!
//! `<N>` uses the spec's path encoding: "split into zero-padded 3-digit path elements,
//! all but the last prefixed with `x`" (1234067 → `x001/x234/067`). Only the canonical
//! encoding parses; anything else is a [`TileError`] with a stable code.
//!
//! A tree of size S has, at each level, `S >> 8L` complete nodes, so the full tiles
//! [0, (S >> 8L) / 256) and, if the rest is not zero, one partial tile of that width
//! ([`tiles_of`]). Full tiles never change once the tree holds them; a partial tile is
//! the tree's growing right edge and is superseded.
//!
//! ```
//! use lesson_ledger::log::tiles::{tiles_of, TileKind, TilePath};
//! // The path of a hash tile and of an entry bundle, and back.
//! let t = TilePath::hashes(0, 1_234_067, 8).unwrap();
//! assert_eq!(t.to_path(), "tile/0/x001/x234/067.p/8");
//! assert_eq!(TilePath::parse_path("tile/0/x001/x234/067.p/8").unwrap(), t);
//! assert_eq!(TilePath::entries(1, 256).unwrap().to_path(), "tile/entries/001");
//! assert_eq!(TilePath::parse("0/x000/067").unwrap_err().code(), "malformed_tile_path");
//! // The entry bundles of a tree of 600 leaves: two full ones and the right edge.
//! let paths: Vec<String> = tiles_of(TileKind::Entries, 600).map(|t| t.to_path()).collect();
//! assert_eq!(paths, ["tile/entries/000", "tile/entries/001", "tile/entries/002.p/88"]);
//! ```

// Every public item here is documented, and stays so (issue 16, item 7).
#![warn(missing_docs)]

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level: a hash tile at level L holds tree level `8·L`.
pub const TILE_HEIGHT: u32 = 8;
/// Highest tile level: level-8L nodes must exist in a tree of up to 2^63 leaves.
pub const TILE_LEVEL_MAX: u8 = 7;

/// Why a tile path or tile was refused. Each variant has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// Not the canonical encoding of a tile path; says what is wrong.
    #[error("malformed tile path: {0}")]
    Malformed(&'static str),
    /// A hash tile's level above [`TILE_LEVEL_MAX`].
    #[error("malformed tile path: tile level {level} is above {TILE_LEVEL_MAX}")]
    LevelTooHigh {
        /// The level asked for.
        level: u8,
    },
    /// A width outside 1..=256.
    #[error("a tile's width is 1..=256, not {width}")]
    Width {
        /// The width asked for.
        width: u64,
    },
    /// The tile would hold positions past 2^64: no tree has them.
    #[error("tile {index} would hold positions past 2^64; no tree has them")]
    OutOfRange {
        /// The tile's index.
        index: u64,
    },
    /// An entry too long for a bundle's u16 length prefix.
    #[error("an entry of {len} bytes does not fit a bundle's u16 length")]
    EntryTooLarge {
        /// The entry's length in bytes.
        len: usize,
    },
}

impl TileError {
    /// Stable error code: `malformed_tile_path` for a path that does not parse (or a
    /// tile that cannot be named), `tile_out_of_range` for a tile past 2^64 positions,
    /// `tile_entry_too_large` for an entry a bundle cannot hold.
    pub fn code(&self) -> &'static str {
        match self {
            TileError::Malformed(_) | TileError::LevelTooHigh { .. } | TileError::Width { .. } => {
                "malformed_tile_path"
            }
            TileError::OutOfRange { .. } => "tile_out_of_range",
            TileError::EntryTooLarge { .. } => "tile_entry_too_large",
        }
    }
}

/// Which kind of tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Merkle hashes of tree level `8·level`.
    Hashes {
        /// The tile level, 0..=[`TILE_LEVEL_MAX`].
        level: u8,
    },
    /// An entry bundle (leaves).
    Entries,
}

impl TileKind {
    /// The tree level whose nodes (or, for entries, leaves) the tile holds.
    pub fn tree_level(self) -> u32 {
        match self {
            TileKind::Hashes { level } => u32::from(level) * TILE_HEIGHT,
            TileKind::Entries => 0,
        }
    }
}

/// A tile: its kind, index and width. Built by [`TilePath::hashes`],
/// [`TilePath::entries`] or a parse, it names a tile in the canonical encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TilePath {
    /// Hash tile (with its level) or entry bundle.
    pub kind: TileKind,
    /// The tile's index N: it starts at position `N·256` of its level.
    pub index: u64,
    /// 1..=256; 256 is a full tile.
    pub width: u64,
}

/// Parses 3 ASCII digits.
fn three_digits(s: &str) -> Option<u64> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// The tile kind of a path's first element: a digit 0..=7 or `entries`.
fn parse_kind(element: &str) -> Result<TileKind, TileError> {
    match element {
        "entries" => Ok(TileKind::Entries),
        l if l.len() == 1 && l.as_bytes()[0].is_ascii_digit() => {
            let level = l.as_bytes()[0] - b'0';
            if level > TILE_LEVEL_MAX {
                return Err(TileError::LevelTooHigh { level });
            }
            Ok(TileKind::Hashes { level })
        }
        _ => Err(TileError::Malformed(
            "the tile level is a digit or `entries`",
        )),
    }
}

/// A partial width: decimal 1..=255, no leading zero.
fn parse_width(w: &str) -> Result<u64, TileError> {
    let ok = !w.is_empty() && !w.starts_with('0') && w.bytes().all(|b| b.is_ascii_digit());
    match w.parse::<u64>() {
        Ok(w) if ok && w < TILE_WIDTH => Ok(w),
        _ => Err(TileError::Malformed("a partial width is 1..255")),
    }
}

/// The index from its path elements (`x001`, `x234`, `067`).
fn parse_index(elements: &[&str]) -> Result<u64, TileError> {
    let mut index: u64 = 0;
    for (i, element) in elements.iter().enumerate() {
        let is_last = i + 1 == elements.len();
        let digits = if is_last {
            *element
        } else {
            element.strip_prefix('x').ok_or(TileError::Malformed(
                "all but the last index element start with x",
            ))?
        };
        let group =
            three_digits(digits).ok_or(TileError::Malformed("index elements are 3 digits"))?;
        if i == 0 && group == 0 && !is_last {
            return Err(TileError::Malformed("the index has a leading zero element"));
        }
        index = index
            .checked_mul(1000)
            .and_then(|n| n.checked_add(group))
            .ok_or(TileError::Malformed("the tile index is out of range"))?;
    }
    Ok(index)
}

impl TilePath {
    /// The hash tile at tile level `level` (tree level `8·level`), index `index`, holding
    /// `width` hashes (256: full).
    ///
    /// # Errors
    /// [`TileError::LevelTooHigh`] above [`TILE_LEVEL_MAX`]; [`TileError::Width`] outside
    /// 1..=256.
    pub fn hashes(level: u8, index: u64, width: u64) -> Result<TilePath, TileError> {
        if level > TILE_LEVEL_MAX {
            return Err(TileError::LevelTooHigh { level });
        }
        TilePath::new(TileKind::Hashes { level }, index, width)
    }

    /// The entry bundle at index `index`, holding `width` entries (256: full).
    ///
    /// # Errors
    /// [`TileError::Width`] outside 1..=256.
    pub fn entries(index: u64, width: u64) -> Result<TilePath, TileError> {
        TilePath::new(TileKind::Entries, index, width)
    }

    fn new(kind: TileKind, index: u64, width: u64) -> Result<TilePath, TileError> {
        if !(1..=TILE_WIDTH).contains(&width) {
            return Err(TileError::Width { width });
        }
        Ok(TilePath { kind, index, width })
    }

    /// Parses a whole path, `tile/...`.
    ///
    /// # Errors
    /// [`TileError`] (`malformed_tile_path`) for anything but the canonical encoding.
    pub fn parse_path(path: &str) -> Result<TilePath, TileError> {
        let rest = path
            .strip_prefix("tile/")
            .ok_or(TileError::Malformed("a tile path starts with tile/"))?;
        TilePath::parse(rest)
    }

    /// Parses what follows `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
    ///
    /// # Errors
    /// [`TileError`] (`malformed_tile_path`) for anything but the canonical encoding.
    pub fn parse(rest: &str) -> Result<TilePath, TileError> {
        let mut parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 2 {
            return Err(TileError::Malformed("a tile path is <L>/<N>[.p/<W>]"));
        }
        let kind = parse_kind(parts[0])?;
        // "<N>.p/<W>": the last element is the width.
        let mut width = TILE_WIDTH;
        if parts.len() >= 3 && parts[parts.len() - 2].ends_with(".p") {
            width = parse_width(parts.pop().unwrap_or_default())?;
            let last = parts.len() - 1;
            // Exactly one ".p": `001.p.p/1` is not canonical (found by fuzzing).
            if let Some(index) = parts[last].strip_suffix(".p") {
                parts[last] = index;
            }
        }
        let index = parse_index(&parts[1..])?;
        Ok(TilePath { kind, index, width })
    }

    /// The path, `tile/...`, in the canonical encoding.
    pub fn to_path(&self) -> String {
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        groups.reverse();
        let last = groups.len() - 1;
        let index: Vec<String> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                if i == last {
                    format!("{g:03}")
                } else {
                    format!("x{g:03}")
                }
            })
            .collect();
        let level = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let mut path = format!("tile/{level}/{}", index.join("/"));
        if self.width < TILE_WIDTH {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// The positions `[first, end)` the tile holds at its level, `N·256` to `N·256 + W`.
    ///
    /// # Errors
    /// [`TileError::OutOfRange`] (`tile_out_of_range`) when they pass 2^64: no tree holds
    /// such a tile (the sum used to wrap, and a tile past the end was served empty and
    /// `immutable`).
    pub fn span(&self) -> Result<(u64, u64), TileError> {
        self.index
            .checked_mul(TILE_WIDTH)
            .and_then(|first| Some((first, first.checked_add(self.width)?)))
            .ok_or(TileError::OutOfRange { index: self.index })
    }

    /// Whether this is a full tile (it never changes once the tree holds it).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// Whether a tree of `size` leaves holds every node (or leaf) of this tile.
    pub fn is_in_tree(&self, size: u64) -> bool {
        let complete = size.checked_shr(self.kind.tree_level()).unwrap_or(0);
        self.span().is_ok_and(|(_, end)| end <= complete)
    }
}

/// Every tile of `kind` in a tree of `size` leaves, in index order: the full tiles, then
/// the partial one at the right edge if the level's complete nodes are not a multiple of
/// 256. Empty for a level the tree does not reach.
pub fn tiles_of(kind: TileKind, size: u64) -> impl Iterator<Item = TilePath> {
    let complete = size.checked_shr(kind.tree_level()).unwrap_or(0);
    let full = complete / TILE_WIDTH;
    let rest = complete % TILE_WIDTH;
    let partial = (rest > 0).then_some(TilePath {
        kind,
        index: full,
        width: rest,
    });
    (0..full)
        .map(move |index| TilePath {
            kind,
            index,
            width: TILE_WIDTH,
        })
        .chain(partial)
}

/// Appends one entry of a bundle to `bundle`: its length as a big-endian u16, then its
/// bytes.
///
/// # Errors
/// [`TileError::EntryTooLarge`] for an entry of 64 KiB or more, and nothing is written
/// (the log's leaves are capped below that, [`crate::limits::LEAF_BYTES_MAX`]).
pub fn encode_bundle_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), TileError> {
    let len =
        u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLarge { len: entry.len() })?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding_round_trips() {
        for (n, text) in [
            (0, "000"),
            (7, "007"),
            (999, "999"),
            (1000, "x001/000"),
            (1_234_067, "x001/x234/067"),
            (u64::MAX, "x018/x446/x744/x073/x709/x551/615"),
        ] {
            let t = TilePath::parse(&format!("3/{text}")).unwrap();
            assert_eq!(t.index, n, "{text}");
            assert_eq!(t.to_path(), format!("tile/3/{text}"));
        }
    }

    #[test]
    fn only_canonical_paths_parse() {
        for bad in [
            "0",
            "0/",
            "0/7",
            "0/0007",
            "0/x000/007",
            "0/001/002",
            "0/x1/002",
            "8/000",
            "10/000",
            "a/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "0/000.p/",
            "0/000.p",
            "entries/000.p/x",
            "0/x018/x446/x744/x073/x709/x551/616",
        ] {
            assert_eq!(
                TilePath::parse(bad).unwrap_err().code(),
                "malformed_tile_path",
                "{bad}"
            );
        }
        let t = TilePath::parse("entries/001.p/255").unwrap();
        assert_eq!((t.kind, t.index, t.width), (TileKind::Entries, 1, 255));
        assert!(!t.is_full());
        assert!(TilePath::parse_path("0/000").is_err(), "needs tile/");
    }

    #[test]
    fn a_tile_is_named_only_with_a_width_and_level_the_spec_allows() {
        assert_eq!(
            TilePath::hashes(8, 0, 1),
            Err(TileError::LevelTooHigh { level: 8 })
        );
        assert_eq!(TilePath::entries(0, 0), Err(TileError::Width { width: 0 }));
        assert_eq!(
            TilePath::entries(0, 257),
            Err(TileError::Width { width: 257 })
        );
        let t = TilePath::hashes(7, 3, 256).unwrap();
        assert_eq!(TilePath::parse_path(&t.to_path()), Ok(t));
    }

    #[test]
    fn a_tile_past_two_to_the_64_is_out_of_range() {
        let t = TilePath::parse("0/x018/x446/x744/x073/x709/x551/615").unwrap();
        assert_eq!(t.span().unwrap_err().code(), "tile_out_of_range");
        assert!(!t.is_in_tree(u64::MAX));
    }

    #[test]
    fn the_tiles_of_a_tree_are_its_full_tiles_then_its_right_edge() {
        // 70,000 leaves: 273 full entry bundles and one of 112; level 1 (tree level 8)
        // has 273 nodes: one full hash tile and one of 17; level 2 has one node, so
        // a partial tile of width 1; level 3 none.
        let entries: Vec<_> = tiles_of(TileKind::Entries, 70_000).collect();
        assert_eq!(entries.len(), 274);
        assert_eq!(entries[273], TilePath::entries(273, 112).unwrap());
        let level1: Vec<_> = tiles_of(TileKind::Hashes { level: 1 }, 70_000).collect();
        assert_eq!(
            level1,
            [
                TilePath::hashes(1, 0, 256).unwrap(),
                TilePath::hashes(1, 1, 17).unwrap()
            ]
        );
        let level2: Vec<_> = tiles_of(TileKind::Hashes { level: 2 }, 70_000).collect();
        assert_eq!(level2, [TilePath::hashes(2, 0, 1).unwrap()]);
        assert_eq!(tiles_of(TileKind::Hashes { level: 3 }, 70_000).count(), 0);
        for tile in entries.iter().chain(&level1).chain(&level2) {
            assert!(tile.is_in_tree(70_000), "{tile:?}");
        }
        assert!(!TilePath::entries(273, 113).unwrap().is_in_tree(70_000));
    }

    #[test]
    fn a_bundle_entry_is_its_big_endian_length_then_its_bytes() {
        let mut bundle = Vec::new();
        encode_bundle_entry(&mut bundle, b"ab").unwrap();
        encode_bundle_entry(&mut bundle, &[7; 300]).unwrap();
        assert_eq!(&bundle[..4], &[0, 2, b'a', b'b']);
        assert_eq!(&bundle[4..6], &[1, 44]);
        assert_eq!(bundle.len(), 4 + 2 + 300);
        assert_eq!(
            encode_bundle_entry(&mut bundle, &vec![0; 65_536]),
            Err(TileError::EntryTooLarge { len: 65_536 })
        );
        assert_eq!(bundle.len(), 306, "nothing written");
    }
}
