//! The lesson-credit rules, as the MISSION states them: a happy path through every entry
//! kind, a catalogue of bad entries each refused with its code and the state unchanged,
//! property tests over random sequences, and the published schemas and examples.
//!
//! Signers are real Ed25519 keys (seeded), named by their C2SP verifier key strings, which
//! is all the rules see of a signature.

use std::collections::BTreeMap;

use lesson_ledger::ledger::invariants::check_invariants;
use lesson_ledger::ledger::sled_state::SledState;
use lesson_ledger::ledger::state_map::StateMap;
use lesson_ledger::ledger::{
    apply_entry, parse, queries, EntryContext, Fen, Lessons, MemoryState, RuleError, StateView,
};
use serde_json::{json, Value};

use crate::support::vkey;

const T0: u64 = 1_700_000_000_000_000;
const SEC: u64 = 1_000_000;
const DAY: u64 = 86_400 * SEC;
const EVIDENCE: &str = "4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f";

/// The actors of the tests, by short name.
fn actors() -> BTreeMap<&'static str, String> {
    [
        ("op", vkey("operator", 1)),
        ("inst1", vkey("inst-0001", 2)),
        ("inst7", vkey("inst-0007", 3)),
        ("inst9", vkey("inst-0009", 4)),
        ("inst666", vkey("inst-0666", 5)),
        ("stu", vkey("stu-3f9a", 6)),
        ("stu2old", vkey("stu-77b2", 7)),
        ("stu2", vkey("stu-77b2", 8)),
        ("assoc", vkey("assoc-01", 9)),
        ("stranger", vkey("stranger", 10)),
        // Keys named for parties the fixture registers (or not) with other keys.
        ("stu_dup", vkey("stu-3f9a", 11)),
        ("stu0100", vkey("stu-0100", 12)),
    ]
    .into_iter()
    .collect()
}

/// The origin of the test ledger: every payload names it (`ledger`) unless a test says
/// otherwise.
const ORIGIN: &str = "ledger.example/sh-2021";

struct World {
    state: MemoryState,
    time: u64,
    next_id: u64,
    keys: BTreeMap<&'static str, String>,
    accepted: Vec<(EntryContext, Vec<u8>)>,
    /// Add the association `assoc` as co-signer of the kinds that need one (registrations,
    /// claims, allocations made by hand) when a test does not name it; off in the tests
    /// of that rule itself.
    auto_association: bool,
}

/// Whether the rules want a consumer association's co-signature on this payload.
fn needs_association(bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    match v.get("kind").and_then(Value::as_str) {
        Some("party_registered" | "claim_recorded") => true,
        Some("allocation_made") => v.get("run").is_none(),
        _ => false,
    }
}

impl World {
    fn new() -> World {
        World {
            state: MemoryState::new(),
            time: T0,
            next_id: 0,
            keys: actors(),
            accepted: Vec::new(),
            auto_association: true,
        }
    }

    /// The payload bytes, with a fresh `id` unless one is given, and this ledger's
    /// `ledger` unless one is given.
    fn bytes(&mut self, mut payload: Value) -> Vec<u8> {
        if payload.is_object() && payload.get("ledger").is_none() {
            payload["ledger"] = json!(ORIGIN);
        }
        if payload.get("id").is_none() {
            self.next_id += 1;
            payload["id"] = json!(format!("e-{:04}", self.next_id));
        }
        serde_json::to_vec(&payload).unwrap()
    }

    fn ctx(&self, signers: &[&str], advance: u64) -> EntryContext {
        EntryContext {
            index: self.accepted.len() as u64,
            time_micros: self.time + advance,
            signers: signers.iter().map(|s| self.keys[s].clone()).collect(),
        }
    }

    /// Submit raw bytes at `time + advance`; on success the time moves on.
    fn submit_bytes(
        &mut self,
        signers: &[&str],
        bytes: Vec<u8>,
        advance: u64,
    ) -> Result<(), RuleError> {
        let mut ctx = self.ctx(signers, advance);
        if self.auto_association && needs_association(&bytes) && !signers.contains(&"assoc") {
            ctx.signers.push(self.keys["assoc"].clone());
        }
        let before = self.state.root();
        match apply_entry(&mut self.state, &ctx, &bytes) {
            Ok(()) => {
                self.time = ctx.time_micros + SEC;
                self.accepted.push((ctx, bytes));
                Ok(())
            }
            Err(e) => {
                assert_eq!(
                    self.state.root(),
                    before,
                    "a refused entry changed the state"
                );
                Err(e)
            }
        }
    }

    fn submit(&mut self, signers: &[&str], payload: Value) -> Result<(), RuleError> {
        let bytes = self.bytes(payload);
        self.submit_bytes(signers, bytes, 0)
    }

    /// The association attests the current time (windows and validities end only on
    /// attested time).
    #[track_caller]
    fn attest(&mut self) {
        let at = self.time;
        self.ok(
            &["assoc"],
            json!({"kind": "time_attested", "at_micros": at}),
        );
    }

    #[track_caller]
    fn ok(&mut self, signers: &[&str], payload: Value) -> Vec<u8> {
        let bytes = self.bytes(payload);
        if let Err(e) = self.submit_bytes(signers, bytes.clone(), 0) {
            panic!(
                "refused ({}): {e}\n{}",
                e.code(),
                String::from_utf8_lossy(&bytes)
            );
        }
        if let Err(e) = check_invariants(&self.state) {
            panic!(
                "invariant broken after {}: {e}",
                String::from_utf8_lossy(&bytes)
            );
        }
        bytes
    }
}

fn claim(
    id: &str,
    student: &str,
    lessons: u64,
    price: u64,
    online: bool,
    accepted: &[&str],
) -> Value {
    json!({"kind": "claim_recorded", "claim": id, "student": student, "institution": "inst-0001",
           "lessons": lessons, "price_per_lesson_fen": price, "subject": "math", "grade": 5,
           "district": "xuhui", "evidence_digest": EVIDENCE, "accepts_online": online,
           "accepted_districts": accepted})
}

#[allow(clippy::too_many_arguments)]
fn pledge(
    id: &str,
    inst: &str,
    subject: &str,
    grades: (u64, u64),
    district: Option<&str>,
    seats: u64,
    per_seat: u64,
    v: u64,
    from: u64,
    until: u64,
) -> Value {
    let mut p = json!({"kind": "pledge_offered", "pledge": id, "institution": inst, "subject": subject,
        "grade_min": grades.0, "grade_max": grades.1, "seats": seats, "lessons_per_seat": per_seat,
        "value_per_lesson_fen": v, "valid_from_micros": from, "valid_until_micros": until});
    match district {
        Some(d) => p["district"] = json!(d),
        None => p["online"] = json!(true),
    }
    p
}

