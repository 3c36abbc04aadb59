//! Record framing: how one record is laid out, parsed and checked, and the search for a
//! valid checkpoint record at any byte position that recovery relies on.
//!
//! ```text
//! record = kind:u8 | len:u32 BE | body:len bytes | crc:u32 BE   (CRC-32C over kind ‖ len ‖ body)
//! ```
//!
//! Private to [`super`]; its format is described there.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use crate::limits::{RECORD_BODY_BYTES_MAX, RECORD_OVERHEAD_BYTES};

/// Bytes of `kind ‖ len` in front of a body.
pub(super) const FRAME_HEAD: usize = 5;
/// Bytes the checkpoint search examines per window (each window also reads one maximal
/// record beyond, so a record straddling two windows is still seen whole).
const SEARCH_WINDOW_BYTES: u64 = 1 << 20;
/// Largest framed record, in bytes.
const RECORD_BYTES_MAX: u64 = (RECORD_BODY_BYTES_MAX + RECORD_OVERHEAD_BYTES) as u64;

const _: () = assert!(
    RECORD_OVERHEAD_BYTES == FRAME_HEAD + 4,
    "the limit's framing overhead must be kind (1) + len (4) + crc (4)"
);
const _: () = assert!(
    RECORD_BODY_BYTES_MAX <= u32::MAX as usize,
    "a body length must fit the u32 length field"
);

/// What a record holds. The byte values are the on-disk `kind` field.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// One log entry's leaf bytes.
    Leaf = 1,
    /// The checkpoint that closes a batch: the commit marker.
    Checkpoint = 2,
    /// The operator's signed digest of the state the layer above derives from the
    /// log, at the size of the checkpoint that follows it ([`crate::log::state_note`]).
    StateNote = 3,
}

impl RecordKind {
    /// The kind with this on-disk byte, if any.
    pub fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            1 => Some(RecordKind::Leaf),
            2 => Some(RecordKind::Checkpoint),
            3 => Some(RecordKind::StateNote),
            _ => None,
        }
    }
}

/// Why the bytes at some offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// Code `short_header`: fewer than 5 bytes left for kind and length.
    #[error("fewer than 5 bytes left for kind and length")]
    ShortHeader,
    /// Code `unknown_kind`: the kind byte is none of [`RecordKind`]'s.
    #[error("unknown record kind {kind}")]
    UnknownKind {
        /// The kind byte found.
        kind: u8,
    },
    /// Code `length_over_max`: the body length is over `RECORD_BODY_BYTES_MAX`.
    #[error("body length {len} over the maximum")]
    LengthOverMax {
        /// The body length the record claims, in bytes.
        len: u32,
    },
    /// Code `past_end`: the body (and its CRC) would run past the end of the file.
    #[error("body length {len} runs past the end of the file")]
    PastEnd {
        /// The body length the record claims, in bytes.
        len: u32,
    },
    /// Code `crc_mismatch`: the stored CRC-32C is not that of kind ‖ len ‖ body.
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    CrcMismatch {
        /// The CRC-32C the record carries.
        stored: u32,
        /// The CRC-32C of the bytes read.
        computed: u32,
    },
}

impl Damage {
    /// Stable snake_case code of the damage.
    pub fn code(&self) -> &'static str {
        match self {
            Damage::ShortHeader => "short_header",
            Damage::UnknownKind { .. } => "unknown_kind",
            Damage::LengthOverMax { .. } => "length_over_max",
            Damage::PastEnd { .. } => "past_end",
            Damage::CrcMismatch { .. } => "crc_mismatch",
        }
    }
}

/// A failure while parsing: damaged bytes, or the disk.
pub(super) enum Fault {
    Damage(Damage),
    Io(io::Error),
}

/// Appends one framed record to `out`. The caller has checked `body` against the limit.
pub(super) fn encode(out: &mut Vec<u8>, kind: RecordKind, body: &[u8]) {
    debug_assert!(body.len() <= RECORD_BODY_BYTES_MAX);
    let start = out.len();
    out.push(kind as u8);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A `Read` over a file from a position of its own, by `pread`: readers never share a
/// file cursor, so any number of them can run at once.
#[derive(Debug)]
pub(super) struct PositionedReader<F> {
    pub(super) file: F,
    pub(super) pos: u64,
}

impl<F: std::ops::Deref<Target = File>> Read for PositionedReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Parses the record at `offset` from `reader` (positioned there), with `end` the end of
/// the readable bytes. `Ok(None)` exactly at `end`; the body is left in `body`.
pub(super) fn read_record(
    reader: &mut impl Read,
    offset: u64,
    end: u64,
    body: &mut Vec<u8>,
) -> Result<Option<RecordKind>, Fault> {
    let left = end.saturating_sub(offset);
    if left == 0 {
        return Ok(None);
    }
    if left < FRAME_HEAD as u64 {
        return Err(Fault::Damage(Damage::ShortHeader));
    }
    let mut head = [0u8; FRAME_HEAD];
    reader.read_exact(&mut head).map_err(Fault::Io)?;
    let (kind, len) = check_head(&head, left)?;
    body.clear();
    body.resize(len as usize + 4, 0);
    reader.read_exact(body).map_err(Fault::Io)?;
    let stored = split_crc(body);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&head), body);
    if stored != computed {
        return Err(Fault::Damage(Damage::CrcMismatch { stored, computed }));
    }
    Ok(Some(kind))
}

