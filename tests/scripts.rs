//! The operator's scripts, run as an operator runs them: `scripts/backup.sh` and
//! `scripts/nightly-audit.sh` (bash) against a real `lesson-ledger serve` on loopback,
//! with real keys and entries. Each script is also shown failing: a backup whose copy was
//! damaged, a log that rolled back and then forked between two nightly audits, and a
//! checkpoint no association cosigned when association keys are given; and `verify
//! --url` catches a state note the operator re-signed over another root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lesson_ledger::log::envelope::Envelope;
use lesson_ledger::log::note::{cosign, sign_note, NoteSigner, NoteVerifier, SignedCheckpoint};
use lesson_ledger::log::records::RecordKind;
use reqwest::blocking::Client;
use serde_json::json;

use crate::audit::{kinds_and_bodies, rewrite};
use crate::cli::run;
use crate::support::{
    operator_of, output_text, path_arg, register_institution, test_association,
    write_test_association, Served, TEST_ASSOCIATION, TEST_ORIGIN,
};

/// A ledger made by `init` in `tmp/NAME`: its directory, the operator's verifier key
/// (as printed by `init`, kept apart from the directory) and the operator's signer.
fn new_ledger(tmp: &Path, name: &str) -> (PathBuf, String, NoteSigner) {
    let data = tmp.join(name);
    let association = write_test_association(tmp);
    let out = run(&[
        "init",
        "--data",
        path_arg(&data),
        "--origin",
        TEST_ORIGIN,
        "--association",
        path_arg(&association),
    ]);
    assert!(out.status.success(), "init: {}", output_text(&out));
    let vkey = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    let operator = operator_of(&data);
    (data, vkey, operator)
}

/// Posts institutions `ns` as one batch and checks every one was appended.
fn post(url: &str, operator: &NoteSigner, ns: std::ops::Range<u64>) {
    let entries: Vec<serde_json::Value> = ns
        .map(|n| register_institution(operator, n))
        .map(|e: Envelope| serde_json::from_str(&e.to_json()).expect("envelope JSON"))
        .collect();
    let answer: serde_json::Value = Client::new()
        .post(format!("{url}/v1/entries"))
        .json(&json!({ "entries": entries }))
        .send()
        .and_then(|r| r.json())
        .expect("POST /v1/entries");
    let results = answer["results"].as_array().expect("results");
    assert!(
        results.iter().all(|r| r["status"] == "ok"),
        "every entry appended: {answer}"
    );
}

/// Runs `scripts/NAME` with bash, the test binary as `LEDGER_BIN`, and `env`.
fn script(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name);
    Command::new("bash")
        .arg(path)
        .args(args)
        .env("LEDGER_BIN", env!("CARGO_BIN_EXE_lesson-ledger"))
        .envs(env.iter().copied())
        .output()
        .expect("run bash")
}

/// The tree size of a signed checkpoint's text (its second line).
fn size_of(checkpoint: &str) -> u64 {
    checkpoint
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a checkpoint's size line")
}

#[test]
fn a_backup_taken_while_entries_arrive_verifies_and_serves_its_checkpoint_when_restored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, vkey, operator) = new_ledger(tmp.path(), "live");
    let live = Served::start(&data);
    post(&live.url, &operator, 0..20);

    // Entries keep arriving, one batch at a time, while the backup runs.
    let url = live.url.clone();
    let writer_operator = operator_of(&data);
    let writer = std::thread::spawn(move || {
        for n in 0..20 {
            post(&url, &writer_operator, 100 + 4 * n..104 + 4 * n);
        }
    });
    let dest = tmp.path().join("backup");
    let out = script(
        "backup.sh",
        &[path_arg(&data), path_arg(&dest)],
        &[
            ("OPERATOR_KEY", &vkey),
            ("LEDGER_URL", &live.url),
            ("BACKUP_OPERATOR_KEY", "1"),
        ],
    );
    writer.join().expect("writer");
    assert!(out.status.success(), "backup.sh: {}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("consistent with the checkpoint of size"),
        "a consistency proof from the copy to the served ledger: {}",
        output_text(&out)
    );
    post(&live.url, &operator, 1000..1001);
    let copied = fs::read_to_string(dest.join("checkpoint")).expect("the copy's checkpoint");
    assert!(
        size_of(&copied) >= 21,
        "the genesis and the first 20 at least"
    );
    assert!(
        size_of(&live.checkpoint()) > size_of(&copied),
        "the live ledger moved on past the copy"
    );
    assert!(dest.join("ledger/operator.key").exists(), "asked for");

    // Restored: the copy, opened by `serve`, serves exactly the checkpoint it holds.
    let restored = Served::start(&dest.join("ledger"));
    assert_eq!(restored.checkpoint(), copied);

    // Without being asked, the operator's private key stays out of the copy.
    let keyless = tmp.path().join("keyless");
    let out = script(
        "backup.sh",
        &[path_arg(&data), path_arg(&keyless)],
        &[("OPERATOR_KEY", &vkey), ("LEDGER_URL", &live.url)],
    );
    assert!(out.status.success(), "backup.sh: {}", output_text(&out));
    assert!(!keyless.join("ledger/operator.key").exists());
    assert!(keyless.join("ledger/log.json").exists());
}

