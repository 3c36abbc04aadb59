//! A synthetic lesson-ledger workload of any size, for the benchmarks: real payloads,
//! real keys, real signatures, every entry one the rules accept in order.
//!
//! Shape (the common path of the mechanism, at a realistic ratio of students to
//! courses): a genesis; closed institutions (registered, closed); donors (registered,
//! white-listed) with pledges (offered, approved); then per student: registration
//! (operator + the student's key), a claim (operator + student), an allocation
//! (operator), and lessons — most co-signed by student and donor at once, every fifth
//! proposed by the donor and confirmed by the student. Ids are pseudonymous counters.
//!
//! Entry format v2 (`schemas/README.md` §10): every payload names its ledger, party ids
//! are opaque (`stu-<hex>`, `inst-<hex>`), reasons are codes, and the genesis declares a
//! consumer association that co-signs it and every registration, claim and hand-made
//! allocation (as `tests/support.rs` does for the tests).

use ed25519_dalek::SigningKey;
use lesson_ledger::ledger::payload::DeclaredAssociation;
use lesson_ledger::ledger::{defaults, PAYLOAD_TYPE};
use lesson_ledger::log::envelope::Envelope;
use lesson_ledger::log::note::{KeyName, NoteSigner};
use rayon::prelude::*;
use serde_json::{json, Value};

/// Lessons each student takes.
const LESSONS_PER_STUDENT: u64 = 10;
/// Students per pledge (Shanghai: ~2,000 courses for the city's claims).
const STUDENTS_PER_PLEDGE: u64 = 100;
const PLEDGES_PER_DONOR: u64 = 10;
const STUDENTS_PER_CLOSED_INSTITUTION: u64 = 500;

/// Which keys sign an entry.
#[derive(Clone, Copy)]
enum Signer {
    Operator,
    Student(u64),
    Donor(u64),
    Closed(u64),
    Association,
}

/// The consumer association the workload's genesis declares.
const ASSOCIATION: &str = "assoc-be";

fn key(name: &str) -> NoteSigner {
    let seed = *blake3::hash(format!("bench-workload-key {name}").as_bytes()).as_bytes();
    NoteSigner::new(
        KeyName::new(name).expect("a valid key name"),
        SigningKey::from_bytes(&seed),
    )
}

fn student(n: u64) -> String {
    format!("stu-{n:07x}")
}

/// Donors and closed institutions share the `inst-` namespace: a leading `d` or `c`
/// (both hex digits) keeps them apart.
fn donor(n: u64) -> String {
    format!("inst-d{n:06x}")
}

fn closed_institution(n: u64) -> String {
    format!("inst-c{n:06x}")
}

