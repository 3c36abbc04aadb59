//! `lesson-ledger mirror --any-log`: a C2SP tlog-mirror of **any** C2SP tlog-tiles log
//! (<https://c2sp.org/tlog-mirror>), whose entries are opaque bytes: nothing of our
//! rules is replayed, so any producer's log can be mirrored (ours included).
//!
//! Each round ([`AnyMirror::follow_once`]), by pull as the ledger mirror does:
//! 1. `GET /checkpoint`, verified under the origin key pinned on the command line (a
//!    C2SP vkey; there is no trust on first use here), its other lines dropped, its
//!    origin line the pinned one (extension lines allowed, as tlog-checkpoint does);
//! 2. a checkpoint no larger than the mirror's must have the root of the mirror's own
//!    prefix of that size, else the origin signed two inconsistent trees: a fork;
//! 3. the new entry bundles (`tile/entries/N[.p/W]`), one at a time: each entry's RFC
//!    6962 leaf hash extends the mirror's tree ([`store`]); once the gap is read, the
//!    root must be the checkpoint's exactly. The origin's hash tiles and proofs are
//!    never trusted: they are read only to tell a fork (their leaves give the signed
//!    root and differ from the mirror's) from bundles that are not the log's;
//! 4. the store synced, the checkpoint cosigned by the mirror (`cosignature/v1`) and
//!    written durably: that write is the commit, served from then on ([`serve`]).
//!
//! A fork stops the mirror with both checkpoints kept ([`super::evidence`]): every later
//! round refuses; serving goes on. Memory is one bundle and the tree's upper levels,
//! whatever the gap.
//!
//! Directory: `any-log.json` (the origin and its pinned key), `entries`, `offsets`,
//! `tree/` ([`store`]), `checkpoint` (the latest cosigned), `evidence/`, `stopped.json`.

pub mod serve;
pub mod store;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::evidence::{self, write_durably};
use super::fetch::{split_bundle, OriginReader};
use super::{io, layout, MirrorConfig, MirrorError, Stopped};
use crate::limits::{CLIENT_CHECKPOINT_BYTES_MAX, CLIENT_TILE_BYTES_MAX};
use crate::log::compact::Frontier;
use crate::log::hash::Hash;
use crate::log::note::{checkpoint_head, cosign_note, Checkpoint, Note, NoteSigner, NoteVerifier};
use crate::log::tiles::{TileKind, TilePath, TILE_WIDTH};
use store::{AnyStore, StoreReader};

/// The any-log mirror's configuration file (a [`MirrorConfig`]); its name differs from
/// the ledger mirror's so that neither mode opens the other's directory.
pub const CONFIG: &str = "any-log.json";

/// The committed tree as served: its size and the cosigned checkpoint.
pub type Served = Arc<RwLock<Option<(u64, String)>>>;

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyFollowed {
    /// The mirror's size before the round.
    pub from: u64,
    /// The mirror's size after it.
    pub to: u64,
}

/// A mirror of any C2SP log, in its directory.
pub struct AnyMirror {
    dir: PathBuf,
    origin: String,
    operator: NoteVerifier,
    signer: NoteSigner,
    store: AnyStore,
    /// The checkpoint the mirror holds (operator line and the mirror's cosignature).
    held: Option<(Note, Checkpoint)>,
    served: Served,
}

/// A checkpoint note verified under `operator`, with only the operator's lines kept
/// (nothing unverified is stored or served), and the tree head it names.
fn verified(bytes: &[u8], operator: &NoteVerifier) -> Result<(Note, Checkpoint), MirrorError> {
    let note = Note::parse(bytes).map_err(MirrorError::Checkpoint)?;
    note.verify(operator).map_err(MirrorError::Checkpoint)?;
    let mut text = format!("{}\n", note.text());
    for line in note.signatures() {
        if line.name() == operator.name() && line.key_id() == operator.key_id() {
            text.push_str(&line.to_line());
        }
    }
    let note = Note::parse(text.as_bytes()).map_err(MirrorError::Checkpoint)?;
    let head = checkpoint_head(note.text()).map_err(MirrorError::Checkpoint)?;
    Ok((note, head))
}

