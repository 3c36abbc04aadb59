//! The live state: every object in memory (kept encoded, decoded on read: see
//! `tables`), persisted in sled as a snapshot plus one delta per batch, next to the log
//! it derives from.
//!
//! Why not one sled key per object: a sled insert costs ~15 µs, and a lesson writes five
//! to seven objects, which alone more than doubled the writer's time per entry. Here the
//! rules read and write memory, and a batch costs sled one write, its delta (in the
//! ledger, one delta every few thousand entries: [`SledState::persist_every`]).
//!
//! Layout of the sled tree `state`:
//! - `\0head`: [`HEAD_MAGIC`], the log size the state reflects (u64 BE), the state map
//!   root ([`super::state_map`], 32 bytes), and the snapshot it starts from:
//!   generation (u64 BE), the log size it reflects (u64 BE), its chunk count (u32 BE);
//!   then the number of objects in each table (u64 BE each, in `Table::ALL`'s order);
//! - `\x01` gen (u64 BE) chunk (u32 BE): a snapshot chunk, postcard of `Vec<(Key, Value)>`;
//! - `\x02` size (u64 BE) part (u32 BE): part of the delta of the batch that brought the
//!   state to `size` entries, postcard of `Vec<(Key, Value)>` (each object as the batch
//!   left it).
//!
//! Every value is kept under [`VALUE_BYTES_MAX`] (chunks and delta parts are cut by
//! size, not by count): sled 0.34 stores a tree node over ~128 KiB in a file of its own
//! under `blobs/` and removes a replaced one only when its log segment is retired, a
//! removal that a kill loses — the old snapshots and deltas of every killed run then
//! stayed on disk (2.2 GB beside a 360 MB `log.dat` after 200 restarts).
//!
//! A batch's delta and the new head are one atomic `apply_batch`: the head never claims
//! more than the deltas hold. The log file is written first; if the process dies before
//! the state (or sled had not flushed), the head is behind and
//! [`super::writer::Ledger::open`] replays the missing entries through the same rules.
//! When the deltas since the last snapshot outgrow it, a new snapshot is written and the
//! head moved to it, with the old chunks and deltas removed, again in one batch. sled is
//! never the source of truth: a missing or unreadable head means "start from nothing".
//!
//! During a batch, accepted entries' changes collect in an overlay that later entries of
//! the same batch read through; the state map is updated once per distinct object at
//! the batch's end (the pool totals change with every entry, but are hashed once per
//! batch), and its root goes into the head with the delta. On open the map is rebuilt
//! from the objects and must give the head's root, else the state is damaged and is
//! rebuilt from the log; or, after a clean close, the map sealed then is reused
//! (`open`). The ledger keeps the map's nodes in files of its data directory
//! ([`Nodes::InDir`], a cache: see [`super::state_map`]); [`SledState::open`] alone keeps
//! them on the heap.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{Changes, Key, StateView, Table, Value};
use super::state_map::{self, ArenaError, Change, Nodes, SealError, StateMap, StateProof};

mod layout;
mod open;
mod parts;
mod tables;

#[cfg(test)]
use layout::DELTA_TAG;
pub use layout::HEAD_MAGIC;
pub use layout::VALUE_BYTES_MAX;
use layout::{chunk_key, delta_key, Head, Snapshot, CHUNK_TAG};
use tables::{Stored, Tables};

/// The sled tree holding the state.
pub const STATE_TREE: &str = "state";
const HEAD_KEY: &[u8] = b"\0head";
/// No snapshot is written before the deltas reach this size (bytes).
const SNAPSHOT_DELTAS_BYTES_MIN: u64 = 64 << 20;

/// Why the sled state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    /// Code `state_unavailable`: sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// Code `state_corrupt`: a stored state record does not decode, or is missing or
    /// inconsistent.
    #[error("state record {key} does not decode: {reason}")]
    Corrupt {
        /// Which record, in words (e.g. `snapshot chunk 3`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Code `state_map_unavailable`: the state map's node files could not be made or
    /// grown (a full disk, say).
    #[error("state map nodes: {0}")]
    MapNodes(#[from] ArenaError),
}

impl StateStoreError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            StateStoreError::Sled(_) => "state_unavailable",
            StateStoreError::Corrupt { .. } => "state_corrupt",
            StateStoreError::MapNodes(_) => "state_map_unavailable",
        }
    }
}

