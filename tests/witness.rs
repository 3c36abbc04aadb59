//! C2SP tlog-witness, both sides (issue 14): `lesson-ledger witness` answers
//! `add-checkpoint` as tlog-witness says, keeps its state across restarts and records a
//! split view; our log submits each checkpoint to it and serves the cosignatures, which
//! an independent implementation (Cloudflare's `signed_note` crate) verifies.
//! Real ledgers, real keys, real sockets.

use std::path::Path;
use std::time::{Duration, Instant};

use lesson_ledger::http::witnesses::WitnessTarget;
use lesson_ledger::http::{ServeError, Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::envelope::KeyCache;
use lesson_ledger::log::hash::Hash;
use lesson_ledger::log::note::{
    verify_cosignature, CosignerKey, NoteSigner, Origin, SignedCheckpoint,
};
use lesson_ledger::log::store::Outcome;
use lesson_ledger::witness::protocol::AddCheckpoint;
use lesson_ledger::witness::store::{origin_hash, SplitView};
use lesson_ledger::witness::{TrustedLog, Witness, WitnessServer};
use reqwest::blocking::{Client, Response};

use crate::http::{base64_decode, base64_encode, copy_dir, ledger_with_genesis, Fixture, ORIGIN};
use crate::support::{operator_of, party_signer, register_institution, test_association};

/// A witness run by the test association, trusting `operator` for the test origin.
fn start_witness(dir: &Path, operator: &NoteSigner) -> WitnessServer {
    let log = TrustedLog::new(Origin::new(ORIGIN).unwrap(), vec![operator.verifier()]);
    let witness = Witness::open(dir, test_association(), vec![log]).expect("open witness");
    WitnessServer::start(witness, "127.0.0.1:0".parse().unwrap()).expect("start witness")
}

/// Appends institutions `range` to `ledger`, one batch each (one checkpoint each).
fn grow(ledger: &mut Ledger, operator: &NoteSigner, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        let verified = register_institution(operator, n)
            .verify(&KeyCache::self_certifying())
            .unwrap();
        let outcome = ledger.submit(vec![verified]).unwrap();
        assert!(
            matches!(outcome.as_slice(), [Outcome::Ok(_)]),
            "{outcome:?}"
        );
    }
}

/// The `add-checkpoint` body for `ledger`'s current checkpoint, proven from `old`.
fn body_from(ledger: &Ledger, old: u64) -> Vec<u8> {
    let log = ledger.log();
    let size = log.size();
    let proof = if old == 0 {
        Vec::new()
    } else {
        log.consistency_proof(old, size).unwrap()
    };
    AddCheckpoint {
        old_size: old,
        proof,
        checkpoint: log.checkpoint().text().into_bytes(),
    }
    .to_body()
}

fn add_checkpoint(witness: &WitnessServer, body: impl Into<reqwest::blocking::Body>) -> Response {
    Client::new()
        .post(format!("{}/add-checkpoint", witness.url()))
        .body(body)
        .send()
        .expect("POST add-checkpoint")
}

/// The association's key as a cosigner: what a family's client counts.
fn association_cosigner() -> CosignerKey {
    test_association().cosigner_key()
}

/// An independent cosignature/v1 verifier on `signed_note`'s `Verifier` trait, written
/// from tlog-cosignature alone: key id `SHA-256(name || "\n" || 0x04 || key)[:4]`,
/// signature `u64 timestamp || Ed25519(cosignature/v1\ntime T\n || note text)`.
struct CosignatureV1 {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl CosignatureV1 {
    fn new(signer: &NoteSigner) -> CosignatureV1 {
        let key = signer.verifying_key();
        let mut material = vec![0x04];
        material.extend_from_slice(key.as_bytes());
        let name = signer.name().as_str().to_owned();
        CosignatureV1 {
            id: signed_note::key_id(&name, &material),
            name,
            key,
        }
    }
}

impl signed_note::Verifier for CosignatureV1 {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(raw) = <[u8; 72]>::try_from(sig) else {
            return false;
        };
        let time = u64::from_be_bytes(raw[..8].try_into().unwrap());
        let mut message = format!("cosignature/v1\ntime {time}\n").into_bytes();
        message.extend_from_slice(msg);
        let signature = ed25519_dalek::Signature::from_slice(&raw[8..]).unwrap();
        time > 0 && self.key.verify_strict(&message, &signature).is_ok()
    }
}

