//! The auditor catches every kind of tampering with `log.dat`, precisely.

use std::fs;
use std::path::Path;

use lesson_ledger::log::audit::{audit, AuditError, AuditOptions, Finding};
use lesson_ledger::log::hash::Hash;
use lesson_ledger::log::keyfile;
use lesson_ledger::log::note::{Checkpoint, KeyName, NoteSigner, Origin, SignedCheckpoint};
use lesson_ledger::log::records::{RecordFile, RecordKind};
use lesson_ledger::log::store::{layout, AdmitAll, Log, Outcome};
use tempfile::TempDir;

use crate::support::{envelope, new_log, signer, verified};

/// A log of 24 entries in three batches, closed.
fn sample_log(dir: &Path) -> Vec<String> {
    let mut log = new_log(dir);
    let a = signer("inst-0001", 1);
    let b = signer("stu-00a1", 2);
    let mut checkpoints = Vec::new();
    for batch in 0..3u64 {
        let envelopes = (0..8)
            .map(|i| verified(envelope(&[&a, &b], &format!("e-{batch}-{i}"), i)))
            .collect();
        for o in log.append(envelopes, &mut AdmitAll).unwrap() {
            assert!(matches!(o, Outcome::Ok(_)));
        }
        checkpoints.push(log.checkpoint().text().to_string());
    }
    log.close().unwrap();
    checkpoints
}

fn run_audit(dir: &Path) -> Result<lesson_ledger::log::audit::AuditSummary, AuditError> {
    audit(dir, &AuditOptions::default(), &|_, _| {})
}

fn finding(dir: &Path) -> Finding {
    match run_audit(dir) {
        Err(AuditError::Finding(f)) => f,
        Err(other) => panic!("expected a finding, got error {other}"),
        Ok(s) => panic!("tampered log passed the audit: {s:?}"),
    }
}

/// The records of a log, as (offset, kind, body).
pub fn records(dir: &Path) -> Vec<(u64, RecordKind, Vec<u8>)> {
    let (file, _) = lesson_ledger::log::records::open_reader(dir.join(layout::RECORDS)).unwrap();
    file.iter(lesson_ledger::log::records::HEADER_LEN, file.len())
        .unwrap()
        .map(|r| r.unwrap())
        .map(|r| (r.offset, r.kind, r.body))
        .collect()
}

/// Writes a new, well-framed log.dat holding these records (checksums are recomputed,
/// so only the content tampering remains for the auditor to find).
pub fn rewrite(dir: &Path, recs: &[(RecordKind, Vec<u8>)]) {
    let path = dir.join(layout::RECORDS);
    fs::remove_file(&path).unwrap();
    let mut file = RecordFile::create(&path).unwrap();
    for (kind, body) in recs {
        file.append(*kind, body).unwrap();
    }
    file.commit().unwrap();
    // Derived data would otherwise vouch for the old file.
    let _ = fs::remove_dir_all(dir.join(layout::INDEX));
}

pub fn kinds_and_bodies(dir: &Path) -> Vec<(RecordKind, Vec<u8>)> {
    records(dir).into_iter().map(|(_, k, b)| (k, b)).collect()
}

#[test]
fn a_clean_log_passes_with_a_summary() {
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let s = run_audit(dir.path()).unwrap();
    assert_eq!((s.entries, s.signatures, s.checkpoints), (24, 48, 4));
    let log = crate::support::reopen(dir.path());
    assert_eq!(s.root, log.root_at(24).unwrap());
}

