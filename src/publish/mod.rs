//! `lesson-ledger publish`: the log's read side written as static files (C2SP
//! tlog-tiles, <https://c2sp.org/tlog-tiles>) to a destination any web server or CDN
//! serves — a directory, or S3-compatible object storage — at the same paths and with
//! the same bytes as `serve` answers them:
//!
//! | object | path | written |
//! |---|---|---|
//! | hash tiles, full | `tile/<L>/<N>` | once; never changed |
//! | hash tiles, partial | `tile/<L>/<N>.p/<W>` | at each size published |
//! | entry bundles | `tile/entries/<N>[.p/<W>]` | as hash tiles |
//! | the operator's state note of each size published | `v1/state-notes/<size>` | once |
//! | the pool's totals, proven (`GET /v1/pool` at that size) | `v1/pool` | replaced |
//! | who the log is (`GET /v1/log` at that size) | `v1/log` | replaced |
//! | the signed checkpoint with its cosignatures | `checkpoint` | last, replaced |
//!
//! A publication goes from the size the destination's own checkpoint names to the size
//! of the source's checkpoint: it is incremental, and a run killed at any point is
//! finished by the next (objects are written whole; the checkpoint, written last, still
//! names the old size, so the next run starts from there). Before anything is written,
//! what is copied is checked against the signed checkpoint ([`verify`]): the tiles give
//! its root, and the root of the size published before, so a destination is never moved
//! to a checkpoint that does not extend the one it holds; a full tile or bundle already
//! there must be the one the tree holds. A reader therefore never sees a checkpoint
//! whose tiles are missing, and never a published history rewritten.

pub mod dest;
pub mod local;
pub mod plan;
#[cfg(feature = "s3")]
pub mod s3;
pub mod source;
pub mod verify;

// The tile-path encoding, from where it lives today (one import block, so a move of
// the encoding changes this line only).
pub use crate::log::tiles::{TileKind, TilePath, TILE_LEVEL_MAX, TILE_WIDTH};

use rayon::prelude::*;

use crate::api::PoolAnswer;
use crate::client::proofs::{state_root, BalanceError, ProvenObjects};
use crate::http::reads::LogInfo;
use crate::log::hash::Hash;
use crate::log::note::{Checkpoint, Note, NoteError, NoteVerifier, SignedCheckpoint};
use crate::log::state_note::{StateNote, StateNoteError};
use dest::Destination;
use source::{Body, HttpSource};
use verify::TileSet;

