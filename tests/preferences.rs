//! Families choose what they redeem (issue 18): `claim_preferences_set`, signed by the
//! claim's student alone, refused with its own code for each bad input (changing
//! nothing); `allocation_made` and the matcher honouring the choices; requests served
//! first, ranked subjects winning ties; plans the rules accept; the audit's exact re-run.

use std::collections::BTreeMap;

use lesson_ledger::ledger::invariants::check_invariants;
use lesson_ledger::ledger::objects::{Claim, ClaimPreferences};
use lesson_ledger::ledger::{apply_entry, get_object, EntryContext, Id, MemoryState, RuleError};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::match_runs::populated;
use crate::support::{party_signer, vkey};

mod matching;

const T0: u64 = 1_700_000_000_000_000;
const SEC: u64 = 1_000_000;
const DAY: u64 = 86_400 * SEC;
const ORIGIN: &str = "ledger.example/sh-2021";
const EVIDENCE: &str = "4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f";

/// A ledger in memory driven entry by entry through the real rules, with real keys.
struct World {
    state: MemoryState,
    time: u64,
    index: u64,
    next_id: u64,
    keys: BTreeMap<String, String>,
}

impl World {
    fn new() -> World {
        let keys = [
            ("op", vkey("operator", 1)),
            ("assoc", vkey("assoc-01", 9)),
            ("inst1", vkey("inst-0001", 2)),
            ("inst7", vkey("inst-0007", 3)),
            ("inst666", vkey("inst-0666", 5)),
            ("stu", vkey("stu-3f9a", 6)),
            ("stu2", vkey("stu-77b2", 8)),
            ("stu3", vkey("stu-0c11", 12)),
        ]
        .into_iter()
        .map(|(a, k)| (a.to_owned(), k))
        .collect();
        World {
            state: MemoryState::new(),
            time: T0,
            index: 0,
            next_id: 0,
            keys,
        }
    }

    /// Submit `payload` signed by `signers`; a refusal must leave the state as it was.
    fn submit(&mut self, signers: &[&str], mut payload: Value) -> Result<(), RuleError> {
        payload["ledger"] = json!(ORIGIN);
        if payload.get("id").is_none() {
            self.next_id += 1;
            payload["id"] = json!(format!("e-{:04}", self.next_id));
        }
        let ctx = EntryContext {
            index: self.index,
            time_micros: self.time,
            signers: signers.iter().map(|s| self.keys[*s].clone()).collect(),
        };
        let before = self.state.digest();
        let result = apply_entry(
            &mut self.state,
            &ctx,
            &serde_json::to_vec(&payload).unwrap(),
        );
        match &result {
            Ok(()) => {
                self.index += 1;
                self.time += SEC;
                check_invariants(&self.state).unwrap();
            }
            Err(_) => assert_eq!(self.state.digest(), before, "a refusal changed the state"),
        }
        result
    }

    #[track_caller]
    fn ok(&mut self, signers: &[&str], payload: Value) {
        if let Err(e) = self.submit(signers, payload.clone()) {
            panic!("refused ({}): {e}\n{payload}", e.code());
        }
    }

    #[track_caller]
    fn refused(&mut self, signers: &[&str], payload: Value) -> &'static str {
        match self.submit(signers, payload.clone()) {
            Ok(()) => panic!("accepted: {payload}"),
            Err(e) => e.code(),
        }
    }

    fn claim(&self, id: &str) -> Claim {
        get_object(&self.state, id).unwrap().unwrap()
    }
}

fn pledge(id: &str, inst: &str, subject: &str, grades: (u64, u64), place: Value, v: u64) -> Value {
    let mut p = json!({"kind": "pledge_offered", "pledge": id, "institution": inst,
        "subject": subject, "grade_min": grades.0, "grade_max": grades.1, "seats": 2,
        "lessons_per_seat": 10, "value_per_lesson_fen": v, "valid_from_micros": T0,
        "valid_until_micros": T0 + 365 * DAY});
    for (k, x) in place.as_object().unwrap() {
        p[k] = x.clone();
    }
    p
}

