//! What the mirror reads from its origin, over C2SP tlog-tiles (and, for the state
//! notes, our `GET /v1/state-notes/{size}`): the checkpoint, entry bundles as raw
//! bytes (kept byte for byte), level-0 hash tiles (to tell a fork from a bad bundle),
//! every body read under a cap.
//!
//! Each bundle's leaves are checked by the one leaf checker of both audits
//! ([`crate::log::leaf_check::check_leaves`]: canonical decoding, every signature,
//! the leaf hash), on all cores, while the next bundles are being downloaded.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use super::MirrorError;
use crate::http::listings::CheckpointPage;
use crate::http::tiles::{TileKind, TilePath, TILE_WIDTH};
use crate::limits::{CLIENT_CHECKPOINT_BYTES_MAX, CLIENT_JSON_BYTES_MAX, CLIENT_TILE_BYTES_MAX};
use crate::log::envelope::KeyCache;
use crate::log::hash::Hash;
use crate::log::leaf::Leaf;
use crate::log::leaf_check::check_leaves;
use crate::log::store::ImportedLeaf;

/// Bundles downloaded ahead of the one being verified.
const BUNDLES_AHEAD_MAX: usize = 64;

/// An origin log's read side, at a base URL.
pub struct OriginReader {
    base: String,
    http: reqwest::blocking::Client,
}

/// Leaves fetched and verified: bytes, decoded form and hash, in log order.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The leaves as the origin serves them, with their entry ids.
    pub leaves: Vec<ImportedLeaf>,
    /// The same leaves decoded, signatures verified.
    pub decoded: Vec<Leaf>,
    /// Their RFC 6962 leaf hashes.
    pub hashes: Vec<Hash>,
    /// Envelope signatures verified.
    pub signatures: u64,
}

