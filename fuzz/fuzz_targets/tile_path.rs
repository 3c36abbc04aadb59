//! The C2SP tlog-tiles path parser behind `GET /tile/{*path}` (`TilePath::parse`).
//!
//! Never panics; only the canonical encoding is accepted, so a parsed path prints back
//! as exactly its input and parses again to the same tile. (Whether the tile's range
//! fits in the tree is the handler's arithmetic, not the parser's.)
#![no_main]

use lesson_ledger::log::tiles::{TilePath, TILE_WIDTH};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rest) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tile) = TilePath::parse(rest) else {
        return;
    };
    assert_eq!(
        tile.to_path(),
        format!("tile/{rest}"),
        "only canonical paths parse"
    );
    assert!((1..=TILE_WIDTH).contains(&tile.width));
    assert_eq!(
        TilePath::parse(&tile.to_path()["tile/".len()..]).ok(),
        Some(tile)
    );
});
