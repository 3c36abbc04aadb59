//! The ledger's entry payload parser (`ledger::parse`) and the rules behind it
//! (`ledger::decide`) on a state holding the example genesis and a registered student
//! (`schemas/examples/entries/`), with the fuzzer choosing which of those keys signed.
//!
//! Never panics; an accepted entry's changes keep every balance identity
//! (`invariants::check_changes`: value = unreserved + reserved + consumed).
#![no_main]

use lesson_ledger::ledger::{apply_entry, decide, invariants, parse, EntryContext, MemoryState};
use libfuzzer_sys::fuzz_target;

const GENESIS: &str = include_str!("../../schemas/examples/entries/genesis.json");
const STUDENT: &str = include_str!("../../schemas/examples/entries/party_registered.json");
/// Ledger time of the fuzzed entry: after the fixture's entries.
const TIME_MICROS: u64 = 1_800_000_000_000_000;

fn key_of(payload: &str, field: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(payload).expect("example is JSON");
    value[field]
        .as_str()
        .expect("example names a key")
        .to_owned()
}

/// The state the fuzzed entry is decided on. Panics (in the harness, not on input) if
/// the examples stop applying: then this target must follow the format change.
fn state(operator: &str, student: &str) -> MemoryState {
    let mut state = MemoryState::new();
    let ctx = |index, signers: Vec<String>| EntryContext {
        index,
        time_micros: TIME_MICROS - 1_000 + index,
        signers,
    };
    apply_entry(
        &mut state,
        &ctx(0, vec![operator.to_owned()]),
        GENESIS.as_bytes(),
    )
    .expect("the example genesis applies; update fuzz/fuzz_targets/entry_payload.rs");
    apply_entry(
        &mut state,
        &ctx(1, vec![operator.to_owned(), student.to_owned()]),
        STUDENT.as_bytes(),
    )
    .expect("the example registration applies; update fuzz/fuzz_targets/entry_payload.rs");
    state
}

fuzz_target!(|data: &[u8]| {
    let Some((&signers, payload)) = data.split_first() else {
        return;
    };
    if let Ok(entry) = parse(payload) {
        let _ = (entry.kind(), entry.id());
    }
    let operator = key_of(GENESIS, "operator_key");
    let student = key_of(STUDENT, "key");
    let state = state(&operator, &student);
    let signers = match signers % 4 {
        0 => vec![],
        1 => vec![operator],
        2 => vec![student],
        _ => vec![operator, student],
    };
    let ctx = EntryContext {
        index: 2,
        time_micros: TIME_MICROS,
        signers,
    };
    if let Ok(changes) = decide(&state, &ctx, payload) {
        assert_eq!(
            invariants::check_changes(&changes),
            Ok(()),
            "an accepted entry keeps the balance identities"
        );
    }
});
