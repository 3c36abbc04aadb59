//! Merkle node hashes on disk (`tree/`), derived from the record file.
//!
//! One flat file per level, `tree/level-00` … `tree/level-63`. Level `L` holds the 32-byte
//! hashes of the complete nodes at level `L` in index order, so node `(L, i)` is at byte
//! `32·i` of file `L` and covers leaves `[i·2^L, (i+1)·2^L)` (the subtree numbering of
//! RFC 9162 §2.1.1, <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1>, as
//! [`NodeSource`] describes). Level 0 holds the leaf hashes. Only complete subtrees are
//! stored; the hashes of the ragged right edge are computed by the caller.
//!
//! Writing is buffered; [`TreeFile::flush`] makes appended nodes visible to every
//! [`TreeReader`] (lengths are published through atomics after the bytes are written).
//! Nothing here is fsync'd on the write path: the files are rebuildable from the records,
//! and [`TreeFile::consistent_size`] plus [`TreeFile::truncate`] find and restore a
//! consistent prefix after a crash.
//!
//! Readers `pread` levels below [`CACHED_LEVEL_MIN`] and keep the levels at and above it
//! in memory: `16·N` bytes for `N` leaves (16 MiB a million leaves), so that an
//! inclusion proof reads at most a handful of nodes from the files (the two lowest
//! levels and the ragged edge) instead of one per level: a balance proves several
//! entries, and the `pread`s were most of its cost.
//!
//! ```
//! use lesson_ledger::log::hash::{leaf_hash, node_hash, NodeSource};
//! use lesson_ledger::log::tree_file::TreeFile;
//! let dir = tempfile::tempdir().unwrap();
//! let mut tree = TreeFile::open(dir.path().join("tree")).unwrap();
//! let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
//! tree.append(0, 0, a).unwrap();
//! tree.append(0, 1, b).unwrap();
//! tree.append(1, 0, node_hash(&a, &b)).unwrap();
//! let reader = tree.reader();
//! assert!(reader.node(0, 1).is_err(), "not flushed yet");
//! tree.flush().unwrap();
//! assert_eq!(reader.node(1, 0).unwrap(), node_hash(&a, &b));
//! ```

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use crate::log::disk::Disk;

use super::hash::{node_hash, Hash, NodeError, NodeSource, HASH_LEN};

mod error;

pub use error::TreeError;

/// Number of levels a tree of up to 2^63 leaves can have complete nodes at.
pub const LEVELS: usize = 64;
/// Levels at and above this one are also held in memory by readers.
pub const CACHED_LEVEL_MIN: u8 = 2;
const NODE_BYTES: u64 = HASH_LEN as u64;

/// One level as readers see it.
#[derive(Debug, Default)]
struct Level {
    /// Opened once, before any node of the level is published.
    file: OnceLock<File>,
    /// Nodes flushed and visible to readers.
    len: AtomicU64,
    /// Levels ≥ [`CACHED_LEVEL_MIN`]: every node flushed (extended before `len` is
    /// published; readers look only below `len`).
    memory: RwLock<Vec<Hash>>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    levels: [Level; LEVELS],
    /// The right edge of the tree of all flushed leaves, for [`NodeSource::right_edge`].
    edge: RwLock<Arc<RightEdge>>,
}

/// The hashes of one tree size's right edge: `hashes[L]` covers leaves
/// `[⌊(size − 1) / 2^L⌋ · 2^L, size)`. Every inclusion proof against that size needs
/// one of them, which would otherwise be hashed from up to one node a level.
#[derive(Debug, Default)]
struct RightEdge {
    size: u64,
    hashes: Vec<Hash>,
}

