//! The attacks of issue 11 on the ledger's formats and rules, each reproduced against the
//! real rules and refused with its stable code, the state unchanged:
//! - a statement copied from one ledger into another (item 6);
//! - the operator creating value alone: registering its own parties, recording a claim,
//!   allocating by hand (item 9);
//! - personal data in reasons, key names and party ids (item 12);
//! - one party taking the entry id another party will need (item 3).

use serde_json::json;

use super::{claim, fixture, pledge, World, DAY, T0};
use crate::support::vkey;

/// The state's digest, to show that a refusal changed nothing.
fn digest(w: &World) -> [u8; 32] {
    w.state.root()
}

#[test]
fn a_students_key_revocation_copied_from_another_ledger_is_refused_as_wrong_ledger() {
    let (mut w, _) = fixture();
    let key = w.keys["stu"].clone();
    // Signed by the student for ledger A, replayed into this ledger (B).
    let copied = json!({"kind": "key_revoked", "ledger": "ledger.example/another-city",
        "party": "stu-3f9a", "key": key, "reason": "lost"});
    let before = digest(&w);
    let e = w.submit(&["stu"], copied).unwrap_err();
    assert_eq!(e.code(), "wrong_ledger");
    assert_eq!(digest(&w), before);
    // The student is not locked out: their key still signs here.
    w.ok(
        &["stu"],
        json!({"kind": "lesson_confirmed", "lesson": "l-0002"}),
    );
    // A statement that names no ledger is not a v2 statement at all.
    let unnamed = br#"{"kind":"lesson_confirmed","id":"e-9000","lesson":"l-0002"}"#.to_vec();
    assert_eq!(
        w.submit_bytes(&["stu"], unnamed, 0).unwrap_err().code(),
        "missing_field"
    );
}

#[test]
fn a_genesis_names_its_own_origin_as_its_ledger() {
    let mut w = World::new();
    let mut g = super::genesis(&w);
    g["ledger"] = json!("ledger.example/elsewhere");
    assert_eq!(
        w.submit(&["op", "assoc"], g).unwrap_err().code(),
        "wrong_ledger"
    );
    let g = super::genesis(&w);
    w.ok(&["op", "assoc"], g);
}

#[test]
fn the_operator_alone_can_neither_register_a_party_nor_record_a_claim() {
    let (mut w, _) = fixture();
    w.auto_association = false;
    w.keys.insert("own", vkey("stu-0e0e", 40));
    let before = digest(&w);
    let own = w.keys["own"].clone();
    // The operator registers a student key it holds itself: refused without an association.
    let registration =
        json!({"kind": "party_registered", "party": "stu-0e0e", "role": "student", "key": own});
    let e = w.submit(&["op", "own"], registration.clone()).unwrap_err();
    assert_eq!(e.code(), "missing_signature");
    // ...and a claim against the real closed inst-0001 for a student it registered: the
    // debt (and what is "made good" of it) cannot rise on the operator's word.
    let report = lesson_ledger::ledger::queries::institution_report(&w.state, "inst-0001")
        .unwrap()
        .unwrap();
    let e = w
        .submit(
            &["op", "stu"],
            claim("c-0900", "stu-3f9a", 1_000, 1_000_000, true, &[]),
        )
        .unwrap_err();
    assert_eq!(e.code(), "missing_signature");
    assert_eq!(digest(&w), before);
    let after = lesson_ledger::ledger::queries::institution_report(&w.state, "inst-0001")
        .unwrap()
        .unwrap();
    assert_eq!(after.owed, report.owed);
    // With a consumer association's co-signature both are recorded.
    w.ok(&["op", "assoc", "own"], registration);
    w.ok(
        &["op", "stu", "assoc"],
        claim("c-0900", "stu-3f9a", 2, 10_000, true, &[]),
    );
}

#[test]
fn a_hand_made_allocation_needs_an_association_and_a_run_allocation_is_checked_by_its_rerun() {
    let (mut w, _) = fixture();
    w.auto_association = false;
    let hand = json!({"kind": "allocation_made", "allocation": "a-0900", "claim": "c-0001",
        "pledge": "p-0001", "lessons": 1});
    let before = digest(&w);
    assert_eq!(
        w.submit(&["op"], hand.clone()).unwrap_err().code(),
        "missing_signature"
    );
    assert_eq!(digest(&w), before);
    w.ok(&["op", "assoc"], hand);
    // A run's allocation needs only the operator: `verify` re-runs the matcher on it.
    w.ok(&["op"], super::match_run("run-0900", 1));
    w.ok(
        &["op"],
        json!({"kind": "allocation_made", "allocation": "run-0900.0", "claim": "c-0001",
               "pledge": "p-0001", "lessons": 1, "run": "run-0900"}),
    );
}

