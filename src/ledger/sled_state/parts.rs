//! The parts of a stored state (snapshot chunks and deltas, each a postcard
//! `Vec<(Key, Value)>` of at most [`super::VALUE_BYTES_MAX`] bytes) as an open reads
//! them: which parts the head names, each read and parsed on the map's pool.

use super::layout::{chunk_key, delta_key, read_varint};
use super::tables::Stored;
use super::{corrupt, Change, Head, Key, StateMap, StateStoreError, Table, Value};

/// A snapshot chunk or delta part (postcard `Vec<(Key, Value)>`), parsed: each object's
/// bytes as they are, and, if asked, its change to the state map. Every object is
/// decoded once, to check it (and hash it); parts parse independently, so an open parses
/// them in parallel.
pub(super) struct Part {
    pub objects: Vec<(Table, Stored)>,
    /// Empty unless the objects were hashed ([`Hashing::Objects`]).
    pub changes: Vec<Change>,
}

/// Whether a parse hashes the objects for the state map: only when the map is rebuilt,
/// not when a sealed one is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hashing {
    Objects,
    Skipped,
}

impl Part {
    pub(super) fn parse(
        bytes: &[u8],
        what: &str,
        hashing: Hashing,
    ) -> Result<Part, StateStoreError> {
        let (n, mut rest) = read_varint(bytes).ok_or_else(|| corrupt(what, "no length"))?;
        // Bounded by the bytes: an object takes at least two.
        let capacity = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(bytes.len() / 2);
        let mut part = Part {
            objects: Vec::with_capacity(capacity),
            changes: match hashing {
                Hashing::Objects => Vec::with_capacity(capacity),
                Hashing::Skipped => Vec::new(),
            },
        };
        for _ in 0..n {
            let (key, after_key) =
                postcard::take_from_bytes::<Key>(rest).map_err(|e| corrupt(what, e))?;
            let (value, after_value) =
                postcard::take_from_bytes::<Value>(after_key).map_err(|e| corrupt(what, e))?;
            let bytes = &after_key[..after_key.len() - after_value.len()];
            if hashing == Hashing::Objects {
                part.changes.push(StateMap::change(&key, Some(&value)));
            }
            part.objects.push((key.table, Stored::new(&key.id, bytes)));
            rest = after_value;
        }
        if !rest.is_empty() {
            return Err(corrupt(what, "bytes after the last object"));
        }
        Ok(part)
    }
}

/// The sled keys of the parts `head` names, each with its name for errors: its
/// snapshot's chunks, then the deltas after the snapshot, in order.
pub(super) fn keys(
    tree: &sled::Tree,
    head: &Head,
) -> Result<Vec<(sled::IVec, String)>, StateStoreError> {
    let snapshot = &head.snapshot;
    let mut keys: Vec<(sled::IVec, String)> = (0..snapshot.chunks)
        .map(|chunk| {
            let key = chunk_key(snapshot.generation, chunk);
            (key.as_slice().into(), format!("snapshot chunk {chunk}"))
        })
        .collect();
    let from = delta_key(snapshot.size.saturating_add(1), 0);
    let to = delta_key(head.size, u32::MAX);
    for key in tree.range(from..=to).keys() {
        let key = key?;
        let what = format!("delta {key:?}");
        keys.push((key, what));
    }
    Ok(keys)
}

/// Parts parsed at a time by [`for_each`]: enough to keep the pool's threads busy, few
/// enough that the objects parsed ahead of the tables stay a small part of the state.
const PARTS_AT_ONCE: usize = 256;

/// Hands `each` the parts under `keys` in order, with the bytes each takes in sled,
/// while the next ones are read and parsed ([`Part::parse`]: every object decoded once,
/// to check it and, if asked, hash it), in parallel on the map's pool. The open's main
/// cost, spread over the cores (issue 15); the parts held at once are at most twice
/// [`PARTS_AT_ONCE`].
///
/// # Errors
/// The first part that cannot be read or parsed.
pub(super) fn for_each(
    tree: &sled::Tree,
    keys: &[(sled::IVec, String)],
    hashing: Hashing,
    mut each: impl FnMut(Part, u64, &sled::IVec),
) -> Result<(), StateStoreError> {
    use rayon::prelude::*;
    let read = |(key, what): &(sled::IVec, String)| {
        let bytes = tree
            .get(key)?
            .ok_or_else(|| corrupt(what.as_str(), "missing"))?;
        Ok((Part::parse(&bytes, what, hashing)?, bytes.len() as u64))
    };
    let parse = |batch: &[(sled::IVec, String)]| -> Result<Vec<(Part, u64)>, StateStoreError> {
        StateMap::in_pool(|| batch.par_iter().map(read).collect())
    };
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for batch in keys.chunks(PARTS_AT_ONCE) {
                let parsed = parse(batch);
                let failed = parsed.is_err();
                if sender.send(parsed).is_err() || failed {
                    break;
                }
            }
        });
        let mut keys = keys.iter();
        for parsed in receiver {
            for (part, bytes) in parsed? {
                let (key, _) = keys.next().expect("a part parsed for each key");
                each(part, bytes, key);
            }
        }
        Ok(())
    })
}
