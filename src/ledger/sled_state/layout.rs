//! The sled keys of the state and the encoding of its values, cut by size
//! (see [`super`] for the layout and why values stay under [`VALUE_BYTES_MAX`]).

use super::Table;
#[cfg(test)]
use super::{corrupt, Key, StateStoreError, Value};

/// First bytes of a head in this layout (an older layout's head is not read). Version 8:
/// entry records stored without their key and with their payload digest as bytes
/// (`objects/entry_record_serde.rs`; served and hashed as before). Version 7:
/// the number of objects in each table, after the snapshot (what the open reserves
/// room for). Version 6: `Claim.preferences`, `Claim.allocations` and `Allocation.open_lessons`. Version 5:
/// the head holds the state map root (32 bytes) where version 4 held the LtHash lanes.
/// Version 4: `Party.pledges_unapproved`, `RunRecord.closed_at`, the `meta/clock` object,
/// the entry-format-v2 objects (author-scoped entry records, quotas, bounded parties) and
/// snapshot chunks and deltas cut into values of at most 4 KiB; postcard has no field
/// names, so a state of an older version is rebuilt from the log, never misread.
pub const HEAD_MAGIC: &[u8; 8] = b"LLSTATE8";
const HEAD_BYTES: usize = 8 + 8 + 32 + 8 + 8 + 4 + 8 * TABLES;
/// Tables of the state.
const TABLES: usize = Table::ALL.len();
/// Where the persisted state starts: a snapshot generation and the log size it reflects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub generation: u64,
    pub size: u64,
    pub chunks: u32,
}

/// The head record: what the persisted state reflects.
pub(super) struct Head {
    pub size: u64,
    pub root: [u8; 32],
    pub snapshot: Snapshot,
    /// Objects in each table (by `Table as usize`): a hint of the room to reserve.
    pub objects: [u64; TABLES],
}

impl Head {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_BYTES);
        out.extend_from_slice(HEAD_MAGIC);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.snapshot.generation.to_be_bytes());
        out.extend_from_slice(&self.snapshot.size.to_be_bytes());
        out.extend_from_slice(&self.snapshot.chunks.to_be_bytes());
        for n in self.objects {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out
    }

    /// `None` for anything but a head of this layout.
    pub(super) fn decode(bytes: &[u8]) -> Option<Head> {
        if bytes.len() != HEAD_BYTES || !bytes.starts_with(HEAD_MAGIC) {
            return None;
        }
        let u64_at = |at: usize| {
            bytes
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        };
        let rest = 16 + 32;
        let mut objects = [0u64; TABLES];
        for (i, n) in objects.iter_mut().enumerate() {
            *n = u64_at(rest + 20 + 8 * i)?;
        }
        Some(Head {
            size: u64_at(8)?,
            root: bytes.get(16..rest)?.try_into().ok()?,
            snapshot: Snapshot {
                generation: u64_at(rest)?,
                size: u64_at(rest + 8)?,
                chunks: u32::from_be_bytes(bytes.get(rest + 16..rest + 20)?.try_into().ok()?),
            },
            objects,
        })
    }
}

pub(super) const CHUNK_TAG: u8 = 1;
pub(super) const DELTA_TAG: u8 = 2;

/// Largest value written to sled (a chunk, a delta part), unless one object alone is
/// larger. sled 0.34 writes a tree leaf node whole — up to 17 values, since it splits a
/// leaf of more than 16 — and stores a node over its blob threshold (segment size
/// 512 KiB / 4 items, less the segment header) in a file of its own: a full leaf of
/// these values stays under it, so every value lives in sled's log, whose space sled
/// reclaims. (Measured: 64 KiB values still made blob files.)
pub const VALUE_BYTES_MAX: usize = 4 << 10;
/// sled 0.34's blob threshold, as computed from its default configuration.
const SLED_BLOB_THRESHOLD_BYTES: usize = (512 << 10) / 4 - 20;
const _: () = assert!(
    17 * (VALUE_BYTES_MAX + 64) < SLED_BLOB_THRESHOLD_BYTES,
    "a full sled leaf of state values (with their keys) must stay below the blob threshold"
);

