//! Entry id → leaf index (`ids.dat` and a map in memory), derived from the record file.
//!
//! Every append asks "is this statement already in the log?". sled 0.34 answers in
//! ~4 µs and records a new id in ~15 µs, which alone would cost a third of the
//! writer's budget per entry (see BENCHMARKS.md).
//! So the ids live in a flat file — entry `i`'s 32-byte id at byte `32·i`, like
//! `offsets.dat` — and in memory as a map from the id's first 8 bytes to the index
//! (16 bytes an entry: 16 MiB for a million). A hit on the 8-byte prefix is confirmed
//! against the full id in the file, so a crafted prefix collision can never make one
//! statement pass for another; colliding ids go to a small overflow map.
//!
//! The file is derived: rebuilt from the records when behind, never fsync'd on the
//! write path; a partial trailing id left by a crash is cut on open.
//!
//! ```
//! use lesson_ledger::log::id_index::IdIndex;
//! let dir = tempfile::tempdir().unwrap();
//! let mut ids = IdIndex::open(dir.path().join("ids.dat")).unwrap();
//! ids.append([7; 32]).unwrap();
//! assert_eq!(ids.get(&[7; 32]).unwrap(), Some(0));
//! assert_eq!(ids.get(&[8; 32]).unwrap(), None);
//! ```

use std::collections::HashMap;
use std::fs::File;

use crate::log::disk::Disk;

use super::offsets::open_fixed_width;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const ID_BYTES: u64 = 32;
/// Bytes read at a time when loading the file.
const LOAD_CHUNK_BYTES: usize = 1 << 20;

/// An error of the id index.
#[derive(Debug, thiserror::Error)]
pub enum IdIndexError {
    /// The ids file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Code `id_index_short`: cannot truncate to `requested` ids: the file holds only `have`.
    #[error("cannot truncate to {requested} ids: the file holds only {have}")]
    Short {
        /// Entries asked for.
        requested: u64,
        /// Entries the file holds.
        have: u64,
    },
}

impl IdIndexError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            IdIndexError::Io { .. } => "id_index_io",
            IdIndexError::Short { .. } => "id_index_short",
        }
    }
}

/// The id index: the file, the map, and the ids appended but not yet written.
#[derive(Debug)]
pub struct IdIndex {
    path: PathBuf,
    file: File,
    disk: Disk,
    /// First 8 bytes of an id → the index of the first entry with that prefix.
    by_prefix: HashMap<u64, u64, ahash::RandomState>,
    /// Full ids whose prefix was already taken by another id.
    overflow: HashMap<[u8; 32], u64, ahash::RandomState>,
    /// Ids in the file.
    written: u64,
    /// Ids appended after `written`, in order.
    pending: Vec<[u8; 32]>,
    /// Bytes of a partial trailing id cut on open.
    cut_bytes: u64,
}

fn prefix(id: &[u8; 32]) -> u64 {
    let mut p = [0u8; 8];
    p.copy_from_slice(&id[..8]);
    u64::from_le_bytes(p)
}

impl IdIndex {
    /// Opens (or creates) `ids.dat` and loads it into memory.
    ///
    /// # Errors
    /// I/O.
    pub fn open(path: impl AsRef<Path>) -> Result<IdIndex, IdIndexError> {
        IdIndex::open_on(path, Disk::os())
    }