/// Parties, a closed institution with three claims (maths, grade 5, in xuhui), and
/// pledges of every shape a request can name:
/// p-0001 maths in xuhui; p-0002 piano in pudong; p-0003 maths for grades 7–9;
/// p-0004 english, never approved; p-0005 maths expiring on day 2; p-0006 maths of an
/// institution later banned; p-0007 maths fully withdrawn; p-0008 art online.
fn fixture() -> World {
    let mut w = World::new();
    let (op, assoc) = (w.keys["op"].clone(), w.keys["assoc"].clone());
    w.ok(&["op", "assoc"], json!({"kind": "genesis", "origin": ORIGIN, "operator": "operator",
        "operator_key": op, "allocation_validity_days": 90, "unit": "CNY-fen",
        "districts": ["xuhui", "minhang", "pudong"], "subjects": ["math", "english", "piano", "art"],
        "associations": [{"party": "assoc-01", "key": assoc}]}));
    for (actor, party, role) in [
        ("inst1", "inst-0001", "institution"),
        ("inst7", "inst-0007", "institution"),
        ("inst666", "inst-0666", "institution"),
        ("stu", "stu-3f9a", "student"),
        ("stu2", "stu-77b2", "student"),
        ("stu3", "stu-0c11", "student"),
    ] {
        let key = w.keys[actor].clone();
        w.ok(
            &["op", actor, "assoc"],
            json!({"kind": "party_registered", "party": party, "role": role, "key": key}),
        );
    }
    w.ok(&["op"], json!({"kind": "institution_closed", "institution": "inst-0001", "reason": "ceased_trading"}));
    for i in ["inst-0007", "inst-0666"] {
        w.ok(&["op"], json!({"kind": "institution_whitelisted", "institution": i, "reason": "approved_donor"}));
    }
    for (c, actor, stu, lessons) in [
        ("c-0001", "stu", "stu-3f9a", 20),
        ("c-0002", "stu2", "stu-77b2", 10),
        ("c-0003", "stu3", "stu-0c11", 2),
    ] {
        w.ok(
            &["op", actor, "assoc"],
            json!({"kind": "claim_recorded", "claim": c, "student": stu,
            "institution": "inst-0001", "lessons": lessons, "price_per_lesson_fen": 12_000,
            "subject": "math", "grade": 5, "district": "xuhui", "evidence_digest": EVIDENCE,
            "accepts_online": false, "accepted_districts": []}),
        );
    }
    let xuhui = json!({"district": "xuhui"});
    let offers = [
        ("p-0001", "inst-0007", "math", (4, 6), xuhui.clone(), true),
        (
            "p-0002",
            "inst-0007",
            "piano",
            (4, 6),
            json!({"district": "pudong"}),
            true,
        ),
        ("p-0003", "inst-0007", "math", (7, 9), xuhui.clone(), true),
        (
            "p-0004",
            "inst-0007",
            "english",
            (4, 6),
            xuhui.clone(),
            false,
        ),
        ("p-0005", "inst-0007", "math", (4, 6), xuhui.clone(), true),
        ("p-0006", "inst-0666", "math", (4, 6), xuhui.clone(), true),
        ("p-0007", "inst-0007", "math", (4, 6), xuhui.clone(), true),
        (
            "p-0008",
            "inst-0007",
            "art",
            (1, 12),
            json!({"online": true}),
            true,
        ),
    ];
    for (p, inst, subject, grades, place, approve) in offers {
        let mut offer = pledge(p, inst, subject, grades, place, 12_000);
        if p == "p-0005" {
            offer["valid_until_micros"] = json!(T0 + 2 * DAY);
        }
        let actor = if inst == "inst-0666" {
            "inst666"
        } else {
            "inst7"
        };
        w.ok(&[actor], offer);
        if approve {
            w.ok(&["op"], json!({"kind": "pledge_approved", "pledge": p}));
        }
    }
    w.ok(
        &["inst7"],
        json!({"kind": "pledge_withdrawn", "pledge": "p-0007", "lessons": 20}),
    );
    w.ok(&["op"], json!({"kind": "institution_blacklisted", "institution": "inst-0666", "reason": "false_pledge"}));
    w
}

fn prefs(claim: &str, subjects: &[&str], districts: &[&str], requests: &[&str]) -> Value {
    json!({"kind": "claim_preferences_set", "claim": claim, "subjects": subjects,
           "accepts_online": true, "accepted_districts": districts, "requests": requests})
}

fn ids(list: &[&str]) -> Vec<Id> {
    list.iter().map(|s| Id::new("id", s).unwrap()).collect()
}

