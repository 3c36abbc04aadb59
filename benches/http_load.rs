//! HTTP load benchmark: a load generator against the server on loopback, each figure
//! printed next to the library's own rate for the same work, measured in the same run.
//!
//! Run: `cargo bench --bench http_load`. `LEDGER_BENCH_HTTP_ENTRIES` sets the entries
//! per POST phase (default 20,000); `LEDGER_BENCH_HTTP_SECS` the seconds of each GET
//! phase and of each library read measurement (default 5);
//! `LEDGER_BENCH_HTTP_STUDENTS` the students behind the balance reads (default 2,000,
//! each with two claims and an allocation on each); `LEDGER_BENCH_HTTP_CLIENT_THREADS`
//! the load generator's runtime threads (default 1); `LEDGER_BENCH_HTTP_ANSWER_CACHE=0`
//! serves every balance answer made anew (no answer cache), the figure to compare with.
//!
//! First the machine's own limit: strict Ed25519 verifications a second on all cores,
//! and so the most entries of three signatures (what every registration POSTed here
//! carries: the operator's, the new key's and the consumer association's) the machine
//! could verify doing nothing else. Phases: library append (batches of 1024 verified on
//! all cores while `Ledger::submit` takes the one before, as the server does; then
//! verify and submit one after the other, in batches of 1024 and 32) and library reads (an inclusion proof; a claim's and a student's
//! typed answer: every object with its state proof, and the inclusion proof of every
//! entry behind it, as the server builds them), all cores; the size of a student's
//! answer over HTTP and of one state proof; then over
//! HTTP: single-entry POSTs over 64 keep-alive connections (entries/s, p50, p99), of
//! registrations (three signatures) and of pledges (one, by a known key);
//! batched POSTs (256 per request, 8 connections, judged against the mean of the
//! library's rate before and after); GET the checkpoint (first: the cheapest answer, the
//! machine's limit every other read is printed against), inclusion proofs, claim and
//! student balances and entries, over 64 connections. A balance read again between two
//! batches is served from the server's answer cache (`src/http/balances/cache.rs`); the
//! library's figure is the cost of making it. Targets (issue 4): single ≥ 20,000 entries/s with
//! p99 < 25 ms; batched ≥ 80% of the library's rate; proofs and balances ≥ 30,000 req/s.
//!
//! The load generator shares the two cores with the server, so every HTTP phase also
//! prints the CPU each side used (from `/proc`, by thread name), and the POST phases the
//! writer's busy time and mean group commit (from `/metrics`): a rate is only as
//! meaningful as what else was running. The client is a minimal HTTP/1.1 keep-alive
//! client on raw sockets — what `wrk` does — because reqwest cost the server a third of
//! the machine on the GET phases.

// The allocator of the `lesson-ledger` binary (src/main.rs), so figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/answers.rs"]
mod answers;
#[path = "support/measure.rs"]
mod measure;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use answers::{claim_answer, student_answer};
use ed25519_dalek::SigningKey;
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::defaults;
use lesson_ledger::ledger::limits::PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX;
use lesson_ledger::ledger::state_map::StateProof;
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::envelope::{verify_batch, Envelope, KeyCache, VerifiedEnvelope};
use lesson_ledger::log::note::{KeyName, NoteSigner};
use lesson_ledger::log::store::Outcome;
use serde_json::json;

const CONNECTIONS: usize = 64;
const ORIGIN: &str = "lessons.example/bench";
/// Name of the load generator's threads, so their CPU time can be told apart.
const CLIENT_THREAD: &str = "loadgen";
/// Signatures on every POSTed entry: a registration is signed by the operator, the new
/// key and, since the rules want a consumer association on every entry that creates a
/// party, the bench's association (checked on the envelopes in `main`). Until issue 15's
/// third pass this said two, which understated every share of the limit by a third.
const SIGNATURES_AN_ENTRY: usize = 3;
/// Target of the GET phases (issue 4), requests/s.
const GET_TARGET: f64 = 30_000.0;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether phase `name` is to run (`LEDGER_BENCH_HTTP_PHASES`, default all).
fn wanted(name: &str) -> bool {
    std::env::var("LEDGER_BENCH_HTTP_PHASES").map_or(true, |v| v.split(',').any(|p| p == name))
}

fn operator_of(dir: &Path) -> NoteSigner {
    let key = lesson_ledger::log::keyfile::read_private_pem(&dir.join("operator.key"))
        .expect("operator key");
    NoteSigner::new(KeyName::new("operator").expect("name"), key)
}

