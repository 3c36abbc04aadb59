//! Match runs under attack and under faults (issue 11, items 2 and 3, and "match runs
//! are atomic in effect"): pledges nobody approved cannot stop a run, nobody can take a
//! run's ids first, and a run killed at any batch boundary leaves a ledger whose next
//! run and `verify` pass.

use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::limits::PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX;
use lesson_ledger::ledger::objects::Pledge;
use lesson_ledger::ledger::writer::{Ledger, LedgerError};
use lesson_ledger::ledger::{Key, RuleError, StateView, Table, Value};
use lesson_ledger::log::envelope::VerifiedEnvelope;
use lesson_ledger::log::store::{LogError, Outcome};
use lesson_ledger::matching::{match_claims, MATCH_PLEDGES_MAX};
use lesson_ledger::runs::{inputs, open_runs, run_match, RunWriter};
use serde_json::json;
use tempfile::TempDir;

use crate::match_runs::{
    append, finding, honest_plans, populated, record_allocation, record_run, replay,
};
use crate::support::{ledger_entry, party_signer, verified};
use lesson_ledger::runs::digest_of;

/// The pledges of `populated` are valid from a year ago to a year ahead.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Item 2: one institution offered more pledges than a run may read, and nobody
/// approved them. The run's inputs hold only the eligible pledges, so the matcher (and
/// the auditor's re-run, which reads through the same function) still runs, and finds
/// what it finds without them.
#[test]
fn pledges_nobody_approved_never_count_against_a_runs_pledge_cap() {
    let tmp = TempDir::new().unwrap();
    let (mut ledger, _) = populated(&tmp.path().join("data"));
    let (params, plans) = honest_plans(&mut ledger);
    ledger.close().unwrap();
    let mut state = replay(&tmp.path().join("data")).unwrap().state().clone();
    let template: Pledge = match state.get(&Key::new(Table::Pledge, "p-0001")) {
        Some(Value::Pledge(p)) => *p,
        other => panic!("{other:?}"),
    };
    // 100,001 pledges as `pledge_offered` leaves them: not approved.
    let flood: Vec<(Key, Value)> = (0..=MATCH_PLEDGES_MAX)
        .map(|n| {
            let mut p = template.clone();
            p.pledge = lesson_ledger::ledger::Id::new("pledge", &format!("q-{n:06}")).unwrap();
            p.approved_at = None;
            (
                Key::new(Table::Pledge, p.pledge.as_str()),
                Value::Pledge(Box::new(p)),
            )
        })
        .collect();
    state.apply(flood);
    let (claims, pledges) = inputs(&state, params.at_micros).unwrap();
    assert_eq!(
        pledges.len(),
        2,
        "only the two approved pledges are eligible"
    );
    let matching = match_claims(&claims, &pledges, &params).unwrap();
    assert_eq!(matching.plans, plans, "the flood changes nothing");
}

/// Item 2: the flood itself is bounded — an institution holds at most
/// `PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX` pledges awaiting approval; an approval
/// makes room for one more.
#[test]
fn an_institution_holds_a_bounded_number_of_pledges_awaiting_approval() {
    let tmp = TempDir::new().unwrap();
    let (mut ledger, op) = populated(&tmp.path().join("data"));
    let donor = party_signer("inst-0007", 7);
    let now = now_micros();
    let offer = |n: u64| {
        verified(ledger_entry(
            &[&donor],
            &json!({"kind": "pledge_offered", "id": format!("flood-{n}"), "pledge": format!("q-{n:05}"),
                    "institution": "inst-0007", "subject": "math", "grade_min": 4, "grade_max": 6,
                    "online": true, "seats": 1, "lessons_per_seat": 1, "value_per_lesson_fen": 100,
                    "valid_from_micros": now, "valid_until_micros": now + 86_400_000_000}),
        ))
    };
    let max = PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX;
    let batch: Vec<VerifiedEnvelope> = (0..max).map(offer).collect();
    for outcome in ledger.submit(batch).unwrap() {
        assert!(matches!(outcome, Outcome::Ok(_)), "{outcome:?}");
    }
    let refused = |ledger: &mut Ledger, n| -> Option<&'static str> {
        match &ledger.submit(vec![offer(n)]).unwrap()[0] {
            Outcome::Refused(e) => Some(e.code()),
            _ => None,
        }
    };
    assert_eq!(
        refused(&mut ledger, max),
        Some("too_many_unapproved_pledges")
    );
    append(
        &mut ledger,
        &[&op],
        json!({"kind": "pledge_approved", "id": "approve-q-0", "pledge": "q-00000"}),
    );
    assert_eq!(refused(&mut ledger, max), None, "an approval makes room");
    assert_eq!(
        refused(&mut ledger, max + 1),
        Some("too_many_unapproved_pledges")
    );
}

