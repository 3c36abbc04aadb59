//! Entry ids: BLAKE3 of an envelope's PAE, the identity of a statement.

use std::fmt;
use std::str::FromStr;

use super::{pae, EnvelopeError};
use crate::log::hash::{hex_decode, hex_encode};

/// The identity of a statement: BLAKE3 of `PAE(payloadType, payload)`. It ignores the
/// signatures, so the same statement signed twice has one id (deduplication, receipts).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId([u8; 32]);

impl EntryId {
    /// The id of an entry: BLAKE3 of the DSSE PAE of `payload_type` and `payload`.
    pub fn of(payload_type: &str, payload: &[u8]) -> EntryId {
        EntryId(*blake3::hash(&pae(payload_type, payload)).as_bytes())
    }

    /// An id from its 32 bytes (as stored).
    pub fn from_bytes(bytes: [u8; 32]) -> EntryId {
        EntryId(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_encode(&self.0))
    }
}

impl fmt::Debug for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryId({self})")
    }
}

impl FromStr for EntryId {
    type Err = EnvelopeError;

    /// Parses the 64 lowercase hex digits that `Display` writes, and nothing else.
    fn from_str(text: &str) -> Result<EntryId, EnvelopeError> {
        let lowercase_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if text.len() != 64 || !text.bytes().all(lowercase_hex) {
            return Err(EnvelopeError::MalformedEntryId);
        }
        let bytes = hex_decode(text).ok_or(EnvelopeError::MalformedEntryId)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(EntryId)
            .map_err(|_| EnvelopeError::MalformedEntryId)
    }
}