/// Signs `payload` for the bench ledger: its `ledger` is added, and the bench association
/// co-signs the kinds whose rules want a consumer association.
fn sign(signers: &[&NoteSigner], payload: &serde_json::Value) -> Envelope {
    let mut payload = payload.clone();
    payload["ledger"] = ORIGIN.into();
    let association = key_for(ASSOCIATION);
    let mut all = signers.to_vec();
    let kind = payload["kind"].as_str().unwrap_or("");
    if matches!(kind, "party_registered" | "claim_recorded")
        || (kind == "allocation_made" && payload.get("run").is_none())
    {
        all.push(&association);
    }
    Envelope::sign(
        lesson_ledger::ledger::PAYLOAD_TYPE,
        payload.to_string().as_bytes(),
        &all,
    )
    .expect("sign")
}

/// The consumer association the bench ledger's genesis declares.
const ASSOCIATION: &str = "assoc-be";

/// Verifies and appends `envelopes` in batches of 1024; every one must be accepted.
fn append_all(ledger: &mut Ledger, envelopes: &[Envelope]) {
    append_in(ledger, envelopes, 1024);
}

/// Verifies (all cores) and appends `envelopes` in batches of `batch`, one after the
/// other; every one must be accepted. Returns the time spent in `Ledger::submit` alone.
fn append_in(ledger: &mut Ledger, envelopes: &[Envelope], batch: usize) -> Duration {
    let keys = KeyCache::self_certifying();
    envelopes
        .chunks(batch)
        .map(|chunk| submit_accepted(ledger, verified(chunk, &keys)))
        .sum()
}

/// Appends `envelopes` in batches of `batch` as the server does: each batch verified on
/// all cores while this thread, the writer, submits the one before. Returns the time
/// spent in `Ledger::submit` alone.
fn append_overlapped(ledger: &mut Ledger, envelopes: &[Envelope], batch: usize) -> Duration {
    let keys = &KeyCache::self_certifying();
    // One batch verified ahead of the writer, as the server's queue holds them.
    let (ahead, batches) = std::sync::mpsc::sync_channel(1);
    std::thread::scope(|scope| {
        // Moves the sender, so that the writer's loop ends with the last batch.
        scope.spawn(move || {
            for chunk in envelopes.chunks(batch) {
                if ahead.send(verified(chunk, keys)).is_err() {
                    return;
                }
            }
        });
        batches
            .into_iter()
            .map(|batch| submit_accepted(ledger, batch))
            .sum()
    })
}

fn verified(chunk: &[Envelope], keys: &KeyCache) -> Vec<VerifiedEnvelope> {
    verify_batch(chunk.to_vec(), keys)
        .into_iter()
        .map(|r| r.expect("verifies"))
        .collect()
}

/// Submits `batch`, every entry of which must be accepted; the time `submit` took.
fn submit_accepted(ledger: &mut Ledger, batch: Vec<VerifiedEnvelope>) -> Duration {
    let t = Instant::now();
    let outcomes = ledger.submit(batch).expect("submit");
    let took = t.elapsed();
    for o in &outcomes {
        assert!(matches!(o, Outcome::Ok(_)), "refused: {o:?}");
    }
    took
}

fn new_ledger(dir: &Path) -> (Ledger, NoteSigner) {
    let mut ledger = Ledger::create(dir, ORIGIN, "operator").expect("create");
    let operator = operator_of(dir);
    let mut genesis = defaults::genesis(ORIGIN, "operator", &operator.vkey());
    let association = key_for(ASSOCIATION);
    genesis.associations = vec![lesson_ledger::ledger::payload::DeclaredAssociation {
        party: ASSOCIATION.into(),
        key: association.vkey(),
    }];
    let envelope = Envelope::sign(
        lesson_ledger::ledger::PAYLOAD_TYPE,
        &defaults::genesis_payload(&genesis),
        &[&operator, &association],
    )
    .expect("sign");
    append_all(&mut ledger, &[envelope]);
    (ledger, operator)
}

fn key_for(name: &str) -> NoteSigner {
    let seed = *blake3::hash(format!("bench-key-{name}").as_bytes()).as_bytes();
    NoteSigner::new(
        KeyName::new(name).expect("name"),
        SigningKey::from_bytes(&seed),
    )
}

