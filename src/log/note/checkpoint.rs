//! Checkpoints (C2SP tlog-checkpoint) and cosignatures (C2SP tlog-cosignature).

use super::*;

/// The origin line of a checkpoint. Invariant: non-empty, at most
/// [`ORIGIN_BYTES_MAX`] bytes, no newline or other ASCII control character.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// Checks and wraps an origin.
    ///
    /// # Errors
    /// [`NoteError::InvalidOrigin`] when the origin breaks the invariant.
    pub fn new(origin: impl Into<String>) -> Result<Origin, NoteError> {
        let origin = origin.into();
        // "The origin MUST be non-empty"; a newline would end the line, and notes hold
        // no other control character.
        let reason = if origin.is_empty() {
            Some("empty")
        } else if origin.len() > ORIGIN_BYTES_MAX {
            Some("longer than the origin cap")
        } else if origin.contains('\n') {
            Some("contains a newline")
        } else if origin.chars().any(|c| c < ' ') {
            Some("contains a control character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(NoteError::InvalidOrigin { reason }),
            None => Ok(Origin(origin)),
        }
    }

    /// The origin, as written in the checkpoint's first line.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({:?})", self.0)
    }
}

/// A tree head: the log's origin, its size and its RFC 6962 root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (first line).
    pub origin: Origin,
    /// The tree size (second line).
    pub size: u64,
    /// The root hash (third line, base64).
    pub root: Hash,
}

impl Checkpoint {
    /// The note text `origin\nsize\nbase64(root)\n`.
    pub fn to_body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        )
    }

    /// Parses a checkpoint's note text. Extension lines are refused: tlog-checkpoint
    /// calls them "NOT RECOMMENDED, as they are not auditable by log monitors", this
    /// ledger writes none, and refusing them keeps one text per tree head.
    ///
    /// # Errors
    /// [`NoteError::MalformedCheckpoint`], [`NoteError::CheckpointExtensionLines`],
    /// [`NoteError::InvalidOrigin`], [`NoteError::InvalidTreeSize`],
    /// [`NoteError::InvalidRootHash`].
    pub fn from_body(body: &str) -> Result<Checkpoint, NoteError> {
        // "The note text is a sequence of at least three non-empty lines, separated by
        // newlines (U+000A)." The note text ends in a newline.
        let body = body
            .strip_suffix('\n')
            .ok_or(NoteError::MalformedCheckpoint {
                reason: "does not end in a newline",
            })?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.iter().any(|line| line.is_empty()) {
            return Err(NoteError::MalformedCheckpoint {
                reason: "has an empty line",
            });
        }
        let [origin, size, root] = lines[..] else {
            return Err(if lines.len() < 3 {
                NoteError::MalformedCheckpoint {
                    reason: "has fewer than three lines",
                }
            } else {
                NoteError::CheckpointExtensionLines {
                    count: lines.len() - 3,
                }
            });
        };
        // "1. The first line is the origin [...] The origin MUST be non-empty"
        let origin = Origin::new(origin)?;
        // "2. The second line is the tree size, the ASCII decimal representation of the
        // number of leaves in the tree, with no leading zeroes (unless the tree is
        // empty, in which case the tree size is `0`)."
        let size = parse_tree_size(size)?;
        // "3. The third line is the root hash, the base64 encoding of the root"
        let root = parse_root(root)?;
        Ok(Checkpoint { origin, size, root })
    }
}

/// The tree head in a checkpoint's note text, extension lines allowed: a witness
/// cosigns the checkpoints of any C2SP log, and tlog-checkpoint allows them ("Any
/// following lines are extension lines, opaque and OPTIONAL"); the cosignature covers
/// them as they are. This ledger's own checkpoints are read with
/// [`Checkpoint::from_body`], which refuses them.
///
/// # Errors
/// As [`Checkpoint::from_body`], but never [`NoteError::CheckpointExtensionLines`].
pub fn checkpoint_head(body: &str) -> Result<Checkpoint, NoteError> {
    let malformed = |reason| NoteError::MalformedCheckpoint { reason };
    let body = body
        .strip_suffix('\n')
        .ok_or(malformed("does not end in a newline"))?;
    let lines: Vec<&str> = body.split('\n').collect();
    if lines.iter().any(|line| line.is_empty()) {
        return Err(malformed("has an empty line"));
    }
    let [origin, size, root, ..] = lines[..] else {
        return Err(malformed("has fewer than three lines"));
    };
    Ok(Checkpoint {
        origin: Origin::new(origin)?,
        size: parse_tree_size(size)?,
        root: parse_root(root)?,
    })
}

/// Parses a tree size as checkpoints write it: ASCII decimal, no leading zero, no sign.
///
/// # Errors
/// [`NoteError::InvalidTreeSize`].
pub fn parse_tree_size(text: &str) -> Result<u64, NoteError> {
    // Digits only: `u64::from_str` would also take a leading '+'.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NoteError::InvalidTreeSize {
            reason: "not a decimal number",
        });
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(NoteError::InvalidTreeSize {
            reason: "has a leading zero",
        });
    }
    text.parse::<u64>().map_err(|_| NoteError::InvalidTreeSize {
        reason: "exceeds 2^64 - 1",
    })
}

pub(super) fn parse_root(text: &str) -> Result<Hash, NoteError> {
    let root = Hash::from_base64(text).ok_or(NoteError::InvalidRootHash)?;
    // The standard engine already refuses missing padding and stray bits; comparing the
    // re-encoding makes "one text per hash" an explicit check.
    if root.to_base64() != text {
        return Err(NoteError::InvalidRootHash);
    }
    Ok(root)
}

