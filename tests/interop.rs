//! Interoperability, as an outside tool sees the ledger: keys that OpenSSL and Python's
//! `cryptography` read and write, checkpoints signed under a key named after the origin
//! (C2SP tlog-checkpoint), receipts that stand alone, and errors that name what was
//! wrong. The tools are the real ones: the `openssl` command (CI installs it) and
//! `python3 -c 'import cryptography'` (skipped, with a note, when not importable).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use lesson_ledger::client::verify_receipt;
use lesson_ledger::http::entries::EntryResult;
use lesson_ledger::ledger::PAYLOAD_TYPE;
use lesson_ledger::log::envelope::{pae, Envelope, KeyCache};
use lesson_ledger::log::note::{NoteVerifier, SignedCheckpoint};
use lesson_ledger::log::store::Receipt;
use serde_json::Value;
use tempfile::TempDir;

use crate::cli::run;
use crate::support::register_institution;

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs `openssl` with `args`; the tests need it (CI installs it if missing).
fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the `openssl` command is required by these tests (apt-get install openssl)")
}

/// The raw 32-byte public key OpenSSL derives from a private key file.
fn openssl_public_key(key: &Path) -> Vec<u8> {
    let out = openssl(&["pkey", "-in", s(key), "-pubout", "-outform", "DER"]);
    assert!(out.status.success(), "openssl refused {key:?}: {out:?}");
    // SubjectPublicKeyInfo of Ed25519: a 12-byte header, then the key.
    assert_eq!(out.stdout.len(), 44, "{out:?}");
    out.stdout[12..].to_vec()
}

/// OpenSSL's Ed25519 signature of `message` under the key file (deterministic, RFC 8032).
fn openssl_sign(tmp: &Path, key: &Path, message: &[u8]) -> Vec<u8> {
    let input = tmp.join("message.bin");
    fs::write(&input, message).unwrap();
    let out = openssl(&[
        "pkeyutl",
        "-sign",
        "-rawin",
        "-inkey",
        s(key),
        "-in",
        s(&input),
    ]);
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

fn public_key_of_vkey(vkey: &str) -> Vec<u8> {
    let verifier = NoteVerifier::from_vkey(vkey.trim()).expect("a verifier key");
    verifier.verifying_key().to_bytes().to_vec()
}

/// Signs `payload` with `lesson-ledger sign --signer PREFIX`.
fn sign_with(tmp: &Path, prefix: &Path, payload: &str) -> Envelope {
    let file = tmp.join("payload.json");
    fs::write(&file, payload).unwrap();
    let out = run(&[
        "sign",
        "--payload-type",
        PAYLOAD_TYPE,
        "--signer",
        s(prefix),
        s(&file),
    ]);
    Envelope::from_json(ok(&out).trim().as_bytes()).expect("an envelope")
}

#[test]
fn a_key_written_by_keygen_is_read_by_openssl_and_signs_as_openssl_does() {
    let tmp = TempDir::new().unwrap();
    let prefix = tmp.path().join("inst-0001");
    let vkey = ok(&run(&[
        "keygen",
        "--name",
        "inst-0001",
        "--out",
        s(&prefix),
    ]));
    let key = tmp.path().join("inst-0001.key");
    // OpenSSL 3.0 answered "unsupported" to the PKCS#8 v2 file keygen used to write.
    assert_eq!(openssl_public_key(&key), public_key_of_vkey(&vkey));
    let envelope = sign_with(tmp.path(), &prefix, r#"{"id":"x"}"#);
    let message = pae(envelope.payload_type(), envelope.payload());
    assert_eq!(
        openssl_sign(tmp.path(), &key, &message),
        envelope.signatures()[0].sig().to_vec(),
        "the same key signs the same bytes the same way in both tools"
    );
}

#[test]
fn a_key_made_by_openssl_is_named_by_keygen_and_signs_with_sign() {
    let tmp = TempDir::new().unwrap();
    let key = tmp.path().join("inst-0002.key");
    let out = openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&key)]);
    assert!(out.status.success(), "{out:?}");
    let made = fs::read(&key).unwrap();

    // Named in place: only the .pub is written, the key is left as OpenSSL made it.
    let prefix = tmp.path().join("inst-0002");
    let vkey = ok(&run(&[
        "keygen",
        "--name",
        "inst-0002",
        "--from",
        s(&key),
        "--out",
        s(&prefix),
    ]));
    assert_eq!(fs::read(&key).unwrap(), made);
    assert_eq!(public_key_of_vkey(&vkey), openssl_public_key(&key));
    let envelope = sign_with(tmp.path(), &prefix, r#"{"id":"y"}"#);
    envelope
        .clone()
        .verify(&KeyCache::self_certifying())
        .expect("the envelope signed with OpenSSL's key verifies");
    let message = pae(envelope.payload_type(), envelope.payload());
    assert_eq!(
        openssl_sign(tmp.path(), &key, &message),
        envelope.signatures()[0].sig().to_vec()
    );

    // Copied to another prefix: written as PKCS#8 v1, the very bytes OpenSSL wrote.
    let copy = tmp.path().join("copy");
    ok(&run(&[
        "keygen",
        "--name",
        "inst-0002",
        "--from",
        s(&key),
        "--out",
        s(&copy),
    ]));
    assert_eq!(fs::read(tmp.path().join("copy.key")).unwrap(), made);
}

