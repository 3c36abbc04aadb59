//! The client's reads beyond balances: entries (one, or a range from the tlog-tiles
//! entry bundles); the one association write, `POST /v1/cosign`; and the operator's
//! `POST /v1/match`. (The pool's totals and a closed institution's report are proven
//! answers: [`Client::pool`], [`Client::institution_report`].)
//!
//! What can be checked is: an entry bundle's leaves must decode and carry the indexes
//! of the tile they are served in, and their hashes are returned for the caller to
//! prove (the remote audit rebuilds the tree from them).
//!
//! ```no_run
//! use lesson_ledger::client::{Client, Trust};
//! let client = Client::new("http://127.0.0.1:8080").unwrap();
//! let trust = Trust::operator_only(client.operator(None).unwrap());
//! let pool = client.pool(&trust).unwrap();
//! let last = client.entries(0, 3).unwrap();
//! println!("{} fen pledged; genesis at {}", pool.pledged.0, last[0].time_micros);
//! ```

use super::{failed, Client, ClientError};
use crate::http::cosign::{CosignRequest, CosignResponse};
use crate::http::entries::EntryView;
use crate::http::tiles::{TileKind, TilePath, TILE_WIDTH};
use crate::log::hash::{leaf_hash, Hash};
use crate::log::leaf::Leaf;

/// Most entries [`Client::entries`] reserves room for before reading any.
const ENTRIES_HINT_MAX: u64 = 64 * 1024;

/// A leaf as an entry bundle serves it, with the RFC 6962 hash of its bytes.
#[derive(Debug, Clone)]
pub struct BundledLeaf {
    /// The leaf decoded (checked to carry the index it was served at).
    pub leaf: Leaf,
    /// The RFC 6962 leaf hash of its bytes as served.
    pub hash: Hash,
}

impl Client {
    /// `GET /tile/entries/<tile>[.p/<width>]`: leaves `[tile·256, tile·256 + width)`,
    /// each decoded and checked to carry its index.
    ///
    /// # Errors
    /// [`ClientError::Verification`] for a truncated bundle, an undecodable leaf, a leaf
    /// out of place or a wrong count; transport and status errors.
    pub fn entry_bundle(&self, tile: u64, width: u64) -> Result<Vec<BundledLeaf>, ClientError> {
        let path = TilePath {
            kind: TileKind::Entries,
            index: tile,
            width,
        }
        .to_path();
        let bundle = self.get_bytes(&format!("/{path}"), crate::limits::CLIENT_TILE_BYTES_MAX)?;
        let mut rest = &bundle[..];
        let mut out = Vec::with_capacity(usize::try_from(width).unwrap_or(0));
        let mut index = tile * TILE_WIDTH;
        while !rest.is_empty() {
            // "a big-endian uint16 length followed by the entry bytes"
            let (len, body) = match rest {
                [hi, lo, body @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), body),
                _ => return Err(failed(format!("{path}: truncated entry bundle"))),
            };
            let bytes = body
                .get(..len)
                .ok_or_else(|| failed(format!("{path}: truncated entry bundle")))?;
            let leaf = Leaf::decode(bytes).map_err(|e| failed(format!("entry {index}: {e}")))?;
            if leaf.index != index {
                return Err(failed(format!(
                    "entry {index} says it is entry {}",
                    leaf.index
                )));
            }
            out.push(BundledLeaf {
                hash: leaf_hash(bytes),
                leaf,
            });
            index += 1;
            rest = &body[len..];
        }
        if out.len() as u64 != width {
            return Err(failed(format!(
                "{path}: {} entries, not {width}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Leaves `[from, to)`, read from the entry bundles that hold them (`to` must not
    /// pass the current tree size).
    ///
    /// # Errors
    /// As [`Client::entry_bundle`].
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<Leaf>, ClientError> {
        // A hint only, bounded: `to` is the caller's, and a huge one must not reserve
        // memory before the server has sent anything.
        let hint = to.saturating_sub(from).min(ENTRIES_HINT_MAX);
        let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        let mut tile = from / TILE_WIDTH;
        while tile * TILE_WIDTH < to {
            let width = (to - tile * TILE_WIDTH).min(TILE_WIDTH);
            out.extend(
                self.entry_bundle(tile, width)?
                    .into_iter()
                    .map(|b| b.leaf)
                    .filter(|l| l.index >= from),
            );
            tile += 1;
        }
        Ok(out)
    }

    /// `GET /v1/entries/{index}`: where, when (the ledger time the server stamped) and
    /// what.
    ///
    /// # Errors
    /// Transport, status (`entry_not_found` past the end) and decoding errors.
    pub fn entry(&self, index: u64) -> Result<EntryView, ClientError> {
        self.get_json(&format!("/v1/entries/{index}"))
    }

    /// `POST /v1/cosign`: an association's cosignature line on the checkpoint of `size`;
    /// answers the checkpoint with every cosignature collected.
    ///
    /// # Errors
    /// Status errors (`checkpoint_superseded`, `bad_cosignature`, …); transport.
    pub fn cosign(&self, request: &CosignRequest) -> Result<CosignResponse, ClientError> {
        self.post_json("/v1/cosign", request, None, None)
    }

    /// `POST /v1/match` (`Authorization: Bearer <token>`, the contents of the ledger
    /// directory's `operator.token`): the operator runs the matcher on the server's
    /// state; unless `dry_run`, its allocations are appended.
    ///
    /// # Errors
    /// Status errors (401 for a wrong token); transport and decoding errors.
    pub fn run_match(&self, token: &str, dry_run: bool) -> Result<MatchAnswer, ClientError> {
        self.post_json(
            "/v1/match",
            &serde_json::json!({ "dry_run": dry_run }),
            Some(token.trim()),
            // As long as the server lets a run take: minutes at city scale.
            Some(std::time::Duration::from_secs(
                crate::limits::MATCH_RUN_SECONDS_MAX,
            )),
        )
    }
}

/// The answer of `POST /v1/match` (the fields a client uses; see
/// [`crate::http::match_run`] for all of them).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MatchAnswer {
    /// The run id (`None` for a dry run).
    pub run: Option<String>,
    /// Allocations recorded (0 for a dry run).
    pub allocations: u64,
    /// Index of the run's `match_run` entry, its allocations after it (`None` for a dry run).
    pub first_index: Option<u64>,
    /// The matcher's figures: `matched_fen`, `bound_fen`, `ratio_ppm`, …
    pub report: serde_json::Value,
}
