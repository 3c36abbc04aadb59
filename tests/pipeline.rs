//! The pipelined group commit (issue 15): the real server (`lesson-ledger serve`) under
//! concurrent single-entry POSTs is stopped by a failpoint right after a group was
//! written to `log.dat` and before its fdatasync (while the next group is being
//! planned), then SIGKILLed there. Then:
//! - no entry of that group was acknowledged (acknowledgement comes after the sync);
//! - the ledger reopens, with every acknowledged entry at its receipt's index;
//! - the written group is kept whole or lost whole, never in part;
//! - `verify --data` passes.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lesson_ledger::http::entries::EntryResult;
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::envelope::EntryId;
use lesson_ledger::log::note::NoteSigner;
use reqwest::blocking::Client;

use crate::cli::run;
use crate::support::{operator_of, register_institution};

/// Concurrent writers: enough that groups form and one is planned while another syncs.
const WRITERS: u64 = 16;
/// How long the server may take to listen, and then to reach the failpoint.
const TIMEOUT: Duration = Duration::from_secs(120);

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Waits until the server's stderr holds a line starting with `prefix`; its rest.
fn wait_for_line(child: &mut Child, log: &Path, prefix: &str) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.lines().find_map(|l| l.strip_prefix(prefix)) {
            return rest.trim().to_string();
        }
        if let Some(status) = child.try_wait().expect("poll server") {
            panic!("the server exited with {status} before `{prefix}`:\n{text}");
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("no `{prefix}` within {TIMEOUT:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One writer: single-entry POSTs of fresh entries until told to stop; the
/// acknowledgements it got: (entry id, index).
fn writer(
    url: String,
    operator: Arc<NoteSigner>,
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Vec<(String, u64)> {
    let client = Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let mut acknowledged = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let body = register_institution(&operator, n).to_json();
        let answer = client
            .post(format!("{url}/v1/entries"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .and_then(|r| r.text());
        let Ok(text) = answer else {
            // Stopped at the failpoint or killed: no answer is no acknowledgement.
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let Ok(result) = serde_json::from_str::<EntryResult>(&text) else {
            continue;
        };
        if let Some(receipt) = result.receipt.filter(|_| result.status == "ok") {
            acknowledged.push((receipt.entry_id, receipt.index));
        }
    }
    acknowledged
}

/// Parses the failpoint's `entries A..B written, not synced` into (A, B).
fn written_range(rest: &str) -> (u64, u64) {
    let range = rest
        .strip_prefix("entries ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.split_once(".."))
        .unwrap_or_else(|| panic!("failpoint line: {rest}"));
    (
        range.0.parse().expect("first index"),
        range.1.parse().expect("end index"),
    )
}

#[test]
fn a_group_killed_between_its_write_and_its_sync_was_never_acknowledged_and_is_kept_whole_or_not_at_all(
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let association = crate::support::write_test_association(tmp.path());
    let init = run(&[
        "init",
        "--data",
        s(&data),
        "--origin",
        crate::support::TEST_ORIGIN,
        "--association",
        s(&association),
    ]);
    assert!(init.status.success(), "init: {init:?}");
    let operator = Arc::new(operator_of(&data));
    let log = tmp.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
        .args(["serve", "--data", s(&data), "--addr", "127.0.0.1:0"])
        // The 40th group this process writes stops before its sync.
        .env("LESSON_LEDGER_FAILPOINT", "log-before-sync:40")
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("server log"))
        .spawn()
        .expect("spawn lesson-ledger serve");
    let url = format!(
        "http://{}",
        wait_for_line(&mut child, &log, "listening on http://")
    );
    let (next, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (url, op, next, stop) = (url.clone(), operator.clone(), next.clone(), stop.clone());
            std::thread::spawn(move || writer(url, op, next, stop))
        })
        .collect();
    let rest = wait_for_line(&mut child, &log, "failpoint log-before-sync:");
    let (first, end) = written_range(&rest);
    // Answers already on their way are let through before the kill.
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("SIGKILL the server");
    child.wait().expect("reap the server");
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    for w in writers {
        for (id, index) in w.join().expect("writer thread") {
            assert!(
                index < first,
                "entry {id} at index {index} was acknowledged, but its group {first}..{end} was never synced"
            );
            assert_eq!(
                acknowledged.insert(id.clone(), index),
                None,
                "{id} acknowledged twice"
            );
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "groups before the failpoint were acknowledged"
    );

    let (ledger, _) = Ledger::open(&data).expect("the ledger reopens after the kill");
    let size = ledger.log().size();
    assert!(
        size == first || size == end,
        "the unsynced group {first}..{end} was kept in part: the log has {size} entries"
    );
    for (id, index) in &acknowledged {
        let entry_id: EntryId = id.parse().expect("entry id");
        assert_eq!(
            ledger.log().index_of(&entry_id).expect("index read"),
            Some(*index),
            "acknowledged entry {id} is not at its receipt's index"
        );
    }
    drop(ledger);
    let verify = run(&["verify", "--data", s(&data)]);
    assert!(
        verify.status.success(),
        "verify --data: {}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