fn corrupt(key: impl Into<String>, reason: impl std::fmt::Display) -> StateStoreError {
    StateStoreError::Corrupt {
        key: key.into(),
        reason: reason.to_string(),
    }
}

/// A batch worked out ahead of its commit.
struct Prepared {
    root: [u8; 32],
    /// The root before the batch: what readers are shown until the commit.
    committed_root: [u8; 32],
    undo: Vec<Change>,
}

/// The state, in memory and in sled, with the overlay of a batch in progress.
pub struct SledState {
    tree: sled::Tree,
    tables: Tables,
    /// The map of the committed objects; during a prepared batch, of the batch's too
    /// (`prepared` holds what undoes it).
    map: StateMap,
    size: u64,
    snapshot: Snapshot,
    /// Bytes of the deltas written since the snapshot.
    deltas_bytes: u64,
    /// Bytes of the snapshot.
    snapshot_bytes: u64,
    /// The stored records are not this state's (no head, or another layout): cleared at
    /// the first commit, so that opening never writes (an auditor opens to compare).
    stale_records: bool,
    overlay: BTreeMap<Key, Value>,
    /// The overlay's effect, worked out ahead of the commit: the new root and the
    /// changes that take the map back to the committed objects.
    prepared: Option<Prepared>,
    /// See [`SledState::persist_every`].
    persist_every: u64,
    /// The log size sled's head names.
    persisted_size: u64,
    /// Keys committed since sled's head: the next delta writes their objects.
    unpersisted: BTreeSet<Key>,
    /// The open reused the map that the last clean close sealed.
    map_reused: bool,
}

impl SledState {
    /// Opens the state in `db`, its map's nodes on the heap: [`SledState::open_with`]
    /// with [`Nodes::Heap`] (for a reader that compares, or tests).
    ///
    /// # Errors
    /// As [`SledState::open_with`].
    pub fn open(db: &sled::Db) -> Result<SledState, StateStoreError> {
        SledState::open_with(db, Nodes::Heap)
    }

    /// Writes the state map's node files to disk and seals them for the next open
    /// ([`StateMap::seal`]): at a clean close, after [`SledState::persist`], so that
    /// sled's head names the state they hold.
    ///
    /// # Errors
    /// A batch is prepared, or the state is not persisted; as [`StateMap::seal`].
    pub fn seal_map(&self) -> Result<(), SealError> {
        if self.prepared.is_some() || self.persisted_size != self.size {
            return Err(SealError::NotPersisted {
                size: self.size,
                head: self.persisted_size,
            });
        }
        self.map.seal(self.size)
    }

    /// An empty state over `db`, its map's nodes on the heap: [`SledState::empty_with`]
    /// with [`Nodes::Heap`].
    ///
    /// # Errors
    /// As [`SledState::empty_with`].
    pub fn empty(db: &sled::Db) -> Result<SledState, StateStoreError> {
        SledState::empty_with(db, Nodes::Heap)
    }

    /// An empty state over `db`, whatever it stores: the stored records are cleared at
    /// the first commit. For a state that [`SledState::open_with`] found damaged: it is
    /// derived, so the writer rebuilds it from the log.
    ///
    /// # Errors
    /// sled faults; node files that cannot be made.
    pub fn empty_with(db: &sled::Db, nodes: Nodes) -> Result<SledState, StateStoreError> {
        let tree = db.open_tree(STATE_TREE)?;
        let map = StateMap::empty_at(&nodes)?;
        Ok(SledState::over(tree, map))
    }

    /// The empty state over `tree`, with `map` (to be filled by the caller).
    fn over(tree: sled::Tree, map: StateMap) -> SledState {
        SledState {
            stale_records: !tree.is_empty(),
            tree,
            tables: Tables::default(),
            map,
            size: 0,
            snapshot: Snapshot::default(),
            deltas_bytes: 0,
            snapshot_bytes: 0,
            overlay: BTreeMap::new(),
            prepared: None,
            persist_every: 0,
            persisted_size: 0,
            unpersisted: BTreeSet::new(),
            map_reused: false,
        }
    }

    /// Writes commits to sled once `entries` log entries gathered since the last write
    /// (0, the default: every commit). sled is a cache of the log, caught up on open by
    /// replay ([`super::writer::Ledger::open`]): no sled batch per group (issue 15).
    pub fn persist_every(&mut self, entries: u64) {
        self.persist_every = entries;
    }

