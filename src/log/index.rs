//! The sled index (`index.sled/`): client ids and the head, derived.
//!
//! Two trees, both rebuildable from the record file (entry ids are indexed in
//! `ids.dat`, [`super::id_index`]: sled costs ~15 µs per insert, too much per entry):
//!
//! | tree      | key                        | value                                 |
//! |-----------|----------------------------|---------------------------------------|
//! | `clients` | client id, ≤ 128 bytes     | entry id, 32 bytes                    |
//! | `meta`    | `head`                     | size u64 BE ‖ record_end u64 BE ‖ root |
//!
//! The [`Head`] names the prefix of the log the index reflects. sled 0.34 has known
//! durability gaps (<https://github.com/spacejam/sled#known-issues-warnings>), so nothing
//! is stored here that cannot be rebuilt, and writes are ordered so that a crash leaves a
//! head that is at worst behind the trees: [`Index::apply`] writes the batch first and
//! the head last, and re-applying from an older head is idempotent.
//!
//! ```
//! use lesson_ledger::log::hash::Hash;
//! use lesson_ledger::log::index::{Head, Index, IndexBatch};
//! let dir = tempfile::tempdir().unwrap();
//! let index = Index::open(dir.path().join("index.sled")).unwrap();
//! let mut batch = IndexBatch::new();
//! batch.insert_client(b"req-0001", [7; 32]).unwrap();
//! index.apply(&batch, Head { size: 1, record_end: 80, root: Hash([1; 32]) }).unwrap();
//! assert_eq!(index.client(b"req-0001").unwrap(), Some([7; 32]));
//! ```

use std::path::{Path, PathBuf};

use super::hash::{Hash, HASH_LEN};

pub use crate::limits::CLIENT_ID_BYTES_MAX;
/// sled's page cache, in bytes. sled 0.34 does not bound its memory by this
/// (spacejam/sled#986): with a million random 32-byte keys RSS was measured from 0.2 to
/// 2.8 GiB, one reason entry ids are not kept in sled.
pub const CACHE_BYTES: u64 = 24 * 1024 * 1024;

const HEAD_KEY: &[u8] = b"head";
const HEAD_BYTES: usize = 8 + 8 + HASH_LEN;

/// An entry id: the 32-byte digest that names an entry.
pub type EntryId = [u8; 32];

/// The prefix of the log that the index reflects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Leaves indexed.
    pub size: u64,
    /// Length of the record file that holds them (the end of a checkpoint record).
    pub record_end: u64,
    /// Merkle root of the first `size` leaves.
    pub root: Hash,
}

impl Head {
    fn to_bytes(self) -> [u8; HEAD_BYTES] {
        let mut out = [0u8; HEAD_BYTES];
        out[..8].copy_from_slice(&self.size.to_be_bytes());
        out[8..16].copy_from_slice(&self.record_end.to_be_bytes());
        out[16..].copy_from_slice(self.root.as_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Head> {
        let bytes: &[u8; HEAD_BYTES] = bytes.try_into().ok()?;
        let (size, rest) = bytes.split_at(8);
        let (record_end, root) = rest.split_at(8);
        Some(Head {
            size: u64::from_be_bytes(size.try_into().ok()?),
            record_end: u64::from_be_bytes(record_end.try_into().ok()?),
            root: Hash::from_slice(root)?,
        })
    }
}

/// An error of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Code `index_sled`: sled `op`: `source`.
    #[error("sled {op}: {source}")]
    Sled {
        /// The operation that failed.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: sled::Error,
    },
    /// Code `index_client_id_too_long`: client id of `len` bytes is over the maximum of `CLIENT_ID_BYTES_MAX`.
    #[error("client id of {len} bytes is over the maximum of {CLIENT_ID_BYTES_MAX}")]
    ClientIdTooLong {
        /// Its size, in bytes.
        len: usize,
    },
    /// Code `index_bad_value`: stored value in tree `tree` has `len` bytes, expected `expected`.
    #[error("stored value in tree {tree} has {len} bytes, expected {expected}")]
    BadValue {
        /// The sled tree.
        tree: &'static str,
        /// Its size, in bytes.
        len: usize,
        /// Bytes a value of that tree has.
        expected: usize,
    },
    /// Code `index_head_behind`: head would move back from size `current` to `new`.
    #[error("head would move back from size {current} to {new}")]
    HeadBehind {
        /// The head stored.
        current: u64,
        /// The head being written.
        new: u64,
    },
}

impl IndexError {
    /// Stable snake_case code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            IndexError::Sled { .. } => "index_sled",
            IndexError::ClientIdTooLong { .. } => "index_client_id_too_long",
            IndexError::BadValue { .. } => "index_bad_value",
            IndexError::HeadBehind { .. } => "index_head_behind",
        }
    }
}