impl AnyMirror {
    /// Opens (or creates) the mirror in `dir` of the log at `reader`, whose checkpoints
    /// must verify under `origin_key`; its store is cut back to its checkpoint.
    ///
    /// # Errors
    /// A key other than the pinned one; a ledger mirror's directory; the origin; I/O.
    pub fn open(
        dir: &Path,
        signer: NoteSigner,
        reader: &OriginReader,
        origin_key: &str,
    ) -> Result<AnyMirror, MirrorError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        if dir.join(layout::CONFIG).exists() {
            return Err(MirrorError::Config(format!(
                "{} is a ledger mirror's directory, not an any-log mirror's",
                dir.display()
            )));
        }
        let config = pinned(dir, reader, origin_key)?;
        let operator = NoteVerifier::from_vkey(&config.operator_vkey)
            .map_err(|e| MirrorError::Config(e.to_string()))?;
        let held = match fs::read(dir.join(layout::COSIGNED)) {
            Ok(bytes) => Some(verified(&bytes, &operator)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&dir.join(layout::COSIGNED))(e)),
        };
        let (size, root) = held
            .as_ref()
            .map_or((0, Hash::empty_root()), |(_, c)| (c.size, c.root));
        let store = AnyStore::open(dir, size, root)?;
        let served = held.as_ref().map(|(note, c)| (c.size, note.to_text()));
        Ok(AnyMirror {
            dir: dir.to_path_buf(),
            origin: config.origin,
            operator,
            signer,
            store,
            held,
            served: Arc::new(RwLock::new(served)),
        })
    }

    /// The origin line followed.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The mirror's cosigner key, for clients to trust.
    pub fn cosigner_vkey(&self) -> String {
        self.signer.cosigner_key().to_vkey()
    }

    /// The mirror's size (its cosigned checkpoint's).
    pub fn size(&self) -> u64 {
        self.held.as_ref().map_or(0, |(_, c)| c.size)
    }

    /// What the server serves: the committed size and cosigned checkpoint.
    pub fn served(&self) -> Served {
        Arc::clone(&self.served)
    }

    /// The store's read side, for the server.
    pub fn reader(&self) -> StoreReader {
        self.store.reader()
    }

    /// Why the mirror stopped, if it did.
    ///
    /// # Errors
    /// A `stopped.json` that cannot be read.
    pub fn stopped(&self) -> Result<Option<Stopped>, MirrorError> {
        evidence::read_stopped(&self.dir)
    }

    /// Follows the origin once (the module docs' steps).
    ///
    /// # Errors
    /// [`MirrorError::Stopped`] on a fork (now or earlier); [`MirrorError::Checkpoint`]
    /// for a checkpoint that does not verify; [`MirrorError::Refused`] for bundles that
    /// do not give its root; transport; I/O. On any error nothing is committed.
    pub fn follow_once(&mut self, reader: &OriginReader) -> Result<AnyFollowed, MirrorError> {
        if let Some(stopped) = self.stopped()? {
            return Err(MirrorError::Stopped(stopped));
        }
        let bytes = reader
            .get("/checkpoint", CLIENT_CHECKPOINT_BYTES_MAX)?
            .ok_or_else(|| MirrorError::Refused("the origin serves no checkpoint".into()))?;
        let (note, theirs) = verified(&bytes, &self.operator)?;
        if theirs.origin.as_str() != self.origin {
            return Err(MirrorError::OriginMismatch {
                found: theirs.origin.as_str().to_owned(),
                pinned: self.origin.clone(),
            });
        }
        let from = self.size();
        let followed = AnyFollowed { from, to: from };
        if theirs.size <= from && self.held.is_some() {
            if self.store.root_at(theirs.size)? != theirs.root {
                return Err(self.forked(&note, "its root is not the mirror's at that size"));
            }
            return Ok(followed);
        }
        if let Err(e) = self.extend(reader, from, (&note, &theirs)) {
            self.store.cut_back()?;
            return Err(e);
        }
        self.store.commit()?;
        self.cosign(note, theirs)?;
        Ok(AnyFollowed {
            from,
            to: self.size(),
        })
    }

    /// Reads the bundles of `[from, theirs.size)` into the store; their leaves must give
    /// `theirs.root`.
    fn extend(
        &mut self,
        reader: &OriginReader,
        from: u64,
        (note, theirs): (&Note, &Checkpoint),
    ) -> Result<(), MirrorError> {
        let to = theirs.size;
        let mut tile = from / TILE_WIDTH;
        while tile * TILE_WIDTH < to {
            let width = (to - tile * TILE_WIDTH).min(TILE_WIDTH);
            let bytes = fetch_tile(reader, TileKind::Entries, tile, width)?;
            let entries = split_bundle(tile, &bytes)?;
            if entries.len() as u64 != width {
                return Err(MirrorError::Refused(format!(
                    "entry bundle {tile} holds {} entries, not {width}",
                    entries.len()
                )));
            }
            let skip = usize::try_from(self.store.written() - tile * TILE_WIDTH)
                .map_err(|_| MirrorError::Refused("a bundle past the tree".into()))?;
            self.store.append(&entries[skip..])?;
            tile += 1;
        }
        if self.store.root() == theirs.root {
            return Ok(());
        }
        Err(self.diagnose(reader, from, note, theirs))
    }

    /// The bundles do not give the signed root: a fork if the origin's own level-0
    /// hash tiles give it and their prefix is not the mirror's tree; else the bundles
    /// are wrong (a refusal of this round only). Streamed, a tile at a time.
    fn diagnose(
        &self,
        reader: &OriginReader,
        from: u64,
        note: &Note,
        theirs: &Checkpoint,
    ) -> MirrorError {
        let wrong = || {
            MirrorError::Refused(format!(
                "the entry bundles do not give the root of the checkpoint of size {}",
                theirs.size
            ))
        };
        let Some((_, held)) = &self.held else {
            return wrong();
        };
        let mut frontier = Frontier::new();
        let mut prefix = (from == 0).then(Hash::empty_root);
        for tile in 0..theirs.size.div_ceil(TILE_WIDTH) {
            let width = (theirs.size - tile * TILE_WIDTH).min(TILE_WIDTH);
            let hashes = match fetch_tile(reader, TileKind::Hashes { level: 0 }, tile, width) {
                Ok(bytes) if bytes.len() as u64 == width * 32 => bytes,
                Ok(_) => return wrong(),
                Err(e) => return e,
            };
            for chunk in hashes.chunks_exact(32) {
                let Some(hash) = Hash::from_slice(chunk) else {
                    return wrong();
                };
                if frontier.push(hash, &mut Vec::new()).is_err() {
                    return wrong();
                }
                if frontier.size() == from {
                    prefix = Some(frontier.root());
                }
            }
        }
        if frontier.root() != theirs.root || prefix == Some(held.root) {
            return wrong();
        }
        self.forked(note, "its tree does not extend the mirror's")
    }

    /// Stops the mirror on a fork, keeping the checkpoint held and `theirs`.
    fn forked(&self, theirs: &Note, why: &str) -> MirrorError {
        let size = checkpoint_head(theirs.text()).map_or(0, |c| c.size);
        let theirs = theirs.to_text();
        let held_text = self
            .held
            .as_ref()
            .map(|(n, _)| n.to_text())
            .unwrap_or_default();
        let detail = format!(
            "the origin key signed a checkpoint of size {size} that is not consistent with the mirror's of size {}: {why}",
            self.size()
        );
        let notes = [
            ("the checkpoint the mirror holds", held_text.as_str()),
            ("the checkpoint the origin served", theirs.as_str()),
        ];
        match evidence::stop(&self.dir, "origin_forked", self.size(), detail, &notes) {
            Ok(stopped) => MirrorError::Stopped(stopped),
            Err(e) => e,
        }
    }

    /// Adds the mirror's cosignature, writes the checkpoint durably (the commit), then
    /// serves it.
    fn cosign(&mut self, mut note: Note, theirs: Checkpoint) -> Result<(), MirrorError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| MirrorError::Config("the clock is before 1970".into()))?
            .as_secs();
        let line = cosign_note(&note, &self.signer, now).map_err(MirrorError::Checkpoint)?;
        note.add_signature_lines(&line)
            .map_err(MirrorError::Checkpoint)?;
        let text = note.to_text();
        write_durably(&self.dir, layout::COSIGNED, text.as_bytes())?;
        *self.served.write().unwrap_or_else(|p| p.into_inner()) = Some((theirs.size, text));
        self.held = Some((note, theirs));
        Ok(())
    }
}