/// `n` institution registrations (operator + the new key sign), from `first`.
fn registrations(operator: &NoteSigner, first: u64, n: u64) -> Vec<Envelope> {
    use rayon::prelude::*;
    (first..first + n)
        .into_par_iter()
        .map(|i| {
            let name = format!("inst-{i:07}");
            let key = key_for(&name);
            sign(
                &[operator, &key],
                &json!({"kind": "party_registered", "id": format!("reg-{name}"),
                        "party": name, "role": "institution", "key": key.vkey()}),
            )
        })
        .collect()
}

/// `n` pledges offered by the bench's donor (registered by [`add_balances`]): entries of
/// one signature, by a key the server has already seen.
fn pledges(n: u64) -> Vec<Envelope> {
    use rayon::prelude::*;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    let year = 365 * 86_400 * 1_000_000;
    (0..n)
        .into_par_iter()
        .map(|i| {
            let donor = donor(i / PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX);
            sign(
                &[&key_for(&donor)],
                &json!({"kind": "pledge_offered", "id": format!("offer-{i:07}"),
                        "pledge": format!("p-{i:07}"), "institution": donor,
                        "subject": "art", "grade_min": 1, "grade_max": 12, "seats": 2,
                        "lessons_per_seat": 10, "value_per_lesson_fen": 10_000,
                        "valid_from_micros": now - year, "valid_until_micros": now + year,
                        "online": true}),
            )
        })
        .collect()
}

/// Donor `k` (`inst-d0a0` first): each may have at most
/// `PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX` pledges awaiting approval, so the pledge
/// phase spreads its `n` pledges over as many donors as that takes.
fn donor(k: u64) -> String {
    format!("inst-d0a{k}")
}

fn student(i: u64) -> String {
    format!("stu-{i:06}")
}

fn claim(i: u64) -> String {
    format!("c-{i:07}")
}

/// What the balance reads read: `students` students of a closed institution, each with
/// two claims (`claim(2s)`, `claim(2s+1)`), and an allocation from one donor's approved
/// pledge on each claim — a claim's balance derives from two entries, a student's
/// from four, as after a first round of matching.
fn add_balances(ledger: &mut Ledger, operator: &NoteSigner, students: u64, donors: u64) {
    use rayon::prelude::*;
    let (closed, donor) = (key_for("inst-c105ed"), key_for("inst-d0a0"));
    let mut head = Vec::new();
    let parties =
        std::iter::once(closed).chain((0..donors.max(1)).map(|k| key_for(&self::donor(k))));
    for key in parties {
        let party = key.name().as_str().to_owned();
        head.push(sign(
            &[operator, &key],
            &json!({"kind": "party_registered", "id": format!("reg-{party}"), "party": party,
                    "role": "institution", "key": key.vkey()}),
        ));
    }
    head.push(sign(
        &[operator],
        &json!({"kind": "institution_closed", "id": "close-bench", "institution": "inst-c105ed",
                "reason": "abnormal_closure"}),
    ));
    head.push(sign(
        &[operator],
        &json!({"kind": "institution_whitelisted", "id": "wl-bench", "institution": "inst-d0a0",
                "reason": "approved_donor"}),
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    let year = 365 * 86_400 * 1_000_000;
    head.push(sign(
        &[&donor],
        &json!({"kind": "pledge_offered", "id": "offer-bench", "pledge": "p-bench",
                "institution": "inst-d0a0", "subject": "math", "grade_min": 1, "grade_max": 12,
                "seats": 10_000, "lessons_per_seat": 30, "value_per_lesson_fen": 12_000,
                "valid_from_micros": now - year, "valid_until_micros": now + year, "online": true}),
    ));
    head.push(sign(
        &[operator],
        &json!({"kind": "pledge_approved", "id": "approve-bench", "pledge": "p-bench"}),
    ));
    append_all(ledger, &head);
    let per_student: Vec<Vec<Envelope>> = (0..students)
        .into_par_iter()
        .map(|s| {
            let name = student(s);
            let key = key_for(&name);
            let mut out = vec![sign(
                &[operator, &key],
                &json!({"kind": "party_registered", "id": format!("reg-{name}"), "party": name,
                        "role": "student", "key": key.vkey()}),
            )];
            for c in [2 * s, 2 * s + 1] {
                out.push(sign(
                    &[operator, &key],
                    &json!({"kind": "claim_recorded", "id": format!("rec-{}", claim(c)),
                            "claim": claim(c), "student": name, "institution": "inst-c105ed",
                            "lessons": 20, "price_per_lesson_fen": 15_000, "subject": "math",
                            "grade": 5, "district": "xuhui",
                            "evidence_digest": blake3::hash(claim(c).as_bytes()).to_hex().to_string(),
                            "accepts_online": true, "accepted_districts": []}),
                ));
            }
            out
        })
        .collect();
    append_all(ledger, &per_student.concat());
    let allocations: Vec<Envelope> = (0..2 * students)
        .into_par_iter()
        .map(|c| {
            sign(
                &[operator],
                &json!({"kind": "allocation_made", "id": format!("alloc-{}", claim(c)),
                        "allocation": format!("a-{c:07}"), "claim": claim(c),
                        "pledge": "p-bench", "lessons": 2}),
            )
        })
        .collect();
    append_all(ledger, &allocations);
}

/// The library's append of `n` registrations in batches of `batch`: entries/s, and
/// microseconds an entry in `Ledger::submit` alone (the writer's share).
fn library_append_rate(n: u64, batch: usize, overlapped: bool) -> (f64, f64) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut ledger, operator) = new_ledger(tmp.path());
    let envelopes = registrations(&operator, 1, n);
    let start = Instant::now();
    let submitting = if overlapped {
        append_overlapped(&mut ledger, &envelopes, batch)
    } else {
        append_in(&mut ledger, &envelopes, batch)
    };
    (
        n as f64 / start.elapsed().as_secs_f64(),
        1e6 * submitting.as_secs_f64() / n as f64,
    )
}

