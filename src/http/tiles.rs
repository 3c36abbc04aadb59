//! The C2SP tlog-tiles read API (<https://c2sp.org/tlog-tiles>), so that existing tlog
//! clients and witnesses can read the log:
//!
//! - `GET /tile/<L>/<N>[.p/<W>]`: a Merkle tile. "The tile at level L and index N holds
//!   the hashes of the level-8L nodes [N·256, N·256 + W)" — 32 bytes each, 256 in a full
//!   tile, W (1..255) in a partial one. Level 8L is one of our per-level node files
//!   ([`crate::log::tree_file`]).
//! - `GET /tile/entries/<N>[.p/<W>]`: an entry bundle: leaves [N·256, N·256 + W), each
//!   "a big-endian uint16 length followed by the entry bytes" (our leaves are capped at
//!   [`crate::limits::LEAF_BYTES_MAX`] so the length always fits).
//!
//! `<N>` uses the spec's path encoding: "split into zero-padded 3-digit path elements,
//! all but the last prefixed with `x`" (1234067 → `x001/x234/067`). Only the canonical
//! encoding is accepted. A tile is served only if every node (or leaf) it holds is in
//! the current tree. Full tiles never change: `Cache-Control: public, max-age=31536000,
//! immutable`; partial tiles are the tree's growing right edge and are cached briefly.
//!
//! ```
//! use lesson_ledger::http::tiles::{TilePath, TileKind};
//! let t = TilePath::parse("0/x001/x234/067.p/8").unwrap();
//! assert_eq!((t.kind, t.index, t.width), (TileKind::Hashes { level: 0 }, 1_234_067, 8));
//! assert_eq!(t.to_path(), "tile/0/x001/x234/067.p/8");
//! assert!(TilePath::parse("0/x000/067").is_err(), "not canonical");
//! ```

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;
use crate::log::store::LogError;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
const TILE_HEIGHT: u32 = 8;
/// Highest tile level: level-8L nodes must exist in a tree of up to 2^63 leaves.
pub const TILE_LEVEL_MAX: u8 = 7;

/// `Cache-Control` of a full tile: it never changes.
pub const CACHE_FULL: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a partial tile: superseded as the tree grows.
pub const CACHE_PARTIAL: &str = "public, max-age=10";

/// Which kind of tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// Merkle hashes of tree level `8·level`.
    Hashes { level: u8 },
    /// An entry bundle (leaves).
    Entries,
}

/// A parsed, canonical tile path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    pub kind: TileKind,
    pub index: u64,
    /// 1..=256; 256 is a full tile.
    pub width: u64,
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("malformed_tile_path", detail)
}

/// Parses 3 ASCII digits.
fn three_digits(s: &str) -> Option<u64> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

impl TilePath {
    /// Parses what follows `tile/`.
    ///
    /// # Errors
    /// `malformed_tile_path` for anything but the canonical encoding.
    pub fn parse(rest: &str) -> Result<TilePath, ApiError> {
        let mut parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 2 {
            return Err(bad("a tile path is <L>/<N>[.p/<W>]"));
        }
        let kind = match parts[0] {
            "entries" => TileKind::Entries,
            l if l.len() == 1 && l.as_bytes()[0].is_ascii_digit() => {
                let level = l.as_bytes()[0] - b'0';
                if level > TILE_LEVEL_MAX {
                    return Err(bad(format!("tile level {level} is above {TILE_LEVEL_MAX}")));
                }
                TileKind::Hashes { level }
            }
            _ => return Err(bad("the tile level is a digit or `entries`")),
        };
        // "<N>.p/<W>": the last element is the width.
        let mut width = TILE_WIDTH;
        if parts.len() >= 3 && parts[parts.len() - 2].ends_with(".p") {
            let w = parts.pop().unwrap_or_default();
            // Decimal 1..=255, no leading zero.
            let ok = !w.is_empty() && !w.starts_with('0') && w.bytes().all(|b| b.is_ascii_digit());
            width = match w.parse::<u64>() {
                Ok(w) if ok && w < TILE_WIDTH => w,
                _ => return Err(bad("a partial width is 1..255")),
            };
            let last = parts.len() - 1;
            // Exactly one ".p": `001.p.p/1` is not canonical (found by fuzzing).
            if let Some(index) = parts[last].strip_suffix(".p") {
                parts[last] = index;
            }
        }
        let elements = &parts[1..];
        let mut index: u64 = 0;
        for (i, element) in elements.iter().enumerate() {
            let is_last = i + 1 == elements.len();
            let digits = if is_last {
                *element
            } else {
                element
                    .strip_prefix('x')
                    .ok_or_else(|| bad("all but the last index element start with x"))?
            };
            let group = three_digits(digits).ok_or_else(|| bad("index elements are 3 digits"))?;
            if i == 0 && group == 0 && !is_last {
                return Err(bad("the index has a leading zero element"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|n| n.checked_add(group))
                .ok_or_else(|| bad("the tile index is out of range"))?;
        }
        Ok(TilePath { kind, index, width })
    }

    /// The path, `tile/...`.
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
    /// `tile_out_of_range` (400) when they pass 2^64: no tree holds such a tile (the
    /// sum used to wrap, and a tile past the end was served empty and `immutable`).
    pub fn span(&self, path: &str) -> Result<(u64, u64), ApiError> {
        self.index
            .checked_mul(TILE_WIDTH)
            .and_then(|first| Some((first, first.checked_add(self.width)?)))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "tile_out_of_range",
                    format!("tile {path} would hold positions past 2^64; no tree has them"),
                )
            })
    }

    /// Whether this is a full tile.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }
}

fn not_in_tree(path: &str) -> ApiError {
    ApiError::NotFound {
        what: "tile",
        id: path.to_owned(),
    }
}

/// `GET /tile/{*path}`.
///
/// # Errors
/// `malformed_tile_path` (400); `not_found` (404) for a tile not (yet) in the tree.
pub async fn get_tile(
    State(app): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let tile = TilePath::parse(&rest)?;
    let (first, end) = tile.span(&rest)?;
    let body = app
        .read(move |ledger| {
            let log = ledger.log();
            let fault = |e: LogError| match e {
                LogError::OutOfRange { .. } => not_in_tree(&rest),
                other => ApiError::internal(other),
            };
            let mut body = Vec::new();
            match tile.kind {
                TileKind::Hashes { level } => {
                    let tree_level = u8::try_from(u32::from(level) * TILE_HEIGHT)
                        .map_err(|_| not_in_tree(&rest))?;
                    // Nodes of level 8L that are complete in the current tree.
                    let nodes = log.size() >> (u32::from(level) * TILE_HEIGHT);
                    if end > nodes {
                        return Err(not_in_tree(&rest));
                    }
                    body.reserve(32 * (end - first) as usize);
                    for i in first..end {
                        body.extend_from_slice(log.node(tree_level, i).map_err(fault)?.as_bytes());
                    }
                }
                TileKind::Entries => {
                    if end > log.size() {
                        return Err(not_in_tree(&rest));
                    }
                    for i in first..end {
                        let leaf = log.leaf_bytes(i).map_err(fault)?;
                        // Leaves are capped below 64 KiB when written.
                        let len = u16::try_from(leaf.len()).map_err(ApiError::internal)?;
                        body.extend_from_slice(&len.to_be_bytes());
                        body.extend_from_slice(&leaf);
                    }
                }
            }
            Ok(body)
        })
        .await?;
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if tile.is_full() {
            CACHE_FULL
        } else {
            CACHE_PARTIAL
        }),
    );
    Ok(response)
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
    }
}
