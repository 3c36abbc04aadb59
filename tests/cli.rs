//! The command line, run as a user runs it: the real binary on real directories.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use lesson_ledger::http::reads::{ConsistencyProof, InclusionProof};
use lesson_ledger::log::hash::Hash;
use lesson_ledger::log::note::{NoteVerifier, SignedCheckpoint};
use lesson_ledger::log::proof::{verify_consistency, verify_inclusion};
use tempfile::TempDir;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run lesson-ledger")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn decode(hashes: &[String]) -> Vec<Hash> {
    hashes
        .iter()
        .map(|h| Hash::from_base64(h).expect("base64 hash"))
        .collect()
}

/// init (with the default genesis, declaring the test association whose key is written
/// to `tmp/assoc-01.{key,pub}`), keygen: a ledger and one signer prefix.
fn setup(tmp: &TempDir) -> (String, String) {
    let data = tmp.path().join("data");
    let association = crate::support::write_test_association(tmp.path());
    let out = run(&[
        "init",
        "--data",
        s(&data),
        "--origin",
        "lessons.example/cli",
        "--association",
        s(&association),
    ]);
    assert_eq!(code(&out), 0, "{out:?}");
    let vkey = stdout(&out).trim().to_string();
    let prefix = tmp.path().join("inst-0001");
    let out = run(&["keygen", "--name", "inst-0001", "--out", s(&prefix)]);
    assert_eq!(code(&out), 0, "{out:?}");
    (vkey, s(&prefix).to_string())
}

/// `sign` a payload with the given signer prefixes into an envelope file.
fn sign(tmp: &TempDir, signers: &[&str], name: &str, payload: &str) -> std::path::PathBuf {
    let payload_path = tmp.path().join(format!("{name}.payload"));
    fs::write(&payload_path, payload).unwrap();
    let mut args = vec![
        "sign",
        "--payload-type",
        lesson_ledger::ledger::PAYLOAD_TYPE,
    ];
    for signer in signers {
        args.extend(["--signer", signer]);
    }
    args.push(s(&payload_path));
    let out = run(&args);
    assert_eq!(code(&out), 0, "{out:?}");
    let env_path = tmp.path().join(format!("{name}.json"));
    fs::write(&env_path, stdout(&out)).unwrap();
    env_path
}

/// The payload registering the key pair at `prefix` as institution `inst-0001`.
fn registration(prefix: &str) -> String {
    let vkey = fs::read_to_string(format!("{prefix}.pub")).unwrap();
    serde_json::json!({"kind": "party_registered", "id": "reg-1", "ledger": "lessons.example/cli",
        "party": "inst-0001", "role": "institution", "key": vkey.trim()})
    .to_string()
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["key", "--help"],
        vec!["keygen", "--help"],
        vec!["sign", "--help"],
        vec!["append", "--help"],
        vec!["checkpoint", "--help"],
        vec!["proof", "--help"],
        vec!["proof", "inclusion", "--help"],
        vec!["proof", "consistency", "--help"],
        vec!["verify", "--help"],
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 0, "{args:?}");
        assert!(stdout(&out).contains("Usage"), "{args:?}");
    }
    assert_eq!(code(&run(&["no-such-command"])), 2);
}