/// Item 3: the attack. An institution takes, first, the id the next run's first
/// allocation used to get (`match-<size>-0`); the run used to be recorded with a hole
/// and `verify` then called the honest operator a cheat (`match_run_mismatch`).
#[test]
fn an_institution_taking_the_next_runs_ids_first_blocks_nothing() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (mut ledger, op) = populated(&dir);
    let (_, plans) = honest_plans(&mut ledger);
    let donor = party_signer("inst-0007", 7);
    let size = ledger.log().size();
    let now = now_micros();
    // The squat is itself an entry, so the run reads the log at size + 1.
    for (n, id) in [
        format!("match-{}-0", size + 1),
        format!("match-{}", size + 2),
    ]
    .into_iter()
    .enumerate()
    {
        append(
            &mut ledger,
            &[&donor],
            json!({"kind": "pledge_offered", "id": id, "pledge": format!("s-{n}"),
                   "institution": "inst-0007", "subject": "art", "grade_min": 1, "grade_max": 1,
                   "online": true, "seats": 1, "lessons_per_seat": 1, "value_per_lesson_fen": 100,
                   "valid_from_micros": now, "valid_until_micros": now + 86_400_000_000}),
        );
    }
    let outcome = run_match(&mut ledger, Some(&op), false).unwrap();
    assert_eq!(outcome.allocations, plans.len() as u64);
    ledger.close().unwrap();
    let replayer = replay(&dir).unwrap();
    assert_eq!(replayer.runs().checked(), 1);
    assert_eq!(replayer.runs().open_run(), None);
}

/// A ledger behind a writer that dies after `batches` group commits of a run, with
/// runs cut into batches of `BATCH` entries so that a small run has several.
struct DiesAfter {
    ledger: Ledger,
    batches: usize,
}

const BATCH: usize = 2;

impl RunWriter for DiesAfter {
    fn read<T>(&self, f: impl FnOnce(&Ledger) -> T) -> T {
        f(&self.ledger)
    }

    fn submit(
        &mut self,
        batch: Vec<VerifiedEnvelope>,
    ) -> Result<Vec<Outcome<RuleError>>, LedgerError> {
        let Some(left) = self.batches.checked_sub(1) else {
            // As a process killed here: nothing more is written.
            return Err(LedgerError::Log(LogError::Failed));
        };
        self.batches = left;
        self.ledger.submit(batch)
    }

    fn batch_entries_max(&self) -> usize {
        BATCH
    }
}

