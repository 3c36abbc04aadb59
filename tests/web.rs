//! The web app (issue 13) over a real socket: every page route and every embedded asset
//! answers with its content type, the strict Content-Security-Policy and revalidation
//! headers; and the strict Ed25519 vectors the browser's verifier is tested on
//! (`tests/data/ed25519/strict.json`, run in headless Chromium by
//! `scripts/browser-tests.sh`) get exactly the answers `verify_strict` gives (the state
//! proofs' vectors are in `web_state.rs`). A client that accepts gzip gets the assets
//! gzipped.

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::Scalar;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use lesson_ledger::http::web::{ASSETS, CONTENT_SECURITY_POLICY};
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::hash::hex_decode;
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha512};
use std::io::Read as _;

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::create(dir.path(), "lessons.example/web", "operator").unwrap();
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .unwrap();
    (dir, server)
}

fn header<'a>(response: &'a reqwest::blocking::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header on {}", response.url()))
}

#[test]
fn every_page_route_and_asset_is_served_with_its_type_and_a_strict_policy() {
    let (_dir, server) = server();
    let client = Client::new();
    let mut paths: Vec<(String, &str)> = [
        "/",
        "/students/stu-000000",
        "/institutions/inst-0007",
        "/pool",
        "/audit",
    ]
    .iter()
    .map(|p| (p.to_string(), "text/html; charset=utf-8"))
    .collect();
    paths.extend(
        ASSETS
            .iter()
            .map(|a| (format!("/web/{}", a.name), a.content_type)),
    );
    for (path, content_type) in &paths {
        let response = client
            .get(format!("{}{path}", server.url()))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "content-type"), *content_type, "{path}");
        let csp = header(&response, "content-security-policy");
        assert_eq!(csp, CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(!response.bytes().unwrap().is_empty(), "{path}");
    }
}

#[test]
fn the_policy_allows_nothing_from_another_origin() {
    for directive in CONTENT_SECURITY_POLICY.split(';') {
        let mut words = directive.split_whitespace();
        let name = words.next().unwrap();
        for source in words {
            assert!(
                ["'self'", "'none'", "data:"].contains(&source),
                "{name} allows {source}"
            );
        }
    }
    assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
}

#[test]
fn no_asset_names_an_external_origin() {
    for asset in ASSETS {
        let text = String::from_utf8_lossy(asset.body);
        // Comments may cite specifications; code may name no other origin.
        let code = text.lines().filter(|l| {
            let l = l.trim_start();
            !(l.starts_with("//") || l.starts_with('*') || l.starts_with("/*"))
        });
        for line in code {
            // A statement's trailing comment is a comment too (vendored code cites bugs).
            let line = line.split_once("; //").map_or(line, |(code, _)| code);
            let is_svg_namespace = line.contains("http://www.w3.org/2000/svg");
            assert!(
                is_svg_namespace || !(line.contains("http://") || line.contains("https://")),
                "{} names an external URL: {line}",
                asset.name
            );
        }
    }
}

#[test]
fn an_unchanged_asset_is_revalidated_with_304_and_an_unknown_one_is_404() {
    let (_dir, server) = server();
    let client = Client::new();
    let url = format!("{}/web/app.js", server.url());
    let first = client.get(&url).send().unwrap();
    let etag = header(&first, "etag").to_owned();
    let again = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let missing = client
        .get(format!("{}/web/nothing.js", server.url()))
        .send()
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().unwrap();
    assert!(
        body["code"].as_str().unwrap().ends_with("not_found"),
        "{body}"
    );
    let traversal = client
        .get(format!("{}/web/..%2FCargo.toml", server.url()))
        .send()
        .unwrap();
    assert_eq!(traversal.status(), StatusCode::NOT_FOUND);
}

#[test]
fn a_client_that_accepts_gzip_gets_every_asset_gzipped_with_its_own_etag() {
    let (_dir, server) = server();
    let client = Client::new();
    for asset in ASSETS {
        let url = format!("{}/web/{}", server.url(), asset.name);
        let plain = client.get(&url).send().unwrap();
        assert_eq!(
            plain.headers().get("content-encoding"),
            None,
            "{}",
            asset.name
        );
        let plain_tag = header(&plain, "etag").to_owned();
        assert_eq!(plain.bytes().unwrap().as_ref(), asset.body);
        let zipped = client
            .get(&url)
            .header("accept-encoding", "br, gzip;q=0.8")
            .send()
            .unwrap();
        assert_eq!(
            header(&zipped, "content-encoding"),
            "gzip",
            "{}",
            asset.name
        );
        assert_eq!(header(&zipped, "vary"), "accept-encoding");
        let tag = header(&zipped, "etag").to_owned();
        assert_ne!(tag, plain_tag, "one ETag per representation");
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(zipped.bytes().unwrap().as_ref())
            .read_to_end(&mut body)
            .unwrap();
        assert_eq!(body, asset.body, "{} decompresses to itself", asset.name);
        let again = client
            .get(&url)
            .header("accept-encoding", "gzip")
            .header("if-none-match", &tag)
            .send()
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
    let refused = client
        .get(format!("{}/web/app.js", server.url()))
        .header("accept-encoding", "gzip;q=0")
        .send()
        .unwrap();
    assert_eq!(refused.headers().get("content-encoding"), None);
}

/// The vectors the browser's strict verifier is tested on (scripts/browser/tests.mjs).
const STRICT_VECTORS: &str = include_str!("data/ed25519/strict.json");

/// A signature by `key` whose R is the identity: S = k·a makes the cofactorless
/// equation hold, so a lax verifier accepts it.
fn identity_r_signature(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    let mut r = [0u8; 32];
    r[0] = 1;
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r)
            .chain_update(key.verifying_key().as_bytes())
            .chain_update(message),
    );
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    sig[32..].copy_from_slice((k * key.to_scalar()).as_bytes());
    sig
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn case(what: &str, key: &[u8], message: &[u8], sig: &[u8], accept: bool) -> Value {
    json!({"description": what, "public": hex(key), "message": hex(message),
           "signature": hex(sig), "expect": if accept { "accept" } else { "reject" }})
}