impl OriginReader {
    /// A reader of the log served at `url`.
    ///
    /// # Errors
    /// [`MirrorError::Origin`] if the HTTP client cannot be built.
    pub fn new(url: &str) -> Result<OriginReader, MirrorError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(crate::limits::HEADER_SECONDS_MAX / 2))
            .build()
            .map_err(|e| origin(url, e))?;
        Ok(OriginReader {
            base: url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET path` (below the base URL), at most `max` bytes; `None` for a 404.
    pub(crate) fn get(&self, path: &str, max: usize) -> Result<Option<Vec<u8>>, MirrorError> {
        let url = format!("{}{path}", self.base);
        let response = self.http.get(&url).send().map_err(|e| origin(&url, e))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(origin(&url, format!("status {}", response.status())));
        }
        if response.content_length().is_some_and(|l| l > max as u64) {
            return Err(origin(&url, format!("more than {max} bytes")));
        }
        let mut body = Vec::new();
        response
            .take(max as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| origin(&url, e))?;
        if body.len() > max {
            return Err(origin(&url, format!("more than {max} bytes")));
        }
        Ok(Some(body))
    }

    fn get_required(&self, path: &str, max: usize) -> Result<Vec<u8>, MirrorError> {
        self.get(path, max)?
            .ok_or_else(|| origin(&format!("{}{path}", self.base), "404 Not Found"))
    }

    /// `GET /checkpoint`, unverified.
    ///
    /// # Errors
    /// Transport and status errors.
    pub fn checkpoint(&self) -> Result<Vec<u8>, MirrorError> {
        self.get_required("/checkpoint", CLIENT_CHECKPOINT_BYTES_MAX)
    }

    /// `GET /v1/log`'s operator key (trust on first use).
    ///
    /// # Errors
    /// Transport, status and decoding errors.
    pub fn operator_vkey(&self) -> Result<String, MirrorError> {
        let bytes = self.get_required("/v1/log", CLIENT_JSON_BYTES_MAX)?;
        let info: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| origin(&format!("{}/v1/log", self.base), e))?;
        info["operator_vkey"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| origin(&format!("{}/v1/log", self.base), "no operator_vkey"))
    }

    /// The origin's signed state note of `size`, unverified (`None` if it has none).
    ///
    /// # Errors
    /// Transport and status errors.
    pub fn state_note(&self, size: u64) -> Result<Option<String>, MirrorError> {
        let path = format!("/v1/state-notes/{size}");
        match self.get(&path, CLIENT_CHECKPOINT_BYTES_MAX)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| origin(&path, "the state note is not UTF-8")),
        }
    }

    /// The first of the origin's signed checkpoints of size `from` or more, unverified,
    /// from its listing (`GET /v1/checkpoints?from=`); `None` if the origin has no such
    /// listing (a static tree) or lists none there.
    ///
    /// # Errors
    /// Transport, status and decoding errors.
    pub fn checkpoint_from(&self, from: u64) -> Result<Option<Vec<u8>>, MirrorError> {
        let path = format!("/v1/checkpoints?from={from}");
        let Some(bytes) = self.get(&path, CLIENT_JSON_BYTES_MAX)? else {
            return Ok(None);
        };
        let page: CheckpointPage = serde_json::from_slice(&bytes)
            .map_err(|e| origin(&format!("{}{path}", self.base), e))?;
        Ok(page
            .checkpoints
            .into_iter()
            .next()
            .map(|row| row.checkpoint.into_bytes()))
    }

    fn tile(&self, kind: TileKind, index: u64, width: u64) -> Result<Vec<u8>, MirrorError> {
        let path = TilePath { kind, index, width }.to_path();
        self.get_required(&format!("/{path}"), CLIENT_TILE_BYTES_MAX)
    }

    /// The leaf hashes `[0, size)`, from the level-0 hash tiles.
    ///
    /// # Errors
    /// Transport and status errors; a tile of the wrong length.
    pub fn leaf_hashes(&self, size: u64) -> Result<Vec<Hash>, MirrorError> {
        let mut out = Vec::new();
        for tile in 0..size.div_ceil(TILE_WIDTH) {
            let width = (size - tile * TILE_WIDTH).min(TILE_WIDTH);
            let bytes = self.tile(TileKind::Hashes { level: 0 }, tile, width)?;
            if bytes.len() as u64 != width * 32 {
                return Err(MirrorError::Refused(format!(
                    "hash tile 0/{tile} holds {} bytes, not {}",
                    bytes.len(),
                    width * 32
                )));
            }
            out.extend(bytes.chunks_exact(32).map(|c| {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(c);
                Hash(hash)
            }));
        }
        Ok(out)
    }

    /// Leaves `[from, to)` from the entry bundles, each split into its entries, checked
    /// ([`check_leaves`]) and in place; bundles are downloaded on a thread of their own,
    /// ahead of the check.
    ///
    /// # Errors
    /// [`MirrorError::Refused`] for a bundle or a leaf that fails a check; transport.
    pub fn leaves(&self, from: u64, to: u64) -> Result<Fetched, MirrorError> {
        let keys = KeyCache::self_certifying();
        let mut fetched = Fetched::default();
        let (tx, rx) = mpsc::sync_channel(BUNDLES_AHEAD_MAX);
        std::thread::scope(|scope| {
            // `move`: the sender must drop when the downloads end, or `rx` never does.
            scope.spawn(move || {
                let mut tile = from / TILE_WIDTH;
                while tile * TILE_WIDTH < to {
                    let width = (to - tile * TILE_WIDTH).min(TILE_WIDTH);
                    let bundle = self.tile(TileKind::Entries, tile, width);
                    let stop = bundle.is_err();
                    if tx.send((tile, bundle)).is_err() || stop {
                        return;
                    }
                    tile += 1;
                }
            });
            for (tile, bundle) in rx {
                let entries = split_bundle(tile, &bundle?)?;
                let first = tile * TILE_WIDTH;
                let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
                let checked = check_leaves(&entries[skip.min(entries.len())..], &keys);
                for (offset, (bytes, checked)) in
                    entries.into_iter().skip(skip).zip(checked).enumerate()
                {
                    let index = first + (skip + offset) as u64;
                    let checked =
                        checked.map_err(|e| MirrorError::Refused(format!("entry {index}: {e}")))?;
                    if checked.leaf.index != index {
                        return Err(MirrorError::Refused(format!(
                            "entry {index} says it is entry {}",
                            checked.leaf.index
                        )));
                    }
                    fetched.signatures += checked.signatures() as u64;
                    fetched.hashes.push(checked.hash);
                    fetched.leaves.push(ImportedLeaf {
                        bytes,
                        entry_id: checked.leaf.envelope.entry_id(),
                    });
                    fetched.decoded.push(checked.leaf);
                }
            }
            Ok(())
        })?;
        if fetched.leaves.len() as u64 != to - from {
            return Err(MirrorError::Refused(format!(
                "{} entries served for [{from}, {to})",
                fetched.leaves.len()
            )));
        }
        Ok(fetched)
    }
}

/// "a sequence of big-endian uint16 length-prefixed log entries"
pub(crate) fn split_bundle(tile: u64, bundle: &[u8]) -> Result<Vec<Vec<u8>>, MirrorError> {
    let mut rest = bundle;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, body) = match rest {
            [hi, lo, body @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), body),
            _ => return Err(truncated(tile)),
        };
        let bytes = body.get(..len).ok_or_else(|| truncated(tile))?;
        out.push(bytes.to_vec());
        rest = &body[len..];
    }
    Ok(out)
}

fn truncated(tile: u64) -> MirrorError {
    MirrorError::Refused(format!("entry bundle {tile} is truncated"))
}

fn origin(url: &str, reason: impl std::fmt::Display) -> MirrorError {
    MirrorError::Origin {
        url: url.to_owned(),
        reason: reason.to_string(),
    }
}
