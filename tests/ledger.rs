//! The ledger over the log: state kept beside the log, caught up on open, committed to
//! by signed state notes, and re-derived by the auditor's replay.

use std::fs;
use std::path::Path;

use lesson_ledger::ledger::sled_state::STATE_TREE;
use lesson_ledger::ledger::units::hex;
use lesson_ledger::ledger::writer::{Ledger, LedgerError};
use lesson_ledger::ledger::{defaults, PAYLOAD_TYPE};
use lesson_ledger::log::audit::{audit_with, AuditError, AuditOptions};
use lesson_ledger::log::envelope::{Envelope, KeyCache};
use lesson_ledger::log::keyfile;
use lesson_ledger::log::note::{KeyName, NoteSigner};
use lesson_ledger::log::records::RecordKind;
use lesson_ledger::log::state_note::StateNote;
use lesson_ledger::log::store::{layout, AdmitAll, EntryIdOnly, Log, Outcome};
use lesson_ledger::runs::replay::Replayer;
use tempfile::TempDir;

use crate::audit::{kinds_and_bodies, rewrite};
use crate::support::{register_institution, verified};

const ORIGIN: &str = crate::support::TEST_ORIGIN;

pub(crate) fn operator(dir: &Path) -> NoteSigner {
    let key = keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY)).unwrap();
    NoteSigner::new(KeyName::new("operator").unwrap(), key)
}

/// A ledger with its genesis and `n` institutions registered in batches of 4.
pub(crate) fn ledger_with(dir: &Path, n: u64) -> Ledger {
    let mut ledger = Ledger::create(dir, ORIGIN, "operator").unwrap();
    let op = operator(dir);
    let g = crate::support::test_genesis(&op);
    assert!(matches!(
        ledger.submit(vec![verified(g)]).unwrap()[0],
        Outcome::Ok(_)
    ));
    for chunk in (0..n).collect::<Vec<_>>().chunks(4) {
        let batch = chunk
            .iter()
            .map(|&i| verified(register_institution(&op, i)))
            .collect();
        for o in ledger.submit(batch).unwrap() {
            assert!(matches!(o, Outcome::Ok(_)), "{o:?}");
        }
    }
    ledger
}

fn replay_audit(dir: &Path) -> Result<Replayer, AuditError> {
    let mut replayer = Replayer::new();
    audit_with(dir, &AuditOptions::default(), &|_, _| {}, &mut replayer)?;
    Ok(replayer)
}

#[test]
fn every_batch_commits_a_signed_state_map_root_that_the_replay_reproduces() {
    let dir = TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 10);
    let digest = ledger.state().root();
    ledger.close().unwrap();
    let notes: Vec<StateNote> = kinds_and_bodies(dir.path())
        .into_iter()
        .filter(|(k, _)| *k == RecordKind::StateNote)
        .map(|(_, b)| StateNote::parse_and_verify(&b, &operator(dir.path()).verifier()).unwrap())
        .collect();
    assert_eq!(
        notes.len(),
        1 + 3,
        "the genesis batch and three batches of registrations"
    );
    assert_eq!(notes.last().unwrap().root, digest);
    let replayer = replay_audit(dir.path()).unwrap();
    assert_eq!((replayer.entries(), replayer.notes()), (11, 4));
    assert_eq!(replayer.state().root(), digest);
}

#[test]
fn a_state_map_root_the_replay_does_not_reproduce_is_caught_at_its_index_even_when_signed() {
    let dir = TempDir::new().unwrap();
    ledger_with(dir.path(), 10).close().unwrap();
    let op = operator(dir.path());
    let mut recs = kinds_and_bodies(dir.path());
    // The second state note of four: not the last, which open re-verifies itself.
    let at = recs
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k == RecordKind::StateNote)
        .map(|(i, _)| i)
        .nth(1)
        .unwrap();
    let honest = StateNote::parse_and_verify(&recs[at].1, &op.verifier()).unwrap();
    let mut root = honest.root;
    root[31] ^= 1;
    let forged = StateNote {
        root,
        ..honest.clone()
    };
    // Re-signed with the operator key: the signature is valid, only the root is wrong.
    recs[at].1 = forged.sign(&op).unwrap().into_bytes();
    rewrite(dir.path(), &recs);
    match replay_audit(dir.path()) {
        Err(AuditError::Finding(f)) => {
            assert!(f.what.starts_with("state_root_mismatch"), "{f}");
            assert_eq!(f.index, Some(honest.size), "{f}");
        }
        other => panic!("expected a finding, got {:?}", other.map(|r| r.entries())),
    }
}

