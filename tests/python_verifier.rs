//! The rules specification (`schemas/RULES.md`) is implementable from the page alone: a
//! verifier written in Python from it (`scripts/verify_state.py`, no line of our code)
//! replays the tiny demo's ledger and recomputes the root of every state note the
//! operator signed, and it catches a state note re-signed over another root, at its
//! index, and a note signed by another key; it checks the state map's own proofs and
//! refuses each mutation of them with its code; and the worked example of the spec is
//! what the ledger's types and its state map compute.
//!
//! Needs `python3` with the `blake3` and `cryptography` packages (`.ci/run` installs
//! them); without them each test says why and passes without checking.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use lesson_ledger::demo::{self, DemoConfig, Scale};
use lesson_ledger::ledger::state_map::proof::{
    internal_hash, leaf_hash, reference_proof, root_of, value_bytes, value_hash,
};
use lesson_ledger::ledger::state_map::{map_key, Hash};
use lesson_ledger::ledger::units::hex;
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::ledger::{Key, StateView, Table, Value};
use lesson_ledger::log::keyfile;
use lesson_ledger::log::note::{sign_note, KeyName, NoteSigner};
use lesson_ledger::log::records::RecordKind;
use lesson_ledger::log::store::layout;

use crate::audit::{kinds_and_bodies, rewrite};

/// Why the Python verifier cannot run here, if it cannot.
fn python_missing() -> Option<String> {
    let probe = Command::new("python3")
        .args(["-c", "import blake3, cryptography"])
        .output();
    match probe {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "python3 lacks blake3 or cryptography (pip install blake3 cryptography): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("no python3: {e}")),
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/verify_state.py")
}

fn verify(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 runs")
}

/// The tiny demo's ledger directory, built once for this module's tests (under cargo's
/// scratch directory for integration tests, rebuilt on every run).
fn demo_ledger() -> &'static Path {
    &demo().0
}

/// The demo's ledger and a balance answer made from it once the demo is over (the
/// ledger's own objects and state proofs, and its latest signed state note).
fn demo() -> &'static (PathBuf, serde_json::Value) {
    static DEMO: OnceLock<(PathBuf, serde_json::Value)> = OnceLock::new();
    DEMO.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python_verifier");
        let _ = std::fs::remove_dir_all(&root);
        let config = DemoConfig {
            data: root.join("demo"),
            scale: Scale::Tiny,
            seed: 11,
            keep_serving: false,
        };
        let outcome = demo::run(&config).expect("the tiny demo runs");
        assert!(outcome.audit.passed);
        let answer = answer_of(&config.ledger_dir());
        (config.ledger_dir(), answer)
    })
}

/// A balance answer over the ledger's latest state note: a claim, an allocation and the
/// pool with their proofs, and the proof of a claim that does not exist.
fn answer_of(ledger_dir: &Path) -> serde_json::Value {
    let note = kinds_and_bodies(ledger_dir)
        .into_iter()
        .rfind(|(k, _)| *k == RecordKind::StateNote)
        .expect("a state note");
    let (ledger, _) = Ledger::open(ledger_dir).expect("the demo ledger reopens");
    let state = ledger.state();
    let first_of = |table: Table| -> String {
        match state.scan(table).next() {
            Some((key, _)) => key.id,
            other => panic!("no object in {}: {other:?}", table.name()),
        }
    };
    let mut objects = Vec::new();
    for (table, id) in [
        (Table::Claim, first_of(Table::Claim)),
        (Table::Allocation, first_of(Table::Allocation)),
        (Table::Meta, "pool".to_owned()),
        (Table::Claim, "c-never-recorded".to_owned()),
    ] {
        let key = Key::new(table, &id);
        let value = state.get(&key);
        objects.push(serde_json::json!({
            "table": table.name(), "id": id, "value": value, "proof": state.prove(&key),
        }));
    }
    serde_json::json!({
        "state_note": String::from_utf8(note.1).expect("utf-8 note"),
        "objects": objects,
    })
}

