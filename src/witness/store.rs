//! The witness's durable state, one directory per log under `DIR/logs/`, named by the
//! lowercase hex SHA-256 of the log's origin (the tlog-witness monitoring path):
//! - `checkpoint`: the latest checkpoint the witness cosigned, with the log's verified
//!   signature lines and the witness's cosignature — its size and root are the state;
//! - `split-views/<n>.json`: each checkpoint the log signed that was inconsistent with
//!   the one held, beside the one held ([`SplitView`]).
//!
//! Every file is written to a temporary name, fsynced, renamed and its directory fsynced
//! before the witness answers: a cosignature is never returned for a state that a crash
//! could lose, so the witness never rolls back. A `checkpoint` file that cannot be read
//! back stops the witness from starting: starting without it would be a rollback.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::log::hash::{hex_encode, Hash};
use crate::log::note::{checkpoint_head, Note, NoteError, Origin};

/// Directory, inside the witness's data directory, holding one directory per log.
pub const LOGS_DIR: &str = "logs";

/// Split views kept per log; past this they are logged, not stored (only the log's own
/// key can make one, so this bounds what a misbehaving log costs the witness's disk).
pub const SPLIT_VIEWS_PER_LOG_MAX: usize = 1024;

/// The lowercase hex SHA-256 of an origin: the tlog-witness "origin hash".
pub fn origin_hash(origin: &Origin) -> String {
    hex_encode(&Sha256::digest(origin.as_str().as_bytes()))
}

/// What the witness holds for one log: the latest checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its tree size.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
    /// The note served at `GET <origin hash>/checkpoint`.
    pub note: String,
}

/// A checkpoint signed by the log that does not extend the one the witness held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitView {
    /// The log's origin.
    pub origin: String,
    /// Stable code of the check that failed (e.g. `root_mismatch`).
    pub reason: String,
    /// What the check found, in words.
    pub detail: String,
    /// POSIX seconds when the witness saw it.
    pub time: u64,
    /// The checkpoint the witness held and had cosigned.
    pub held: String,
    /// The whole `add-checkpoint` body received: old size, proof, the log-signed checkpoint.
    pub submitted: String,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A stored file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored checkpoint does not parse or verify: the witness stops rather than roll back.
    #[error("{path}: the stored checkpoint is damaged: {source}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Why it does not parse or verify.
        #[source]
        source: NoteError,
    },
    /// A stored checkpoint is of another log than its directory's.
    #[error("{path}: holds a checkpoint of {found}, not of {expected}")]
    WrongOrigin {
        /// The file.
        path: PathBuf,
        /// The origin of the log the directory is for.
        expected: String,
        /// The origin in the file.
        found: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One log's directory.
#[derive(Debug)]
pub struct LogDir {
    dir: PathBuf,
}

impl LogDir {
    /// The directory of `origin` under the witness's `data` directory.
    pub fn new(data: &Path, origin: &Origin) -> LogDir {
        LogDir {
            dir: data.join(LOGS_DIR).join(origin_hash(origin)),
        }
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    fn split_views_dir(&self) -> PathBuf {
        self.dir.join("split-views")
    }

    /// The checkpoint held for `origin`, if any.
    ///
    /// # Errors
    /// [`StoreError::Io`] (a missing file is no state, any other I/O error is an error),
    /// [`StoreError::Damaged`], [`StoreError::WrongOrigin`].
    pub fn load(&self, origin: &Origin) -> Result<Option<Held>, StoreError> {
        let path = self.checkpoint_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let damaged = |source| StoreError::Damaged {
            path: path.clone(),
            source,
        };
        let note = Note::parse(&bytes).map_err(damaged)?;
        let head = checkpoint_head(note.text()).map_err(damaged)?;
        if &head.origin != origin {
            return Err(StoreError::WrongOrigin {
                path,
                expected: origin.to_string(),
                found: head.origin.to_string(),
            });
        }
        Ok(Some(Held {
            size: head.size,
            root: head.root,
            note: note.to_text(),
        }))
    }

    /// Stores `held` durably (temporary file, fsync, rename, fsync of the directory).
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn save(&self, held: &Held) -> Result<(), StoreError> {
        write_durably(&self.checkpoint_path(), held.note.as_bytes())
    }

    /// Records a split view durably, unless [`SPLIT_VIEWS_PER_LOG_MAX`] are stored;
    /// returns the file written.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn record_split_view(&self, view: &SplitView) -> Result<Option<PathBuf>, StoreError> {
        let dir = self.split_views_dir();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let count = fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count();
        if count >= SPLIT_VIEWS_PER_LOG_MAX {
            return Ok(None);
        }
        let path = dir.join(format!("{count:06}.json"));
        let json = serde_json::to_vec_pretty(view).map_err(|e| io(&path)(e.into()))?;
        write_durably(&path, &json)?;
        Ok(Some(path))
    }

    /// Every split view recorded for this log, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Io`] for an unreadable directory or file; a file that is not a
    /// split view is an I/O error of kind `InvalidData`.
    pub fn split_views(&self) -> Result<Vec<SplitView>, StoreError> {
        let dir = self.split_views_dir();
        let mut paths = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io(&dir))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
        paths.sort();
        paths
            .iter()
            .map(|p| {
                let bytes = fs::read(p).map_err(io(p))?;
                serde_json::from_slice(&bytes).map_err(|e| io(p)(e.into()))
            })
            .collect()
    }
}

/// Writes `bytes` to `path` durably: a temporary file, fsync, rename, fsync of the dir.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}
