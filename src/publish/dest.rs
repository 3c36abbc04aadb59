//! Where a publication goes, named by URL: `file:///dir` (a directory any web server
//! serves as it is), or, with the `s3` cargo feature (a default one),
//! `s3://bucket/prefix` (any S3-compatible object store, through the `object_store`
//! crate, `publish::s3`).
//!
//! Every object is written whole or not at all — a file through a temporary file in
//! the same directory tree and a rename, an object by one PUT — so a reader never sees
//! half a tile; [`Destination::sync`] makes everything written so far durable, which
//! the publisher calls before it writes the checkpoint.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::PublishError;

/// An object store the publisher writes to, by path relative to the log's prefix.
pub trait Destination: Send + Sync {
    /// The destination's URL, for messages.
    fn url(&self) -> String;
    /// The object at `path`, if there is one.
    ///
    /// # Errors
    /// [`PublishError::Destination`].
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, PublishError>;
    /// Writes the object at `path` whole, replacing any.
    ///
    /// # Errors
    /// [`PublishError::Destination`].
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), PublishError>;
    /// Makes every object written so far durable.
    ///
    /// # Errors
    /// [`PublishError::Destination`].
    fn sync(&self) -> Result<(), PublishError>;
}

/// Opens the destination a URL names.
///
/// # Errors
/// [`PublishError::Usage`] for a URL of no known scheme (or `s3://` in a build without
/// the `s3` feature); [`PublishError::Destination`] if it cannot be opened.
pub fn open(url: &str) -> Result<Box<dyn Destination>, PublishError> {
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(PublishError::Usage(format!(
                "{url}: a file URL names an absolute directory, file:///dir"
            )));
        }
        return Ok(Box::new(DirDestination::open(Path::new(path))?));
    }
    if url.starts_with("s3://") {
        #[cfg(feature = "s3")]
        return Ok(Box::new(super::s3::S3Destination::open(url)?));
        #[cfg(not(feature = "s3"))]
        return Err(PublishError::Usage(format!(
            "{url}: this build has no S3 support (its default feature `s3` was left out)"
        )));
    }
    Err(PublishError::Usage(format!(
        "{url}: the destination is file:///dir or s3://bucket/prefix"
    )))
}

/// A directory: the published tree as files, `tile/0/x001/234` and so on.
pub struct DirDestination {
    root: PathBuf,
    /// Temporary files are made here, in the same file system as `root`, and renamed.
    temp: PathBuf,
    next_temp: AtomicU64,
    /// Directories that gained an entry since the last [`Destination::sync`].
    dirty_dirs: Mutex<HashSet<PathBuf>>,
}

/// The directory of temporary files inside the destination (left over by a killed
/// run; emptied when a publisher opens the destination).
const TEMP_DIR: &str = ".publish-tmp";

fn io_error(path: &Path, source: std::io::Error) -> PublishError {
    PublishError::Destination {
        url: format!("file://{}", path.display()),
        source: Box::new(source),
    }
}

impl DirDestination {
    /// Opens (creating if needed) the directory `root`, and clears the temporary files
    /// a killed run left.
    ///
    /// # Errors
    /// [`PublishError::Destination`].
    pub fn open(root: &Path) -> Result<DirDestination, PublishError> {
        let temp = root.join(TEMP_DIR);
        match fs::remove_dir_all(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&temp, e)),
        }
        fs::create_dir_all(&temp).map_err(|e| io_error(&temp, e))?;
        Ok(DirDestination {
            root: root.to_owned(),
            temp,
            next_temp: AtomicU64::new(0),
            dirty_dirs: Mutex::new(HashSet::new()),
        })
    }

    fn path_of(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }
}

impl Destination for DirDestination {
    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, PublishError> {
        let file = self.path_of(path);
        match fs::read(&file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&file, e)),
        }
    }

    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), PublishError> {
        let file = self.path_of(path);
        let dir = file.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let temp = self.temp.join(format!("{}-{n}", std::process::id()));
        let mut out = File::create(&temp).map_err(|e| io_error(&temp, e))?;
        out.write_all(bytes).map_err(|e| io_error(&temp, e))?;
        // Durable before it is named: a rename that reaches the disk before the data
        // would leave a named, empty tile after a power cut.
        out.sync_all().map_err(|e| io_error(&temp, e))?;
        fs::rename(&temp, &file).map_err(|e| io_error(&file, e))?;
        let mut dirty = self.dirty_dirs.lock().unwrap_or_else(|p| p.into_inner());
        // Every new directory up to the root gained an entry.
        let mut at = Some(dir.as_path());
        while let Some(d) = at.filter(|d| d.starts_with(&self.root)) {
            if !dirty.insert(d.to_owned()) {
                break;
            }
            at = d.parent();
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), PublishError> {
        let dirs: Vec<PathBuf> = {
            let mut dirty = self.dirty_dirs.lock().unwrap_or_else(|p| p.into_inner());
            dirty.drain().collect()
        };
        for dir in dirs {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(&dir, e))?;
        }
        Ok(())
    }
}
