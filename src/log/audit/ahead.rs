//! Reading and checking ahead of the audit's sequential pass: one thread reads chunks of
//! records (framing and checksum), another has their leaves decoded, verified and
//! hashed on the rayon pool, while the caller's thread takes the chunks before them in
//! order (leaf order, the tree, checkpoints, the layer above's replay). On two cores
//! the sequential pass then costs what it costs on top of the signatures, not between
//! them.
//!
//! The chunks arrive in file order, each with its leaves' results in order, and a
//! damaged record ends the stream: the pass sees exactly what a single-threaded read
//! would, in the same order, so its first finding is the same.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::log::envelope::KeyCache;
use crate::log::leaf_check::{check_leaves, CheckedLeaf, LeafProblem};
use crate::log::records::{Record, RecordIter, RecordKind, RecordsError};

/// Records read, and leaves checked, together between two sequential steps.
const CHUNK_RECORDS: usize = 4096;
/// Chunks read or checked ahead of the sequential pass, at each stage: enough to keep
/// both cores busy across a slow chunk (a state note's map root), few enough to bound
/// memory (a chunk is a few MB).
const AHEAD_CHUNKS: usize = 2;

/// Records in file order, up to the first damaged one.
pub(super) struct Chunk {
    /// The records read.
    pub(super) records: Vec<Record>,
    /// The check of each leaf record among them, in order.
    pub(super) leaves: Vec<Result<CheckedLeaf, LeafProblem>>,
    /// The damage that stopped the read just after these records, if any.
    pub(super) damage: Option<RecordsError>,
}

impl Chunk {
    /// Whether the stream ends with this chunk (damage, or the end of the file).
    fn is_last(&self) -> bool {
        self.damage.is_some() || self.records.is_empty()
    }
}

/// Runs `pass` on the chunks of `iter`, read and checked ahead on other threads. When
/// `pass` returns early, the threads stop at their next chunk.
pub(super) fn with_chunks_ahead<T>(
    iter: RecordIter,
    pass: impl FnOnce(&mut dyn Iterator<Item = Chunk>) -> T,
) -> T {
    let keys = KeyCache::self_certifying();
    let (read_tx, read_rx) = sync_channel(AHEAD_CHUNKS);
    let (checked_tx, checked_rx) = sync_channel(AHEAD_CHUNKS);
    std::thread::scope(|scope| {
        scope.spawn(move || read(iter, &read_tx));
        scope.spawn(|| check(read_rx, &keys, checked_tx));
        pass(&mut checked_rx.into_iter())
    })
}

/// Reads chunks of records until damage or the end of the file.
fn read(mut iter: RecordIter, tx: &SyncSender<Chunk>) {
    loop {
        let mut records = Vec::with_capacity(CHUNK_RECORDS);
        let mut damage = None;
        for record in iter.by_ref().take(CHUNK_RECORDS) {
            match record {
                Ok(r) => records.push(r),
                Err(e) => {
                    damage = Some(e);
                    break;
                }
            }
        }
        let chunk = Chunk {
            records,
            leaves: Vec::new(),
            damage,
        };
        let last = chunk.is_last();
        // A closed channel: the pass stopped.
        if tx.send(chunk).is_err() || last {
            return;
        }
    }
}

/// Checks the leaves of each chunk on all cores.
fn check(rx: Receiver<Chunk>, keys: &KeyCache, tx: SyncSender<Chunk>) {
    for mut chunk in rx {
        let leaves: Vec<&[u8]> = chunk
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Leaf)
            .map(|r| r.body.as_slice())
            .collect();
        chunk.leaves = check_leaves(&leaves, keys);
        if tx.send(chunk).is_err() {
            return;
        }
    }
}
