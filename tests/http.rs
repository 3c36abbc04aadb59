//! The HTTP service over a real socket (127.0.0.1:0), with a real ledger in a temporary
//! directory and real signatures: every endpoint, every error status, concurrency and
//! shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lesson_ledger::http::entries::{BatchResults, EntryResult, REQUEST_BODY_BYTES_MAX};
use lesson_ledger::http::reads::{ConsistencyProof, InclusionProof, LogInfo};
use lesson_ledger::http::sequencer::{QueueError, Sequencer};
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::envelope::{Envelope, KeyCache};
use lesson_ledger::log::hash::Hash;
use lesson_ledger::log::note::{NoteSigner, NoteVerifier, SignedCheckpoint};
use lesson_ledger::log::proof::{verify_consistency, verify_inclusion};
use lesson_ledger::log::store::Outcome;
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::{ledger_entry, operator_of, party_signer, register_institution};

pub const ORIGIN: &str = crate::support::TEST_ORIGIN;

/// A new ledger with its genesis (as `lesson-ledger init` makes it) and its operator.
pub fn ledger_with_genesis(dir: &Path) -> (Ledger, NoteSigner) {
    let mut ledger = Ledger::create(dir, ORIGIN, "operator").expect("create ledger");
    let operator = operator_of(dir);
    // Origin `TEST_ORIGIN`, declaring the test association (see `support`).
    let envelope = crate::support::test_genesis(&operator);
    let verified = envelope
        .verify(&KeyCache::self_certifying())
        .expect("verifies");
    let outcome = ledger.submit(vec![verified]).expect("submit genesis");
    assert!(
        matches!(outcome.as_slice(), [Outcome::Ok(_)]),
        "{outcome:?}"
    );
    (ledger, operator)
}