/// Checks `note` with `signed_note`: the operator's signature and the association's
/// cosignature both verify; returns the names it verified.
fn verified_by_signed_note(note: &str, operator: &NoteSigner) -> Vec<String> {
    use signed_note::{StandardVerifier, VerifierList};
    let verifiers = VerifierList::new(vec![
        Box::new(StandardVerifier::new(&operator.vkey()).unwrap()),
        Box::new(CosignatureV1::new(&test_association())),
    ]);
    let parsed = signed_note::Note::from_bytes(note.as_bytes()).expect("a signed note");
    let (verified, _) = parsed.verify(&verifiers).expect("verifies");
    let mut names: Vec<String> = verified.iter().map(|s| s.name().to_owned()).collect();
    names.sort();
    names
}

/// The names `signed_note` verifies on a cosigned checkpoint, sorted.
fn both_names(operator: &NoteSigner) -> Vec<String> {
    let mut names = vec![operator.name().to_string(), "assoc-01".to_string()];
    names.sort();
    names
}

/// A new ledger (genesis only) in a new directory; not yet served.
fn new_ledger() -> (tempfile::TempDir, Ledger, NoteSigner) {
    let tmp = tempfile::tempdir().unwrap();
    let (ledger, operator) = ledger_with_genesis(&tmp.path().join("data"));
    (tmp, ledger, operator)
}

/// Serves `ledger`, submitting its checkpoints to `witness`.
fn serve(
    tmp: tempfile::TempDir,
    ledger: Ledger,
    operator: NoteSigner,
    witness: &WitnessServer,
) -> Fixture {
    let server = Server::start(ledger, "127.0.0.1:0".parse().unwrap(), config_for(witness))
        .expect("start the ledger's server");
    Fixture {
        tmp,
        server,
        operator,
        client: Client::new(),
    }
}

/// Stops the server and serves the same directory again: its submitter starts knowing
/// nothing of the size the witness holds.
fn restart(f: Fixture, witness: &WitnessServer) -> Fixture {
    let Fixture {
        tmp,
        server,
        operator,
        ..
    } = f;
    server.shutdown().unwrap();
    let (ledger, _) = Ledger::open(&tmp.path().join("data")).unwrap();
    serve(tmp, ledger, operator, witness)
}

fn append(f: &Fixture, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        let response = f.post(register_institution(&f.operator, n).to_json());
        assert_eq!(response.status(), 200);
    }
}

/// The served checkpoint, its operator signature verified.
fn served_checkpoint(f: &Fixture) -> (String, SignedCheckpoint) {
    let text = f.get("/checkpoint").text().unwrap();
    let cp = SignedCheckpoint::parse_and_verify(text.as_bytes(), &f.verifier())
        .expect("the operator's checkpoint");
    (text, cp)
}

/// Polls `GET /checkpoint` until the checkpoint of `size` carries the association's
/// cosignature (the submitter runs apart from the writer, which never waits for it).
fn wait_for_cosigned(f: &Fixture, size: u64) -> (String, SignedCheckpoint) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (text, cp) = served_checkpoint(f);
        if cp.checkpoint().size == size && verify_cosignature(&cp, &association_cosigner()).is_ok()
        {
            return (text, cp);
        }
        assert!(
            Instant::now() < deadline,
            "no cosignature on size {size}: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn config_for(witness: &WitnessServer) -> ServerConfig {
    let target: WitnessTarget = format!("{}={}", witness.url(), association_cosigner().to_vkey())
        .parse()
        .expect("URL=VKEY");
    ServerConfig {
        witnesses: vec![target],
        ..ServerConfig::default()
    }
}