/// A tile of the origin, required, under the client's tile cap.
fn fetch_tile(
    reader: &OriginReader,
    kind: TileKind,
    index: u64,
    width: u64,
) -> Result<Vec<u8>, MirrorError> {
    let path = format!("/{}", TilePath { kind, index, width }.to_path());
    reader
        .get(&path, CLIENT_TILE_BYTES_MAX)?
        .ok_or_else(|| MirrorError::Origin {
            url: format!("{}{path}", reader.url()),
            reason: "404 Not Found".into(),
        })
}

/// `any-log.json`: written on first use from the origin's checkpoint (verified under
/// `origin_key`); later, the key must be the pinned one.
fn pinned(
    dir: &Path,
    reader: &OriginReader,
    origin_key: &str,
) -> Result<MirrorConfig, MirrorError> {
    let path = dir.join(CONFIG);
    if path.exists() {
        let bytes = fs::read(&path).map_err(io(&path))?;
        let config: MirrorConfig =
            serde_json::from_slice(&bytes).map_err(|e| MirrorError::Config(e.to_string()))?;
        if origin_key != config.operator_vkey {
            return Err(MirrorError::KeyMismatch {
                given: origin_key.to_owned(),
                pinned: config.operator_vkey,
            });
        }
        return Ok(config);
    }
    let operator =
        NoteVerifier::from_vkey(origin_key).map_err(|e| MirrorError::Config(e.to_string()))?;
    let bytes = reader
        .get("/checkpoint", CLIENT_CHECKPOINT_BYTES_MAX)?
        .ok_or_else(|| MirrorError::Refused("the origin serves no checkpoint".into()))?;
    let (_, head) = verified(&bytes, &operator)?;
    let config = MirrorConfig {
        origin: head.origin.as_str().to_owned(),
        operator_vkey: origin_key.to_owned(),
    };
    let json =
        serde_json::to_vec_pretty(&config).map_err(|e| MirrorError::Config(e.to_string()))?;
    write_durably(dir, CONFIG, &json)?;
    Ok(config)
}
