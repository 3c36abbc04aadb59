//! Log-core benchmark: prints each figure next to this machine's own limit, measured in
//! the same run (raw strict Ed25519 verification on all cores).
//!
//! Run: `cargo bench --bench log_core` (about three minutes on two cores).
//! `LEDGER_BENCH_ENTRIES` sets the size of the large log (default 1,000,000).
//!
//! Figures: raw verify_strict rate; append throughput with group commit (entries/s and
//! signatures/s); inclusion proofs/s from the large log; `verify` over the large log;
//! reopen time of the large log; peak RSS while appending it (measured in a child
//! process that does nothing else, so the figure is the writer's own); disk: the derived
//! stores over `log.dat`, after the build and after 200 restarts without a clean close
//! (`LEDGER_BENCH_ONLY=disk` runs only that, on a 50,000-entry log).

// The allocator of the `lesson-ledger` binary (src/main.rs), so figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/measure.rs"]
mod measure;

use std::path::Path;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use lesson_ledger::log::audit::{audit, AuditOptions};
use lesson_ledger::log::envelope::{verify_batch, Envelope, KeyCache, VerifiedEnvelope};
use lesson_ledger::log::note::{KeyName, NoteSigner};
use lesson_ledger::log::store::{AdmitAll, EntryIdOnly, Log, Outcome};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

const CHILD_ENV: &str = "LEDGER_BENCH_CHILD_APPEND";
const BATCH: usize = 2048;

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_append(&spec);
        return;
    }
    let big: u64 = std::env::var("LEDGER_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("log_core benchmark on {cores} cores; large log = {big} entries");

    if std::env::var("LEDGER_BENCH_ONLY").as_deref() == Ok("writer") {
        writer_only(200_000);
        return;
    }
    if std::env::var("LEDGER_BENCH_ONLY").as_deref() == Ok("disk") {
        let tmp = tempfile::TempDir::new().expect("temp dir");
        let dir = tmp.path().join("disk");
        build_big_log_in_child(&dir, 50_000);
        disk_after_restarts(&dir, 200);
        return;
    }
    if std::env::var("LEDGER_BENCH_ONLY").as_deref() == Ok("append") {
        // For profiling the writer alone: `perf record` this.
        let (e, _) = append_rate(200_000);
        println!("append: {e:.0} entries/s");
        return;
    }
    let raw = median(3, measure::raw_verify_rate);
    println!(
        "{:<52} {:>12.0} sig/s   (the limit)",
        "raw verify_strict, all cores", raw
    );

    let (entries_per_s, sigs_per_s) = append_rate(200_000);
    println!(
        "{:<52} {:>12.0} entries/s {:>10.0} sig/s = {:>5.1}% of raw (target >= 70%)",
        "append, group commit 2048, 1 sig/entry",
        entries_per_s,
        sigs_per_s,
        100.0 * sigs_per_s / raw
    );

    let tmp = tempfile::TempDir::new().expect("temp dir");
    let dir = tmp.path().join("big");
    let (rss, build_time) = build_big_log_in_child(&dir, big);
    println!(
        "{:<52} {:>12.1} MiB   (target < 256 MiB; built in {:.1?})",
        format!("peak RSS appending {big} entries"),
        rss as f64 / 1024.0,
        build_time
    );

    let reopen = median_duration(5, || {
        let t = Instant::now();
        let (log, _) = Log::open(&dir, Box::new(EntryIdOnly)).expect("reopen");
        let d = t.elapsed();
        drop(log);
        d
    });
    println!(
        "{:<52} {:>12.3} s       (target < 1 s)",
        format!("reopen of {big}-entry log (median of 5)"),
        reopen.as_secs_f64()
    );

    disk_after_restarts(&dir, 200);

    let (log, _) = Log::open(&dir, Box::new(EntryIdOnly)).expect("open");
    let proofs = median(3, || proof_rate(&log, 200_000));
    println!(
        "{:<52} {:>12.0} proofs/s (target >= 100,000; one core)",
        format!("inclusion proofs from {big}-entry log"),
        proofs
    );
    drop(log);

    let t = Instant::now();
    let summary =
        audit(&dir, &AuditOptions::default(), &|_, _| {}).expect("the large log verifies");
    let secs = t.elapsed().as_secs_f64();
    let verify_sigs = summary.signatures as f64 / secs;
    println!(
        "{:<52} {:>12.0} entries/s {:>10.0} sig/s = {:>5.1}% of raw (target >= 70%)",
        format!("verify (audit) of {big}-entry log"),
        summary.entries as f64 / secs,
        verify_sigs,
        100.0 * verify_sigs / raw
    );
}

/// Bytes of `log.dat` and of everything derived beside it (tree, offsets, ids, sled).
fn disk_bytes(dir: &Path) -> (u64, u64) {
    fn du(path: &Path) -> u64 {
        match std::fs::read_dir(path) {
            Ok(entries) => entries.map(|e| du(&e.expect("dir entry").path())).sum(),
            Err(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
        }
    }
    let log = du(&dir.join("log.dat"));
    let derived = ["tree", "offsets.dat", "ids.dat", "index.sled"]
        .iter()
        .map(|name| du(&dir.join(name)))
        .sum();
    (log, derived)
}

/// Prints derived/log.dat, then reopens the log `restarts` times, appending a small
/// batch and dropping the handle without a clean close each time (as a kill would),
/// and prints the ratio again: the derived stores must not grow with restarts.
fn disk_after_restarts(dir: &Path, restarts: u64) {
    let report = |when: &str| {
        let (log, derived) = disk_bytes(dir);
        println!(
            "{:<52} {:>12.3}         ({derived} / {log} bytes)",
            format!("disk: derived / log.dat, {when}"),
            derived as f64 / log as f64
        );
    };
    report("after the build");
    let signers = signers();
    for restart in 0..restarts {
        let (mut log, _) = Log::open(dir, Box::new(EntryIdOnly)).expect("reopen");
        let from = 1_000_000_000 + restart * 10;
        let batch = make_envelopes(&signers, from, 10)
            .into_iter()
            .map(|e| e.verify(&KeyCache::self_certifying()).expect("verifies"))
            .collect();
        log.append(batch, &mut AdmitAll).expect("append");
        drop(log);
    }
    report(&format!("after {restarts} restarts"));
}

fn median(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..n).map(|_| f()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[n / 2]
}

fn median_duration(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..n).map(|_| f()).collect();
    v.sort();
    v[n / 2]
}

