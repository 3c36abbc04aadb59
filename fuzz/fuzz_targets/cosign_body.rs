//! The `POST /v1/cosign` body: the JSON request (`CosignRequest`), its signature lines
//! merged into a real signed checkpoint (`SignedCheckpoint::add_signature_lines`) and
//! checked as the association's cosignature (`verify_cosignature`), as the handler does.
//!
//! Never panics; merged lines leave a note that still parses and still carries the
//! operator's valid signature.
#![no_main]

use lesson_ledger::http::cosign::{CosignRequest, COSIGN_BODY_BYTES_MAX};
use lesson_ledger::log::note::{verify_cosignature, SignedCheckpoint};
use lesson_ledger_fuzz::{fixture_checkpoint, note_association, note_operator_verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > COSIGN_BODY_BYTES_MAX {
        return;
    }
    let Ok(request) = serde_json::from_slice::<CosignRequest>(data) else {
        return;
    };
    let mut cosigned = fixture_checkpoint();
    if cosigned.add_signature_lines(&request.cosignature).is_err() {
        return;
    }
    let _ = verify_cosignature(&cosigned, &note_association().cosigner_key());
    let text = cosigned.text();
    let reparsed = SignedCheckpoint::parse_and_verify(text.as_bytes(), &note_operator_verifier())
        .expect("merged lines leave a note whose operator signature verifies");
    assert_eq!(reparsed.checkpoint(), cosigned.checkpoint());
});