/// A copy of the ledger's record file and identity (all the verifier reads).
fn copy_of(ledger: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for file in [layout::RECORDS, "log.json"] {
        std::fs::copy(ledger.join(file), to.join(file)).expect("copy");
    }
}

/// The header line the ledger's state notes carry, and the flag the verifier needs
/// to check that format.
fn note_format_args(ledger: &Path) -> Vec<&'static str> {
    let first = kinds_and_bodies(ledger)
        .into_iter()
        .find(|(k, _)| *k == RecordKind::StateNote)
        .expect("a state note");
    if first.1.starts_with(b"lesson-ledger/state-digest/v1\n") {
        vec!["--legacy-digest"]
    } else {
        vec![]
    }
}

fn operator_signer(ledger: &Path) -> NoteSigner {
    let key = keyfile::read_private_pem(&ledger.join(layout::OPERATOR_KEY)).expect("key");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ledger.join("log.json")).expect("log.json"))
            .expect("json");
    let vkey = log["operator_vkey"].as_str().expect("operator_vkey");
    let name = vkey.split('+').next().expect("a key name");
    NoteSigner::new(KeyName::new(name).expect("key name"), key)
}

/// The body of a state note with its root's first byte flipped.
fn with_altered_root(note: &[u8]) -> String {
    let text = std::str::from_utf8(note).expect("utf-8");
    let body = &text[..text.find("\n\n").expect("a signed note") + 1];
    let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut root = b64.decode(&lines[3]).expect("base64 root");
    root[0] ^= 0x80;
    lines[3] = b64.encode(root);
    lines.join("\n") + "\n"
}

