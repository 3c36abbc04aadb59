//! The seal: a durable record, in `log.dat`'s own header, of how far the file was
//! committed — how many leaf records and up to which byte. Recovery refuses to cut the
//! file below it: a damaged last checkpoint record can no longer make an acknowledged,
//! signed batch look like an unacknowledged tail (issue 11, item 7).
//!
//! ```text
//! header = "LLEDGER3" | slot | slot             8 + 2 × 32 bytes
//! slot   = leaves:u64 BE | end:u64 BE | zero:u64 | crc:u32 BE | zero:u32
//! crc    = CRC-32C over the 24 bytes before it
//! ```
//!
//! A batch's seal is written once the batch's `fdatasync` has returned, and made durable
//! by the next batch's `fdatasync`: it costs no sync of its own, and it only ever names
//! records that were durable before it was written (format 2 wrote it with its batch,
//! before the sync, and a power cut could make it durable before the records it named).
//! On disk the seal may therefore lag the records by a batch or two; readers of the live
//! file see it move at once, in the page cache.
//!
//! Two slots, because a slot is overwritten in place: a commit writes the slot that does
//! *not* hold the current seal, so a write torn by a crash damages only the slot being
//! replaced and the other still holds the previous seal. On open the valid slot with the
//! larger `end` is the seal; no valid slot is damage.

use crate::limits::RECORD_OVERHEAD_BYTES;

/// Bytes of one slot.
pub const SLOT_BYTES: usize = 32;
/// Number of slots.
pub const SLOTS: usize = 2;
/// Offset of slot 0 in the file (right after the magic).
pub const SLOTS_OFFSET: u64 = 8;
/// Bytes covered by the slot's checksum.
const CHECKED_BYTES: usize = 24;

const _: () = assert!(
    CHECKED_BYTES + 8 == SLOT_BYTES,
    "a slot is its checked fields, the checksum and 4 zero bytes"
);
const _: () = assert!(
    RECORD_OVERHEAD_BYTES < SLOT_BYTES * SLOTS,
    "the header is not mistaken for a record by size alone"
);

/// A committed position of the record file: `leaves` leaf records lie before byte
/// `end`, and `end` is the end of a checkpoint record (or of the header, for an empty
/// file). Everything before a seal was acknowledged and may have been published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seal {
    /// Leaf records before `end`: the tree size of the checkpoint that ends there.
    pub leaves: u64,
    /// Byte length of the file at this position.
    pub end: u64,
}

/// Offset of slot `n` in the file.
pub(super) fn slot_offset(n: usize) -> u64 {
    SLOTS_OFFSET + (n * SLOT_BYTES) as u64
}

/// The bytes of a slot holding `seal`.
pub(super) fn encode(seal: Seal) -> [u8; SLOT_BYTES] {
    let mut out = [0u8; SLOT_BYTES];
    out[..8].copy_from_slice(&seal.leaves.to_be_bytes());
    out[8..16].copy_from_slice(&seal.end.to_be_bytes());
    let crc = crc32c::crc32c(&out[..CHECKED_BYTES]);
    out[CHECKED_BYTES..CHECKED_BYTES + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The seal a slot holds, if its checksum and zero bytes are right.
pub(super) fn decode(slot: &[u8; SLOT_BYTES]) -> Option<Seal> {
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&slot[at..at + 8]);
        u64::from_be_bytes(bytes)
    };
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&slot[CHECKED_BYTES..CHECKED_BYTES + 4]);
    let zero = word(16) == 0 && slot[CHECKED_BYTES + 4..] == [0; 4];
    let sound = zero && u32::from_be_bytes(crc) == crc32c::crc32c(&slot[..CHECKED_BYTES]);
    sound.then(|| Seal {
        leaves: word(0),
        end: word(8),
    })
}

/// Of the two slots' contents, the current seal and which slot holds it: the valid one
/// with the larger `end` (a commit only ever moves the end forward). `None` when both
/// are damaged.
pub(super) fn current(slots: &[Option<Seal>; SLOTS]) -> Option<(Seal, usize)> {
    slots
        .iter()
        .enumerate()
        .filter_map(|(n, seal)| seal.map(|s| (s, n)))
        .max_by_key(|(seal, _)| seal.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_round_trips_and_any_flipped_bit_invalidates_it() {
        let seal = Seal {
            leaves: 370,
            end: 123_456,
        };
        let bytes = encode(seal);
        assert_eq!(decode(&bytes), Some(seal));
        for bit in 0..SLOT_BYTES * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode(&bad), None, "bit {bit}");
        }
        assert_eq!(decode(&[0; SLOT_BYTES]), None, "zeroes are not a seal");
    }

    #[test]
    fn the_current_seal_is_the_valid_slot_that_reaches_further() {
        let old = Seal {
            leaves: 5,
            end: 100,
        };
        let new = Seal {
            leaves: 9,
            end: 200,
        };
        assert_eq!(current(&[Some(old), Some(new)]), Some((new, 1)));
        assert_eq!(current(&[Some(new), Some(old)]), Some((new, 0)));
        assert_eq!(current(&[None, Some(old)]), Some((old, 1)));
        assert_eq!(current(&[None, None]), None);
    }
}