fn signers() -> Vec<NoteSigner> {
    (0..64u8)
        .map(|i| {
            NoteSigner::new(
                KeyName::new(format!("inst-{i:04}")).expect("name"),
                SigningKey::from_bytes(&[i.wrapping_add(7); 32]),
            )
        })
        .collect()
}

fn make_envelopes(signers: &[NoteSigner], from: u64, n: u64) -> Vec<Envelope> {
    (from..from + n)
        .into_par_iter()
        .map(|i| {
            let s = &signers[(i % signers.len() as u64) as usize];
            let payload = format!(
                "{{\"id\":\"bench-{i}\",\"kind\":\"bench\",\"lessons\":{}}}",
                i % 60
            );
            Envelope::sign(
                "application/vnd.lesson-ledger.bench+json",
                payload.as_bytes(),
                &[s],
            )
            .expect("sign")
        })
        .collect()
}

/// Append throughput with group commit: envelopes are signed before the clock starts.
fn append_rate(n: u64) -> (f64, f64) {
    let tmp = tempfile::TempDir::new().expect("temp dir");
    let signers = signers();
    let envelopes = make_envelopes(&signers, 0, n);
    let mut log = Log::create(
        tmp.path(),
        "bench.example/log",
        "operator",
        Box::new(EntryIdOnly),
    )
    .expect("create");
    let t = Instant::now();
    let sigs = pipeline(&mut log, envelopes.chunks(BATCH).map(<[Envelope]>::to_vec));
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(log.size(), n);
    (n as f64 / secs, sigs as f64 / secs)
}

/// The writer's loop as a server runs it: batches are verified on the rayon pool (all
/// cores) while the previous batch is appended by a dedicated writer thread, so that
/// the writer's fdatasync never idles a verification core. Returns signatures checked.
fn pipeline(log: &mut Log, batches: impl Iterator<Item = Vec<Envelope>> + Send) -> u64 {
    let keys = KeyCache::self_certifying();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<VerifiedEnvelope>>(2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut sigs = 0u64;
            for batch in rx {
                sigs += batch
                    .iter()
                    .map(|v| v.signatures().len() as u64)
                    .sum::<u64>();
                let outcomes = log.append(batch, &mut AdmitAll).expect("append");
                assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ok(_))));
            }
            sigs
        });
        for batch in batches {
            let verified = verify_batch(batch, &keys)
                .into_iter()
                .map(|v| v.expect("valid"))
                .collect();
            tx.send(verified).expect("writer alive");
        }
        drop(tx);
        writer.join().expect("writer thread")
    })
}

fn build_big_log_in_child(dir: &Path, n: u64) -> (u64, Duration) {
    let t = Instant::now();
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe)
        .env(CHILD_ENV, format!("{}|{n}", dir.display()))
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let kib = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("child printed {text:?}"));
    (kib, t.elapsed())
}

/// In the child: append `n` entries, generating them batch by batch so that the only
/// large memory is the writer's; print peak RSS (VmHWM) in KiB.
fn child_append(spec: &str) {
    let (dir, n) = spec.split_once('|').expect("dir|n");
    let n: u64 = n.parse().expect("n");
    let signers = signers();
    let mut log = Log::create(
        Path::new(dir),
        "bench.example/big",
        "operator",
        Box::new(EntryIdOnly),
    )
    .expect("create");
    // Envelopes are made batch by batch, so the only large memory is the writer's.
    let batches = (0..n)
        .step_by(BATCH)
        .map(|at| make_envelopes(&signers, at, (BATCH as u64).min(n - at)));
    pipeline(&mut log, batches);
    log.close().expect("close");
    let hwm = measure::peak_rss_kib();
    println!("{hwm}");
}

fn proof_rate(log: &Log, n: usize) -> f64 {
    let size = log.size();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let indices: Vec<u64> = (0..n).map(|_| rng.gen_range(0..size)).collect();
    let t = Instant::now();
    let mut total = 0usize;
    for &i in &indices {
        total += log.inclusion_proof(i, size).expect("proof").len();
    }
    let secs = t.elapsed().as_secs_f64();
    assert!(total > 0);
    n as f64 / secs
}

/// The writer alone on pre-verified batches, with a breakdown (for profiling).
fn writer_only(n: u64) {
    let tmp = tempfile::TempDir::new().expect("temp dir");
    let signers = signers();
    let keys = KeyCache::self_certifying();
    let batches: Vec<Vec<VerifiedEnvelope>> = make_envelopes(&signers, 0, n)
        .chunks(BATCH)
        .map(|c| {
            verify_batch(c.to_vec(), &keys)
                .into_iter()
                .map(|v| v.expect("valid"))
                .collect()
        })
        .collect();
    let mut log = Log::create(
        tmp.path(),
        "bench.example/log",
        "operator",
        Box::new(EntryIdOnly),
    )
    .expect("create");
    let t = Instant::now();
    for b in batches {
        log.append(b, &mut AdmitAll).expect("append");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "writer alone: {:.0} entries/s, {:.1} us/entry",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}