impl RightEdge {
    /// The edge of the tree of `size` leaves, from its complete nodes: level `L`'s range
    /// either equals level `L − 1`'s (the last leaf is in the left half) or is the
    /// complete left half followed by it.
    fn of<S: NodeSource>(src: &S, size: u64) -> Result<RightEdge, NodeError> {
        let Some(last) = size.checked_sub(1) else {
            return Ok(RightEdge::default());
        };
        let mut hashes = vec![src.node(0, last)?];
        for level in 1..LEVELS as u32 {
            let below = hashes[hashes.len() - 1];
            if last >> (level - 1) == 0 {
                break; // the level below already covers the whole tree: its root
            }
            let begin = last >> level;
            // `level` < 64: the casts cannot truncate.
            hashes.push(if (last >> (level - 1)) & 1 == 0 {
                below
            } else {
                node_hash(&src.node((level - 1) as u8, begin << 1)?, &below)
            });
        }
        Ok(RightEdge { size, hashes })
    }
}

impl Shared {
    fn level_path(&self, level: usize) -> PathBuf {
        self.dir.join(format!("level-{level:02}"))
    }
}

/// The writer of the tree files. One writer per directory.
#[derive(Debug)]
pub struct TreeFile {
    shared: Arc<Shared>,
    disk: Disk,
    /// Appended, not yet flushed node bytes of each level.
    pending: [Vec<u8>; LEVELS],
}

/// A read handle on the flushed nodes: cheap to clone, shareable across threads.
#[derive(Debug, Clone)]
pub struct TreeReader {
    shared: Arc<Shared>,
}

impl TreeFile {
    /// Opens the tree directory, creating it if absent. A partial trailing node left by a
    /// crash is ignored (and cut by [`TreeFile::truncate`]).
    ///
    /// # Errors
    /// If the directory or a level file cannot be created or read.
    pub fn open(dir: impl AsRef<Path>) -> Result<TreeFile, TreeError> {
        TreeFile::open_on(dir, Disk::os())
    }

