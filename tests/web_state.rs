//! The state-proof vectors the browser's verifier (`src/web/state.js`) is tested on:
//! objects with their canonical bytes and map keys, real proofs of a real map and
//! mutations of them, and state notes, each with the answer the Rust verifier gives
//! (`tests/data/state/vectors.json`, run in Node and in headless Chromium by
//! `scripts/browser-tests.sh`; regenerate with
//! `LL_WRITE_STATE_VECTORS=1 cargo test --test tests web_state::`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use lesson_ledger::ledger::state::{Key, Table, Value as StateValue};
use lesson_ledger::ledger::state_map::proof::{map_key, value_bytes, value_hash};
use lesson_ledger::ledger::state_map::{Hash, StateMap, StateProof};
use lesson_ledger::log::hash::hex_decode;
use lesson_ledger::log::note::{sign_note, KeyName, NoteSigner};
use lesson_ledger::log::state_note::{StateNote, StateNoteError};
use serde_json::{json, Value};

use crate::web::hex;

/// The vectors `scripts/browser/state-vectors.mjs` runs `src/web/state.js` on.
const STATE_VECTORS: &str = include_str!("data/state/vectors.json");

fn object(json: Value) -> (Table, String, StateValue) {
    let value: StateValue = serde_json::from_value(json).unwrap();
    let key = value_key(&value);
    (key.0, key.1, value)
}

/// The table and id of the example objects (all of the kinds used below).
fn value_key(value: &StateValue) -> (Table, String) {
    let json = serde_json::to_value(value).unwrap();
    let (tag, inner) = json.as_object().unwrap().iter().next().unwrap();
    match tag.as_str() {
        "pool" | "config" => (Table::Meta, tag.clone()),
        "liability" => (
            Table::Liability,
            inner["institution"].as_str().unwrap().into(),
        ),
        "quota" => (Table::Quota, inner["party"].as_str().unwrap().into()),
        other => panic!("no example of {other}"),
    }
}

/// The state the vectors are drawn from: schemas/RULES.md §4.2's three objects, a
/// configuration whose origin needs every kind of escape, and 40 quotas for depth.
fn example_objects() -> Vec<(Table, String, StateValue)> {
    let mut out = vec![
        object(
            json!({"pool": {"available": 0, "claims": 1, "claims_consumed": 0, "claims_reserved": 0,
            "claims_unreserved": 120000, "claims_value": 120000, "delivered": 0, "pledged": 0,
            "pledges_approved": 0, "reserved": 0, "withdrawn": 0}}),
        ),
        object(
            json!({"liability": {"claims": 1, "institution": "inst-0007", "lessons_owed": 40,
            "made_good": 0, "owed": 120000, "students": 1}}),
        ),
        object(
            json!({"config": {"origin": "lessons.example/\"q\"\\\u{1}\u{8}\t\n\u{c}\r\u{1f}\u{7f}é中😀",
            "operator": "operator", "confirmation_window_days": 15, "allocation_validity_days": 180,
            "day_micros": 86_400_000_000u64, "unit": "CNY-fen", "districts": ["xuhui", "minhang"],
            "subjects": ["math", "art"], "genesis_time_micros": 1_764_547_200_000_000u64}}),
        ),
    ];
    for n in 0..41u32 {
        out.push(object(
            json!({"quota": {"day": n, "entries": n + 1, "key_changes": 0, "party": format!("stu-3f{n:02x}")}}),
        ));
    }
    out
}

/// What the Rust verifier answers: "accept" or the refusal's code.
fn rust_answer(
    proof: &Value,
    root: &Hash,
    table: Table,
    id: &str,
    value: Option<&Value>,
) -> String {
    let parsed = match StateProof::from_json(proof.to_string().as_bytes()) {
        Ok(p) => p,
        Err(e) => return e.code().into(),
    };
    let checked = match value {
        Some(v) => {
            let typed: StateValue = serde_json::from_value(v.clone()).unwrap();
            parsed.verify_present(root, table, id, &value_bytes(&typed))
        }
        None => parsed.verify_absent(root, table, id),
    };
    checked.map_or_else(|e| e.code().to_string(), |()| "accept".into())
}