/// A cheap deterministic sequence (an LCG), distinct per worker.
fn next_random(i: u64) -> u64 {
    i.wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
}

/// A library rate: operations per second on every core, and CPU microseconds per operation.
#[derive(Clone, Copy)]
struct LibraryRate {
    per_sec: f64,
    cpu_micros: f64,
}

/// Runs `op(i)` on every core for `secs`, as the server would.
fn library_reads(ledger: &Ledger, secs: u64, op: impl Fn(&Ledger, u64) + Sync) -> LibraryRate {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let cpu = cpu_now();
    let start = Instant::now();
    let done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for c in 0..cores as u64 {
            let (op, done) = (&op, &done);
            scope.spawn(move || {
                let (mut i, mut count) = (next_random(c + 1), 0);
                while Instant::now() < deadline {
                    op(ledger, i >> 11);
                    i = next_random(i);
                    count += 1;
                }
                done.fetch_add(count, Ordering::Relaxed);
            });
        }
    });
    let ops = done.load(Ordering::Relaxed) as f64;
    LibraryRate {
        per_sec: ops / start.elapsed().as_secs_f64(),
        // Nothing else runs in the process meanwhile (the server is not started yet).
        cpu_micros: 1e6 * (cpu_now().process - cpu.process) / ops,
    }
}

/// The library's read rates on `ledger`: inclusion proofs, claim and student balances.
fn library_read_rates(ledger: &Ledger, secs: u64, students: u64) -> [LibraryRate; 3] {
    let claims = 2 * students;
    let lib_proofs = library_reads(ledger, secs, |l, i| {
        let log = l.log();
        let index = i % log.size();
        let proof = log.inclusion_proof(index, log.size()).expect("proof");
        std::hint::black_box((log.leaf_hash_at(index).expect("leaf"), proof));
    });
    let lib_claims = library_reads(ledger, secs, |l, i| {
        std::hint::black_box(claim_answer(l, &claim(i % claims)));
    });
    let lib_students = library_reads(ledger, secs, |l, i| {
        std::hint::black_box(student_answer(l, &student(i % students)));
    });
    [lib_proofs, lib_claims, lib_students]
}