    /// [`TreeFile::open`], writing through `disk`.
    ///
    /// # Errors
    /// As [`TreeFile::open`].
    pub fn open_on(dir: impl AsRef<Path>, disk: Disk) -> Result<TreeFile, TreeError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|source| TreeError::Io {
            path: dir.clone(),
            source,
        })?;
        let shared = Arc::new(Shared {
            dir,
            levels: std::array::from_fn(|_| Level::default()),
            edge: RwLock::default(),
        });
        for level in 0..LEVELS {
            let path = shared.level_path(level);
            let io = |source| TreeError::Io {
                path: path.clone(),
                source,
            };
            let file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            let nodes = file.metadata().map_err(io)?.len() / NODE_BYTES;
            if level >= usize::from(CACHED_LEVEL_MIN) {
                let memory = read_nodes(&file, nodes).map_err(io)?;
                *write_lock(&shared.levels[level].memory) = memory;
            }
            let slot = &shared.levels[level];
            // The slot is fresh (this loop visits each level once), so `set` cannot fail.
            let _ = slot.file.set(file);
            slot.len.store(nodes, Ordering::Release);
        }
        let tree = TreeFile {
            shared,
            disk,
            pending: std::array::from_fn(|_| Vec::new()),
        };
        tree.refresh_edge();
        Ok(tree)
    }

    /// Recomputes the cached right edge for the flushed leaves. Best effort: when the
    /// levels do not yet hold that tree (recovery in progress), there is no cached edge
    /// and proofs hash it from the nodes.
    fn refresh_edge(&self) {
        let reader = self.reader();
        let edge = RightEdge::of(&reader, reader.leaves()).unwrap_or_default();
        *self
            .shared
            .edge
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(edge);
    }

    /// Nodes at `level`, flushed or not: the next index to append there.
    pub fn level_len(&self, level: u8) -> u64 {
        let Some(slot) = self.shared.levels.get(usize::from(level)) else {
            return 0;
        };
        slot.len.load(Ordering::Acquire)
            + self.pending[usize::from(level)].len() as u64 / NODE_BYTES
    }

    /// Leaves appended, flushed or not.
    pub fn leaves(&self) -> u64 {
        self.level_len(0)
    }

    /// Buffers node `(level, index)`.
    ///
    /// # Errors
    /// If `index` is not the next index of `level`, or (above level 0) the node's two
    /// children are not both at the level below: either means a bug or damage.
    pub fn append(&mut self, level: u8, index: u64, hash: Hash) -> Result<(), TreeError> {
        if usize::from(level) >= LEVELS {
            return Err(TreeError::LevelOutOfRange { level });
        }
        let expected = self.level_len(level);
        if index != expected {
            return Err(TreeError::OutOfOrder {
                level,
                index,
                expected,
            });
        }
        // A complete node at (L, i) needs children (L-1, 2i) and (L-1, 2i+1).
        let children = index.checked_mul(2).and_then(|c| c.checked_add(2));
        if level > 0 && !matches!(children, Some(need) if self.level_len(level - 1) >= need) {
            return Err(TreeError::MissingChildren { level, index });
        }
        self.pending[usize::from(level)].extend_from_slice(hash.as_bytes());
        Ok(())
    }

    /// Writes the buffered nodes and publishes them to readers. No fsync (derived data).
    ///
    /// # Errors
    /// On I/O failure; the nodes stay buffered and a later flush retries them.
    pub fn flush(&mut self) -> Result<(), TreeError> {
        for (level, pending) in self.pending.iter_mut().enumerate() {
            if pending.is_empty() {
                continue;
            }
            let slot = &self.shared.levels[level];
            let path = self.shared.level_path(level);
            let io = |source| TreeError::Io {
                path: path.clone(),
                source,
            };
            let file = match slot.file.get() {
                Some(file) => file,
                None => {
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&path)
                        .map_err(io)?;
                    slot.file.get_or_init(|| file)
                }
            };
            let len = slot.len.load(Ordering::Acquire);
            self.disk
                .write_all_at(&path, file, pending, len * NODE_BYTES)
                .map_err(io)?;
            if level >= usize::from(CACHED_LEVEL_MIN) {
                // One lock a level a flush, not one a node: readers share this lock.
                let mut memory = write_lock(&slot.memory);
                memory.truncate(len as usize);
                memory.extend(pending.chunks_exact(HASH_LEN).filter_map(Hash::from_slice));
            }
            // Publish only after the bytes are in the file, so a reader never sees a
            // length whose node it cannot read.
            slot.len
                .store(len + pending.len() as u64 / NODE_BYTES, Ordering::Release);
            pending.clear();
        }
        self.refresh_edge();
        Ok(())
    }

    /// Flushes, then fsyncs every level file (used before a clean shutdown).
    ///
    /// # Errors
    /// On I/O failure.
    pub fn sync(&mut self) -> Result<(), TreeError> {
        self.flush()?;
        for (level, slot) in self.shared.levels.iter().enumerate() {
            if let Some(file) = slot.file.get() {
                let path = self.shared.level_path(level);
                self.disk
                    .sync_data(&path, file)
                    .map_err(|source| TreeError::Io { path, source })?;
            }
        }
        Ok(())
    }

    /// The largest tree size `s` such that every level `L` holds at least `⌊s/2^L⌋`
    /// flushed nodes: the size the files can be truncated to without a rebuild.
    pub fn consistent_size(&self) -> u64 {
        let levels = &self.shared.levels;
        let mut size = levels[0].len.load(Ordering::Acquire);
        for (level, slot) in levels.iter().enumerate().skip(1) {
            // ⌊s/2^L⌋ ≤ n  ⟺  s ≤ (n+1)·2^L − 1.
            let nodes = slot.len.load(Ordering::Acquire);
            let bound = (nodes.saturating_add(1))
                .checked_shl(level as u32)
                .filter(|b| b >> level == nodes.saturating_add(1))
                .map_or(u64::MAX, |b| b - 1);
            size = size.min(bound);
        }
        size
    }

    /// Makes every level hold exactly `⌊size/2^L⌋` nodes, cutting partial trailing bytes
    /// too. Unflushed appends are discarded first. Nothing is changed on error.
    ///
    /// # Errors
    /// [`TreeError::Short`] if some level holds fewer nodes than `size` needs (then
    /// truncate to [`TreeFile::consistent_size`] and rebuild from the records); `Io` on
    /// I/O failure.
    pub fn truncate(&mut self, size: u64) -> Result<(), TreeError> {
        self.discard_pending();
        let levels = &self.shared.levels;
        for (level, slot) in levels.iter().enumerate() {
            let (have, need) = (slot.len.load(Ordering::Acquire), size >> level);
            if have < need {
                let level = level as u8;
                return Err(TreeError::Short {
                    level,
                    have,
                    need,
                    size,
                });
            }
        }
        for (level, slot) in levels.iter().enumerate() {
            let need = size >> level;
            if let Some(file) = slot.file.get() {
                // Lower the published length before cutting, so readers never pread
                // past the end.
                slot.len.store(need, Ordering::Release);
                let path = self.shared.level_path(level);
                self.disk
                    .set_len(&path, file, need * NODE_BYTES)
                    .map_err(|source| TreeError::Io { path, source })?;
            }
            write_lock(&slot.memory).truncate(need as usize);
        }
        self.refresh_edge();
        Ok(())
    }

    /// Drops the appended, unflushed nodes.
    pub fn discard_pending(&mut self) {
        for pending in &mut self.pending {
            pending.clear();
        }
    }

    /// A read handle that sees the nodes flushed so far and later.
    pub fn reader(&self) -> TreeReader {
        TreeReader {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl TreeReader {
    /// Leaves flushed.
    pub fn leaves(&self) -> u64 {
        self.shared.levels[0].len.load(Ordering::Acquire)
    }
}

impl NodeSource for TreeReader {
    fn node(&self, level: u8, index: u64) -> Result<Hash, NodeError> {
        let missing = NodeError::Missing { level, index };
        let slot = self.shared.levels.get(usize::from(level)).ok_or(missing)?;
        if index >= slot.len.load(Ordering::Acquire) {
            return Err(NodeError::Missing { level, index });
        }
        if level >= CACHED_LEVEL_MIN {
            let memory = slot
                .memory
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(hash) = memory.get(index as usize) {
                return Ok(*hash);
            }
        }
        let file = slot.file.get().ok_or(NodeError::Missing { level, index })?;
        let mut bytes = [0u8; HASH_LEN];
        // index < len ≤ file length / 32, so the multiplication cannot overflow.
        file.read_exact_at(&mut bytes, index * NODE_BYTES)
            .map_err(|source| NodeError::Io {
                level,
                index,
                source,
            })?;
        Ok(Hash(bytes))
    }

    fn right_edge(&self, level: u8, size: u64) -> Option<Hash> {
        let edge = Arc::clone(
            &self
                .shared
                .edge
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        (edge.size == size)
            .then(|| edge.hashes.get(usize::from(level)).copied())
            .flatten()
    }
}

/// Reads the first `nodes` hashes of a level file.
fn read_nodes(file: &File, nodes: u64) -> io::Result<Vec<Hash>> {
    let bytes_len = usize::try_from(nodes * NODE_BYTES)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "level file too large"))?;
    let mut bytes = vec![0u8; bytes_len];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes
        .chunks_exact(HASH_LEN)
        .filter_map(Hash::from_slice)
        .collect())
}

