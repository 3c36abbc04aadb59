//! `lesson-ledger mirror` (C2SP tlog-mirror, issue 17): a second process's copy of a
//! real ledger, followed over real sockets, that serves what the origin serves byte for
//! byte, cosigns as a mirror, refuses writes, and stops at a forked origin with both
//! checkpoints kept.

use std::fs;
use std::path::Path;

use lesson_ledger::demo::{self, DemoConfig, Scale};
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::note::{verify_cosignature, NoteSigner, NoteVerifier, SignedCheckpoint};
use lesson_ledger::log::store::Outcome;
use lesson_ledger::mirror::fetch::OriginReader;
use lesson_ledger::mirror::serve::{origin_hash, MirrorServer};
use lesson_ledger::mirror::{Mirror, MirrorError};
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
