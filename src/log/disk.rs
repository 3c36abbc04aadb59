//! How the log's files are written: every write, `fdatasync` and truncation of
//! `log.dat` and of the derived stores goes through one [`Disk`], so that tests can put
//! a fault-injecting layer under the real store (failed `fdatasync`, `ENOSPC`, short and
//! torn writes) and check that nothing unsynced is ever acknowledged.
//!
//! Reads go to the file directly: a read fault is reported where it happens and never
//! changes what is on disk.
//!
//! ```
//! use lesson_ledger::log::disk::Disk;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("f");
//! let file = std::fs::File::create(&path).unwrap();
//! let disk = Disk::os();
//! disk.write_all_at(&path, &file, b"bytes", 0).unwrap();
//! disk.sync_data(&path, &file).unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"bytes");
//! ```

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The write side of a filesystem, as the log uses it. `path` names the file for a
/// fault-injecting implementation (and errors); the operation is on `file`.
pub trait DiskWrites: Send + Sync + fmt::Debug {
    /// Writes all of `buf` at `offset` (`pwrite`, retried on short writes).
    ///
    /// # Errors
    /// As `pwrite`; part of `buf` may have been written.
    fn write_all_at(&self, path: &Path, file: &File, buf: &[u8], offset: u64) -> io::Result<()>;

    /// `fdatasync`.
    ///
    /// # Errors
    /// As `fdatasync`. After an error the page cache cannot be trusted (Linux marks the
    /// failed pages clean), so callers never retry and pretend.
    fn sync_data(&self, path: &Path, file: &File) -> io::Result<()>;

    /// `ftruncate`.
    ///
    /// # Errors
    /// As `ftruncate`.
    fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()>;
}

/// The operating system itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Os;

impl DiskWrites for Os {
    fn write_all_at(&self, _: &Path, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    fn sync_data(&self, _: &Path, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn set_len(&self, _: &Path, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }
}

/// A shared handle on the [`DiskWrites`] every file of one log writes through.
#[derive(Debug, Clone)]
pub struct Disk(Arc<dyn DiskWrites>);

impl Disk {
    /// The operating system: what every caller outside the fault tests uses.
    pub fn os() -> Disk {
        Disk(Arc::new(Os))
    }

    /// A disk writing through `writes` (a fault-injecting layer in tests).
    pub fn new(writes: Arc<dyn DiskWrites>) -> Disk {
        Disk(writes)
    }

    /// See [`DiskWrites::write_all_at`].
    ///
    /// # Errors
    /// As [`DiskWrites::write_all_at`].
    pub fn write_all_at(
        &self,
        path: &Path,
        file: &File,
        buf: &[u8],
        offset: u64,
    ) -> io::Result<()> {
        self.0.write_all_at(path, file, buf, offset)
    }

    /// See [`DiskWrites::sync_data`].
    ///
    /// # Errors
    /// As [`DiskWrites::sync_data`].
    pub fn sync_data(&self, path: &Path, file: &File) -> io::Result<()> {
        self.0.sync_data(path, file)
    }

    /// See [`DiskWrites::set_len`].
    ///
    /// # Errors
    /// As [`DiskWrites::set_len`].
    pub fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()> {
        self.0.set_len(path, file, len)
    }
}

impl Default for Disk {
    fn default() -> Disk {
        Disk::os()
    }
}
