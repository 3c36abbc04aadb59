//! Signed notes: parsing, signing and verifying signature lines.

use super::*;

/// One signature line of a note: `— <name> base64(key id ‖ signature)`. The signature
/// bytes are not checked until a verifier with the same name and key id asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub(super) name: KeyName,
    pub(super) key_id: KeyId,
    pub(super) signature: Vec<u8>,
}

impl NoteSignature {
    pub(super) fn parse_line(line: &str) -> Result<NoteSignature, &'static str> {
        // "em dash (U+2014), space (U+0020), key name, space, base64-encoded signature"
        let rest = line
            .strip_prefix(SIG_LINE_PREFIX)
            .ok_or("does not start with an em dash and a space")?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or("no space between the key name and the signature")?;
        let name = KeyName::new(name).map_err(|_| "invalid key name")?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| "signature is not standard padded base64")?;
        // "Signatures are the base64 encoding of 4+n bytes."
        if raw.len() < 5 {
            return Err("signature is shorter than a key id and one byte");
        }
        let (id, signature) = raw.split_at(4);
        Ok(NoteSignature {
            name,
            key_id: KeyId([id[0], id[1], id[2], id[3]]),
            signature: signature.to_vec(),
        })
    }

    pub(super) fn new(name: &KeyName, key_id: KeyId, signature: &[u8]) -> NoteSignature {
        NoteSignature {
            name: name.clone(),
            key_id,
            signature: signature.to_vec(),
        }
    }

    /// The signer's key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The signer's key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The signature bytes after the key id.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line, with its final newline.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        format!("{SIG_LINE_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// "Signed notes MUST be valid UTF-8 and MUST NOT contain any ASCII control characters
/// (those below U+0020) other than newline."
pub(super) fn check_characters(text: &str) -> Result<(), NoteError> {
    match text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        Some((offset, c)) => Err(NoteError::ControlCharacter {
            offset,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// A parsed signed note: its text and its signature lines, none yet verified.
/// Invariant: it is within [`CHECKPOINT_BYTES_MAX`] and [`NOTE_SIGNATURES_MAX`],
/// has at least one signature, no two identical lines, and [`Note::to_text`] gives back
/// the exact bytes it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub(super) text: String,
    pub(super) signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note strictly, after capping its size.
    ///
    /// # Errors
    /// [`NoteError::TooLarge`] (checked before anything else), [`NoteError::NotUtf8`],
    /// [`NoteError::ControlCharacter`], [`NoteError::MissingSignatures`] (no blank line,
    /// or nothing after it), [`NoteError::MalformedSignatureLine`],
    /// [`NoteError::TooManySignatures`], [`NoteError::DuplicateSignature`].
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > CHECKPOINT_BYTES_MAX {
            return Err(NoteError::TooLarge {
                len: bytes.len(),
                max: CHECKPOINT_BYTES_MAX,
            });
        }
        let all = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        check_characters(all)?;
        // "The note text includes the final newline but not the separating blank line.
        // [...] the text is separated from the signatures by the last empty line in the
        // note."
        let split = all.rfind("\n\n").ok_or(NoteError::MissingSignatures {
            reason: "no blank line after the text",
        })?;
        let (text, block) = (&all[..split + 1], &all[split + 2..]);
        if block.is_empty() {
            return Err(NoteError::MissingSignatures {
                reason: "nothing after the blank line",
            });
        }
        let Some(block) = block.strip_suffix('\n') else {
            return Err(NoteError::MalformedSignatureLine {
                line: block.split('\n').count(),
                reason: "does not end in a newline",
            });
        };
        // After the last blank line no line can be empty, so each piece is one line.
        let count = block.split('\n').count();
        if count > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures {
                count,
                max: NOTE_SIGNATURES_MAX,
            });
        }
        let mut signatures: Vec<NoteSignature> = Vec::with_capacity(count);
        for (index, line) in block.split('\n').enumerate() {
            let line_number = index + 1;
            let signature = NoteSignature::parse_line(line).map_err(|reason| {
                NoteError::MalformedSignatureLine {
                    line: line_number,
                    reason,
                }
            })?;
            if signatures.contains(&signature) {
                return Err(NoteError::DuplicateSignature { line: line_number });
            }
            signatures.push(signature);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text, with its final newline. Ignore it until [`Note::verify`] passes.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in the note's order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// The whole note: text, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 1 + 128 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.to_line());
        }
        out
    }

    /// Checks the note's signatures by `verifier`, ignoring every other line.
    ///
    /// "Verifiers MUST ignore signatures from unknown keys, even if they share a name or
    /// ID (but not both) with a known key. If the key name and ID match a known key,
    /// verifiers MUST verify the signature. If a signature from a known key fails to
    /// verify, clients SHOULD reject the whole note. If no signature from a known key
    /// verifies successfully, clients MUST reject the note."
    ///
    /// # Errors
    /// [`NoteError::BadSignature`] when a line of this key fails,
    /// [`NoteError::NoKnownSignature`] when there is no such line.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<(), NoteError> {
        let bad = || NoteError::BadSignature {
            name: verifier.name.to_string(),
            key_id: verifier.key_id,
        };
        let mut verified = false;
        for signature in self.lines_of(&verifier.name, verifier.key_id) {
            let signature = Signature::from_slice(&signature.signature).map_err(|_| bad())?;
            verifier
                .key
                .verify_strict(self.text.as_bytes(), &signature)
                .map_err(|_| bad())?;
            verified = true;
        }
        if verified {
            Ok(())
        } else {
            Err(NoteError::NoKnownSignature {
                name: verifier.name.to_string(),
                key_id: verifier.key_id,
            })
        }
    }

    /// Merges signature lines (each ending in a newline), e.g. cosignatures sent back
    /// by witnesses. A line already on the note is skipped, so merging is idempotent.
    /// The lines are not verified here: verify them with the key you trust. Returns how
    /// many lines were added; on an error the note is unchanged.
    ///
    /// # Errors
    /// [`NoteError::MalformedSignatureLine`], [`NoteError::ControlCharacter`],
    /// [`NoteError::MissingSignatures`] (no line given), [`NoteError::TooManySignatures`],
    /// [`NoteError::TooLarge`] when the merged note would pass the cap.
    pub fn add_signature_lines(&mut self, lines: &str) -> Result<usize, NoteError> {
        check_characters(lines)?;
        if lines.is_empty() {
            return Err(NoteError::MissingSignatures {
                reason: "no signature line given",
            });
        }
        let Some(lines) = lines.strip_suffix('\n') else {
            return Err(NoteError::MalformedSignatureLine {
                line: lines.split('\n').count(),
                reason: "does not end in a newline",
            });
        };
        let mut merged = self.signatures.clone();
        for (index, line) in lines.split('\n').enumerate() {
            let signature = NoteSignature::parse_line(line).map_err(|reason| {
                NoteError::MalformedSignatureLine {
                    line: index + 1,
                    reason,
                }
            })?;
            if !merged.contains(&signature) {
                merged.push(signature);
            }
        }
        if merged.len() > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures {
                count: merged.len(),
                max: NOTE_SIGNATURES_MAX,
            });
        }
        let added = merged.len() - self.signatures.len();
        let candidate = Note {
            text: self.text.clone(),
            signatures: merged,
        };
        let len = candidate.to_text().len();
        if len > CHECKPOINT_BYTES_MAX {
            return Err(NoteError::TooLarge {
                len,
                max: CHECKPOINT_BYTES_MAX,
            });
        }
        *self = candidate;
        Ok(added)
    }

    pub(super) fn lines_of<'a>(
        &'a self,
        name: &'a KeyName,
        key_id: KeyId,
    ) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        self.signatures
            .iter()
            .filter(move |s| &s.name == name && s.key_id == key_id)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// "A signed note consists of a text ending in newline (U+000A)": checks a text we are