/// One proof case: the Rust verifier's answer must be `expect`, and is recorded.
fn proof_case(
    what: &str,
    root: &Hash,
    at: (Table, &str),
    value: Option<Value>,
    proof: Value,
    expect: &str,
) -> Value {
    let got = rust_answer(&proof, root, at.0, at.1, value.as_ref());
    assert_eq!(got, expect, "{what}");
    json!({"description": what, "root": hex(root), "table": at.0.name(), "id": at.1,
           "value": value, "proof": proof, "expect": expect})
}

/// Edits a proof's siblings (as bytes) in its JSON form.
fn with_siblings(proof: &Value, edit: impl FnOnce(&mut Vec<u8>)) -> Value {
    let mut raw = STANDARD
        .decode(proof["siblings"].as_str().unwrap())
        .unwrap();
    edit(&mut raw);
    let mut out = proof.clone();
    out["siblings"] = json!(STANDARD.encode(raw));
    out
}

/// A map of `objects`: its root, and the JSON proof of any key.
struct ExampleMap<'a> {
    map: StateMap,
    objects: &'a [(Table, String, StateValue)],
}

impl ExampleMap<'_> {
    fn prove(&self, table: Table, id: &str) -> Value {
        serde_json::to_value(self.map.prove(&Key::new(table, id))).unwrap()
    }

    /// The served (tagged) JSON of object `i`.
    fn tagged(&self, i: usize) -> Value {
        serde_json::to_value(&self.objects[i].2).unwrap()
    }
}

fn proof_cases(objects: &[(Table, String, StateValue)]) -> Vec<Value> {
    let keys: Vec<Key> = objects.iter().map(|(t, i, _)| Key::new(*t, i)).collect();
    let m = ExampleMap {
        map: StateMap::of(keys.iter().zip(objects.iter().map(|o| &o.2))),
        objects,
    };
    let mut cases = presence_cases(&m);
    cases.extend(edited_proof_cases(&m));
    cases.extend(absence_cases(&m));
    let liability = (Table::Liability, "inst-0007");
    let present = m.prove(liability.0, liability.1);
    cases.extend(malformed_cases(
        &m.map.root(),
        liability,
        &m.tagged(1),
        &present,
    ));
    cases
}

/// A present object's proof, and each way of altering the object or its proof.
fn presence_cases(m: &ExampleMap) -> Vec<Value> {
    let root = m.map.root();
    let at = (Table::Liability, "inst-0007");
    let present = m.prove(at.0, at.1);
    let liability = || Some(m.tagged(1));
    let mut bumped = m.tagged(1);
    bumped["liability"]["made_good"] = json!(100);
    let config = (Table::Meta, "config");
    vec![
        proof_case(
            "a present object with its proof",
            &root,
            at,
            liability(),
            present.clone(),
            "accept",
        ),
        proof_case(
            "the configuration, every escape in its origin",
            &root,
            config,
            Some(m.tagged(2)),
            m.prove(config.0, config.1),
            "accept",
        ),
        proof_case(
            "a figure changed, its proof left",
            &root,
            at,
            Some(bumped),
            present.clone(),
            "proof_value_mismatch",
        ),
        proof_case(
            "another object's proof",
            &root,
            at,
            liability(),
            m.prove(Table::Meta, "pool"),
            "proof_key_mismatch",
        ),
    ]
}

/// A present object's proof edited: a sibling altered, removed or added.
fn edited_proof_cases(m: &ExampleMap) -> Vec<Value> {
    let root = m.map.root();
    let at = (Table::Liability, "inst-0007");
    let present = m.prove(at.0, at.1);
    let liability = || Some(m.tagged(1));
    let mut other_root = root;
    other_root[0] ^= 1;
    vec![
        proof_case(
            "a sibling altered",
            &root,
            at,
            liability(),
            with_siblings(&present, |raw| raw[5] ^= 1),
            "proof_root_mismatch",
        ),
        proof_case(
            "the path cut at the top",
            &root,
            at,
            liability(),
            with_siblings(&present, |raw| raw.drain(..32).for_each(drop)),
            "proof_root_mismatch",
        ),
        proof_case(
            "an empty sibling added at the end",
            &root,
            at,
            liability(),
            with_siblings(&present, |raw| raw.extend([0u8; 32])),
            "proof_malformed",
        ),
        proof_case(
            "a sibling added at the end",
            &root,
            at,
            liability(),
            with_siblings(&present, |raw| raw.extend([7u8; 32])),
            "proof_root_mismatch",
        ),
        proof_case(
            "the root of another state",
            &other_root,
            at,
            liability(),
            present.clone(),
            "proof_root_mismatch",
        ),
        proof_case(
            "an absence asked of a present key",
            &root,
            at,
            None,
            present,
            "proof_absent_key_present",
        ),
    ]
}