pub(super) fn chunk_key(generation: u64, chunk: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = CHUNK_TAG;
    k[1..9].copy_from_slice(&generation.to_be_bytes());
    k[9..].copy_from_slice(&chunk.to_be_bytes());
    k
}

pub(super) fn delta_key(size: u64, part: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = DELTA_TAG;
    k[1..9].copy_from_slice(&size.to_be_bytes());
    k[9..].copy_from_slice(&part.to_be_bytes());
    k
}

/// Bytes of a part's objects: the vector's length prefix is a varint of at most 10 bytes.
pub(super) const PARTS_BUDGET: usize = VALUE_BYTES_MAX - 10;

/// Appends `n` as postcard writes a length: LEB128, 7 bits a byte, low bits first.
pub(super) fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a length as [`write_varint`] writes it: the value and the bytes after it;
/// `None` if the bytes end first or it does not fit in 64 bits.
pub(super) fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        let low = u64::from(b & 0x7f);
        if i == 9 && low > 1 {
            return None;
        }
        n |= low << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
}

/// Encodes `objects` as postcard `Vec<(Key, Value)>`s of at most [`VALUE_BYTES_MAX`]
/// bytes each (an object larger than that alone is a value of its own), in order: the
/// layout from decoded objects, which the tests hold `tables::encode_parts` (from stored
/// bytes) to, byte for byte.
#[cfg(test)]
pub(super) fn encode_parts<'a>(
    objects: impl Iterator<Item = (&'a Key, &'a Value)>,
    what: &str,
) -> Result<Vec<Vec<u8>>, StateStoreError> {
    let mut parts = Vec::new();
    let (mut group, mut group_bytes): (Vec<(&Key, &Value)>, usize) = (Vec::new(), 0);
    for object in objects {
        let bytes =
            postcard::experimental::serialized_size(&object).map_err(|e| corrupt(what, e))?;
        if !group.is_empty() && group_bytes + bytes > PARTS_BUDGET {
            parts.push(postcard::to_allocvec(&group).map_err(|e| corrupt(what, e))?);
            group.clear();
            group_bytes = 0;
        }
        group.push(object);
        group_bytes += bytes;
    }
    if !group.is_empty() {
        parts.push(postcard::to_allocvec(&group).map_err(|e| corrupt(what, e))?);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::objects::Pool;
    use crate::ledger::state::Table;

    #[test]
    fn parts_stay_under_the_maximum_and_decode_to_every_object_in_order() {
        let objects: Vec<(Key, Value)> = (0..2_000u64)
            .map(|n| {
                let pool = Pool {
                    claims: n,
                    ..Pool::default()
                };
                let key = Key::new(Table::Liability, &format!("inst-{n:05}"));
                (key, Value::Pool(Box::new(pool)))
            })
            .collect();
        let parts = encode_parts(objects.iter().map(|(k, v)| (k, v)), "test").unwrap();
        assert!(parts.len() > 1, "{} parts", parts.len());
        let mut decoded = Vec::new();
        for part in &parts {
            assert!(part.len() <= VALUE_BYTES_MAX, "{} bytes", part.len());
            let objects: Vec<(Key, Value)> = postcard::from_bytes(part).unwrap();
            decoded.extend(objects);
        }
        assert_eq!(decoded, objects);
    }

    #[test]
    fn varints_read_back_as_postcard_writes_them() {
        for n in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut ours = Vec::new();
            write_varint(&mut ours, n);
            assert_eq!(ours, postcard::to_allocvec(&n).unwrap(), "{n}");
            ours.push(0xAA);
            assert_eq!(read_varint(&ours), Some((n, &[0xAAu8][..])), "{n}");
        }
        assert_eq!(read_varint(&[0x80, 0x80]), None, "ends inside the varint");
        assert_eq!(read_varint(&[0xff; 10]), None, "over 64 bits");
    }
}
