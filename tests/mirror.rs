//! `lesson-ledger mirror` (C2SP tlog-mirror, issue 17): a second process's copy of a
//! real ledger, followed over real sockets, that serves what the origin serves byte for
//! byte, cosigns as a mirror, refuses writes, and stops at a forked origin with both
//! checkpoints kept.

use std::fs;
use std::path::Path;

use lesson_ledger::demo::{self, DemoConfig, Scale};
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::note::{
    cosign, verify_cosignature, NoteSigner, NoteVerifier, SignedCheckpoint,
};
use lesson_ledger::log::store::Outcome;
use lesson_ledger::mirror::fetch::OriginReader;
use lesson_ledger::mirror::serve::{origin_hash, MirrorServer};
use lesson_ledger::mirror::{Mirror, MirrorError, WitnessPolicy};
use tempfile::TempDir;

use crate::support::{
    operator_of, register_institution, signer, test_genesis, verified, TEST_ORIGIN,
};

fn mirror_key() -> NoteSigner {
    signer("mirror-01", 77)
}

/// Copies a closed ledger directory (a second ledger under the same operator key).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Appends institutions `numbers` to the ledger in `dir`, in one batch.
fn append_institutions(dir: &Path, numbers: std::ops::RangeInclusive<u64>) {
    let (mut ledger, _) = Ledger::open(dir).unwrap();
    let operator = operator_of(dir);
    let batch = numbers
        .map(|n| verified(register_institution(&operator, n)))
        .collect();
    for outcome in ledger.submit(batch).unwrap() {
        assert!(matches!(outcome, Outcome::Ok(_)), "{outcome:?}");
    }
    ledger.close().unwrap();
}

/// A test ledger: the genesis and institutions 1..=3.
fn small_ledger(dir: &Path) {
    let mut ledger = Ledger::create(dir, TEST_ORIGIN, "operator").unwrap();
    let operator = operator_of(dir);
    let outcomes = ledger
        .submit(vec![verified(test_genesis(&operator))])
        .unwrap();
    assert!(matches!(outcomes[0], Outcome::Ok(_)), "{outcomes:?}");
    ledger.close().unwrap();
    append_institutions(dir, 1..=3);
}

fn serve(dir: &Path) -> Server {
    let (ledger, _) = Ledger::open(dir).unwrap();
    Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .unwrap()
}

fn get(base: &str, path: &str) -> (u16, Vec<u8>) {
    let response = reqwest::blocking::get(format!("{base}{path}")).unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().unwrap().to_vec())
}

fn checkpoint_of(base: &str, operator: &NoteVerifier) -> SignedCheckpoint {
    let (status, body) = get(base, "/checkpoint");
    assert_eq!(status, 200);
    SignedCheckpoint::parse_and_verify(&body, operator).unwrap()
}

/// The first claim recorded in the ledger at `dir`: (claim id, student ref).
fn first_claim(dir: &Path) -> (String, String) {
    let (ledger, _) = Ledger::open(dir).unwrap();
    let log = ledger.log();
    let found = (0..log.size())
        .map(|i| log.entry(i).unwrap())
        .find_map(|leaf| {
            let payload: serde_json::Value =
                serde_json::from_slice(leaf.envelope.payload()).ok()?;
            (payload["kind"] == "claim_recorded").then(|| {
                (
                    payload["claim"].as_str().unwrap().to_owned(),
                    payload["student"].as_str().unwrap().to_owned(),
                )
            })
        })
        .expect("the demo records claims");
    ledger.close().unwrap();
    found
}