/// Absence proofs ending in nothing and in another key's leaf, asked the wrong way, and
/// with their leaf moved off the key's path.
fn absence_cases(m: &ExampleMap) -> Vec<Value> {
    let root = m.map.root();
    let mut cases = Vec::new();
    for id in ["c-0001", "c-0002", "c-0003", "c-0004"] {
        let absent = m.prove(Table::Claim, id);
        let end = if absent["leaf"].is_null() {
            "nothing"
        } else {
            "another key's leaf"
        };
        let at = (Table::Claim, id);
        let what = format!("the absence of claim {id} (ends in {end})");
        cases.push(proof_case(&what, &root, at, None, absent.clone(), "accept"));
        let what = format!("claim {id} asked present with its absence proof");
        cases.push(proof_case(
            &what,
            &root,
            at,
            Some(m.tagged(1)),
            absent,
            "proof_key_absent",
        ));
    }
    let (mut off, id) = (1..200)
        .map(|n| format!("c-{n:04}"))
        .map(|id| (m.prove(Table::Claim, &id), id))
        .find(|(p, _)| !p["leaf"].is_null())
        .unwrap();
    let mut off_key = hex_decode(off["leaf"]["key"].as_str().unwrap()).unwrap();
    off_key[0] ^= 0x80;
    off["leaf"]["key"] = json!(hex(&off_key));
    let what = "an absence proof's leaf off the key's path";
    cases.push(proof_case(
        what,
        &root,
        (Table::Claim, &id),
        None,
        off,
        "proof_leaf_off_path",
    ));
    cases
}

fn malformed_cases(root: &Hash, at: (Table, &str), value: &Value, present: &Value) -> Vec<Value> {
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut p = present.clone();
        f(&mut p);
        p
    };
    let v = || Some(value.clone());
    vec![
        proof_case(
            "siblings not a multiple of 32 bytes",
            root,
            at,
            v(),
            with_siblings(present, |raw| raw.push(1)),
            "proof_malformed",
        ),
        proof_case(
            "257 siblings",
            root,
            at,
            v(),
            with_siblings(present, |raw| *raw = vec![9; 257 * 32]),
            "proof_too_deep",
        ),
        proof_case(
            "the key in upper case",
            root,
            at,
            v(),
            edit(&|p| p["key"] = json!(p["key"].as_str().unwrap().to_uppercase())),
            "proof_malformed",
        ),
        proof_case(
            "an unknown member",
            root,
            at,
            v(),
            edit(&|p| p["depth"] = json!(7)),
            "proof_malformed",
        ),
        proof_case(
            "siblings not base64",
            root,
            at,
            v(),
            edit(&|p| p["siblings"] = json!("!!!!")),
            "proof_malformed",
        ),
        proof_case(
            "a leaf's value hash too short",
            root,
            at,
            v(),
            edit(&|p| p["leaf"]["value_hash"] = json!("00")),
            "proof_malformed",
        ),
    ]
}

