//! Balances anyone can check alone (issue 12): every balance answer carries its objects
//! with state proofs against the signed state note of the checkpoint's size, objects
//! list what is open on them, and `client balance` refuses each way a server can lie,
//! each with its own code.
//!
//! The lies are told by a real socket: [`LyingServer`] serves, on loopback, an answer
//! taken from the real server and altered, and the real client reads it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use lesson_ledger::api::{AllocationAnswer, ClaimAnswer, PledgeAnswer, StudentAnswer};
use lesson_ledger::client::proofs::{check_absence, state_root};
use lesson_ledger::client::{Client as LedgerClient, ClientError, Trust};
use lesson_ledger::ledger::Table;
use lesson_ledger::log::note::{sign_note, SignedCheckpoint};
use serde_json::{json, Value};

use crate::http::{assert_problem, ok, scenario, Fixture};
use crate::support::party_signer;

/// Most requests a lying server answers before it stops (a client reads one page).
const LIES_MAX: usize = 8;

/// A server on loopback that answers every request with one fixed JSON body.
struct LyingServer {
    url: String,
    thread: Option<JoinHandle<()>>,
}

impl LyingServer {
    fn serve(body: &Value) -> LyingServer {
        LyingServer::serve_status("200 OK", "application/json", body)
    }

    /// Answers with `status` (e.g. `404 Not Found`) and `body`.
    fn serve_status(status: &str, content_type: &str, body: &Value) -> LyingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let body = body.to_string().into_bytes();
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming().take(LIES_MAX) {
                let Ok(mut stream) = stream else { return };
                // Read the request head (a GET has no body).
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    request.push(byte[0]);
                }
                if request.is_empty() {
                    return; // the stop signal
                }
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        LyingServer {
            url,
            thread: Some(thread),
        }
    }
}