#[test]
fn a_backup_whose_copy_was_damaged_or_checked_under_another_key_fails_its_check() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, vkey, operator) = new_ledger(tmp.path(), "live");
    {
        let live = Served::start(&data);
        post(&live.url, &operator, 0..30);
    }
    // Server stopped: the copy is compared with the live log's own checkpoints.
    let dest = tmp.path().join("backup");
    let out = script(
        "backup.sh",
        &[path_arg(&data), path_arg(&dest)],
        &[("OPERATOR_KEY", &vkey)],
    );
    assert!(out.status.success(), "backup.sh: {}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is one of"));
    let check = script(
        "backup.sh",
        &["--check", path_arg(&dest)],
        &[("OPERATOR_KEY", &vkey)],
    );
    assert!(check.status.success(), "--check: {}", output_text(&check));

    let other = crate::support::vkey(TEST_ORIGIN, 77);
    let check = script(
        "backup.sh",
        &["--check", path_arg(&dest)],
        &[("OPERATOR_KEY", &other)],
    );
    assert_eq!(
        check.status.code(),
        Some(1),
        "another key: {}",
        output_text(&check)
    );

    // One byte flipped in the middle of the copied log (bit rot on the backup disk).
    let records = dest.join("ledger/log.dat");
    let mut bytes = fs::read(&records).expect("log.dat");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&records, bytes).expect("damage");
    let check = script(
        "backup.sh",
        &["--check", path_arg(&dest)],
        &[("OPERATOR_KEY", &vkey)],
    );
    assert_eq!(
        check.status.code(),
        Some(1),
        "damaged: {}",
        output_text(&check)
    );
    assert!(String::from_utf8_lossy(&check.stderr).contains("does not verify"));
}

fn nightly(url: &str, vkey: &str, state: &Path) -> Output {
    script("nightly-audit.sh", &[url, vkey, path_arg(state)], &[])
}

fn audited(state: &Path) -> String {
    let file = fs::read_to_string(state.join("state.json")).expect("state.json");
    let state: serde_json::Value = serde_json::from_str(&file).expect("state JSON");
    state["checkpoint"].as_str().expect("checkpoint").to_owned()
}