#[test]
fn init_key_keygen_sign_append_checkpoint_proof_verify() {
    let tmp = TempDir::new().unwrap();
    let (vkey, prefix) = setup(&tmp);
    let data = tmp.path().join("data");
    let verifier = NoteVerifier::from_vkey(&vkey).unwrap();

    // `key` prints the same key again; init refuses to overwrite.
    assert_eq!(stdout(&run(&["key", "--data", s(&data)])).trim(), vkey);
    assert_eq!(
        code(&run(&[
            "init",
            "--data",
            s(&data),
            "--origin",
            "lessons.example/cli",
            "--association",
            s(&tmp.path().join("assoc-01")),
        ])),
        4
    );

    // keygen: 0600 private key, refuses to overwrite.
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(format!("{prefix}.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_ne!(
        code(&run(&["keygen", "--name", "inst-0001", "--out", &prefix])),
        0
    );
    assert!(fs::read_to_string(format!("{prefix}.pub"))
        .unwrap()
        .starts_with("inst-0001+"));

    let operator = format!("{}/operator", data.display());
    let association = format!("{}/assoc-01", tmp.path().display());
    let e1 = sign(
        &tmp,
        &[&operator, &association, &prefix],
        "e1",
        &registration(&prefix),
    );
    let e2 = sign(
        &tmp,
        &[&operator],
        "e2",
        r#"{"kind":"institution_closed","id":"close-1","ledger":"lessons.example/cli","institution":"inst-0001","reason":"abnormal_closure"}"#,
    );
    let out = run(&["append", "--data", s(&data), s(&e1), s(&e2)]);
    assert_eq!(code(&out), 0, "{out:?}");
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["status"], "ok", "{line}");
        assert_eq!(
            line["receipt"]["index"],
            i as u64 + 1,
            "entry 0 is the genesis"
        );
    }
    // Again: the first receipts, nothing added.
    let out = run(&["append", "--data", s(&data), s(&e1)]);
    assert_eq!(code(&out), 0);
    let again: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(again["status"], "exists");
    assert_eq!(again["receipt"]["index"], 1);

    // The checkpoint verifies with the printed key.
    let cp_text = stdout(&run(&["checkpoint", "--data", s(&data)]));
    let cp = SignedCheckpoint::parse_and_verify(cp_text.as_bytes(), &verifier).unwrap();
    assert_eq!(cp.checkpoint().size, 3);
    let all = stdout(&run(&["checkpoint", "--data", s(&data), "--all"]));
    assert_eq!(
        all.lines().filter(|l| *l == "lessons.example/cli").count(),
        3,
        "empty tree, genesis, one batch"
    );

    // Proofs, by index and by entry id, verify.
    let entry_id = lines[1]["receipt"]["entry_id"].as_str().unwrap();
    for args in [vec!["--index", "2"], vec!["--entry-id", entry_id]] {
        let mut full = vec!["proof", "inclusion", "--data", s(&data)];
        full.extend(args);
        // The JSON of `GET /v1/proofs/inclusion`, parsed by the server's own type (which
        // refuses unknown fields): no unsigned root beside the signed checkpoint.
        let p: InclusionProof = serde_json::from_str(&stdout(&run(&full))).unwrap();
        assert_eq!((p.index, p.size), (2, 3));
        let leaf = Hash::from_base64(&p.leaf_hash).unwrap();
        verify_inclusion(&leaf, 2, 3, &decode(&p.proof), &cp.checkpoint().root).unwrap();
    }
    let p: ConsistencyProof = serde_json::from_str(&stdout(&run(&[
        "proof",
        "consistency",
        "--data",
        s(&data),
        "--from",
        "1",
    ])))
    .unwrap();
    assert_eq!((p.from, p.to), (1, 3));
    // The older root comes signed, from the checkpoint of size 1 (the genesis batch).
    let older = &all[all.find("lessons.example/cli\n1\n").unwrap()..];
    let body_end = older.find("\n\n").unwrap() + 2;
    let one_signature_line = body_end + older[body_end..].find('\n').unwrap() + 1;
    let older =
        SignedCheckpoint::parse_and_verify(&older.as_bytes()[..one_signature_line], &verifier)
            .unwrap();
    verify_consistency(
        1,
        3,
        &older.checkpoint().root,
        &cp.checkpoint().root,
        &decode(&p.proof),
    )
    .unwrap();
    let beyond = run(&["proof", "inclusion", "--data", s(&data), "--index", "3"]);
    assert_ne!(code(&beyond), 0);

    // Balances and reports, with the entries they derive from.
    let report: serde_json::Value = serde_json::from_str(&stdout(&run(&[
        "report",
        "--data",
        s(&data),
        "--institution",
        "inst-0001",
    ])))
    .unwrap();
    assert_eq!(report["institution_report"]["students"], 0, "{report}");
    let out = run(&["report", "--data", s(&data), "--institution", "inst-9999"]);
    assert_eq!(code(&out), 3, "an unknown institution is refused: {out:?}");
    let pool: serde_json::Value =
        serde_json::from_str(&stdout(&run(&["report", "--data", s(&data), "--pool"]))).unwrap();
    assert!(pool["pool"].is_object(), "{pool}");
    assert_eq!(
        code(&run(&["balance", "--data", s(&data), "--claim", "c-404"])),
        3
    );
    assert_eq!(
        code(&run(&["balance", "--data", s(&data)])),
        2,
        "a target is required"
    );

    // verify: passes, with the key and a receipt's checkpoint brought from outside.
    let receipt_cp = tmp.path().join("receipt.checkpoint");
    fs::write(
        &receipt_cp,
        lines[0]["receipt"]["checkpoint"].as_str().unwrap(),
    )
    .unwrap();
    let out = run(&[
        "verify",
        "--data",
        s(&data),
        "--operator-key",
        &vkey,
        "--checkpoint",
        s(&receipt_cp),
    ]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).contains("3 entries"), "{out:?}");
    assert!(
        stdout(&out).contains("equal to the stored state"),
        "{out:?}"
    );

    // ...and fails with exit code 1 once a bit is flipped.
    let log_dat = data.join("log.dat");
    let mut bytes = fs::read(&log_dat).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 4;
    fs::write(&log_dat, &bytes).unwrap();
    let out = run(&["verify", "--data", s(&data)]);
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("verification failed"));
}

