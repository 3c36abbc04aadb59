//! Where the map's node records live: an arena of fixed-size records, on the heap or in
//! a file mapped shared (see [`super`] for why a file, and what it costs).
//!
//! A record is plain bytes, encoded and decoded by the tree ([`super::tree`]); the arena
//! only stores, fetches and grows. The heap kind grows as a `Vec` does (doubling, with
//! a copy). A file grows without a copy (the file is lengthened and mapped again), so it
//! grows by a quarter, not double: at most a quarter of it is slack on disk (doubling
//! left a 10 M-key map in 2 GiB of files for 1.2 GiB of records), for a few more remaps,
//! each costing a minor fault on the next touch of each page. It first allocates the
//! new blocks on disk (`posix_fallocate`), so a full disk is an error at the growth,
//! never a `SIGBUS` at a later store into a hole of a sparse file.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapMut, UncheckedAdvice};

/// Most records of one kind: a child reference is 31 bits of index and a tag
/// (the tree's), so 2^31 - 1 records (a city is ~11 million objects).
pub const RECORDS_MAX: usize = (1 << 31) - 1;

/// Bytes of a file arena's first mapping, and its least growth.
const FILE_BYTES_MIN: usize = 1 << 20;

/// Why an arena could not store a record.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// The nodes file could not be created, grown or mapped (a full disk, say).
    #[error("state map nodes file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// More records than a child reference can name.
    #[error("the state map holds at most {RECORDS_MAX} records of a kind")]
    Full,
    /// A sealed nodes file holds fewer bytes than its seal says.
    #[error("state map nodes file {path}: {len} bytes, fewer than its seal's records")]
    Short {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// A sealed nodes file's records are not those its seal describes.
    #[error("state map nodes file {path}: its records' checksum is not its seal's")]
    Checksum {
        /// The file.
        path: PathBuf,
    },
    /// An earlier update stopped part way (its arena could not grow): the tree's
    /// records no longer describe one map, and it must be rebuilt from the objects.
    #[error("an earlier state map update failed part way; the map must be rebuilt")]
    Broken,
}

/// Where the bytes are.
enum Bytes {
    Heap(Vec<u8>),
    File(Mapped),
}

/// A file mapped shared, whole.
struct Mapped {
    path: PathBuf,
    file: File,
    map: MmapMut,
}

impl Mapped {
    /// Creates `path` afresh (a file left there is removed, never read: a map not
    /// reopened under its seal is rebuilt from the objects) and maps `bytes` of it.
    fn create(path: &Path, bytes: usize) -> Result<Mapped, ArenaError> {
        let fail = |source| ArenaError::File {
            path: path.to_path_buf(),
            source,
        };
        // A new inode rather than a truncation: a mapping of the old file elsewhere in
        // this process (a state dropped late) keeps its pages instead of faulting.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
            _ => {}
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(fail)?;
        let map = map_file(&file, bytes).map_err(fail)?;
        Ok(Mapped {
            path: path.to_path_buf(),
            file,
            map,
        })
    }

