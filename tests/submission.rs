//! One submission path (issue 16, item 2): `lesson-ledger append` and `POST /v1/entries`
//! answer the same entries with the same codes and the same words, because both go
//! through `api::submission`.

use std::path::Path;

use lesson_ledger::http::entries::{BatchResults, EntryResult};
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::http::{base64_decode, base64_encode, copy_dir, ledger_with_genesis};
use crate::support::{ledger_entry, party_signer, register_institution};

/// What a result says, without its receipt (whose time and checkpoint differ between two
/// ledgers): status, error, existing entry id.
fn said(result: &EntryResult) -> (String, Option<String>, Option<String>) {
    (
        result.status.clone(),
        result.error.clone(),
        result.existing_entry_id.clone(),
    )
}

/// Every way an entry is refused, after `register_institution(operator, 1)` is logged:
/// a field of the wrong type, unknown and missing fields, a flipped signature bit, a rule refusal, a
/// repeat, and another statement under a used entry id.
fn bad_entries(operator: &lesson_ledger::log::note::NoteSigner) -> Vec<String> {
    let good = register_institution(operator, 1);
    let good_json: Value = serde_json::from_str(&good.to_json()).unwrap();
    let mut unknown = good_json.clone();
    unknown["extra"] = json!(1);
    let mut missing = good_json.clone();
    missing.as_object_mut().unwrap().remove("payload");
    let mut flipped = good_json.clone();
    let mut sig = base64_decode(flipped["signatures"][0]["sig"].as_str().unwrap());
    sig[0] ^= 1;
    flipped["signatures"][0]["sig"] = json!(base64_encode(&sig));
    let rule_refused = ledger_entry(
        &[operator],
        &json!({"kind": "pledge_approved", "id": "appr-1", "pledge": "p-404"}),
    );
    let key = party_signer("inst-00002", 2);
    let reuse = ledger_entry(
        &[operator, &key],
        &json!({"kind": "party_registered", "id": "reg-inst-00001", "party": "inst-00002",
                "role": "institution", "key": key.vkey()}),
    );
    vec![
        r#"{"payloadType":1}"#.to_string(),
        unknown.to_string(),
        missing.to_string(),
        flipped.to_string(),
        rule_refused.to_json(),
        good.to_json(),
        reuse.to_json(),
    ]
}

/// `lesson-ledger append` of `entries` (as JSON Lines) on `data`: one parsed line each.
fn append_with_cli(data: &Path, entries: &[String]) -> Vec<Value> {
    let file = data.with_extension("jsonl");
    std::fs::write(&file, entries.join("\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
        .args(["append", "--data"])
        .args([data, &file])
        .output()
        .expect("run lesson-ledger");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn the_cli_and_http_answer_the_same_bad_entries_with_the_same_codes_and_words() {
    let tmp = tempfile::tempdir().unwrap();
    let (http_dir, cli_dir) = (tmp.path().join("http"), tmp.path().join("cli"));
    let (ledger, operator) = ledger_with_genesis(&http_dir);
    ledger.close().unwrap();
    copy_dir(&http_dir, &cli_dir);
    let good = register_institution(&operator, 1).to_json();
    let bad = bad_entries(&operator);

    let cli_first = append_with_cli(&cli_dir, std::slice::from_ref(&good));
    assert_eq!(cli_first[0]["status"], "ok", "{cli_first:?}");
    let cli: Vec<EntryResult> = append_with_cli(&cli_dir, &bad)
        .into_iter()
        .map(|mut line| {
            assert!(line["source"].as_str().is_some(), "{line}");
            line.as_object_mut().unwrap().remove("source");
            serde_json::from_value(line).expect("an entry result")
        })
        .collect();

    let (ledger, _) = Ledger::open(&http_dir).unwrap();
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .expect("start server");
    let client = Client::new();
    let post = |body: String| {
        client
            .post(format!("{}/v1/entries", server.url()))
            .body(body)
            .send()
            .expect("POST")
    };
    assert_eq!(post(good).status(), 200);
    let entries: Vec<Value> = bad
        .iter()
        .map(|e| serde_json::from_str(e).expect("JSON"))
        .collect();
    let batch: BatchResults = post(json!({ "entries": entries }).to_string())
        .json()
        .expect("batch results");

    let statuses: Vec<&str> = cli.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "malformed_json",
            "unknown_field",
            "missing_field",
            "bad_signature",
            "pledge_unknown",
            "exists",
            "exists_with_different_payload"
        ]
    );
    for (i, (c, h)) in cli.iter().zip(&batch.results).enumerate() {
        assert_eq!(said(c), said(h), "entry {i}: the CLI and HTTP differ");
    }
    // A single POST answers each refusal as a problem with the same code and words.
    for (i, (entry, c)) in bad.iter().zip(&cli).enumerate() {
        let response = post(entry.clone());
        if c.status == "exists" {
            assert_eq!(response.status(), 200);
            continue;
        }
        let problem: Value = response.json().expect("a problem");
        assert_eq!(problem["code"], c.status.as_str(), "entry {i}: {problem}");
        assert_eq!(
            problem["detail"].as_str(),
            c.error.as_deref(),
            "entry {i}: {problem}"
        );
    }
    server.shutdown().expect("clean shutdown");
}
