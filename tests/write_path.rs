//! The single-POST write path made cheaper (issue 15): one envelope of a few signatures
//! is screened and verified on the runtime, and admission remembers the keys it found
//! registered so that it need not wait for the ledger's lock. What must not change:
//! every signature is still verified, an unknown key is still refused before any
//! verification, each refusal has the same code alone and in a batch, and a refused
//! entry changes nothing.

use lesson_ledger::http::entries::BatchResults;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::http::{assert_problem, base64_decode, base64_encode, current_checkpoint, Fixture};
use crate::support::{ledger_entry, party_signer, register_institution};

fn as_json(envelope: &lesson_ledger::log::envelope::Envelope) -> Value {
    serde_json::from_str(&envelope.to_json()).expect("an envelope is JSON")
}

/// `envelope` with one bit of signature `at` flipped.
fn flipped(envelope: &Value, at: usize) -> Value {
    let mut out = envelope.clone();
    let sig = out["signatures"][at]["sig"]
        .as_str()
        .expect("sig")
        .to_owned();
    let mut raw = base64_decode(&sig);
    raw[0] ^= 1;
    out["signatures"][at]["sig"] = json!(base64_encode(&raw));
    out
}

fn statuses(f: &Fixture, entries: &[Value]) -> Vec<String> {
    let response = f.post(json!({ "entries": entries }).to_string());
    assert_eq!(response.status(), StatusCode::OK);
    let results: BatchResults = response.json().expect("batch results");
    results.results.into_iter().map(|r| r.status).collect()
}

#[test]
fn an_entry_whose_signature_fails_is_refused_alike_alone_and_in_a_batch_and_changes_nothing() {
    let f = Fixture::new();
    // The operator's key is remembered as registered after this one.
    assert_eq!(
        f.post(register_institution(&f.operator, 1).to_json())
            .status(),
        StatusCode::OK
    );
    let size = current_checkpoint(&f).checkpoint().size;
    let good = as_json(&register_institution(&f.operator, 2));
    // Each of the three signatures (operator, new key, association) broken in turn:
    // a remembered key, a named key and a registered one are all still verified.
    for at in 0..3 {
        let bad = flipped(&good, at);
        assert_problem(f.post(bad.to_string()), 400, "bad_signature");
        assert_eq!(statuses(&f, &[bad]), ["bad_signature"], "signature {at}");
        assert_eq!(
            current_checkpoint(&f).checkpoint().size,
            size,
            "a refused entry changes nothing"
        );
    }
    // Beside a good entry in a batch, only the broken one is refused.
    assert_eq!(
        statuses(&f, &[flipped(&good, 0), good]),
        ["bad_signature", "ok"]
    );
    assert_eq!(current_checkpoint(&f).checkpoint().size, size + 1);
}

#[test]
fn a_key_refused_as_unknown_is_accepted_once_registered() {
    let f = Fixture::new();
    let key = party_signer("inst-00007", 7);
    let approval = |id: &str| {
        ledger_entry(
            &[&f.operator, &key],
            &json!({"kind": "pledge_approved", "id": id, "pledge": "p-404"}),
        )
    };
    // Alone and in a batch, while the operator's key is remembered: refused for the
    // stranger's key before any signature is checked.
    assert_problem(f.post(approval("appr-1").to_json()), 400, "unknown_key");
    assert_eq!(
        statuses(&f, &[as_json(&approval("appr-1"))]),
        ["unknown_key"]
    );
    // Once the key is registered, the same signer passes admission and the rules
    // answer: the refusal was not remembered.
    assert_eq!(
        f.post(register_institution(&f.operator, 7).to_json())
            .status(),
        StatusCode::OK
    );
    assert_problem(f.post(approval("appr-2").to_json()), 422, "pledge_unknown");
}

#[test]
fn a_key_known_to_another_ledger_is_unknown_to_this_one() {
    // Two servers in one process: what one remembers is not the other's.
    let (a, b) = (Fixture::new(), Fixture::new());
    let registration = register_institution(&a.operator, 3);
    assert_eq!(a.post(registration.to_json()).status(), StatusCode::OK);
    let key = party_signer("inst-00003", 3);
    let entry = |f: &Fixture| {
        ledger_entry(
            &[&f.operator, &key],
            &json!({"kind": "pledge_approved", "id": "appr-3", "pledge": "p-404"}),
        )
    };
    assert_problem(a.post(entry(&a).to_json()), 422, "pledge_unknown");
    assert_problem(b.post(entry(&b).to_json()), 400, "unknown_key");
}