/// Checks `kind ‖ len` against the limits and the `left` bytes that remain.
fn check_head(head: &[u8; FRAME_HEAD], left: u64) -> Result<(RecordKind, u32), Fault> {
    let kind = RecordKind::from_byte(head[0])
        .ok_or(Fault::Damage(Damage::UnknownKind { kind: head[0] }))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len as usize > RECORD_BODY_BYTES_MAX {
        return Err(Fault::Damage(Damage::LengthOverMax { len }));
    }
    if u64::from(len) + RECORD_OVERHEAD_BYTES as u64 > left {
        return Err(Fault::Damage(Damage::PastEnd { len }));
    }
    Ok((kind, len))
}

/// Removes the trailing 4-byte checksum from `body` and returns it.
fn split_crc(body: &mut Vec<u8>) -> u32 {
    let at = body.len() - 4;
    let stored = u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    body.truncate(at);
    stored
}

/// The first offset in `[from, end)` where a valid checkpoint record (framing and CRC)
/// starts, at any byte position. Reads windows of the file, each extended by one maximal
/// record so that a candidate near a window's end is checked whole.
pub(super) fn find_checkpoint(file: &File, from: u64, end: u64) -> io::Result<Option<u64>> {
    let mut window = Vec::new();
    let mut start = from;
    while start < end {
        let scan = SEARCH_WINDOW_BYTES.min(end - start);
        let len = (scan + RECORD_BYTES_MAX).min(end - start);
        window.resize(len as usize, 0);
        file.read_exact_at(&mut window, start)?;
        for at in 0..scan as usize {
            if is_checkpoint_at(&window[at..]) {
                return Ok(Some(start + at as u64));
            }
        }
        start += scan;
    }
    Ok(None)
}

/// Whether `bytes` begins with a whole, valid checkpoint record.
fn is_checkpoint_at(bytes: &[u8]) -> bool {
    if bytes.first() != Some(&(RecordKind::Checkpoint as u8)) || bytes.len() < FRAME_HEAD {
        return false;
    }
    let head: [u8; FRAME_HEAD] = [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]];
    let Ok((_, len)) = check_head(&head, bytes.len() as u64) else {
        return false;
    };
    let crc_at = FRAME_HEAD + len as usize;
    let stored = u32::from_be_bytes([
        bytes[crc_at],
        bytes[crc_at + 1],
        bytes[crc_at + 2],
        bytes[crc_at + 3],
    ]);
    crc32c::crc32c(&bytes[..crc_at]) == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn encode_lays_out_kind_length_body_and_crc32c() {
        let mut out = vec![0xEE];
        encode(&mut out, RecordKind::Leaf, b"abc");
        // CRC-32C("\x01\x00\x00\x00\x03abc"), computed by hand from the spec's layout.
        let crc = crc32c::crc32c(&[1, 0, 0, 0, 3, b'a', b'b', b'c']).to_be_bytes();
        let expected = [&[0xEE, 1, 0, 0, 0, 3, b'a', b'b', b'c'][..], &crc].concat();
        assert_eq!(out, expected);
        assert_eq!(frame(1, b"abc"), expected[1..]);
    }

    #[test]
    fn checkpoint_search_sees_a_record_across_window_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("search");
        let note = vec![b'n'; 1000];
        // The checkpoint starts 10 bytes before the end of the first window.
        let before = SEARCH_WINDOW_BYTES as usize - 10;
        let bytes = [vec![0u8; before], frame(2, &note), vec![0u8; 7]].concat();
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let end = bytes.len() as u64;
        assert_eq!(find_checkpoint(&file, 0, end).unwrap(), Some(before as u64));
        assert_eq!(
            find_checkpoint(&file, before as u64 + 1, end).unwrap(),
            None
        );
        assert_eq!(
            find_checkpoint(&file, 0, end - 8).unwrap(),
            None,
            "cut short"
        );
    }

    #[test]
    fn checkpoint_search_finds_frames_at_any_byte_and_rejects_bad_crc() {
        let mut bytes = vec![0xAA, 0x02, 0x00];
        bytes.extend(frame(2, b"note"));
        assert!(!is_checkpoint_at(&bytes[1..]));
        assert!(is_checkpoint_at(&bytes[3..]));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(!is_checkpoint_at(&bytes[3..]));
        assert!(
            !is_checkpoint_at(&frame(1, b"leaf")),
            "a leaf is not a commit marker"
        );
        assert!(!is_checkpoint_at(&frame(2, b"note")[..8]), "truncated");
    }

    #[test]
    fn codes_are_distinct() {
        let codes = [
            Damage::ShortHeader.code(),
            Damage::UnknownKind { kind: 9 }.code(),
            Damage::LengthOverMax { len: 0 }.code(),
            Damage::PastEnd { len: 0 }.code(),
            Damage::CrcMismatch {
                stored: 0,
                computed: 1,
            }
            .code(),
        ];
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
    }
}