    /// Opens the file at `path` as an earlier run left it (a sealed arena: see
    /// [`super::seal`]) and maps it whole. It must hold at least `bytes`.
    fn reopen(path: &Path, bytes: usize) -> Result<Mapped, ArenaError> {
        let fail = |source| ArenaError::File {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(fail)?;
        let len = file.metadata().map_err(fail)?.len();
        if len < bytes as u64 {
            return Err(ArenaError::Short {
                path: path.to_path_buf(),
                len,
            });
        }
        let len = usize::try_from(len).map_err(|_| ArenaError::Full)?;
        let map = map_file(&file, len.max(FILE_BYTES_MIN)).map_err(fail)?;
        Ok(Mapped {
            path: path.to_path_buf(),
            file,
            map,
        })
    }

    /// Grows the file by a quarter (at least to `bytes`) and maps it again.
    fn grow(&mut self, bytes: usize) -> Result<(), ArenaError> {
        let len = self.map.len();
        let bytes = bytes.max(len.saturating_add((len / 4).max(FILE_BYTES_MIN)));
        self.map = map_file(&self.file, bytes).map_err(|source| ArenaError::File {
            path: self.path.clone(),
            source,
        })?;
        Ok(())
    }
}

/// Allocates `bytes` of `file` on disk and maps them shared.
fn map_file(file: &File, bytes: usize) -> std::io::Result<MmapMut> {
    fs2::FileExt::allocate(file, bytes as u64)?;
    // SAFETY: the mapping is sound as long as nothing else changes or shortens the file
    // while it is mapped. The file is this process's alone: created afresh at open
    // (`create_new`, after removing any old one), or reopened under a seal that the open
    // removes first (`super::seal`), in a data directory that the store's lock gives to
    // one process; written only through this mapping, and only ever lengthened (here,
    // before the new mapping is made).
    let map = unsafe { MmapMut::map_mut(file) }?;
    // Random access: no readahead, so the page cache holds the file in single pages
    // rather than large folios (ext4 has them since Linux 6.16), and a record written
    // dirties 4 KiB to write back, not the whole folio around it.
    map.advise(Advice::Random)?;
    Ok(map)
}

/// Bytes read at a time to check a reopened file's records.
const CHECKSUM_READ_BYTES: usize = 1 << 20;

/// An arena of `N`-byte records: indexes `0..len`, each a record once stored.
pub struct Records<const N: usize> {
    bytes: Bytes,
    len: usize,
}

impl<const N: usize> Records<N> {
    /// An empty arena on the heap.
    pub fn heap() -> Records<N> {
        Records {
            bytes: Bytes::Heap(Vec::new()),
            len: 0,
        }
    }

    /// An empty arena in the file at `path`, created afresh.
    ///
    /// # Errors
    /// The file cannot be created, allocated or mapped.
    pub fn file(path: &Path) -> Result<Records<N>, ArenaError> {
        Ok(Records {
            bytes: Bytes::File(Mapped::create(path, FILE_BYTES_MIN)?),
            len: 0,
        })
    }

    /// The arena of `len` records that an earlier run left in the file at `path`, if
    /// their checksum ([`Records::checksum`]) is `crc32c`: how a sealed map is reopened
    /// (`super::seal`). The records are read once to check them, with `pread`, not
    /// through the mapping: they stay out of the resident set until touched.
    ///
    /// # Errors
    /// The file cannot be opened or mapped, is shorter, or its records' checksum differs.
    pub fn reopen(path: &Path, len: usize, crc32c: u32) -> Result<Records<N>, ArenaError> {
        if len > RECORDS_MAX {
            return Err(ArenaError::Full);
        }
        let records = Records {
            bytes: Bytes::File(Mapped::reopen(path, len * N)?),
            len,
        };
        if records.checksum()? != crc32c {
            return Err(ArenaError::Checksum {
                path: path.to_path_buf(),
            });
        }
        Ok(records)
    }

    /// CRC-32C of the stored records' bytes (what a seal records of an arena). A file
    /// arena's are read from the file, which the mapping writes through the page cache.
    ///
    /// # Errors
    /// A read of the file fails.
    pub fn checksum(&self) -> Result<u32, ArenaError> {
        let Bytes::File(m) = &self.bytes else {
            return Ok(crc32c::crc32c(self.as_bytes()));
        };
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; CHECKSUM_READ_BYTES];
        let (mut crc, mut at, end) = (0u32, 0usize, self.len * N);
        while at < end {
            let chunk = &mut buf[..CHECKSUM_READ_BYTES.min(end - at)];
            m.file
                .read_exact_at(chunk, at as u64)
                .map_err(|source| ArenaError::File {
                    path: m.path.clone(),
                    source,
                })?;
            crc = crc32c::crc32c_append(crc, chunk);
            at += chunk.len();
        }
        Ok(crc)
    }