#[test]
fn the_state_is_rebuilt_from_the_log_when_lost() {
    let dir = TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 9);
    let digest = ledger.state().root();
    ledger.close().unwrap();
    fs::remove_dir_all(dir.path().join(layout::INDEX)).unwrap();
    let (ledger, report) = Ledger::open(dir.path()).unwrap();
    assert_eq!(report.replayed, 10);
    assert_eq!(hex(&ledger.state().root()), hex(&digest));
    let replayer = replay_audit(dir.path());
    drop(ledger);
    assert!(replayer.is_ok());
}

/// The size the state stored in sled reflects (the ledger closed or dropped).
fn stored_state_size(dir: &Path) -> u64 {
    let db = sled::open(dir.join(layout::INDEX)).unwrap();
    lesson_ledger::ledger::sled_state::SledState::open(&db)
        .unwrap()
        .size()
}

#[test]
fn a_state_written_to_sled_behind_the_log_is_caught_up_on_open_and_written_on_close() {
    let dir = TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 9);
    let digest = ledger.state().root();
    // Dropped, not closed: as after a kill, sled has not been given the last entries
    // (the ledger writes the state to sled every few thousand entries).
    drop(ledger);
    assert_eq!(stored_state_size(dir.path()), 0);
    let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.state().size(), 10);
    assert_eq!(hex(&ledger.state().root()), hex(&digest));
    // One more entry, committed in memory only, until the close.
    let op = operator(dir.path());
    let outcomes = ledger
        .submit(vec![verified(register_institution(&op, 9))])
        .unwrap();
    assert!(matches!(outcomes[0], Outcome::Ok(_)), "{outcomes:?}");
    let digest = ledger.state().root();
    ledger.close().unwrap();
    assert_eq!(
        stored_state_size(dir.path()),
        11,
        "closing writes the state"
    );
    let (ledger, _) = Ledger::open(dir.path()).unwrap();
    assert_eq!(hex(&ledger.state().root()), hex(&digest));
}

#[test]
fn a_damaged_stored_state_is_rebuilt_from_the_log() {
    let dir = TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 9);
    let digest = ledger.state().root();
    ledger.close().unwrap();
    {
        let db = sled::open(dir.path().join(layout::INDEX)).unwrap();
        let tree = db.open_tree(STATE_TREE).unwrap();
        let records: Vec<_> = tree.iter().keys().map(Result::unwrap).collect();
        let mut damaged = 0;
        for key in records.into_iter().filter(|k| !k.starts_with(b"\0head")) {
            tree.insert(key, b"not postcard".as_slice()).unwrap();
            damaged += 1;
        }
        assert!(damaged > 0, "the state has records besides its head");
        db.flush().unwrap();
    }
    let (ledger, _) = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.state().size(), 10);
    assert_eq!(hex(&ledger.state().root()), hex(&digest));
    ledger.close().unwrap();
    let replayer = replay_audit(dir.path()).unwrap();
    assert_eq!(hex(&replayer.state().root()), hex(&digest));
}

#[test]
fn an_entry_written_around_the_rules_is_caught_by_the_replay_and_refuses_to_load() {
    let dir = TempDir::new().unwrap();
    ledger_with(dir.path(), 2).close().unwrap();
    // Well signed, appended by the raw log without asking the rules: a second genesis.
    {
        let (mut log, _) = Log::open(dir.path(), Box::new(EntryIdOnly)).unwrap();
        let op = operator(dir.path());
        let mut genesis = defaults::genesis(ORIGIN, "operator", &op.vkey());
        genesis.id = "genesis-again".into();
        let e = Envelope::sign(PAYLOAD_TYPE, &defaults::genesis_payload(&genesis), &[&op]).unwrap();
        let e = e.verify(&KeyCache::self_certifying()).unwrap();
        assert!(matches!(
            log.append(vec![e], &mut AdmitAll).unwrap()[0],
            Outcome::Ok(_)
        ));
        log.close().unwrap();
    }
    match replay_audit(dir.path()) {
        Err(AuditError::Finding(f)) => {
            assert_eq!(f.index, Some(3), "{f}");
            assert!(f.found.contains("genesis_repeated"), "{f}");
        }
        other => panic!("expected a finding, got {:?}", other.map(|r| r.entries())),
    }
    match Ledger::open(dir.path()) {
        Err(LedgerError::Diverged { index, code, .. }) => {
            assert_eq!((index, code), (3, "genesis_repeated"))
        }
        Err(other) => panic!("expected divergence, got {other}"),
        Ok(_) => panic!("a log the rules refuse must not load"),
    }
}

