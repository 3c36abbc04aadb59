//! The wire format of tlog-witness `add-checkpoint` (<https://c2sp.org/tlog-witness>),
//! both ways: the witness parses requests with it, the log builds them with it.
//!
//! "The request body MUST be a sequence of an old size line, zero or more consistency
//! proof lines, and an empty line, followed by a checkpoint." A `409 Conflict` answer is
//! "the tree size of the latest cosigned checkpoint in decimal, followed by a newline",
//! with `Content-Type: text/x.tlog.size`.
//!
//! ```
//! use lesson_ledger::witness::protocol::AddCheckpoint;
//! let body = "old 0\n\nexample.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— example.com/log AAAAAAAA\n";
//! let request = AddCheckpoint::parse(body.as_bytes())?;
//! assert_eq!(request.old_size, 0);
//! assert!(request.proof.is_empty());
//! assert_eq!(request.to_body(), body.as_bytes());
//! # Ok::<(), lesson_ledger::witness::protocol::ProtocolError>(())
//! ```

use crate::limits::CHECKPOINT_BYTES_MAX;
use crate::log::hash::Hash;
use crate::log::note::parse_tree_size;

/// "The client MUST NOT send more than 63 consistency proof lines."
pub const PROOF_LINES_MAX: usize = 63;

/// The media type of a `409` answer's body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Longest `add-checkpoint` body: the old size line (`old ` and 20 digits), 63 proof
/// lines of 44 base64 characters, their newlines, the empty line and a checkpoint note.
pub const ADD_CHECKPOINT_BYTES_MAX: usize = 25 + PROOF_LINES_MAX * 45 + 1 + CHECKPOINT_BYTES_MAX;

/// What is wrong with a request or answer body. All of these are `400 Bad Request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Code `body_too_large`: body is `len` bytes, more than the `max` allowed.
    #[error("body is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The body's size, in bytes.
        len: usize,
        /// The cap, in bytes.
        max: usize,
    },
    /// Code `body_not_utf8`: body is not valid UTF-8.
    #[error("body is not valid UTF-8")]
    NotUtf8,
    /// Code `malformed_old_size`: the first line is not `old <size>` in canonical decimal.
    #[error("the first line is not `old <size>` in canonical decimal")]
    BadOldSize,
    /// Code `malformed_proof_line`: consistency proof line `line` is not the standard base64 of 32 bytes.
    #[error("consistency proof line {line} is not the standard base64 of 32 bytes")]
    BadProofLine {
        /// The proof line's number, from 1.
        line: usize,
    },
    /// Code `too_many_proof_lines`: more than `PROOF_LINES_MAX` consistency proof lines.
    #[error("more than {PROOF_LINES_MAX} consistency proof lines")]
    TooManyProofLines,
    /// Code `malformed_request`: no empty line before the checkpoint.
    #[error("no empty line before the checkpoint")]
    NoEmptyLine,
    /// Code `malformed_size`: a size answer is not one canonical decimal line.
    #[error("a size answer is not one canonical decimal line")]
    BadSizeBody,
}

impl ProtocolError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::TooLarge { .. } => "body_too_large",
            ProtocolError::NotUtf8 => "body_not_utf8",
            ProtocolError::BadOldSize => "malformed_old_size",
            ProtocolError::BadProofLine { .. } => "malformed_proof_line",
            ProtocolError::TooManyProofLines => "too_many_proof_lines",
            ProtocolError::NoEmptyLine => "malformed_request",
            ProtocolError::BadSizeBody => "malformed_size",
        }
    }
}

/// One `add-checkpoint` request. The checkpoint is kept as the bytes sent: the witness
/// parses and verifies it as a signed note against the keys it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the previous checkpoint the client believes the witness holds.
    pub old_size: u64,
    /// An RFC 6962 consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// Parses a request body strictly (one text per request: canonical decimal, padded
    /// standard base64 that re-encodes to itself).
    ///
    /// # Errors
    /// A [`ProtocolError`]; the checkpoint itself is not looked at here.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, ProtocolError> {
        if body.len() > ADD_CHECKPOINT_BYTES_MAX {
            return Err(ProtocolError::TooLarge {
                len: body.len(),
                max: ADD_CHECKPOINT_BYTES_MAX,
            });
        }
        let text = std::str::from_utf8(body).map_err(|_| ProtocolError::NotUtf8)?;
        // The head ends at the first empty line; the checkpoint follows it.
        let (head, checkpoint) = if let Some(rest) = text.strip_prefix('\n') {
            ("", rest)
        } else {
            let at = text.find("\n\n").ok_or(ProtocolError::NoEmptyLine)?;
            (&text[..at], &text[at + 2..])
        };
        let mut lines = head.split('\n');
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(|n| parse_tree_size(n).ok())
            .ok_or(ProtocolError::BadOldSize)?;
        let mut proof = Vec::new();
        for (i, line) in lines.enumerate() {
            if proof.len() == PROOF_LINES_MAX {
                return Err(ProtocolError::TooManyProofLines);
            }
            let hash = Hash::from_base64(line)
                .filter(|h| h.to_base64() == line)
                .ok_or(ProtocolError::BadProofLine { line: i + 1 })?;
            proof.push(hash);
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }

    /// The request body, as a log sends it.
    pub fn to_body(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            out.push_str(&hash.to_base64());
            out.push('\n');
        }
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// Parses a `409` answer's body: one size in canonical decimal and a newline.
///
/// # Errors
/// [`ProtocolError::BadSizeBody`].
pub fn parse_size_body(body: &[u8]) -> Result<u64, ProtocolError> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|t| t.strip_suffix('\n'))
        .and_then(|n| parse_tree_size(n).ok())
        .ok_or(ProtocolError::BadSizeBody)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_heads_are_refused_each_with_its_code() {
        let cp = "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— o AAAAAAAA\n";
        let h = Hash([1; 32]).to_base64();
        for (head, code) in [
            ("old 01\n", "malformed_old_size"),
            ("old -1\n", "malformed_old_size"),
            ("new 1\n", "malformed_old_size"),
            ("old 1 \n", "malformed_old_size"),
            ("old 2\nnot-base64\n", "malformed_proof_line"),
            ("old 2\nAAAA\n", "malformed_proof_line"),
        ] {
            let body = format!("{head}\n{cp}");
            assert_eq!(
                AddCheckpoint::parse(body.as_bytes()).unwrap_err().code(),
                code,
                "{head:?}"
            );
        }
        let many = format!("old 5\n{}\n{cp}", format!("{h}\n").repeat(64));
        assert_eq!(
            AddCheckpoint::parse(many.as_bytes()).unwrap_err(),
            ProtocolError::TooManyProofLines
        );
        assert_eq!(
            AddCheckpoint::parse(b"old 1").unwrap_err(),
            ProtocolError::NoEmptyLine
        );
        let ok = format!("old 5\n{}\n{cp}", format!("{h}\n").repeat(63));
        let parsed = AddCheckpoint::parse(ok.as_bytes()).unwrap();
        assert_eq!(parsed.proof.len(), 63);
        assert_eq!(parsed.to_body(), ok.as_bytes());
    }

    #[test]
    fn a_size_answer_is_one_canonical_decimal_line() {
        assert_eq!(parse_size_body(b"42\n"), Ok(42));
        for bad in [&b"42"[..], b"042\n", b"4 2\n", b"\n", b"42\n\n"] {
            assert_eq!(parse_size_body(bad), Err(ProtocolError::BadSizeBody));
        }
    }
}