/// State notes: honest, by another key, altered, of the old format, not canonical.
fn note_texts(root: &Hash, operator: &NoteSigner) -> Vec<(&'static str, String, &'static str)> {
    let stranger = NoteSigner::new(
        KeyName::new("operator").unwrap(),
        SigningKey::from_bytes(&[2; 32]),
    );
    let honest = StateNote {
        origin: ORIGIN.into(),
        size: 7,
        root: *root,
    };
    let signed = |body: String| sign_note(&body, operator).unwrap();
    let root64 = STANDARD.encode(root);
    // The last base64 digit of 32 bytes carries two unused bits: set one.
    let mut loose = root64.clone().into_bytes();
    loose[42] = b"AEIMQUYcgkosw048"
        .iter()
        .position(|d| *d == loose[42])
        .map_or(b'B', |_| loose[42] + 1);
    let loose = String::from_utf8(loose).unwrap();
    let map = "lesson-ledger/state-map/v1";
    vec![
        (
            "the operator's note",
            honest.sign(operator).unwrap(),
            "accept",
        ),
        (
            "a note by another key of the same name",
            honest.sign(&stranger).unwrap(),
            "state_note_invalid",
        ),
        (
            "the size changed after signing",
            honest.sign(operator).unwrap().replacen("\n7\n", "\n8\n", 1),
            "state_note_invalid",
        ),
        (
            "a state digest note (the first format)",
            signed(format!(
                "lesson-ledger/state-digest/v1\n{ORIGIN}\n7\n{root64}\n"
            )),
            "state_note_old_format",
        ),
        (
            "a size with a leading zero",
            signed(format!("{map}\n{ORIGIN}\n07\n{root64}\n")),
            "state_note_invalid",
        ),
        (
            "a fifth line",
            signed(format!("{map}\n{ORIGIN}\n7\n{root64}\nmore\n")),
            "state_note_invalid",
        ),
        (
            "a root in non-canonical base64",
            signed(format!("{map}\n{ORIGIN}\n7\n{loose}\n")),
            "state_note_invalid",
        ),
    ]
}

const ORIGIN: &str = "lessons.example/web";

/// The note cases with the Rust verifier's answers, and the operator's vkey.
fn note_cases(root: &Hash) -> (String, Vec<Value>) {
    let operator = NoteSigner::new(
        KeyName::new("operator").unwrap(),
        SigningKey::from_bytes(&[1; 32]),
    );
    let honest = StateNote {
        origin: ORIGIN.into(),
        size: 7,
        root: *root,
    };
    let cases = note_texts(root, &operator)
        .into_iter()
        .map(|(what, text, expect)| {
            let got = match StateNote::parse_and_verify(text.as_bytes(), &operator.verifier()) {
                Ok(n) if n == honest => "accept",
                Ok(_) => "another note",
                Err(StateNoteError::OldFormat) => "state_note_old_format",
                Err(_) => "state_note_invalid",
            };
            assert_eq!(got, expect, "{what}");
            json!({"description": what, "note": text, "expect": expect})
        })
        .collect();
    (operator.vkey(), cases)
}

#[test]
fn the_browser_state_vectors_are_the_rust_verifiers_answers() {
    let objects = example_objects();
    let canonical: Vec<Value> = objects
        .iter()
        .map(|(t, i, v)| {
            let bytes = value_bytes(v);
            json!({"table": t.name(), "id": i, "value": v, "map_key": hex(&map_key(*t, i)),
                   "canonical": String::from_utf8(bytes.clone()).unwrap(), "value_hash": hex(&value_hash(&bytes))})
        })
        .collect();
    let keys: Vec<Key> = objects.iter().map(|(t, i, _)| Key::new(*t, i)).collect();
    let root = StateMap::of(keys.iter().zip(objects.iter().map(|o| &o.2))).root();
    let (vkey, notes) = note_cases(&root);
    let expected = json!({
        "description": "State map vectors (tests/web.rs): canonical bytes and map keys, proofs and their mutations, state notes, each with the Rust verifier's answer; run against src/web/state.js",
        "objects": canonical,
        "proofs": proof_cases(&objects),
        "state_notes": {"vkey": vkey, "origin": ORIGIN, "size": 7, "root": hex(&root), "cases": notes},
    });
    if std::env::var_os("LL_WRITE_STATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&expected).unwrap();
        std::fs::create_dir_all("tests/data/state").unwrap();
        std::fs::write("tests/data/state/vectors.json", text + "\n").unwrap();
    }
    let file: Value = serde_json::from_str(STATE_VECTORS).unwrap();
    assert_eq!(
        file, expected,
        "tests/data/state/vectors.json is stale: regenerate with LL_WRITE_STATE_VECTORS=1"
    );
}