#[test]
fn associations_are_declared_by_the_genesis_each_cosigning_it_and_never_registered() {
    let mut w = World::new();
    let g = super::genesis(&w);
    // The operator cannot declare an association whose key it does not hold.
    assert_eq!(
        w.submit(&["op"], g.clone()).unwrap_err().code(),
        "missing_signature"
    );
    let mut none = g.clone();
    none["associations"] = json!([]);
    assert_eq!(
        w.submit(&["op"], none).unwrap_err().code(),
        "value_out_of_range"
    );
    let mut misnamed = g.clone();
    misnamed["associations"] = json!([{"party": "assoc-02", "key": w.keys["assoc"]}]);
    assert_eq!(
        w.submit(&["op", "assoc"], misnamed).unwrap_err().code(),
        "key_name_mismatch"
    );
    w.ok(&["op", "assoc"], g);
    // No association joins later on the operator's word.
    w.keys.insert("assoc2", vkey("assoc-02", 41));
    let k = w.keys["assoc2"].clone();
    assert_eq!(
        w.submit(
            &["op", "assoc", "assoc2"],
            json!({"kind": "party_registered", "party": "assoc-02", "role": "association", "key": k}),
        )
        .unwrap_err()
        .code(),
        "role_not_registrable"
    );
}

#[test]
fn no_free_text_or_personal_data_reaches_the_log() {
    let (mut w, _) = fixture();
    let before = digest(&w);
    let key = w.keys["stu"].clone();
    let name_and_phone = json!({"kind": "key_revoked", "party": "stu-3f9a", "key": key,
        "reason": "张三 138 1234 5678 lost his phone"});
    assert_eq!(
        w.submit(&["stu"], name_and_phone).unwrap_err().code(),
        "malformed_payload"
    );
    let full_width = json!({"kind": "institution_blacklisted", "institution": "inst-0007",
        "reason": "法人身份证１１０１０５１９４９１２３１００２Ｘ"});
    assert_eq!(
        w.submit(&["op"], full_width).unwrap_err().code(),
        "malformed_payload"
    );
    // A key's name is its party's id, not a name and an address.
    w.keys.insert("named", vkey("张三-徐汇区某小区", 42));
    let named = w.keys["named"].clone();
    assert_eq!(
        w.submit(
            &["op", "named"],
            json!({"kind": "party_registered", "party": "stu-0bad", "role": "student", "key": named}),
        )
        .unwrap_err()
        .code(),
        "key_name_mismatch"
    );
    // Party ids are opaque: a fixed prefix and hex characters.
    for (party, role, seed) in [
        ("zhang.san.1990", "student", 43),
        ("stu-zhangsan", "student", 44),
        ("inst-xuhui-dance", "institution", 45),
        ("inst-0007", "student", 46),
    ] {
        w.keys.insert("candidate", vkey(party, seed));
        let k = w.keys["candidate"].clone();
        assert_eq!(
            w.submit(
                &["op", "candidate"],
                json!({"kind": "party_registered", "party": party, "role": role, "key": k}),
            )
            .unwrap_err()
            .code(),
            "party_id_invalid",
            "{party} as {role}"
        );
    }
    // A reason is one of its kind's codes, with evidence kept off the log.
    assert_eq!(
        w.submit(
            &["op"],
            json!({"kind": "institution_blacklisted", "institution": "inst-0007", "reason": "approved_donor"}),
        )
        .unwrap_err()
        .code(),
        "reason_not_allowed"
    );
    assert_eq!(digest(&w), before);
    w.ok(
        &["op"],
        json!({"kind": "institution_blacklisted", "institution": "inst-0007",
               "reason": "fund_outflow", "evidence_digest": "ab".repeat(32)}),
    );
}

#[test]
fn an_entry_id_is_scoped_to_its_author_so_no_party_takes_anothers() {
    let (mut w, _) = fixture();
    // A donor takes the student's predictable dispute id and the operator's next
    // match-run id before either is used...
    for (id, pledge_id) in [
        ("lesson_disputed.d-0100", "p-0900"),
        ("match-0042", "p-0901"),
    ] {
        let mut offer = pledge(
            pledge_id,
            "inst-0007",
            "math",
            (4, 6),
            Some("xuhui"),
            1,
            10,
            100,
            T0,
            T0 + 365 * DAY,
        );
        offer["id"] = json!(id);
        w.ok(&["inst7"], offer);
    }
    // ...and neither is blocked: ids are unique per author.
    w.ok(
        &["stu"],
        json!({"kind": "lesson_disputed", "id": "lesson_disputed.d-0100", "dispute": "d-0100",
               "lesson": "l-0002", "reason": "not_attended"}),
    );
    let mut run = super::match_run("run-0042", 0);
    run["id"] = json!("match-0042");
    w.ok(&["op"], run);
    // Within one author's namespace an id still names one statement.
    let e = w
        .submit(
            &["stu"],
            json!({"kind": "allocation_declined", "id": "lesson_disputed.d-0100", "allocation": "a-0001"}),
        )
        .unwrap_err();
    assert_eq!(e.code(), "id_reused");
}