/// asked to sign.
pub(super) fn check_text_to_sign(text: &str) -> Result<(), NoteError> {
    if text.is_empty() {
        return Err(NoteError::InvalidText { reason: "empty" });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::InvalidText {
            reason: "does not end in a newline",
        });
    }
    check_characters(text)
}

/// Signs `text` and returns the whole note: text, blank line, one signature line.
///
/// # Errors
/// [`NoteError::InvalidText`] when the text is empty or does not end in a newline,
/// [`NoteError::ControlCharacter`], [`NoteError::TooLarge`] when the note would pass the
/// cap that [`Note::parse`] applies.
pub fn sign_note(text: &str, signer: &NoteSigner) -> Result<String, NoteError> {
    check_text_to_sign(text)?;
    let note = Note {
        text: text.to_owned(),
        signatures: vec![sign_text(text, signer)],
    };
    let out = note.to_text();
    if out.len() > CHECKPOINT_BYTES_MAX {
        return Err(NoteError::TooLarge {
            len: out.len(),
            max: CHECKPOINT_BYTES_MAX,
        });
    }
    Ok(out)
}

/// One signature line (with its newline) by `signer` over `text`: the second line of a
/// note signed by two keys (the operator's old and new key during a key handover).
#[must_use]
pub fn signature_line(text: &str, signer: &NoteSigner) -> String {
    sign_text(text, signer).to_line()
}

pub(super) fn sign_text(text: &str, signer: &NoteSigner) -> NoteSignature {
    // "Ed25519 signatures are generated according to RFC 8032 over the note text."
    let signature = signer.key.sign(text.as_bytes());
    NoteSignature::new(&signer.name, signer.key_id(), &signature.to_bytes())
}