    /// Whether the open reused the state map that the last clean close sealed, rather
    /// than rebuild it from the objects ([`StateMap::unseal`]).
    pub fn map_reused(&self) -> bool {
        self.map_reused
    }

    /// The number of log entries this state reflects (committed).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The state map root of the committed state (see [`super::state_map`]).
    pub fn root(&self) -> [u8; 32] {
        match &self.prepared {
            // The map holds the prepared batch.
            Some(p) => p.committed_root,
            None => self.map.root(),
        }
    }

    /// The proof of the committed object under `key` (or of its absence) against
    /// [`SledState::root`].
    pub fn prove(&self, key: &Key) -> StateProof {
        match &self.prepared {
            Some(_) => self.committed_map().prove(key),
            None => self.map.prove(key),
        }
    }

    /// The committed map while a batch is prepared: a copy on the heap with the batch
    /// undone. Rare (the server's readers wait for the writer's lock, held from a
    /// batch's prepare to its commit), and costly at scale, so it is the last resort.
    fn committed_map(&self) -> StateMap {
        let mut map = self.map.clone();
        if let Some(p) = &self.prepared {
            map.update(p.undo.clone())
                .expect("a heap arena fails only past RECORDS_MAX (2^31) objects");
        }
        map
    }

    /// Bytes of heap the state map's nodes take.
    pub fn map_heap_bytes(&self) -> usize {
        self.map.heap_bytes()
    }

    /// Bytes of the state map's node files (0 if on the heap).
    pub fn map_file_bytes(&self) -> usize {
        self.map.file_bytes()
    }

    /// Number of committed objects.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether no object is committed (before genesis).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one accepted entry's writes to the batch in progress.
    pub fn stage(&mut self, changes: Changes) {
        self.unprepare();
        self.overlay.extend(changes);
    }

    /// Drops the batch in progress (its entries were not written to the log).
    pub fn discard(&mut self) {
        self.unprepare();
        self.overlay.clear();
    }

    /// Takes the map back to the committed objects if a batch was prepared.
    fn unprepare(&mut self) {
        if let Some(p) = self.prepared.take() {
            // Undoing removes the batch's new keys and puts back the old value hashes
            // of the others (a batch only writes): it reuses slots the batch freed and
            // never grows an arena, so it does not fail. Were it to, the map is marked
            // broken, every later prepare fails, the writer stops, and the next open
            // rebuilds the map.
            if let Err(e) = self.map.update(p.undo) {
                tracing::error!(error = %e, "the state map could not be taken back to the committed objects");
            }
        }
    }

    /// The state map root once the batch in progress is committed (the map is updated
    /// once per distinct object the batch wrote, value hashes in parallel). The work is
    /// kept for the commit.
    ///
    /// # Errors
    /// A delta that cannot be encoded.
    pub fn prepare(&mut self) -> Result<[u8; 32], StateStoreError> {
        if let Some(p) = &self.prepared {
            return Ok(p.root);
        }
        let changes = StateMap::changes(self.overlay.iter().map(|(k, v)| (k, Some(v))).collect());
        let committed_root = self.map.root();
        let undo = self.map.apply(changes)?;
        let root = self.map.root();
        self.prepared = Some(Prepared {
            root,
            committed_root,
            undo,
        });
        Ok(root)
    }

    /// Commits the batch in progress, which brings the state to `size` log entries, and
    /// writes it to sled when due ([`SledState::persist_every`]).
    ///
    /// # Errors
    /// A map that cannot take the batch; sled faults (committed in memory all the same).
    pub fn commit(&mut self, size: u64) -> Result<(), StateStoreError> {
        assert!(
            size >= self.size,
            "the state only moves forward ({} -> {size})",
            self.size
        );
        if self.overlay.is_empty() && size == self.size {
            return Ok(());
        }
        assert!(
            size > self.size,
            "changes without new entries: a delta would overwrite the last one"
        );
        self.prepare()?;
        // Encoded before anything changes: a value that cannot be encoded fails the
        // commit with the map taken back (`unprepare` on the next stage or discard).
        let encoded = self
            .overlay
            .iter()
            .map(|(key, value)| Stored::encode(&key.id, value))
            .collect::<Result<Vec<_>, _>>()?;
        // The map holds the batch: it is the committed map from now on.
        self.prepared = None;
        for ((key, _), object) in std::mem::take(&mut self.overlay).into_iter().zip(encoded) {
            self.tables.insert(key.table, object);
            self.unpersisted.insert(key);
        }
        self.size = size;
        if size - self.persisted_size >= self.persist_every {
            self.persist()?;
        }
        Ok(())
    }

