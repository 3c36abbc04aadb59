//! HTTP load benchmark: a Rust load generator against the server on loopback, each
//! figure printed next to the library's own append rate measured in the same run.
//!
//! Run: `cargo bench --bench http_load`. `LEDGER_BENCH_HTTP_ENTRIES` sets the entries
//! per phase (default 20,000); `LEDGER_BENCH_HTTP_SECS` the seconds of each GET phase
//! (default 5).
//!
//! Phases: library append (verify + `Ledger::submit` in batches of 1024); single-entry
//! POSTs over 64 keep-alive connections (entries/s, p50, p99); batched POSTs (256 per
//! request, 8 connections); GET inclusion proofs and GET entries over 64 connections.
//! Targets (issue 4): single ≥ 20,000 entries/s with p99 < 25 ms; batched ≥ 80% of the
//! library's rate; GETs ≥ 30,000 requests/s.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::defaults;
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::envelope::{verify_batch, Envelope, KeyCache};
use lesson_ledger::log::note::{KeyName, NoteSigner};
use lesson_ledger::log::store::Outcome;

const CONNECTIONS: usize = 64;
const ORIGIN: &str = "lessons.example/bench";

fn operator_of(dir: &Path) -> NoteSigner {
    let key = lesson_ledger::log::keyfile::read_private_pem(&dir.join("operator.key"))
        .expect("operator key");
    NoteSigner::new(KeyName::new("operator").expect("name"), key)
}

fn new_ledger(dir: &Path) -> (Ledger, NoteSigner) {
    let mut ledger = Ledger::create(dir, ORIGIN, "operator").expect("create");
    let operator = operator_of(dir);
    let genesis = defaults::genesis(ORIGIN, "operator", &operator.vkey());
    let envelope = Envelope::sign(
        lesson_ledger::ledger::PAYLOAD_TYPE,
        &defaults::genesis_payload(&genesis),
        &[&operator],
    )
    .expect("sign");
    let verified = envelope
        .verify(&KeyCache::self_certifying())
        .expect("verify");
    ledger.submit(vec![verified]).expect("genesis");
    (ledger, operator)
}

/// `n` institution registrations (operator + the new key sign), from `first`.
fn registrations(operator: &NoteSigner, first: u64, n: u64) -> Vec<Envelope> {
    use rayon::prelude::*;
    (first..first + n)
        .into_par_iter()
        .map(|i| {
            let name = format!("inst-{i:07}");
            let seed = *blake3::hash(format!("bench-key-{i}").as_bytes()).as_bytes();
            let key = NoteSigner::new(KeyName::new(&name).expect("name"), SigningKey::from_bytes(&seed));
            let payload = serde_json::json!({"kind": "party_registered", "id": format!("reg-{name}"),
                "party": name, "role": "institution", "key": key.vkey()});
            Envelope::sign(
                lesson_ledger::ledger::PAYLOAD_TYPE,
                payload.to_string().as_bytes(),
                &[operator, &key],
            )
            .expect("sign")
        })
        .collect()
}

fn library_rate(n: u64) -> f64 {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut ledger, operator) = new_ledger(tmp.path());
    let envelopes = registrations(&operator, 1, n);
    let keys = KeyCache::self_certifying();
    let start = Instant::now();
    for chunk in envelopes.chunks(1024) {
        let verified: Vec<_> = verify_batch(chunk.to_vec(), &keys)
            .into_iter()
            .map(|r| r.expect("verifies"))
            .collect();
        let outcomes = ledger.submit(verified).expect("submit");
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ok(_))));
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// POSTs `bodies` over `connections` concurrent keep-alive connections; returns the
/// wall time and each request's latency.
async fn post_all(url: &str, bodies: Vec<String>, connections: usize) -> (Duration, Vec<Duration>) {
    let client = reqwest::Client::new();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, bodies, next, url) = (
            client.clone(),
            Arc::clone(&bodies),
            Arc::clone(&next),
            url.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("POST");
                let status = response.status();
                let _ = response.bytes().await;
                assert!(status.is_success(), "status {status}");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    (start.elapsed(), latencies)
}

