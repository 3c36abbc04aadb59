//! What one client can cost the server (issue 11, items 4, 5, 8 and 14): bounded
//! pages, timeouts and caps on connections, refusals before signature checks, tile
//! arithmetic. Real sockets, a real ledger, real signatures.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lesson_ledger::api::{ClaimAnswer, PledgeAnswer, StudentAnswer};
use lesson_ledger::client::{decode_answer, verify_answer, Client as LedgerClient, ClientError};
use lesson_ledger::http::entries::BatchResults;
use lesson_ledger::http::ServerConfig;
use lesson_ledger::limits::SIGNATURES_PER_REQUEST_MAX;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::http::{assert_problem, scenario, Fixture};
use crate::support::{
    closed_by_server, half_sent, ledger_entry, party_signer, register_institution,
};

#[test]
fn a_tile_whose_positions_pass_two_to_the_sixty_fourth_is_refused_not_served_empty() {
    let f = Fixture::new();
    // Index 2^56 - 1: N·256 + 256 wrapped to 0, and an empty tile was served immutable.
    for path in [
        "/tile/0/x072/x057/x594/x037/x927/935",
        "/tile/entries/x072/x057/x594/x037/x927/935",
        "/tile/1/x072/x057/x594/x037/x927/935",
    ] {
        let body = assert_problem(f.get(path), 400, "tile_out_of_range");
        assert!(body["detail"].as_str().unwrap().contains("2^64"), "{body}");
    }
    // Just below the wrap: tiles no tree of this size holds.
    for path in [
        "/tile/0/x072/x057/x594/x037/x927/934",
        "/tile/1/x072/x057/x594/x037/x927/935.p/7",
    ] {
        assert_problem(f.get(path), 404, "tile_not_found");
    }
}

/// The start of a request, never finished.
const HALF_SENT_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow:";

fn slow_client_config() -> ServerConfig {
    ServerConfig {
        header_timeout: Duration::from_millis(500),
        connections_max: 8,
        ..ServerConfig::default()
    }
}