/// About `entries` envelopes (never fewer), signed by `operator` and the parties' keys.
pub fn workload(entries: u64, origin: &str, operator: &NoteSigner) -> Vec<Envelope> {
    let per_student = 3 + LESSONS_PER_STUDENT + LESSONS_PER_STUDENT / 5;
    let students = entries.div_ceil(per_student).max(1);
    let pledges = students.div_ceil(STUDENTS_PER_PLEDGE);
    let donors = pledges.div_ceil(PLEDGES_PER_DONOR);
    let closed = students.div_ceil(STUDENTS_PER_CLOSED_INSTITUTION);

    let mut plan: Vec<(Value, Vec<Signer>)> = Vec::new();
    let mut genesis = defaults::genesis(origin, "operator", &operator.vkey());
    genesis.id = "genesis".into();
    genesis.associations = vec![DeclaredAssociation {
        party: ASSOCIATION.into(),
        key: key(ASSOCIATION).vkey(),
    }];
    plan.push((
        serde_json::from_slice(&defaults::genesis_payload(&genesis)).expect("genesis JSON"),
        vec![Signer::Operator, Signer::Association],
    ));
    for c in 0..closed {
        let inst = closed_institution(c);
        plan.push((
            json!({"kind": "party_registered", "id": format!("reg-{inst}"), "party": inst,
                   "role": "institution", "key": key(&inst).vkey()}),
            vec![Signer::Operator, Signer::Association, Signer::Closed(c)],
        ));
        plan.push((
            json!({"kind": "institution_closed", "id": format!("close-{inst}"),
                   "institution": inst, "reason": "ceased_trading"}),
            vec![Signer::Operator],
        ));
    }
    for d in 0..donors {
        let name = donor(d);
        plan.push((
            json!({"kind": "party_registered", "id": format!("reg-{name}"), "party": name,
                   "role": "institution", "key": key(&name).vkey()}),
            vec![Signer::Operator, Signer::Association, Signer::Donor(d)],
        ));
        plan.push((
            json!({"kind": "institution_whitelisted", "id": format!("white-{name}"),
                   "institution": name, "reason": "approved_donor"}),
            vec![Signer::Operator],
        ));
    }
    for p in 0..pledges {
        let d = p / PLEDGES_PER_DONOR;
        plan.push((
            json!({"kind": "pledge_offered", "id": format!("offer-p-{p:06}"), "pledge": format!("p-{p:06}"),
                   "institution": donor(d), "subject": "math", "grade_min": 1, "grade_max": 12,
                   "district": "xuhui", "seats": STUDENTS_PER_PLEDGE,
                   "lessons_per_seat": LESSONS_PER_STUDENT, "value_per_lesson_fen": 15_000,
                   "valid_from_micros": 0u64, "valid_until_micros": 4_102_444_800_000_000u64}),
            vec![Signer::Donor(d)],
        ));
        plan.push((
            json!({"kind": "pledge_approved", "id": format!("approve-p-{p:06}"), "pledge": format!("p-{p:06}")}),
            vec![Signer::Operator],
        ));
    }
    for s in 0..students {
        let name = student(s);
        let (p, d) = (
            s / STUDENTS_PER_PLEDGE,
            s / STUDENTS_PER_PLEDGE / PLEDGES_PER_DONOR,
        );
        let (claim, alloc) = (format!("c-{s:07x}"), format!("a-{s:07x}"));
        plan.push((
            json!({"kind": "party_registered", "id": format!("reg-{name}"), "party": name,
                   "role": "student", "key": key(&name).vkey()}),
            vec![Signer::Operator, Signer::Association, Signer::Student(s)],
        ));
        plan.push((
            json!({"kind": "claim_recorded", "id": format!("claim-{claim}"), "claim": claim,
                   "student": name, "institution": closed_institution(s / STUDENTS_PER_CLOSED_INSTITUTION),
                   "lessons": 20, "price_per_lesson_fen": 20_000, "subject": "math", "grade": 1 + s % 12,
                   "district": "xuhui", "evidence_digest": blake3::hash(claim.as_bytes()).to_hex().as_str(),
                   "accepts_online": false, "accepted_districts": []}),
            vec![Signer::Operator, Signer::Association, Signer::Student(s)],
        ));
        plan.push((
            json!({"kind": "allocation_made", "id": format!("alloc-{alloc}"), "allocation": alloc,
                   "claim": claim, "pledge": format!("p-{p:06}"), "lessons": LESSONS_PER_STUDENT}),
            vec![Signer::Operator, Signer::Association],
        ));
        for l in 0..LESSONS_PER_STUDENT {
            let lesson = format!("l-{s:07x}-{l}");
            if l % 5 == 4 {
                plan.push((
                    json!({"kind": "lesson_proposed", "id": format!("propose-{lesson}"),
                           "lesson": lesson, "allocation": alloc}),
                    vec![Signer::Donor(d)],
                ));
                plan.push((
                    json!({"kind": "lesson_confirmed", "id": format!("confirm-{lesson}"), "lesson": lesson}),
                    vec![Signer::Student(s)],
                ));
            } else {
                plan.push((
                    json!({"kind": "lesson_consumed", "id": format!("consume-{lesson}"),
                           "lesson": lesson, "allocation": alloc}),
                    vec![Signer::Student(s), Signer::Donor(d)],
                ));
            }
        }
    }
    plan.into_par_iter()
        .map(|(mut payload, signers)| {
            payload["ledger"] = origin.into();
            let parties: Vec<NoteSigner> = signers
                .iter()
                .filter_map(|s| match *s {
                    Signer::Operator => None,
                    Signer::Student(n) => Some(key(&student(n))),
                    Signer::Donor(n) => Some(key(&donor(n))),
                    Signer::Closed(n) => Some(key(&closed_institution(n))),
                    Signer::Association => Some(key(ASSOCIATION)),
                })
                .collect();
            let operator_signs = signers.iter().any(|s| matches!(s, Signer::Operator));
            let refs: Vec<&NoteSigner> = operator_signs
                .then_some(operator)
                .into_iter()
                .chain(parties.iter())
                .collect();
            Envelope::sign(PAYLOAD_TYPE, payload.to_string().as_bytes(), &refs)
                .expect("a workload entry signs")
        })
        .collect()
}
