//! C2SP signed notes and what is read from them: `Note::parse`, checkpoints
//! (`SignedCheckpoint::parse_and_verify`, `Checkpoint::from_body`), cosignatures
//! (`verify_cosignature`), state notes (`StateNote::parse_and_verify`) and verifier keys
//! (`NoteVerifier::from_vkey`), on one fuzzed text.
//!
//! Never panics; a parsed note gives back the exact bytes it was parsed from, a parsed
//! checkpoint body and a parsed vkey are canonical.
#![no_main]

use lesson_ledger::log::note::{
    verify_cosignature, Checkpoint, Note, NoteVerifier, SignedCheckpoint,
};
use lesson_ledger::log::state_note::StateNote;
use lesson_ledger_fuzz::{note_association, note_operator_verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: lesson_ledger_fuzz::seeds::write_if_asked(),
    |data: &[u8]| {
        let verifier = note_operator_verifier();
        if let Ok(note) = Note::parse(data) {
            assert_eq!(note.to_text().as_bytes(), data, "to_text gives back the parsed bytes");
            let _ = note.verify(&verifier);
        }
        if let Ok(signed) = SignedCheckpoint::parse_and_verify(data, &verifier) {
            assert_eq!(signed.checkpoint().to_body(), signed.note().text());
            let _ = verify_cosignature(&signed, &note_association().cosigner_key());
        }
        let _ = StateNote::parse_and_verify(data, &verifier);
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(checkpoint) = Checkpoint::from_body(text) {
            assert_eq!(checkpoint.to_body(), text, "a checkpoint body is canonical");
        }
        if let Ok(vkey) = NoteVerifier::from_vkey(text) {
            assert_eq!(vkey.to_vkey(), text, "a vkey is canonical");
        }
    }
);