#[test]
fn one_flipped_bit_anywhere_is_caught() {
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let path = dir.path().join(layout::RECORDS);
    let original = fs::read(&path).unwrap();
    // Every record's first, middle and last byte, the header, and a stride through the rest.
    let mut positions: Vec<usize> = vec![0, 3, 7];
    for (offset, _, body) in records(dir.path()) {
        let start = offset as usize;
        let end = start + 1 + 4 + body.len() + 4;
        positions.extend([
            start,
            start + 2,
            start + 5,
            start + 5 + body.len() / 2,
            end - 1,
        ]);
    }
    positions.extend((0..original.len()).step_by(37));
    positions.sort_unstable();
    positions.dedup();
    for (n, &pos) in positions.iter().enumerate() {
        let mut bytes = original.clone();
        bytes[pos] ^= 1 << (n % 8);
        fs::write(&path, &bytes).unwrap();
        match run_audit(dir.path()) {
            Err(AuditError::Finding(f)) => assert!(
                f.offset <= pos as u64 + 1,
                "finding {f} should be at or before byte {pos}"
            ),
            Err(other) => panic!("bit {n} at byte {pos}: expected a finding, got {other}"),
            Ok(_) => panic!("a flipped bit at byte {pos} passed the audit"),
        }
    }
    fs::write(&path, &original).unwrap();
    run_audit(dir.path()).expect("restored log passes again");
}

#[test]
fn a_removed_record_is_caught_with_the_index_that_is_missing() {
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let mut recs = kinds_and_bodies(dir.path());
    recs.remove(5); // the fifth leaf of the first batch (record 0 is the empty checkpoint)
    rewrite(dir.path(), &recs);
    let f = finding(dir.path());
    assert_eq!(
        (f.index, f.expected.as_str(), f.found.as_str()),
        (Some(4), "index 4", "index 5"),
        "{f}"
    );
}

#[test]
fn reordered_records_are_caught() {
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let mut recs = kinds_and_bodies(dir.path());
    recs.swap(3, 4);
    rewrite(dir.path(), &recs);
    let f = finding(dir.path());
    assert_eq!(f.index, Some(2), "{f}");
    assert!(f.what.contains("out of place"), "{f}");
}

#[test]
fn a_truncated_log_is_caught() {
    // Cut in the middle of a record.
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let path = dir.path().join(layout::RECORDS);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    assert!(finding(dir.path()).what.contains("damaged"));

    // Cut after a leaf: the last batch has no checkpoint.
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let recs = kinds_and_bodies(dir.path());
    rewrite(dir.path(), &recs[..recs.len() - 3]);
    assert!(finding(dir.path())
        .what
        .contains("does not end with a checkpoint"));

    // Cut cleanly at a batch boundary: the index remembers more.
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let recs = records(dir.path());
    let (offset, _, _) = recs[recs.len() - 9]; // the last batch: 8 leaves and a checkpoint
    fs::OpenOptions::new()
        .write(true)
        .open(path_in(dir.path()))
        .unwrap()
        .set_len(offset)
        .unwrap();
    let f = finding(dir.path());
    assert!(f.what.contains("truncated"), "{f}");
}

fn origin() -> Origin {
    Origin::new("lessons.example/test").unwrap()
}

fn path_in(dir: &Path) -> std::path::PathBuf {
    dir.join(layout::RECORDS)
}

#[test]
fn a_checkpoint_signed_by_another_key_is_caught() {
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let mut recs = kinds_and_bodies(dir.path());
    let last = recs.len() - 1;
    let body = String::from_utf8(recs[last].1.clone()).unwrap();
    let cp = SignedCheckpoint::parse_and_verify(
        body.as_bytes(),
        crate::support::reopen(dir.path()).verifier(),
    )
    .unwrap();
    // Same name, another key.
    let impostor = signer("operator", 99);
    recs[last].1 = SignedCheckpoint::sign(cp.checkpoint().clone(), &impostor)
        .text()
        .as_bytes()
        .to_vec();
    rewrite(dir.path(), &recs);
    let f = finding(dir.path());
    assert!(f.what.contains("not signed by the operator"), "{f}");
}

#[test]
fn a_checkpoint_inconsistent_with_the_log_is_caught_even_when_the_operator_signed_it() {
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let key = keyfile::read_private_pem(&dir.path().join(layout::OPERATOR_KEY)).unwrap();
    let operator = NoteSigner::new(KeyName::new("operator").unwrap(), key);
    let mut recs = kinds_and_bodies(dir.path());
    let last = recs.len() - 1;
    let forged = Checkpoint {
        origin: origin(),
        size: 24,
        root: Hash([7; 32]),
    };
    recs[last].1 = SignedCheckpoint::sign(forged.clone(), &operator)
        .text()
        .as_bytes()
        .to_vec();
    rewrite(dir.path(), &recs);
    let f = finding(dir.path());
    assert!(f.what.contains("root is not the root"), "{f}");

    let forged = Checkpoint {
        origin: origin(),
        size: 23,
        root: Hash([7; 32]),
    };
    recs[last].1 = SignedCheckpoint::sign(forged.clone(), &operator)
        .text()
        .as_bytes()
        .to_vec();
    rewrite(dir.path(), &recs);
    assert!(finding(dir.path()).what.contains("size differs"));
}