/// The cases: published RFC 8032 answers, then each way `verify_strict` is stricter
/// than plain verification (small-order keys and R, non-canonical S).
fn strict_cases() -> Vec<Value> {
    let message = b"lesson-ledger strict vectors".to_vec();
    let key = SigningKey::from_bytes(&[7; 32]);
    let good = key.sign(&message).to_bytes();
    let mut cases = vec![case(
        "honest signature",
        key.verifying_key().as_bytes(),
        &message,
        &good,
        true,
    )];
    cases.push(case(
        "another message",
        key.verifying_key().as_bytes(),
        b"another",
        &good,
        false,
    ));
    let mut identity_sig = [0u8; 64];
    identity_sig[0] = 1;
    for (i, point) in EIGHT_TORSION.iter().enumerate() {
        let encoding = point.compress().to_bytes();
        cases.push(case(
            &format!("small-order public key {i}, R = identity, S = 0"),
            &encoding,
            &message,
            &identity_sig,
            false,
        ));
    }
    let forged = identity_r_signature(&key, &message);
    for (i, point) in EIGHT_TORSION.iter().enumerate() {
        let mut sig = forged;
        sig[..32].copy_from_slice(&point.compress().to_bytes());
        cases.push(case(
            &format!("small-order R {i} with an honest key"),
            key.verifying_key().as_bytes(),
            &message,
            &sig,
            false,
        ));
    }
    // S + ℓ: the same scalar, written non-canonically.
    let ell = Scalar::ZERO - Scalar::ONE; // ℓ - 1
    let mut s_plus_ell = [0u8; 32];
    let (s, l) = (&good[32..], ell.as_bytes());
    let mut carry = 1u16; // + 1 makes ℓ - 1 into ℓ
    for ((out, a), b) in s_plus_ell.iter_mut().zip(s).zip(l) {
        let sum = u16::from(*a) + u16::from(*b) + carry;
        *out = sum as u8;
        carry = sum >> 8;
    }
    let mut malleated = good;
    malleated[32..].copy_from_slice(&s_plus_ell);
    cases.push(case(
        "non-canonical S (S + ℓ)",
        key.verifying_key().as_bytes(),
        &message,
        &malleated,
        false,
    ));
    cases
}

fn rfc8032_cases() -> Vec<Value> {
    // RFC 8032 §7.1 TEST 1 and TEST 2.
    vec![
        json!({"description": "RFC 8032 TEST 1",
               "public": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
               "message": "",
               "signature": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
               "expect": "accept"}),
        json!({"description": "RFC 8032 TEST 2",
               "public": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
               "message": "72",
               "signature": "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
               "expect": "accept"}),
    ]
}

#[test]
fn the_browser_vectors_are_the_strict_cases_and_verify_strict_answers_each() {
    let file: Value = serde_json::from_str(STRICT_VECTORS).unwrap();
    let mut expected = rfc8032_cases();
    expected.extend(strict_cases());
    if std::env::var_os("LL_WRITE_STRICT_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&json!({
            "description": "Ed25519 accept/refuse vectors of verify_strict (tests/web.rs), run against the browser's verifier",
            "vectors": expected,
        }))
        .unwrap();
        std::fs::write("tests/data/ed25519/strict.json", text + "\n").unwrap();
    }
    assert_eq!(file["vectors"], Value::Array(expected.clone()));
    for v in &expected {
        let bytes = |f: &str| hex_decode(v[f].as_str().unwrap()).unwrap_or_default();
        let public: [u8; 32] = bytes("public").try_into().unwrap();
        let sig: [u8; 64] = bytes("signature").try_into().unwrap();
        let got = VerifyingKey::from_bytes(&public)
            .map(|k| {
                k.verify_strict(&bytes("message"), &Signature::from_bytes(&sig))
                    .is_ok()
            })
            .unwrap_or(false);
        assert_eq!(got, v["expect"] == "accept", "{}", v["description"]);
    }
}