#[test]
fn our_log_submits_each_checkpoint_to_our_witness_and_serves_its_cosignature() {
    let wdir = tempfile::tempdir().unwrap();
    let (tmp, ledger, operator) = new_ledger();
    let witness = start_witness(wdir.path(), &operator);
    let f = serve(tmp, ledger, operator, &witness);
    wait_for_cosigned(&f, 1);
    append(&f, 1..=3);
    let (text, cp) = wait_for_cosigned(&f, 4);

    // Verified by ours and by an independent implementation.
    let time = verify_cosignature(&cp, &association_cosigner()).unwrap();
    assert!(time > 1_700_000_000, "a real POSIX time: {time}");
    assert_eq!(
        verified_by_signed_note(&text, &f.operator),
        both_names(&f.operator)
    );
    // Kept where `POST /v1/cosign` keeps lines, per association.
    let stored = f
        .tmp
        .path()
        .join(format!("data/cosignatures/{:020}/assoc-01", 4));
    assert!(stored.is_file(), "{}", stored.display());
    // The witness serves what it cosigned (tlog-witness monitoring).
    let hash = origin_hash(&Origin::new(ORIGIN).unwrap());
    let held = Client::new()
        .get(format!("{}/{hash}/checkpoint", witness.url()))
        .send()
        .unwrap();
    assert_eq!(held.status(), 200);
    let held = held.text().unwrap();
    assert!(held.starts_with(&cp.checkpoint().to_body()), "{held}");
    assert_eq!(
        verified_by_signed_note(&held, &f.operator),
        both_names(&f.operator)
    );
}

#[test]
fn a_students_client_counts_the_witness_cosignature_of_a_genesis_association() {
    use lesson_ledger::api::StudentAnswer;
    use lesson_ledger::client::{Client as LedgerClient, Trust};
    let wdir = tempfile::tempdir().unwrap();
    let (tmp, ledger, operator) = new_ledger();
    let witness = start_witness(wdir.path(), &operator);
    let f = serve(tmp, ledger, operator, &witness);
    crate::http::scenario(&f);
    let size = served_checkpoint(&f).1.checkpoint().size;
    wait_for_cosigned(&f, size);
    let trust =
        Trust::witnessed(f.verifier(), vec![test_association().verifier()], 1, None).unwrap();
    let client = LedgerClient::new(&f.server.url()).unwrap();
    client
        .balance_with::<StudentAnswer>("stu-3f9a", &trust)
        .expect("the witness's cosignature counts");
}

#[test]
fn the_witness_keeps_its_size_across_a_restart_and_never_rolls_back() {
    let wdir = tempfile::tempdir().unwrap();
    let (_tmp, mut ledger, operator) = new_ledger();
    let witness = start_witness(wdir.path(), &operator);
    grow(&mut ledger, &operator, 1..=4);
    let five = ledger.log().checkpoint().clone();
    assert_eq!(
        add_checkpoint(&witness, body_from(&ledger, 0)).status(),
        200
    );
    witness.shutdown().unwrap();

    let witness = start_witness(wdir.path(), &operator);
    // It still holds 5: a request from 0 is answered with the size it holds.
    let r = add_checkpoint(&witness, body_from(&ledger, 0));
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["content-type"], "text/x.tlog.size");
    assert_eq!(r.text().unwrap(), "5\n");

    grow(&mut ledger, &operator, 5..=7);
    assert_eq!(
        add_checkpoint(&witness, body_from(&ledger, 5)).status(),
        200
    );
    // The older checkpoint again: from what it holds (8) it is a rollback (400), and
    // from 5 it is a stale old size (409 with 8).
    let back_from_8 = AddCheckpoint {
        old_size: 8,
        proof: vec![],
        checkpoint: five.text().into_bytes(),
    };
    assert_eq!(
        add_checkpoint(&witness, back_from_8.to_body()).status(),
        400
    );
    let back_from_5 = AddCheckpoint {
        old_size: 5,
        proof: vec![],
        checkpoint: five.text().into_bytes(),
    };
    let r = add_checkpoint(&witness, back_from_5.to_body());
    assert_eq!(r.status(), 409);
    assert_eq!(r.text().unwrap(), "8\n");
    // Re-submitting what it holds is cosigned again (same size, same root).
    assert_eq!(
        add_checkpoint(&witness, body_from(&ledger, 8)).status(),
        200
    );
    let held = witness_held(&witness);
    assert!(held.starts_with(&ledger.log().checkpoint().checkpoint().to_body()));
}