/// A `match_run` declaring `allocations`, dated at the start of the tests.
fn match_run(run: &str, allocations: u64) -> Value {
    json!({"kind": "match_run", "run": run, "allocations": allocations, "plans_digest": "ab".repeat(32),
           "params": {"at_micros": T0, "fairness": {"capped_first_pass": {"cap_fen": 200_000}}}})
}

fn register(w: &mut World, actor: &str, party: &str, role: &str) {
    let key = w.keys[actor].clone();
    w.ok(
        &["op", actor],
        json!({"kind": "party_registered", "party": party, "role": role, "key": key}),
    );
}

/// The test ledger's genesis: three districts, three subjects, the association
/// `assoc-01` declared (it co-signs the genesis).
fn genesis(w: &World) -> Value {
    json!({"kind": "genesis", "origin": ORIGIN, "operator": "operator",
        "operator_key": w.keys["op"], "confirmation_window_days": 15, "allocation_validity_days": 90,
        "unit": "CNY-fen", "districts": ["xuhui", "minhang", "pudong"], "subjects": ["math", "english", "piano"],
        "associations": [{"party": "assoc-01", "key": w.keys["assoc"]}]})
}

/// The shared starting point: parties, a closed institution with two claims, approved
/// pledges of every shape, and allocations and lessons in every state.
fn fixture() -> (World, Vec<u8>) {
    let mut w = World::new();
    let g = genesis(&w);
    w.ok(&["op", "assoc"], g);
    register(&mut w, "inst1", "inst-0001", "institution");
    register(&mut w, "inst7", "inst-0007", "institution");
    register(&mut w, "inst9", "inst-0009", "institution");
    register(&mut w, "inst666", "inst-0666", "institution");
    register(&mut w, "stu", "stu-3f9a", "student");
    register(&mut w, "stu2old", "stu-77b2", "student");
    let (old, new) = (w.keys["stu2old"].clone(), w.keys["stu2"].clone());
    w.ok(
        &["stu2old", "stu2"],
        json!({"kind": "key_rotated", "party": "stu-77b2", "old_key": old, "new_key": new}),
    );
    w.ok(&["op"], json!({"kind": "institution_closed", "institution": "inst-0001", "reason": "ceased_trading"}));
    for i in ["inst-0007", "inst-0666"] {
        w.ok(&["op"], json!({"kind": "institution_whitelisted", "institution": i, "reason": "approved_donor"}));
    }
    w.ok(
        &["op", "stu"],
        claim("c-0001", "stu-3f9a", 20, 15_000, true, &["minhang"]),
    );
    w.ok(
        &["op", "stu2"],
        claim("c-0002", "stu-77b2", 10, 9_000, false, &[]),
    );
    let year = T0 + 365 * DAY;
    w.ok(
        &["inst7"],
        pledge(
            "p-0001",
            "inst-0007",
            "math",
            (4, 6),
            Some("xuhui"),
            10,
            30,
            12_000,
            T0,
            year,
        ),
    );
    let approve_p1 = w.ok(
        &["op"],
        json!({"kind": "pledge_approved", "pledge": "p-0001"}),
    );
    let more = [
        (
            "p-0003",
            "inst-0007",
            "math",
            (4, 6),
            None,
            1,
            10,
            T0 + 300 * DAY,
            T0 + 400 * DAY,
        ),
        (
            "p-0004",
            "inst-0007",
            "english",
            (1, 12),
            None,
            1,
            10,
            T0,
            year,
        ),
        ("p-0005", "inst-0007", "math", (7, 9), None, 1, 10, T0, year),
        (
            "p-0006",
            "inst-0007",
            "math",
            (1, 12),
            Some("pudong"),
            1,
            10,
            T0,
            year,
        ),
        (
            "p-0007",
            "inst-0007",
            "math",
            (4, 6),
            Some("xuhui"),
            2,
            30,
            T0,
            year,
        ),
        (
            "p-0666",
            "inst-0666",
            "math",
            (1, 12),
            Some("xuhui"),
            1,
            10,
            T0,
            year,
        ),
    ];
    for (id, inst, subj, grades, district, seats, per_seat, from, until) in more {
        let signer = if inst == "inst-0666" {
            "inst666"
        } else {
            "inst7"
        };
        w.ok(
            &[signer],
            pledge(
                id, inst, subj, grades, district, seats, per_seat, 100, from, until,
            ),
        );
        w.ok(&["op"], json!({"kind": "pledge_approved", "pledge": id}));
    }
    w.ok(
        &["inst7"],
        json!({"kind": "pledge_withdrawn", "pledge": "p-0007", "lessons": 50}),
    );
    w.ok(
        &["inst9"],
        pledge(
            "p-0002",
            "inst-0009",
            "math",
            (1, 12),
            Some("xuhui"),
            1,
            10,
            100,
            T0,
            year,
        ),
    );
    w.ok(&["op"], json!({"kind": "institution_blacklisted", "institution": "inst-0666", "reason": "fund_outflow"}));
    let alloc = |a: &str, k: u64| json!({"kind": "allocation_made", "allocation": a, "claim": "c-0001", "pledge": "p-0001", "lessons": k});
    w.ok(&["op"], alloc("a-0001", 10));
    w.ok(
        &["stu", "inst7"],
        json!({"kind": "lesson_consumed", "lesson": "l-0001", "allocation": "a-0001"}),
    );
    for l in ["l-0002", "l-0003", "l-0004"] {
        w.ok(
            &["inst7"],
            json!({"kind": "lesson_proposed", "lesson": l, "allocation": "a-0001"}),
        );
    }
    w.ok(&["assoc"], json!({"kind": "lesson_disputed", "dispute": "d-0001", "lesson": "l-0003", "reason": "not_taught"}));
    w.ok(&["stu"], json!({"kind": "lesson_disputed", "dispute": "d-0002", "lesson": "l-0004", "reason": "not_taught"}));
    w.ok(&["op"], json!({"kind": "dispute_resolved", "dispute": "d-0002", "outcome": "rejected", "reason": "delivery_proven"}));
    w.ok(&["op"], alloc("a-0002", 1));
    w.ok(
        &["stu"],
        json!({"kind": "allocation_declined", "allocation": "a-0002"}),
    );
    // A recorded match run of one allocation (the rules count; `verify` re-runs it).
    w.ok(&["op"], match_run("run-0001", 1));
    let mut a3 = alloc("run-0001.0", 1);
    a3["run"] = json!("run-0001");
    w.ok(&["op"], a3);
    w.ok(
        &["stu", "inst7"],
        json!({"kind": "lesson_consumed", "lesson": "l-0031", "allocation": "run-0001.0"}),
    );
    (w, approve_p1)
}