    /// [`IdIndex::open`], writing through `disk`.
    ///
    /// # Errors
    /// As [`IdIndex::open`].
    pub fn open_on(path: impl AsRef<Path>, disk: Disk) -> Result<IdIndex, IdIndexError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| IdIndexError::Io {
            path: path.clone(),
            source,
        };
        let (mut file, ids, cut_bytes) = open_fixed_width(&path, ID_BYTES).map_err(io)?;
        let bytes = ids * ID_BYTES;
        let mut index = IdIndex {
            path: path.clone(),
            file: file.try_clone().map_err(io)?,
            disk,
            by_prefix: HashMap::with_capacity_and_hasher(
                (bytes / ID_BYTES) as usize,
                ahash::RandomState::new(),
            ),
            overflow: HashMap::default(),
            written: 0,
            pending: Vec::new(),
            cut_bytes,
        };
        let mut reader = io::BufReader::with_capacity(LOAD_CHUNK_BYTES, &mut file);
        let mut id = [0u8; 32];
        for i in 0..bytes / ID_BYTES {
            reader.read_exact(&mut id).map_err(io)?;
            index.remember(id, i);
        }
        index.written = bytes / ID_BYTES;
        Ok(index)
    }

    fn remember(&mut self, id: [u8; 32], index: u64) {
        match self.by_prefix.entry(prefix(&id)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(index);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.overflow.insert(id, index);
            }
        }
    }

    /// Ids held (written and pending).
    pub fn len(&self) -> u64 {
        self.written + self.pending.len() as u64
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of a partial trailing id cut by [`IdIndex::open`].
    pub fn cut_bytes(&self) -> u64 {
        self.cut_bytes
    }

    /// Records the id of the next entry (index [`IdIndex::len`]).
    ///
    /// # Errors
    /// Never today; kept fallible for symmetry with the other derived stores.
    pub fn append(&mut self, id: [u8; 32]) -> Result<u64, IdIndexError> {
        let index = self.len();
        self.remember(id, index);
        self.pending.push(id);
        Ok(index)
    }

    /// The id stored for entry `index`.
    fn id_at(&self, index: u64) -> Result<[u8; 32], IdIndexError> {
        if index >= self.written {
            return Ok(self.pending[(index - self.written) as usize]);
        }
        let mut id = [0u8; 32];
        self.file
            .read_exact_at(&mut id, index * ID_BYTES)
            .map_err(|source| IdIndexError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(id)
    }

    /// The index of the entry with this id, if any.
    ///
    /// # Errors
    /// I/O reading the full id back.
    pub fn get(&self, id: &[u8; 32]) -> Result<Option<u64>, IdIndexError> {
        let Some(&index) = self.by_prefix.get(&prefix(id)) else {
            return Ok(None);
        };
        // The prefix is a hint; the full id decides.
        if &self.id_at(index)? == id {
            return Ok(Some(index));
        }
        Ok(self.overflow.get(id).copied())
    }

    /// Writes pending ids to the file (no fsync: derived data).
    ///
    /// # Errors
    /// I/O.
    pub fn flush(&mut self) -> Result<(), IdIndexError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = self.pending.iter().flatten().copied().collect();
        self.disk
            .write_all_at(&self.path, &self.file, &bytes, self.written * ID_BYTES)
            .map_err(|source| IdIndexError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Syncs the file (on clean close).
    ///
    /// # Errors
    /// I/O.
    pub fn sync(&mut self) -> Result<(), IdIndexError> {
        self.flush()?;
        self.disk
            .sync_data(&self.path, &self.file)
            .map_err(|source| IdIndexError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Keeps only the first `n` ids (pending ones are dropped first).
    ///
    /// # Errors
    /// [`IdIndexError::Short`] if fewer are held; I/O.
    pub fn truncate(&mut self, n: u64) -> Result<(), IdIndexError> {
        if n > self.len() {
            return Err(IdIndexError::Short {
                requested: n,
                have: self.len(),
            });
        }
        if n == self.len() {
            return Ok(());
        }
        self.flush()?;
        self.disk
            .set_len(&self.path, &self.file, n * ID_BYTES)
            .map_err(|source| IdIndexError::Io {
                path: self.path.clone(),
                source,
            })?;
        // Rare (only on open after a crash): rebuild the maps from what is kept.
        let kept: Vec<[u8; 32]> = (0..n).map(|i| self.id_at(i)).collect::<Result<_, _>>()?;
        self.by_prefix.clear();
        self.overflow.clear();
        self.written = n;
        for (i, id) in kept.into_iter().enumerate() {
            self.remember(id, i as u64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> [u8; 32] {
        *blake3::hash(&n.to_le_bytes()).as_bytes()
    }

    #[test]
    fn ids_are_found_before_and_after_flush_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.dat");
        let mut ids = IdIndex::open(&path).unwrap();
        for n in 0..100 {
            assert_eq!(ids.append(id(n)).unwrap(), n);
        }
        assert_eq!(ids.get(&id(42)).unwrap(), Some(42));
        ids.flush().unwrap();
        ids.append(id(100)).unwrap();
        assert_eq!(ids.get(&id(100)).unwrap(), Some(100));
        ids.sync().unwrap();
        drop(ids);
        let ids = IdIndex::open(&path).unwrap();
        assert_eq!(ids.len(), 101);
        for n in 0..101 {
            assert_eq!(ids.get(&id(n)).unwrap(), Some(n));
        }
        assert_eq!(ids.get(&id(101)).unwrap(), None);
    }

    #[test]
    fn a_prefix_collision_never_passes_one_id_for_another() {
        let dir = tempfile::tempdir().unwrap();
        let mut ids = IdIndex::open(dir.path().join("ids.dat")).unwrap();
        let a = [1u8; 32];
        let mut b = [1u8; 32];
        b[31] = 2; // same first 8 bytes
        ids.append(a).unwrap();
        assert_eq!(ids.get(&b).unwrap(), None, "same prefix, different id");
        ids.append(b).unwrap();
        ids.flush().unwrap();
        assert_eq!(
            (ids.get(&a).unwrap(), ids.get(&b).unwrap()),
            (Some(0), Some(1))
        );
    }

    #[test]
    fn a_torn_trailing_id_is_cut_and_truncate_rebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.dat");
        let mut ids = IdIndex::open(&path).unwrap();
        for n in 0..10 {
            ids.append(id(n)).unwrap();
        }
        ids.sync().unwrap();
        drop(ids);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[9; 5]);
        std::fs::write(&path, bytes).unwrap();
        let mut ids = IdIndex::open(&path).unwrap();
        assert_eq!((ids.len(), ids.cut_bytes()), (10, 5));
        ids.truncate(4).unwrap();
        assert_eq!(ids.get(&id(3)).unwrap(), Some(3));
        assert_eq!(ids.get(&id(4)).unwrap(), None);
        assert!(matches!(ids.truncate(5), Err(IdIndexError::Short { .. })));
    }
}