#[test]
fn the_verifier_written_from_the_spec_recomputes_every_state_note_of_the_demo() {
    if let Some(why) = python_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let ledger = demo_ledger();
    let notes = kinds_and_bodies(ledger)
        .into_iter()
        .filter(|(k, _)| *k == RecordKind::StateNote)
        .count();
    let mut args = vec!["--data", ledger.to_str().expect("utf-8 path")];
    args.extend(note_format_args(ledger));
    let out = verify(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recomputed = stdout
        .lines()
        .filter(|l| l.starts_with("state note size") && l.ends_with("recomputed"))
        .count();
    assert!(notes > 5, "the demo signs a state note per batch");
    assert_eq!(recomputed, notes, "{stdout}");
    assert!(stdout.contains(&format!("{notes} state notes, every root recomputed")));
}

#[test]
fn a_state_note_re_signed_over_another_root_is_caught_at_its_index() {
    if let Some(why) = python_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let ledger = demo_ledger();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_of(ledger, dir.path());
    let mut recs = kinds_and_bodies(dir.path());
    let notes: Vec<usize> = (0..recs.len())
        .filter(|&i| recs[i].0 == RecordKind::StateNote)
        .collect();
    let target = notes[notes.len() / 2];
    let leaves_before = recs[..target]
        .iter()
        .filter(|(k, _)| *k == RecordKind::Leaf)
        .count();
    let forged = sign_note(
        &with_altered_root(&recs[target].1),
        &operator_signer(ledger),
    )
    .expect("sign");
    recs[target].1 = forged.into_bytes();
    rewrite(dir.path(), &recs);

    let mut args = vec!["--data", dir.path().to_str().expect("utf-8 path")];
    args.extend(note_format_args(ledger));
    let out = verify(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a forged root passed");
    assert!(
        stderr.contains("FAIL state_root_mismatch")
            && stderr.contains(&format!("[index {}]", leaves_before - 1))
            && stderr.contains(&format!("state note at size {leaves_before}")),
        "{stderr}"
    );
}

#[test]
fn a_state_note_signed_by_another_key_is_refused() {
    if let Some(why) = python_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let ledger = demo_ledger();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_of(ledger, dir.path());
    let mut recs = kinds_and_bodies(dir.path());
    let first = (0..recs.len())
        .find(|&i| recs[i].0 == RecordKind::StateNote)
        .expect("a state note");
    let text = String::from_utf8(recs[first].1.clone()).expect("utf-8");
    let body = &text[..text.find("\n\n").expect("signed") + 1];
    // Same key name as the operator's, another key.
    let name = operator_signer(ledger).name().to_string();
    let impostor = crate::support::signer(&name, 77);
    recs[first].1 = sign_note(body, &impostor).expect("sign").into_bytes();
    rewrite(dir.path(), &recs);

    let mut args = vec!["--data", dir.path().to_str().expect("utf-8 path")];
    args.extend(note_format_args(ledger));
    let out = verify(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an impostor's note passed");
    assert!(stderr.contains("FAIL state_note_signature"), "{stderr}");
}

#[test]
fn the_worked_example_of_the_spec_is_what_the_verifier_computes() {
    if let Some(why) = python_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let out = verify(&["--self-test"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three objects of the worked example (RULES.md §3, §4.2), as the ledger's own types
/// decode them (objects no other branch of this session changes).
fn example_objects() -> Vec<(Table, &'static str, Value)> {
    let pool = r#"{"pool":{"available":0,"claims":1,"claims_consumed":0,"claims_reserved":0,"claims_unreserved":120000,"claims_value":120000,"delivered":0,"pledged":0,"pledges_approved":0,"reserved":0,"withdrawn":0}}"#;
    let liability = r#"{"liability":{"claims":1,"institution":"inst-0007","lessons_owed":40,"made_good":0,"owed":120000,"students":1}}"#;
    let quota = r#"{"quota":{"day":0,"entries":1,"key_changes":0,"party":"stu-3f9a"}}"#;
    [
        (Table::Meta, "pool", pool),
        (Table::Liability, "inst-0007", liability),
        (Table::Quota, "stu-3f9a", quota),
    ]
    .into_iter()
    .map(|(t, id, json)| {
        let value: Value = serde_json::from_str(json).expect("a state object");
        assert_eq!(value_bytes(&value), json.as_bytes(), "canonical as printed");
        (t, id, value)
    })
    .collect()
}

fn spec_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/RULES.md"))
        .expect("schemas/RULES.md")
}

#[test]
fn the_worked_example_of_the_spec_is_the_state_maps_own() {
    let spec = spec_text();
    let pairs: Vec<(Hash, Hash)> = example_objects()
        .iter()
        .map(|(t, id, v)| (map_key(*t, id), value_hash(&value_bytes(v))))
        .collect();
    let root = root_of(pairs.iter().copied());
    for (key, vh) in &pairs {
        for figure in [hex(key), hex(&leaf_hash(key, vh))] {
            assert!(spec.contains(&figure), "RULES.md lacks {figure}");
        }
    }
    // Pool and liability part at bit 6; the empty subtrees beside them up to depth 1.
    let z = [0u8; 32];
    let mut node = internal_hash(
        &leaf_hash(&pairs[1].0, &pairs[1].1),
        &leaf_hash(&pairs[0].0, &pairs[0].1),
    );
    for right in [false, true, false, true, false] {
        assert!(spec.contains(&hex(&node)), "RULES.md lacks {}", hex(&node));
        node = if right {
            internal_hash(&z, &node)
        } else {
            internal_hash(&node, &z)
        };
    }
    let n1 = node;
    assert_eq!(
        internal_hash(&n1, &leaf_hash(&pairs[2].0, &pairs[2].1)),
        root
    );
    for figure in [
        hex(&n1),
        hex(&root),
        hex(&root_of(pairs[..2].iter().copied())),
    ] {
        assert!(spec.contains(&figure), "RULES.md lacks {figure}");
    }
    let absent = reference_proof(pairs.iter().copied(), &map_key(Table::Claim, "c-0001"));
    let json = serde_json::to_string(&absent).expect("json");
    assert!(
        spec.contains(&json),
        "RULES.md lacks the absence proof {json}"
    );
    let present = reference_proof(pairs.iter().copied(), &pairs[1].0);
    assert_eq!(present.siblings.len(), 7, "the liability's proof of §4.3");
}

/// A balance-like response: a state note signed by `signer` over the example's root, and
/// each example object with its proof (sm-core's), plus one absent object.
fn example_response(signer: &NoteSigner) -> serde_json::Value {
    use base64::Engine as _;
    let objects = example_objects();
    let pairs: Vec<(Hash, Hash)> = objects
        .iter()
        .map(|(t, id, v)| (map_key(*t, id), value_hash(&value_bytes(v))))
        .collect();
    let root = root_of(pairs.iter().copied());
    let body = format!(
        "lesson-ledger/state-map/v1\nexample.lesson-ledger.example/a\n3\n{}\n",
        base64::engine::general_purpose::STANDARD.encode(root)
    );
    let mut items: Vec<serde_json::Value> = objects
        .iter()
        .map(|(t, id, v)| {
            serde_json::json!({
                "table": t.name(), "id": id, "value": v,
                "proof": reference_proof(pairs.iter().copied(), &map_key(*t, id)),
            })
        })
        .collect();
    items.push(serde_json::json!({
        "table": "claim", "id": "c-0002", "value": null,
        "proof": reference_proof(pairs.iter().copied(), &map_key(Table::Claim, "c-0002")),
    }));
    serde_json::json!({
        "state_note": sign_note(&body, signer).expect("sign"),
        "objects": items,
    })
}

fn check_proof(response: &serde_json::Value, vkey: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("balance.json");
    std::fs::write(&path, serde_json::to_vec(response).expect("json")).expect("write");
    verify(&[
        "--check-proof",
        path.to_str().expect("utf-8"),
        "--operator-key",
        vkey,
    ])
}

#[test]
fn the_verifier_checks_the_state_maps_proofs_and_refuses_each_mutation_with_its_code() {
    if let Some(why) = python_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let operator = crate::support::signer("example.lesson-ledger.example/a", 5);
    let good = example_response(&operator);
    let out = check_proof(&good, &operator.vkey());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 state proofs verified"));

    type Mutation = fn(&mut serde_json::Value);
    let mutations: [(&str, Mutation); 6] = [
        ("proof_value_mismatch", |r| {
            r["objects"][1]["value"]["liability"]["made_good"] = 1.into();
        }),
        ("proof_root_mismatch", |r| {
            let s = r["objects"][1]["proof"]["siblings"].as_str().unwrap();
            let flipped = if s.starts_with('A') { "B" } else { "A" };
            r["objects"][1]["proof"]["siblings"] = format!("{flipped}{}", &s[1..]).into();
        }),
        ("proof_absent_key_present", |r| {
            r["objects"][1]["value"] = serde_json::Value::Null;
        }),
        ("proof_key_absent", |r| {
            r["objects"][3]["value"] = serde_json::json!({"claim": {}});
        }),
        ("proof_key_mismatch", |r| {
            r["objects"][1]["id"] = "inst-0009".into();
        }),
        ("proof_malformed", |r| {
            r["objects"][0]["proof"]["siblings"] = "AAAA".into();
        }),
    ];
    for (code, mutate) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        let out = check_proof(&bad, &operator.vkey());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{code}: a mutated response passed");
        assert!(stderr.contains(&format!("FAIL {code}")), "{code}: {stderr}");
    }
    // A note signed by another key than the one trusted.
    let other = crate::support::signer("example.lesson-ledger.example/a", 6);
    let out = check_proof(&good, &other.vkey());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAIL state_note_signature"));
}

#[test]
fn the_verifier_checks_the_ledgers_own_proofs_against_the_root_it_replayed() {
    if let Some(why) = python_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let (ledger, answer) = demo();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("balance.json");
    std::fs::write(&path, serde_json::to_vec(answer).expect("json")).expect("write");
    let mut args = vec![
        "--data",
        ledger.to_str().expect("utf-8 path"),
        "--check-proof",
        path.to_str().expect("utf-8"),
        "--quiet",
    ];
    args.extend(note_format_args(ledger));
    let out = verify(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("4 state proofs verified"), "{stdout}");

    // The pool's value altered: the proof no longer holds.
    let mut bad = answer.clone();
    bad["objects"][2]["value"]["pool"]["delivered"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&bad).expect("json")).expect("write");
    let out = verify(&args);
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAIL proof_value_mismatch"));
}