#[test]
fn refused_entries_change_neither_log_nor_state() {
    let dir = TempDir::new().unwrap();
    let mut ledger = ledger_with(dir.path(), 3);
    let (size, digest, root) = (
        ledger.log().size(),
        ledger.state().root(),
        ledger.log().checkpoint().text(),
    );
    let op = operator(dir.path());
    // Registering the same institution again under another entry id: the party exists.
    let mut again = serde_json::json!({"kind": "party_registered", "id": "reg-again", "party": "inst-00001",
        "role": "institution", "key": crate::support::party_signer("inst-00001", 99).vkey()});
    let key = crate::support::party_signer("inst-00001", 99);
    let e = crate::support::ledger_entry(&[&op, &key], &again);
    let out = ledger.submit(vec![verified(e)]).unwrap();
    assert!(
        matches!(&out[0], Outcome::Refused(e) if e.code() == "party_exists"),
        "{out:?}"
    );
    // The same id with another payload: exists_with_different_payload.
    again["id"] = "reg-inst-00000".into();
    let e = crate::support::ledger_entry(&[&op, &key], &again);
    let out = ledger.submit(vec![verified(e)]).unwrap();
    assert!(
        matches!(&out[0], Outcome::ExistsWithDifferentPayload { .. }),
        "{out:?}"
    );
    assert_eq!(
        (
            ledger.log().size(),
            ledger.state().root(),
            ledger.log().checkpoint().text()
        ),
        (size, digest, root)
    );
}

/// A ledger of origin `origin` with the test association declared, and the student
/// `stu-3f9a` registered with `student`'s key.
fn ledger_of(dir: &Path, origin: &str, student: &NoteSigner) -> (Ledger, NoteSigner) {
    let mut ledger = Ledger::create(dir, origin, "operator").unwrap();
    let op = operator(dir);
    let association = crate::support::test_association();
    let mut genesis = crate::support::test_genesis_payload(&op);
    genesis.origin = origin.into();
    genesis.ledger = origin.into();
    let g = Envelope::sign(
        PAYLOAD_TYPE,
        &defaults::genesis_payload(&genesis),
        &[&op, &association],
    )
    .unwrap();
    let registration = serde_json::json!({"kind": "party_registered", "id": "reg-stu-3f9a",
        "ledger": origin, "party": "stu-3f9a", "role": "student", "key": student.vkey()});
    let r = crate::support::ledger_entry(&[&op, &association, student], &registration);
    for e in [g, r] {
        let out = ledger.submit(vec![verified(e)]).unwrap();
        assert!(matches!(out[0], Outcome::Ok(_)), "{out:?}");
    }
    (ledger, op)
}

#[test]
fn a_statement_signed_for_one_ledger_is_refused_by_another() {
    let dir = TempDir::new().unwrap();
    let student = crate::support::party_signer("stu-3f9a", 7);
    let (mut a, _) = ledger_of(&dir.path().join("a"), "lessons.example/city-a", &student);
    let (mut b, _) = ledger_of(&dir.path().join("b"), "lessons.example/city-b", &student);
    // The student revokes their key in ledger A...
    let revoke = serde_json::json!({"kind": "key_revoked", "id": "revoke-1",
        "ledger": "lessons.example/city-a", "party": "stu-3f9a", "key": student.vkey(),
        "reason": "retired"});
    let envelope = crate::support::ledger_entry(&[&student], &revoke);
    let out = a.submit(vec![verified(envelope.clone())]).unwrap();
    assert!(matches!(out[0], Outcome::Ok(_)), "{out:?}");
    // ...and the same signed statement, copied into ledger B, is refused there.
    let before = (b.log().size(), b.state().root());
    let out = b.submit(vec![verified(envelope)]).unwrap();
    assert!(
        matches!(&out[0], Outcome::Refused(e) if e.code() == "wrong_ledger"),
        "{out:?}"
    );
    assert_eq!((b.log().size(), b.state().root()), before);
    // The student still holds their key in B: a statement made for B is accepted.
    let revoke_b = serde_json::json!({"kind": "key_revoked", "id": "revoke-1",
        "ledger": "lessons.example/city-b", "party": "stu-3f9a", "key": student.vkey(),
        "reason": "lost"});
    let out = b
        .submit(vec![verified(crate::support::ledger_entry(
            &[&student],
            &revoke_b,
        ))])
        .unwrap();
    assert!(matches!(out[0], Outcome::Ok(_)), "{out:?}");
}