#[test]
fn a_key_written_by_keygen_is_read_by_python_cryptography() {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("note: python3 with `cryptography` is not available; this check is skipped");
        return;
    }
    let tmp = TempDir::new().unwrap();
    let prefix = tmp.path().join("assoc-01");
    let vkey = ok(&run(&["keygen", "--name", "assoc-01", "--out", s(&prefix)]));
    let envelope = sign_with(tmp.path(), &prefix, r#"{"id":"z"}"#);
    let message = tmp.path().join("message.bin");
    fs::write(&message, pae(envelope.payload_type(), envelope.payload())).unwrap();
    // `cryptography` 48 answered "extra data" to the v2 file.
    let script = "import sys\n\
        from cryptography.hazmat.primitives import serialization as s\n\
        k = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)\n\
        pub = k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)\n\
        print(pub.hex(), k.sign(open(sys.argv[2], 'rb').read()).hex())\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(tmp.path().join("assoc-01.key"))
        .arg(&message)
        .output()
        .unwrap();
    let text = ok(&out);
    let mut words = text.split_whitespace();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(words.next(), Some(hex(&public_key_of_vkey(&vkey)).as_str()));
    assert_eq!(
        words.next(),
        Some(hex(envelope.signatures()[0].sig()).as_str())
    );
}

/// The name on the checkpoint's signature line.
fn signature_line_name(checkpoint: &str) -> String {
    let line = checkpoint
        .lines()
        .find(|l| l.starts_with('\u{2014}'))
        .expect("a signature line");
    line.split(' ').nth(1).expect("a key name").to_owned()
}

#[test]
fn a_new_ledger_signs_its_checkpoints_under_a_key_named_after_its_origin() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    let origin = "lessons.example/interop";
    let association = crate::support::write_test_association(tmp.path());
    let vkey = ok(&run(&[
        "init",
        "--data",
        s(&data),
        "--origin",
        origin,
        "--association",
        s(&association),
    ]));
    assert!(vkey.starts_with(&format!("{origin}+")), "{vkey}");
    let checkpoint = ok(&run(&["checkpoint", "--data", s(&data)]));
    assert_eq!(signature_line_name(&checkpoint), origin);
    let verifier = NoteVerifier::from_vkey(vkey.trim()).unwrap();
    SignedCheckpoint::parse_and_verify(checkpoint.as_bytes(), &verifier).unwrap();
    // The operator's party ref is still "operator": names of keys and of parties differ.
    let info: Value =
        serde_json::from_str(&ok(&run(&["report", "--data", s(&data), "--pool"]))).unwrap();
    assert!(info["pool"].is_object(), "{info}");
    // `sign --signer DIR/operator` signs under the origin's name too.
    let envelope = sign_with(tmp.path(), &data.join("operator"), r#"{"id":"w"}"#);
    assert_eq!(envelope.signatures()[0].keyid(), vkey.trim());
    let out = run(&["verify", "--data", s(&data), "--operator-key", vkey.trim()]);
    assert!(ok(&out).contains("1 entries"), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("log.json"));
    // Without a key brought from outside, verify says where its trust anchor came from.
    let out = run(&["verify", "--data", s(&data)]);
    assert!(ok(&out).contains("1 entries"), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log.json, in the directory audited"),
        "{out:?}"
    );
}

