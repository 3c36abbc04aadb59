//! Reads of the state over time (issue 12): a balance answer is kept until the next
//! batch but is always of one state — objects, proofs, note and checkpoint of one size —
//! and is served with the cosignatures collected since it was made; and `verify --url`
//! compares the root of every state note the operator signed with the replayed state's,
//! reporting the first that differs at its size.

use lesson_ledger::api::{AllocationAnswer, ClaimAnswer};
use lesson_ledger::client::{audit, audit_visiting, Client as LedgerClient, ClientError, Trust};
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::note::{cosign, NoteSigner, SignedCheckpoint};
use lesson_ledger::log::records::RecordKind;
use lesson_ledger::log::state_note::StateNote;
use lesson_ledger::runs::replay::Replayer;
use serde_json::{json, Value};

use crate::audit::{kinds_and_bodies, rewrite};
use crate::http::{current_checkpoint, post_cosign, scenario, Fixture};
use crate::ledger::{ledger_with, operator};
use crate::state_proofs::{get, log_size, propose};
use crate::support::test_association;

#[test]
fn a_balance_read_again_after_a_batch_is_of_the_new_state() {
    let f = Fixture::new();
    scenario(&f);
    let first = f.get("/v1/allocations/a-0001").bytes().unwrap();
    let again = f.get("/v1/allocations/a-0001").bytes().unwrap();
    assert_eq!(first, again, "the same state, the same answer");
    let first: AllocationAnswer = serde_json::from_slice(&first).unwrap();

    propose(&f, "l-0001");
    let after: AllocationAnswer =
        serde_json::from_value(get(&f, "/v1/allocations/a-0001")).unwrap();
    let size = log_size(&f);
    let note_size = |answer: &AllocationAnswer| {
        // The note's third line is its tree size.
        let note = answer.state_note.lines().nth(2).unwrap().to_owned();
        note.parse::<u64>().unwrap()
    };
    let cp_size = |answer: &AllocationAnswer| {
        SignedCheckpoint::parse_and_verify(answer.checkpoint.as_bytes(), &f.verifier())
            .unwrap()
            .checkpoint()
            .size
    };
    assert!(note_size(&first) < size);
    assert_eq!((note_size(&after), cp_size(&after)), (size, size));
    assert_eq!(after.allocation.object.open_lessons.len(), 1);
    assert!(first.allocation.object.open_lessons.is_empty());
    let client = LedgerClient::new(&f.server.url()).unwrap();
    let verified: AllocationAnswer = client.balance("a-0001", &f.verifier()).unwrap();
    assert_eq!(verified.allocation, after.allocation);
}

#[test]
fn a_cosignature_collected_after_a_balance_was_read_is_served_with_it() {
    let f = Fixture::new();
    scenario(&f);
    let read = get(&f, "/v1/claims/c-0001");
    let assoc = test_association();
    let cp = current_checkpoint(&f);
    let line = cosign(&cp, &assoc, 1_800_000_000).unwrap();
    let size = cp.checkpoint().size;
    let response = post_cosign(
        &f,
        json!({"party": "assoc-01", "size": size, "cosignature": line}),
    );
    assert_eq!(response.status(), 200);
    let again = get(&f, "/v1/claims/c-0001");
    assert!(!read["checkpoint"].as_str().unwrap().contains(&line));
    assert!(
        again["checkpoint"].as_str().unwrap().contains(&line),
        "{again}"
    );
    assert_eq!(again["claim"], read["claim"]);
    // The student's client, which requires the association, accepts it now.
    let trust = Trust::witnessed(f.verifier(), vec![assoc.verifier()], 1, None).unwrap();
    let client = LedgerClient::new(&f.server.url()).unwrap();
    client
        .balance_with::<ClaimAnswer>("c-0001", &trust)
        .expect("cosigned");
}

/// A ledger of ten registrations in batches (state notes at sizes 1, 5, 9 and 11) whose
/// second state note is re-signed by the operator over another root, served.
fn ledger_with_a_wrong_older_state_note() -> (tempfile::TempDir, Server, NoteSigner, u64) {
    let dir = tempfile::TempDir::new().unwrap();
    ledger_with(dir.path(), 10).close().unwrap();
    let op = operator(dir.path());
    let mut recs = kinds_and_bodies(dir.path());
    let at = recs
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k == RecordKind::StateNote)
        .map(|(i, _)| i)
        .nth(1)
        .unwrap();
    let honest = StateNote::parse_and_verify(&recs[at].1, &op.verifier()).unwrap();
    let mut root = honest.root;
    root[0] ^= 1;
    let forged = StateNote {
        root,
        ..honest.clone()
    };
    // Signed with the real operator key: only the root is wrong.
    recs[at].1 = forged.sign(&op).unwrap().into_bytes();
    rewrite(dir.path(), &recs);
    let (ledger, _) = Ledger::open(dir.path()).unwrap();
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .unwrap();
    (dir, server, op, honest.size)
}

#[test]
fn verify_url_compares_the_root_of_every_state_note_and_reports_the_first_wrong_one() {
    // The honest ledger: every note's root is the replay's.
    let dir = tempfile::TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 10);
    let op = operator(dir.path());
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .unwrap();
    let client = LedgerClient::new(&server.url()).unwrap();
    let mut replayer = Replayer::new();
    let report = audit_visiting(&client, Some(&op.vkey()), None, &mut replayer, &|_, _| {})
        .expect("the honest ledger verifies");
    assert_eq!((report.size, report.state_notes), (11, 4));
    let page: Value = reqwest::blocking::get(format!("{}/v1/state-notes?from=2", server.url()))
        .unwrap()
        .json()
        .unwrap();
    let sizes: Vec<u64> = page["state_notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["size"].as_u64().unwrap())
        .collect();
    assert_eq!((sizes, &page["next"]), (vec![5, 9, 11], &Value::Null));
    server.shutdown().unwrap();

    // An older note, signed by the operator over a root the replay does not give.
    let (_dir, server, op, wrong_at) = ledger_with_a_wrong_older_state_note();
    let client = LedgerClient::new(&server.url()).unwrap();
    let mut replayer = Replayer::new();
    match audit_visiting(&client, Some(&op.vkey()), None, &mut replayer, &|_, _| {}) {
        Err(ClientError::StateRoot { size, reason }) => {
            assert_eq!(size, wrong_at, "{reason}");
            assert_eq!(
                replayer.entries(),
                wrong_at,
                "stopped at the first wrong note"
            );
        }
        other => panic!("expected state_root_mismatch at {wrong_at}, got {other:?}"),
    }
    // The log alone still verifies: the log is intact, the state note is the lie.
    audit(&client, Some(&op.vkey()), None).expect("the log itself is sound");
    server.shutdown().unwrap();
}