/// How long [`Index::open`] waits for sled's file lock. A database just dropped in this
/// process keeps its lock until sled's background flusher has finished, which takes a
/// moment under load; another process holding it keeps it for good.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn open_db(path: &Path) -> Result<sled::Db, sled::Error> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
        {
            // sled 0.34 reports a held lock as `Other` with this text (config.rs, try_lock).
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn sled_err(op: &'static str) -> impl FnOnce(sled::Error) -> IndexError {
    move |source| IndexError::Sled { op, source }
}

/// The client ids of one batch, to apply together with its head.
#[derive(Debug, Clone, Default)]
pub struct IndexBatch {
    clients: Vec<(Vec<u8>, EntryId)>,
}

impl IndexBatch {
    /// An empty batch.
    pub fn new() -> IndexBatch {
        IndexBatch::default()
    }

    /// Records that client id `client` names entry `entry`.
    ///
    /// # Errors
    /// If `client` is over [`CLIENT_ID_BYTES_MAX`].
    pub fn insert_client(&mut self, client: &[u8], entry: EntryId) -> Result<(), IndexError> {
        check_client(client)?;
        self.clients.push((client.to_vec(), entry));
        Ok(())
    }

    /// Client ids in the batch.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether the batch has no client id.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

fn check_client(client: &[u8]) -> Result<(), IndexError> {
    if client.len() > CLIENT_ID_BYTES_MAX {
        return Err(IndexError::ClientIdTooLong { len: client.len() });
    }
    Ok(())
}

/// The sled database and its three trees.
#[derive(Debug, Clone)]
pub struct Index {
    path: PathBuf,
    db: sled::Db,
    clients: sled::Tree,
    meta: sled::Tree,
}

impl Index {
    /// Opens (or creates) the database at `path` with a [`CACHE_BYTES`] page cache.
    ///
    /// # Errors
    /// If sled cannot open the database (I/O, corruption, or another process holds it).
    pub fn open(path: impl AsRef<Path>) -> Result<Index, IndexError> {
        let path = path.as_ref().to_path_buf();
        let db = open_db(&path).map_err(sled_err("open"))?;
        let clients = db.open_tree("clients").map_err(sled_err("open_tree"))?;
        let meta = db.open_tree("meta").map_err(sled_err("open_tree"))?;
        Ok(Index {
            path,
            db,
            clients,
            meta,
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The prefix of the log the index reflects; `None` for a new index.
    ///
    /// # Errors
    /// On a sled failure, or a stored head that is not 48 bytes.
    pub fn head(&self) -> Result<Option<Head>, IndexError> {
        let Some(bytes) = self.meta.get(HEAD_KEY).map_err(sled_err("get head"))? else {
            return Ok(None);
        };
        let bad = IndexError::BadValue {
            tree: "meta",
            len: bytes.len(),
            expected: HEAD_BYTES,
        };
        Head::from_bytes(&bytes).map(Some).ok_or(bad)
    }

    /// The entry id that client id `client` names, if indexed.
    ///
    /// # Errors
    /// If `client` is over [`CLIENT_ID_BYTES_MAX`]; on a sled failure, or a stored value
    /// that is not 32 bytes.
    pub fn client(&self, client: &[u8]) -> Result<Option<EntryId>, IndexError> {
        check_client(client)?;
        let Some(bytes) = self.clients.get(client).map_err(sled_err("get client"))? else {
            return Ok(None);
        };
        let bad = IndexError::BadValue {
            tree: "clients",
            len: bytes.len(),
            expected: 32,
        };
        bytes.as_ref().try_into().map(Some).map_err(|_| bad)
    }

    /// Inserts the batch's client ids (one sled batch), THEN the head,
    /// so that a crash in between leaves a head that is behind; re-applying from it
    /// writes the same values again. Later writes to a key win: the caller guarantees
    /// that entry and client ids are new before it sequences them.
    ///
    /// # Errors
    /// [`IndexError::HeadBehind`] if `head.size` is below the stored head's,
    /// (nothing is written then); `Sled` on a sled failure.
    pub fn apply(&self, batch: &IndexBatch, head: Head) -> Result<(), IndexError> {
        if let Some(current) = self.head()?.filter(|current| current.size > head.size) {
            return Err(IndexError::HeadBehind {
                current: current.size,
                new: head.size,
            });
        }
        // An empty batch is not free in sled (an atomic batch marker and an I/O buffer
        // written for nothing), and a ledger's batches have no client ids.
        if !batch.clients.is_empty() {
            let mut clients = sled::Batch::default();
            for (client, entry) in &batch.clients {
                clients.insert(client.as_slice(), &entry[..]);
            }
            self.clients
                .apply_batch(clients)
                .map_err(sled_err("apply clients"))?;
        }
        self.meta
            .insert(HEAD_KEY, &head.to_bytes()[..])
            .map_err(sled_err("insert head"))?;
        Ok(())
    }

    /// Flushes sled's dirty pages to disk; returns the bytes flushed.
    ///
    /// # Errors
    /// On a sled failure.
    pub fn flush(&self) -> Result<usize, IndexError> {
        self.db.flush().map_err(sled_err("flush"))
    }

    /// The database, for layers above that keep their own trees in it.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_encoding_round_trips_and_rejects_other_lengths() {
        let head = Head {
            size: 3,
            record_end: 0x0102,
            root: Hash([9; 32]),
        };
        let bytes = head.to_bytes();
        assert_eq!(
            &bytes[..16],
            &[0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 1, 2]
        );
        assert_eq!(Head::from_bytes(&bytes), Some(head));
        assert_eq!(Head::from_bytes(&bytes[..47]), None);
        assert_eq!(Head::from_bytes(&[bytes.as_slice(), &[0]].concat()), None);
    }

    #[test]
    fn client_ids_over_the_limit_are_refused() {
        let mut batch = IndexBatch::new();
        let long = [b'k'; CLIENT_ID_BYTES_MAX + 1];
        let err = batch.insert_client(&long, [0; 32]).unwrap_err();
        assert_eq!(err.code(), "index_client_id_too_long");
        assert!(batch.is_empty());
        batch
            .insert_client(&long[..CLIENT_ID_BYTES_MAX], [0; 32])
            .unwrap();
    }
}