    /// Writes the file's records to disk and waits (`msync`, then `fsync`): before a
    /// seal names them. Nothing on the heap.
    ///
    /// # Errors
    /// `msync` or `fsync` refused.
    pub fn sync(&self) -> Result<(), ArenaError> {
        let Bytes::File(m) = &self.bytes else {
            return Ok(());
        };
        let fail = |source| ArenaError::File {
            path: m.path.clone(),
            source,
        };
        m.map.flush().map_err(fail)?;
        m.file.sync_all().map_err(fail)
    }

    /// Records stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Record `i` (stored before).
    pub fn get(&self, i: u32) -> [u8; N] {
        let at = i as usize * N;
        let mut record = [0; N];
        record.copy_from_slice(&self.as_bytes()[at..at + N]);
        record
    }

    /// Overwrites record `i` (stored before).
    pub fn put(&mut self, i: u32, record: &[u8; N]) {
        let at = i as usize * N;
        self.as_bytes_mut()[at..at + N].copy_from_slice(record);
    }

    /// Stores `record` at the end; its index.
    ///
    /// # Errors
    /// [`ArenaError::Full`] past [`RECORDS_MAX`]; a file arena that cannot grow.
    pub fn push(&mut self, record: &[u8; N]) -> Result<u32, ArenaError> {
        if self.len >= RECORDS_MAX {
            return Err(ArenaError::Full);
        }
        let end = (self.len + 1) * N;
        match &mut self.bytes {
            Bytes::Heap(v) => v.extend_from_slice(record),
            Bytes::File(m) => {
                if end > m.map.len() {
                    m.grow(end)?;
                }
                m.map[end - N..end].copy_from_slice(record);
            }
        }
        let i = u32::try_from(self.len).map_err(|_| ArenaError::Full)?;
        self.len += 1;
        Ok(i)
    }

    /// Bytes reserved on the heap (capacity, not just use).
    pub fn heap_bytes(&self) -> usize {
        match &self.bytes {
            Bytes::Heap(v) => v.capacity(),
            Bytes::File(_) => 0,
        }
    }

    /// Bytes of the file (allocated on disk and mapped).
    pub fn file_bytes(&self) -> usize {
        match &self.bytes {
            Bytes::Heap(_) => 0,
            Bytes::File(m) => m.map.len(),
        }
    }

    /// Writes the file's dirty pages back now (`msync`), so that they can be evicted
    /// without waiting; nothing on the heap. Never needed for correctness (the file is
    /// a cache): for a measurement of what a batch dirties, or to leave clean pages.
    ///
    /// # Errors
    /// `msync` refused.
    pub fn flush(&self) -> Result<(), ArenaError> {
        let Bytes::File(m) = &self.bytes else {
            return Ok(());
        };
        m.map.flush().map_err(|source| ArenaError::File {
            path: m.path.clone(),
            source,
        })
    }

    /// Lets the kernel drop the mapped pages from this process's resident set; they
    /// stay in the page cache (and are written back to the file if dirty), and come
    /// back on the next touch by a minor fault, or a read from disk if evicted since.
    /// Nothing to do on the heap.
    ///
    /// # Errors
    /// `madvise` refused.
    pub fn release(&self) -> Result<(), ArenaError> {
        let Bytes::File(m) = &self.bytes else {
            return Ok(());
        };
        // SAFETY: `MADV_DONTNEED` is "unchecked" because on a private or anonymous
        // mapping it zeroes the pages; this mapping is a shared mapping of a file, where
        // it only unmaps them (dirty ones are kept in the page cache, then the file), so
        // every record reads back the same (`an_arena_reads_the_same_after_its_pages_are_released`).
        unsafe { m.map.unchecked_advise(UncheckedAdvice::DontNeed) }.map_err(|source| {
            ArenaError::File {
                path: m.path.clone(),
                source,
            }
        })
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Heap(v) => v,
            Bytes::File(m) => &m.map[..self.len * N],
        }
    }

    fn as_bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.bytes {
            Bytes::Heap(v) => v,
            Bytes::File(m) => &mut m.map[..self.len * N],
        }
    }
}

