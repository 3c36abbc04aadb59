//! State notes: the operator's signed commitment to the state that the layer above
//! derives from the log, one per batch, just before the batch's checkpoint.
//!
//! The log cannot know what the state is; it is handed 32 bytes by the layer above
//! ([`super::store::Admission::state_digest`], the state map root) and signs them with
//! the log's size, so an auditor who replays the log can prove which state the operator
//! claimed at every checkpoint, and a client can check one object's proof against it.
//! The body is a C2SP signed note, signed like a checkpoint but made so that it can never
//! be mistaken for one (its first line is fixed, and it has four lines):
//!
//! ```text
//! lesson-ledger/state-map/v1
//! <origin>
//! <tree size, decimal>
//! <state map root, base64 of 32 bytes>
//! ```
//!
//! A note of the first format (`lesson-ledger/state-digest/v1`, an LtHash digest) is
//! refused as `state_note_old_format`: its fourth line is not a map root.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use lesson_ledger::log::note::{KeyName, NoteSigner};
//! use lesson_ledger::log::state_note::StateNote;
//! let key = NoteSigner::new(KeyName::new("operator").unwrap(), SigningKey::from_bytes(&[1; 32]));
//! let note = StateNote { origin: "lessons.example/sh".into(), size: 7, root: [9; 32] };
//! let text = note.sign(&key).unwrap();
//! assert_eq!(StateNote::parse_and_verify(text.as_bytes(), &key.verifier()).unwrap(), note);
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::note::{sign_note, Note, NoteError, NoteSigner, NoteVerifier};

/// The first line of every state note.
pub const STATE_NOTE_HEADER: &str = "lesson-ledger/state-map/v1";

/// The first line of the state notes of the first format, now refused.
pub const STATE_NOTE_HEADER_OLD: &str = "lesson-ledger/state-digest/v1";

/// A state map root at a log size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateNote {
    /// The log's origin.
    pub origin: String,
    /// The log size the state reflects.
    pub size: u64,
    /// The state map root.
    pub root: [u8; 32],
}

/// Why a state note is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum StateNoteError {
    /// The note does not parse or verify (its own code).
    #[error(transparent)]
    Note(#[from] NoteError),
    /// Code `state_note_malformed`: state note body is malformed: `0`.
    #[error("state note body is malformed: {0}")]
    Body(&'static str),
    /// Code `state_note_old_format`: state note is of the old format (`STATE_NOTE_HEADER_OLD`): it commits to no state map root.
    #[error("state note is of the old format ({STATE_NOTE_HEADER_OLD}): it commits to no state map root")]
    OldFormat,
}

impl StateNoteError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            StateNoteError::Note(e) => e.code(),
            StateNoteError::Body(_) => "state_note_malformed",
            StateNoteError::OldFormat => "state_note_old_format",
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
            STANDARD.encode(self.root)
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
        let header = lines.next();
        if header == Some(STATE_NOTE_HEADER_OLD) {
            return Err(StateNoteError::OldFormat);
        }
        if header != Some(STATE_NOTE_HEADER) {
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
        let root_text = lines.next().ok_or(StateNoteError::Body("no root line"))?;
        let root: [u8; 32] = STANDARD
            .decode(root_text)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or(StateNoteError::Body("root is not base64 of 32 bytes"))?;
        if lines.next().is_some() {
            return Err(StateNoteError::Body("extra lines"));
        }
        let parsed = StateNote { origin, size, root };
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
                root: [0; 32],
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
            root: [5; 32],
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

    #[test]
    fn a_state_note_of_the_old_digest_format_is_refused_with_its_own_code() {
        let old = format!(
            "{STATE_NOTE_HEADER_OLD}\no.example\n3\n{}\n",
            STANDARD.encode([5u8; 32])
        );
        let text = sign_note(&old, &operator()).unwrap();
        let err = StateNote::parse_and_verify(text.as_bytes(), &operator().verifier()).unwrap_err();
        assert_eq!(err.code(), "state_note_old_format");
    }
}
