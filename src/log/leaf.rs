//! The exact bytes the ledger stores for an entry, and hashes into the tree.
//!
//! A leaf is {index, ledger time, envelope} in a canonical binary form (big-endian,
//! length-prefixed, in the TLS presentation style of RFC 8446 §3). Binary, not JSON,
//! so that there is exactly one encoding of every leaf and an independent verifier
//! needs no JSON canonicalization. `schemas/README.md` specifies it:
//!
//! ```text
//! struct {
//!     uint8  version = 1;
//!     uint64 index;                 // position in the log, from 0
//!     uint64 time_micros;           // ledger time, µs since the Unix epoch, strictly increasing
//!     opaque payload_type<1..2^16-1>;   // UTF-8
//!     opaque payload<0..2^32-1>;        // the DSSE payload, raw (not base64)
//!     uint8  signature_count;       // 1..8
//!     struct {
//!         opaque keyid<1..2^16-1>;  // UTF-8, the signer's C2SP verifier key
//!         opaque sig[64];           // Ed25519 over DSSE PAE(payload_type, payload)
//!     } signatures[signature_count];
//! } Leaf;
//! ```
//!
//! The Merkle leaf hash is `SHA-256(0x00 || Leaf)` ([`crate::log::hash::leaf_hash`]).

use crate::limits;
use crate::log::envelope::{Envelope, EnvelopeSignature};

/// The only leaf format version this ledger writes and reads.
pub const LEAF_VERSION: u8 = 1;

/// One decoded leaf. The envelope is as stored; it is verified by whoever reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Its index in the log.
    pub index: u64,
    /// Its ledger time, µs since the Unix epoch.
    pub time_micros: u64,
    /// The signed entry, as stored.
    pub envelope: Envelope,
}

/// Why bytes are not a leaf.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LeafError {
    /// Code `leaf_too_large`: leaf is `len` bytes, more than the `max` allowed.
    #[error("leaf is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size, in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Code `leaf_version`: leaf version `found` is not the supported version `LEAF_VERSION`.
    #[error("leaf version {found} is not the supported version {LEAF_VERSION}")]
    Version {
        /// What was found.
        found: u8,
    },
    /// Code `leaf_truncated`: leaf ends early while reading `field`.
    #[error("leaf ends early while reading {field}")]
    Truncated {
        /// The JSON field.
        field: &'static str,
    },
    /// Code `leaf_trailing_bytes`: leaf has `extra` bytes after its last signature.
    #[error("leaf has {extra} bytes after its last signature")]
    TrailingBytes {
        /// Bytes left after the leaf.
        extra: usize,
    },
    /// Code `leaf_not_utf8`: leaf field `field` is not valid UTF-8.
    #[error("leaf field {field} is not valid UTF-8")]
    NotUtf8 {
        /// The JSON field.
        field: &'static str,
    },
    /// Code `leaf_envelope_invalid`: leaf envelope is invalid: `reason`.
    #[error("leaf envelope is invalid: {reason}")]
    Envelope {
        /// What exactly is wrong, in words.
        reason: String,
    },
}

impl LeafError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            LeafError::TooLarge { .. } => "leaf_too_large",
            LeafError::Version { .. } => "leaf_version",
            LeafError::Truncated { .. } => "leaf_truncated",
            LeafError::TrailingBytes { .. } => "leaf_trailing_bytes",
            LeafError::NotUtf8 { .. } => "leaf_not_utf8",
            LeafError::Envelope { .. } => "leaf_envelope_invalid",
        }
    }
}

impl Leaf {
    /// The canonical bytes of this leaf.
    ///
    /// # Errors
    /// [`LeafError::TooLarge`] when the encoding would exceed [`limits::LEAF_BYTES_MAX`]
    /// (an envelope within [`limits::ENVELOPE_BYTES_MAX`] never does).
    pub fn encode(&self) -> Result<Vec<u8>, LeafError> {
        encode_parts(
            self.index,
            self.time_micros,
            self.envelope.payload_type(),
            self.envelope.payload(),
            self.envelope.signatures(),
        )
    }