#[test]
fn a_family_sets_ranked_subjects_places_and_requests_and_a_later_choice_supersedes() {
    let mut w = fixture();
    let before = w.claim("c-0001");
    assert_eq!(
        before.preferences, None,
        "a claim starts with no preferences"
    );
    w.ok(
        &["stu"],
        prefs(
            "c-0001",
            &["piano", "math"],
            &["pudong"],
            &["p-0002", "p-0001"],
        ),
    );
    let first_at = w.index - 1;
    let c = w.claim("c-0001");
    assert_eq!(
        c.preferences,
        Some(ClaimPreferences {
            subjects: ids(&["piano", "math"]),
            accepts_online: true,
            accepted_districts: ids(&["pudong"]),
            requests: ids(&["p-0002", "p-0001"]),
            set_at: first_at,
        })
    );
    assert_eq!(c.value, before.value, "preferences change no value");
    assert_eq!(
        c.entries.last(),
        Some(&first_at),
        "the claim lists the entry"
    );

    w.ok(&["stu"], prefs("c-0001", &["art"], &[], &[]));
    let p = w.claim("c-0001").preferences.unwrap();
    assert_eq!(
        (p.subjects, p.requests, p.set_at),
        (ids(&["art"]), vec![], w.index - 1)
    );
}

#[test]
fn only_the_claims_student_may_set_its_preferences() {
    let mut w = fixture();
    let body = prefs("c-0001", &["math"], &[], &[]);
    assert_eq!(
        w.refused(&["stu2"], body.clone()),
        "not_authorized",
        "another student"
    );
    assert_eq!(
        w.refused(&["op"], body.clone()),
        "not_authorized",
        "the operator"
    );
    assert_eq!(
        w.refused(&["inst7"], body.clone()),
        "not_authorized",
        "an institution"
    );
    assert_eq!(
        w.refused(&["stu", "op"], body.clone()),
        "unexpected_signer",
        "alone"
    );
    w.ok(&["stu"], body);
}

#[test]
fn each_bad_choice_is_refused_with_its_own_code_and_changes_nothing() {
    let mut w = fixture();
    // Day 3: p-0005 has expired.
    w.time = T0 + 3 * DAY;
    let nine: Vec<String> = (0..9).map(|n| format!("s-{n}")).collect();
    let nine: Vec<&str> = nine.iter().map(String::as_str).collect();
    let six = ["p-0001", "p-0002", "p-0003", "p-0004", "p-0005", "p-0006"];
    let cases: Vec<(Value, &str)> = vec![
        (prefs("c-0404", &["math"], &[], &[]), "claim_unknown"),
        (prefs("c-0001", &["chess"], &[], &[]), "subject_unknown"),
        (
            prefs("c-0001", &["math", "piano", "math"], &[], &[]),
            "subject_repeated",
        ),
        (prefs("c-0001", &nine, &[], &[]), "too_many_subjects"),
        (prefs("c-0001", &[], &[], &[]), "value_out_of_range"),
        (
            prefs("c-0001", &["math"], &["atlantis"], &[]),
            "district_unknown",
        ),
        (
            prefs("c-0001", &["math"], &["pudong", "pudong"], &[]),
            "district_repeated",
        ),
        (
            prefs(
                "c-0001",
                &["math"],
                &[
                    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
                    "q",
                ],
                &[],
            ),
            "too_many_districts",
        ),
        (prefs("c-0001", &["math"], &[], &six), "too_many_requests"),
        (
            prefs("c-0001", &["math"], &[], &["p-0001", "p-0001"]),
            "request_repeated",
        ),
        (
            prefs("c-0001", &["math"], &[], &["p-0404"]),
            "pledge_unknown",
        ),
        (
            prefs("c-0001", &["math"], &[], &["p-0003"]),
            "pledge_grade_mismatch",
        ),
        (
            prefs("c-0001", &["english"], &[], &["p-0004"]),
            "pledge_not_eligible",
        ),
        (
            prefs("c-0001", &["math"], &[], &["p-0005"]),
            "pledge_not_eligible",
        ),
        (
            prefs("c-0001", &["math"], &[], &["p-0006"]),
            "pledge_not_eligible",
        ),
        (
            prefs("c-0001", &["math"], &[], &["p-0007"]),
            "pledge_not_eligible",
        ),
        (
            prefs("c-0001", &["math"], &[], &["p-0002"]),
            "pledge_subject_not_accepted",
        ),
    ];
    for (body, code) in cases {
        assert_eq!(w.refused(&["stu"], body.clone()), code, "{body}");
    }
    assert_eq!(w.claim("c-0001").preferences, None);
}