#[test]
fn happy_path_through_every_kind() {
    let (mut w, _) = fixture();
    let c = queries::claim_balance(&w.state, "c-0001").unwrap().unwrap();
    // Allocated 12 lessons × 12,000 fen; 3 final (l-0001, l-0004, l-0031); 1 released.
    assert_eq!(
        (c.value, c.unreserved, c.reserved, c.consumed),
        (Fen(300_000), Fen(168_000), Fen(96_000), Fen(36_000))
    );

    w.ok(
        &["stu"],
        json!({"kind": "lesson_confirmed", "lesson": "l-0002"}),
    );
    // The family's choices, the same as the claim's own (issue 18; tests/preferences.rs).
    w.ok(
        &["stu"],
        json!({"kind": "claim_preferences_set", "claim": "c-0001", "subjects": ["math"],
               "accepts_online": true, "accepted_districts": ["minhang"], "requests": []}),
    );
    // Upheld: the lesson is void and its value returns to the (still active) allocation.
    w.ok(&["op"], json!({"kind": "dispute_resolved", "dispute": "d-0001", "outcome": "upheld", "reason": "delivery_not_proven"}));
    let a = queries::allocation_balance(&w.state, "a-0001")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            a.lessons.consumed(),
            a.lessons.pending(),
            a.lessons.remaining(),
            a.lessons.released()
        ),
        (Lessons(3), Lessons(0), Lessons(7), Lessons(0))
    );
    w.ok(
        &["inst7"],
        json!({"kind": "lesson_proposed", "lesson": "l-0005", "allocation": "a-0001"}),
    );
    w.time += 15 * DAY;
    w.attest();
    w.ok(
        &["op"],
        json!({"kind": "lesson_deemed_confirmed", "lesson": "l-0005"}),
    );
    w.time += 90 * DAY;
    w.attest();
    w.ok(
        &["op"],
        json!({"kind": "allocation_expired", "allocation": "a-0001"}),
    );
    w.ok(
        &["inst7"],
        json!({"kind": "pledge_withdrawn", "pledge": "p-0001", "lessons": 5}),
    );
    // A student who lost her key gets a new one from the operator and an association.
    let recovered = vkey("stu-3f9a", 77);
    w.keys.insert("stu_recovered", recovered.clone());
    w.ok(
        &["op", "assoc", "stu_recovered"],
        json!({"kind": "key_recovered", "party": "stu-3f9a", "new_key": recovered}),
    );
    // A run cut short and closed.
    w.ok(&["op"], match_run("run-0002", 2));
    w.ok(
        &["op"],
        json!({"kind": "match_run_closed", "run": "run-0002"}),
    );
    let assoc_key = w.keys["assoc"].clone();
    w.ok(
        &["op"],
        json!({"kind": "key_revoked", "party": "assoc-01", "key": assoc_key, "reason": "lost"}),
    );

    // Every kind was accepted at least once.
    let kinds: std::collections::BTreeSet<String> = w
        .accepted
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds.len(),
        lesson_ledger::ledger::payload::KINDS.len(),
        "{kinds:?}"
    );

    // Every object the kinds make survives the stored form (postcard in sled) unchanged.
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let mut stored = SledState::open(&db).unwrap();
    stored.stage(
        w.state
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    stored.commit(1).unwrap();
    drop(stored);
    let reopened = SledState::open(&db).unwrap();
    for (key, value) in w.state.iter() {
        assert_eq!(reopened.get(key).as_ref(), Some(value), "{key:?}");
    }
    assert_eq!(reopened.root(), w.state.root());

    let a = queries::allocation_balance(&w.state, "a-0001")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            a.lessons.consumed(),
            a.lessons.pending(),
            a.lessons.remaining(),
            a.lessons.released()
        ),
        (Lessons(4), Lessons(0), Lessons(0), Lessons(6))
    );
    let c = queries::claim_balance(&w.state, "c-0001").unwrap().unwrap();
    assert_eq!(
        (c.unreserved, c.reserved, c.consumed),
        (Fen(240_000), Fen(0), Fen(60_000))
    );
    assert!(c.entries.len() >= 10 && c.entries.windows(2).all(|p| p[0] < p[1]));
    let p = queries::pledge_balance(&w.state, "p-0001")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            p.capacity.total(),
            p.capacity.available(),
            p.capacity.reserved(),
            p.capacity.delivered(),
            p.capacity.withdrawn()
        ),
        (
            Lessons(300),
            Lessons(290),
            Lessons(0),
            Lessons(5),
            Lessons(5)
        )
    );
    let r = queries::institution_report(&w.state, "inst-0001")
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.students, r.claims, r.owed, r.made_good, r.outstanding),
        (2, 2, Fen(390_000), Fen(60_000), Fen(330_000))
    );
    let s = queries::student_summary(&w.state, "stu-3f9a")
        .unwrap()
        .unwrap();
    assert_eq!((s.claims.len(), s.consumed), (1, Fen(60_000)));
    let party = queries::party(&w.state, "assoc-01").unwrap().unwrap();
    assert!(
        party.keys[0].1.is_some(),
        "the association's key is revoked"
    );
    let pool = queries::pool_totals(&w.state).unwrap();
    assert_eq!(
        (pool.claims_consumed, pool.delivered),
        (Fen(60_000), Fen(60_000))
    );
    // A revoked key signs nothing after its revocation.
    let e = w.submit(&["assoc"], json!({"kind": "lesson_disputed", "dispute": "d-0009", "lesson": "l-0002", "reason": "not_taught"})).unwrap_err();
    assert_eq!(e.code(), "key_revoked");
    assert_eq!(
        queries::institution_report(&w.state, "inst-0007").unwrap(),
        None
    );

    // Replay from genesis gives the same state and digest.
    let mut replay = MemoryState::new();
    for (ctx, bytes) in &w.accepted {
        apply_entry(&mut replay, ctx, bytes).unwrap();
    }
    assert_eq!(replay, w.state);
    assert_eq!(replay.root(), StateMap::of(w.state.iter()).root());
}

/// One bad entry: what is wrong, who signs, the payload, the code expected.
struct Bad {
    what: &'static str,
    signers: &'static [&'static str],
    payload: Value,
    code: &'static str,
}

fn bad(
    what: &'static str,
    signers: &'static [&'static str],
    payload: Value,
    code: &'static str,
) -> Bad {
    Bad {
        what,
        signers,
        payload,
        code,
    }
}