    /// Parses canonical leaf bytes; refuses anything that [`Leaf::encode`] would not
    /// produce byte for byte.
    ///
    /// # Errors
    /// A [`LeafError`] naming the first field that is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Leaf, LeafError> {
        if bytes.len() > limits::LEAF_BYTES_MAX {
            return Err(LeafError::TooLarge {
                len: bytes.len(),
                max: limits::LEAF_BYTES_MAX,
            });
        }
        let mut r = Reader { rest: bytes };
        let version = r.u8("version")?;
        if version != LEAF_VERSION {
            return Err(LeafError::Version { found: version });
        }
        let index = r.u64("index")?;
        let time_micros = r.u64("time_micros")?;
        let type_len = r.u16("payload_type length")? as usize;
        let payload_type = r.utf8(type_len, "payload_type")?;
        let payload_len = r.u32("payload length")? as usize;
        let payload = r.bytes(payload_len, "payload")?.to_vec();
        let count = r.u8("signature_count")? as usize;
        let mut signatures = Vec::with_capacity(count.min(limits::SIGNATURES_PER_ENVELOPE_MAX));
        for _ in 0..count {
            let keyid_len = r.u16("keyid length")? as usize;
            let keyid = r.utf8(keyid_len, "keyid")?;
            let sig: [u8; 64] = r
                .bytes(64, "sig")?
                .try_into()
                .map_err(|_| LeafError::Truncated { field: "sig" })?;
            signatures.push(EnvelopeSignature::new(keyid, sig).map_err(|e| {
                LeafError::Envelope {
                    reason: e.to_string(),
                }
            })?);
        }
        if !r.rest.is_empty() {
            return Err(LeafError::TrailingBytes {
                extra: r.rest.len(),
            });
        }
        let envelope =
            Envelope::new(payload_type, payload, signatures).map_err(|e| LeafError::Envelope {
                reason: e.to_string(),
            })?;
        Ok(Leaf {
            index,
            time_micros,
            envelope,
        })
    }
}

/// Encodes a leaf from its parts without building an [`Envelope`] first.
///
/// # Errors
/// [`LeafError::TooLarge`] past [`limits::LEAF_BYTES_MAX`].
pub fn encode_parts(
    index: u64,
    time_micros: u64,
    payload_type: &str,
    payload: &[u8],
    signatures: &[EnvelopeSignature],
) -> Result<Vec<u8>, LeafError> {
    let len = 1
        + 8
        + 8
        + 2
        + payload_type.len()
        + 4
        + payload.len()
        + 1
        + signatures
            .iter()
            .map(|s| 2 + s.keyid().len() + 64)
            .sum::<usize>();
    if len > limits::LEAF_BYTES_MAX {
        return Err(LeafError::TooLarge {
            len,
            max: limits::LEAF_BYTES_MAX,
        });
    }
    // Envelope validation bounds these; the leaf must never wrap a length prefix.
    assert!(payload_type.len() <= usize::from(u16::MAX));
    assert!(signatures.len() <= limits::SIGNATURES_PER_ENVELOPE_MAX);
    let mut out = Vec::with_capacity(len);
    out.push(LEAF_VERSION);
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&time_micros.to_be_bytes());
    out.extend_from_slice(&(payload_type.len() as u16).to_be_bytes());
    out.extend_from_slice(payload_type.as_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(signatures.len() as u8);
    for s in signatures {
        assert!(s.keyid().len() <= limits::KEYID_BYTES_MAX);
        out.extend_from_slice(&(s.keyid().len() as u16).to_be_bytes());
        out.extend_from_slice(s.keyid().as_bytes());
        out.extend_from_slice(s.sig());
    }
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

/// Reads the fixed header of a leaf (index and time) without decoding the rest: the
/// auditor and the opener use it to check order cheaply.
///
/// # Errors
/// As [`Leaf::decode`] for the first three fields.
pub fn peek_index_time(bytes: &[u8]) -> Result<(u64, u64), LeafError> {
    let mut r = Reader { rest: bytes };
    let version = r.u8("version")?;
    if version != LEAF_VERSION {
        return Err(LeafError::Version { found: version });
    }
    Ok((r.u64("index")?, r.u64("time_micros")?))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], LeafError> {
        if self.rest.len() < n {
            return Err(LeafError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], LeafError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, field)?);
        Ok(out)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, LeafError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, LeafError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, LeafError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, LeafError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
    fn utf8(&mut self, n: usize, field: &'static str) -> Result<String, LeafError> {
        let bytes = self.bytes(n, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| LeafError::NotUtf8 { field })
    }
}
