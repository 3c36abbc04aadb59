//! The kill campaign: the real server (`lesson-ledger serve` on a loopback port) under
//! eight concurrent writers posting single envelopes and batches to `POST /v1/entries`,
//! SIGKILLed at a random moment and restarted, again and again. At the end:
//! - every acknowledged entry (an `ok` or `exists` answer, sent only once durable) is in
//!   the log at its receipt's index, and no entry was acknowledged at two indexes;
//! - every entry sent but never acknowledged answers `ok` or `exists` when resent;
//! - `lesson-ledger verify --data` passes.
//!
//! `cargo test` runs a short real campaign (`LEDGER_KILL_ROUNDS`, default 3 kills);
//! `scripts/kill-campaign.sh KILLS` runs a long one. `LEDGER_KILL_SEED` replays a
//! campaign's schedule; `LEDGER_KILL_BIN` serves with another build of the binary (e.g.
//! `target/release/lesson-ledger`).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lesson_ledger::http::entries::{BatchResults, EntryResult};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::envelope::{EntryId, Envelope};
use lesson_ledger::log::note::NoteSigner;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::json;

use crate::cli::run;
use crate::support::{operator_of, register_institution};

/// Concurrent writers while the server runs (the campaign's floor is eight).
const WRITERS: usize = 8;
/// Largest batch a writer posts (a batch of one is posted as a single envelope).
const BATCH_MAX: u64 = 32;
/// How long the server runs under load before its SIGKILL, at most.
const RUN_MILLIS_MAX: u64 = 400;
/// How long a restarted server may take to listen (it recovers the log first).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The entry numbered `n`: the one function that makes the campaign's entries, so a
/// change of the entry format is made here only. Deterministic (Ed25519 signatures
/// are), so a resend is the same statement with the same entry id.
fn campaign_entry(operator: &NoteSigner, n: u64) -> Envelope {
    register_institution(operator, n)
}

/// What a campaign saw: every acknowledgement and every entry sent but not acknowledged.
#[derive(Default)]
struct Ledgerbook {
    /// entry id -> (entry number, index of its receipt).
    acknowledged: HashMap<String, (u64, u64)>,
    /// Entries sent whose answer never came (killed, refused for load, cut off).
    unacknowledged: BTreeSet<u64>,
}

impl Ledgerbook {
    fn acknowledge(&mut self, n: u64, id: String, index: u64) {
        self.unacknowledged.remove(&n);
        if let Some(&(first_n, first_index)) = self.acknowledged.get(&id) {
            assert_eq!(first_n, n, "entry {id} acknowledged for two statements");
            assert_eq!(
                first_index, index,
                "entry {id} (n = {n}) acknowledged at two indexes"
            );
        }
        self.acknowledged.insert(id, (n, index));
    }

    fn record(&mut self, sent: Sent) {
        match sent.answer {
            Some(result) => {
                let (id, index) = accepted(sent.n, &result);
                self.acknowledge(sent.n, id, index);
            }
            None => {
                self.unacknowledged.insert(sent.n);
            }
        }
    }
}

/// One entry sent by a writer, and its answer if one came.
struct Sent {
    n: u64,
    answer: Option<EntryResult>,
}

/// The receipt of an answer that must be `ok` or `exists`: (entry id, index).
fn accepted(n: u64, result: &EntryResult) -> (String, u64) {
    assert!(
        result.status == "ok" || result.status == "exists",
        "entry n = {n} answered {:?}: {:?}",
        result.status,
        result.error
    );
    let receipt = result
        .receipt
        .as_ref()
        .unwrap_or_else(|| panic!("entry n = {n}: {} without a receipt", result.status));
    (receipt.entry_id.clone(), receipt.index)
}

