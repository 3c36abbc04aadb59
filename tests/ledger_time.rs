//! Issue 11, item 10, "the operator's clock": ledger time is the operator's clock
//! (`max(wall clock, previous + 1 µs)`). A confirmation window ends, and an allocation
//! expires, only once a consumer association has attested (`time_attested`) a time past
//! the deadline, so that an operator running its clock fast can neither deem a family's
//! lesson confirmed early, nor refuse its dispute as late, nor expire its allocation
//! early.
//!
//! Entries are decided by the real rules on the replay's state, each with the ledger
//! time the operator's clock would give it.

use lesson_ledger::ledger::{apply_entry, queries, EntryContext, Lessons, MemoryState};
use serde_json::{json, Value};

use crate::support::vkey;

const T0: u64 = 1_700_000_000_000_000;
const DAY: u64 = 86_400 * 1_000_000;
const ORIGIN: &str = "ledger.example/time";
const EVIDENCE: &str = "4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f";

/// A ledger whose operator sets `time` as it likes.
struct Ledger {
    state: MemoryState,
    index: u64,
    time: u64,
    next: u64,
}

fn key(actor: &str) -> String {
    match actor {
        "op" => vkey("operator", 1),
        "inst1" => vkey("inst-0001", 2),
        "inst7" => vkey("inst-0007", 3),
        "stu" => vkey("stu-3f9a", 6),
        "assoc" => vkey("assoc-01", 9),
        other => panic!("no actor {other}"),
    }
}

impl Ledger {
    /// Decides `payload` signed by `signers` at ledger time `time` (which must not go
    /// backwards, as the log guarantees): the refusal code, if any.
    fn at(&mut self, time: u64, signers: &[&str], mut payload: Value) -> Result<(), &'static str> {
        assert!(
            time > self.time || self.index == 0,
            "ledger time only increases"
        );
        self.next += 1;
        payload["id"] = json!(format!("e-{:04}", self.next));
        payload["ledger"] = json!(ORIGIN);
        let ctx = EntryContext {
            index: self.index,
            time_micros: time,
            signers: signers.iter().map(|s| key(s)).collect(),
        };
        let bytes = serde_json::to_vec(&payload).unwrap();
        apply_entry(&mut self.state, &ctx, &bytes).map_err(|e| e.code())?;
        self.index += 1;
        self.time = time;
        Ok(())
    }

    #[track_caller]
    fn ok(&mut self, signers: &[&str], payload: Value) {
        let t = self.time + 1_000_000;
        if let Err(code) = self.at(t, signers, payload.clone()) {
            panic!("refused ({code}): {payload}");
        }
    }

    /// The association attests `at` (its clock) in an entry at ledger time `time`.
    fn attest(&mut self, time: u64, at: u64) -> Result<(), &'static str> {
        self.at(
            time,
            &["assoc"],
            json!({"kind": "time_attested", "at_micros": at}),
        )
    }
}

/// Genesis (15-day window, 90-day validity), a closed institution with a claim, a donor
/// with an approved pledge, an allocation `a-0001` made at T0 and lesson `l-0001`
/// proposed on it just after: the window ends 15 days after the proposal.
fn proposed() -> (Ledger, u64) {
    let mut l = Ledger {
        state: MemoryState::new(),
        index: 0,
        time: T0 - DAY,
        next: 0,
    };
    l.at(
        T0 - DAY,
        &["op", "assoc"],
        json!({"kind": "genesis", "origin": ORIGIN, "operator": "operator",
        "operator_key": key("op"), "confirmation_window_days": 15, "allocation_validity_days": 90,
        "unit": "CNY-fen", "districts": ["xuhui"], "subjects": ["math"],
        "associations": [{"party": "assoc-01", "key": key("assoc")}]}),
    )
    .unwrap();
    for (actor, party, role) in [
        ("inst1", "inst-0001", "institution"),
        ("inst7", "inst-0007", "institution"),
        ("stu", "stu-3f9a", "student"),
    ] {
        l.ok(
            &["op", "assoc", actor],
            json!({"kind": "party_registered", "party": party, "role": role, "key": key(actor)}),
        );
    }
    l.ok(&["op"], json!({"kind": "institution_closed", "institution": "inst-0001", "reason": "abnormal_closure"}));
    l.ok(&["op"], json!({"kind": "institution_whitelisted", "institution": "inst-0007", "reason": "approved_donor"}));
    l.ok(&["op", "assoc", "stu"], json!({"kind": "claim_recorded", "claim": "c-0001", "student": "stu-3f9a",
        "institution": "inst-0001", "lessons": 20, "price_per_lesson_fen": 15_000, "subject": "math",
        "grade": 5, "district": "xuhui", "evidence_digest": EVIDENCE, "accepts_online": false,
        "accepted_districts": []}));
    l.ok(
        &["inst7"],
        json!({"kind": "pledge_offered", "pledge": "p-0001", "institution": "inst-0007",
        "subject": "math", "grade_min": 4, "grade_max": 6, "district": "xuhui", "seats": 10,
        "lessons_per_seat": 30, "value_per_lesson_fen": 12_000, "valid_from_micros": T0 - DAY,
        "valid_until_micros": T0 + 365 * DAY}),
    );
    l.ok(
        &["op"],
        json!({"kind": "pledge_approved", "pledge": "p-0001"}),
    );
    l.at(
        T0,
        &["op", "assoc"],
        json!({"kind": "allocation_made", "allocation": "a-0001", "claim": "c-0001",
        "pledge": "p-0001", "lessons": 5}),
    )
    .unwrap();
    l.ok(
        &["inst7"],
        json!({"kind": "lesson_proposed", "lesson": "l-0001", "allocation": "a-0001"}),
    );
    let window_end = l.time + 15 * DAY;
    (l, window_end)
}