#[test]
fn a_ledger_whose_key_is_named_operator_is_still_read_and_verified() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    let association = crate::support::write_test_association(tmp.path());
    let vkey = ok(&run(&[
        "init",
        "--data",
        s(&data),
        "--origin",
        "lessons.example/old",
        "--key-name",
        "operator",
        "--association",
        s(&association),
    ]));
    assert!(vkey.starts_with("operator+"), "{vkey}");
    let checkpoint = ok(&run(&["checkpoint", "--data", s(&data)]));
    assert_eq!(signature_line_name(&checkpoint), "operator");
    let out = run(&["verify", "--data", s(&data), "--operator-key", vkey.trim()]);
    assert!(ok(&out).contains("1 entries"), "{out:?}");
    let op = crate::support::operator_of(&data);
    assert_eq!(op.vkey(), vkey.trim());
}

#[test]
fn an_origin_that_cannot_name_a_key_asks_for_key_name_and_creates_nothing() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    let association = crate::support::write_test_association(tmp.path());
    let out = run(&[
        "init",
        "--data",
        s(&data),
        "--origin",
        "lessons.example/a+b",
        "--association",
        s(&association),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--key-name"),
        "{out:?}"
    );
    assert!(!data.exists(), "nothing is created");
}

/// The receipt of a registration posted to a fresh server, and the envelope posted.
fn posted(f: &crate::http::Fixture) -> (Receipt, Envelope) {
    let envelope = register_institution(&f.operator, 1);
    let result: EntryResult = f.post(envelope.to_json()).json().expect("a result");
    assert_eq!(result.status, "ok");
    (result.receipt.expect("a receipt"), envelope)
}

#[test]
fn a_receipt_ties_the_entry_id_to_its_leaf_without_fetching_the_entry() {
    let f = crate::http::Fixture::new();
    let (receipt, envelope) = posted(&f);
    assert!(receipt.time_micros > 0);
    let cp = verify_receipt(&receipt, &envelope, &f.verifier()).expect("the receipt verifies");
    assert_eq!(cp.checkpoint().size, 2);

    // Another time, another index, another envelope: each is caught by the receipt alone.
    let mut later = receipt.clone();
    later.time_micros += 1;
    let err = verify_receipt(&later, &envelope, &f.verifier()).unwrap_err();
    assert!(err.to_string().contains("hashes to"), "{err}");
    let other = register_institution(&f.operator, 2);
    let err = verify_receipt(&receipt, &other, &f.verifier()).unwrap_err();
    assert!(err.to_string().contains("entry id"), "{err}");
    let mut moved = receipt.clone();
    moved.index = 0;
    assert!(verify_receipt(&moved, &envelope, &f.verifier()).is_err());
    let stranger = crate::support::signer("operator", 99).verifier();
    let err = verify_receipt(&receipt, &envelope, &stranger).unwrap_err();
    assert!(err.to_string().contains("checkpoint"), "{err}");

    // The receipt of the same statement again carries the same time.
    let again: EntryResult = f.post(envelope.to_json()).json().unwrap();
    assert_eq!(again.status, "exists");
    assert_eq!(again.receipt.unwrap().time_micros, receipt.time_micros);
}

#[test]
fn client_submit_checks_every_receipt_it_is_given() {
    let f = crate::http::Fixture::new();
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("entry.json");
    fs::write(&file, register_institution(&f.operator, 3).to_json()).unwrap();
    let vkey = f.operator.vkey();
    let out = run(&[
        "client",
        "submit",
        "--url",
        &f.server.url(),
        "--operator-key",
        &vkey,
        s(&file),
    ]);
    let line: Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert_eq!(line["result"]["status"], "ok");
    // Under a key the server's checkpoints are not signed by, the receipt fails.
    let stranger = crate::support::signer("operator", 98).vkey();
    let out = run(&[
        "client",
        "submit",
        "--url",
        &f.server.url(),
        "--operator-key",
        &stranger,
        s(&file),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("receipt of entry"),
        "{out:?}"
    );
}

#[test]
fn a_proof_asked_in_a_tree_too_large_says_the_tree_size_is_wrong_not_the_index() {
    let f = crate::http::Fixture::new();
    posted(&f);
    for (path, says) in [
        (
            "/v1/proofs/inclusion?index=0&size=370",
            "tree size 370 is larger than the log (2 entries)",
        ),
        (
            "/v1/proofs/inclusion?index=2&size=2",
            "index 2 is out of range for tree size 2",
        ),
        (
            "/v1/proofs/consistency?from=1&to=370",
            "tree size 370 is larger than the log (2 entries)",
        ),
        (
            "/v1/proofs/consistency?from=2&to=1",
            "from 2 is larger than to 1",
        ),
    ] {
        let response = f.get(path);
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let problem: Value = response.json().unwrap();
        assert_eq!(problem["code"], "out_of_range", "{path}: {problem}");
        assert_eq!(problem["detail"], says, "{path}: {problem}");
    }
}

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/examples")
}