#[test]
fn half_sent_requests_are_closed_after_the_header_timeout() {
    let f = Fixture::with_config(slow_client_config());
    let started = Instant::now();
    let stream = half_sent(f.server.addr(), HALF_SENT_REQUEST);
    assert!(closed_by_server(stream), "a half-sent request stays open");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn healthz_still_answers_with_more_slow_clients_than_connection_slots() {
    let f = Fixture::with_config(slow_client_config());
    let slow: Vec<TcpStream> = (0..40)
        .map(|_| half_sent(f.server.addr(), HALF_SENT_REQUEST))
        .collect();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let started = Instant::now();
    let response = client
        .get(f.url("/healthz"))
        .send()
        .expect("healthz answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(15));
    // Every slow one was closed, not left holding a descriptor.
    for stream in slow {
        assert!(closed_by_server(stream));
    }
}

#[test]
fn shutdown_completes_within_the_deadline_with_a_slow_client_open() {
    let f = Fixture::with_config(ServerConfig {
        request_timeout: Duration::from_secs(120),
        body_timeout: Duration::from_secs(120),
        header_timeout: Duration::from_secs(120),
        shutdown_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    });
    // Headers complete, body promised and never sent: a request in flight.
    let mut stream = TcpStream::connect(f.server.addr()).unwrap();
    stream
        .write_all(b"POST /v1/entries HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"pay")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let Fixture { server, tmp, .. } = f;
    server.shutdown().expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop((stream, tmp));
}

#[test]
fn requests_beyond_the_in_flight_cap_are_refused_at_once_but_healthz_answers() {
    let f = Fixture::with_config(ServerConfig {
        requests_in_flight_max: 1,
        body_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    });
    // One request in flight: its body trickles.
    let mut stream = TcpStream::connect(f.server.addr()).unwrap();
    stream
        .write_all(b"POST /v1/entries HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let response = f.get("/v1/pool");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_problem(response, 503, "overloaded");
    assert_eq!(f.get("/healthz").status(), StatusCode::OK);
    drop(stream);
}

#[test]
fn balances_are_served_in_bounded_pages_that_the_client_follows_and_verifies() {
    let f = Fixture::with_config(ServerConfig {
        balance_page_entries: 2,
        ..ServerConfig::default()
    });
    scenario(&f);
    // The pledge: offered, approved, allocated — three entries, two pages.
    let first: PledgeAnswer = f.get("/v1/pledges/p-0001").json().unwrap();
    assert_eq!(first.entries.len(), 2);
    assert_eq!(first.next, Some(2));
    let second: PledgeAnswer = f.get("/v1/pledges/p-0001?from=2").json().unwrap();
    assert_eq!(second.entries.len(), 1);
    assert_eq!(second.next, None);
    assert_problem(f.get("/v1/pledges/p-0001?from=9"), 400, "page_out_of_range");
    assert_eq!(f.get("/v1/pledges/p-0001?from=x").status(), 400);

    let client = LedgerClient::new(&f.server.url()).unwrap();
    let whole: PledgeAnswer = client
        .balance("p-0001", &f.verifier())
        .expect("every page verifies");
    let indexes: Vec<u64> = whole.entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, whole.pledge.object.entries);
    assert_eq!(indexes.len(), 3);
    // One page alone is not the whole balance.
    let err = verify_answer(&first, "p-0001", &f.verifier()).unwrap_err();
    assert!(matches!(err, ClientError::Verification(_)), "{err}");
}

#[test]
fn a_balance_whose_entries_list_is_malformed_fails_verification() {
    let f = Fixture::new();
    scenario(&f);
    let good: ClaimAnswer = f.get("/v1/claims/c-0001").json().unwrap();
    verify_answer(&good, "c-0001", &f.verifier()).expect("as served");
    for bad in [json!("3,4"), json!([1, "x"]), json!(null), json!({"a": 1})] {
        let mut b: serde_json::Value = f.get("/v1/claims/c-0001").json().unwrap();
        b["claim"]["object"]["entries"] = bad.clone();
        let err = decode_answer::<ClaimAnswer>("claim", b.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, ClientError::Decode { .. }), "{bad}: {err}");
    }
    let mut b: serde_json::Value = f.get("/v1/students/stu-3f9a").json().unwrap();
    b["claims"][0]["object"]["entries"] = json!("none");
    assert!(decode_answer::<StudentAnswer>("student", b.to_string().as_bytes()).is_err());
    let mut b: ClaimAnswer = f.get("/v1/claims/c-0001").json().unwrap();
    b.entries.pop();
    assert!(
        verify_answer(&b, "c-0001", &f.verifier()).is_err(),
        "an entry withheld"
    );
}

fn post_batch(f: &Fixture, entries: &[Value]) -> reqwest::blocking::Response {
    f.post(json!({ "entries": entries }).to_string())
}

#[test]
fn an_envelope_of_unknown_keys_repeated_in_one_request_is_refused_before_verifying() {
    let f = Fixture::new();
    let strangers: Vec<_> = (0..8)
        .map(|n| party_signer(&format!("x-{n}"), 900 + n))
        .collect();
    let signers: Vec<_> = strangers.iter().collect();
    let envelope: Value = serde_json::from_str(
        &ledger_entry(
            &signers,
            &json!({"kind": "pledge_approved", "id": "appr-x", "pledge": "p-1"}),
        )
        .to_json(),
    )
    .unwrap();
    // The attack as found: 1,024 copies of 8 signatures.
    let all = vec![envelope.clone(); 1024];
    let body = assert_problem(post_batch(&f, &all), 400, "too_many_signatures_in_request");
    assert!(body["detail"].as_str().unwrap().contains("8192"), "{body}");
    // Under the cap: refused for its keys, before any signature is checked; the
    // repeats share that verdict.
    let copies = SIGNATURES_PER_REQUEST_MAX / 8;
    let response = post_batch(&f, &vec![envelope; copies]);
    assert_eq!(response.status(), StatusCode::OK);
    let results: BatchResults = response.json().unwrap();
    assert_eq!(results.results.len(), copies);
    assert!(
        results.results.iter().all(|r| r.status == "unknown_key"),
        "{:?}",
        results.results[0]
    );
    // A repeat of an entry the ledger accepts is appended once and answered `exists`.
    let registration: Value =
        serde_json::from_str(&register_institution(&f.operator, 5).to_json()).unwrap();
    let results: BatchResults = post_batch(&f, &[registration.clone(), registration])
        .json()
        .unwrap();
    let statuses: Vec<&str> = results.results.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["ok", "exists"]);
}

#[test]
fn a_new_key_registered_in_a_batch_may_sign_later_entries_of_the_same_batch() {
    let f = Fixture::new();
    let registration = register_institution(&f.operator, 2);
    let key = party_signer("inst-00002", 2);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let year = 365 * 86_400 * 1_000_000;
    let offer = ledger_entry(
        &[&key],
        &json!({"kind": "pledge_offered", "id": "offer-1", "pledge": "p-0001",
                "institution": "inst-00002", "subject": "math", "grade_min": 4, "grade_max": 6,
                "seats": 1, "lessons_per_seat": 1, "value_per_lesson_fen": 100,
                "valid_from_micros": now - year, "valid_until_micros": now + year,
                "online": true}),
    );
    let entries: Vec<Value> = [registration.to_json(), offer.to_json()]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    let results: BatchResults = post_batch(&f, &entries).json().unwrap();
    let statuses: Vec<&str> = results.results.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["ok", "ok"]);
    // Alone, before any registration, the same kind of entry by a stranger is refused.
    let stranger = party_signer("inst-00003", 3);
    let response = f.post(
        ledger_entry(
            &[&stranger],
            &json!({"kind": "pledge_approved", "id": "appr-9", "pledge": "p-0001"}),
        )
        .to_json(),
    );
    assert_problem(response, 400, "unknown_key");
}