#[test]
fn an_auditor_can_bring_the_key_and_a_checkpoint_from_outside() {
    let dir = TempDir::new().unwrap();
    let checkpoints = sample_log(dir.path());
    let vkey = crate::support::reopen(dir.path())
        .config()
        .operator_vkey
        .clone();
    for cp in &checkpoints {
        let options = AuditOptions {
            operator_vkey: Some(vkey.clone()),
            known_checkpoint: Some(cp.clone()),
        };
        audit(dir.path(), &options, &|_, _| {}).expect("a checkpoint of this log");
    }
    let other = signer("operator", 42);
    let options = AuditOptions {
        operator_vkey: Some(other.vkey()),
        known_checkpoint: None,
    };
    assert!(matches!(
        audit(dir.path(), &options, &|_, _| {}),
        Err(AuditError::Finding(_))
    ));

    // A checkpoint of another log, properly signed by this operator, is not in this log.
    let key = keyfile::read_private_pem(&dir.path().join(layout::OPERATOR_KEY)).unwrap();
    let operator = NoteSigner::new(KeyName::new("operator").unwrap(), key);
    let alien = SignedCheckpoint::sign(
        Checkpoint {
            origin: origin(),
            size: 16,
            root: Hash([9; 32]),
        },
        &operator,
    );
    let options = AuditOptions {
        operator_vkey: Some(vkey),
        known_checkpoint: Some(alien.text().to_string()),
    };
    let err = audit(dir.path(), &options, &|_, _| {}).expect_err("alien checkpoint");
    assert!(matches!(err, AuditError::Finding(_)), "{err}");
}

#[test]
fn an_unknown_directory_is_an_error_not_a_finding() {
    let dir = TempDir::new().unwrap();
    assert!(matches!(run_audit(dir.path()), Err(AuditError::Log(_))));
    let _ = Log::open;
}

/// Leaf bytes of entry `index` at `time`, signed by a party.
fn leaf_bytes(index: u64, time: u64) -> Vec<u8> {
    let party = signer("inst-0001", 1);
    let e = envelope(&[&party], &format!("e-{index}"), index);
    lesson_ledger::log::leaf::encode_parts(
        index,
        time,
        e.payload_type(),
        e.payload(),
        e.signatures(),
    )
    .unwrap()
}

/// Three good leaves, then the case's change to them; each case is one bad leaf.
fn bad_leaf_cases() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let good = || {
        vec![
            leaf_bytes(0, 1_000),
            leaf_bytes(1, 2_000),
            leaf_bytes(2, 3_000),
        ]
    };
    let mut time_not_increasing = good();
    time_not_increasing[2] = leaf_bytes(2, 2_000);
    let mut wrong_index = good();
    wrong_index[2] = leaf_bytes(3, 3_000);
    let mut bad_signature = good();
    let last = bad_signature[2].len() - 1;
    bad_signature[2][last] ^= 0x01;
    let mut trailing_bytes = good();
    trailing_bytes[2].push(0);
    let mut wrong_version = good();
    wrong_version[2][0] = 2;
    vec![
        ("time not increasing", time_not_increasing),
        ("wrong index", wrong_index),
        ("bad signature", bad_signature),
        ("trailing bytes", trailing_bytes),
        ("wrong version", wrong_version),
    ]
}

/// The checkpoint a lying operator signs over exactly these leaves.
fn checkpoint_over(leaves: &[Vec<u8>], operator: &NoteSigner) -> String {
    let mut frontier = lesson_ledger::log::compact::Frontier::new();
    for leaf in leaves {
        let hash = lesson_ledger::log::hash::leaf_hash(leaf);
        frontier.push(hash, &mut Vec::new()).unwrap();
    }
    let checkpoint = Checkpoint {
        origin: origin(),
        size: leaves.len() as u64,
        root: frontier.root(),
    };
    SignedCheckpoint::sign(checkpoint, operator)
        .text()
        .to_string()
}

