//! Keys and growth: key recovery under two-party control, bounded per-party lists and
//! quotas, and money conserved by construction.
//!
//! Signers are real Ed25519 keys (seeded), named by their C2SP verifier key strings, which
//! is all the rules see of a signature; the writer tests use the real log and store.

use lesson_ledger::ledger::objects::{Claim, Pledge};
use lesson_ledger::ledger::{
    apply_entry, get_object, EntryContext, Fen, Key, MemoryState, RuleError, Table, Value,
};
use serde_json::{json, Value as Json};

use crate::support::vkey;

const T0: u64 = 1_700_000_000_000_000;
const SEC: u64 = 1_000_000;

/// A ledger in memory driven through the rules, one entry at a time.
pub(crate) struct Desk {
    pub(crate) state: MemoryState,
    pub(crate) time: u64,
    pub(crate) index: u64,
    next_id: u64,
}

impl Desk {
    pub(crate) fn new() -> Desk {
        Desk {
            state: MemoryState::new(),
            time: T0,
            index: 0,
            next_id: 0,
        }
    }

    pub(crate) fn submit(&mut self, signers: &[&str], mut payload: Json) -> Result<(), RuleError> {
        if payload.get("id").is_none() {
            self.next_id += 1;
            payload["id"] = json!(format!("e-{:05}", self.next_id));
        }
        let ctx = EntryContext {
            index: self.index,
            time_micros: self.time,
            signers: signers.iter().map(|s| (*s).to_owned()).collect(),
        };
        let before = self.state.digest();
        let bytes = serde_json::to_vec(&payload).expect("json");
        match apply_entry(&mut self.state, &ctx, &bytes) {
            Ok(()) => {
                self.index += 1;
                self.time += SEC;
                Ok(())
            }
            Err(e) => {
                assert_eq!(
                    self.state.digest(),
                    before,
                    "a refused entry changed the state"
                );
                Err(e)
            }
        }
    }

    #[track_caller]
    pub(crate) fn ok(&mut self, signers: &[&str], payload: Json) {
        if let Err(e) = self.submit(signers, payload.clone()) {
            panic!("refused ({}): {e}\n{payload}", e.code());
        }
    }

    /// The genesis, by the operator key `op`.
    pub(crate) fn genesis(&mut self, op: &str) {
        self.ok(
            &[op],
            json!({"kind": "genesis", "origin": "ledger.example/keys", "operator": "operator",
            "operator_key": op, "allocation_validity_days": 90, "unit": "CNY-fen",
            "districts": ["xuhui"], "subjects": ["math"]}),
        );
    }

    /// Registers `party` with `key` (signed by the operator `op` and the new key).
    pub(crate) fn register(&mut self, op: &str, party: &str, role: &str, key: &str) {
        self.ok(
            &[op, key],
            json!({"kind": "party_registered", "party": party, "role": role, "key": key}),
        );
    }
}

#[test]
fn a_stored_claim_whose_parts_do_not_add_up_is_refused_when_decoded() {
    let claim = json!({"claim": "c-1", "student": "stu-1", "institution": "inst-1",
        "subject": "math", "grade": 4, "district": "xuhui", "accepts_online": false,
        "accepted_districts": [], "evidence_digest": "00", "lessons": 10,
        "price_per_lesson": 100, "value": 1000, "unreserved": 700, "reserved": 200,
        "consumed": 100, "entries": [3]});
    let ok: Claim = serde_json::from_value(claim.clone()).expect("balanced");
    assert_eq!(
        (
            ok.value.total(),
            ok.value.unreserved(),
            ok.value.reserved(),
            ok.value.consumed()
        ),
        (Fen(1000), Fen(700), Fen(200), Fen(100))
    );
    // Served and stored flat, exactly as before the balance had a type.
    assert_eq!(serde_json::to_value(&ok).expect("json"), claim);
    let bytes = postcard::to_allocvec(&ok).expect("postcard");
    assert_eq!(postcard::from_bytes::<Claim>(&bytes).expect("decodes"), ok);
    let mut unbalanced = claim;
    unbalanced["consumed"] = json!(101);
    let err = serde_json::from_value::<Claim>(unbalanced).unwrap_err();
    assert!(err.to_string().contains("do not add up"), "{err}");
}