    /// Writes the commits since sled's head (a delta of each object changed, the head)
    /// in one atomic sled batch; then a snapshot if the deltas outgrew the last one.
    ///
    /// # Errors
    /// sled faults; then the head is unchanged and the next call writes it all again.
    pub fn persist(&mut self) -> Result<(), StateStoreError> {
        if self.persisted_size == self.size {
            return Ok(());
        }
        if self.stale_records {
            self.tree.clear()?;
            self.stale_records = false;
        }
        let objects = self.unpersisted.iter().filter_map(|k| {
            let bytes = self.tables.encoded(k)?;
            Some((k.table, k.id.as_str(), bytes))
        });
        let mut batch = sled::Batch::default();
        let mut delta_bytes = 0u64;
        for (part, bytes) in (0u32..).zip(tables::encode_parts(objects, "delta")?) {
            delta_bytes += bytes.len() as u64;
            batch.insert(&delta_key(self.size, part)[..], bytes);
        }
        let head = Head {
            size: self.size,
            root: self.root(),
            snapshot: self.snapshot,
            objects: self.tables.table_lens(),
        };
        batch.insert(HEAD_KEY, head.encode());
        self.tree.apply_batch(batch)?;
        self.deltas_bytes += delta_bytes;
        self.persisted_size = self.size;
        self.unpersisted.clear();
        if self.deltas_bytes > self.snapshot_bytes.max(SNAPSHOT_DELTAS_BYTES_MIN) {
            self.write_snapshot()?;
        }
        Ok(())
    }

    /// Writes every committed object as a new snapshot generation and moves the head to
    /// it, with the old generation's chunks and every delta removed, in one atomic batch.
    /// [`SledState::commit`] calls it when the deltas outgrow the last snapshot.
    ///
    /// # Errors
    /// sled faults; then the head still names the previous snapshot and its deltas.
    pub fn write_snapshot(&mut self) -> Result<(), StateStoreError> {
        let generation = self.snapshot.generation + 1;
        let mut batch = sled::Batch::default();
        let mut chunks = 0u32;
        let mut bytes_total = 0u64;
        for bytes in tables::encode_parts(self.tables.iter(), "snapshot")? {
            bytes_total += bytes.len() as u64;
            batch.insert(&chunk_key(generation, chunks)[..], bytes);
            chunks = chunks
                .checked_add(1)
                .ok_or_else(|| corrupt("snapshot", "more than u32::MAX chunks"))?;
        }
        for chunk in 0..self.snapshot.chunks {
            batch.remove(&chunk_key(self.snapshot.generation, chunk)[..]);
        }
        for item in self
            .tree
            .range(delta_key(0, 0)..=delta_key(self.size, u32::MAX))
        {
            batch.remove(item?.0);
        }
        let snapshot = Snapshot {
            generation,
            size: self.size,
            chunks,
        };
        let head = Head {
            size: self.size,
            root: self.map.root(),
            snapshot,
            objects: self.tables.table_lens(),
        };
        batch.insert(HEAD_KEY, head.encode());
        self.tree.apply_batch(batch)?;
        self.snapshot = snapshot;
        self.snapshot_bytes = bytes_total;
        self.deltas_bytes = 0;
        self.persisted_size = self.size; // every committed object is in the snapshot
        self.unpersisted.clear();
        Ok(())
    }

    /// Every committed object of one table, in id order (from memory: it cannot fail).
    pub fn scan(&self, table: Table) -> impl Iterator<Item = (Key, Value)> + '_ {
        self.tables.scan(table)
    }

    /// Number of committed objects of one table.
    pub fn table_len(&self, table: Table) -> usize {
        self.tables.table_len(table)
    }
}

impl StateView for SledState {
    fn get(&self, key: &Key) -> Option<Value> {
        if let Some(v) = self.overlay.get(key) {
            return Some(v.clone());
        }
        self.tables.get(key)
    }
}

#[cfg(test)]
mod tests;
