//! What an any-log mirror keeps on disk, and why this form.
//!
//! - `entries`: every entry the origin served, each as in its bundle (a big-endian u16
//!   length, then the bytes), in log order. A bundle `[N·256, N·256 + W)` is the byte
//!   range from the start of entry `N·256` to the end of entry `N·256 + W − 1`, so what
//!   is served is byte for byte the origin's bundle, partial or full, without keeping
//!   each superseded partial bundle.
//! - `offsets`: the end of each entry in `entries`, a big-endian u64 a leaf: where a
//!   bundle starts and ends, one `pread` each.
//! - `tree/`: the Merkle nodes ([`TreeFile`]), computed by the mirror from the leaf
//!   hashes: the hash tiles served, and the [`Frontier`] the next round extends.
//!
//! The three files may run ahead of the mirror's checkpoint (a round writes its chunks
//! before it knows whether they lead to the origin's root); the commit point is the
//! cosigned checkpoint, written only after the three are synced. Opening cuts them back
//! to the checkpoint's size, so a kill mid-round loses only that round.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::log::compact::Frontier;
use crate::log::hash::{leaf_hash, Hash, NodeSource};
use crate::log::tiles::{encode_bundle_entry, TileKind, TilePath};
use crate::log::tree_file::{TreeFile, TreeReader};
use crate::mirror::{io, MirrorError};

/// The entries file.
pub const ENTRIES: &str = "entries";
/// The offsets file.
pub const OFFSETS: &str = "offsets";
/// The Merkle node directory.
pub const TREE: &str = "tree";

const OFFSET_BYTES: u64 = 8;

/// The read side of the store, shared with the server: reads only below a size the
/// caller knows committed.
#[derive(Clone)]
pub struct StoreReader {
    entries: PathBuf,
    files: std::sync::Arc<(File, File)>,
    tree: TreeReader,
}

/// The writer: appends leaves past the committed size, syncs, or cuts back.
pub struct AnyStore {
    dir: PathBuf,
    entries: File,
    offsets: File,
    tree: TreeFile,
    frontier: Frontier,
    /// Bytes in `entries` for the leaves written.
    entries_len: u64,
    committed: u64,
    reader: StoreReader,
}

fn damaged(what: String) -> MirrorError {
    MirrorError::Config(format!("the mirror's store is damaged: {what}"))
}

fn open_rw(path: &Path) -> Result<File, MirrorError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io(path))
}

impl AnyStore {
    /// Opens the store in `dir`, cut back to `committed` leaves whose root must be
    /// `root` (the mirror's checkpoint).
    ///
    /// # Errors
    /// I/O; a store that does not hold that tree.
    pub fn open(dir: &Path, committed: u64, root: Hash) -> Result<AnyStore, MirrorError> {
        let entries = open_rw(&dir.join(ENTRIES))?;
        let offsets = open_rw(&dir.join(OFFSETS))?;
        let tree_dir = dir.join(TREE);
        let tree = TreeFile::open(&tree_dir).map_err(|e| damaged(e.to_string()))?;
        let reader = StoreReader {
            entries: dir.join(ENTRIES),
            files: std::sync::Arc::new((
                entries.try_clone().map_err(io(dir))?,
                offsets.try_clone().map_err(io(dir))?,
            )),
            tree: tree.reader(),
        };
        let mut store = AnyStore {
            dir: dir.to_path_buf(),
            entries,
            offsets,
            tree,
            frontier: Frontier::new(),
            entries_len: 0,
            committed,
            reader,
        };
        store.cut_back()?;
        if store.frontier.root() != root {
            return Err(damaged(format!(
                "its tree of {committed} leaves does not have the checkpoint's root"
            )));
        }
        Ok(store)
    }

    /// The reader shared with the server.
    pub fn reader(&self) -> StoreReader {
        self.reader.clone()
    }

    /// Leaves written, committed or not.
    pub fn written(&self) -> u64 {
        self.frontier.size()
    }

    /// The root of the leaves written.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The root of the committed tree's prefix of `size` leaves.
    ///
    /// # Errors
    /// A size past the committed tree; a node that cannot be read.
    pub fn root_at(&self, size: u64) -> Result<Hash, MirrorError> {
        if size > self.committed {
            return Err(damaged(format!("no tree of {size} leaves")));
        }
        crate::log::proof::root(&self.reader.tree, size).map_err(|e| damaged(e.to_string()))
    }