#[test]
fn a_claim_with_nothing_left_to_redeem_takes_no_preferences() {
    let mut w = fixture();
    // Both lessons of c-0003 reserved by hand (an association co-signs).
    w.ok(
        &["op", "assoc"],
        json!({"kind": "allocation_made", "allocation": "a-0001",
        "claim": "c-0003", "pledge": "p-0001", "lessons": 2}),
    );
    assert_eq!(
        w.refused(&["stu3"], prefs("c-0003", &["art"], &[], &[])),
        "claim_closed"
    );
}

#[test]
fn allocation_made_accepts_what_the_family_chose_and_nothing_else() {
    let mut w = fixture();
    let alloc = |n: u32, claim: &str, pledge: &str| {
        json!({"kind": "allocation_made", "allocation": format!("a-{n:04}"), "claim": claim,
               "pledge": pledge, "lessons": 1})
    };
    // Without preferences: the claim's own subject, where it said.
    assert_eq!(
        w.refused(&["op", "assoc"], alloc(1, "c-0001", "p-0002")),
        "incompatible_subject"
    );
    assert_eq!(
        w.refused(&["op", "assoc"], alloc(1, "c-0001", "p-0008")),
        "incompatible_subject"
    );
    // Piano accepted, but pudong not: refused for its place.
    w.ok(&["stu"], prefs("c-0001", &["piano", "art"], &[], &[]));
    assert_eq!(
        w.refused(&["op", "assoc"], alloc(1, "c-0001", "p-0002")),
        "incompatible_location"
    );
    assert_eq!(
        w.refused(&["op", "assoc"], alloc(1, "c-0001", "p-0001")),
        "incompatible_subject",
        "maths is no longer accepted"
    );
    w.ok(&["op", "assoc"], alloc(1, "c-0001", "p-0008"));
    // Requested by id: accepted wherever it is taught.
    w.ok(
        &["stu"],
        prefs("c-0001", &["piano", "art"], &[], &["p-0002"]),
    );
    w.ok(&["op", "assoc"], alloc(2, "c-0001", "p-0002"));
}

/// Writes the key pair of test party `name` (seed `n`, as `party_signer`) as `keygen`
/// does: PREFIX.key (PKCS#8 PEM) and PREFIX.pub (the verifier key).
fn write_party_key(dir: &std::path::Path, name: &str, n: u64) -> std::path::PathBuf {
    let seed = *blake3::hash(format!("party-key-{n}").as_bytes()).as_bytes();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let prefix = dir.join(name);
    lesson_ledger::log::keyfile::write_private_pem(&prefix.with_extension("key"), &key).unwrap();
    std::fs::write(prefix.with_extension("pub"), party_signer(name, n).vkey()).unwrap();
    prefix
}

#[test]
fn a_student_sets_preferences_from_the_command_line_and_no_one_else_can() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (ledger, _) = populated(&dir);
    let server = lesson_ledger::http::Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        lesson_ledger::http::ServerConfig::default(),
    )
    .unwrap();
    let url = server.url();
    let own = write_party_key(tmp.path(), "stu-0000", 100);
    let other = write_party_key(tmp.path(), "stu-0001", 101);
    let set = |key: &std::path::Path| {
        crate::cli::run(&[
            "client",
            "preferences",
            "--url",
            &url,
            "--key",
            key.to_str().unwrap(),
            "--claim",
            "c-0000",
            "--subjects",
            "art,math",
            "--districts",
            "minhang",
            "--online",
            "--request",
            "p-0001",
        ])
    };
    let out = set(&own);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["result"]["status"], "ok", "{printed}");
    let out = set(&other);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["result"]["status"], "not_authorized", "{printed}");
    server.shutdown().unwrap();
    let (ledger, _) = lesson_ledger::ledger::writer::Ledger::open(&dir).unwrap();
    let claim: Claim = get_object(ledger.state(), "c-0000").unwrap().unwrap();
    let p = claim
        .preferences
        .expect("the student's choice is on the claim");
    assert_eq!(
        (p.subjects, p.requests),
        (ids(&["art", "math"]), ids(&["p-0001"]))
    );
}
