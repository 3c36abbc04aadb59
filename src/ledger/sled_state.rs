//! The live state in sled: what the rules decided, kept next to the log it derives from.
//!
//! All objects live in one sled tree, `state`, under the byte key `table/id`, with the
//! value's JSON; beside them, under the key `\0head`, the log size the state reflects and
//! the running LtHash16 lanes ([`super::digest`]). One tree, so that a batch's objects and
//! its head are written by one atomic `apply_batch`: the head never claims more than the
//! objects hold. The log file is written first; if the process dies before the state, the
//! head is behind and [`super::writer::Ledger::open`] replays the missing entries through
//! the same rules. sled is never the source of truth.
//!
//! During a batch, accepted entries' changes collect in an in-memory overlay that later
//! entries of the same batch read through; the digest is updated once per distinct
//! object at commit (the pool totals change with every entry, but are hashed once per
//! batch).

use std::collections::BTreeMap;

use super::digest::LtHash16;
use super::error::RuleError;
use super::state::{Changes, Key, StateView, Table, Value};

/// The sled tree holding the state.
pub const STATE_TREE: &str = "state";
const HEAD_KEY: &[u8] = b"\0head";

/// Why the sled state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("state object {key} does not decode: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StateStoreError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            StateStoreError::Sled(_) => "state_unavailable",
            StateStoreError::Corrupt { .. } => "state_corrupt",
        }
    }
}

/// The state in sled, with the overlay of a batch in progress.
pub struct SledState {
    tree: sled::Tree,
    hash: LtHash16,
    size: u64,
    overlay: BTreeMap<Key, Value>,
    /// The overlay's effect, worked out ahead of the commit: the new running hash and
    /// the sled writes (without the head).
    prepared: Option<(LtHash16, sled::Batch)>,
}

fn key_bytes(key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.table.name().len() + 1 + key.id.len());
    out.extend_from_slice(key.table.name().as_bytes());
    out.push(b'/');
    out.extend_from_slice(key.id.as_bytes());
    out
}

fn decode(key: &Key, bytes: &[u8]) -> Result<Value, StateStoreError> {
    serde_json::from_slice(bytes).map_err(|e| StateStoreError::Corrupt {
        key: format!("{}/{}", key.table.name(), key.id),
        reason: e.to_string(),
    })
}

impl SledState {
    /// Opens (or creates) the state in `db`.
    ///
    /// # Errors
    /// sled faults; a damaged head.
    pub fn open(db: &sled::Db) -> Result<SledState, StateStoreError> {
        let tree = db.open_tree(STATE_TREE)?;
        let (size, hash) = match tree.get(HEAD_KEY)? {
            None => {
                // No head: whatever objects are here (sled lost its head, or a crash
                // before the first commit) are not vouched for; start from nothing so
                // the digest stays the digest of what is stored.
                tree.clear()?;
                (0, LtHash16::default())
            }
            Some(bytes) => {
                let corrupt = || StateStoreError::Corrupt {
                    key: "head".into(),
                    reason: "not 8 + 2048 bytes".into(),
                };
                let (size, lanes) = bytes.split_at_checked(8).ok_or_else(corrupt)?;
                let size = u64::from_be_bytes(size.try_into().map_err(|_| corrupt())?);
                (size, LtHash16::from_bytes(lanes).ok_or_else(corrupt)?)
            }
        };
        Ok(SledState {
            tree,
            hash,
            size,
            overlay: BTreeMap::new(),
            prepared: None,
        })
    }

    /// The number of log entries this state reflects (committed).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The state digest of the committed state (see [`super::digest`]).
    pub fn digest(&self) -> [u8; 32] {
        self.hash.digest()
    }

    /// Adds one accepted entry's writes to the batch in progress.
    pub fn stage(&mut self, changes: Changes) {
        self.prepared = None;
        self.overlay.extend(changes);
    }

    /// Drops the batch in progress (its entries were not written to the log).
    pub fn discard(&mut self) {
        self.overlay.clear();
        self.prepared = None;
    }

    /// The state digest once the batch in progress is committed (the digest is updated
    /// once per distinct object the batch wrote). The work is kept for the commit.
    ///
    /// # Errors
    /// sled faults; undecodable stored objects.
    pub fn prepare(&mut self) -> Result<[u8; 32], StateStoreError> {
        if let Some((hash, _)) = &self.prepared {
            return Ok(hash.digest());
        }
        let mut hash = self.hash.clone();
        let mut batch = sled::Batch::default();
        for (key, value) in &self.overlay {
            let k = key_bytes(key);
            if let Some(old) = self.tree.get(&k)? {
                hash.remove(key, &decode(key, &old)?);
            }
            hash.add(key, value);
            let bytes = serde_json::to_vec(value).map_err(|e| StateStoreError::Corrupt {
                key: key.id.clone(),
                reason: e.to_string(),
            })?;
            batch.insert(k, bytes);
        }
        let digest = hash.digest();
        self.prepared = Some((hash, batch));
        Ok(digest)
    }

    /// Writes the batch in progress, which brings the state to `size` log entries, in one
    /// atomic sled batch with the new head.
    ///
    /// # Errors
    /// sled faults; then the state on disk is as before and the head unchanged.
    pub fn commit(&mut self, size: u64) -> Result<(), StateStoreError> {
        assert!(
            size >= self.size,
            "the state only moves forward ({} -> {size})",
            self.size
        );
        self.prepare()?;
        let (hash, mut batch) = self
            .prepared
            .take()
            .ok_or_else(|| StateStoreError::Corrupt {
                key: "batch".into(),
                reason: "prepare left nothing".into(),
            })?;
        let mut head = size.to_be_bytes().to_vec();
        head.extend_from_slice(&hash.to_bytes());
        batch.insert(HEAD_KEY, head);
        self.tree.apply_batch(batch)?;
        self.overlay.clear();
        self.hash = hash;
        self.size = size;
        Ok(())
    }

    /// Every committed object of one table, in id order.
    ///
    /// # Errors
    /// sled faults; undecodable objects.
    pub fn scan(
        &self,
        table: Table,
    ) -> impl Iterator<Item = Result<(Key, Value), StateStoreError>> + '_ {
        let mut prefix = table.name().as_bytes().to_vec();
        prefix.push(b'/');
        let skip = prefix.len();
        self.tree.scan_prefix(prefix).map(move |item| {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&k[skip..]).into_owned();
            let key = Key { table, id };
            let value = decode(&key, &v)?;
            Ok((key, value))
        })
    }
}

impl StateView for SledState {
    fn get(&self, key: &Key) -> Result<Option<Value>, RuleError> {
        if let Some(v) = self.overlay.get(key) {
            return Ok(Some(v.clone()));
        }
        let found = self
            .tree
            .get(key_bytes(key))
            .map_err(|e| RuleError::StateUnavailable {
                detail: e.to_string(),
            })?;
        match found {
            None => Ok(None),
            Some(bytes) => decode(key, &bytes)
                .map(Some)
                .map_err(|e| RuleError::StateCorrupt {
                    detail: e.to_string(),
                }),
        }
    }
}