pub struct Fixture {
    pub tmp: TempDir,
    pub server: Server,
    pub operator: NoteSigner,
    pub client: Client,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with_config(ServerConfig::default())
    }

    pub fn with_config(config: ServerConfig) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (ledger, operator) = ledger_with_genesis(&tmp.path().join("data"));
        let server = Server::start(ledger, "127.0.0.1:0".parse().expect("addr"), config)
            .expect("start server");
        Fixture {
            tmp,
            server,
            operator,
            client: Client::new(),
        }
    }

    /// Stops the server gracefully and serves the same directory again.
    pub fn restart(self) -> Fixture {
        let Fixture {
            tmp,
            server,
            operator,
            client,
        } = self;
        server.shutdown().expect("clean shutdown");
        let (ledger, _) = Ledger::open(&tmp.path().join("data")).expect("reopen");
        let server = Server::start(
            ledger,
            "127.0.0.1:0".parse().expect("addr"),
            ServerConfig::default(),
        )
        .expect("restart server");
        Fixture {
            tmp,
            server,
            operator,
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().expect("GET")
    }

    pub fn post(&self, body: impl Into<reqwest::blocking::Body>) -> Response {
        self.client
            .post(self.url("/v1/entries"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("POST")
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.operator.verifier()
    }
}

/// Asserts an RFC 9457 problem with this status and code, and returns it.
pub fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{response:?}");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("")),
        Some("application/problem+json"),
        "{response:?}"
    );
    let body: Value = response.json().expect("problem JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], format!("urn:lesson-ledger:problem:{code}"));
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

fn hash(b64: &str) -> Hash {
    Hash::from_base64(b64).expect("base64 hash")
}

/// Checks a receipt completely: signed checkpoint, inclusion of the leaf in it.
pub fn check_receipt(result: &EntryResult, verifier: &NoteVerifier) -> u64 {
    let receipt = result.receipt.as_ref().expect("receipt");
    let checkpoint = SignedCheckpoint::parse_and_verify(receipt.checkpoint.as_bytes(), verifier)
        .expect("receipt checkpoint verifies");
    let proof: Vec<Hash> = receipt.inclusion_proof.iter().map(|h| hash(h)).collect();
    verify_inclusion(
        &hash(&receipt.leaf_hash),
        receipt.index,
        checkpoint.checkpoint().size,
        &proof,
        &checkpoint.checkpoint().root,
    )
    .expect("inclusion proof verifies");
    receipt.index
}

pub fn current_checkpoint(f: &Fixture) -> SignedCheckpoint {
    let response = f.get("/checkpoint");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    SignedCheckpoint::parse_and_verify(&response.bytes().expect("body"), &f.verifier())
        .expect("served checkpoint verifies under the operator key")
}

#[test]
fn health_log_and_checkpoint() {
    let f = Fixture::new();
    let response = f.get("/healthz");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().unwrap(), "ok\n");

    let info: LogInfo = f.get("/v1/log").json().expect("log info");
    assert_eq!(info.origin, ORIGIN);
    assert_eq!(info.operator_vkey, f.operator.vkey());
    assert_eq!(info.size, 1);
    let genesis: Value = serde_json::from_str(info.genesis.expect("genesis").get()).unwrap();
    assert_eq!(genesis["kind"], "genesis");
    assert_eq!(genesis["operator_key"], f.operator.vkey());

    let checkpoint = current_checkpoint(&f);
    assert_eq!(checkpoint.checkpoint().size, 1);
    assert_eq!(checkpoint.checkpoint().origin.as_str(), ORIGIN);
}

#[test]
fn a_submitted_entry_gets_a_verifiable_receipt_and_can_be_read_back() {
    let f = Fixture::new();
    let envelope = register_institution(&f.operator, 1);
    let response = f.post(envelope.to_json());
    assert_eq!(response.status(), StatusCode::OK);
    let result: EntryResult = response.json().expect("result");
    assert_eq!(result.status, "ok");
    let index = check_receipt(&result, &f.verifier());
    assert_eq!(index, 1);

    // The same statement again: `exists`, with the first receipt's index.
    let again: EntryResult = f.post(envelope.to_json()).json().expect("result");
    assert_eq!(again.status, "exists");
    assert_eq!(check_receipt(&again, &f.verifier()), 1);

    // Read back by index and by id: the same envelope, the same leaf hash.
    let by_index: Value = f.get("/v1/entries/1").json().unwrap();
    let entry_id = envelope.entry_id().to_string();
    assert_eq!(by_index["entry_id"], entry_id);
    assert_eq!(
        by_index["leaf_hash"],
        result.receipt.as_ref().unwrap().leaf_hash
    );
    let served = Envelope::from_json(by_index["envelope"].to_string().as_bytes()).unwrap();
    assert_eq!(served, envelope);
    let by_id: Value = f
        .get(&format!("/v1/entries/by-id/{entry_id}"))
        .json()
        .unwrap();
    assert_eq!(by_id, by_index);
    assert!(by_index["time_micros"].as_u64().unwrap() > 0);
}

#[test]
fn entry_reads_refuse_what_is_not_there() {
    let f = Fixture::new();
    assert_problem(f.get("/v1/entries/1"), 404, "entry_not_found");
    assert_problem(f.get("/v1/entries/-1"), 400, "malformed_index");
    assert_problem(f.get("/v1/entries/abc"), 400, "malformed_index");
    assert_problem(
        f.get("/v1/entries/99999999999999999999999"),
        400,
        "malformed_index",
    );
    assert_problem(
        f.get(&format!("/v1/entries/by-id/{}", "ab".repeat(32))),
        404,
        "entry_not_found",
    );
    assert_problem(f.get("/v1/entries/by-id/xyz"), 400, "malformed_entry_id");
    assert_problem(f.get("/no/such/route"), 404, "not_found");
    let response = f.client.delete(f.url("/checkpoint")).send().unwrap();
    assert_problem(response, 405, "method_not_allowed");
}

#[test]
fn proofs_verify_against_served_checkpoints() {
    let f = Fixture::new();
    let before = current_checkpoint(&f);
    for n in 1..=6 {
        let r: EntryResult = f
            .post(register_institution(&f.operator, n).to_json())
            .json()
            .unwrap();
        assert_eq!(r.status, "ok");
    }
    let after = current_checkpoint(&f);
    assert_eq!(after.checkpoint().size, 7);

    for index in 0..7 {
        let p: InclusionProof = f
            .get(&format!("/v1/proofs/inclusion?index={index}"))
            .json()
            .unwrap();
        assert_eq!((p.index, p.size), (index, 7));
        let proof: Vec<Hash> = p.proof.iter().map(|h| hash(h)).collect();
        verify_inclusion(
            &hash(&p.leaf_hash),
            index,
            7,
            &proof,
            &after.checkpoint().root,
        )
        .expect("inclusion verifies");
    }
    // An explicit older size: the proof is against that tree.
    let p: InclusionProof = f.get("/v1/proofs/inclusion?index=0&size=1").json().unwrap();
    assert!(p.proof.is_empty());
    assert_eq!(hash(&p.leaf_hash), before.checkpoint().root);

    let c: ConsistencyProof = f.get("/v1/proofs/consistency?from=1&to=7").json().unwrap();
    let proof: Vec<Hash> = c.proof.iter().map(|h| hash(h)).collect();
    verify_consistency(
        1,
        7,
        &before.checkpoint().root,
        &after.checkpoint().root,
        &proof,
    )
    .expect("consistency verifies");
    let c: ConsistencyProof = f.get("/v1/proofs/consistency?from=3").json().unwrap();
    assert_eq!(c.to, 7);

    for (path, status, code) in [
        ("/v1/proofs/inclusion", 400, "missing_parameter"),
        ("/v1/proofs/inclusion?index=7", 400, "out_of_range"),
        ("/v1/proofs/inclusion?index=0&size=8", 400, "out_of_range"),
        ("/v1/proofs/inclusion?index=x", 400, "malformed_parameter"),
        (
            "/v1/proofs/inclusion?index=1&bogus=2",
            400,
            "unknown_parameter",
        ),
        (
            "/v1/proofs/inclusion?index=1&index=2",
            400,
            "duplicate_parameter",
        ),
        ("/v1/proofs/consistency", 400, "missing_parameter"),
        ("/v1/proofs/consistency?from=5&to=3", 400, "out_of_range"),
        ("/v1/proofs/consistency?from=1&to=8", 400, "out_of_range"),
    ] {
        assert_problem(f.get(path), status, code);
    }
}

#[test]
fn refused_submissions_are_problems_with_their_code() {
    let f = Fixture::new();
    let good = register_institution(&f.operator, 1);
    let good_json: Value = serde_json::from_str(&good.to_json()).unwrap();

    assert_problem(f.post("{not json"), 400, "malformed_json");
    assert_problem(f.post(""), 400, "malformed_json");
    let mut unknown = good_json.clone();
    unknown["extra"] = json!(1);
    assert_problem(f.post(unknown.to_string()), 400, "unknown_field");
    let mut missing = good_json.clone();
    missing.as_object_mut().unwrap().remove("payload");
    assert_problem(f.post(missing.to_string()), 400, "missing_field");

    // One bit of the signature flipped.
    let mut flipped = good_json.clone();
    let sig = flipped["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let mut raw = base64_decode(&sig);
    raw[0] ^= 1;
    flipped["signatures"][0]["sig"] = json!(base64_encode(&raw));
    assert_problem(f.post(flipped.to_string()), 400, "bad_signature");

    // Signed by a key other than the one named in keyid.
    let other = party_signer("inst-00001", 999);
    let mut wrong_key = good_json.clone();
    let forged = ledger_entry(&[&other], &json!({"kind": "x"}));
    let forged: Value = serde_json::from_str(&forged.to_json()).unwrap();
    wrong_key["signatures"][1]["sig"] = forged["signatures"][0]["sig"].clone();
    assert_problem(f.post(wrong_key.to_string()), 400, "bad_signature");

    // A rule refusal: an approval of a pledge that does not exist.
    let refused = ledger_entry(
        &[&f.operator],
        &json!({"kind": "pledge_approved", "id": "appr-1", "pledge": "p-404"}),
    );
    let problem = assert_problem(f.post(refused.to_json()), 422, "pledge_unknown");
    assert!(
        problem["detail"].as_str().unwrap().contains("p-404"),
        "{problem}"
    );

    // The id of an accepted entry reused by another statement.
    assert_eq!(f.post(good.to_json()).status(), StatusCode::OK);
    let key = party_signer("inst-00002", 2);
    let reuse = ledger_entry(
        &[&f.operator, &key],
        &json!({"kind": "party_registered", "id": "reg-inst-00001", "party": "inst-00002",
                "role": "institution", "key": key.vkey()}),
    );
    assert_problem(
        f.post(reuse.to_json()),
        409,
        "exists_with_different_payload",
    );
    assert_eq!(
        current_checkpoint(&f).checkpoint().size,
        2,
        "nothing refused was logged"
    );
}

/// Sends `head` and then `body` chunks on a raw connection (ignoring a server that
/// stops reading), and returns what the server answered.
pub fn raw_exchange(f: &Fixture, head: &str, body: &[&[u8]]) -> String {
    let mut stream = TcpStream::connect(f.server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(head.as_bytes());
    for chunk in body {
        if stream.write_all(chunk).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn an_oversize_body_is_413_before_it_is_read() {
    let f = Fixture::new();
    // Declared too large: refused from the headers alone, nothing of the body sent.
    let answer = raw_exchange(
        &f,
        &format!(
            "POST /v1/entries HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            REQUEST_BODY_BYTES_MAX + 1
        ),
        &[],
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json") && answer.contains("body_too_large"));
    // Streamed without a length (chunked): refused once the limit is crossed.
    let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
    let chunks: Vec<&[u8]> = (0..=REQUEST_BODY_BYTES_MAX / 0x10000)
        .map(|_| chunk.as_bytes())
        .collect();
    let answer = raw_exchange(
        &f,
        "POST /v1/entries HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n",
        &chunks,
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    // Exactly at the limit is read (and refused for what it is, not for its size).
    let at_limit = vec![b' '; REQUEST_BODY_BYTES_MAX];
    assert_problem(f.post(at_limit), 400, "envelope_too_large");
    // A single envelope over its own cap is refused by the envelope parser.
    let over = format!(
        "{{\"payloadType\":\"x\",\"payload\":\"{}\",\"signatures\":[]}}",
        "A".repeat(lesson_ledger::limits::ENVELOPE_BYTES_MAX)
    );
    assert_problem(f.post(over), 400, "envelope_too_large");
}

#[test]
fn a_batch_answers_each_entry() {
    let f = Fixture::new();
    let first = register_institution(&f.operator, 1);
    assert_eq!(f.post(first.to_json()).status(), StatusCode::OK);
    let mut bad_sig: Value =
        serde_json::from_str(&register_institution(&f.operator, 3).to_json()).unwrap();
    bad_sig["signatures"][0]["sig"] = json!(base64_encode(&[0u8; 64]));
    let refused = ledger_entry(
        &[&f.operator],
        &json!({"kind": "pledge_approved", "id": "appr-1", "pledge": "p-404"}),
    );
    let entries: Vec<Value> = [
        register_institution(&f.operator, 2).to_json(),
        first.to_json(),
        bad_sig.to_string(),
        "{\"payloadType\":1}".to_string(),
        refused.to_json(),
        register_institution(&f.operator, 4).to_json(),
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect();
    let response = f.post(json!({ "entries": entries }).to_string());
    assert_eq!(response.status(), StatusCode::OK);
    let results: BatchResults = response.json().unwrap();
    let statuses: Vec<&str> = results.results.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "ok",
            "exists",
            "bad_signature",
            "malformed_json",
            "pledge_unknown",
            "ok"
        ]
    );
    assert_eq!(check_receipt(&results.results[0], &f.verifier()), 2);
    assert_eq!(check_receipt(&results.results[1], &f.verifier()), 1);
    assert_eq!(check_receipt(&results.results[5], &f.verifier()), 3);
    for r in &results.results[2..5] {
        assert!(r.receipt.is_none() && r.error.is_some(), "{r:?}");
    }

    assert_problem(f.post(r#"{"entries": []}"#), 400, "empty_batch");
    assert_problem(f.post(r#"{"entries": {}}"#), 400, "malformed_batch");
    assert_problem(f.post(r#"{"entries": [], "x": 1}"#), 400, "malformed_batch");
    let many = format!("{{\"entries\":[{}]}}", vec!["{}"; 1025].join(","));
    assert_problem(f.post(many), 400, "batch_too_large");
}

#[test]
fn sixty_four_concurrent_writers_lose_and_duplicate_nothing() {
    const WRITERS: u64 = 64;
    const EACH: u64 = 8;
    let f = Fixture::new();
    let url = f.url("/v1/entries");
    let results: Vec<Vec<(u64, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let url = url.clone();
                let operator = &f.operator;
                s.spawn(move || {
                    let client = Client::new();
                    (0..EACH)
                        .map(|i| {
                            let n = 1 + w * EACH + i;
                            let envelope = register_institution(operator, n);
                            let r: EntryResult = client
                                .post(&url)
                                .body(envelope.to_json())
                                .send()
                                .expect("POST")
                                .json()
                                .expect("result");
                            assert_eq!(r.status, "ok", "{r:?}");
                            let receipt = r.receipt.expect("receipt");
                            assert_eq!(receipt.entry_id, envelope.entry_id().to_string());
                            (receipt.index, receipt.entry_id)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    });
    let mut indexes: Vec<u64> = results.iter().flatten().map(|(i, _)| *i).collect();
    indexes.sort_unstable();
    let expected: Vec<u64> = (1..=WRITERS * EACH).collect();
    assert_eq!(indexes, expected, "every entry once, no gaps");
    assert_eq!(current_checkpoint(&f).checkpoint().size, 1 + WRITERS * EACH);
    for (index, entry_id) in results.iter().flatten() {
        let v: Value = f
            .get(&format!("/v1/entries/by-id/{entry_id}"))
            .json()
            .unwrap();
        assert_eq!(v["index"], *index);
    }
}

#[test]
fn shutdown_finishes_in_flight_appends_and_they_survive_a_restart() {
    let f = Fixture::new();
    let url = f.url("/v1/entries");
    let operator = &f.operator;
    let acknowledged: Vec<String> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..16u64)
            .map(|w| {
                let url = url.clone();
                s.spawn(move || {
                    let client = Client::new();
                    let mut acked = Vec::new();
                    for i in 0..50 {
                        let envelope = register_institution(operator, 1 + w * 50 + i);
                        let Ok(response) = client.post(&url).body(envelope.to_json()).send() else {
                            break;
                        };
                        match response.status().as_u16() {
                            200 => acked.push(envelope.entry_id().to_string()),
                            503 => break,
                            other => panic!("unexpected {other}"),
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150));
        let Fixture { tmp, server, .. } = f;
        server.shutdown().expect("clean shutdown");
        let acked: Vec<String> = writers
            .into_iter()
            .flat_map(|h| h.join().expect("writer"))
            .collect();
        let (ledger, report) = Ledger::open(&tmp.path().join("data")).expect("reopen");
        assert!(report.cut.is_none(), "a clean shutdown leaves no torn tail");
        for id in &acked {
            let id = id.parse().expect("entry id");
            assert!(
                ledger.log().index_of(&id).unwrap().is_some(),
                "acknowledged entry lost"
            );
        }
        acked
    });
    assert!(!acknowledged.is_empty());
}

#[test]
fn a_slow_client_is_timed_out() {
    let f = Fixture::with_config(ServerConfig {
        request_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    });
    let answer = raw_exchange(
        &f,
        "POST /v1/entries HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 100\r\n\r\n{\"pay",
        &[],
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    // The server is still fine.
    assert_eq!(f.get("/healthz").status(), StatusCode::OK);
}

#[test]
fn a_full_queue_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (ledger, operator) = ledger_with_genesis(tmp.path());
    let ledger = Arc::new(RwLock::new(ledger));
    let (sequencer, writer) = Sequencer::with_capacity(Arc::clone(&ledger), 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let verified = |n| {
        register_institution(&operator, n)
            .verify(&KeyCache::self_certifying())
            .unwrap()
    };
    // Hold the writer off the ledger, so the first job keeps its place in the queue.
    let guard = ledger.write().unwrap();
    let first = {
        let sequencer = sequencer.clone();
        let entry = verified(1);
        rt.spawn(async move { sequencer.submit(vec![entry]).await })
    };
    std::thread::sleep(Duration::from_millis(50));
    let second = rt.block_on(sequencer.submit(vec![verified(2)]));
    assert_eq!(second.err(), Some(QueueError::Full));
    drop(guard);
    let first = rt
        .block_on(first)
        .unwrap()
        .expect("queued")
        .expect("written");
    assert!(matches!(first.as_slice(), [Outcome::Ok(_)]));
    // Room again once the first was answered.
    let third = rt
        .block_on(sequencer.submit(vec![verified(3)]))
        .unwrap()
        .unwrap();
    assert!(matches!(third.as_slice(), [Outcome::Ok(_)]));
    rt.block_on(sequencer.stop());
    writer.join().unwrap();
    assert_eq!(
        rt.block_on(sequencer.submit(vec![verified(4)])).err(),
        Some(QueueError::Stopped)
    );
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

pub fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn the_serve_command_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (ledger, _) = ledger_with_genesis(&data);
    ledger.close().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let info: LogInfo = reqwest::blocking::get(format!("{url}/v1/log"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info.size, 1);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean shutdown");
    // The ledger opens again without anything to recover.
    let (_, report) = Ledger::open(&data).unwrap();
    assert!(report.cut.is_none());
}

const EVIDENCE: &str = "4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f";

/// Posts `payload` signed by `signers`; asserts it was appended.
pub fn ok(f: &Fixture, signers: &[&NoteSigner], payload: Value) {
    let response = f.post(ledger_entry(signers, &payload).to_json());
    let status = response.status();
    let body = response.text().unwrap();
    assert_eq!(status, StatusCode::OK, "{payload}: {body}");
}

/// A closed institution with a student's claim, a donor's approved pledge and an
/// allocation between the two: every balance endpoint has something to show.
pub fn scenario(f: &Fixture) {
    let op = &f.operator;
    let inst = party_signer("inst-0001", 1);
    let donor = party_signer("inst-0007", 7);
    let stu = party_signer("stu-3f9a", 3);
    for (key, party, role) in [
        (&inst, "inst-0001", "institution"),
        (&donor, "inst-0007", "institution"),
        (&stu, "stu-3f9a", "student"),
    ] {
        ok(
            f,
            &[op, key],
            json!({"kind": "party_registered", "id": format!("reg-{party}"), "party": party,
                   "role": role, "key": key.vkey()}),
        );
    }
    ok(
        f,
        &[op],
        json!({"kind": "institution_closed", "id": "close-1", "institution": "inst-0001",
               "reason": "abnormal_closure"}),
    );
    ok(
        f,
        &[op],
        json!({"kind": "institution_whitelisted", "id": "wl-1", "institution": "inst-0007",
               "reason": "approved_donor"}),
    );
    ok(
        f,
        &[op, &stu],
        json!({"kind": "claim_recorded", "id": "claim-1", "claim": "c-0001", "student": "stu-3f9a",
               "institution": "inst-0001", "lessons": 20, "price_per_lesson_fen": 15_000,
               "subject": "math", "grade": 5, "district": "xuhui", "evidence_digest": EVIDENCE,
               "accepts_online": true, "accepted_districts": []}),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let year = 365 * 86_400 * 1_000_000;
    ok(
        f,
        &[&donor],
        json!({"kind": "pledge_offered", "id": "offer-1", "pledge": "p-0001", "institution": "inst-0007",
               "subject": "math", "grade_min": 4, "grade_max": 6, "seats": 10,
               "lessons_per_seat": 30, "value_per_lesson_fen": 12_000,
               "valid_from_micros": now - year, "valid_until_micros": now + year, "online": true}),
    );
    ok(
        f,
        &[op],
        json!({"kind": "pledge_approved", "id": "approve-1", "pledge": "p-0001"}),
    );
    ok(
        f,
        &[op],
        json!({"kind": "allocation_made", "id": "alloc-1", "allocation": "a-0001",
               "claim": "c-0001", "pledge": "p-0001", "lessons": 5}),
    );
}

/// Checks a proven balance as a client would: the checkpoint under the operator key,
/// each leaf rebuilt from the envelope and proven included.
pub fn check_proven(f: &Fixture, path: &str) -> Value {
    use lesson_ledger::api::ProvenEntry;
    let response = f.get(path);
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let b: Value = response.json().unwrap();
    let checkpoint = b["checkpoint"].as_str().unwrap();
    let cp = SignedCheckpoint::parse_and_verify(checkpoint.as_bytes(), &f.verifier()).unwrap();
    let entries: Vec<ProvenEntry> = serde_json::from_value(b["entries"].clone()).unwrap();
    assert!(!entries.is_empty(), "{path}");
    for e in &entries {
        let envelope = Envelope::from_json(e.envelope.get().as_bytes()).unwrap();
        let leaf = lesson_ledger::log::leaf::encode_parts(
            e.index,
            e.time_micros,
            envelope.payload_type(),
            envelope.payload(),
            envelope.signatures(),
        )
        .unwrap();
        let leaf_hash = lesson_ledger::log::hash::leaf_hash(&leaf);
        assert_eq!(leaf_hash, hash(&e.leaf_hash));
        let proof: Vec<Hash> = e.inclusion_proof.iter().map(|h| hash(h)).collect();
        verify_inclusion(
            &leaf_hash,
            e.index,
            cp.checkpoint().size,
            &proof,
            &cp.checkpoint().root,
        )
        .unwrap_or_else(|err| panic!("{path} entry {}: {err}", e.index));
    }
    b
}

#[test]
fn balances_come_with_proofs_a_client_can_check() {
    let f = Fixture::new();
    scenario(&f);
    let answer = check_proven(&f, "/v1/claims/c-0001");
    let claim = &answer["claim"]["object"];
    assert_eq!(claim["claim"], "c-0001");
    assert_eq!(claim["value"], 300_000);
    // Reserved at the pledge's value per lesson.
    assert_eq!(claim["reserved"], 5 * 12_000);
    let indexes: Vec<u64> = answer["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(json!(indexes), claim["entries"]);

    let pledge = check_proven(&f, "/v1/pledges/p-0001");
    assert_eq!(pledge["pledge"]["object"]["reserved"], 5);
    let alloc = check_proven(&f, "/v1/allocations/a-0001");
    assert_eq!(alloc["allocation"]["object"]["lessons"], 5);
    let student = check_proven(&f, "/v1/students/stu-3f9a");
    assert_eq!(student["claims"].as_array().unwrap().len(), 1);

    let pool: Value = f.get("/v1/pool").json().unwrap();
    assert_eq!(pool["pool"]["object"]["claims"], 1);
    assert_eq!(pool["pool"]["object"]["pledges_approved"], 1);
    let report: Value = f.get("/v1/institutions/inst-0001/report").json().unwrap();
    assert_eq!(report["liability"]["object"]["owed"], 300_000);
    assert_eq!(report["liability"]["object"]["students"], 1);

    for (path, status, code) in [
        ("/v1/claims/c-9999", 404, "claim_not_found"),
        ("/v1/pledges/p-9999", 404, "pledge_not_found"),
        ("/v1/allocations/a-9999", 404, "allocation_not_found"),
        ("/v1/students/stu-0000", 404, "student_not_found"),
        (
            "/v1/institutions/inst-0007/report",
            404,
            "institution_not_found",
        ),
        ("/v1/claims/BAD%20ID", 400, "malformed_id"),
        ("/v1/students/-x", 400, "malformed_id"),
    ] {
        assert_problem(f.get(path), status, code);
    }
}

#[test]
fn metrics_count_entries_batches_and_responses() {
    let f = Fixture::new();
    for n in 1..=3 {
        assert_eq!(
            f.post(register_institution(&f.operator, n).to_json())
                .status(),
            200
        );
    }
    assert_eq!(f.get("/v1/entries/99").status(), 404);
    let response = f.get("/metrics");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.text().unwrap();
    let value = |line_start: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{line_start} missing in\n{text}"))
    };
    assert_eq!(value("lesson_ledger_entries"), 4);
    assert_eq!(value("lesson_ledger_appended_total"), 3);
    assert_eq!(
        value("lesson_ledger_batches_total"),
        3,
        "sequential posts: one commit each"
    );
    assert_eq!(value("lesson_ledger_queue_entries"), 0);
    assert_eq!(
        value("lesson_ledger_http_requests_total{status=\"200\"}"),
        3
    );
    assert_eq!(
        value("lesson_ledger_http_requests_total{status=\"404\"}"),
        1
    );
    assert!(text.contains("# TYPE lesson_ledger_http_requests_total counter"));
    let busy: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("lesson_ledger_writer_busy_seconds_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("writer busy time missing in\n{text}"));
    assert!(busy > 0.0, "three commits took some time");
}

/// The RFC 6962 root of leaves `[lo, hi)`, taking the hash of every complete, aligned
/// 256-leaf subtree from a level-1 tile and every other leaf hash from level-0 tiles.
fn root_from_tiles(lo: u64, hi: u64, leaves: &[Hash], level1: Option<&[Hash]>) -> Hash {
    use lesson_ledger::log::hash::node_hash;
    let n = hi - lo;
    if n == 1 {
        return leaves[lo as usize];
    }
    if let Some(level1) = level1.filter(|_| n == 256 && lo % 256 == 0) {
        return level1[(lo / 256) as usize];
    }
    // RFC 9162 §2.1.1: "k is the largest power of two less than n".
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    node_hash(
        &root_from_tiles(lo, lo + k, leaves, level1),
        &root_from_tiles(lo + k, hi, leaves, level1),
    )
}

fn tile(f: &Fixture, path: &str) -> (Vec<u8>, String) {
    let response = f.get(path);
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    (response.bytes().unwrap().to_vec(), cache)
}

fn hashes(bytes: &[u8]) -> Vec<Hash> {
    assert_eq!(bytes.len() % 32, 0);
    bytes
        .chunks(32)
        .map(|c| Hash::from_slice(c).unwrap())
        .collect()
}

#[test]
fn tiles_rebuild_the_checkpoint_root() {
    let f = Fixture::new();
    for batch in 0..2u64 {
        let entries: Vec<Value> = (0..150)
            .map(|i| {
                serde_json::from_str(
                    &register_institution(&f.operator, 1 + batch * 150 + i).to_json(),
                )
                .unwrap()
            })
            .collect();
        let results: BatchResults = f
            .post(json!({ "entries": entries }).to_string())
            .json()
            .unwrap();
        assert!(results.results.iter().all(|r| r.status == "ok"));
    }
    let cp = current_checkpoint(&f);
    assert_eq!(cp.checkpoint().size, 301);

    let (full, cache) = tile(&f, "/tile/0/000");
    assert_eq!(cache, "public, max-age=31536000, immutable");
    let (partial, cache) = tile(&f, "/tile/0/001.p/45");
    assert_eq!(cache, "public, max-age=10");
    let (level1, _) = tile(&f, "/tile/1/000.p/1");
    let mut leaves = hashes(&full);
    assert_eq!(leaves.len(), 256);
    leaves.extend(hashes(&partial));
    let level1 = hashes(&level1);
    assert_eq!(leaves.len(), 301);
    assert_eq!(
        root_from_tiles(0, 301, &leaves, Some(&level1)),
        cp.checkpoint().root,
        "the tiles rebuild the signed root"
    );
    // The level-1 hash is the root of the full level-0 tile below it.
    assert_eq!(root_from_tiles(0, 256, &leaves, None), level1[0]);
    // A narrower partial tile is a prefix of the wider one.
    let (narrow, _) = tile(&f, "/tile/0/001.p/3");
    assert_eq!(narrow, partial[..3 * 32]);

    // Entry bundles: each leaf as a u16 length and its bytes; their hashes are the tile's.
    let mut bundled = Vec::new();
    for path in ["/tile/entries/000", "/tile/entries/001.p/45"] {
        let (bundle, _) = tile(&f, path);
        let mut rest = &bundle[..];
        while !rest.is_empty() {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let leaf = &rest[2..2 + len];
            bundled.push(lesson_ledger::log::hash::leaf_hash(leaf));
            let decoded = lesson_ledger::log::leaf::Leaf::decode(leaf).unwrap();
            assert_eq!(decoded.index as usize, bundled.len() - 1);
            rest = &rest[2 + len..];
        }
    }
    assert_eq!(bundled, leaves);

    for (path, status, code) in [
        ("/tile/0/001", 404, "tile_not_found"),
        ("/tile/0/001.p/46", 404, "tile_not_found"),
        ("/tile/0/002.p/1", 404, "tile_not_found"),
        ("/tile/1/000", 404, "tile_not_found"),
        ("/tile/2/000.p/1", 404, "tile_not_found"),
        ("/tile/entries/001", 404, "tile_not_found"),
        ("/tile/entries/001.p/46", 404, "tile_not_found"),
        ("/tile/0/x000/001", 400, "malformed_tile_path"),
        ("/tile/0/1", 400, "malformed_tile_path"),
        ("/tile/9/000", 400, "malformed_tile_path"),
        ("/tile/0/000.p/256", 400, "malformed_tile_path"),
    ] {
        assert_problem(f.get(path), status, code);
    }
}

pub fn post_cosign(f: &Fixture, body: Value) -> Response {
    f.client
        .post(f.url("/v1/cosign"))
        .body(body.to_string())
        .send()
        .expect("POST /v1/cosign")
}

#[test]
fn an_association_cosigns_the_checkpoint_and_it_is_served() {
    use lesson_ledger::log::note::{cosign, verify_cosignature, CosignerKey};
    let f = Fixture::new();
    // The association is declared by the genesis (`support::test_genesis`).
    let assoc = crate::support::test_association();
    let inst = party_signer("inst-0001", 1);
    ok(
        &f,
        &[&f.operator, &inst],
        json!({"kind": "party_registered", "id": "reg-inst-0001", "party": "inst-0001",
               "role": "institution", "key": inst.vkey()}),
    );
    let cp = current_checkpoint(&f);
    let size = cp.checkpoint().size;
    let line = cosign(&cp, &assoc, 1_800_000_000).unwrap();
    let assoc_key = CosignerKey::new(assoc.name().clone(), assoc.verifying_key()).unwrap();

    // Refusals first: nothing is collected from them.
    let impostor = party_signer("assoc-01", 666);
    let forged = cosign(&cp, &impostor, 1_800_000_000).unwrap();
    let mut flipped = line.clone().into_bytes();
    let at = flipped.len() - 3;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for (body, status, code) in [
        (
            json!({"party": "assoc-01", "size": size, "cosignature": forged}),
            403,
            "bad_cosignature",
        ),
        (
            json!({"party": "assoc-01", "size": size, "cosignature": flipped}),
            403,
            "bad_cosignature",
        ),
        (
            json!({"party": "inst-0001", "size": size, "cosignature": cosign(&cp, &inst, 1).unwrap()}),
            403,
            "not_an_association",
        ),
        (
            json!({"party": "assoc-99", "size": size, "cosignature": line}),
            404,
            "party_not_found",
        ),
        (
            json!({"party": "assoc-01", "size": size + 1, "cosignature": line}),
            409,
            "checkpoint_superseded",
        ),
        (
            json!({"party": "assoc-01", "size": size, "cosignature": "not a line"}),
            400,
            "malformed_signature_line",
        ),
        (
            json!({"party": "assoc-01", "size": size, "cosignature": format!("{line}{forged}")}),
            400,
            "too_many_cosignatures",
        ),
        (
            json!({"party": "assoc-01", "size": size}),
            400,
            "malformed_request",
        ),
        (
            json!({"party": "assoc-01", "size": size, "cosignature": line, "x": 1}),
            400,
            "malformed_request",
        ),
    ] {
        assert_problem(post_cosign(&f, body), status, code);
    }
    let served = current_checkpoint(&f);
    assert!(
        verify_cosignature(&served, &assoc_key).is_err(),
        "nothing collected yet"
    );

    let response = post_cosign(
        &f,
        json!({"party": "assoc-01", "size": size, "cosignature": line}),
    );
    assert_eq!(response.status(), StatusCode::OK);
    let answered: lesson_ledger::http::cosign::CosignResponse = response.json().unwrap();
    assert!(answered.checkpoint.contains(line.trim_end()));
    let served = current_checkpoint(&f);
    assert_eq!(
        verify_cosignature(&served, &assoc_key).unwrap(),
        1_800_000_000
    );
    assert_eq!(served.checkpoint(), cp.checkpoint());

    // Kept across a restart.
    let f = f.restart();
    let served = current_checkpoint(&f);
    assert_eq!(
        verify_cosignature(&served, &assoc_key).unwrap(),
        1_800_000_000
    );

    // A new checkpoint has not been cosigned; the old cosignature is now stale.
    assert_eq!(
        f.post(register_institution(&f.operator, 9).to_json())
            .status(),
        200
    );
    let served = current_checkpoint(&f);
    assert!(verify_cosignature(&served, &assoc_key).is_err());
    assert_problem(
        post_cosign(
            &f,
            json!({"party": "assoc-01", "size": size, "cosignature": line}),
        ),
        409,
        "checkpoint_superseded",
    );
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
        .args(args)
        .output()
        .expect("run lesson-ledger")
}

pub fn post_all(url: &str, operator: &NoteSigner, range: std::ops::RangeInclusive<u64>) {
    let client = Client::new();
    for n in range {
        let response = client
            .post(format!("{url}/v1/entries"))
            .body(register_institution(operator, n).to_json())
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[test]
fn a_remote_audit_catches_a_rewritten_history() {
    use lesson_ledger::client::{audit, Client as LedgerClient, ClientError};
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (ledger, operator) = ledger_with_genesis(&dir_a);
    ledger.close().unwrap();
    // Ledger B: the same genesis and operator key, a different history after it.
    copy_dir(&dir_a, &dir_b);
    let state = tmp.path().join("audit.json");
    let state_s = state.to_str().unwrap();

    let (ledger, _) = Ledger::open(&dir_a).unwrap();
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .unwrap();
    let addr = server.addr();
    post_all(&server.url(), &operator, 1..=5);
    let client = LedgerClient::new(&server.url()).unwrap();
    let vkey = operator.vkey();
    let first = audit(&client, Some(&vkey), Some(&state)).unwrap();
    assert_eq!((first.size, first.consistent_with), (6, None));
    // The genesis (operator, association), five registrations (operator, association,
    // new key).
    assert_eq!(first.signatures, 2 + 5 * 3);
    post_all(&server.url(), &operator, 6..=6);
    // Through the command line: consistent with what was verified before.
    let out = cli(&["verify", "--url", &server.url(), "--state", state_s]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok: 7 entries") && stdout.contains("size 6"),
        "{stdout}"
    );
    server.shutdown().unwrap();

    // B at the same address, longer than A, signed by the same key.
    let (ledger, _) = Ledger::open(&dir_b).unwrap();
    let server = Server::start(ledger, addr, ServerConfig::default()).unwrap();
    post_all(&server.url(), &operator, 101..=110);
    let err = audit(&client, None, Some(&state)).unwrap_err();
    assert!(matches!(err, ClientError::Verification(_)), "{err}");
    assert!(err.to_string().contains("history rewritten"), "{err}");
    let out = cli(&["verify", "--url", &server.url(), "--state", state_s]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // Without memory, B on its own is a well-formed log: only the state catches it.
    assert_eq!(audit(&client, None, None).unwrap().size, 11);
    // The state file still holds A's checkpoint: the rewrite keeps being reported.
    assert!(audit(&client, None, Some(&state)).is_err());
    server.shutdown().unwrap();
}

#[test]
fn client_commands_submit_and_check_balances() {
    let f = Fixture::new();
    scenario(&f);
    let url = f.server.url();
    let vkey = f.operator.vkey();
    let out = cli(&[
        "client",
        "balance",
        "--url",
        &url,
        "--claim",
        "c-0001",
        "--operator-key",
        &vkey,
        "--witnesses",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["claim"]["claim"], "c-0001");
    // By default a cosignature is required, so an association key must be given.
    let out = cli(&["client", "balance", "--url", &url, "--claim", "c-0001"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = cli(&[
        "client",
        "balance",
        "--url",
        &url,
        "--claim",
        "c-9999",
        "--witnesses",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // A different operator key: the checkpoint does not verify.
    let other = party_signer("operator", 77).vkey();
    let out = cli(&[
        "client",
        "balance",
        "--url",
        &url,
        "--student",
        "stu-3f9a",
        "--operator-key",
        &other,
        "--witnesses",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    let file = f.tmp.path().join("entries.jsonl");
    let lines = [
        register_institution(&f.operator, 50).to_json(),
        register_institution(&f.operator, 51).to_json(),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let file_s = file.to_str().unwrap();
    let out = cli(&["client", "submit", "--url", &url, file_s]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let statuses: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["result"]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["ok", "ok"]);
    // Again: both exist already, which is success.
    let out = cli(&["client", "submit", "--url", &url, file_s]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let bad = f.tmp.path().join("bad.json");
    std::fs::write(&bad, "{\"payloadType\":\"x\"}").unwrap();
    let out = cli(&["client", "submit", "--url", &url, bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

#[test]
fn the_served_openapi_document_is_the_file_and_lists_every_route() {
    let f = Fixture::new();
    let response = f.get("/openapi.json");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = response.text().unwrap();
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/openapi.json"))
            .unwrap();
    assert_eq!(served, file, "served document equals schemas/openapi.json");
    let doc: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = lesson_ledger::http::routes();
    assert!(routes.len() >= 18);
    for (method, path) in routes {
        // The tile route is one axum wildcard; OpenAPI documents its two shapes.
        let documented: Vec<&str> = if path == "/tile/{*path}" {
            vec!["/tile/{level}/{index}", "/tile/entries/{index}"]
        } else {
            vec![path]
        };
        for p in documented {
            let op = &doc["paths"][p][method.to_lowercase()];
            assert!(
                op.is_object(),
                "{method} {p} is not in schemas/openapi.json"
            );
            assert!(
                op["responses"]["200"].is_object(),
                "{method} {p}: no 200 response"
            );
        }
    }
    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap().to_owned());
                    }
                    refs(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
    }
}

#[test]
fn clients_that_retry_across_a_restart_lose_and_duplicate_nothing() {
    const WRITERS: u64 = 8;
    const EACH: u64 = 150;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (ledger, operator) = ledger_with_genesis(&dir);
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .unwrap();
    let addr = server.addr();
    let url = format!("http://{addr}/v1/entries");
    let operator = &operator;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let url = url.clone();
                s.spawn(move || {
                    let client = Client::new();
                    for i in 0..EACH {
                        let body = register_institution(operator, 1 + w * EACH + i).to_json();
                        // Retry until the server answers: `ok` the first time it is
                        // durable, `exists` if an earlier attempt made it.
                        let status = loop {
                            match client.post(&url).body(body.clone()).send() {
                                Ok(r) if r.status() == StatusCode::OK => {
                                    break r.json::<EntryResult>().unwrap().status
                                }
                                Ok(r) => assert_eq!(r.status().as_u16(), 503, "{r:?}"),
                                Err(_) => {}
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        };
                        assert!(status == "ok" || status == "exists", "{status}");
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        server.shutdown().unwrap();
        let (ledger, _) = Ledger::open(&dir).unwrap();
        let server = Server::start(ledger, addr, ServerConfig::default()).unwrap();
        for w in writers {
            w.join().unwrap();
        }
        server.shutdown().unwrap();
    });
    let (ledger, _) = Ledger::open(&dir).unwrap();
    assert_eq!(
        ledger.log().size(),
        1 + WRITERS * EACH,
        "each entry exactly once"
    );
    for n in 1..=WRITERS * EACH {
        let id = register_institution(operator, n).entry_id();
        assert!(
            ledger.log().index_of(&id).unwrap().is_some(),
            "entry {n} lost"
        );
    }
}

/// Where `instance` departs from the schema the OpenAPI document gives the `200` JSON
/// response of `GET path_template` (its `$ref`s resolved in the document's components).
fn openapi_errors(path_template: &str, instance: &Value) -> Vec<String> {
    let doc: Value = serde_json::from_str(lesson_ledger::http::OPENAPI_JSON).unwrap();
    let schema = &doc["paths"][path_template]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert!(schema.is_object(), "{path_template}: no JSON 200 schema");
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    let validator = jsonschema::validator_for(&root).unwrap();
    let errors = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    errors
}

pub fn assert_matches_openapi(path_template: &str, instance: &Value) {
    let errors = openapi_errors(path_template, instance);
    assert!(errors.is_empty(), "{path_template}: {errors:?}\n{instance}");
}

#[test]
fn pool_and_report_responses_have_the_documented_shapes() {
    let f = Fixture::new();
    let empty: Value = f.get("/v1/pool").json().unwrap();
    assert_matches_openapi("/v1/pool", &empty);
    scenario(&f);
    let pool: Value = f.get("/v1/pool").json().unwrap();
    assert_matches_openapi("/v1/pool", &pool);
    let report: Value = f.get("/v1/institutions/inst-0001/report").json().unwrap();
    assert_matches_openapi("/v1/institutions/{id}/report", &report);
    assert!(
        report["institution"]["object"]["closed_at"].is_u64(),
        "{report}"
    );
    // The schemas are closed and complete: a member added to or dropped from the
    // responses without the document following is caught here.
    for (template, good) in [
        ("/v1/pool", &pool),
        ("/v1/institutions/{id}/report", &report),
    ] {
        let mut extra = good.clone();
        extra["undocumented"] = json!(1);
        let mut missing = good.clone();
        let first = missing.as_object().unwrap().keys().next().unwrap().clone();
        missing.as_object_mut().unwrap().remove(&first);
        for bad in [extra, missing] {
            assert!(
                !openapi_errors(template, &bad).is_empty(),
                "{template} accepted {bad}"
            );
        }
    }
    // The other typed reads, against real responses too.
    let claim: Value = f.get("/v1/claims/c-0001").json().unwrap();
    assert_matches_openapi("/v1/claims/{id}", &claim);
    let student: Value = f.get("/v1/students/stu-3f9a").json().unwrap();
    assert_matches_openapi("/v1/students/{id}", &student);
    let entry: Value = f.get("/v1/entries/1").json().unwrap();
    assert_matches_openapi("/v1/entries/{index}", &entry);
    let proof: Value = f.get("/v1/proofs/inclusion?index=1").json().unwrap();
    assert_matches_openapi("/v1/proofs/inclusion", &proof);
}