/// A lying operator's server on a loopback port: it serves `checkpoint` and one entry
/// bundle of `leaves` over real HTTP/1.1, until `stop` is set.
fn lying_server(
    checkpoint: String,
    leaves: &[Vec<u8>],
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut bundle = Vec::new();
    for leaf in leaves {
        bundle.extend_from_slice(&(leaf.len() as u16).to_be_bytes());
        bundle.extend_from_slice(leaf);
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        // Bounded: a few requests an audit, and a stop.
        for stream in listener.incoming().take(64) {
            if stopped.load(Ordering::Acquire) {
                break;
            }
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request);
            let path = line.split(' ').nth(1).unwrap_or("");
            let (status, body) = if path == "/checkpoint" {
                ("200 OK", checkpoint.as_bytes().to_vec())
            } else if path.starts_with("/tile/entries/") {
                ("200 OK", bundle.clone())
            } else {
                ("404 Not Found", Vec::new())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (format!("http://{addr}"), stop)
}

#[test]
fn the_file_audit_and_the_remote_audit_refuse_the_same_bad_leaves() {
    use lesson_ledger::client::{audit as remote_audit, Client, ClientError};
    for (case, leaves) in bad_leaf_cases() {
        // The file audit: a log.dat of these leaves, its checkpoints signed by the
        // log's own operator key, so that only the leaf is wrong.
        let dir = TempDir::new().unwrap();
        new_log(dir.path()).close().unwrap();
        let key = keyfile::read_private_pem(&dir.path().join(layout::OPERATOR_KEY)).unwrap();
        let operator = NoteSigner::new(KeyName::new("operator").unwrap(), key);
        let checkpoint = checkpoint_over(&leaves, &operator);
        let mut recs = vec![(
            RecordKind::Checkpoint,
            checkpoint_over(&[], &operator).into_bytes(),
        )];
        recs.extend(leaves.iter().map(|l| (RecordKind::Leaf, l.clone())));
        recs.push((RecordKind::Checkpoint, checkpoint.clone().into_bytes()));
        rewrite(dir.path(), &recs);
        let f = finding(dir.path());
        assert_eq!(f.index, Some(2), "{case}: {f}");

        // The remote audit, of the same leaves served by the same operator.
        let (url, stop) = lying_server(checkpoint, &leaves);
        let client = Client::new(&url).unwrap();
        let err = remote_audit(&client, Some(&operator.vkey()), None)
            .err()
            .unwrap_or_else(|| panic!("{case}: the remote audit passed"));
        assert!(matches!(err, ClientError::Verification(_)), "{case}: {err}");
        assert!(err.to_string().contains("entry 2"), "{case}: {err}");
        stop.store(true, std::sync::atomic::Ordering::Release);
        let _ = std::net::TcpStream::connect(url.trim_start_matches("http://"));
    }
    // And the good leaves pass both.
    let good = vec![
        leaf_bytes(0, 1_000),
        leaf_bytes(1, 2_000),
        leaf_bytes(2, 3_000),
    ];
    let operator = signer("operator", 7);
    let (url, stop) = lying_server(checkpoint_over(&good, &operator), &good);
    let report = remote_audit(&Client::new(&url).unwrap(), Some(&operator.vkey()), None).unwrap();
    assert_eq!(report.size, 3);
    stop.store(true, std::sync::atomic::Ordering::Release);
    let _ = std::net::TcpStream::connect(url.trim_start_matches("http://"));
}

/// The layer above's own error, as a visitor returns it.
#[derive(Debug, thiserror::Error)]
#[error("entry {index} is not welcome")]
struct Unwelcome {
    index: u64,
}

/// Refuses the leaf at one index with a typed error.
struct RefuseAt(u64);

impl lesson_ledger::log::audit::AuditVisitor for RefuseAt {
    fn leaf(
        &mut self,
        leaf: &lesson_ledger::log::leaf::Leaf,
    ) -> Result<(), lesson_ledger::log::audit::VisitError> {
        if leaf.index == self.0 {
            return Err(lesson_ledger::log::audit::VisitError::new(Unwelcome {
                index: leaf.index,
            }));
        }
        Ok(())
    }
}

#[test]
fn a_visitors_refusal_is_a_finding_that_keeps_the_visitors_error_as_its_source() {
    let dir = TempDir::new().unwrap();
    sample_log(dir.path());
    let err = lesson_ledger::log::audit::audit_with(
        dir.path(),
        &AuditOptions::default(),
        &|_, _| {},
        &mut RefuseAt(5),
    )
    .expect_err("the visitor refuses entry 5");
    let AuditError::Finding(f) = &err else {
        panic!("expected a finding, got {err}");
    };
    assert_eq!(f.index, Some(5), "{f}");
    assert_eq!(f.found, "entry 5 is not welcome", "{f}");
    let source = std::error::Error::source(&err).expect("the visitor's error is kept");
    let unwelcome = source
        .downcast_ref::<Unwelcome>()
        .expect("as its own type, not a string");
    assert_eq!(unwelcome.index, 5);
}

/// A log of 10,240 entries in batches of 1,024: its records span three chunks of the
/// audit's read-ahead (4,096 records each), so a problem in the last one is found while
/// the earlier ones are still being taken in order.
fn long_log(dir: &Path) {
    let mut log = new_log(dir);
    let a = signer("inst-0001", 1);
    let b = signer("stu-00a1", 2);
    for batch in 0..10u64 {
        let envelopes = (0..1024)
            .map(|i| verified(envelope(&[&a, &b], &format!("e-{batch}-{i}"), i)))
            .collect();
        for o in log.append(envelopes, &mut AdmitAll).unwrap() {
            assert!(matches!(o, Outcome::Ok(_)));
        }
    }
    log.close().unwrap();
}

/// How many leaves come before record `n`.
fn leaves_before(all: &[(u64, RecordKind, Vec<u8>)], n: usize) -> u64 {
    all[..n]
        .iter()
        .filter(|(_, k, _)| *k == RecordKind::Leaf)
        .count() as u64
}

/// Flips every bit of the byte after the start of record `n`'s frame (its length).
fn damage_frame(dir: &Path, all: &[(u64, RecordKind, Vec<u8>)], n: usize) {
    let path = dir.join(layout::RECORDS);
    let mut bytes = fs::read(&path).unwrap();
    bytes[all[n].0 as usize + 1] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
}

#[test]
fn a_long_log_read_ahead_reports_its_first_problem_not_a_later_one() {
    let dir = TempDir::new().unwrap();
    long_log(dir.path());
    let s = run_audit(dir.path()).unwrap();
    assert_eq!(
        (s.entries, s.signatures, s.checkpoints),
        (10_240, 20_480, 11)
    );
    let all = records(dir.path());
    let original = kinds_and_bodies(dir.path());
    // A leaf altered and framed again — record 100 (the first chunk: the pass stops
    // while the threads ahead still read), or 9,000 (the third) — and a later record's
    // frame damaged: the altered leaf is the finding.
    for n in [100, 9_000] {
        let mut altered = original.clone();
        let (kind, body) = &mut altered[n];
        assert_eq!(*kind, RecordKind::Leaf);
        let middle = body.len() / 2;
        body[middle] ^= 0x20;
        rewrite(dir.path(), &altered);
        damage_frame(dir.path(), &all, 9_500);
        let f = finding(dir.path());
        assert_eq!(
            (f.offset, f.index),
            (all[n].0, Some(leaves_before(&all, n))),
            "{f}"
        );
    }
    // The original records again: the damaged frame alone is the finding, after
    // every leaf before it.
    rewrite(dir.path(), &original);
    run_audit(dir.path()).expect("the original records pass");
    damage_frame(dir.path(), &all, 9_500);
    let f = finding(dir.path());
    assert_eq!(
        (f.offset, f.index, f.what.as_str()),
        (
            all[9_500].0,
            Some(leaves_before(&all, 9_500)),
            "record is damaged"
        ),
        "{f}"
    );
}