impl<const N: usize> Clone for Records<N> {
    /// A copy on the heap, whatever the original's kind: two arenas never share a
    /// file.
    fn clone(&self) -> Self {
        Records {
            bytes: Bytes::Heap(self.as_bytes().to_vec()),
            len: self.len,
        }
    }
}

impl<const N: usize> std::fmt::Debug for Records<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.bytes {
            Bytes::Heap(_) => "heap",
            Bytes::File(m) => m.path.to_str().unwrap_or("file"),
        };
        write!(f, "Records<{N}>({} in {kind})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u32) -> [u8; 40] {
        let mut r = [0u8; 40];
        r[..4].copy_from_slice(&i.to_be_bytes());
        r[36..].copy_from_slice(&(!i).to_be_bytes());
        r
    }

    /// Enough 40-byte records to grow a file arena past eight times its first size.
    const PAST_THREE_REMAPS: u32 = (FILE_BYTES_MIN * 8 / 40 + 1) as u32;

    #[test]
    fn a_file_arena_round_trips_records_across_its_remaps() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut file = Records::<40>::file(&dir.path().join("nodes")).unwrap();
        let mut heap = Records::<40>::heap();
        for i in 0..PAST_THREE_REMAPS {
            assert_eq!(file.push(&record(i)).unwrap(), i);
            assert_eq!(heap.push(&record(i)).unwrap(), i);
        }
        let needed = PAST_THREE_REMAPS as usize * 40;
        assert!(file.file_bytes() >= needed, "grown to hold them");
        assert!(
            file.file_bytes() <= needed + needed / 4,
            "by a quarter at most"
        );
        // Overwrites land where they are asked, after every remap.
        file.put(7, &record(1_000_000));
        heap.put(7, &record(1_000_000));
        for i in 0..PAST_THREE_REMAPS {
            assert_eq!(file.get(i), heap.get(i), "record {i}");
        }
        assert_eq!(file.get(7), record(1_000_000));
        assert_eq!(
            file.get(PAST_THREE_REMAPS - 1),
            record(PAST_THREE_REMAPS - 1)
        );
    }

    #[test]
    fn an_arena_reads_the_same_after_its_pages_are_released() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut file = Records::<64>::file(&dir.path().join("leaves")).unwrap();
        for i in 0..50_000u32 {
            let mut r = [0u8; 64];
            r[60..].copy_from_slice(&i.to_le_bytes());
            file.push(&r).unwrap();
        }
        file.release().unwrap();
        for i in 0..50_000u32 {
            assert_eq!(file.get(i)[60..], i.to_le_bytes());
        }
    }

    #[test]
    fn a_file_arena_starts_from_nothing_whatever_the_file_held() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("nodes");
        std::fs::write(&path, vec![0xA5; 4096]).unwrap();
        let mut file = Records::<40>::file(&path).unwrap();
        assert_eq!(file.len(), 0);
        file.push(&record(3)).unwrap();
        assert_eq!(file.get(0), record(3));
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), FILE_BYTES_MIN);
        assert_eq!(on_disk[..40], record(3));
        assert!(
            on_disk[40..4096].iter().all(|b| *b == 0),
            "nothing of the old file"
        );
    }

    #[test]
    fn a_clone_is_a_heap_copy() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut file = Records::<40>::file(&dir.path().join("nodes")).unwrap();
        file.push(&record(1)).unwrap();
        let mut copy = file.clone();
        copy.put(0, &record(2));
        assert_eq!((file.get(0), copy.get(0)), (record(1), record(2)));
        assert_eq!((copy.file_bytes(), copy.len()), (0, 1));
    }
}