fn witness_held(witness: &WitnessServer) -> String {
    let hash = origin_hash(&Origin::new(ORIGIN).unwrap());
    Client::new()
        .get(format!("{}/{hash}/checkpoint", witness.url()))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

fn split_views(witness: &WitnessServer) -> Vec<SplitView> {
    Client::new()
        .get(format!("{}/split-views", witness.url()))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn a_forked_log_is_refused_with_422_and_the_split_view_is_recorded() {
    let wdir = tempfile::tempdir().unwrap();
    let (tmp, mut ledger, operator) = new_ledger();
    // Two more ledger directories: same genesis, same key, same origin, other entries.
    let (fork_dir, twin_dir) = (tmp.path().join("fork"), tmp.path().join("twin"));
    copy_dir(&tmp.path().join("data"), &fork_dir);
    copy_dir(&tmp.path().join("data"), &twin_dir);
    let (mut fork, _) = Ledger::open(&fork_dir).unwrap();
    let (mut twin, _) = Ledger::open(&twin_dir).unwrap();
    grow(&mut ledger, &operator, 1..=3);
    grow(&mut fork, &operator, 11..=16);
    grow(&mut twin, &operator, 21..=23);
    let witness = start_witness(wdir.path(), &operator);
    assert_eq!(
        add_checkpoint(&witness, body_from(&ledger, 0)).status(),
        200
    );

    // The fork, larger, "proven" from the size the witness holds with its own tree.
    let r = add_checkpoint(&witness, body_from(&fork, 4));
    assert_eq!(r.status(), 422);
    assert!(r.text().unwrap().starts_with("root_mismatch"));
    // The twin: another root for the size the witness holds.
    let r = add_checkpoint(&witness, body_from(&twin, 4));
    assert_eq!(r.status(), 422);
    assert!(r.text().unwrap().starts_with("equal_sizes_different_roots"));

    let views = split_views(&witness);
    let reasons: Vec<&str> = views.iter().map(|v| v.reason.as_str()).collect();
    assert_eq!(reasons, ["root_mismatch", "equal_sizes_different_roots"]);
    let held_body = ledger.log().checkpoint().checkpoint().to_body();
    for (view, other) in views.iter().zip([&fork, &twin]) {
        assert_eq!(view.origin, ORIGIN);
        // Both checkpoints, each signed by the log: the evidence.
        assert!(view.held.starts_with(&held_body), "{view:?}");
        assert!(
            view.submitted.contains(&other.log().checkpoint().text()),
            "{view:?}"
        );
    }
    // On disk, in the witness's directory, and still there after a restart.
    witness.shutdown().unwrap();
    let witness = start_witness(wdir.path(), &operator);
    assert_eq!(split_views(&witness), views);
    // Nothing was cosigned for the forks: the witness still holds the first log's 4.
    let r = add_checkpoint(&witness, body_from(&ledger, 0));
    assert_eq!(r.status(), 409);
    assert_eq!(r.text().unwrap(), "4\n");
}

#[test]
fn a_forked_log_server_gets_no_cosignature_and_the_witness_records_it() {
    let wdir = tempfile::tempdir().unwrap();
    let (tmp, mut ledger, operator) = new_ledger();
    let fork_tmp = tempfile::tempdir().unwrap();
    copy_dir(&tmp.path().join("data"), &fork_tmp.path().join("data"));
    let (mut fork, _) = Ledger::open(&fork_tmp.path().join("data")).unwrap();
    grow(&mut ledger, &operator, 1..=3);
    grow(&mut fork, &operator, 11..=16);
    let witness = start_witness(wdir.path(), &operator);
    let same_operator = operator_of(&tmp.path().join("data"));
    let honest = serve(tmp, ledger, same_operator, &witness);
    wait_for_cosigned(&honest, 4);
    let forked = serve(fork_tmp, fork, operator, &witness);
    let deadline = Instant::now() + Duration::from_secs(20);
    while split_views(&witness).is_empty() {
        assert!(Instant::now() < deadline, "no split view recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (text, cp) = served_checkpoint(&forked);
    assert_eq!(cp.checkpoint().size, 7);
    assert!(
        verify_cosignature(&cp, &association_cosigner()).is_err(),
        "{text}"
    );
}

#[test]
fn a_stale_old_size_gets_409_and_the_log_recovers() {
    let wdir = tempfile::tempdir().unwrap();
    let (tmp, ledger, operator) = new_ledger();
    let witness = start_witness(wdir.path(), &operator);
    let f = serve(tmp, ledger, operator, &witness);
    append(&f, 1..=2);
    wait_for_cosigned(&f, 3);
    // A restarted server's submitter starts from size 0: the witness answers 409 with
    // the size it holds, and the submitter proves from there.
    let f = restart(f, &witness);
    append(&f, 3..=4);
    let (text, _) = wait_for_cosigned(&f, 5);
    assert_eq!(
        verified_by_signed_note(&text, &f.operator),
        both_names(&f.operator)
    );
}

#[test]
fn malformed_bodies_are_answered_400_and_unknown_logs_and_keys_404_and_403() {
    let wdir = tempfile::tempdir().unwrap();
    let (_tmp, mut ledger, operator) = new_ledger();
    grow(&mut ledger, &operator, 1..=2);
    let witness = start_witness(wdir.path(), &operator);
    let checkpoint = ledger.log().checkpoint().text();
    let h = Hash([7; 32]).to_base64();
    for (body, code) in [
        ("garbage".to_string(), "malformed_request"),
        (format!("old 01\n\n{checkpoint}"), "malformed_old_size"),
        (
            format!("old 1\nnot base64\n\n{checkpoint}"),
            "malformed_proof_line",
        ),
        (format!("old 9\n{h}\n\n{checkpoint}"), "old_size_too_large"),
        ("old 0\n\nnot a note".to_string(), "malformed_checkpoint"),
        (
            format!("old 0\n{}\n{checkpoint}", format!("{h}\n").repeat(64)),
            "too_many_proof_lines",
        ),
    ] {
        let r = add_checkpoint(&witness, body.clone());
        assert_eq!(r.status(), 400, "{body:?}");
        assert!(r.text().unwrap().starts_with(code), "{body:?}");
    }
    let not_utf8 = add_checkpoint(&witness, vec![b'o', b'l', b'd', 0xff]);
    assert_eq!(not_utf8.status(), 400);
    // Another origin: 404.
    let stranger = lesson_ledger::log::note::Checkpoint {
        origin: Origin::new("other.example/log").unwrap(),
        ..ledger.log().checkpoint().checkpoint().clone()
    };
    let signed = SignedCheckpoint::sign(stranger, &operator);
    let r = add_checkpoint(&witness, format!("old 0\n\n{}", signed.text()));
    assert_eq!(r.status(), 404);
    // Our origin, signed by another key under the operator's name: no trusted
    // signature, 403.
    let impostor = NoteSigner::new(
        operator.name().clone(),
        ed25519_dalek::SigningKey::from_bytes(&[99; 32]),
    );
    let forged = SignedCheckpoint::sign(ledger.log().checkpoint().checkpoint().clone(), &impostor);
    let r = add_checkpoint(&witness, format!("old 0\n\n{}", forged.text()));
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().starts_with("no_trusted_signature"));
    // The operator's key id with a signature that does not verify: 403.
    let (head, sig) = checkpoint.trim_end().rsplit_once(' ').unwrap();
    let mut raw = base64_decode(sig);
    *raw.last_mut().unwrap() ^= 1;
    let tampered = format!("{head} {}\n", base64_encode(&raw));
    let r = add_checkpoint(&witness, format!("old 0\n\n{tampered}"));
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().starts_with("bad_signature"));
    // Nothing was cosigned by any of these.
    let r = add_checkpoint(&witness, body_from(&ledger, 1));
    assert_eq!(r.status(), 409);
    assert_eq!(r.text().unwrap(), "0\n");
}

#[test]
fn a_witness_key_that_is_not_a_registered_association_key_is_refused_at_start() {
    let (tmp, ledger, _operator) = new_ledger();
    let stranger = party_signer("assoc-99", 99).cosigner_key();
    let target: WitnessTarget = format!("http://127.0.0.1:9={}", stranger.to_vkey())
        .parse()
        .unwrap();
    let config = ServerConfig {
        witnesses: vec![target],
        ..ServerConfig::default()
    };
    let err = Server::start(ledger, "127.0.0.1:0".parse().unwrap(), config).err();
    assert!(matches!(err, Some(ServeError::Witness(_))), "{err:?}");
    drop(tmp);
}

#[test]
fn a_witness_whose_stored_state_is_damaged_does_not_start_rather_than_roll_back() {
    let wdir = tempfile::tempdir().unwrap();
    let (_tmp, mut ledger, operator) = new_ledger();
    grow(&mut ledger, &operator, 1..=2);
    let witness = start_witness(wdir.path(), &operator);
    assert_eq!(
        add_checkpoint(&witness, body_from(&ledger, 0)).status(),
        200
    );
    witness.shutdown().unwrap();
    let held = wdir
        .path()
        .join("logs")
        .join(origin_hash(&Origin::new(ORIGIN).unwrap()))
        .join("checkpoint");
    let text = std::fs::read_to_string(&held).unwrap();
    // Cut in the middle of the signature lines, as a torn copy would be.
    std::fs::write(&held, &text[..text.len() - 10]).unwrap();
    let log = TrustedLog::new(Origin::new(ORIGIN).unwrap(), vec![operator.verifier()]);
    let err = Witness::open(wdir.path(), test_association(), vec![log]).unwrap_err();
    assert!(
        matches!(
            err,
            lesson_ledger::witness::store::StoreError::Damaged { .. }
        ),
        "{err}"
    );
}

#[test]
fn the_witness_command_cosigns_over_a_real_socket_with_a_keygen_key() {
    use std::io::BufRead as _;
    let keys = tempfile::tempdir().unwrap();
    let prefix = crate::support::write_test_association(keys.path());
    let (_tmp, mut ledger, operator) = new_ledger();
    grow(&mut ledger, &operator, 1..=2);
    let wdir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
        .args(["witness", "--addr", "127.0.0.1:0", "--data"])
        .arg(wdir.path())
        .arg("--key")
        .arg(prefix.with_extension("key"))
        .arg("--log")
        .arg(format!("{ORIGIN}={}", operator.vkey()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run lesson-ledger witness");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(
        first,
        format!("witness {}", association_cosigner().to_vkey())
    );
    let url = lines.next().unwrap().unwrap();
    let url = url
        .strip_prefix("listening on ")
        .expect("its address")
        .to_owned();
    let response = Client::new()
        .post(format!("{url}/add-checkpoint"))
        .body(body_from(&ledger, 0))
        .send()
        .unwrap();
    let status = response.status();
    let line = response.text().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200, "{line}");
    let mut cp = ledger.log().checkpoint().clone();
    cp.add_signature_lines(&line).unwrap();
    verify_cosignature(&cp, &association_cosigner()).expect("the association's cosignature");
}
