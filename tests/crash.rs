//! Crash safety: SIGKILL the writer in the middle of appends, again and again, then
//! check that every acknowledged entry is there, where its receipt said, and that the
//! log passes the audit.
//!
//! CI runs a short version; set `LEDGER_CRASH_ROUNDS=200` (and optionally
//! `LEDGER_CRASH_SEED`) for a long one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use lesson_ledger::log::audit::{audit, AuditOptions};
use lesson_ledger::log::envelope::EntryId;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

use crate::cli::{bin, run};
use crate::support::{operator_of, register_institution};

#[test]
fn acknowledged_entries_survive_repeated_sigkill() {
    let rounds: u64 = std::env::var("LEDGER_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("LEDGER_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261129);
    eprintln!("crash test: {rounds} rounds, seed {seed} (LEDGER_CRASH_ROUNDS, LEDGER_CRASH_SEED)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    // The origin and association that `support::ledger_entry` payloads are made for.
    let association = crate::support::write_test_association(tmp.path());
    assert!(run(&[
        "init",
        "--data",
        data.to_str().unwrap(),
        "--origin",
        crate::support::TEST_ORIGIN,
        "--association",
        association.to_str().unwrap(),
    ])
    .status
    .success());
    let operator = operator_of(&data);
    let per_round = 600u64;
    // entry id -> index, from every receipt printed (printed only once durable).
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    let mut killed = 0;
    for round in 0..rounds {
        // Half of each round's entries repeat the previous round's: replays must be
        // answered with the first receipt even across crashes.
        let start = round * per_round / 2;
        let path = tmp.path().join(format!("round-{round}.jsonl"));
        let mut file = std::fs::File::create(&path).unwrap();
        for i in start..start + per_round {
            writeln!(file, "{}", register_institution(&operator, i).to_json()).unwrap();
        }
        drop(file);
        let batch = rng.gen_range(1..=64).to_string();
        let mut child = bin()
            .args([
                "append",
                "--data",
                data.to_str().unwrap(),
                "--batch",
                &batch,
                path.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..120)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            // A line cut by the kill is not a whole acknowledgement.
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            assert!(v["status"] == "ok" || v["status"] == "exists", "{v}");
            let id = v["receipt"]["entry_id"].as_str().unwrap().to_string();
            let index = v["receipt"]["index"].as_u64().unwrap();
            if let Some(previous) = acknowledged.insert(id.clone(), index) {
                assert_eq!(
                    previous, index,
                    "entry {id} was acknowledged at two indexes"
                );
            }
        }
    }
    eprintln!(
        "crash test: killed {killed} of {rounds} writers; {} entries acknowledged",
        acknowledged.len()
    );
    let (ledger, _) = lesson_ledger::ledger::writer::Ledger::open(&data)
        .expect("the ledger reopens after crashes");
    let log = ledger.log();
    for (id, index) in &acknowledged {
        let entry_id: EntryId = id.parse().unwrap();
        assert_eq!(
            log.index_of(&entry_id).unwrap(),
            Some(*index),
            "acknowledged entry {id} lost"
        );
        assert_eq!(log.entry(*index).unwrap().envelope.entry_id(), entry_id);
    }
    drop(ledger);
    let summary =
        audit(&data, &AuditOptions::default(), &|_, _| {}).expect("log verifies after crashes");
    assert!(summary.entries >= acknowledged.len() as u64);
}

/// Files under sled's `blobs/` directory (values sled keeps outside its log).
fn sled_blobs(data: &std::path::Path) -> usize {
    match std::fs::read_dir(data.join("index.sled").join("blobs")) {
        Ok(entries) => entries.count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("blobs dir: {e}"),
    }
}

#[test]
fn the_ledger_state_writes_no_sled_blob_that_a_kill_would_leave_behind() {
    use lesson_ledger::ledger::writer::Ledger;
    use lesson_ledger::log::envelope::KeyCache;
    use lesson_ledger::log::store::Outcome;
    // sled 0.34 stores a value over ~128 KiB as a file of its own and removes a replaced
    // one only when its log segment retires, which a kill prevents: every restart of a
    // large ledger left its old deltas and snapshots on disk. A batch of 3,000
    // registrations makes a delta of several hundred KiB.
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    let (mut ledger, operator) = crate::http::ledger_with_genesis(&data);
    let keys = KeyCache::self_certifying();
    let batch = (0..3_000)
        .map(|n| register_institution(&operator, n).verify(&keys).unwrap())
        .collect();
    let outcomes = ledger.submit(batch).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ok(_))));
    ledger.close().unwrap();
    assert_eq!(sled_blobs(&data), 0, "no state value is a sled blob");
    // The state, cut into small values, reads back whole.
    let (ledger, _) = Ledger::open(&data).unwrap();
    assert_eq!(ledger.log().size(), 3_001);
    drop(ledger);
    audit(&data, &AuditOptions::default(), &|_, _| {}).unwrap();
}
