//! A map kept across a clean shutdown: its node files, and a seal that says which state
//! they hold and what they hold (issue 15: a city's map took most of `serve`'s open to
//! rebuild).
//!
//! The ledger's close writes the files to disk, then the seal beside them
//! ([`SEAL_FILE`]). The next open reuses the files only if the seal decodes, names the
//! state sled's head names (its log size and map root), and the files' records have the
//! checksums it records; and it removes the seal, durably, before anything can change
//! the files. A crash therefore never leaves a seal over files changed since: the seal
//! exists only between a clean close and the next open. Whatever else is found (no seal,
//! another state's, a file cut short or garbled) the map is rebuilt from the objects,
//! as before. The checksum is CRC-32C, as sled's and the record file's: it catches a
//! damaged file, not a forged one (whoever can write the data directory can rewrite
//! sled as well; an auditor's replay is what checks the operator).
//!
//! The seal, all integers big-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `LLMSEAL1` |
//! | 8 | tag: the log size of the state the map holds |
//! | 32 | the map root |
//! | 4 | the root's child reference (the tree's encoding) |
//! | 8 + 4 | leaf records stored, CRC-32C of their bytes in `state-map.leaves` |
//! | 8 + 4 | internal-node records stored, CRC-32C of theirs in `state-map.nodes` |
//! | 8 + 4 each | free leaf slots: count, then each index |
//! | 8 + 4 each | free internal-node slots: count, then each index |
//! | 4 | CRC-32C of every byte before |

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::arena::ArenaError;
use super::proof::Hash;

/// The seal's file name in the map's directory.
pub const SEAL_FILE: &str = "state-map.seal";

const MAGIC: &[u8; 8] = b"LLMSEAL1";

/// Why a map was not sealed, or a sealed map not reused (it is then rebuilt from the
/// objects).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No seal: the last run did not close cleanly (or the map was never sealed).
    #[error("no seal: the last run did not close cleanly")]
    Missing,
    /// The seal does not decode.
    #[error("the seal does not decode")]
    Garbled,
    /// The seal is of another state than sled's head.
    #[error("the seal is of the state at log size {sealed}, not {head}")]
    OtherState {
        /// The log size the seal names.
        sealed: u64,
        /// The log size the head names.
        head: u64,
    },
    /// The state is not persisted up to its last commit: sled's head names another.
    #[error("the state at log size {size} is persisted only to {head}")]
    NotPersisted {
        /// The log size of the state.
        size: u64,
        /// The log size sled's head names.
        head: u64,
    },
    /// The sealed files are not what the seal describes.
    #[error(transparent)]
    Files(#[from] ArenaError),
    /// The seal could not be read or removed.
    #[error("seal {SEAL_FILE}: {0}")]
    Io(#[from] std::io::Error),
}

/// Records stored in an arena, and their CRC-32C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ArenaSeal {
    pub records: u64,
    pub crc32c: u32,
}

/// What a seal records (see the module doc for its bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seal {
    pub tag: u64,
    pub root: Hash,
    pub root_ref: [u8; 4],
    pub leaves: ArenaSeal,
    pub nodes: ArenaSeal,
    pub free_leaves: Vec<u32>,
    pub free_nodes: Vec<u32>,
}

impl Seal {
    fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(100 + 4 * (self.free_leaves.len() + self.free_nodes.len()));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.tag.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.root_ref);
        for arena in [self.leaves, self.nodes] {
            out.extend_from_slice(&arena.records.to_be_bytes());
            out.extend_from_slice(&arena.crc32c.to_be_bytes());
        }
        for free in [&self.free_leaves, &self.free_nodes] {
            out.extend_from_slice(&(free.len() as u64).to_be_bytes());
            free.iter()
                .for_each(|i| out.extend_from_slice(&i.to_be_bytes()));
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Seal> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32c::crc32c(body).to_be_bytes() != crc || !body.starts_with(MAGIC) {
            return None;
        }
        let mut r = Reader(&body[MAGIC.len()..]);
        let (tag, root, root_ref) = (r.u64()?, r.take()?, r.take()?);
        let mut arena = || {
            Some(ArenaSeal {
                records: r.u64()?,
                crc32c: u32::from_be_bytes(r.take()?),
            })
        };
        let (leaves, nodes) = (arena()?, arena()?);
        let (free_leaves, free_nodes) = (r.indexes()?, r.indexes()?);
        r.0.is_empty().then_some(Seal {
            tag,
            root,
            root_ref,
            leaves,
            nodes,
            free_leaves,
            free_nodes,
        })
    }

    /// Writes the seal into `dir`: to a file of its own, synced, then renamed over
    /// [`SEAL_FILE`], the directory synced, so that a crash leaves the old seal or the
    /// new one whole.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let partial = dir.join(format!("{SEAL_FILE}.partial"));
        let mut file = File::create(&partial)?;
        file.write_all(&self.encode())?;
        file.sync_all()?;
        std::fs::rename(&partial, dir.join(SEAL_FILE))?;
        File::open(dir)?.sync_all()
    }

    /// The seal in `dir`, removed durably (the directory synced) before it is returned:
    /// whatever follows may change the files it describes.
    pub fn take(dir: &Path) -> Result<Seal, SealError> {
        let bytes = match std::fs::read(dir.join(SEAL_FILE)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        remove(dir)?;
        Seal::decode(&bytes.ok_or(SealError::Missing)?).ok_or(SealError::Garbled)
    }
}

/// Removes the seal in `dir`, if any, durably.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(SEAL_FILE)) {
        Ok(()) => File::open(dir)?.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Big-endian integers off the front of a byte string.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }

    /// A count, then that many u32 indexes (the count bounded by the bytes left).
    fn indexes(&mut self) -> Option<Vec<u32>> {
        let n = usize::try_from(self.u64()?).ok()?;
        if n > self.0.len() / 4 {
            return None;
        }
        (0..n)
            .map(|_| self.take().map(u32::from_be_bytes))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal() -> Seal {
        Seal {
            tag: 4_096,
            root: [7; 32],
            root_ref: [0x80, 0, 0, 9],
            leaves: ArenaSeal {
                records: 11,
                crc32c: 0xDEAD_BEEF,
            },
            nodes: ArenaSeal {
                records: 10,
                crc32c: 0x0BAD_F00D,
            },
            free_leaves: vec![3, 5],
            free_nodes: vec![],
        }
    }

    #[test]
    fn a_seal_reads_back_as_written_and_once() {
        let dir = tempfile::TempDir::new().unwrap();
        seal().write(dir.path()).unwrap();
        assert_eq!(Seal::take(dir.path()).unwrap(), seal());
        assert!(
            matches!(Seal::take(dir.path()), Err(SealError::Missing)),
            "taken: removed"
        );
    }

    #[test]
    fn a_seal_with_any_byte_changed_cut_or_lengthened_does_not_decode() {
        let bytes = seal().encode();
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x01;
            assert_eq!(Seal::decode(&changed), None, "byte {at} changed");
            assert_eq!(Seal::decode(&bytes[..at]), None, "cut to {at}");
        }
        let mut longer = bytes[..bytes.len() - 4].to_vec();
        longer.push(0);
        longer.extend_from_slice(&crc32c::crc32c(&longer).to_be_bytes());
        assert_eq!(Seal::decode(&longer), None, "a byte after the free lists");
    }
}