/// "Match runs are atomic in effect": a run of several batches killed at each of its
/// batch boundaries, on a real store. Reopened, the log verifies (the run is open, not
/// wrong); served again, the server closes the run before anything else; the next run
/// matches what is left; and `verify` passes, with the cut run's allocations checked as
/// the first plans of its re-run.
#[test]
fn a_run_killed_at_any_batch_boundary_is_closed_on_restart_and_verify_passes() {
    let probe = TempDir::new().unwrap();
    let (mut ledger, _) = populated(&probe.path().join("data"));
    let entries = honest_plans(&mut ledger).1.len() + 1;
    drop(ledger);
    let batches = entries.div_ceil(BATCH);
    assert!(batches >= 3, "the fixture's run must span several batches");
    for cut in 1..batches {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("data");
        let (ledger, op) = populated(&dir);
        let mut dying = DiesAfter {
            ledger,
            batches: cut,
        };
        let err = run_match(&mut dying, Some(&op), false).unwrap_err();
        assert_eq!(err.code(), "log_failed", "cut {cut}: {err}");
        dying.ledger.close().unwrap();

        let (ledger, _) = Ledger::open(&dir).unwrap();
        let open = open_runs(&ledger);
        assert_eq!(open.len(), 1, "cut {cut}");
        assert_eq!(open[0].made as usize, cut * BATCH - 1, "cut {cut}");
        ledger.close().unwrap();
        let replayer = replay(&dir).unwrap();
        assert!(replayer.runs().open_run().is_some(), "cut {cut}");

        // The server closes it on start, before serving anything.
        let (ledger, _) = Ledger::open(&dir).unwrap();
        let server = Server::start(
            ledger,
            "127.0.0.1:0".parse().unwrap(),
            ServerConfig::default(),
        )
        .unwrap();
        server.shutdown().unwrap();
        let (mut ledger, _) = Ledger::open(&dir).unwrap();
        assert!(open_runs(&ledger).is_empty(), "cut {cut}");
        run_match(&mut ledger, Some(&op), false).unwrap();
        ledger.close().unwrap();
        let replayer = replay(&dir).unwrap();
        assert_eq!(replayer.runs().checked(), 2, "cut {cut}");
        assert_eq!(replayer.runs().closed(), 1, "cut {cut}");
        assert_eq!(replayer.runs().open_run(), None, "cut {cut}");
    }
}

/// The same kill, restarted by the CLI's path instead of a server: the next run closes
/// the cut one itself.
#[test]
fn the_next_run_closes_a_run_killed_between_batches() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (ledger, op) = populated(&dir);
    let mut dying = DiesAfter { ledger, batches: 2 };
    assert!(run_match(&mut dying, Some(&op), false).is_err());
    dying.ledger.close().unwrap();
    let (mut ledger, _) = Ledger::open(&dir).unwrap();
    run_match(&mut ledger, Some(&op), false).unwrap();
    ledger.close().unwrap();
    let replayer = replay(&dir).unwrap();
    assert_eq!(
        (replayer.runs().checked(), replayer.runs().closed()),
        (2, 1)
    );
}

/// The same run cut short, then the next run through the one run function: it closes
/// the open run first, and `verify` passes, checking what the cut run recorded as the
/// first plans of its re-run.
#[test]
fn the_next_run_closes_a_run_cut_short_and_verify_passes() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (mut ledger, op) = populated(&dir);
    let (params, plans) = honest_plans(&mut ledger);
    record_run(
        &mut ledger,
        &op,
        "run-z",
        params,
        plans.len(),
        digest_of(&plans),
    );
    record_allocation(&mut ledger, &op, "run-z", 0, &plans[0], plans[0].lessons.0);
    record_allocation(&mut ledger, &op, "run-z", 1, &plans[1], plans[1].lessons.0);
    let outcome = run_match(&mut ledger, Some(&op), false).unwrap();
    assert!(outcome.allocations > 0, "what run-z left is matched again");
    ledger.close().unwrap();
    let replayer = replay(&dir).unwrap();
    assert_eq!(replayer.runs().checked(), 2);
    assert_eq!(replayer.runs().closed(), 1);
    assert_eq!(replayer.runs().open_run(), None);
}

/// A closed run whose recorded allocations are not the first plans is still a
/// mismatch: closing a run excuses what is missing, never what is wrong.
#[test]
fn a_closed_run_is_still_checked_plan_by_plan() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (mut ledger, op) = populated(&dir);
    let (params, plans) = honest_plans(&mut ledger);
    let k = plans.iter().position(|p| p.lessons.0 >= 2).unwrap();
    let first = ledger.log().size();
    record_run(
        &mut ledger,
        &op,
        "run-w",
        params,
        plans.len(),
        digest_of(&plans),
    );
    for (n, plan) in plans.iter().enumerate().take(k + 1) {
        let lessons = plan.lessons.0 - u64::from(n == k);
        record_allocation(&mut ledger, &op, "run-w", n, plan, lessons);
    }
    append(
        &mut ledger,
        &[&op],
        json!({"kind": "match_run_closed", "id": "close-run-w", "run": "run-w"}),
    );
    ledger.close().unwrap();
    let f = finding(&dir);
    assert_eq!(f.index, Some(first + 1 + k as u64), "{f}");
    assert!(f.found.starts_with("match_run_mismatch"), "{f}");
}
