//! The ledger's entry payload parser (`ledger::parse`) and the rules behind it
//! (`ledger::decide`) on a state holding the example genesis and a registered student
//! (`schemas/examples/entries/`), with the fuzzer choosing which of those keys signed (the first byte: bit 0
//! the operator, bit 1 the association, bit 2 the student).
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
fn state(keys: &Keys) -> MemoryState {
    let mut state = MemoryState::new();
    let ctx = |index, signers: Vec<String>| EntryContext {
        index,
        time_micros: TIME_MICROS - 1_000 + index,
        signers,
    };
    // Entry format v2: the genesis is co-signed by the association it declares, a
    // registration by the operator, an association and the new key.
    apply_entry(
        &mut state,
        &ctx(0, vec![keys.operator.clone(), keys.association.clone()]),
        GENESIS.as_bytes(),
    )
    .expect("the example genesis applies; update fuzz/fuzz_targets/entry_payload.rs");
    apply_entry(&mut state, &ctx(1, keys.all()), STUDENT.as_bytes())
        .expect("the example registration applies; update fuzz/fuzz_targets/entry_payload.rs");
    state
}

/// The verifier keys of the examples: the operator, the association the genesis
/// declares, and the registered student.
struct Keys {
    operator: String,
    association: String,
    student: String,
}

impl Keys {
    fn of_examples() -> Keys {
        let genesis: serde_json::Value = serde_json::from_str(GENESIS).expect("example is JSON");
        Keys {
            operator: key_of(GENESIS, "operator_key"),
            association: genesis["associations"][0]["key"]
                .as_str()
                .expect("the example genesis declares an association")
                .to_owned(),
            student: key_of(STUDENT, "key"),
        }
    }

    fn all(&self) -> Vec<String> {
        vec![
            self.operator.clone(),
            self.association.clone(),
            self.student.clone(),
        ]
    }

    /// The signers bit `i` of `mask` selects, in the order of [`Keys::all`].
    fn chosen(&self, mask: u8) -> Vec<String> {
        self.all()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, key)| key)
            .collect()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&signers, payload)) = data.split_first() else {
        return;
    };
    if let Ok(entry) = parse(payload) {
        let _ = (entry.kind(), entry.id());
    }
    let keys = Keys::of_examples();
    let state = state(&keys);
    let signers = keys.chosen(signers);
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