/// The server process, its address and where its log goes.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(bin: &Path, data: &Path, log: &Path) -> Server {
        let stderr = File::create(log).expect("server log file");
        let child = Command::new(bin)
            .args(["serve", "--data", s(data), "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn lesson-ledger serve");
        let mut server = Server {
            child,
            url: String::new(),
        };
        let started = Instant::now();
        while server.url.is_empty() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find_map(|l| l.strip_prefix("listening on http://"))
            {
                server.url = format!("http://{}", addr.trim());
            } else if let Some(status) = server.child.try_wait().expect("poll server") {
                panic!("the server exited with {status} before listening:\n{text}");
            } else if started.elapsed() > START_TIMEOUT {
                server.kill();
                panic!("the server did not listen within {START_TIMEOUT:?}:\n{text}");
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        server
    }

    /// SIGKILL, and reap the process.
    fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().expect("reap the server");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Posts entries `ns` (one envelope alone, more as a batch) and returns what came back.
fn post(client: &Client, url: &str, operator: &NoteSigner, ns: &[u64]) -> Vec<Sent> {
    let envelopes: Vec<Envelope> = ns.iter().map(|&n| campaign_entry(operator, n)).collect();
    let body = match envelopes.as_slice() {
        [one] => one.to_json(),
        many => {
            let entries: Vec<serde_json::Value> = many
                .iter()
                .map(|e| serde_json::from_str(&e.to_json()).expect("envelope JSON"))
                .collect();
            json!({ "entries": entries }).to_string()
        }
    };
    let unanswered = || ns.iter().map(|&n| Sent { n, answer: None }).collect();
    let Ok(response) = client
        .post(format!("{url}/v1/entries"))
        .header("content-type", "application/json")
        .body(body)
        .send()
    else {
        return unanswered();
    };
    let status = response.status();
    let Ok(text) = response.text() else {
        return unanswered();
    };
    // Overload and timeouts are not answers: the entry may or may not be in.
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        return unanswered();
    }
    let results: Vec<EntryResult> = if ns.len() == 1 {
        vec![serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("single answer {status} {text}: {e}"))]
    } else {
        serde_json::from_str::<BatchResults>(&text)
            .unwrap_or_else(|e| panic!("batch answer {status} {text}: {e}"))
            .results
    };
    assert_eq!(results.len(), ns.len(), "one result per entry");
    ns.iter()
        .zip(results)
        .map(|(&n, result)| Sent {
            n,
            answer: Some(result),
        })
        .collect()
}