impl Drop for LyingServer {
    fn drop(&mut self) {
        // An empty connection ends the accept loop.
        let _ = std::net::TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The donor proposes lesson `lesson` on the scenario's allocation `a-0001`.
pub(crate) fn propose(f: &Fixture, lesson: &str) {
    let donor = party_signer("inst-0007", 7);
    ok(
        f,
        &[&donor],
        json!({"kind": "lesson_proposed", "id": format!("prop-{lesson}"), "lesson": lesson,
               "allocation": "a-0001"}),
    );
}

pub(crate) fn get(f: &Fixture, path: &str) -> Value {
    let response = f.get(path);
    assert_eq!(response.status(), 200, "{path}");
    response.json().unwrap()
}

/// What `client balance` says of `answer` served as the student's balance.
fn student_verdict(f: &Fixture, answer: &Value) -> Result<StudentAnswer, ClientError> {
    let liar = LyingServer::serve(answer);
    LedgerClient::new(&liar.url)
        .unwrap()
        .balance::<StudentAnswer>("stu-3f9a", &f.verifier())
}

/// What `client balance` says of `answer` served as allocation `a-0001`.
fn allocation_verdict(f: &Fixture, answer: &Value) -> Result<AllocationAnswer, ClientError> {
    let liar = LyingServer::serve(answer);
    LedgerClient::new(&liar.url)
        .unwrap()
        .balance::<AllocationAnswer>("a-0001", &f.verifier())
}

fn refused_with<T: std::fmt::Debug>(verdict: Result<T, ClientError>, code: &str) {
    match verdict {
        Ok(answer) => panic!("accepted, expected {code}: {answer:?}"),
        Err(e) => assert_eq!(e.code(), code, "{e}"),
    }
}

#[test]
fn a_family_sees_every_lesson_proposed_on_its_allocations_proven() {
    let f = Fixture::new();
    scenario(&f);
    propose(&f, "l-0001");
    let client = LedgerClient::new(&f.server.url()).unwrap();
    let answer: StudentAnswer = client.balance("stu-3f9a", &f.verifier()).unwrap();
    assert_eq!(answer.claims.len(), 1);
    assert_eq!(answer.claims[0].object.allocations.len(), 1);
    assert_eq!(answer.allocations.len(), 1);
    let allocation = &answer.allocations[0].object;
    assert_eq!(allocation.lessons.pending().0, 1);
    assert_eq!(allocation.open_lessons.len(), 1);
    assert_eq!(allocation.open_lessons[0].lesson.as_str(), "l-0001");
    assert!(allocation.open_lessons[0].window_end_micros > 0);
    // The same lesson through the allocation's own answer.
    let answer: AllocationAnswer = client.balance("a-0001", &f.verifier()).unwrap();
    assert_eq!(
        answer.allocation.object.open_lessons,
        allocation.open_lessons
    );
}

#[test]
fn a_server_that_omits_a_proposal_from_the_familys_view_is_caught() {
    let f = Fixture::new();
    scenario(&f);
    propose(&f, "l-0001");
    let honest = get(&f, "/v1/students/stu-3f9a");
    student_verdict(&f, &honest).expect("the honest answer verifies");

    // The proposal left out of the allocation, its figures made to add up without it.
    let mut hidden = honest.clone();
    let allocation = &mut hidden["allocations"][0]["object"];
    allocation["open_lessons"] = json!([]);
    allocation["pending"] = json!(0);
    allocation["remaining"] = json!(allocation["remaining"].as_u64().unwrap() + 1);
    refused_with(student_verdict(&f, &hidden), "proof_value_mismatch");

    // The whole allocation left out of the answer.
    let mut hidden = honest.clone();
    hidden["allocations"] = json!([]);
    refused_with(student_verdict(&f, &hidden), "open_objects_mismatch");

    // The allocation left out of the claim's list, and of the answer.
    let mut hidden = honest.clone();
    hidden["claims"][0]["object"]["allocations"] = json!([]);
    hidden["allocations"] = json!([]);
    refused_with(student_verdict(&f, &hidden), "proof_value_mismatch");

    // The open list emptied while the lesson stays pending: the figures give it away.
    let mut hidden = honest.clone();
    hidden["allocations"][0]["object"]["open_lessons"] = json!([]);
    refused_with(student_verdict(&f, &hidden), "open_lessons_mismatch");
}

#[test]
fn stale_objects_and_objects_of_another_size_are_refused() {
    let f = Fixture::new();
    scenario(&f);
    let before = get(&f, "/v1/allocations/a-0001");
    propose(&f, "l-0001");
    let now = get(&f, "/v1/allocations/a-0001");
    allocation_verdict(&f, &now).expect("the current answer verifies");
    allocation_verdict(&f, &before).expect("an older answer verifies on its own");

    // The object as it was, with today's proof: its value is not the proven one.
    let mut stale = now.clone();
    stale["allocation"]["object"] = before["allocation"]["object"].clone();
    refused_with(allocation_verdict(&f, &stale), "proof_value_mismatch");

    // The object and its proof as they were, with today's note and checkpoint.
    let mut other_size = now.clone();
    other_size["allocation"] = before["allocation"].clone();
    refused_with(allocation_verdict(&f, &other_size), "proof_root_mismatch");

    // Today's object and proof with the note of an earlier size.
    let mut old_note = now.clone();
    old_note["state_note"] = before["state_note"].clone();
    refused_with(
        allocation_verdict(&f, &old_note),
        "state_note_size_mismatch",
    );
}

#[test]
fn altered_figures_are_refused() {
    let f = Fixture::new();
    scenario(&f);
    let honest = get(&f, "/v1/students/stu-3f9a");
    // Parts that no longer add up to the value.
    let mut unbalanced = honest.clone();
    let claim = &mut unbalanced["claims"][0]["object"];
    claim["consumed"] = json!(claim["consumed"].as_u64().unwrap() + 1);
    refused_with(student_verdict(&f, &unbalanced), "balance_unbalanced");
    // Parts that add up, moved from one to another: not what the ledger holds.
    let mut moved = honest.clone();
    let claim = &mut moved["claims"][0]["object"];
    claim["reserved"] = json!(claim["reserved"].as_u64().unwrap() - 1);
    claim["unreserved"] = json!(claim["unreserved"].as_u64().unwrap() + 1);
    refused_with(student_verdict(&f, &moved), "proof_value_mismatch");
}

#[test]
fn wrong_proofs_and_notes_are_refused() {
    let f = Fixture::new();
    scenario(&f);
    let honest = get(&f, "/v1/allocations/a-0001");
    let claim = get(&f, "/v1/claims/c-0001");

    // A sibling changed: the proof leads to another root.
    let mut bent = honest.clone();
    let siblings = bent["allocation"]["proof"]["siblings"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bytes = base64_decode(&siblings);
    assert!(
        !bytes.is_empty(),
        "a proof in a state of many objects has siblings"
    );
    bytes[0] ^= 1;
    bent["allocation"]["proof"]["siblings"] = json!(base64_encode(&bytes));
    refused_with(allocation_verdict(&f, &bent), "proof_root_mismatch");

    // Another object's proof.
    let mut borrowed = honest.clone();
    borrowed["allocation"]["proof"] = claim["claim"]["proof"].clone();
    refused_with(allocation_verdict(&f, &borrowed), "proof_key_mismatch");

    // Another allocation, with its own valid proof, for the one asked.
    let liar = LyingServer::serve(&honest);
    let verdict = LedgerClient::new(&liar.url)
        .unwrap()
        .balance::<AllocationAnswer>("a-0002", &f.verifier());
    refused_with(verdict, "state_object_mismatch");

    // A note signed by another key.
    let mut forged = honest.clone();
    let note = honest["state_note"].as_str().unwrap();
    let body = &note[..note.find("\n\n").unwrap() + 1];
    let other = party_signer("operator", 77);
    forged["state_note"] = json!(sign_note(body, &other).unwrap());
    refused_with(allocation_verdict(&f, &forged), "state_note_invalid");

    // A note of the first format, signed by the operator: it commits to no map root.
    let mut old = honest.clone();
    let lines: Vec<&str> = body.lines().collect();
    let old_body = format!(
        "lesson-ledger/state-digest/v1\n{}\n{}\n{}\n",
        lines[1], lines[2], lines[3]
    );
    old["state_note"] = json!(sign_note(&old_body, &f.operator).unwrap());
    refused_with(allocation_verdict(&f, &old), "state_note_old_format");
}

#[test]
fn an_unknown_id_comes_with_a_proof_of_its_absence() {
    let f = Fixture::new();
    scenario(&f);
    // A present object's proof is no proof of absence.
    let problem = assert_problem(f.get("/v1/claims/c-9999"), 404, "claim_not_found");
    let mut present: lesson_ledger::api::Absence =
        serde_json::from_value(problem["absence"].clone()).unwrap();
    let claim: ClaimAnswer = serde_json::from_value(get(&f, "/v1/claims/c-0001")).unwrap();
    present.id = "c-0001".into();
    present.proof = claim.claim.proof;
    present.state_note = claim.state_note;
    present.checkpoint = claim.checkpoint;
    let cp =
        SignedCheckpoint::parse_and_verify(present.checkpoint.as_bytes(), &f.verifier()).unwrap();
    let root = state_root(&present.state_note, &cp, &f.verifier()).unwrap();
    let err = check_absence(&present, Table::Claim, "c-0001", &root).unwrap_err();
    assert_eq!(err.code(), "proof_absent_key_present");

    for (path, table, id, code) in [
        (
            "/v1/claims/c-9999",
            Table::Claim,
            "c-9999",
            "claim_not_found",
        ),
        (
            "/v1/allocations/a-9999",
            Table::Allocation,
            "a-9999",
            "allocation_not_found",
        ),
        (
            "/v1/pledges/p-9999",
            Table::Pledge,
            "p-9999",
            "pledge_not_found",
        ),
        (
            "/v1/students/stu-0000",
            Table::Student,
            "stu-0000",
            "student_not_found",
        ),
    ] {
        let problem = assert_problem(f.get(path), 404, code);
        let absence: lesson_ledger::api::Absence =
            serde_json::from_value(problem["absence"].clone()).unwrap();
        let cp = SignedCheckpoint::parse_and_verify(absence.checkpoint.as_bytes(), &f.verifier())
            .unwrap();
        let root = state_root(&absence.state_note, &cp, &f.verifier()).unwrap();
        check_absence(&absence, table, id, &root).expect("absent");
        // The same proof does not prove another id absent.
        let err = check_absence(&absence, table, "c-0001", &root).unwrap_err();
        assert_eq!(err.code(), "state_object_mismatch");
    }
}

#[test]
fn the_open_lists_follow_proposals_until_they_are_settled() {
    let f = Fixture::new();
    scenario(&f);
    propose(&f, "l-0001");
    propose(&f, "l-0002");
    let stu = party_signer("stu-3f9a", 3);
    ok(
        &f,
        &[&stu],
        json!({"kind": "lesson_confirmed", "id": "conf-1", "lesson": "l-0001"}),
    );
    let client = LedgerClient::new(&f.server.url()).unwrap();
    let answer: AllocationAnswer = client.balance("a-0001", &f.verifier()).unwrap();
    let open: Vec<&str> = answer
        .allocation
        .object
        .open_lessons
        .iter()
        .map(|l| l.lesson.as_str())
        .collect();
    assert_eq!(open, ["l-0002"]);
    // The student declines the allocation: it stays on the claim while l-0002 is open.
    ok(
        &f,
        &[&stu],
        json!({"kind": "allocation_declined", "id": "decl-1", "allocation": "a-0001"}),
    );
    let claim: ClaimAnswer = client.balance("c-0001", &f.verifier()).unwrap();
    assert_eq!(claim.claim.object.allocations.len(), 1);
    ok(
        &f,
        &[&stu],
        json!({"kind": "lesson_confirmed", "id": "conf-2", "lesson": "l-0002"}),
    );
    let claim: ClaimAnswer = client.balance("c-0001", &f.verifier()).unwrap();
    assert!(claim.claim.object.allocations.is_empty());
    let student: StudentAnswer = client.balance("stu-3f9a", &f.verifier()).unwrap();
    assert!(student.allocations.is_empty());
}

/// What `client balance` says of `problem` served as the 404 for claim `id`.
fn claim_404_verdict(f: &Fixture, id: &str, problem: &Value) -> Result<ClaimAnswer, ClientError> {
    let liar = LyingServer::serve_status("404 Not Found", "application/problem+json", problem);
    LedgerClient::new(&liar.url)
        .unwrap()
        .balance::<ClaimAnswer>(id, &f.verifier())
}

pub(crate) fn log_size(f: &Fixture) -> u64 {
    let client = LedgerClient::new(&f.server.url()).unwrap();
    client.checkpoint(&f.verifier()).unwrap().checkpoint().size
}

#[test]
fn an_unknown_id_is_reported_absent_only_once_its_proof_is_checked() {
    let f = Fixture::new();
    scenario(&f);
    let client = LedgerClient::new(&f.server.url()).unwrap();
    match client.balance::<ClaimAnswer>("c-9999", &f.verifier()) {
        Err(ClientError::Absent { table, id, size }) => {
            assert_eq!(
                (table, id.as_str(), size),
                ("claim", "c-9999", log_size(&f))
            );
        }
        other => panic!("expected a proven absence, got {other:?}"),
    }
    let verifier = f.verifier();
    refused_with(
        client.balance::<StudentAnswer>("stu-0000", &verifier),
        "object_absent",
    );
    refused_with(
        client.balance::<AllocationAnswer>("a-9999", &verifier),
        "object_absent",
    );
    refused_with(
        client.balance::<PledgeAnswer>("p-9999", &verifier),
        "object_absent",
    );
    let trust = Trust::operator_only(f.verifier());
    match client.institution_report("inst-0007", &trust) {
        Err(e) => assert_eq!(e.code(), "object_absent", "{e}"),
        Ok(report) => panic!("an institution never closed has no report: {report:?}"),
    }
}

#[test]
fn a_404_whose_absence_proof_is_missing_malformed_or_for_another_key_or_root_is_refused() {
    let f = Fixture::new();
    scenario(&f);
    let before = assert_problem(f.get("/v1/claims/c-9999"), 404, "claim_not_found");
    propose(&f, "l-0001"); // a batch: another state, another root
    let honest = assert_problem(f.get("/v1/claims/c-9999"), 404, "claim_not_found");
    let other = assert_problem(f.get("/v1/claims/c-9998"), 404, "claim_not_found");
    let verdict = |problem: &Value| claim_404_verdict(&f, "c-9999", problem);
    refused_with(verdict(&honest), "object_absent");

    // No proof at all: a problem without it, or no problem document.
    let mut missing = honest.clone();
    missing.as_object_mut().unwrap().remove("absence");
    refused_with(verdict(&missing), "absence_proof_missing");
    refused_with(verdict(&json!("not found")), "absence_proof_missing");

    // A proof that does not decode: siblings not base64, a member missing.
    let mut malformed = honest.clone();
    malformed["absence"]["proof"]["siblings"] = json!("AAA");
    refused_with(verdict(&malformed), "absence_proof_malformed");
    let mut malformed = honest.clone();
    malformed["absence"]
        .as_object_mut()
        .unwrap()
        .remove("state_note");
    refused_with(verdict(&malformed), "absence_proof_malformed");

    // Another key's absence (c-9998's real proof), said to be c-9999's.
    let mut other_key = honest.clone();
    other_key["absence"]["proof"] = other["absence"]["proof"].clone();
    refused_with(verdict(&other_key), "proof_key_mismatch");
    // An absence about another object altogether.
    refused_with(verdict(&other), "state_object_mismatch");

    // Against another root: the proof as it was before the last batch, today's note.
    let mut stale = honest.clone();
    stale["absence"]["proof"] = before["absence"]["proof"].clone();
    refused_with(verdict(&stale), "proof_root_mismatch");
    // Today's proof with the note of the earlier size.
    let mut old_note = honest.clone();
    old_note["absence"]["state_note"] = before["absence"]["state_note"].clone();
    refused_with(verdict(&old_note), "state_note_size_mismatch");

    // An object that exists said absent: its proof of presence offered as absence.
    let claim = get(&f, "/v1/claims/c-0001");
    let mut present = honest.clone();
    present["absence"]["id"] = json!("c-0001");
    present["absence"]["proof"] = claim["claim"]["proof"].clone();
    present["absence"]["state_note"] = claim["state_note"].clone();
    present["absence"]["checkpoint"] = claim["checkpoint"].clone();
    refused_with(
        claim_404_verdict(&f, "c-0001", &present),
        "proof_absent_key_present",
    );
}

/// `answer` with the allocation's proof's `field` set to `value`.
fn with_proof_field(answer: &Value, field: &str, value: Value) -> Value {
    let mut changed = answer.clone();
    changed["allocation"]["proof"][field] = value;
    changed
}

#[test]
fn malformed_and_truncated_proofs_in_an_answer_are_refused_each_with_its_code() {
    let f = Fixture::new();
    scenario(&f);
    let honest = get(&f, "/v1/allocations/a-0001");
    let proof = &honest["allocation"]["proof"];
    let siblings = base64_decode(proof["siblings"].as_str().unwrap());
    let key = proof["key"].as_str().unwrap().to_owned();
    let verdict = |answer: &Value| allocation_verdict(&f, answer);

    // Malformed: not base64, not whole hashes, a key not in lowercase hex or too short,
    // more siblings than a key has bits.
    for (field, value, code) in [
        ("siblings", json!("AAA"), "proof_malformed"),
        (
            "siblings",
            json!(base64_encode(&siblings[..siblings.len() - 1])),
            "proof_malformed",
        ),
        ("key", json!(key.to_uppercase()), "proof_malformed"),
        ("key", json!(&key[..62]), "proof_malformed"),
        (
            "siblings",
            json!(base64_encode(&[7u8; 32 * 257])),
            "proof_too_deep",
        ),
    ] {
        refused_with(verdict(&with_proof_field(&honest, field, value)), code);
    }

    // Truncated by whole siblings, at every depth: the hashes no longer lead to the
    // signed root, or the cut ends the path beside an empty subtree, which no tree does.
    for len in 0..siblings.len() / 32 {
        let cut = &siblings[..32 * len];
        let expected = match cut.rchunks(32).next() {
            Some(last) if last == [0u8; 32] => "proof_malformed",
            _ => "proof_root_mismatch",
        };
        let answer = with_proof_field(&honest, "siblings", json!(base64_encode(cut)));
        refused_with(verdict(&answer), expected);
    }

    // The leaf taken away: a proof that the object is absent, offered for one served.
    let absent = with_proof_field(&honest, "leaf", Value::Null);
    refused_with(verdict(&absent), "proof_key_absent");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