/// A checkpoint with its note. Invariant: the note's text is the checkpoint's body and
/// the note carries a signature by the log key that built or verified it (more lines,
/// e.g. cosignatures, may follow).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub(super) checkpoint: Checkpoint,
    pub(super) note: Note,
}

impl SignedCheckpoint {
    /// Signs a checkpoint with the log key.
    pub fn sign(checkpoint: Checkpoint, signer: &NoteSigner) -> SignedCheckpoint {
        let text = checkpoint.to_body();
        let note = Note {
            signatures: vec![sign_text(&text, signer)],
            text,
        };
        // The compile-time bound above guarantees this; pair it with a runtime check.
        debug_assert!(note.to_text().len() <= CHECKPOINT_BYTES_MAX);
        SignedCheckpoint { checkpoint, note }
    }

    /// Parses a signed checkpoint and verifies the log's signature on it. Lines of
    /// other keys (witnesses, rotated keys) are kept but not checked.
    ///
    /// # Errors
    /// Any error of [`Note::parse`], [`Note::verify`] and [`Checkpoint::from_body`].
    pub fn parse_and_verify(
        bytes: &[u8],
        verifier: &NoteVerifier,
    ) -> Result<SignedCheckpoint, NoteError> {
        let note = Note::parse(bytes)?;
        note.verify(verifier)?;
        let checkpoint = Checkpoint::from_body(note.text())?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// The checkpoint the note's text is.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed note, with its signature lines.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The whole note text, as served to clients and witnesses.
    pub fn text(&self) -> String {
        self.note.to_text()
    }

    /// Merges signature lines (e.g. from [`cosign`]) into the note; see
    /// [`Note::add_signature_lines`]. They are not verified here: check them with
    /// [`verify_cosignature`].
    ///
    /// # Errors
    /// As [`Note::add_signature_lines`].
    pub fn add_signature_lines(&mut self, lines: &str) -> Result<usize, NoteError> {
        self.note.add_signature_lines(lines)
    }
}

/// "The signed message MUST be two newline (U+000A) terminated lines (one header line
/// and one timestamp line) followed by the whole note body of the cosigned checkpoint"
pub(super) fn cosigned_message(time: u64, body: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{body}").into_bytes()
}

/// A witness cosigns a checkpoint it has verified: returns the signature line
/// `— <name> base64(key id ‖ timestamp ‖ signature)\n`, key id of type 0x04, timestamp
/// as a big-endian u64 (seconds since the epoch).
///
/// # Errors
/// [`NoteError::TimestampOutOfRange`] when `time` passes 2^63 - 1.
pub fn cosign(
    checkpoint: &SignedCheckpoint,
    signer: &NoteSigner,
    time: u64,
) -> Result<String, NoteError> {
    cosign_note(&checkpoint.note, signer, time)
}

/// [`cosign`] for any checkpoint note (extension lines included, see
/// [`checkpoint_head`]), as a witness cosigns another log's checkpoint. The caller has
/// verified the note and checked that its text is a checkpoint.
///
/// # Errors
/// [`NoteError::TimestampOutOfRange`] when `time` passes 2^63 - 1.
pub fn cosign_note(note: &Note, signer: &NoteSigner, time: u64) -> Result<String, NoteError> {
    // "It MUST NOT exceed 2^63 - 1"
    if time > COSIGNATURE_TIME_MAX {
        return Err(NoteError::TimestampOutOfRange { time });
    }
    let message = cosigned_message(time, note.text());
    let signature = signer.key.sign(&message);
    // "timestamped_signature: u64 timestamp; ed25519_signature[64]", big-endian.
    let mut raw = Vec::with_capacity(COSIG_V1_BYTES);
    raw.extend_from_slice(&time.to_be_bytes());
    raw.extend_from_slice(&signature.to_bytes());
    let key_id = signer.cosigner_key().key_id;
    Ok(NoteSignature::new(&signer.name, key_id, &raw).to_line())
}

/// Verifies the cosignature of `cosigner` on a signed checkpoint and returns its
/// timestamp (the latest, if the witness signed more than once).
///
/// # Errors
/// [`NoteError::NoKnownSignature`] when the note has no line with this name and key id;
/// [`NoteError::BadSignature`] when such a line is not 72 bytes or does not verify;
/// [`NoteError::TimestampOutOfRange`] for a timestamp past 2^63 - 1.
pub fn verify_cosignature(
    checkpoint: &SignedCheckpoint,
    cosigner: &CosignerKey,
) -> Result<u64, NoteError> {
    let bad = || NoteError::BadSignature {
        name: cosigner.name.to_string(),
        key_id: cosigner.key_id,
    };
    let mut latest = None;
    for line in checkpoint.note.lines_of(&cosigner.name, cosigner.key_id) {
        let raw = <[u8; COSIG_V1_BYTES]>::try_from(line.signature()).map_err(|_| bad())?;
        let (time, signature) = raw.split_at(8);
        let time = u64::from_be_bytes(<[u8; 8]>::try_from(time).map_err(|_| bad())?);
        if time > COSIGNATURE_TIME_MAX {
            return Err(NoteError::TimestampOutOfRange { time });
        }
        let signature = Signature::from_slice(signature).map_err(|_| bad())?;
        let message = cosigned_message(time, checkpoint.note.text());
        cosigner
            .key
            .verify_strict(&message, &signature)
            .map_err(|_| bad())?;
        latest = latest.max(Some(time));
    }
    latest.ok_or(NoteError::NoKnownSignature {
        name: cosigner.name.to_string(),
        key_id: cosigner.key_id,
    })
}