#[test]
fn catalogue_of_bad_entries_each_refused_with_its_code() {
    let (mut w, approve_p1) = fixture();
    let keys = actors();
    let k = |n: &str| keys[n].clone();
    let alloc = |a: &str, c: &str, p: &str, n: u64| json!({"kind": "allocation_made", "allocation": a, "claim": c, "pledge": p, "lessons": n});
    let year = T0 + 365 * DAY;
    let c_bad = |field: &str, v: Value| {
        let mut c = claim("c-0100", "stu-3f9a", 5, 100, true, &[]);
        c[field] = v;
        c
    };
    let rows = vec![
        bad("not JSON", &["op"], json!("{"), "malformed_payload"),
        bad(
            "unknown kind",
            &["op"],
            json!({"kind": "lesson_eaten"}),
            "unknown_kind",
        ),
        bad(
            "unknown field",
            &["op"],
            json!({"kind": "pledge_approved", "pledge": "p-0002", "note": "x"}),
            "unknown_field",
        ),
        bad(
            "missing field",
            &["op"],
            json!({"kind": "pledge_approved"}),
            "missing_field",
        ),
        bad(
            "wrong type",
            &["op"],
            json!({"kind": "pledge_approved", "pledge": 7}),
            "malformed_payload",
        ),
        bad(
            "id with a capital and space",
            &["op", "stu"],
            c_bad("claim", json!("C 0100")),
            "invalid_id",
        ),
        bad(
            "student ref is a name",
            &["op", "stu"],
            c_bad("student", json!("张三")),
            "invalid_id",
        ),
        bad(
            "student ref is a mobile number",
            &["op", "stu"],
            c_bad("student", json!("13912345678")),
            "personal_data_suspected",
        ),
        bad(
            "reason is free text carrying an e-mail",
            &["op"],
            json!({"kind": "institution_closed", "institution": "inst-0009", "reason": "ask a.b@example.com"}),
            "malformed_payload",
        ),
        bad(
            "reason is a code of another kind",
            &["op"],
            json!({"kind": "institution_closed", "institution": "inst-0009", "reason": "approved_donor"}),
            "reason_not_allowed",
        ),
        bad(
            "evidence digest not hex",
            &["op"],
            json!({"kind": "institution_closed", "institution": "inst-0009", "reason": "ceased_trading", "evidence_digest": "x"}),
            "evidence_digest_invalid",
        ),
        bad(
            "too many accepted districts",
            &["op", "stu"],
            c_bad("accepted_districts", json!(vec!["xuhui"; 65])),
            "too_many_items",
        ),
        bad(
            "accepted district twice",
            &["op", "stu"],
            c_bad("accepted_districts", json!(["minhang", "minhang"])),
            "duplicate_item",
        ),
        bad(
            "registered key malformed",
            &["op"],
            json!({"kind": "party_registered", "party": "inst-0100", "role": "institution", "key": "inst-0100+zz+AA"}),
            "key_invalid",
        ),
        bad(
            "zero lessons",
            &["op", "stu"],
            c_bad("lessons", json!(0)),
            "lessons_out_of_range",
        ),
        bad(
            "1001 lessons",
            &["op", "stu"],
            c_bad("lessons", json!(1001)),
            "lessons_out_of_range",
        ),
        bad(
            "price zero",
            &["op", "stu"],
            c_bad("price_per_lesson_fen", json!(0)),
            "price_out_of_range",
        ),
        bad(
            "grade 13",
            &["op", "stu"],
            c_bad("grade", json!(13)),
            "grade_out_of_range",
        ),
        bad(
            "evidence not hex",
            &["op", "stu"],
            c_bad("evidence_digest", json!("xyz")),
            "evidence_digest_invalid",
        ),
        bad(
            "subject not at genesis",
            &["op", "stu"],
            c_bad("subject", json!("chess")),
            "unknown_subject",
        ),
        bad(
            "district not at genesis",
            &["op", "stu"],
            c_bad("district", json!("haidian")),
            "unknown_district",
        ),
        bad(
            "claim signed by the operator only",
            &["op"],
            c_bad("claim", json!("c-0100")),
            "missing_signature",
        ),
        bad(
            "claim co-signed by another student",
            &["op", "stu2"],
            c_bad("claim", json!("c-0100")),
            "not_authorized",
        ),
        bad(
            "claim id taken",
            &["op", "stu"],
            c_bad("claim", json!("c-0001")),
            "claim_exists",
        ),
        bad(
            "claim for a donor as student",
            &["op", "inst7"],
            c_bad("student", json!("inst-0007")),
            "wrong_role",
        ),
        bad(
            "claim against an open institution",
            &["op", "stu"],
            c_bad("institution", json!("inst-0007")),
            "institution_not_closed",
        ),
        bad(
            "genesis again",
            &["op"],
            json!({"kind": "genesis", "origin": "o", "operator": "operator", "operator_key": k("op"), "allocation_validity_days": 90, "unit": "CNY-fen", "districts": ["xuhui"], "subjects": ["math"], "associations": []}),
            "genesis_repeated",
        ),
        bad(
            "nine signers",
            &[
                "op", "inst1", "inst7", "inst9", "inst666", "stu", "stu2", "assoc", "stranger",
            ],
            json!({"kind": "pledge_approved", "pledge": "p-0002"}),
            "too_many_signers",
        ),
        bad(
            "signer twice",
            &["op", "op"],
            json!({"kind": "institution_whitelisted", "institution": "inst-0009", "reason": "approved_donor"}),
            "duplicate_signer",
        ),
        bad(
            "unregistered co-signer",
            &["op", "stranger"],
            json!({"kind": "institution_whitelisted", "institution": "inst-0009", "reason": "approved_donor"}),
            "signer_not_registered",
        ),
        bad(
            "rotated-out key signs",
            &["stu2old"],
            json!({"kind": "allocation_declined", "allocation": "a-0001"}),
            "key_revoked",
        ),
        bad(
            "student co-signs a closure",
            &["op", "stu"],
            json!({"kind": "institution_closed", "institution": "inst-0009", "reason": "ceased_trading"}),
            "unexpected_signer",
        ),
        bad(
            "donor makes an allocation",
            &["inst7"],
            alloc("a-0100", "c-0001", "p-0001", 1),
            "not_authorized",
        ),
        bad(
            "party registered twice",
            &["op", "stu_dup"],
            json!({"kind": "party_registered", "party": "stu-3f9a", "role": "student", "key": k("stu_dup")}),
            "party_exists",
        ),
        bad(
            "new party with a key named for another party",
            &["op", "stu"],
            json!({"kind": "party_registered", "party": "stu-0100", "role": "student", "key": k("stu")}),
            "key_name_mismatch",
        ),
        bad(
            "new party without its own signature",
            &["op"],
            json!({"kind": "party_registered", "party": "stu-0100", "role": "student", "key": k("stu0100")}),
            "missing_signature",
        ),
        bad(
            "revoke a key of an unknown party",
            &["op"],
            json!({"kind": "key_revoked", "party": "nobody", "key": k("stu"), "reason": "lost"}),
            "party_unknown",
        ),
        bad(
            "revoke another party's key",
            &["op"],
            json!({"kind": "key_revoked", "party": "stu-3f9a", "key": k("inst7"), "reason": "lost"}),
            "key_not_of_party",
        ),
        bad(
            "revoke a key already rotated out",
            &["op"],
            json!({"kind": "key_revoked", "party": "stu-77b2", "key": k("stu2old"), "reason": "lost"}),
            "key_revoked",
        ),
        bad(
            "close an unknown institution",
            &["op"],
            json!({"kind": "institution_closed", "institution": "inst-9999", "reason": "ceased_trading"}),
            "institution_unknown",
        ),
        bad(
            "close a student",
            &["op"],
            json!({"kind": "institution_closed", "institution": "stu-3f9a", "reason": "ceased_trading"}),
            "wrong_role",
        ),
        bad(
            "close twice",
            &["op"],
            json!({"kind": "institution_closed", "institution": "inst-0001", "reason": "ceased_trading"}),
            "institution_status_repeated",
        ),
        bad(
            "white-list a banned institution",
            &["op"],
            json!({"kind": "institution_whitelisted", "institution": "inst-0666", "reason": "approved_donor"}),
            "institution_banned",
        ),
        bad(
            "closed institution pledges",
            &["inst1"],
            pledge(
                "p-0100",
                "inst-0001",
                "math",
                (1, 12),
                Some("xuhui"),
                1,
                10,
                100,
                T0,
                year,
            ),
            "institution_closed",
        ),
        bad(
            "banned institution pledges",
            &["inst666"],
            pledge(
                "p-0100",
                "inst-0666",
                "math",
                (1, 12),
                Some("xuhui"),
                1,
                10,
                100,
                T0,
                year,
            ),
            "institution_banned",
        ),
        bad(
            "pledge offered for another institution",
            &["inst7"],
            pledge(
                "p-0100",
                "inst-0009",
                "math",
                (1, 12),
                Some("xuhui"),
                1,
                10,
                100,
                T0,
                year,
            ),
            "not_authorized",
        ),
        bad(
            "pledge id taken",
            &["inst7"],
            pledge(
                "p-0001",
                "inst-0007",
                "math",
                (1, 12),
                Some("xuhui"),
                1,
                10,
                100,
                T0,
                year,
            ),
            "pledge_exists",
        ),
        bad(
            "grade band inverted",
            &["inst7"],
            pledge(
                "p-0100",
                "inst-0007",
                "math",
                (6, 4),
                Some("xuhui"),
                1,
                10,
                100,
                T0,
                year,
            ),
            "grade_band_invalid",
        ),
        bad(
            "validity already over",
            &["inst7"],
            pledge(
                "p-0100",
                "inst-0007",
                "math",
                (1, 12),
                Some("xuhui"),
                1,
                10,
                100,
                T0 - DAY,
                T0,
            ),
            "validity_window_invalid",
        ),
        bad(
            "zero seats",
            &["inst7"],
            pledge(
                "p-0100",
                "inst-0007",
                "math",
                (1, 12),
                Some("xuhui"),
                0,
                10,
                100,
                T0,
                year,
            ),
            "value_out_of_range",
        ),
        bad(
            "district and online both",
            &["inst7"],
            {
                let mut p = pledge(
                    "p-0100",
                    "inst-0007",
                    "math",
                    (1, 12),
                    Some("xuhui"),
                    1,
                    10,
                    100,
                    T0,
                    year,
                );
                p["online"] = json!(true);
                p
            },
            "location_invalid",
        ),
        bad(
            "approve an unknown pledge",
            &["op"],
            json!({"kind": "pledge_approved", "pledge": "p-9999"}),
            "pledge_unknown",
        ),
        bad(
            "approve twice",
            &["op"],
            json!({"kind": "pledge_approved", "pledge": "p-0001"}),
            "pledge_already_approved",
        ),
        bad(
            "approve for a donor not white-listed",
            &["op"],
            json!({"kind": "pledge_approved", "pledge": "p-0002"}),
            "institution_not_whitelisted",
        ),
        bad(
            "withdraw reserved capacity",
            &["inst7"],
            json!({"kind": "pledge_withdrawn", "pledge": "p-0007", "lessons": 11}),
            "withdraw_exceeds_available",
        ),
        bad(
            "withdraw zero",
            &["inst7"],
            json!({"kind": "pledge_withdrawn", "pledge": "p-0007", "lessons": 0}),
            "lessons_out_of_range",
        ),
        bad(
            "match run signed by an institution",
            &["inst7"],
            match_run("run-0100", 1),
            "not_authorized",
        ),
        bad(
            "match run id taken",
            &["op"],
            match_run("run-0001", 1),
            "match_run_exists",
        ),
        bad(
            "match run id with a capital",
            &["op"],
            match_run("Run-0100", 1),
            "invalid_id",
        ),
        bad(
            "match run declaring more allocations than the cap",
            &["op"],
            match_run("run-0100", 16_000_001),
            "match_run_too_large",
        ),
        bad(
            "match run with a digest that is not hex",
            &["op"],
            {
                let mut r = match_run("run-0100", 1);
                r["plans_digest"] = json!("XY".repeat(32));
                r
            },
            "plans_digest_invalid",
        ),
        bad(
            "match run with a first-pass cap of zero",
            &["op"],
            {
                let mut r = match_run("run-0100", 1);
                r["params"]["fairness"]["capped_first_pass"]["cap_fen"] = json!(0);
                r
            },
            "match_params_invalid",
        ),
        bad(
            "match run dated after its own entry",
            &["op"],
            {
                let mut r = match_run("run-0100", 1);
                r["params"]["at_micros"] = json!(T0 + 1_000 * DAY);
                r
            },
            "match_run_in_future",
        ),
        bad(
            "match run with an unknown parameter",
            &["op"],
            {
                let mut r = match_run("run-0100", 1);
                r["params"]["seed"] = json!(7);
                r
            },
            "malformed_payload",
        ),
        bad(
            "allocation naming an unrecorded run",
            &["op"],
            {
                let mut a = alloc("a-0100", "c-0001", "p-0001", 1);
                a["run"] = json!("run-9999");
                a
            },
            "match_run_unknown",
        ),
        bad(
            "allocation beyond its run's declared count",
            &["op"],
            {
                let mut a = alloc("a-0100", "c-0001", "p-0001", 1);
                a["run"] = json!("run-0001");
                a
            },
            "match_run_full",
        ),
        bad(
            "allocation id taken",
            &["op"],
            alloc("a-0001", "c-0001", "p-0001", 1),
            "allocation_exists",
        ),
        bad(
            "allocate an unknown claim",
            &["op"],
            alloc("a-0100", "c-9999", "p-0001", 1),
            "claim_unknown",
        ),
        bad(
            "allocate an unapproved pledge",
            &["op"],
            alloc("a-0100", "c-0001", "p-0002", 1),
            "pledge_not_approved",
        ),
        bad(
            "allocate a banned donor's pledge",
            &["op"],
            alloc("a-0100", "c-0001", "p-0666", 1),
            "institution_banned",
        ),
        bad(
            "allocate before the pledge is valid",
            &["op"],
            alloc("a-0100", "c-0001", "p-0003", 1),
            "pledge_not_valid_at_time",
        ),
        bad(
            "allocate another subject",
            &["op"],
            alloc("a-0100", "c-0001", "p-0004", 1),
            "incompatible_subject",
        ),
        bad(
            "allocate another grade band",
            &["op"],
            alloc("a-0100", "c-0001", "p-0005", 1),
            "incompatible_grade",
        ),
        bad(
            "allocate a district not accepted",
            &["op"],
            alloc("a-0100", "c-0001", "p-0006", 1),
            "incompatible_location",
        ),
        bad(
            "allocate more than one seat",
            &["op"],
            alloc("a-0100", "c-0001", "p-0001", 31),
            "allocation_exceeds_seat",
        ),
        bad(
            "allocate more than available",
            &["op"],
            alloc("a-0100", "c-0001", "p-0007", 11),
            "insufficient_capacity",
        ),
        bad(
            "allocate more than the claim's value",
            &["op"],
            alloc("a-0100", "c-0001", "p-0001", 15),
            "insufficient_claim_value",
        ),
        bad(
            "expire an unknown allocation",
            &["op"],
            json!({"kind": "allocation_expired", "allocation": "a-9999"}),
            "allocation_unknown",
        ),
        bad(
            "expire before expiry",
            &["op"],
            json!({"kind": "allocation_expired", "allocation": "a-0001"}),
            "allocation_not_expired",
        ),
        bad(
            "decline twice",
            &["stu"],
            json!({"kind": "allocation_declined", "allocation": "a-0002"}),
            "allocation_not_active",
        ),
        bad(
            "decline for another student",
            &["stu2"],
            json!({"kind": "allocation_declined", "allocation": "a-0001"}),
            "not_authorized",
        ),
        bad(
            "propose on a declined allocation",
            &["inst7"],
            json!({"kind": "lesson_proposed", "lesson": "l-0100", "allocation": "a-0002"}),
            "allocation_not_active",
        ),
        bad(
            "consume beyond k",
            &["stu", "inst7"],
            json!({"kind": "lesson_consumed", "lesson": "l-0100", "allocation": "run-0001.0"}),
            "allocation_exhausted",
        ),
        bad(
            "consume without the donor",
            &["stu"],
            json!({"kind": "lesson_consumed", "lesson": "l-0100", "allocation": "a-0001"}),
            "missing_signature",
        ),
        bad(
            "lesson id consumed twice",
            &["stu", "inst7"],
            json!({"kind": "lesson_consumed", "lesson": "l-0001", "allocation": "a-0001"}),
            "lesson_exists",
        ),
        bad(
            "confirm an unknown lesson",
            &["stu"],
            json!({"kind": "lesson_confirmed", "lesson": "l-9999"}),
            "lesson_unknown",
        ),
        bad(
            "confirm a final lesson",
            &["stu"],
            json!({"kind": "lesson_confirmed", "lesson": "l-0001"}),
            "lesson_not_pending",
        ),
        bad(
            "confirm a disputed lesson",
            &["stu"],
            json!({"kind": "lesson_confirmed", "lesson": "l-0003"}),
            "lesson_not_pending",
        ),
        bad(
            "deem before the window",
            &["op"],
            json!({"kind": "lesson_deemed_confirmed", "lesson": "l-0002"}),
            "window_not_elapsed",
        ),
        bad(
            "dispute id taken",
            &["stu"],
            json!({"kind": "lesson_disputed", "dispute": "d-0001", "lesson": "l-0002", "reason": "not_taught"}),
            "dispute_exists",
        ),
        bad(
            "donor disputes",
            &["inst7"],
            json!({"kind": "lesson_disputed", "dispute": "d-0100", "lesson": "l-0002", "reason": "not_taught"}),
            "not_authorized",
        ),
        bad(
            "resolve an unknown dispute",
            &["op"],
            json!({"kind": "dispute_resolved", "dispute": "d-9999", "outcome": "upheld", "reason": "delivery_not_proven"}),
            "dispute_unknown",
        ),
        bad(
            "resolve twice",
            &["op"],
            json!({"kind": "dispute_resolved", "dispute": "d-0002", "outcome": "upheld", "reason": "delivery_not_proven"}),
            "dispute_not_open",
        ),
        bad(
            "unknown outcome",
            &["op"],
            json!({"kind": "dispute_resolved", "dispute": "d-0001", "outcome": "maybe", "reason": "delivery_proven"}),
            "malformed_payload",
        ),
    ];
    let mut codes = std::collections::BTreeSet::new();
    for row in rows {
        let before = w.state.root();
        let bytes = match &row.payload {
            Value::String(s) => s.clone().into_bytes(),
            p => w.bytes(p.clone()),
        };
        let got = w.submit_bytes(row.signers, bytes, 0).map_err(|e| e.code());
        assert_eq!(got, Err(row.code), "{}", row.what);
        assert_eq!(w.state.root(), before, "{}", row.what);
        codes.insert(row.code);
    }
    // Refusals that need another time or another ledger. The window is over once the
    // association has attested a time past it.
    let at = w.time + 16 * DAY;
    let attest = w.bytes(json!({"kind": "time_attested", "at_micros": at}));
    w.submit_bytes(&["assoc"], attest, 16 * DAY).unwrap();
    let timed = [
        (
            0,
            &["stu"][..],
            json!({"kind": "lesson_disputed", "dispute": "d-0100", "lesson": "l-0002", "reason": "not_taught"}),
            "window_elapsed",
        ),
        (
            91 * DAY,
            &["inst7"][..],
            json!({"kind": "lesson_proposed", "lesson": "l-0100", "allocation": "a-0001"}),
            "allocation_past_expiry",
        ),
    ];
    for (advance, signers, payload, code) in timed {
        let bytes = w.bytes(payload);
        assert_eq!(
            w.submit_bytes(signers, bytes, advance)
                .map_err(|e| e.code()),
            Err(code)
        );
        codes.insert(code);
    }
    assert_eq!(
        w.submit_bytes(&["op"], approve_p1.clone(), 0)
            .map_err(|e| e.code()),
        Err("duplicate_entry")
    );
    let mut reused: Value = serde_json::from_slice(&approve_p1).unwrap();
    reused["pledge"] = json!("p-0002");
    let e = w
        .submit_bytes(&["op"], serde_json::to_vec(&reused).unwrap(), 0)
        .unwrap_err();
    assert_eq!(e.code(), "id_reused");
    let big = format!(
        r#"{{"kind":"pledge_approved","id":"e-x","pledge":"{}"}}"#,
        "p".repeat(17_000)
    );
    assert_eq!(
        w.submit_bytes(&["op"], big.into_bytes(), 0)
            .map_err(|e| e.code()),
        Err("payload_too_large")
    );
    let dup =
        br#"{"kind":"pledge_approved","id":"e-y","pledge":"p-0002","pledge":"p-0002"}"#.to_vec();
    assert_eq!(
        w.submit_bytes(&["op"], dup, 0).map_err(|e| e.code()),
        Err("duplicate_field")
    );
    codes.extend([
        "duplicate_entry",
        "id_reused",
        "payload_too_large",
        "duplicate_field",
    ]);

    let mut empty = World::new();
    let genesis = |unit: &str, window: u64| json!({"kind": "genesis", "origin": ORIGIN, "operator": "operator", "operator_key": k("op"), "confirmation_window_days": window, "allocation_validity_days": 90, "unit": unit, "districts": ["xuhui"], "subjects": ["math"], "associations": [{"party": "assoc-01", "key": k("assoc")}]});
    assert_eq!(
        empty
            .submit(&["op"], json!({"kind": "pledge_approved", "pledge": "p-1"}))
            .map_err(|e| e.code()),
        Err("genesis_required")
    );
    assert_eq!(
        empty
            .submit(&["op", "assoc"], genesis("USD-cent", 15))
            .map_err(|e| e.code()),
        Err("unit_unsupported")
    );
    assert_eq!(
        empty
            .submit(&["op", "assoc"], genesis("CNY-fen", 0))
            .map_err(|e| e.code()),
        Err("value_out_of_range")
    );
    assert_eq!(
        empty
            .submit(&["stranger"], genesis("CNY-fen", 15))
            .map_err(|e| e.code()),
        Err("missing_signature")
    );
    let bytes = empty.bytes(genesis("CNY-fen", 15));
    let ctx = EntryContext {
        index: 3,
        time_micros: T0,
        signers: vec![k("op"), k("assoc")],
    };
    assert_eq!(
        apply_entry(&mut empty.state, &ctx, &bytes).map_err(|e| e.code()),
        Err("genesis_not_first")
    );
    assert!(empty.state.is_empty());
    codes.extend(["genesis_required", "unit_unsupported", "genesis_not_first"]);
    assert!(
        codes.len() >= 60,
        "{} distinct codes: {codes:?}",
        codes.len()
    );
}

