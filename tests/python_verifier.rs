//! The rules specification (`schemas/RULES.md`) is implementable from the page alone: a
//! verifier written in Python from it (`scripts/verify_state.py`, no line of our code)
//! replays the tiny demo's ledger and recomputes the root of every state note the
//! operator signed, and it catches a state note re-signed over another root, at its
//! index, and a note signed by another key.
//!
//! Needs `python3` with the `blake3` and `cryptography` packages (`.ci/run` installs
//! them); without them each test says why and passes without checking.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use lesson_ledger::demo::{self, DemoConfig, Scale};
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
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
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
        config.ledger_dir()
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
