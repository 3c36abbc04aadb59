//! Ledger-rules benchmark: what the lesson rules cost on top of the log core, measured
//! on the same envelopes in the same run.
//!
//! Run: `cargo bench --bench ledger_rules` (`LEDGER_BENCH_ENTRIES`, default 1,000,000).
//! The workload (`benches/support/workload.rs`) is the common path of the mechanism:
//! parties, closures, pledges, claims (double-signed), allocations, lessons co-signed or
//! proposed and confirmed — every entry one the rules accept. It is appended into fresh
//! stores, verifying signatures on the rayon pool while one writer thread appends (as
//! the server does):
//! - the log core alone (every signature verified, no rules), entries/s;
//! - the ledger (the same, plus the rules, the state, its state map and a signed state
//!   note per batch), entries/s — target: rules + state map add at most 40% CPU;
//! - `verify` of the ledger's log alone vs with the replay of every entry under the
//!   rules, recomputing the state map root at every state note — target: within 1.6x
//!   of the log core's verify time;
//! - the state map at `LEDGER_BENCH_MAP_OBJECTS` random keys (default 10,000,000), its
//!   nodes on the heap and in files side by side: build, resident memory (anon / file),
//!   a batch update, proofs cold and warm, proof size (target <= 1.5 KB), disk,
//!   extrapolated to the city demo's ~11 M objects.
//!   `LEDGER_BENCH_MAP_ONLY=1` runs this part alone.
//!
//! `LEDGER_BENCH_FOOTPRINT=<dir>` does none of that: it appends the workload through the
//! rules into a ledger made at `<dir>` (kept) and prints its entries and objects per
//! table, for `scripts/footprint.sh` to open `serve` on and read its resident memory.
//!
//! Besides wall time it prints CPU time (process, and the writer thread alone): on a
//! shared 2-core machine wall time follows the neighbours, CPU time follows the code.

// The allocator of the `lesson-ledger` binary (src/main.rs), so figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/measure.rs"]
mod measure;
#[path = "support/workload.rs"]
mod workload;

use std::time::{Duration, Instant};

use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::ledger::Table;
use lesson_ledger::log::audit::{audit, audit_with, AuditOptions};
use lesson_ledger::log::envelope::{verify_batch, Envelope, KeyCache, VerifiedEnvelope};
use lesson_ledger::log::keyfile::read_private_pem;
use lesson_ledger::log::note::{KeyName, NoteSigner};
use lesson_ledger::log::store::{AdmitAll, EntryIdOnly, Log, Outcome};
use lesson_ledger::runs::replay::Replayer;
use measure::{peak_rss_kib, process_cpu, thread_cpu};

const BATCH: usize = 2048;
const ORIGIN: &str = "bench.example/ledger";

/// A phase's cost: wall time, process CPU time, the writer thread's CPU time.
#[derive(Default, Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
    writer_cpu: Duration,
}

/// Runs `f`, measuring wall and process CPU time.
fn measured<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    let (t, c) = (Instant::now(), process_cpu());
    let out = f();
    let cost = Cost {
        wall: t.elapsed(),
        cpu: process_cpu().saturating_sub(c),
        writer_cpu: Duration::ZERO,
    };
    (out, cost)
}