#[test]
fn the_example_receipt_is_a_receipt_of_the_example_envelope() {
    let envelope = Envelope::from_json(&fs::read(examples().join("envelope.json")).unwrap())
        .expect("the example envelope");
    let receipt: Receipt =
        serde_json::from_slice(&fs::read(examples().join("receipt.json")).unwrap()).unwrap();
    let vkey = fs::read_to_string(examples().join("operator.vkey")).unwrap();
    let operator = NoteVerifier::from_vkey(vkey.trim()).unwrap();
    let cp = verify_receipt(&receipt, &envelope, &operator).unwrap_or_else(|e| {
        panic!(
            "{e}; after changing the example envelope, run \
             `cargo test --test tests -- --ignored interop::regenerate_the_example_receipt`"
        )
    });
    // C2SP: the log's key is named after its origin.
    assert_eq!(operator.name().as_str(), cp.checkpoint().origin.as_str());
}

/// Writes `schemas/examples/receipt.json` and `operator.vkey` anew: a real log (origin
/// `ledger.example/sh-2021`, one entry before the example's) and its receipt.
#[test]
#[ignore = "rewrites schemas/examples/receipt.json; run when the example envelope changes"]
fn regenerate_the_example_receipt() {
    use lesson_ledger::log::store::{AdmitAll, EntryIdOnly, Log, Outcome};
    let tmp = TempDir::new().unwrap();
    let origin = "ledger.example/sh-2021";
    let mut log = Log::create(tmp.path(), origin, origin, Box::new(EntryIdOnly)).unwrap();
    let example = Envelope::from_json(&fs::read(examples().join("envelope.json")).unwrap())
        .unwrap()
        .verify(&KeyCache::self_certifying())
        .unwrap();
    let before = crate::support::envelope(&[&crate::support::signer("inst-0001", 1)], "x", 1);
    let outcomes = log
        .append(
            vec![crate::support::verified(before), example],
            &mut AdmitAll,
        )
        .unwrap();
    let Some(Outcome::Ok(receipt)) = outcomes.into_iter().nth(1) else {
        panic!("the example was not appended");
    };
    let json = serde_json::to_string_pretty(&receipt).unwrap();
    fs::write(examples().join("receipt.json"), format!("{json}\n")).unwrap();
    let vkey = log.config().operator_vkey.clone();
    fs::write(examples().join("operator.vkey"), format!("{vkey}\n")).unwrap();
}

#[test]
fn the_cli_names_the_wrong_number_of_a_proof_request_too() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    let association = crate::support::write_test_association(tmp.path());
    ok(&run(&[
        "init",
        "--data",
        s(&data),
        "--origin",
        "lessons.example/p",
        "--association",
        s(&association),
    ]));
    for (args, says) in [
        (
            vec!["inclusion", "--index", "0", "--size", "370"],
            "tree size 370 is larger than the log (1 entries)",
        ),
        (
            vec!["consistency", "--from", "1", "--to", "370"],
            "tree size 370 is larger than the log (1 entries)",
        ),
        (
            vec!["inclusion", "--index", "1"],
            "index 1 is out of range for tree size 1",
        ),
    ] {
        let mut full = vec!["proof"];
        full.extend(&args);
        full.extend(["--data", s(&data)]);
        let out = run(&full);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn keygen_from_a_file_that_is_not_a_key_writes_nothing() {
    let tmp = TempDir::new().unwrap();
    let not_key = tmp.path().join("notes.txt");
    fs::write(&not_key, "not a key\n").unwrap();
    let prefix = tmp.path().join("k");
    let out = run(&[
        "keygen",
        "--name",
        "inst-0003",
        "--from",
        s(&not_key),
        "--out",
        s(&prefix),
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PKCS#8 PEM Ed25519"));
    assert!(!tmp.path().join("k.key").exists());
    assert!(!tmp.path().join("k.pub").exists());
}
