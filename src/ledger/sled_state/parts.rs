//! The parts of a stored state (snapshot chunks and deltas, each a postcard
//! `Vec<(Key, Value)>` of at most [`super::VALUE_BYTES_MAX`] bytes) as an open reads
//! them: which parts the head names, each read and parsed on the map's pool.

use super::layout::{chunk_key, delta_key, read_varint};
use super::tables::Encoded;
use super::{corrupt, Change, Head, Key, StateMap, StateStoreError, Value};

/// A snapshot chunk or delta part (postcard `Vec<(Key, Value)>`), parsed: each object's
/// bytes as they are, and its change to the state map. Every object is decoded once, to
/// check it and to hash it; parts parse independently, so an open parses them in
/// parallel.
pub(super) struct Part {
    pub objects: Vec<(Key, Encoded)>,
    pub changes: Vec<Change>,
}

impl Part {
    pub(super) fn parse(bytes: &[u8], what: &str) -> Result<Part, StateStoreError> {
        let (n, mut rest) = read_varint(bytes).ok_or_else(|| corrupt(what, "no length"))?;
        // Bounded by the bytes: an object takes at least two.
        let capacity = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(bytes.len() / 2);
        let mut part = Part {
            objects: Vec::with_capacity(capacity),
            changes: Vec::with_capacity(capacity),
        };
        for _ in 0..n {
            let (key, after_key) =
                postcard::take_from_bytes::<Key>(rest).map_err(|e| corrupt(what, e))?;
            let (value, after_value) =
                postcard::take_from_bytes::<Value>(after_key).map_err(|e| corrupt(what, e))?;
            let bytes = &after_key[..after_key.len() - after_value.len()];
            part.changes.push(StateMap::change(&key, Some(&value)));
            part.objects.push((key, bytes.into()));
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

/// The parts under `keys`, each read and parsed ([`Part::parse`]: every object
/// decoded once, to check it and hash it), in parallel, returned in order with the
/// bytes each takes in sled. The open's main cost, spread over the cores (issue 15).
pub(super) fn read(
    tree: &sled::Tree,
    keys: &[(sled::IVec, String)],
) -> Result<Vec<(Part, u64)>, StateStoreError> {
    use rayon::prelude::*;
    let read = |(key, what): &(sled::IVec, String)| {
        let bytes = tree
            .get(key)?
            .ok_or_else(|| corrupt(what.as_str(), "missing"))?;
        Ok((Part::parse(&bytes, what)?, bytes.len() as u64))
    };
    StateMap::in_pool(|| keys.par_iter().map(read).collect())
}