#[test]
fn a_mirror_of_a_real_ledger_serves_what_the_origin_serves_byte_for_byte() {
    let tmp = TempDir::new().unwrap();
    let config = DemoConfig {
        data: tmp.path().join("demo"),
        scale: Scale::Tiny,
        seed: 7,
        keep_serving: false,
    };
    demo::run(&config).expect("the tiny demo runs");
    // The origin as its operator serves it before any association cosigns (the mirror
    // keeps only the lines it verified: the operator's, and its own).
    let origin_dir = tmp.path().join("origin");
    copy_dir(&config.ledger_dir(), &origin_dir);
    fs::remove_dir_all(origin_dir.join("cosignatures")).ok();
    let (claim, student) = first_claim(&origin_dir);
    let operator = operator_of(&origin_dir).verifier();
    let origin = serve(&origin_dir);

    let reader = OriginReader::new(&origin.url()).unwrap();
    let mut mirror = Mirror::open(&tmp.path().join("mirror"), mirror_key(), &reader, None).unwrap();
    let followed = mirror.follow_once(&reader).unwrap();
    let size = checkpoint_of(&origin.url(), &operator).checkpoint().size;
    assert_eq!((followed.from, followed.to), (0, size));
    assert!(
        followed.signatures >= size,
        "every entry's signatures verified"
    );
    let served = MirrorServer::start(
        &mirror,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();

    for path in [
        "/checkpoint".to_owned(),
        format!("/v1/students/{student}"),
        format!("/v1/claims/{claim}"),
        "/v1/pool".to_owned(),
        "/v1/log".to_owned(),
        format!("/v1/state-notes/{size}"),
        "/tile/0/000".to_owned(),
        "/tile/entries/000".to_owned(),
        format!("/v1/proofs/consistency?from=3&to={size}"),
        "/v1/students/no-such-student".to_owned(),
    ] {
        let (from_origin, from_mirror) = (get(&origin.url(), &path), get(&served.url(), &path));
        assert_eq!(from_origin.0, from_mirror.0, "{path}: status");
        assert!(
            from_origin.1 == from_mirror.1,
            "{path}: the mirror's answer differs from the origin's"
        );
    }

    // tlog-mirror: the log again under /<origin hash>/, its checkpoint cosigned.
    let prefix = format!("/{}", origin_hash(mirror.origin().as_str()));
    let (status, body) = get(&served.url(), &format!("{prefix}/checkpoint"));
    assert_eq!(status, 200);
    let cosigned = SignedCheckpoint::parse_and_verify(&body, &operator).unwrap();
    assert_eq!(cosigned.checkpoint().size, size);
    verify_cosignature(&cosigned, &mirror_key().cosigner_key()).expect("the mirror cosigned");
    assert_eq!(
        get(&served.url(), &format!("{prefix}/tile/entries/000")),
        get(&origin.url(), "/tile/entries/000")
    );
}

#[test]
fn a_write_to_a_mirror_is_refused_as_read_only_and_changes_nothing() {
    let tmp = TempDir::new().unwrap();
    let origin_dir = tmp.path().join("origin");
    small_ledger(&origin_dir);
    let origin = serve(&origin_dir);
    let reader = OriginReader::new(&origin.url()).unwrap();
    let mut mirror = Mirror::open(&tmp.path().join("mirror"), mirror_key(), &reader, None).unwrap();
    mirror.follow_once(&reader).unwrap();
    let served = MirrorServer::start(
        &mirror,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();
    let before = get(&served.url(), "/checkpoint");
    let operator = operator_of(&origin_dir);
    let body = register_institution(&operator, 9).to_json();
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/entries", served.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let problem: serde_json::Value = response.json().unwrap();
    assert_eq!(problem["code"], "read_only_mirror");
    assert_eq!(get(&served.url(), "/checkpoint"), before);
}

#[test]
fn a_mirror_follows_its_origin_as_it_grows_and_after_a_restart() {
    let tmp = TempDir::new().unwrap();
    let origin_dir = tmp.path().join("origin");
    small_ledger(&origin_dir);
    let mirror_dir = tmp.path().join("mirror");
    let origin = serve(&origin_dir);
    let reader = OriginReader::new(&origin.url()).unwrap();
    let mut mirror = Mirror::open(&mirror_dir, mirror_key(), &reader, None).unwrap();
    assert_eq!(mirror.follow_once(&reader).unwrap().to, 4);
    assert_eq!(mirror.follow_once(&reader).unwrap().to, 4, "nothing new");
    drop(mirror);
    origin.shutdown().unwrap();
    append_institutions(&origin_dir, 4..=6);
    let origin = serve(&origin_dir);
    let reader = OriginReader::new(&origin.url()).unwrap();
    // A restarted mirror, its origin key pinned on first use.
    let operator = operator_of(&origin_dir).verifier().to_vkey();
    let mut mirror = Mirror::open(&mirror_dir, mirror_key(), &reader, Some(&operator)).unwrap();
    let followed = mirror.follow_once(&reader).unwrap();
    assert_eq!((followed.from, followed.to), (4, 7));
    let served = MirrorServer::start(
        &mirror,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();
    assert_eq!(
        get(&served.url(), "/checkpoint"),
        get(&origin.url(), "/checkpoint")
    );
    assert_eq!(
        get(&served.url(), "/tile/entries/000.p/7"),
        get(&origin.url(), "/tile/entries/000.p/7")
    );
    // Another key than the pinned one is refused.
    let other = signer("operator", 3).verifier().to_vkey();
    drop(served);
    drop(mirror);
    let refused = Mirror::open(&mirror_dir, mirror_key(), &reader, Some(&other));
    assert!(matches!(refused, Err(MirrorError::KeyMismatch { .. })));
}

/// Two ledgers under one operator key that share the genesis and institutions 1..=3,
/// then diverge: `a` takes `a_more`, `b` takes `b_more`.
fn forked_origins(
    tmp: &TempDir,
    a_more: std::ops::RangeInclusive<u64>,
    b_more: std::ops::RangeInclusive<u64>,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    small_ledger(&a);
    copy_dir(&a, &b);
    append_institutions(&a, a_more);
    append_institutions(&b, b_more);
    (a, b)
}

fn assert_stopped_on_a_fork(
    mirror: &mut Mirror,
    mirror_dir: &Path,
    reader: &OriginReader,
    a: &str,
    b: &str,
) {
    let refused = mirror.follow_once(reader);
    let Err(MirrorError::Stopped(stopped)) = refused else {
        panic!("a forked origin must stop the mirror: {refused:?}");
    };
    assert_eq!(stopped.code, "origin_forked");
    let evidence = fs::read_to_string(mirror_dir.join(&stopped.evidence)).unwrap();
    assert!(
        evidence.contains(a),
        "the mirror's checkpoint is kept:\n{evidence}"
    );
    assert!(
        evidence.contains(b),
        "the origin's checkpoint is kept:\n{evidence}"
    );
    // And it stays stopped, a restart included.
    assert!(matches!(
        mirror.follow_once(reader),
        Err(MirrorError::Stopped(_))
    ));
}

#[test]
fn a_forked_origin_that_grew_past_the_mirror_is_refused_and_both_checkpoints_kept() {
    let tmp = TempDir::new().unwrap();
    let (a, b) = forked_origins(&tmp, 4..=5, 6..=8);
    let operator = operator_of(&a).verifier();
    let mirror_dir = tmp.path().join("mirror");
    let origin_a = serve(&a);
    let reader_a = OriginReader::new(&origin_a.url()).unwrap();
    let mut mirror = Mirror::open(&mirror_dir, mirror_key(), &reader_a, None).unwrap();
    assert_eq!(mirror.follow_once(&reader_a).unwrap().to, 6);
    let held = checkpoint_of(&origin_a.url(), &operator).text();

    let origin_b = serve(&b);
    let reader_b = OriginReader::new(&origin_b.url()).unwrap();
    let theirs = checkpoint_of(&origin_b.url(), &operator);
    assert_eq!(theirs.checkpoint().size, 7, "b is past the mirror");
    assert_stopped_on_a_fork(&mut mirror, &mirror_dir, &reader_b, &held, &theirs.text());
    drop(mirror);
    let mut reopened = Mirror::open(&mirror_dir, mirror_key(), &reader_a, None).unwrap();
    assert!(matches!(
        reopened.follow_once(&reader_a),
        Err(MirrorError::Stopped(_))
    ));
    // It still serves what it verified: a's log.
    let served = MirrorServer::start(
        &reopened,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();
    assert_eq!(get(&served.url(), "/checkpoint").1, held.as_bytes());
}

#[test]
fn a_forked_origin_behind_the_mirror_is_refused() {
    let tmp = TempDir::new().unwrap();
    let (a, b) = forked_origins(&tmp, 4..=5, 6..=6);
    let operator = operator_of(&a).verifier();
    let mirror_dir = tmp.path().join("mirror");
    let origin_a = serve(&a);
    let reader_a = OriginReader::new(&origin_a.url()).unwrap();
    let mut mirror = Mirror::open(&mirror_dir, mirror_key(), &reader_a, None).unwrap();
    assert_eq!(mirror.follow_once(&reader_a).unwrap().to, 6);
    let held = checkpoint_of(&origin_a.url(), &operator).text();
    let origin_b = serve(&b);
    let reader_b = OriginReader::new(&origin_b.url()).unwrap();
    let theirs = checkpoint_of(&origin_b.url(), &operator);
    assert_eq!(theirs.checkpoint().size, 5, "b is behind the mirror");
    assert_stopped_on_a_fork(&mut mirror, &mirror_dir, &reader_b, &held, &theirs.text());
}

/// An origin as a host between it and the mirror serves it: every `GET` relayed to the
/// origin at `upstream`, and `/checkpoint` served with the signature lines of `extra`
/// appended (witness lines, genuine or forged). Real sockets, one request a connection.
struct Relay {
    url: String,
    upstream: std::sync::Arc<std::sync::Mutex<String>>,
    extra: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Relay {
    fn start(upstream: &str) -> Relay {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = std::sync::Arc::new(std::sync::Mutex::new(upstream.to_owned()));
        let extra = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (to, lines) = (upstream.clone(), extra.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                request.read_line(&mut first).unwrap();
                let path = first.split(' ').nth(1).unwrap_or("/").to_owned();
                let mut header = String::new();
                while request.read_line(&mut header).unwrap() > 2 {
                    header.clear();
                }
                let base = to.lock().unwrap().clone();
                let (status, mut body) = get(&base, &path);
                if path == "/checkpoint" {
                    body.extend_from_slice(lines.lock().unwrap().as_bytes());
                }
                let head = format!(
                    "HTTP/1.1 {status} relayed\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Relay {
            url,
            upstream,
            extra,
        }
    }

    fn relay_to(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = upstream.to_owned();
    }

    fn append_lines(&self, lines: &str) {
        *self.extra.lock().unwrap() = lines.to_owned();
    }
}

fn witness(n: u8) -> NoteSigner {
    signer(&format!("witness-0{n}"), 80 + n)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn witness_policy(quorum: usize) -> WitnessPolicy {
    let keys = [witness(1), witness(2)].map(|w| w.cosigner_key().to_vkey());
    WitnessPolicy::new(&keys, Some(quorum)).unwrap()
}

/// The test ledger served behind a [`Relay`]: (its directory, the operator, the
/// server, the relay, the checkpoint of size 4).
fn relayed_origin(
    tmp: &TempDir,
) -> (
    std::path::PathBuf,
    NoteVerifier,
    Server,
    Relay,
    SignedCheckpoint,
) {
    let origin_dir = tmp.path().join("origin");
    small_ledger(&origin_dir);
    let operator = operator_of(&origin_dir).verifier();
    let origin = serve(&origin_dir);
    let relay = Relay::start(&origin.url());
    let first = checkpoint_of(&origin.url(), &operator);
    (origin_dir, operator, origin, relay, first)
}

/// The origin stopped, institutions 4..=6 appended, served again behind `relay`: the
/// new server and its checkpoint (of size 7).
fn grow_behind(
    relay: &Relay,
    origin: Server,
    dir: &Path,
    operator: &NoteVerifier,
) -> (Server, SignedCheckpoint) {
    origin.shutdown().unwrap();
    append_institutions(dir, 4..=6);
    let origin = serve(dir);
    relay.relay_to(&origin.url());
    let grown = checkpoint_of(&origin.url(), operator);
    (origin, grown)
}

#[test]
fn a_witness_cosignature_line_that_does_not_verify_is_never_served_and_a_verified_one_is() {
    let tmp = TempDir::new().unwrap();
    let (origin_dir, operator, origin, relay, old) = relayed_origin(&tmp);
    // witness-02's genuine cosignature of the checkpoint of size 4, replayed later on
    // the checkpoint of size 7 (its name and key id, a signature of another note).
    let replayed = cosign(&old, &witness(2), now()).unwrap();
    let (_origin, current) = grow_behind(&relay, origin, &origin_dir, &operator);
    let genuine = cosign(&current, &witness(1), now()).unwrap();
    relay.append_lines(&format!("{genuine}{replayed}"));

    let reader = OriginReader::new(&relay.url).unwrap();
    let mut mirror = Mirror::open(&tmp.path().join("mirror"), mirror_key(), &reader, None).unwrap();
    mirror.set_witnesses(witness_policy(1));
    assert_eq!(mirror.follow_once(&reader).unwrap().to, 7);
    let served = MirrorServer::start(
        &mirror,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();
    let prefix = format!("/{}", origin_hash(mirror.origin().as_str()));
    let (status, body) = get(&served.url(), &format!("{prefix}/checkpoint"));
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(genuine.trim_end()),
        "the verified line is served:\n{text}"
    );
    assert!(
        !text.contains(replayed.trim_end()) && !text.contains("— witness-02"),
        "a line that does not verify is never served:\n{text}"
    );
    let cosigned = SignedCheckpoint::parse_and_verify(text.as_bytes(), &operator).unwrap();
    verify_cosignature(&cosigned, &witness(1).cosigner_key()).expect("witness-01's line");
    verify_cosignature(&cosigned, &mirror_key().cosigner_key()).expect("the mirror's");
}

#[test]
fn a_mirror_whose_witness_quorum_is_not_met_does_not_advance() {
    let tmp = TempDir::new().unwrap();
    let (origin_dir, operator, origin, relay, first) = relayed_origin(&tmp);
    let both = [witness(1), witness(2)]
        .map(|w| cosign(&first, &w, now()).unwrap())
        .concat();
    relay.append_lines(&both);
    let reader = OriginReader::new(&relay.url).unwrap();
    let mirror_dir = tmp.path().join("mirror");
    let mut mirror = Mirror::open(&mirror_dir, mirror_key(), &reader, None).unwrap();
    mirror.set_witnesses(witness_policy(2));
    assert_eq!(mirror.follow_once(&reader).unwrap().to, 4, "two of two");

    let (_origin, grown) = grow_behind(&relay, origin, &origin_dir, &operator);
    relay.append_lines(&cosign(&grown, &witness(1), now()).unwrap());
    let refused = mirror.follow_once(&reader);
    let Err(e @ MirrorError::WitnessQuorum { .. }) = refused else {
        panic!("one of two witnesses must not do: {refused:?}");
    };
    assert_eq!(e.code(), "witness_quorum_not_met");
    let held = mirror.ledger().unwrap();
    assert_eq!(
        held.read().unwrap().log().size(),
        4,
        "the mirror did not advance"
    );
    let cosigned = fs::read_to_string(mirror_dir.join("checkpoint")).unwrap();
    assert_eq!(
        SignedCheckpoint::parse_and_verify(cosigned.as_bytes(), &operator)
            .unwrap()
            .checkpoint()
            .size,
        4
    );
}

#[test]
fn a_gap_is_taken_in_chunks_each_committed_under_the_origin_s_own_checkpoint() {
    let tmp = TempDir::new().unwrap();
    let origin_dir = tmp.path().join("origin");
    small_ledger(&origin_dir);
    append_institutions(&origin_dir, 4..=5);
    append_institutions(&origin_dir, 6..=8);
    let origin = serve(&origin_dir);
    let reader = OriginReader::new(&origin.url()).unwrap();
    let mut mirror = Mirror::open(&tmp.path().join("mirror"), mirror_key(), &reader, None).unwrap();
    mirror.set_chunk_entries(2);
    let followed = mirror.follow_once(&reader).unwrap();
    assert_eq!((followed.from, followed.to), (0, 9));
    let served = MirrorServer::start(
        &mirror,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();
    // Each chunk was committed with the origin's checkpoint and state note of its end,
    // so the mirror's history of checkpoints is the origin's, checkpoint for checkpoint.
    for path in ["/v1/checkpoints?from=1", "/v1/state-notes?from=1"] {
        let (from_origin, from_mirror) = (get(&origin.url(), path), get(&served.url(), path));
        assert_eq!(from_origin.0, 200, "{path}");
        assert!(
            from_origin == from_mirror,
            "{path}: the mirror's history differs"
        );
    }
    let listed: serde_json::Value =
        serde_json::from_slice(&get(&served.url(), "/v1/checkpoints?from=1").1).unwrap();
    let sizes: Vec<u64> = listed["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["size"].as_u64().unwrap())
        .collect();
    // The first chunk, the origin's first checkpoint, then about two entries a chunk.
    assert_eq!(sizes, [1, 4, 6, 9], "{listed}");
}

#[test]
fn the_mirror_routes_and_its_read_only_refusal_are_in_the_openapi_document() {
    let doc: serde_json::Value = serde_json::from_str(lesson_ledger::http::OPENAPI_JSON).unwrap();
    for path in [
        "/{origin_hash}/checkpoint",
        "/{origin_hash}/tile/{level}/{index}",
        "/{origin_hash}/tile/entries/{index}",
    ] {
        let op = &doc["paths"][path]["get"];
        assert!(op["responses"]["200"].is_object(), "GET {path}");
        assert_eq!(op["parameters"][0]["name"], "origin_hash", "{path}");
    }
    // Every write route a mirror refuses documents its 405 `read_only_mirror`.
    let refusal = &doc["components"]["responses"]["ReadOnlyMirror"];
    assert!(refusal["description"]
        .as_str()
        .unwrap()
        .contains("read_only_mirror"));
    let posts: Vec<_> = lesson_ledger::http::routes()
        .into_iter()
        .filter(|(method, _)| *method == "POST")
        .collect();
    assert!(!posts.is_empty());
    for (_, path) in posts {
        assert_eq!(
            doc["paths"][path]["post"]["responses"]["405"]["$ref"],
            "#/components/responses/ReadOnlyMirror",
            "POST {path}"
        );
    }
}