#[test]
fn a_banned_donor_delivers_nothing_and_its_allocations_end_at_once() {
    let (mut w, _) = fixture();
    w.ok(&["op"], json!({"kind": "institution_blacklisted", "institution": "inst-0007", "reason": "fund_outflow"}));
    let e = w
        .submit(
            &["stu", "inst7"],
            json!({"kind": "lesson_consumed", "lesson": "l-0100", "allocation": "a-0001"}),
        )
        .unwrap_err();
    assert_eq!(e.code(), "institution_banned");
    // A lesson proposed before the ban may still be confirmed: it was taught before it.
    w.ok(
        &["stu"],
        json!({"kind": "lesson_confirmed", "lesson": "l-0002"}),
    );
    // Its open allocation can be expired at once, releasing what is left.
    w.ok(
        &["op"],
        json!({"kind": "allocation_expired", "allocation": "a-0001"}),
    );
    let a = queries::allocation_balance(&w.state, "a-0001")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            a.lessons.consumed(),
            a.lessons.pending(),
            a.lessons.remaining(),
            a.lessons.released()
        ),
        (Lessons(3), Lessons(1), Lessons(0), Lessons(6))
    );
    // The disputed lesson, upheld after the allocation ended, returns to claim and pledge.
    w.ok(&["op"], json!({"kind": "dispute_resolved", "dispute": "d-0001", "outcome": "upheld", "reason": "delivery_not_proven"}));
    let a = queries::allocation_balance(&w.state, "a-0001")
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.lessons.pending(), a.lessons.released()),
        (Lessons(0), Lessons(7))
    );
}

