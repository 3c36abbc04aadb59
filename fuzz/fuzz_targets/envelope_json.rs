//! DSSE envelope JSON (`Envelope::from_json`), as `POST /v1/entries` and `append` read it.
//! Never panics; a parsed envelope round-trips through its canonical JSON, and
//! verifying it (self-certifying keys, as the CLI does) returns a result, never a panic.
#![no_main]

use lesson_ledger::log::envelope::{Envelope, KeyCache};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_json(data) else {
        return;
    };
    let canonical = envelope.to_json();
    let again = Envelope::from_json(canonical.as_bytes()).expect("canonical JSON parses");
    assert_eq!(again, envelope, "from_json(to_json(e)) == e");
    assert_eq!(
        again.to_json(),
        canonical,
        "canonical JSON is a fixed point"
    );
    assert_eq!(again.entry_id(), envelope.entry_id());
    let _ = envelope.verify(&KeyCache::self_certifying());
});