#[test]
fn a_stored_pledge_with_more_lessons_out_than_its_capacity_is_refused_when_decoded() {
    let pledge = json!({"pledge": "p-1", "institution": "inst-1", "subject": "math",
        "grade_min": 1, "grade_max": 6, "district": null, "online": true, "seats": 2,
        "lessons_per_seat": 5, "value_per_lesson": 100, "valid_from_micros": 0,
        "valid_until_micros": 10, "capacity": 10, "available": 4, "reserved": 3,
        "delivered": 2, "withdrawn": 1, "approved_at": null, "entries": []});
    let ok: Pledge = serde_json::from_value(pledge.clone()).expect("balanced");
    assert_eq!(serde_json::to_value(&ok).expect("json"), pledge);
    let mut over = pledge;
    over["delivered"] = json!(3);
    assert!(serde_json::from_value::<Pledge>(over).is_err());
}

/// A desk with a closed institution's claim, a donor's approved pledge, and keys.
fn money_desk() -> (Desk, [String; 4]) {
    let keys = [
        vkey("operator", 41),
        vkey("inst-0001", 42),
        vkey("inst-0002", 43),
        vkey("stu-0001", 44),
    ];
    let [op, closed, donor, stu] = keys.clone();
    let mut d = Desk::new();
    d.genesis(&op);
    d.register(&op, "inst-0001", "institution", &closed);
    d.register(&op, "inst-0002", "institution", &donor);
    d.register(&op, "stu-0001", "student", &stu);
    d.ok(
        &[&op],
        json!({"kind": "institution_closed", "institution": "inst-0001", "reason": "closed"}),
    );
    d.ok(
        &[&op],
        json!({"kind": "institution_whitelisted", "institution": "inst-0002", "reason": "donor"}),
    );
    d.ok(
        &[&op, &stu],
        json!({"kind": "claim_recorded", "claim": "c-0001", "student": "stu-0001",
        "institution": "inst-0001", "lessons": 10, "price_per_lesson_fen": 100,
        "subject": "math", "grade": 4, "district": "xuhui",
        "evidence_digest": "4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f",
        "accepts_online": true, "accepted_districts": []}),
    );
    d.ok(
        &[&donor],
        json!({"kind": "pledge_offered", "pledge": "p-0001", "institution": "inst-0002",
        "subject": "math", "grade_min": 1, "grade_max": 6, "online": true, "seats": 2,
        "lessons_per_seat": 5, "value_per_lesson_fen": 100, "valid_from_micros": 0,
        "valid_until_micros": T0 + 1_000 * 86_400 * SEC}),
    );
    d.ok(
        &[&op],
        json!({"kind": "pledge_approved", "pledge": "p-0001"}),
    );
    (d, keys)
}

#[test]
fn an_entry_that_would_break_a_balance_identity_is_refused_in_release_builds_and_writes_nothing() {
    let (mut d, [op, ..]) = money_desk();
    // A fault makes the stored claim's value disagree with lessons × price (a rule bug,
    // or a damaged store); the parts still add up, so the type lets it through.
    let mut claim: Claim = get_object(&d.state, "c-0001").unwrap().unwrap();
    claim.price_per_lesson = Fen(99);
    d.state.apply(vec![(
        Key::new(Table::Claim, "c-0001"),
        Value::Claim(Box::new(claim)),
    )]);
    let err = d
        .submit(
            &[&op],
            json!({"kind": "allocation_made", "allocation": "a-0001", "claim": "c-0001",
            "pledge": "p-0001", "lessons": 5}),
        )
        .unwrap_err();
    assert_eq!(err.code(), "invariant_violated", "{err}");
    assert!(
        get_object::<lesson_ledger::ledger::objects::Allocation, _>(&d.state, "a-0001")
            .unwrap()
            .is_none()
    );
}
