//! `lesson-ledger mirror --any-log` (issue 17): a C2SP tlog-mirror of any C2SP
//! tlog-tiles log, entries opaque. The origin is a log our code did not make:
//! `scripts/c2sp_log.py`, written from the C2SP documents, served by Python's
//! `http.server` on a real socket. The mirror follows it as it grows (partial bundles
//! and tiles included), serves its tiles and bundles byte for byte under
//! `/<origin hash>/` with a checkpoint carrying its cosignature, refuses forks with
//! evidence kept and a bad signature with nothing changed, converges after a kill, and
//! mirrors one of our own published trees the same way.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::note::{verify_cosignature, NoteSigner, NoteVerifier, SignedCheckpoint};
use lesson_ledger::log::store::Outcome;
use lesson_ledger::mirror::any::serve::AnyServer;
use lesson_ledger::mirror::any::AnyMirror;
use lesson_ledger::mirror::fetch::OriginReader;
use lesson_ledger::mirror::serve::origin_hash;
use lesson_ledger::mirror::MirrorError;
use tempfile::TempDir;

use crate::publish::publish_data;
use crate::support::{
    operator_of, path_arg, register_institution, signer, test_genesis, verified, TEST_ORIGIN,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/c2sp_log.py");
const ORIGIN: &str = "example.org/any-log";

fn mirror_key() -> NoteSigner {
    signer("mirror-any", 78)
}

/// A static directory served by `python3 -m http.server` on a loopback port.
struct Static {
    child: Child,
    url: String,
}

impl Static {
    fn start(root: &Path) -> Static {
        fs::create_dir_all(root).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "http.server");
            std::thread::sleep(Duration::from_millis(20));
        }
        Static {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Static {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The independent producer's log in `tmp/origin`, served.
struct Origin {
    dir: PathBuf,
    seed: PathBuf,
    vkey: String,
    server: Static,
}

impl Origin {
    fn new(tmp: &Path) -> Origin {
        let seed = tmp.join("origin.seed");
        let out = Command::new("python3")
            .args([SCRIPT, "keygen", ORIGIN, path_arg(&seed)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let dir = tmp.join("origin");
        let server = Static::start(&dir);
        Origin {
            dir,
            seed,
            vkey,
            server,
        }
    }

    fn build(&self, size: u64, extra: &[&str]) {
        let out = Command::new("python3")
            .args([SCRIPT, "build", path_arg(&self.dir), "--seed"])
            .arg(&self.seed)
            .args(["--name", ORIGIN, "--origin", ORIGIN, "--size"])
            .arg(size.to_string())
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    fn reader(&self) -> OriginReader {
        OriginReader::new(&self.server.url).unwrap()
    }
}

fn open(dir: &Path, reader: &OriginReader, vkey: &str) -> AnyMirror {
    AnyMirror::open(dir, mirror_key(), reader, vkey).unwrap()
}

fn get(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::blocking::get(url).unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().unwrap().to_vec())
}

/// Every file under `root/tile/`, relative to `root`.
fn tiles_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("tile")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_str().unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// What the mirror serves under `/<origin hash>/` is the origin's tree: every tile and
/// bundle of the origin's directory byte for byte, and its checkpoint with the operator's
/// signature and the mirror's cosignature.
fn assert_serves_the_origin(mirror_url: &str, origin: &str, root: &Path, vkey: &str) {
    let base = format!("{mirror_url}/{}", origin_hash(origin));
    let files = tiles_under(root);
    assert!(files.iter().any(|f| f.contains("entries")), "{files:?}");
    for file in &files {
        let (status, body) = get(&format!("{base}/{file}"));
        assert_eq!(status, 200, "{file}");
        assert!(body == fs::read(root.join(file)).unwrap(), "{file} differs");
    }
    let (status, body) = get(&format!("{base}/checkpoint"));
    assert_eq!(status, 200);
    let operator = NoteVerifier::from_vkey(vkey).unwrap();
    let served = SignedCheckpoint::parse_and_verify(&body, &operator).unwrap();
    verify_cosignature(&served, &mirror_key().cosigner_key()).unwrap();
    let theirs = fs::read(root.join("checkpoint")).unwrap();
    let theirs = SignedCheckpoint::parse_and_verify(&theirs, &operator).unwrap();
    assert_eq!(served.checkpoint(), theirs.checkpoint());
}

#[test]
fn an_independent_c2sp_log_is_followed_as_it_grows_and_served_byte_for_byte() {
    let tmp = TempDir::new().unwrap();
    let origin = Origin::new(tmp.path());
    let reader = origin.reader();
    let dir = tmp.path().join("mirror");
    origin.build(1, &[]);
    let mut mirror = open(&dir, &reader, &origin.vkey);
    let server = AnyServer::start(
        &mirror,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();
    // Partial bundles and tiles, a full one, several, then a level-1 tile.
    for size in [1u64, 5, 256, 300, 513, 700, 1100] {
        origin.build(size, &[]);
        let followed = mirror.follow_once(&reader).unwrap();
        assert_eq!(followed.to, size);
        assert_serves_the_origin(&server.url(), ORIGIN, &origin.dir, &origin.vkey);
    }
    let again = mirror.follow_once(&reader).unwrap();
    assert_eq!((again.from, again.to), (1100, 1100));
    let base = format!("{}/{}", server.url(), origin_hash(ORIGIN));
    assert_eq!(
        get(&format!("{base}/tile/entries/004")).0,
        404,
        "not in the tree"
    );
    server.shutdown();
}

fn assert_forked(result: Result<lesson_ledger::mirror::any::AnyFollowed, MirrorError>, dir: &Path) {
    let err = result.unwrap_err();
    assert_eq!(err.code(), "origin_forked", "{err}");
    let MirrorError::Stopped(stopped) = err else {
        panic!("not stopped")
    };
    let evidence = fs::read_to_string(dir.join(&stopped.evidence)).unwrap();
    assert!(
        evidence.contains("the checkpoint the mirror holds"),
        "{evidence}"
    );
    assert!(
        evidence.contains("the checkpoint the origin served"),
        "{evidence}"
    );
    assert_eq!(
        evidence.matches(&format!("\n{ORIGIN}\n")).count(),
        2,
        "{evidence}"
    );
}

#[test]
fn forked_origins_are_refused_with_both_checkpoints_kept() {
    let tmp = TempDir::new().unwrap();
    let origin = Origin::new(tmp.path());
    let reader = origin.reader();
    // A rewritten entry, the same size; a smaller tree with another root; a fork that
    // grew past the mirror (told from bad bundles by the origin's own hash tiles).
    let forks: [(u64, &[&str]); 3] = [
        (300, &["--rewrite", "10"]),
        (200, &["--rewrite", "150"]),
        (900, &["--rewrite", "299"]),
    ];
    for (n, (size, extra)) in forks.into_iter().enumerate() {
        let dir = tmp.path().join(format!("mirror-{n}"));
        origin.build(300, &[]);
        let mut mirror = open(&dir, &reader, &origin.vkey);
        mirror.follow_once(&reader).unwrap();
        let held = fs::read(dir.join("checkpoint")).unwrap();
        origin.build(size, extra);
        assert_forked(mirror.follow_once(&reader), &dir);
        assert_eq!(fs::read(dir.join("checkpoint")).unwrap(), held);
        // Stopped for good, a restart included, even once the origin looks right again.
        origin.build(300, &[]);
        let mut reopened = open(&dir, &reader, &origin.vkey);
        assert_eq!(
            reopened.follow_once(&reader).unwrap_err().code(),
            "origin_forked"
        );
        assert_eq!(reopened.size(), 300);
    }
}

#[test]
fn a_bad_signature_or_bad_bundles_are_refused_and_change_nothing() {
    let tmp = TempDir::new().unwrap();
    let origin = Origin::new(tmp.path());
    let reader = origin.reader();
    let dir = tmp.path().join("mirror");
    origin.build(300, &[]);
    let mut mirror = open(&dir, &reader, &origin.vkey);
    mirror.follow_once(&reader).unwrap();
    let before: Vec<Vec<u8>> = ["checkpoint", "entries", "offsets"]
        .iter()
        .map(|f| fs::read(dir.join(f)).unwrap())
        .collect();
    let unchanged = |dir: &Path| {
        let now: Vec<Vec<u8>> = ["checkpoint", "entries", "offsets"]
            .iter()
            .map(|f| fs::read(dir.join(f)).unwrap())
            .collect();
        assert!(now == before, "the mirror's files changed");
    };
    origin.build(600, &["--corrupt-signature"]);
    let err = mirror.follow_once(&reader).unwrap_err();
    assert_eq!(err.code(), "bad_signature", "{err}");
    unchanged(&dir);
    // Good signature, but a bundle that is not the log's (its hash tiles are): refused
    // for this round only, and rolled back.
    origin.build(600, &[]);
    let bundle = origin.dir.join("tile/entries/001");
    let mut bytes = fs::read(&bundle).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&bundle, &bytes).unwrap();
    let err = mirror.follow_once(&reader).unwrap_err();
    assert_eq!(err.code(), "origin_data_refused", "{err}");
    unchanged(&dir);
    assert!(mirror.stopped().unwrap().is_none());
    // The origin mended, the mirror goes on.
    origin.build(600, &[]);
    assert_eq!(mirror.follow_once(&reader).unwrap().to, 600);
}

#[test]
fn a_mirror_killed_mid_round_converges_after_a_restart() {
    let tmp = TempDir::new().unwrap();
    let origin = Origin::new(tmp.path());
    let reader = origin.reader();
    let dir = tmp.path().join("mirror");
    let key = tmp.path().join("mirror-key");
    let out = crate::cli::run(&["keygen", "--name", "mirror-any", "--out", path_arg(&key)]);
    assert!(out.status.success(), "{out:?}");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
            .args(["mirror", "--any-log", "--once", "--data", path_arg(&dir)])
            .args(["--origin", &origin.server.url, "--origin-key", &origin.vkey])
            .args(["--key", path_arg(&key)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    origin.build(300, &[]);
    assert!(run().wait().unwrap().success());
    let committed = fs::metadata(dir.join("entries")).unwrap().len();
    // 70,000 entries: level-2 tiles, and a round long enough to be killed in.
    origin.build(70_000, &[]);
    let mut child = run();
    let started = Instant::now();
    while fs::metadata(dir.join("entries")).unwrap().len() <= committed {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let held = fs::read_to_string(dir.join("checkpoint")).unwrap();
    assert!(
        held.contains(&format!("{ORIGIN}\n300\n")),
        "killed before the commit: {held}"
    );
    assert!(fs::metadata(dir.join("entries")).unwrap().len() > committed);
    // The restart cuts the uncommitted part back and takes the round again.
    let signer = lesson_ledger::log::keyfile::read_private_pem(&key.with_extension("key"));
    let name = lesson_ledger::log::note::KeyName::new("mirror-any").unwrap();
    let signer = NoteSigner::new(name, signer.unwrap());
    let mut mirror = AnyMirror::open(&dir, signer, &reader, &origin.vkey).unwrap();
    assert_eq!(mirror.size(), 300);
    assert_eq!(mirror.follow_once(&reader).unwrap().to, 70_000);
    let server = AnyServer::start(
        &mirror,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();
    let base = format!("{}/{}", server.url(), origin_hash(ORIGIN));
    for file in [
        "tile/2/000.p/1",
        "tile/1/001.p/17",
        "tile/1/000",
        "tile/entries/273.p/112",
    ] {
        let (status, body) = get(&format!("{base}/{file}"));
        assert_eq!(status, 200, "{file}");
        assert!(body == fs::read(origin.dir.join(file)).unwrap(), "{file}");
    }
    server.shutdown();
}

#[test]
fn one_of_our_own_published_trees_is_mirrored_as_opaque_entries() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("ledger");
    let mut ledger = Ledger::create(&data, TEST_ORIGIN, "operator").unwrap();
    let operator = operator_of(&data);
    let mut batch = vec![verified(test_genesis(&operator))];
    batch.extend((1..=5).map(|n| verified(register_institution(&operator, n))));
    for outcome in ledger.submit(batch).unwrap() {
        assert!(matches!(outcome, Outcome::Ok(_)), "{outcome:?}");
    }
    ledger.close().unwrap();
    let root = tmp.path().join("published");
    let out = publish_data(&data, &tmp.path().join("work"), &root);
    assert!(out.status.success(), "{out:?}");
    let server = Static::start(&root);
    let reader = OriginReader::new(&server.url).unwrap();
    let vkey = operator.vkey();
    let mut mirror = open(&tmp.path().join("mirror"), &reader, &vkey);
    assert_eq!(mirror.follow_once(&reader).unwrap().to, 6);
    let served = AnyServer::start(
        &mirror,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .unwrap();
    assert_serves_the_origin(&served.url(), TEST_ORIGIN, &root, &vkey);
    served.shutdown();
}