#[test]
fn a_nightly_audit_reports_a_log_that_rolled_back_or_forked_since_the_last_night() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, vkey, operator) = new_ledger(tmp.path(), "live");
    let state = tmp.path().join("audit");
    let fork_base = tmp.path().join("fork");
    {
        let live = Served::start(&data);
        post(&live.url, &operator, 0..10);
        let night1 = nightly(&live.url, &vkey, &state);
        assert!(night1.status.success(), "night 1: {}", output_text(&night1));
        // The operator keeps a copy of the log at size 11 (with its key)...
        let out = run(&[
            "backup",
            "--data",
            path_arg(&data),
            "--out",
            path_arg(&fork_base),
            "--with-operator-key",
        ]);
        assert!(out.status.success(), "backup: {}", output_text(&out));
        post(&live.url, &operator, 10..15);
        let night2 = nightly(&live.url, &vkey, &state);
        assert!(night2.status.success(), "night 2: {}", output_text(&night2));
        assert!(String::from_utf8_lossy(&night2.stdout).contains("consistent with"));
    }
    let last_good = audited(&state);
    assert_eq!(size_of(&last_good), 16);

    // ...and serves it instead: 11 entries where 16 were audited (rolled back).
    let rolled_back = Served::start(&fork_base);
    let night3 = nightly(&rolled_back.url, &vkey, &state);
    assert_eq!(
        night3.status.code(),
        Some(1),
        "rolled back: {}",
        output_text(&night3)
    );
    // Then a different history on top of it, longer than what was audited (a fork).
    post(&rolled_back.url, &operator, 500..510);
    assert_eq!(size_of(&rolled_back.checkpoint()), 21);
    let night4 = nightly(&rolled_back.url, &vkey, &state);
    assert_eq!(
        night4.status.code(),
        Some(1),
        "forked: {}",
        output_text(&night4)
    );
    assert_eq!(
        audited(&state),
        last_good,
        "a finding never moves the state on"
    );

    let mut reports: Vec<PathBuf> = fs::read_dir(state.join("reports"))
        .expect("reports")
        .map(|e| e.expect("report").path())
        .collect();
    reports.sort();
    let last = fs::read_to_string(reports.last().expect("a report")).expect("report");
    assert!(last.contains("result: FINDING"), "{last}");
    assert!(last.contains("not consistent"), "{last}");
    // As served now, indented in the report.
    let evidence: Vec<String> = rolled_back
        .checkpoint()
        .lines()
        .take(3)
        .map(|l| format!("  {l}"))
        .collect();
    assert!(
        last.contains(&evidence.join("\n")),
        "the forked checkpoint is kept as evidence: {last}"
    );
}

/// Cosigns the checkpoint `served` serves now as the test association, through
/// `POST /v1/cosign`, and returns its size.
fn cosign_served(served: &Served, vkey: &str) -> u64 {
    let operator = NoteVerifier::from_vkey(vkey).expect("operator vkey");
    let cp = SignedCheckpoint::parse_and_verify(served.checkpoint().as_bytes(), &operator)
        .expect("the served checkpoint verifies");
    let line = cosign(&cp, &test_association(), 1_800_000_000).expect("cosign");
    let size = cp.checkpoint().size;
    let response = Client::new()
        .post(format!("{}/v1/cosign", served.url))
        .body(json!({"party": TEST_ASSOCIATION, "size": size, "cosignature": line}).to_string())
        .send()
        .expect("POST /v1/cosign");
    assert_eq!(response.status(), 200, "cosign: {:?}", response.text());
    size
}

#[test]
fn a_nightly_audit_with_association_keys_requires_their_cosignature_on_the_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, vkey, operator) = new_ledger(tmp.path(), "live");
    let live = Served::start(&data);
    post(&live.url, &operator, 0..5);
    let association = test_association().vkey();
    let env = [
        ("ASSOCIATION_KEYS", association.as_str()),
        ("WITNESSES", "1"),
    ];
    let state = tmp.path().join("audit");

    // No association has cosigned this checkpoint: a view nobody checked is a finding.
    let unwitnessed = script(
        "nightly-audit.sh",
        &[&live.url, &vkey, path_arg(&state)],
        &env,
    );
    assert_eq!(
        unwitnessed.status.code(),
        Some(1),
        "uncosigned: {}",
        output_text(&unwitnessed)
    );
    assert!(
        String::from_utf8_lossy(&unwitnessed.stderr)
            .contains("0 verified association cosignatures, 1 required"),
        "{}",
        output_text(&unwitnessed)
    );
    assert!(
        !state.join("state.json").exists(),
        "a finding never moves the state on"
    );

    // Once the association has cosigned it, the same audit passes.
    assert_eq!(cosign_served(&live, &vkey), 6);
    let witnessed = script(
        "nightly-audit.sh",
        &[&live.url, &vkey, path_arg(&state)],
        &env,
    );
    assert!(
        witnessed.status.success(),
        "cosigned: {}",
        output_text(&witnessed)
    );
    let report = fs::read_dir(state.join("reports"))
        .expect("reports")
        .map(|e| fs::read_to_string(e.expect("report").path()).expect("report"))
        .find(|r| r.contains("result: PASS"))
        .expect("a passing report");
    assert!(
        report.contains("at least 1 verified association cosignature"),
        "{report}"
    );

    // Two cosignatures required of one association key: a usage error, not a pass.
    let two = [
        ("ASSOCIATION_KEYS", association.as_str()),
        ("WITNESSES", "2"),
    ];
    let impossible = script(
        "nightly-audit.sh",
        &[&live.url, &vkey, path_arg(&state)],
        &two,
    );
    assert_ne!(
        impossible.status.code(),
        Some(0),
        "{}",
        output_text(&impossible)
    );
}

