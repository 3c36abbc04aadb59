//! The C2SP tlog-tiles read API (<https://c2sp.org/tlog-tiles>), so that existing tlog
//! clients and witnesses can read the log:
//!
//! - `GET /tile/<L>/<N>[.p/<W>]`: a Merkle tile, the level-8L nodes [N·256, N·256 + W)
//!   (level 8L is one of our per-level node files, [`crate::log::tree_file`]).
//! - `GET /tile/entries/<N>[.p/<W>]`: an entry bundle, leaves [N·256, N·256 + W).
//!
//! The layout — paths, their canonical encoding, the arithmetic — is the log's
//! ([`crate::log::tiles`]); this module only reads the tree and maps a
//! [`TileError`] to its HTTP answer (400 with the error's code). A tile is served only if
//! every node (or leaf) it holds is in the current tree. Full tiles never change:
//! `Cache-Control: public, max-age=31536000, immutable`; partial tiles are the tree's
//! growing right edge and are cached briefly.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;
use crate::log::store::LogError;
use crate::log::tiles::encode_bundle_entry;
pub use crate::log::tiles::{TileError, TileKind, TilePath, TILE_LEVEL_MAX, TILE_WIDTH};

/// `Cache-Control` of a full tile: it never changes.
pub const CACHE_FULL: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a partial tile: superseded as the tree grows.
pub const CACHE_PARTIAL: &str = "public, max-age=10";

impl From<TileError> for ApiError {
    fn from(e: TileError) -> ApiError {
        ApiError::bad_request(e.code(), e.to_string())
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
/// `malformed_tile_path` (400); `tile_out_of_range` (400); `not_found` (404) for a tile
/// not (yet) in the tree.
pub async fn get_tile(
    State(app): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let tile = TilePath::parse(&rest)?;
    let (first, end) = tile.span()?;
    let body = app
        .read(move |ledger| {
            let log = ledger.log();
            if !tile.is_in_tree(log.size()) {
                return Err(not_in_tree(&rest));
            }
            let fault = |e: LogError| match e {
                LogError::OutOfRange { .. } => not_in_tree(&rest),
                other => ApiError::internal(other),
            };
            let mut body = Vec::new();
            match tile.kind {
                TileKind::Hashes { .. } => {
                    let tree_level =
                        u8::try_from(tile.kind.tree_level()).map_err(|_| not_in_tree(&rest))?;
                    body.reserve(32 * (end - first) as usize);
                    for i in first..end {
                        body.extend_from_slice(log.node(tree_level, i).map_err(fault)?.as_bytes());
                    }
                }
                TileKind::Entries => {
                    for i in first..end {
                        let leaf = log.leaf_bytes(i).map_err(fault)?;
                        // Leaves are capped below 64 KiB when written.
                        encode_bundle_entry(&mut body, &leaf).map_err(ApiError::internal)?;
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