/// The sizes a family's client downloads: a student's answer over HTTP (its objects with
/// their state proofs, the state note, the checkpoint, its proven entries), and the
/// state proofs in it, in JSON and in their binary form (`StateProof::byte_len`).
async fn print_answer_sizes(addr: std::net::SocketAddr, ledger_proofs: &[StateProof]) {
    let mut conn = Conn::connect(addr).await;
    let request = format!(
        "GET /v1/students/{} HTTP/1.1\r\nHost: bench\r\n\r\n",
        student(0)
    );
    let (status, body) = conn.exchange(request.as_bytes()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    let answer: serde_json::Value = serde_json::from_slice(body).expect("a JSON answer");
    let proof_json = serde_json::to_vec(&answer["student"]["proof"]).expect("JSON");
    let entries = answer["entries"].as_array().map_or(0, Vec::len);
    let binary: Vec<usize> = ledger_proofs.iter().map(StateProof::byte_len).collect();
    println!(
        "{:<44} {} bytes ({} state proofs, {entries} proven entries); one state proof {} bytes \
         of JSON, {:?} bytes binary (target <= 1,500 at 10 M objects)",
        "GET /v1/students/{ref}: answer size",
        body.len(),
        binary.len(),
        proof_json.len(),
        binary
    );
}

// ---- CPU accounting -------------------------------------------------------------

/// CPU seconds of the whole process and of the load generator's threads.
#[derive(Clone, Copy)]
struct Cpu {
    process: f64,
    client: f64,
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// (thread name, utime + stime in ticks) from a `/proc/.../stat` line.
fn stat_ticks(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    // After the name: field 3 (state) onwards; utime and stime are fields 14 and 15.
    let mut rest = stat[close + 1..].split_whitespace().skip(11);
    let utime: u64 = rest.next()?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some((comm, utime + stime))
}

fn cpu_now() -> Cpu {
    let process = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| stat_ticks(&s).map(|(_, t)| t))
        .unwrap_or(0);
    let mut client = 0;
    // The client's threads live as long as its runtime, so summing the live threads
    // misses none of them (the server's blocking threads may have exited: the process
    // total above still counts them).
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) {
                if let Some((comm, ticks)) = stat_ticks(&stat) {
                    if comm.starts_with(CLIENT_THREAD) {
                        client += ticks;
                    }
                }
            }
        }
    }
    Cpu {
        process: process as f64 / TICKS_PER_SEC,
        client: client as f64 / TICKS_PER_SEC,
    }
}

/// CPU seconds each side used during a phase.
#[derive(Clone, Copy)]
struct Used {
    client: f64,
    server: f64,
}

fn used(before: Cpu, after: Cpu) -> Used {
    let client = after.client - before.client;
    Used {
        client,
        server: after.process - before.process - client,
    }
}

// ---- A minimal HTTP/1.1 keep-alive client ---------------------------------------