fn main() {
    let entries: u64 = std::env::var("LEDGER_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if std::env::var("LEDGER_BENCH_MAP_ONLY").is_ok() {
        map_figures();
        return;
    }
    if let Some(dir) = std::env::var_os("LEDGER_BENCH_FOOTPRINT") {
        footprint_ledger(std::path::Path::new(&dir), entries);
        return;
    }
    // The ledger is made first: its genesis must name the key that signs its checkpoints
    // and state notes (the one `Ledger::create` wrote), or `verify` refuses the notes.
    let tmp = tempfile::TempDir::new().expect("temp dir");
    let ledger_dir = tmp.path().join("ledger");
    let mut ledger = Ledger::create(&ledger_dir, ORIGIN, "operator").expect("create");
    let operator = NoteSigner::new(
        KeyName::new("operator").expect("name"),
        read_private_pem(&ledger_dir.join("operator.key")).expect("the ledger's operator key"),
    );
    let (envelopes, made) = measured(|| workload::workload(entries, ORIGIN, &operator));
    let n = envelopes.len() as u64;
    let signatures: usize = envelopes.iter().map(|e| e.signatures().len()).sum();
    let per_entry_sigs = signatures as f64 / n as f64;
    println!(
        "\nledger_rules benchmark: {n} entries, {per_entry_sigs:.2} signatures an entry (generated and signed in {:.1} s), batches of {BATCH}",
        made.wall.as_secs_f64()
    );
    // The machine's own limit, in this run: every figure below is only worth its ratio
    // to it on a shared machine.
    let raw = measure::raw_verify_rate();
    println!(
        "{:<46} {raw:>9.0} sig/s = at most {:.0} entries/s of this workload",
        "the limit: raw verify_strict, all cores",
        raw / per_entry_sigs
    );
    let core_dir = tmp.path().join("core");
    let mut log =
        Log::create(&core_dir, ORIGIN, "operator", Box::new(EntryIdOnly)).expect("create");
    let ((core_refused, core_writer), mut core) = measured(|| {
        pipeline(envelopes.clone(), |batch| {
            log.append(batch, &mut AdmitAll)
                .expect("append")
                .iter()
                .filter(|o| !matches!(o, Outcome::Ok(_)))
                .count()
        })
    });
    core.writer_cpu = core_writer;
    log.close().expect("close");

    let ((refused, rules_writer), mut rules) = measured(|| submit_all(&mut ledger, envelopes));
    rules.writer_cpu = rules_writer;
    let (objects, map_bytes) = (
        ledger.state().len(),
        ledger.state().map_heap_bytes() + ledger.state().map_file_bytes(),
    );
    ledger.close().expect("close");
    assert_eq!(
        core_refused + refused,
        0,
        "the workload is accepted in full"
    );

    let per_entry = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let added = |a: Duration, b: Duration| 100.0 * (b.as_secs_f64() / a.as_secs_f64() - 1.0);
    for (what, c) in [
        ("append, log core (verify + group commit)", core),
        ("append, ledger (+ rules, state map, notes)", rules),
    ] {
        let rate = n as f64 / c.wall.as_secs_f64();
        println!(
            "{what:<46} {rate:>9.0} entries/s = {:.0}% of the limit; CPU {:>5.1} µs/entry, writer thread {:>5.1} µs/entry",
            100.0 * rate * per_entry_sigs / raw,
            per_entry(c.cpu),
            per_entry(c.writer_cpu)
        );
    }
    println!(
        "{:<46} +{:.0}% wall time, +{:.0}% CPU time (target <= +40% CPU)",
        "rules + state map added",
        added(core.wall, rules.wall),
        added(core.cpu, rules.cpu)
    );

    let (summary, verify) = measured(|| {
        audit(&ledger_dir, &AuditOptions::default(), &|_, _| {}).expect("log verifies")
    });
    let (_, replay) = measured(|| {
        let mut replayer = Replayer::new();
        audit_with(
            &ledger_dir,
            &AuditOptions::default(),
            &|_, _| {},
            &mut replayer,
        )
        .expect("ledger verifies");
    });
    println!(
        "{:<46} {:>9.2} s for {} entries = {:.0}% of the limit (CPU {:.2} s)",
        "verify, log core",
        verify.wall.as_secs_f64(),
        summary.entries,
        100.0 * signatures as f64 / verify.wall.as_secs_f64() / raw,
        verify.cpu.as_secs_f64()
    );
    println!(
        "{:<46} {:>9.2} s = {:.2}x the log core's verify wall time, {:.2}x its CPU (target <= 1.6x)",
        "verify + replay, root at every state note",
        replay.wall.as_secs_f64(),
        replay.wall.as_secs_f64() / verify.wall.as_secs_f64(),
        replay.cpu.as_secs_f64() / verify.cpu.as_secs_f64()
    );
    println!(
        "{:<46} {objects} objects, {:.1} MiB of nodes, heap and node files ({:.0} bytes an object, the files' growth slack included); sled: the 32-byte root in the state's head",
        "state map of the ledger",
        map_bytes as f64 / 1048576.0,
        map_bytes as f64 / objects.max(1) as f64
    );
    println!(
        "{:<46} {:>9.1} MiB",
        "peak RSS",
        peak_rss_kib() as f64 / 1024.0
    );
    map_figures();
}

/// Appends the workload through the rules into a ledger made at `dir`, kept for
/// `scripts/footprint.sh`; prints the entries and the objects of each table.
fn footprint_ledger(dir: &std::path::Path, entries: u64) {
    let mut ledger = Ledger::create(dir, ORIGIN, "operator").expect("create");
    let operator = NoteSigner::new(
        KeyName::new("operator").expect("name"),
        read_private_pem(&dir.join("operator.key")).expect("the ledger's operator key"),
    );
    let envelopes = workload::workload(entries, ORIGIN, &operator);
    let n = envelopes.len();
    let ((refused, _), cost) = measured(|| submit_all(&mut ledger, envelopes));
    assert_eq!(refused, 0, "the workload is accepted in full");
    let state = ledger.state();
    let tables: Vec<String> = Table::ALL
        .iter()
        .map(|t| format!("{} {}", t.name(), state.scan(*t).count()))
        .collect();
    println!(
        "footprint ledger: {n} entries, {} objects ({}), appended in {:.1} s",
        state.len(),
        tables.join(", "),
        cost.wall.as_secs_f64()
    );
    ledger.close().expect("close");
}