#[test]
fn bad_envelopes_are_refused_with_their_code_and_exit_3() {
    let tmp = TempDir::new().unwrap();
    let (_, prefix) = setup(&tmp);
    let data = tmp.path().join("data");
    let operator = format!("{}/operator", data.display());
    let association = format!("{}/assoc-01", tmp.path().display());
    let good = sign(
        &tmp,
        &[&operator, &association, &prefix],
        "good",
        &registration(&prefix),
    );
    let good_json: serde_json::Value = serde_json::from_slice(&fs::read(&good).unwrap()).unwrap();
    let mut cases: Vec<(&str, String)> = vec![
        ("malformed_json", "{not json".into()),
        (
            "malformed_base64",
            good_json
                .to_string()
                .replace(good_json["payload"].as_str().unwrap(), "***"),
        ),
        ("unknown_field", {
            let mut v = good_json.clone();
            v["extra"] = 1.into();
            v.to_string()
        }),
        ("missing_field", {
            let mut v = good_json.clone();
            v.as_object_mut().unwrap().remove("payloadType");
            v.to_string()
        }),
        ("no_signatures", {
            let mut v = good_json.clone();
            v["signatures"] = serde_json::json!([]);
            v.to_string()
        }),
        ("duplicate_signature", {
            let mut v = good_json.clone();
            let sig = v["signatures"][0].clone();
            v["signatures"] = serde_json::json!([sig.clone(), sig]);
            v.to_string()
        }),
        ("bad_signature", {
            let mut v = good_json.clone();
            v["payload"] = "eyJpZCI6ImgifQ==".into();
            v.to_string()
        }),
        // Well signed, but the rules refuse it: the institution is unknown.
        ("institution_unknown", fs::read_to_string(sign(&tmp, &[&operator], "unknown", r#"{"kind":"institution_closed","id":"c-9","ledger":"lessons.example/cli","institution":"inst-9999","reason":"ceased_trading"}"#)).unwrap()),
        // Well signed, but not by the party the rules require.
        ("missing_signature", fs::read_to_string(sign(&tmp, &[&operator], "nopop", &registration(&prefix))).unwrap()),
    ];
    cases.push((
        "envelope_too_large",
        format!(
            "{{\"payloadType\":\"x\",\"payload\":\"{}\",\"signatures\":[]}}",
            "A".repeat(70_000)
        ),
    ));
    let before = fs::read(data.join("log.dat")).unwrap();
    for (want, text) in &cases {
        let path = tmp.path().join(format!("{want}.json"));
        fs::write(&path, text).unwrap();
        let out = run(&["append", "--data", s(&data), s(&path)]);
        assert_eq!(code(&out), 3, "{want}: {out:?}");
        let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(line["status"], *want, "{line}");
        assert_eq!(
            fs::read(data.join("log.dat")).unwrap(),
            before,
            "{want}: the log must be unchanged"
        );
    }
    // A good and a bad one together: the good one lands, exit 3 says something was refused.
    let bad = tmp.path().join("bad_signature.json");
    let out = run(&["append", "--data", s(&data), s(&good), s(&bad)]);
    assert_eq!(code(&out), 3);
    assert!(stdout(&out).lines().next().unwrap().contains("\"ok\""));
}

#[test]
fn missing_or_damaged_stores_exit_4() {
    let tmp = TempDir::new().unwrap();
    let nowhere = tmp.path().join("nowhere");
    assert_eq!(code(&run(&["checkpoint", "--data", s(&nowhere)])), 4);
    assert_eq!(code(&run(&["key", "--data", s(&nowhere)])), 4);
    assert_eq!(code(&run(&["verify", "--data", s(&nowhere)])), 4);
}

#[test]
fn match_dry_run_writes_nothing_and_match_records_allocations_the_rules_accept() {
    let tmp = TempDir::new().unwrap();
    let config = lesson_ledger::demo::DemoConfig {
        data: tmp.path().join("demo"),
        scale: lesson_ledger::demo::Scale::Tiny,
        seed: 7,
        keep_serving: false,
    };
    lesson_ledger::demo::run(&config).expect("the tiny demo runs");
    let data = tmp.path().join("demo/ledger");
    let size = |data: &Path| -> u64 {
        let cp = stdout(&run(&["checkpoint", "--data", s(data)]));
        cp.lines().nth(1).unwrap().parse().unwrap()
    };
    let before = size(&data);
    let out = run(&["match", "--data", s(&data), "--dry-run"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    let report_end = text.find("\n}\n").map(|i| i + 2).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text[..report_end]).unwrap();
    let planned = report["report"]["allocations"].as_u64().unwrap();
    assert!(
        report["report"]["matched_fen"].as_u64().unwrap()
            <= report["report"]["bound_fen"].as_u64().unwrap()
    );
    assert_eq!(size(&data), before, "a dry run writes nothing");
    let out = run(&["match", "--data", s(&data)]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(
        size(&data),
        before + 1 + planned,
        "one match_run, then one allocation_made per plan"
    );
    let out = run(&["verify", "--data", s(&data)]);
    assert_eq!(code(&out), 0, "{out:?}");
    // The demo's own run (POST /v1/match) and this one.
    assert!(
        stdout(&out).contains("match runs: 2 re-run, each equal to its record"),
        "{out:?}"
    );
}