fn deem() -> Value {
    json!({"kind": "lesson_deemed_confirmed", "lesson": "l-0001"})
}

#[test]
fn the_operators_clock_alone_never_deems_a_lesson_confirmed() {
    let (mut l, window_end) = proposed();
    // The operator's clock jumps past the window: it used to be enough.
    assert_eq!(
        l.at(window_end, &["op"], deem()),
        Err("deadline_not_attested")
    );
    // The association's clock says ten days have passed: still not.
    l.attest(window_end + 1, window_end - 5 * DAY).unwrap();
    assert_eq!(
        l.at(window_end + 2, &["op"], deem()),
        Err("deadline_not_attested")
    );
    // Once it attests the window's end, the lesson is deemed confirmed.
    l.attest(window_end + 3, window_end).unwrap();
    l.at(window_end + 4, &["op"], deem()).unwrap();
    let a = queries::allocation_balance(&l.state, "a-0001")
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.lessons.consumed(), a.lessons.pending()),
        (Lessons(1), Lessons(0))
    );
}

#[test]
fn a_dispute_is_late_only_once_an_association_attests_the_window_over() {
    let (mut l, window_end) = proposed();
    let dispute = |n: u64| {
        json!({"kind": "lesson_disputed", "dispute": format!("d-{n:04}"), "lesson": "l-0001",
               "reason": "not_taught"})
    };
    // The operator dated the dispute a day after the window on its own clock: it used to
    // be refused as late (`window_elapsed`); the family's window is not over on the
    // attested clock, so it stands.
    l.attest(window_end - DAY, window_end - DAY).unwrap();
    l.at(window_end + DAY, &["stu"], dispute(1)).unwrap();

    let (mut l, window_end) = proposed();
    l.attest(window_end + 1, window_end).unwrap();
    assert_eq!(
        l.at(window_end + 2, &["stu"], dispute(2)),
        Err("window_elapsed")
    );
}

#[test]
fn the_operators_clock_alone_never_expires_an_allocation() {
    let (mut l, _) = proposed();
    let expiry = T0 + 90 * DAY;
    let expire = json!({"kind": "allocation_expired", "allocation": "a-0001"});
    assert_eq!(
        l.at(expiry, &["op"], expire.clone()),
        Err("deadline_not_attested")
    );
    l.attest(expiry + 1, expiry - 1).unwrap();
    assert_eq!(
        l.at(expiry + 2, &["op"], expire.clone()),
        Err("deadline_not_attested")
    );
    l.attest(expiry + 3, expiry).unwrap();
    l.at(expiry + 4, &["op"], expire).unwrap();
}

/// The attested clock never goes backwards, is never ahead of the ledger time of the
/// entry that states it (so that every later entry is dated after it), and only a
/// consumer association states it.
#[test]
fn attested_time_only_moves_forward_and_never_ahead_of_the_ledger() {
    let (mut l, _) = proposed();
    let t = l.time + DAY;
    assert_eq!(l.attest(t, t + 1), Err("time_attested_in_future"));
    l.attest(t, t).unwrap();
    assert_eq!(l.attest(t + 10, t), Err("time_attested_backwards"));
    assert_eq!(l.attest(t + 11, t - 5), Err("time_attested_backwards"));
    assert_eq!(
        l.at(
            t + 12,
            &["op"],
            json!({"kind": "time_attested", "at_micros": t + 1})
        ),
        Err("not_authorized")
    );
    l.attest(t + 13, t + 13).unwrap();
}