/// The state map alone at `LEDGER_BENCH_MAP_OBJECTS` random keys, its nodes on the heap
/// and in files side by side (one after the other, in this process): build, resident
/// memory (anon / file) after the build and after the pages are released, a batch
/// update, proofs cold and warm, proof sizes, disk; extrapolated to the city demo's
/// ~11 M objects.
fn map_figures() {
    let n: u64 = std::env::var("LEDGER_BENCH_MAP_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    println!(
        "\nstate map, {n} random keys; RSS as anon / file MiB (/proc/self/status), deltas over the phase's start"
    );
    let tmp = tempfile::TempDir::new().expect("temp dir");
    // The file first: the heap phase's memory, once freed, is not all given back at
    // once, and would blur the file phase's anon figure.
    let file = map_arena(n, Some(tmp.path()));
    let heap = map_arena(n, None);
    assert_eq!(heap.root, file.root, "the same map in both arenas");
    println!(
        "root {} in both",
        lesson_ledger::ledger::units::hex(&heap.root)
    );
    let mib = |kib: i64| kib as f64 / 1024.0;
    for (what, m) in [("heap", &heap), ("file", &file)] {
        println!(
            "{what}: build {:.1} s (CPU {:.1} s); RSS after build +{:.0} / +{:.0}, after release +{:.0} / +{:.0}, after the batches and proofs +{:.0} / +{:.0}",
            m.build.wall.as_secs_f64(),
            m.build.cpu.as_secs_f64(),
            mib(m.rss_built.0),
            mib(m.rss_built.1),
            mib(m.rss_released.0),
            mib(m.rss_released.1),
            mib(m.rss_end.0),
            mib(m.rss_end.1),
        );
        println!(
            "{what}: a batch of 12,000 changed objects: first {:.1} ms (CPU {:.1} ms), then {:.1} ms (CPU {:.1} ms) = {:.2} µs CPU an object; the first dirtied {} KiB of node file pages (to write back)",
            m.batch_first.wall.as_secs_f64() * 1e3,
            m.batch_first.cpu.as_secs_f64() * 1e3,
            m.batch_warm.wall.as_secs_f64() * 1e3,
            m.batch_warm.cpu.as_secs_f64() * 1e3,
            m.batch_warm.cpu.as_secs_f64() * 1e6 / 12_000.0,
            m.dirty_kib
        );
        println!(
            "{what}: a proof cold (pages released) {:.1} µs, warm {:.1} µs (medians of {PROOF_SAMPLES}); nodes {:.0} MiB heap + {:.0} MiB file = {:.0} bytes an object, ~{:.2} GiB at 11 M",
            m.proof_cold_us,
            m.proof_warm_us,
            m.heap_bytes as f64 / 1048576.0,
            m.file_bytes as f64 / 1048576.0,
            (m.heap_bytes + m.file_bytes) as f64 / n as f64,
            (m.heap_bytes + m.file_bytes) as f64 / n as f64 * 11e6 / 1073741824.0
        );
    }
    println!(
        "{:<46} mean {:.0} bytes, max {} bytes; JSON form mean {:.0}, max {} bytes (target <= 1,500)",
        "proof (key, siblings, leaf)",
        file.proof_bytes.0,
        file.proof_bytes.1,
        file.proof_bytes.2,
        file.proof_bytes.3
    );
}

/// Proofs sampled for their time and size.
const PROOF_SAMPLES: u64 = 1000;

/// What [`map_arena`] measured.
struct MapRun {
    root: [u8; 32],
    build: Cost,
    /// RSS (anon, file) in KiB over the start, after each phase.
    rss_built: (i64, i64),
    rss_released: (i64, i64),
    rss_end: (i64, i64),
    batch_first: Cost,
    batch_warm: Cost,
    /// Pages of the node files the first batch dirtied.
    dirty_kib: u64,
    proof_cold_us: f64,
    proof_warm_us: f64,
    heap_bytes: usize,
    file_bytes: usize,
    /// Binary mean and max, JSON mean and max.
    proof_bytes: (f64, usize, f64, usize),
}