#[test]
fn a_student_holds_a_bounded_number_of_claims() {
    let (mut w, _) = fixture();
    let max = lesson_ledger::ledger::limits::CLAIMS_PER_STUDENT_MAX;
    for i in 1..max {
        w.ok(
            &["op", "stu"],
            claim(&format!("c-1{i:03}"), "stu-3f9a", 1, 100, false, &[]),
        );
    }
    let e = w
        .submit(
            &["op", "stu"],
            claim("c-2000", "stu-3f9a", 1, 100, false, &[]),
        )
        .unwrap_err();
    assert_eq!(e.code(), "student_claims_full");
    let r = queries::institution_report(&w.state, "inst-0001")
        .unwrap()
        .unwrap();
    assert_eq!((r.students, r.claims as usize), (2, max + 1));
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    /// Interpret one random step as an entry: mostly plausible, sometimes wrong.
    fn step(w: &mut World, (op, a, b, flag): (u8, u16, u16, bool)) {
        let alloc_id = format!("a-p{}", a % 3);
        let lesson_id = format!("l-p{}", b % 24);
        let who = |w: &World, field: &str| -> &'static str {
            let party = queries::allocation_balance(&w.state, &alloc_id)
                .ok()
                .flatten()
                .map(|al| match field {
                    "student" => al.student.to_string(),
                    _ => al.institution.to_string(),
                });
            match party.as_deref() {
                Some("stu-77b2") => "stu2",
                Some("inst-0666") => "inst666",
                Some(s) if s.starts_with("stu") => "stu",
                _ if field == "student" => "stu",
                _ => "inst7",
            }
        };
        let lesson_alloc = |w: &World| {
            lesson_ledger::ledger::get_object::<lesson_ledger::ledger::objects::Lesson, _>(
                &w.state, &lesson_id,
            )
            .ok()
            .flatten()
            .map(|l| l.allocation.to_string())
        };
        let (signers, payload): (Vec<&'static str>, Value) = match op % 12 {
            0 | 1 => {
                let claims = ["c-0001", "c-0002"];
                let pledges = ["p-0001", "p-0007", "p-0001", "p-0666"];
                (
                    vec!["op"],
                    json!({"kind": "allocation_made", "allocation": alloc_id, "claim": claims[usize::from(b % 2)],
                    "pledge": pledges[usize::from(b / 2 % 4)], "lessons": 1 + b % 6}),
                )
            }
            2 => (
                vec![who(w, "student"), who(w, "institution")],
                json!({"kind": "lesson_consumed", "lesson": lesson_id, "allocation": alloc_id}),
            ),
            3 | 4 => (
                vec![who(w, "institution")],
                json!({"kind": "lesson_proposed", "lesson": lesson_id, "allocation": alloc_id}),
            ),
            5 => {
                let student = if lesson_alloc(w).is_some_and(|x| x.ends_with('1') && flag) {
                    "stu2"
                } else {
                    "stu"
                };
                (
                    vec![student],
                    json!({"kind": "lesson_confirmed", "lesson": lesson_id}),
                )
            }
            6 => (
                vec![if flag { "assoc" } else { "stu" }],
                json!({"kind": "lesson_disputed", "dispute": format!("d-p{}", b % 24), "lesson": lesson_id, "reason": "not_taught"}),
            ),
            7 => (
                vec!["op"],
                json!({"kind": "lesson_deemed_confirmed", "lesson": lesson_id}),
            ),
            8 => (
                vec!["op"],
                json!({"kind": "dispute_resolved", "dispute": format!("d-p{}", b % 24), "outcome": if flag { "upheld" } else { "rejected" },
                    "reason": if flag { "delivery_not_proven" } else { "delivery_proven" }}),
            ),
            9 => {
                if flag {
                    (
                        vec![who(w, "student")],
                        json!({"kind": "allocation_declined", "allocation": alloc_id}),
                    )
                } else {
                    (
                        vec!["op"],
                        json!({"kind": "allocation_expired", "allocation": alloc_id}),
                    )
                }
            }
            10 => (
                vec!["inst7"],
                json!({"kind": "pledge_withdrawn", "pledge": if flag { "p-0001" } else { "p-0007" }, "lessons": 1 + b % 20}),
            ),
            _ => {
                w.time += u64::from(a % 40) * DAY / 2;
                // The association attests the new time (refused once its key is gone).
                let at = w.time;
                let _ = w.submit(
                    &["assoc"],
                    json!({"kind": "time_attested", "at_micros": at}),
                );
                return;
            }
        };
        let before = w.state.root();
        if w.submit(&signers, payload).is_ok() {
            if let Err(e) = check_invariants(&w.state) {
                panic!("invariant broken: {e}");
            }
        } else {
            assert_eq!(w.state.root(), before);
        }
    }

    proptest! {
        #![proptest_config(Config { cases: 128, rng_seed: RngSeed::Fixed(0x1e55_0005), failure_persistence: None, ..Config::default() })]
        #[test]
        fn random_sequences_keep_every_invariant_and_replay_exactly(
            steps in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>(), any::<bool>()), 1..120)
        ) {
            let (mut w, _) = fixture();
            for s in steps {
                step(&mut w, s);
            }
            // The running digest equals the digest recomputed from scratch.
            prop_assert_eq!(w.state.root(), StateMap::of(w.state.iter()).root());
            let mut replay = MemoryState::new();
            for (ctx, bytes) in &w.accepted {
                prop_assert!(apply_entry(&mut replay, ctx, bytes).is_ok());
            }
            prop_assert_eq!(replay.root(), w.state.root());
            prop_assert_eq!(queries::pool_totals(&replay).unwrap(), queries::pool_totals(&w.state).unwrap());
            prop_assert!(replay == w.state);
        }
    }
}