/// A write lock that survives a panicked holder: the vector is only ever pushed to or
/// truncated, so it is never left half-updated.
fn write_lock(lock: &RwLock<Vec<Hash>>) -> std::sync::RwLockWriteGuard<'_, Vec<Hash>> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::hash::{leaf_hash, node_hash};

    /// Appends `n` leaves and every complete node above them, as the sequencer will.
    fn grow(tree: &mut TreeFile, from: u64, to: u64) {
        let reader = tree.reader();
        for i in from..to {
            tree.append(0, i, leaf_hash(&i.to_be_bytes())).unwrap();
            tree.flush().unwrap();
            let (mut level, mut index) = (0u8, i);
            while index % 2 == 1 {
                let left = reader.node(level, index - 1).unwrap();
                let right = reader.node(level, index).unwrap();
                level += 1;
                index /= 2;
                tree.append(level, index, node_hash(&left, &right)).unwrap();
                tree.flush().unwrap();
            }
        }
    }

    #[test]
    fn consistent_size_is_limited_by_the_shortest_level() {
        let dir = tempfile::tempdir().unwrap();
        let mut tree = TreeFile::open(dir.path()).unwrap();
        grow(&mut tree, 0, 10);
        assert_eq!(tree.consistent_size(), 10);
        // Drop the node (1, 4) from disk: sizes 8 and 9 need only 4 nodes at level 1.
        let level1 = dir.path().join("level-01");
        fs::OpenOptions::new()
            .write(true)
            .open(&level1)
            .unwrap()
            .set_len(4 * 32)
            .unwrap();
        let tree = TreeFile::open(dir.path()).unwrap();
        assert_eq!(tree.consistent_size(), 9);
    }

    #[test]
    fn upper_levels_are_served_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut tree = TreeFile::open(dir.path()).unwrap();
        grow(&mut tree, 0, 512);
        let expected = tree.reader().node(8, 1).unwrap();
        // Break the file under the cache: the reader still answers from memory.
        let reopened = TreeFile::open(dir.path()).unwrap();
        fs::write(dir.path().join("level-08"), [0u8; 64]).unwrap();
        assert_eq!(reopened.reader().node(8, 1).unwrap(), expected);
        assert_eq!(
            reopened.reader().node(9, 0).unwrap(),
            node_hash(&tree.reader().node(8, 0).unwrap(), &expected)
        );
    }

    /// The tree without its cached edge: proofs hash the edge from complete nodes.
    struct NodesOnly<'a>(&'a TreeReader);

    impl NodeSource for NodesOnly<'_> {
        fn node(&self, level: u8, index: u64) -> Result<Hash, NodeError> {
            self.0.node(level, index)
        }
    }

    #[test]
    fn the_cached_right_edge_gives_the_proofs_the_nodes_give() {
        use crate::log::proof::{consistency_proof, inclusion_proof, subtree_root};
        let dir = tempfile::tempdir().unwrap();
        let mut tree = TreeFile::open(dir.path()).unwrap();
        let reader = tree.reader();
        for size in 1..=70u64 {
            grow(&mut tree, size - 1, size);
            for level in 0..8u8 {
                let begin = ((size - 1) >> level) << level;
                let edge = reader.right_edge(level, size);
                if let Some(edge) = edge {
                    assert_eq!(edge, subtree_root(&reader, begin, size).unwrap());
                }
                // Kept up to the root's level, the first whose range is the whole tree.
                let below_root = level == 0 || (size - 1) >> (level - 1) != 0;
                assert_eq!(edge.is_some(), below_root, "size {size}, level {level}");
            }
            for index in 0..size {
                assert_eq!(
                    inclusion_proof(&reader, index, size).unwrap(),
                    inclusion_proof(&NodesOnly(&reader), index, size).unwrap(),
                    "leaf {index} of {size}"
                );
            }
            for old in 1..size {
                assert_eq!(
                    consistency_proof(&reader, old, size).unwrap(),
                    consistency_proof(&NodesOnly(&reader), old, size).unwrap()
                );
            }
            // The edge is that of the flushed size only; older sizes hash theirs.
            assert_eq!(reader.right_edge(0, size + 1), None);
            if size > 1 {
                assert_eq!(reader.right_edge(0, size - 1), None);
            }
        }
        // Reopened and truncated trees recompute it.
        drop(tree);
        let mut tree = TreeFile::open(dir.path()).unwrap();
        assert_eq!(
            tree.reader().right_edge(0, 70),
            Some(tree.reader().node(0, 69).unwrap())
        );
        tree.truncate(33).unwrap();
        assert_eq!(
            tree.reader().right_edge(0, 33),
            Some(tree.reader().node(0, 32).unwrap())
        );
        assert_eq!(tree.reader().right_edge(0, 70), None);
    }
}