/// One keep-alive connection. Requests are written whole; a response is read up to its
/// `Content-Length` (the server always sends one for these routes).
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(addr: std::net::SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Sends `request` and reads the response; returns its status and body.
    async fn exchange(&mut self, request: &[u8]) -> (u16, &[u8]) {
        let mut written = 0;
        while written < request.len() {
            // Readiness plus `try_write`: the crate's tokio has no `io-util` feature.
            self.stream.writable().await.expect("writable");
            match self.stream.try_write(&request[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        self.buf.clear();
        let (head_end, body_len) = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break (end + 4, content_length(&self.buf[..end]));
            }
            self.read_more().await;
        };
        while self.buf.len() < head_end + body_len {
            self.read_more().await;
        }
        let status = std::str::from_utf8(self.buf.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("status line");
        (status, &self.buf[head_end..head_end + body_len])
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            self.stream.readable().await.expect("readable");
            match self.stream.try_read(&mut chunk) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> usize {
    let head = std::str::from_utf8(head).expect("ASCII head");
    head.split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"))
}

fn post_request(body: &str) -> Vec<u8> {
    format!(
        "POST /v1/entries HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The result of one HTTP phase.
struct Phase {
    requests: u64,
    wall: Duration,
    latencies: Vec<Duration>,
    used: Used,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    /// Server CPU microseconds per request.
    fn server_micros(&self) -> f64 {
        1e6 * self.used.server / self.requests as f64
    }

    /// What each side used, per second and per request, and the rate both would reach
    /// alone on this machine's cores at that cost: on a shared machine the measured rate
    /// is mostly the share of the cores the scheduler gave us, the cost per request is
    /// not.
    fn cpu_text(&self) -> String {
        let wall = self.wall.as_secs_f64();
        let n = self.requests as f64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let per_request = (self.used.client + self.used.server) / n;
        format!(
            "cpu: client {:.0}%, server {:.0}% of a core; {:.1} µs server + {:.1} µs client a \
             request = {:.0}/s on {cores} idle cores",
            100.0 * self.used.client / wall,
            100.0 * self.used.server / wall,
            self.server_micros(),
            1e6 * self.used.client / n,
            cores / per_request
        )
    }
}

/// Waits for a phase's connections; each returns its requests' latencies.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>,
    cpu: Cpu,
    start: Instant,
) -> Phase {
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    let wall = start.elapsed();
    latencies.sort_unstable();
    Phase {
        requests: latencies.len() as u64,
        wall,
        latencies,
        used: used(cpu, cpu_now()),
    }
}

/// POSTs `requests` over `connections` keep-alive connections; every answer must be 200.
async fn post_all(addr: std::net::SocketAddr, requests: Vec<Vec<u8>>, connections: usize) -> Phase {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::new();
    for _ in 0..connections {
        conns.push(Conn::connect(addr).await);
    }
    let cpu = cpu_now();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(request) = requests.get(i) else {
                    break;
                };
                let t = Instant::now();
                let (status, body) = conn.exchange(request).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    finish(tasks, cpu, start).await
}

/// GETs `path(i)` for pseudo-random `i` over 64 connections for `secs`.
async fn get_for(
    addr: std::net::SocketAddr,
    secs: u64,
    path: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Phase {
    let path = Arc::new(path);
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(Conn::connect(addr).await);
    }
    let cpu = cpu_now();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut conn) in conns.into_iter().enumerate() {
        let path = Arc::clone(&path);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = next_random(c as u64 + 1);
            let mut request = Vec::new();
            while Instant::now() < deadline {
                request.clear();
                request.extend_from_slice(b"GET ");
                request.extend_from_slice(path(i >> 11).as_bytes());
                request.extend_from_slice(b" HTTP/1.1\r\nHost: bench\r\n\r\n");
                let t = Instant::now();
                let (status, body) = conn.exchange(&request).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
                latencies.push(t.elapsed());
                i = next_random(i);
            }
            latencies
        }));
    }
    finish(tasks, cpu, start).await
}

/// The writer's counters, from `/metrics`: (busy seconds, group commits, entries).
async fn writer_counters(addr: std::net::SocketAddr) -> (f64, f64, f64) {
    let mut conn = Conn::connect(addr).await;
    let (status, body) = conn
        .exchange(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(body);
    // A server without a counter (an older build) reads as zero.
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    (
        value("lesson_ledger_writer_busy_seconds_total"),
        value("lesson_ledger_batches_total"),
        value("lesson_ledger_appended_total"),
    )
}

/// The log's size, from `/metrics`.
async fn log_size(addr: std::net::SocketAddr) -> u64 {
    let mut conn = Conn::connect(addr).await;
    let (status, body) = conn
        .exchange(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await;
    assert_eq!(status, 200);
    String::from_utf8_lossy(body)
        .lines()
        .find_map(|l| l.strip_prefix("lesson_ledger_entries ")?.parse().ok())
        .expect("lesson_ledger_entries in /metrics")
}

/// "writer busy 97%, 61 entries a group commit" between two `writer_counters`.
fn writer_line(before: (f64, f64, f64), after: (f64, f64, f64), wall: Duration) -> String {
    let batches = (after.1 - before.1).max(1.0);
    format!(
        "writer busy {:.0}%, {:.0} entries a group commit",
        100.0 * (after.0 - before.0) / wall.as_secs_f64(),
        (after.2 - before.2) / batches
    )
}

/// Prints a GET phase: its rate against the target, and against `floor`, the rate of
/// `GET /checkpoint` measured in the same run — the cheapest answer the server gives, so
/// the most requests a second this machine serves over HTTP whatever the handler does.
fn print_get(label: &str, phase: &Phase, library: Option<LibraryRate>, floor: Option<f64>) {
    let rate = phase.rate();
    let floor = floor.map_or(String::new(), |f| {
        format!(
            " = {:.0}% of GET /checkpoint's {f:.0}/s (this machine's limit)",
            100.0 * rate / f
        )
    });
    let library = library.map_or(String::new(), |l| {
        format!(
            "; server CPU a request {:.2}x the library's ({:.1} µs)",
            phase.server_micros() / l.cpu_micros,
            l.cpu_micros
        )
    });
    println!(
        "{label:<44} {rate:>8.0} req/s = {:.2}x target{floor}; p50 {:.2?}, p99 {:.2?}; {}{library}",
        rate / GET_TARGET,
        percentile(&phase.latencies, 0.5),
        percentile(&phase.latencies, 0.99),
        phase.cpu_text()
    );
}

fn main() {
    let n = env_or("LEDGER_BENCH_HTTP_ENTRIES", 20_000);
    let secs = env_or("LEDGER_BENCH_HTTP_SECS", 5);
    let students = env_or("LEDGER_BENCH_HTTP_STUDENTS", 2_000).max(1);
    let client_threads = env_or("LEDGER_BENCH_HTTP_CLIENT_THREADS", 1).max(1) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "http_load benchmark on {cores} cores; {n} entries per POST phase, {secs} s per read \
         phase, {students} students; the load generator ({client_threads} thread) shares the machine"
    );

    // The machine's own limit: every POSTed entry here is a registration carrying three
    // signatures (the operator's, the registered key's, the association's), each checked
    // strictly.
    let raw = measure::raw_verify_rate();
    let signature_ceiling = raw / SIGNATURES_AN_ENTRY as f64;
    println!(
        "{:<48} {raw:>8.0} sig/s = at most {signature_ceiling:.0} entries/s of {SIGNATURES_AN_ENTRY} \
         signatures, doing nothing else (the machine's limit)",
        "raw verify_strict, all cores"
    );

    let mut reference = f64::NAN;
    let library = if wanted("library") {
        // The reference: verification overlapped with the writer, as in the server.
        // Then one after the other, and in batches of 32, about what 64 connections of
        // single POSTs make: the writer's cost an entry at that size bounds that rate.
        for (batch, overlapped) in [(1024, true), (1024, false), (32, false)] {
            let (rate, submit_micros) = library_append_rate(n, batch, overlapped);
            let how = if overlapped {
                "verify || submit"
            } else {
                "verify, then submit"
            };
            println!(
                "{:<48} {rate:>8.0} entries/s = {:.0}% of the limit; Ledger::submit alone \
                 {submit_micros:.0} µs an entry (at most {:.0}/s){}",
                format!("library: {how}, {batch} a batch"),
                100.0 * rate / signature_ceiling,
                1e6 / submit_micros,
                if overlapped { " (the reference)" } else { "" }
            );
            if overlapped {
                reference = rate;
            }
        }
        reference
    } else {
        f64::NAN
    };

    let tmp = tempfile::tempdir().expect("tmp");
    let (mut ledger, operator) = new_ledger(tmp.path());
    add_balances(
        &mut ledger,
        &operator,
        students,
        n.div_ceil(PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX),
    );
    let claims = 2 * students;
    let size = ledger.log().size();
    let student_proofs = student_answer(&ledger, &student(0));
    let libraries = wanted("library").then(|| library_read_rates(&ledger, secs, students));
    if let Some(rates) = &libraries {
        for (what, rate) in ["inclusion proof", "claim balance", "student balance"]
            .iter()
            .zip(rates)
        {
            println!(
                "{:<44} {:>8.0} /s, {:.1} µs CPU each ({size} entries)",
                format!("library, all cores: {what}"),
                rate.per_sec,
                rate.cpu_micros
            );
        }
    }
    let library_of = |i: usize| libraries.map(|r| r[i]);

    let single = registrations(&operator, 1, n);
    assert!(
        single
            .iter()
            .all(|e| e.signatures().len() == SIGNATURES_AN_ENTRY),
        "the limit above is for entries of {SIGNATURES_AN_ENTRY} signatures"
    );
    let single: Vec<Vec<u8>> = single.iter().map(|e| post_request(&e.to_json())).collect();
    let single_signed: Vec<Vec<u8>> = pledges(n)
        .iter()
        .map(|e| post_request(&e.to_json()))
        .collect();
    let batched: Vec<Vec<u8>> = registrations(&operator, n + 1, n)
        .chunks(256)
        .map(|c| {
            let parts: Vec<String> = c.iter().map(Envelope::to_json).collect();
            post_request(&format!("{{\"entries\":[{}]}}", parts.join(",")))
        })
        .collect();
    // `LEDGER_BENCH_HTTP_ANSWER_CACHE=0`: every balance answer made anew, as before the
    // answer cache (the figure it is compared with).
    let answer_cache = env_or("LEDGER_BENCH_HTTP_ANSWER_CACHE", 1) != 0;
    let config = ServerConfig {
        answer_cache_bytes_max: if answer_cache {
            ServerConfig::default().answer_cache_bytes_max
        } else {
            0
        },
        ..ServerConfig::default()
    };
    println!(
        "balance answers {}",
        if answer_cache {
            "kept between batches (the answer cache)"
        } else {
            "made anew on every request (LEDGER_BENCH_HTTP_ANSWER_CACHE=0)"
        }
    );
    let server =
        Server::start(ledger, "127.0.0.1:0".parse().expect("addr"), config).expect("server");
    let addr = server.addr();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("runtime");

    // Single-entry POSTs over 64 connections: `versus` says what the rate is set against.
    let single_phase = |label: &str, requests: Vec<Vec<u8>>, versus: &dyn Fn(f64) -> String| {
        let before = rt.block_on(writer_counters(addr));
        let phase = rt.block_on(post_all(addr, requests, CONNECTIONS));
        let writer = writer_line(before, rt.block_on(writer_counters(addr)), phase.wall);
        println!(
            "{label:<48} {:>8.0} entries/s = {}; {:.2}x target; p50 {:.2?}, p99 {:.2?} \
             (target >= 20000/s, p99 < 25 ms); {}; {writer}",
            phase.rate(),
            versus(phase.rate()),
            phase.rate() / 20_000.0,
            percentile(&phase.latencies, 0.5),
            percentile(&phase.latencies, 0.99),
            phase.cpu_text()
        );
    };
    if wanted("single") {
        single_phase(
            "single-entry POSTs, 64 keep-alive connections",
            single,
            &|rate| {
                format!(
                    "{:.0}% of library, {:.0}% of the signature limit",
                    100.0 * rate / library,
                    100.0 * rate / signature_ceiling
                )
            },
        );
    }
    if wanted("single1") {
        // Entries of one signature by a known key: half the verification of the above.
        single_phase(
            "single-entry POSTs, one signature (pledges)",
            single_signed,
            &|rate| {
                format!(
                    "{:.0}% of the signature limit ({raw:.0}/s for one signature)",
                    100.0 * rate / raw
                )
            },
        );
    }

    if wanted("batched") {
        let before = rt.block_on(writer_counters(addr));
        let phase = rt.block_on(post_all(addr, batched, 8));
        let rate = n as f64 / phase.wall.as_secs_f64();
        let writer = writer_line(before, rt.block_on(writer_counters(addr)), phase.wall);
        // The library again, right after (the server is idle now): the reference is the
        // mean of the runs either side of the phase, so a drift in what else the shared
        // machine runs weighs on both figures alike.
        let library = if library.is_nan() {
            library
        } else {
            let (after, _) = library_append_rate(n, 1024, true);
            println!(
                "{:<48} {after:>8.0} entries/s (before the POST phases: {library:.0}/s)",
                "library again, after the batched POSTs"
            );
            (library + after) / 2.0
        };
        println!(
            "{:<48} {:>8.0} entries/s = {:.0}% of library (mean of both runs; target >= 80%); \
         p99 {:.2?} a request; cpu: client {:.0}%, server {:.0}% of a core, {:.1} µs server an \
         entry; {writer}",
            "batched POSTs (256 a request), 8 connections",
            rate,
            100.0 * rate / library,
            percentile(&phase.latencies, 0.99),
            100.0 * phase.used.client / phase.wall.as_secs_f64(),
            100.0 * phase.used.server / phase.wall.as_secs_f64(),
            1e6 * phase.used.server / n as f64
        );
    }

    // Entries the POST phases added (all of them, or none when skipped).
    let size = rt.block_on(log_size(addr));
    rt.block_on(print_answer_sizes(addr, &student_proofs));
    type PathOf = Box<dyn Fn(u64) -> String + Send + Sync>;
    let reads: [(&str, &str, PathOf, Option<usize>); 5] = [
        (
            "checkpoint",
            "GET /checkpoint",
            Box::new(|_| "/checkpoint".to_owned()),
            None,
        ),
        (
            "proofs",
            "GET /v1/proofs/inclusion",
            Box::new(move |i| format!("/v1/proofs/inclusion?index={}", i % size)),
            Some(0),
        ),
        (
            "claims",
            "GET /v1/claims/{id} (2 entries, 2 objects)",
            Box::new(move |i| format!("/v1/claims/{}", claim(i % claims))),
            Some(1),
        ),
        (
            "students",
            "GET /v1/students/{ref} (4 entries, 5 objects)",
            Box::new(move |i| format!("/v1/students/{}", student(i % students))),
            Some(2),
        ),
        (
            "entries",
            "GET /v1/entries/{index}",
            Box::new(move |i| format!("/v1/entries/{}", i % size)),
            None,
        ),
    ];
    // `GET /checkpoint` first: every other read is set against its rate.
    let mut floor = None;
    for (name, label, path, library) in reads {
        if wanted(name) {
            let phase = rt.block_on(get_for(addr, secs, path));
            print_get(label, &phase, library.and_then(library_of), floor);
            if name == "checkpoint" {
                floor = Some(phase.rate());
            }
        }
    }
    drop(rt);
    server.shutdown().expect("shutdown");
}