/// Why a publication stopped. Nothing is published past the point of the error, and
/// the destination's checkpoint still names what was published before.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Code `usage`: the command was given something it cannot use (a destination URL,
    /// `--data` or `--work`); the detail says what.
    #[error("{0}")]
    Usage(String),
    /// Code `source_unavailable`: a read from the source failed or was answered with an
    /// error.
    #[error("{url}: {reason}")]
    Source {
        /// The URL read.
        url: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// Code `source_malformed`: a JSON answer of the source does not parse.
    #[error("{what} from the source does not parse: {source}")]
    Decode {
        /// Which answer, by its path (`/v1/log`, `/v1/pool`).
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Code `checkpoint_unverified`: the source's checkpoint does not verify under the
    /// operator key.
    #[error("the source's checkpoint does not verify under the operator key: {0}")]
    Checkpoint(#[source] NoteError),
    /// Code `state_note_unverified`: the source's state note does not verify.
    #[error("the source's state note of size {size} does not verify: {source}")]
    StateNote {
        /// The checkpoint's tree size the note was asked for, in entries.
        size: u64,
        /// Why it does not verify.
        #[source]
        source: StateNoteError,
    },
    /// Code `state_note_unverified`: the source's state note verifies but is of another
    /// size or origin than the checkpoint's.
    #[error("the source's state note for size {size} is of size {got} and origin {origin:?}")]
    StateNoteMismatch {
        /// The checkpoint's tree size the note was asked for, in entries.
        size: u64,
        /// The size the note says, in entries.
        got: u64,
        /// The origin the note says.
        origin: String,
    },
    /// Code `pool_unverified`: the source's pool answer does not verify against the
    /// state note.
    #[error("the source's pool answer of size {size} does not verify: {source}")]
    Pool {
        /// The tree size published, in entries.
        size: u64,
        /// Why it does not verify.
        #[source]
        source: BalanceError,
    },
    /// Code `pool_unverified`: the source's pool answer carries another state note than
    /// the one of its size.
    #[error("the source's pool answer of size {size} carries another state note than the one of its size")]
    PoolNoteDiffers {
        /// The tree size published, in entries.
        size: u64,
    },
    /// Code `tile_mismatch`: a tile or entry bundle served is not what the tree holds
    /// (wrong length, or hashes that do not match).
    #[error("{path}: {why}")]
    Tile {
        /// The tile's path, e.g. `tile/0/001`.
        path: String,
        /// What is wrong with it, in words.
        why: String,
    },
    /// Code `root_mismatch`: the tiles served do not give the signed checkpoint's root.
    #[error("the tiles served do not give the root of the signed checkpoint of size {size}")]
    Root {
        /// The checkpoint's tree size, in entries.
        size: u64,
    },
    /// Code `history_rewritten`: the source's checkpoint does not extend the one the
    /// destination holds.
    #[error("the source's checkpoint of size {size} does not extend the one of size {published} published: history rewritten")]
    NotExtending {
        /// The tree size the destination holds, in entries.
        published: u64,
        /// The tree size of the source's checkpoint, in entries.
        size: u64,
    },
    /// Code `source_behind`: the source's checkpoint is smaller than what the
    /// destination holds.
    #[error("the source's checkpoint is of size {size}, below the {published} entries published")]
    SourceBehind {
        /// The tree size the destination holds, in entries.
        published: u64,
        /// The tree size of the source's checkpoint, in entries.
        size: u64,
    },
    /// Code `origin_changed`: the source's checkpoint names another log than the one
    /// the destination holds.
    #[error("the source's log is {served:?}, the destination holds {published:?}")]
    OriginChanged {
        /// The origin line of the destination's checkpoint.
        published: String,
        /// The origin line of the source's checkpoint.
        served: String,
    },
    /// Code `source_origin_mismatch`: the source's checkpoint names another log than the
    /// source's own `/v1/log` does.
    #[error("the source's checkpoint is of log {checkpoint:?}, its /v1/log names {log:?}")]
    SourceOriginMismatch {
        /// The origin the source's `/v1/log` names.
        log: String,
        /// The origin line of the source's checkpoint.
        checkpoint: String,
    },
    /// Code `immutable_object_differs`: a full tile or bundle already at the destination
    /// has other bytes than the tree holds; it is never overwritten.
    #[error("{path} is published already, with other bytes than the tree holds")]
    ImmutableDiffers {
        /// The object's path at the destination.
        path: String,
    },
    /// Code `destination_io`: reading or writing the destination failed.
    #[error("{url}: {source}")]
    Destination {
        /// The destination object, as a URL.
        url: String,
        /// The error of the file system or object store.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Code `published_checkpoint_malformed`: the checkpoint at the destination does not
    /// parse.
    #[error("the destination's checkpoint does not parse: {0}")]
    Published(#[source] NoteError),
    /// Code `data_unreadable`: publishing from `--data`, the ledger directory or the
    /// publisher's work copy of it could not be read, copied or served.
    #[error("{path}: {source}")]
    Local {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PublishError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Usage(_) => "usage",
            PublishError::Source { .. } => "source_unavailable",
            PublishError::Decode { .. } => "source_malformed",
            PublishError::Checkpoint(_) => "checkpoint_unverified",
            PublishError::StateNote { .. } | PublishError::StateNoteMismatch { .. } => {
                "state_note_unverified"
            }
            PublishError::Pool { .. } | PublishError::PoolNoteDiffers { .. } => "pool_unverified",
            PublishError::Tile { .. } => "tile_mismatch",
            PublishError::Root { .. } => "root_mismatch",
            PublishError::NotExtending { .. } => "history_rewritten",
            PublishError::SourceBehind { .. } => "source_behind",
            PublishError::OriginChanged { .. } => "origin_changed",
            PublishError::SourceOriginMismatch { .. } => "source_origin_mismatch",
            PublishError::ImmutableDiffers { .. } => "immutable_object_differs",
            PublishError::Destination { .. } => "destination_io",
            PublishError::Published(_) => "published_checkpoint_malformed",
            PublishError::Local { .. } => "data_unreadable",
        }
    }
}

/// What one publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The size published before.
    pub from: u64,
    /// The size published now.
    pub size: u64,
    /// Objects written (tiles, bundles, documents, the checkpoint).
    pub objects: u64,
}

/// The checkpoint a destination holds: its own, written by an earlier publication
/// after checking it (its signature is not checked again here: the operator's key may
/// have changed since; what matters is its size and root, which the next checkpoint
/// must extend, and readers check every signature).
struct Held {
    checkpoint: Checkpoint,
    text: Vec<u8>,
}

fn held(dest: &dyn Destination) -> Result<Option<Held>, PublishError> {
    let Some(text) = dest.get("checkpoint")? else {
        return Ok(None);
    };
    let checkpoint = Note::parse(&text)
        .and_then(|note| Checkpoint::from_body(note.text()))
        .map_err(PublishError::Published)?;
    Ok(Some(Held { checkpoint, text }))
}

/// A publisher: one source, one destination.
pub struct Publisher {
    source: HttpSource,
    dest: Box<dyn Destination>,
    /// The operator key the source's checkpoints must verify under; `None`: the one
    /// the source announces at `/v1/log`.
    operator: Option<NoteVerifier>,
}

/// What the source serves now, checked.
struct Served {
    checkpoint: SignedCheckpoint,
    text: Vec<u8>,
    info: LogInfo,
    operator: NoteVerifier,
    /// `GET /v1/pool` as served, and decoded: its checkpoint is `text` (none before the
    /// first entry, when the source has no pool yet).
    pool: Option<(Vec<u8>, PoolAnswer)>,
}

impl Publisher {
    /// A publisher from `source` to `dest`.
    pub fn new(
        source: HttpSource,
        dest: Box<dyn Destination>,
        operator: Option<NoteVerifier>,
    ) -> Publisher {
        Publisher {
            source,
            dest,
            operator,
        }
    }

    /// The destination's URL.
    pub fn destination(&self) -> String {
        self.dest.url()
    }

    /// Reads from `source` from now on (the destination, and so what was published,
    /// stays; the next publication must extend it as always).
    pub fn set_source(&mut self, source: HttpSource) {
        self.source = source;
    }

    /// Publishes the source's current checkpoint and everything it commits to that the
    /// destination does not hold yet.
    ///
    /// # Errors
    /// Any [`PublishError`]; what was written before it is complete objects the next
    /// run keeps, and the destination's checkpoint is unchanged.
    pub fn publish_once(&self) -> Result<Published, PublishError> {
        let served = self.served()?;
        let (size, root) = (
            served.checkpoint.checkpoint().size,
            served.checkpoint.checkpoint().root,
        );
        let held = held(self.dest.as_ref())?;
        let from = match &held {
            None => 0,
            Some(h) => {
                check_extends(&h.checkpoint, served.checkpoint.checkpoint())?;
                if h.text == served.text {
                    return Ok(Published {
                        from: size,
                        size,
                        objects: 0,
                    });
                }
                h.checkpoint.size
            }
        };
        let mut objects = 0;
        if size > from {
            let tiles = self.fetch_hash_tiles(from, size, root, held.as_ref())?;
            objects += self.write_bundles(from, size, &tiles)?;
            objects += self.write_hash_tiles(from, size, tiles)?;
        }
        objects += self.write_documents(&served)?;
        // Everything the checkpoint commits to is durable before the checkpoint is named.
        self.dest.sync()?;
        self.dest.put("checkpoint", &served.text)?;
        self.dest.sync()?;
        Ok(Published {
            from,
            size,
            objects: objects + 1,
        })
    }

    /// The source's checkpoint, verified, its log information and its pool answer.
    fn served(&self) -> Result<Served, PublishError> {
        // The checkpoint first: `/v1/log` is read after it, so it is of a size at
        // least the checkpoint's and names the genesis once there is one.
        let mut text = self.source.get_required("checkpoint", Body::Note)?;
        let info_bytes = self.source.get_required("v1/log", Body::Json)?;
        let info: LogInfo =
            serde_json::from_slice(&info_bytes).map_err(|source| PublishError::Decode {
                what: "/v1/log",
                source,
            })?;
        let operator = match &self.operator {
            Some(pinned) => pinned.clone(),
            None => {
                NoteVerifier::from_vkey(&info.operator_vkey).map_err(PublishError::Checkpoint)?
            }
        };
        let mut checkpoint = SignedCheckpoint::parse_and_verify(&text, &operator)
            .map_err(PublishError::Checkpoint)?;
        // The pool answer names the checkpoint it is proven against, and a writing
        // source may have moved since: that checkpoint is the one published, so the
        // pool, the state note and the checkpoint published are of one size.
        let pool = if checkpoint.checkpoint().size > 0 {
            let bytes = self.source.get_required("v1/pool", Body::Json)?;
            let answer: PoolAnswer =
                serde_json::from_slice(&bytes).map_err(|source| PublishError::Decode {
                    what: "/v1/pool",
                    source,
                })?;
            text = answer.checkpoint.as_bytes().to_vec();
            checkpoint = SignedCheckpoint::parse_and_verify(&text, &operator)
                .map_err(PublishError::Checkpoint)?;
            Some((bytes, answer))
        } else {
            None
        };
        if checkpoint.checkpoint().origin.as_str() != info.origin {
            return Err(PublishError::SourceOriginMismatch {
                log: info.origin,
                checkpoint: checkpoint.checkpoint().origin.to_string(),
            });
        }
        Ok(Served {
            checkpoint,
            text,
            info,
            operator,
            pool,
        })
    }

    /// Fetches the hash tiles from `from` to `size` and checks them: full tiles against
    /// their parents, the root of `size` against the signed one, and the root of `from`
    /// against the checkpoint published before.
    fn fetch_hash_tiles(
        &self,
        from: u64,
        size: u64,
        root: Hash,
        held: Option<&Held>,
    ) -> Result<TileSet, PublishError> {
        let fetched = plan::hash_tiles(from, size)
            .into_par_iter()
            .map(|tile| {
                let bytes = self.source.get_required(&tile.to_path(), Body::Tile)?;
                Ok((tile, bytes))
            })
            .collect::<Result<Vec<_>, PublishError>>()?;
        let mut tiles = TileSet::default();
        for (tile, bytes) in fetched {
            tiles.insert(&tile, bytes)?;
        }
        tiles.check_full_tiles()?;
        if tiles.root(size) != Some(root) {
            return Err(PublishError::Root { size });
        }
        if let Some(held) = held {
            if tiles.root(from) != Some(held.checkpoint.root) {
                return Err(PublishError::NotExtending {
                    published: from,
                    size,
                });
            }
        }
        Ok(tiles)
    }

    /// Writes the hash tiles: a full tile already there must be the same bytes.
    fn write_hash_tiles(&self, from: u64, size: u64, tiles: TileSet) -> Result<u64, PublishError> {
        let written = plan::hash_tiles(from, size)
            .into_par_iter()
            .map(|tile| {
                let bytes = tiles.bytes(&tile);
                let path = tile.to_path();
                if tile.is_full() {
                    if let Some(there) = self.dest.get(&path)? {
                        return if there == bytes {
                            Ok(0)
                        } else {
                            Err(PublishError::ImmutableDiffers { path })
                        };
                    }
                }
                self.dest.put(&path, bytes)?;
                Ok(1)
            })
            .collect::<Result<Vec<u64>, PublishError>>()?;
        Ok(written.iter().sum())
    }

    /// Fetches, checks and writes the entry bundles; a full bundle already there is
    /// checked against the tree and kept.
    fn write_bundles(&self, from: u64, size: u64, tiles: &TileSet) -> Result<u64, PublishError> {
        let written = plan::entry_bundles(from, size)
            .into_par_iter()
            .map(|bundle| {
                let path = bundle.to_path();
                if bundle.is_full() {
                    if let Some(there) = self.dest.get(&path)? {
                        return match tiles.check_bundle(&bundle, &there) {
                            Ok(()) => Ok(0),
                            Err(_) => Err(PublishError::ImmutableDiffers { path }),
                        };
                    }
                }
                let bytes = self.source.get_required(&path, Body::Tile)?;
                tiles.check_bundle(&bundle, &bytes)?;
                self.dest.put(&path, &bytes)?;
                Ok(1)
            })
            .collect::<Result<Vec<u64>, PublishError>>()?;
        Ok(written.iter().sum())
    }

    /// The state note of the checkpoint's size and the pool proven against it (both
    /// checked), and `v1/log` at that size.
    fn write_documents(&self, served: &Served) -> Result<u64, PublishError> {
        let cp = served.checkpoint.checkpoint();
        let mut written = 0;
        if let Some((pool_bytes, pool)) = &served.pool {
            let path = format!("v1/state-notes/{}", cp.size);
            let bytes = self.source.get_required(&path, Body::Note)?;
            let note = StateNote::parse_and_verify(&bytes, &served.operator).map_err(|source| {
                PublishError::StateNote {
                    size: cp.size,
                    source,
                }
            })?;
            if note.size != cp.size || note.origin != cp.origin.as_str() {
                return Err(PublishError::StateNoteMismatch {
                    size: cp.size,
                    got: note.size,
                    origin: note.origin,
                });
            }
            check_pool(pool, &bytes, &served.checkpoint, &served.operator)?;
            self.dest.put(&path, &bytes)?;
            self.dest.put("v1/pool", pool_bytes)?;
            written += 2;
        }
        // `GET /v1/log` as `serve` answers it at this size (axum's `Json` writes
        // `serde_json`'s compact form; the genesis is kept as the raw text served).
        let info = LogInfo {
            origin: served.info.origin.clone(),
            operator_vkey: served.info.operator_vkey.clone(),
            leaf_version: served.info.leaf_version,
            size: cp.size,
            genesis: served.info.genesis.clone(),
        };
        let bytes = serde_json::to_vec(&info).map_err(|source| PublishError::Decode {
            what: "/v1/log",
            source,
        })?;
        self.dest.put("v1/log", &bytes)?;
        Ok(written + 1)
    }
}

/// Runs `publish_once`, then again every `interval`, until `rounds` publications
/// (forever if `None`); tells `report` what each one did. A round that found nothing
/// new waits `interval` before the next.
///
/// # Errors
/// The first [`PublishError`].
pub fn follow(
    publish_once: &mut dyn FnMut() -> Result<Published, PublishError>,
    interval: std::time::Duration,
    rounds: Option<u64>,
    report: &mut dyn FnMut(&Published),
) -> Result<(), PublishError> {
    let mut done = 0u64;
    loop {
        let published = publish_once()?;
        report(&published);
        done += 1;
        if rounds.is_some_and(|r| done >= r) {
            return Ok(());
        }
        if published.size == published.from {
            std::thread::sleep(interval);
        }
    }
}

/// Checks the pool answer as a reader will: its state note is the one of its size
/// (`note`, already checked) and the pool's proof verifies against its root.
fn check_pool(
    pool: &PoolAnswer,
    note: &[u8],
    cp: &SignedCheckpoint,
    operator: &NoteVerifier,
) -> Result<(), PublishError> {
    let size = cp.checkpoint().size;
    if pool.state_note.as_bytes() != note {
        return Err(PublishError::PoolNoteDiffers { size });
    }
    state_root(&pool.state_note, cp, operator)
        .and_then(|root| pool.check_objects("", &root))
        .map_err(|source| PublishError::Pool { size, source })
}

/// A served checkpoint may replace the one held only if it is of the same log and not
/// smaller, and at the same size only with the same root (its cosignatures may differ).
fn check_extends(held: &Checkpoint, served: &Checkpoint) -> Result<(), PublishError> {
    if held.origin != served.origin {
        return Err(PublishError::OriginChanged {
            published: held.origin.to_string(),
            served: served.origin.to_string(),
        });
    }
    if served.size < held.size {
        return Err(PublishError::SourceBehind {
            published: held.size,
            size: served.size,
        });
    }
    if served.size == held.size && served.root != held.root {
        return Err(PublishError::NotExtending {
            published: held.size,
            size: served.size,
        });
    }
    Ok(())
}