/// Builds the map of `n` random keys, its nodes on the heap or in files of `dir`, and
/// measures it.
fn map_arena(n: u64, dir: Option<&std::path::Path>) -> MapRun {
    use lesson_ledger::ledger::state_map::proof::value_hash;
    use lesson_ledger::ledger::state_map::MapTree;
    let key = |i: u64| *blake3::hash(&i.to_le_bytes()).as_bytes();
    let start = measure::rss_kib();
    let over = |now: (u64, u64)| (now.0 as i64 - start.0 as i64, now.1 as i64 - start.1 as i64);
    let mut tree = match dir {
        Some(dir) => MapTree::in_dir(dir).expect("node files"),
        None => MapTree::new(),
    };
    // At once, as an open rebuilds it (subtrees laid out depth first).
    let (_, build) = measured(|| {
        let all = (0..n)
            .map(|i| (key(i), Some(value_hash(&i.to_be_bytes()))))
            .collect();
        tree.update(all).expect("built");
    });
    let rss_built = over(measure::rss_kib());
    // Clean (written back), then out of the resident set: what the first batch dirties
    // is then its own.
    tree.flush().expect("written back");
    tree.release().expect("released");
    let rss_released = over(measure::rss_kib());
    let proof_cold_us = proof_median_us(&tree, n, 0);
    // A batch as the writer makes it: 12,000 objects (2,048 entries of ~6 objects).
    let batch = |round: u64| -> Vec<_> {
        (0..12_000u64)
            .map(|i| {
                let k = key((i * 7919 + round * 104_729) % n);
                (k, Some(value_hash(&(i + round * n).to_be_bytes())))
            })
            .collect()
    };
    let (_, batch_first) = measured_thread(|| tree.update(batch(1)).expect("update"));
    // The pages were released (clean in the page tables) before this batch.
    let dirty_kib = measure::mapped_dirty_kib("state-map.");
    let (_, batch_warm) = measured_thread(|| tree.update(batch(1)).expect("update"));
    let proof_warm_us = proof_median_us(&tree, n, 0);
    let (mut max, mut total, mut json_max, mut json_total) = (0, 0, 0, 0);
    for s in 0..PROOF_SAMPLES {
        let p = tree.prove(&key(s * (n / PROOF_SAMPLES).max(1) + 1));
        max = max.max(p.byte_len());
        total += p.byte_len();
        let json = serde_json::to_vec(&p).map_or(0, |j| j.len());
        json_max = json_max.max(json);
        json_total += json;
    }
    let samples = PROOF_SAMPLES as f64;
    MapRun {
        root: tree.root(),
        build,
        rss_built,
        rss_released,
        rss_end: over(measure::rss_kib()),
        batch_first,
        batch_warm,
        dirty_kib,
        proof_cold_us,
        proof_warm_us,
        heap_bytes: tree.heap_bytes(),
        file_bytes: tree.file_bytes(),
        proof_bytes: (
            total as f64 / samples,
            max,
            json_total as f64 / samples,
            json_max,
        ),
    }
}

/// Median time of one proof over [`PROOF_SAMPLES`] keys spread over the map.
fn proof_median_us(tree: &lesson_ledger::ledger::state_map::MapTree, n: u64, offset: u64) -> f64 {
    let key = |i: u64| *blake3::hash(&i.to_le_bytes()).as_bytes();
    let mut times: Vec<f64> = (0..PROOF_SAMPLES)
        .map(|s| {
            let k = key(s * (n / PROOF_SAMPLES).max(1) + offset);
            let t = Instant::now();
            std::hint::black_box(tree.prove(&k));
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Runs `f` on this thread, measuring wall time and this thread's CPU time.
fn measured_thread<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    let (t, c) = (Instant::now(), thread_cpu());
    let out = f();
    let cpu = thread_cpu().saturating_sub(c);
    (
        out,
        Cost {
            wall: t.elapsed(),
            cpu,
            writer_cpu: cpu,
        },
    )
}

/// Submits every envelope to the ledger through [`pipeline`]: how many it refused, and
/// the writer thread's CPU time.
fn submit_all(ledger: &mut Ledger, envelopes: Vec<Envelope>) -> (usize, Duration) {
    pipeline(envelopes, |batch| {
        ledger
            .submit(batch)
            .expect("submit")
            .iter()
            .filter(|o| !matches!(o, Outcome::Ok(_)))
            .count()
    })
}

/// Verifies batches on the rayon pool while a writer thread appends the previous one
/// (as a server does); returns how many entries `append` did not take, and the writer
/// thread's CPU time.
fn pipeline(
    envelopes: Vec<Envelope>,
    mut append: impl FnMut(Vec<VerifiedEnvelope>) -> usize + Send,
) -> (usize, Duration) {
    let keys = KeyCache::self_certifying();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<VerifiedEnvelope>>(2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let start = thread_cpu();
            let refused = rx.into_iter().map(&mut append).sum::<usize>();
            (refused, thread_cpu().saturating_sub(start))
        });
        for chunk in envelopes.chunks(BATCH) {
            let verified = verify_batch(chunk.to_vec(), &keys)
                .into_iter()
                .map(|v| v.expect("valid"))
                .collect();
            tx.send(verified).expect("writer alive");
        }
        drop(tx);
        writer.join().expect("writer thread")
    })
}