#[test]
fn verify_url_catches_a_state_note_whose_root_was_altered_and_re_signed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, vkey, operator) = new_ledger(tmp.path(), "live");
    {
        let live = Served::start(&data);
        post(&live.url, &operator, 0..4);
        post(&live.url, &operator, 4..9);
        // The note of each batch, as stored; none where no batch ended.
        let get = |path: &str| {
            Client::new()
                .get(format!("{}{path}", live.url))
                .send()
                .expect("GET")
        };
        let note = get("/v1/state-notes/10");
        assert_eq!(note.status(), 200);
        let note = note.text().expect("text");
        assert!(note.starts_with("lesson-ledger/state-map/v1\nlessons.example/test\n10\n"));
        assert_eq!(get("/v1/state-notes/5").status(), 200);
        for (path, status) in [
            ("/v1/state-notes/3", 404),
            ("/v1/state-notes/0", 404),
            ("/v1/state-notes/11", 404),
            ("/v1/state-notes/+5", 400),
        ] {
            assert_eq!(get(path).status(), status, "{path}");
        }
        let clean = run(&["verify", "--url", &live.url, "--operator-key", &vkey]);
        assert!(clean.status.success(), "clean: {}", output_text(&clean));
        assert!(
            String::from_utf8_lossy(&clean.stdout).contains("state note of size 10"),
            "{}",
            output_text(&clean)
        );
    }
    // The operator signs another root for the last batch; the log itself is untouched.
    let mut recs = kinds_and_bodies(&data);
    let last = (0..recs.len())
        .rfind(|&i| recs[i].0 == RecordKind::StateNote)
        .expect("a state note");
    let text_of = std::str::from_utf8(&recs[last].1)
        .expect("utf-8")
        .to_owned();
    let body = &text_of[..text_of.find("\n\n").expect("a signed note") + 1];
    let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut root = b64.decode(&lines[3]).expect("base64 root");
    root[0] ^= 0x80;
    lines[3] = b64.encode(root);
    let forged = sign_note(&(lines.join("\n") + "\n"), &operator).expect("sign");
    recs[last].1 = forged.into_bytes();
    rewrite(&data, &recs);

    let tampered = Served::start(&data);
    let caught = run(&["verify", "--url", &tampered.url, "--operator-key", &vkey]);
    assert_eq!(caught.status.code(), Some(1), "{}", output_text(&caught));
    let said = String::from_utf8_lossy(&caught.stderr);
    assert!(
        said.contains("the state note of size 10") && said.contains("the replay gives"),
        "{}",
        output_text(&caught)
    );
}

#[test]
fn cities_sh_runs_city_ledgers_with_their_publishers_and_the_national_view_verifies_each() {
    if !Path::new("/usr/sbin/nginx").exists() {
        println!("skipped: no nginx (.ci/run installs Debian's nginx)");
        return;
    }
    // Two cities: the default twenty take ~40 s and ~3.7 GiB here, too much for the suite.
    let out = script("cities.sh", &["2", "tiny"], &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    for line in [
        "2 cities verified, 0 failed",
        "| cities verified / failed | 2 / 0 |",
        "| peak RSS, every process of the run summed |",
    ] {
        assert!(
            said.contains(line),
            "{line:?} missing:\n{}",
            output_text(&out)
        );
    }
    assert!(said
        .lines()
        .any(|l| l.starts_with("city-01 ") && l.ends_with("verified")));
}
