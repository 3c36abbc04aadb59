//! State notes: the operator's signed commitment to the state that the layer above
//! derives from the log, one per batch, just before the batch's checkpoint.
//!
//! The log cannot know what the state is; it is handed 32 bytes by the layer above
//! ([`super::store::Admission::state_digest`]) and signs them with the log's size, so an
//! auditor who replays the log can prove which state the operator claimed at every
//! checkpoint. The body is a C2SP signed note, signed like a checkpoint but made so that
//! it can never be mistaken for one (its first line is fixed, and it has four lines):
//!
//! ```text
//! lesson-ledger/state-digest/v1
//! <origin>
//! <tree size, decimal>
//! <state digest, base64 of 32 bytes>
//! ```
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use lesson_ledger::log::note::{KeyName, NoteSigner};
//! use lesson_ledger::log::state_note::StateNote;
//! let key = NoteSigner::new(KeyName::new("operator").unwrap(), SigningKey::from_bytes(&[1; 32]));
//! let note = StateNote { origin: "lessons.example/sh".into(), size: 7, digest: [9; 32] };
//! let text = note.sign(&key).unwrap();
//! assert_eq!(StateNote::parse_and_verify(text.as_bytes(), &key.verifier()).unwrap(), note);
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::note::{sign_note, Note, NoteError, NoteSigner, NoteVerifier};

/// The first line of every state note.
pub const STATE_NOTE_HEADER: &str = "lesson-ledger/state-digest/v1";

/// A state digest at a log size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateNote {
    pub origin: String,
    pub size: u64,
    pub digest: [u8; 32],
}

/// Why a state note is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum StateNoteError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("state note body is malformed: {0}")]
    Body(&'static str),
}

impl StateNoteError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            StateNoteError::Note(e) => e.code(),
            StateNoteError::Body(_) => "state_note_malformed",
        }
    }
}

impl StateNote {
    /// The note body (what is signed).
    pub fn body(&self) -> String {
        format!(
            "{STATE_NOTE_HEADER}\n{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.digest)
        )
    }

    /// Signs the body as a C2SP note.
    ///
    /// # Errors
    /// An origin that cannot be a note line (a newline in it).
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, StateNoteError> {
        Ok(sign_note(&self.body(), signer)?)
    }

    /// Parses a signed state note and checks the signature of `verifier`.
    ///
    /// # Errors
    /// A bad or missing signature; a body not in the exact format above.
    pub fn parse_and_verify(
        bytes: &[u8],
        verifier: &NoteVerifier,
    ) -> Result<StateNote, StateNoteError> {
        let note = Note::parse(bytes)?;
        note.verify(verifier)?;
        let mut lines = note
            .text()
            .strip_suffix('\n')
            .ok_or(StateNoteError::Body("no final newline"))?
            .split('\n');
        if lines.next() != Some(STATE_NOTE_HEADER) {
            return Err(StateNoteError::Body(
                "first line is not the state-note header",
            ));
        }
        let origin = lines
            .next()
            .ok_or(StateNoteError::Body("no origin line"))?
            .to_string();
        let size_text = lines.next().ok_or(StateNoteError::Body("no size line"))?;
        let size: u64 = size_text
            .parse()
            .map_err(|_| StateNoteError::Body("size is not a decimal u64"))?;
        if size.to_string() != size_text {
            return Err(StateNoteError::Body("size is not canonical decimal"));
        }
        let digest_text = lines.next().ok_or(StateNoteError::Body("no digest line"))?;
        let digest: [u8; 32] = STANDARD
            .decode(digest_text)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or(StateNoteError::Body("digest is not base64 of 32 bytes"))?;
        if lines.next().is_some() {
            return Err(StateNoteError::Body("extra lines"));
        }
        let parsed = StateNote {
            origin,
            size,
            digest,
        };
        // Only the canonical text is accepted, so one state has one note.
        if parsed.body() != note.text() {
            return Err(StateNoteError::Body("not in canonical form"));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::note::{KeyName, SignedCheckpoint};
    use ed25519_dalek::SigningKey;

    fn operator() -> NoteSigner {
        NoteSigner::new(
            KeyName::new("operator").unwrap(),
            SigningKey::from_bytes(&[1; 32]),
        )
    }

    #[test]
    fn a_state_note_is_never_a_checkpoint() {
        for origin in ["lessons.example/sh", "7", "AAAA"] {
            let note = StateNote {
                origin: origin.into(),
                size: 7,
                digest: [0; 32],
            };
            let text = note.sign(&operator()).unwrap();
            assert!(
                SignedCheckpoint::parse_and_verify(text.as_bytes(), &operator().verifier())
                    .is_err(),
                "{origin}"
            );
        }
    }

    #[test]
    fn tampered_or_foreign_notes_are_refused() {
        let note = StateNote {
            origin: "o.example".into(),
            size: 3,
            digest: [5; 32],
        };
        let text = note.sign(&operator()).unwrap();
        let other = NoteSigner::new(
            KeyName::new("operator").unwrap(),
            SigningKey::from_bytes(&[2; 32]),
        );
        assert!(StateNote::parse_and_verify(text.as_bytes(), &other.verifier()).is_err());
        let bumped = text.replacen("\n3\n", "\n4\n", 1);
        assert!(StateNote::parse_and_verify(bumped.as_bytes(), &operator().verifier()).is_err());
    }
}