/// GETs paths from `make_path(i)` over 64 connections for `secs`; requests/s and p99.
async fn get_for(
    base: &str,
    secs: u64,
    size: u64,
    make_path: fn(u64, u64) -> String,
) -> (f64, Duration) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS as u64 {
        let (client, base) = (client.clone(), base.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = client
                    .get(format!("{base}{}", make_path(i, size)))
                    .send()
                    .await
                    .expect("GET");
                assert!(response.status().is_success());
                let _ = response.bytes().await;
                latencies.push(t.elapsed());
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    let rate = latencies.len() as f64 / start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    (rate, percentile(&latencies, 0.99))
}

fn main() {
    let n: u64 = std::env::var("LEDGER_BENCH_HTTP_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let secs: u64 = std::env::var("LEDGER_BENCH_HTTP_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("http_load benchmark on {cores} cores; {n} entries per phase; server and load generator share the machine");

    let library = library_rate(n);
    println!(
        "{:<56} {:>10.0} entries/s   (the reference)",
        "library: verify + Ledger::submit, batches of 1024", library
    );

    let tmp = tempfile::tempdir().expect("tmp");
    let (ledger, operator) = new_ledger(tmp.path());
    let single: Vec<String> = registrations(&operator, 1, n)
        .iter()
        .map(Envelope::to_json)
        .collect();
    let batched: Vec<String> = registrations(&operator, n + 1, n)
        .chunks(256)
        .map(|c| {
            let parts: Vec<String> = c.iter().map(Envelope::to_json).collect();
            format!("{{\"entries\":[{}]}}", parts.join(","))
        })
        .collect();
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().expect("addr"),
        ServerConfig::default(),
    )
    .expect("server");
    let base = server.url();
    let url = format!("{base}/v1/entries");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let (wall, mut lat) = rt.block_on(post_all(&url, single, CONNECTIONS));
    lat.sort_unstable();
    let rate = n as f64 / wall.as_secs_f64();
    println!(
        "{:<56} {:>10.0} entries/s = {:>5.1}% of library; p50 {:.2?}, p99 {:.2?} (target >= 20000/s, p99 < 25 ms)",
        "single-entry POSTs, 64 keep-alive connections",
        rate,
        100.0 * rate / library,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    let (wall, mut lat) = rt.block_on(post_all(&url, batched, 8));
    lat.sort_unstable();
    let rate = n as f64 / wall.as_secs_f64();
    println!(
        "{:<56} {:>10.0} entries/s = {:>5.1}% of library; p99 {:.2?} per request (target >= 80%)",
        "batched POSTs (256 per request), 8 connections",
        rate,
        100.0 * rate / library,
        percentile(&lat, 0.99)
    );

    let size = 1 + 2 * n;
    let (rate, p99) = rt.block_on(get_for(&base, secs, size, |i, size| {
        format!("/v1/proofs/inclusion?index={}", i % size)
    }));
    println!(
        "{:<56} {:>10.0} req/s; p99 {p99:.2?} (target >= 30000/s)",
        "GET /v1/proofs/inclusion, 64 connections", rate
    );
    let (rate, p99) = rt.block_on(get_for(&base, secs, size, |i, size| {
        format!("/v1/entries/{}", i % size)
    }));
    println!(
        "{:<56} {:>10.0} req/s; p99 {p99:.2?}",
        "GET /v1/entries/{index}, 64 connections", rate
    );
    let (rate, p99) = rt.block_on(get_for(&base, secs, size, |_, _| "/checkpoint".to_owned()));
    println!(
        "{:<56} {:>10.0} req/s; p99 {p99:.2?}",
        "GET /checkpoint, 64 connections", rate
    );
    drop(rt);
    server.shutdown().expect("shutdown");
}