    /// Appends `entries` (a bundle's, split) after the leaves written; visible to
    /// nobody until [`AnyStore::commit`] and a checkpoint of that size.
    ///
    /// # Errors
    /// An entry of 64 KiB or more; I/O.
    pub fn append(&mut self, entries: &[Vec<u8>]) -> Result<(), MirrorError> {
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(entries.len() * OFFSET_BYTES as usize);
        let mut completed = Vec::new();
        for entry in entries {
            encode_bundle_entry(&mut bytes, entry)
                .map_err(|e| MirrorError::Refused(e.to_string()))?;
            ends.extend_from_slice(&(self.entries_len + bytes.len() as u64).to_be_bytes());
            self.frontier
                .push(leaf_hash(entry), &mut completed)
                .map_err(|e| MirrorError::Refused(e.to_string()))?;
        }
        for (level, index, hash) in completed {
            self.tree
                .append(level, index, hash)
                .map_err(|e| damaged(e.to_string()))?;
        }
        let first = self.frontier.size() - entries.len() as u64;
        let path = self.dir.join(ENTRIES);
        self.entries
            .write_all_at(&bytes, self.entries_len)
            .map_err(io(&path))?;
        let path = self.dir.join(OFFSETS);
        self.offsets
            .write_all_at(&ends, first * OFFSET_BYTES)
            .map_err(io(&path))?;
        self.entries_len += bytes.len() as u64;
        self.tree.flush().map_err(|e| damaged(e.to_string()))
    }

    /// Syncs everything written: the leaves may now be named by a checkpoint.
    ///
    /// # Errors
    /// I/O.
    pub fn commit(&mut self) -> Result<(), MirrorError> {
        for (file, name) in [(&self.entries, ENTRIES), (&self.offsets, OFFSETS)] {
            file.sync_data().map_err(io(&self.dir.join(name)))?;
        }
        self.tree.sync().map_err(|e| damaged(e.to_string()))?;
        self.committed = self.frontier.size();
        Ok(())
    }

    /// Drops what was written past the committed size.
    ///
    /// # Errors
    /// I/O.
    pub fn cut_back(&mut self) -> Result<(), MirrorError> {
        let size = self.committed;
        let offsets_path = self.dir.join(OFFSETS);
        let held = self.offsets.metadata().map_err(io(&offsets_path))?.len() / OFFSET_BYTES;
        if held < size {
            return Err(damaged(format!("{held} offsets for {size} leaves")));
        }
        self.entries_len = match size {
            0 => 0,
            _ => self.reader.end_of(size - 1)?,
        };
        self.offsets
            .set_len(size * OFFSET_BYTES)
            .map_err(io(&offsets_path))?;
        let entries_path = self.dir.join(ENTRIES);
        self.entries
            .set_len(self.entries_len)
            .map_err(io(&entries_path))?;
        self.tree
            .truncate(size)
            .map_err(|e| damaged(e.to_string()))?;
        self.frontier =
            Frontier::restore(size, &self.reader.tree).map_err(|e| damaged(e.to_string()))?;
        Ok(())
    }
}

impl StoreReader {
    /// The end of entry `index` in the entries file.
    fn end_of(&self, index: u64) -> Result<u64, MirrorError> {
        let mut bytes = [0u8; OFFSET_BYTES as usize];
        self.files
            .1
            .read_exact_at(&mut bytes, index * OFFSET_BYTES)
            .map_err(io(&self.entries))?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// The body of `tile`, which the caller has checked is in the committed tree.
    ///
    /// # Errors
    /// I/O; a node the tree lacks.
    pub fn tile(&self, tile: &TilePath) -> Result<Vec<u8>, MirrorError> {
        let (first, end) = tile.span().map_err(|e| damaged(e.to_string()))?;
        match tile.kind {
            TileKind::Hashes { .. } => {
                let level = u8::try_from(tile.kind.tree_level())
                    .map_err(|_| damaged("a tile level past the tree".into()))?;
                let mut body = Vec::with_capacity(32 * (end - first) as usize);
                for index in first..end {
                    let hash = self
                        .tree
                        .node(level, index)
                        .map_err(|e| damaged(e.to_string()))?;
                    body.extend_from_slice(hash.as_bytes());
                }
                Ok(body)
            }
            TileKind::Entries => {
                let start = match first {
                    0 => 0,
                    _ => self.end_of(first - 1)?,
                };
                let stop = self.end_of(end - 1)?;
                let mut body = vec![0u8; usize::try_from(stop - start).unwrap_or(0)];
                self.files
                    .0
                    .read_exact_at(&mut body, start)
                    .map_err(io(&self.entries))?;
                Ok(body)
            }
        }
    }
}