#[test]
fn every_schema_example_parses_and_validates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut seen = 0;
    for (kind, _) in lesson_ledger::ledger::payload::KINDS {
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(format!("entries/{kind}.schema.json"))).unwrap(),
        )
        .unwrap();
        let example_text =
            std::fs::read_to_string(root.join(format!("examples/entries/{kind}.json"))).unwrap();
        let example: Value = serde_json::from_str(&example_text).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(
            validator.is_valid(&example),
            "{kind}: example does not validate"
        );
        let entry = parse(example_text.as_bytes()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(entry.kind(), *kind);
        // The schema is closed: an extra field fails it, as it fails the parser.
        let mut extra = example.clone();
        extra["extra"] = json!(1);
        assert!(
            !validator.is_valid(&extra),
            "{kind}: schema accepts an unknown field"
        );
        assert_eq!(
            parse(&serde_json::to_vec(&extra).unwrap())
                .unwrap_err()
                .code(),
            "unknown_field"
        );
        seen += 1;
    }
    assert_eq!(seen, lesson_ledger::ledger::payload::KINDS.len());
}

/// A genesis may declare a shorter day (publicly), so that a demonstration or test
/// ledger sees windows and validities pass within a run; a real ledger keeps 24 hours.
#[test]
fn a_genesis_day_of_one_second_makes_the_confirmation_window_fifteen_seconds() {
    let genesis = |w: &World, day: u64| {
        json!({"kind": "genesis", "origin": ORIGIN, "operator": "operator",
            "operator_key": w.keys["op"].clone(), "confirmation_window_days": 15, "allocation_validity_days": 90,
            "day_micros": day, "unit": "CNY-fen", "districts": ["xuhui"], "subjects": ["math"],
            "associations": [{"party": "assoc-01", "key": w.keys["assoc"]}]})
    };
    let mut w = World::new();
    for too_short in [0, 999_999] {
        let g = genesis(&w, too_short);
        assert_eq!(
            w.submit(&["op", "assoc"], g).unwrap_err().code(),
            "value_out_of_range"
        );
    }
    let g = genesis(&w, 86_400 * SEC + 1);
    assert_eq!(
        w.submit(&["op", "assoc"], g).unwrap_err().code(),
        "value_out_of_range"
    );
    let g = genesis(&w, SEC);
    w.ok(&["op", "assoc"], g);
    register(&mut w, "inst1", "inst-0001", "institution");
    register(&mut w, "inst7", "inst-0007", "institution");
    register(&mut w, "stu", "stu-3f9a", "student");
    w.ok(&["op"], json!({"kind": "institution_closed", "institution": "inst-0001", "reason": "ceased_trading"}));
    w.ok(&["op"], json!({"kind": "institution_whitelisted", "institution": "inst-0007", "reason": "approved_donor"}));
    w.ok(
        &["op", "stu"],
        claim("c-0001", "stu-3f9a", 20, 15_000, true, &["xuhui"]),
    );
    w.ok(
        &["inst7"],
        pledge(
            "p-0001",
            "inst-0007",
            "math",
            (4, 6),
            Some("xuhui"),
            10,
            30,
            12_000,
            T0,
            T0 + 365 * DAY,
        ),
    );
    w.ok(
        &["op"],
        json!({"kind": "pledge_approved", "pledge": "p-0001"}),
    );
    w.ok(&["op"], json!({"kind": "allocation_made", "allocation": "a-0001", "claim": "c-0001", "pledge": "p-0001", "lessons": 5}));
    w.ok(
        &["inst7"],
        json!({"kind": "lesson_proposed", "lesson": "l-0001", "allocation": "a-0001"}),
    );
    let proposed_at = w.time - SEC;
    let deem = json!({"kind": "lesson_deemed_confirmed", "lesson": "l-0001"});
    w.time = proposed_at + 14 * SEC;
    assert_eq!(
        w.submit(&["op"], deem.clone()).unwrap_err().code(),
        "window_not_elapsed"
    );
    w.time = proposed_at + 15 * SEC;
    w.attest();
    w.ok(&["op"], deem);
    let a = queries::allocation_balance(&w.state, "a-0001")
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.lessons.consumed(), a.lessons.pending()),
        (Lessons(1), Lessons(0))
    );
    // The allocation expires after 90 such days.
    w.time = proposed_at + 91 * SEC;
    w.attest();
    w.ok(
        &["op"],
        json!({"kind": "allocation_expired", "allocation": "a-0001"}),
    );
}

mod hardening;