/// One writer: posts until told to stop, fresh entries from `next` and its share of
/// earlier unacknowledged ones first.
fn writer(
    url: String,
    operator: Arc<NoteSigner>,
    seed: u64,
    mut resend: Vec<u64>,
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Vec<Sent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let mut sent = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let count = if rng.gen_bool(0.5) {
            1
        } else {
            rng.gen_range(2..=BATCH_MAX)
        };
        let mut ns: Vec<u64> = resend.split_off(resend.len().saturating_sub(count as usize));
        while (ns.len() as u64) < count {
            ns.push(next.fetch_add(1, Ordering::Relaxed));
        }
        let answers = post(&client, &url, &operator, &ns);
        let failed = answers.iter().all(|a| a.answer.is_none());
        sent.extend(answers);
        if failed {
            // Killed or overloaded: do not spin while the server is down.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Entries never sent stay owed: they are resent at the end like the unacknowledged.
    sent.extend(resend.into_iter().map(|n| Sent { n, answer: None }));
    sent
}

/// One round: serve, load with `WRITERS` writers, SIGKILL at a random moment.
fn round(
    bin: &Path,
    data: &Path,
    operator: &Arc<NoteSigner>,
    book: &mut Ledgerbook,
    rng: &mut StdRng,
    next: &Arc<AtomicU64>,
) {
    let mut server = Server::start(bin, data, &data.with_extension("server.log"));
    let stop = Arc::new(AtomicBool::new(false));
    let owed: Vec<u64> = std::mem::take(&mut book.unacknowledged)
        .into_iter()
        .collect();
    let share = owed.len().div_ceil(WRITERS).max(1);
    let mut shares = owed.chunks(share).map(<[u64]>::to_vec);
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (url, op, seed) = (server.url.clone(), operator.clone(), rng.gen());
            let (resend, next, stop) = (
                shares.next().unwrap_or_default(),
                next.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || writer(url, op, seed, resend, next, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(rng.gen_range(1..=RUN_MILLIS_MAX)));
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join()
            .expect("writer thread")
            .into_iter()
            .for_each(|s| book.record(s));
    }
}

/// After the last kill: every unacknowledged entry, resent, answers `ok` or `exists`.
fn resend_unacknowledged(bin: &Path, data: &Path, operator: &NoteSigner, book: &mut Ledgerbook) {
    let mut server = Server::start(bin, data, &data.with_extension("server.log"));
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");
    let owed: Vec<u64> = std::mem::take(&mut book.unacknowledged)
        .into_iter()
        .collect();
    for chunk in owed.chunks(BATCH_MAX as usize) {
        for sent in post(&client, &server.url, operator, chunk) {
            let result = sent
                .answer
                .unwrap_or_else(|| panic!("resent entry n = {} got no answer", sent.n));
            let (id, index) = accepted(sent.n, &result);
            book.acknowledge(sent.n, id, index);
        }
    }
    server.kill();
}

/// Every acknowledged entry at its receipt's index, read from the store itself.
fn check_acknowledged(data: &Path, book: &Ledgerbook) {
    let (ledger, _) = Ledger::open(data).expect("the ledger reopens after the campaign");
    let log = ledger.log();
    for (id, &(n, index)) in &book.acknowledged {
        let entry_id: EntryId = id.parse().expect("entry id");
        assert_eq!(
            log.index_of(&entry_id).expect("index read"),
            Some(index),
            "acknowledged entry {id} (n = {n}) is not at its receipt's index"
        );
        let leaf = log.entry(index).expect("entry read");
        assert_eq!(
            leaf.envelope.entry_id(),
            entry_id,
            "index {index} holds another entry"
        );
    }
}

/// The whole campaign in `data` (created here): returns (kills, acknowledged entries).
fn campaign(data: &Path, bin: &Path, kills: u64, seed: u64) -> (u64, usize) {
    // The origin and association that `support::register_institution` payloads name.
    let parent = data.parent().expect("data has a parent");
    let association = crate::support::write_test_association(parent);
    let init = run(&[
        "init",
        "--data",
        s(data),
        "--origin",
        crate::support::TEST_ORIGIN,
        "--association",
        s(&association),
    ]);
    assert!(init.status.success(), "init: {init:?}");
    let operator = Arc::new(operator_of(data));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut book = Ledgerbook::default();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for kill in 1..=kills {
        round(bin, data, &operator, &mut book, &mut rng, &next);
        if kill % 50 == 0 || kill == kills {
            eprintln!(
                "kill campaign: {kill}/{kills} kills, {} acknowledged, {} unacknowledged, {:.0?}",
                book.acknowledged.len(),
                book.unacknowledged.len(),
                started.elapsed()
            );
        }
    }
    let owed = book.unacknowledged.len();
    resend_unacknowledged(bin, data, &operator, &mut book);
    eprintln!("kill campaign: {owed} unacknowledged entries resent, each ok or exists");
    check_acknowledged(data, &book);
    (kills, book.acknowledged.len())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

#[test]
fn every_acknowledged_entry_survives_sigkill_under_concurrent_writers() {
    let kills = env_u64("LEDGER_KILL_ROUNDS", 3);
    let seed = env_u64("LEDGER_KILL_SEED", 20261201);
    let bin = std::env::var_os("LEDGER_KILL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lesson-ledger")));
    eprintln!(
        "kill campaign: {kills} kills, seed {seed}, {WRITERS} writers, server {} \
         (LEDGER_KILL_ROUNDS, LEDGER_KILL_SEED, LEDGER_KILL_BIN)",
        bin.display()
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let started = Instant::now();
    let (kills, acknowledged) = campaign(&data, &bin, kills, seed);
    let verify = run(&["verify", "--data", s(&data)]);
    assert!(
        verify.status.success(),
        "verify --data after the campaign: {}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    eprintln!(
        "kill campaign: PASS, {kills} kills, {acknowledged} acknowledged entries intact, \
         verify --data ok, {:.1?}",
        started.elapsed()
    );
}
