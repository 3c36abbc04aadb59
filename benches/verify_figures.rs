//! `verify` figures (issue 15): makes a large valid ledger once, and measures the
//! machine's signature limit; `scripts/verify-figures.sh` times `lesson-ledger verify
//! --data DIR` on that ledger between two limit measurements.
//!
//! - `VERIFY_BENCH_DIR=DIR VERIFY_BENCH_ENTRIES=N cargo bench --bench verify_figures`:
//!   creates the ledger in DIR (unless DIR exists) with about N entries of the
//!   workload of `benches/support/workload.rs` — real keys, real signatures, every entry
//!   one the rules accept — through the real library append (each batch's signatures
//!   verified on the rayon pool, then appended), then prints the limit.
//! - Without `VERIFY_BENCH_DIR`: prints the limit alone.
//!
//! The limit: raw `verify_strict` on all cores, one line
//! `limit: raw verify_strict, all cores: R sig/s` (the script reads it).

// The allocator of the `lesson-ledger` binary (src/main.rs), so figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/measure.rs"]
mod measure;
#[path = "support/workload.rs"]
mod workload;

use std::path::Path;
use std::time::Instant;

use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::envelope::{verify_batch, KeyCache, VerifiedEnvelope};
use lesson_ledger::log::keyfile::read_private_pem;
use lesson_ledger::log::note::{KeyName, NoteSigner};
use lesson_ledger::log::store::Outcome;

const BATCH: usize = 2048;
const ORIGIN: &str = "bench.example/verify";

fn main() {
    if let Ok(dir) = std::env::var("VERIFY_BENCH_DIR") {
        let entries: u64 = std::env::var("VERIFY_BENCH_ENTRIES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let dir = Path::new(&dir);
        if dir.exists() {
            eprintln!("{} exists: kept as it is", dir.display());
        } else {
            make(dir, entries);
        }
    }
    println!(
        "limit: raw verify_strict, all cores: {:.0} sig/s",
        measure::raw_verify_rate()
    );
}

/// Creates the ledger in `dir` with about `entries` entries, appended in batches.
fn make(dir: &Path, entries: u64) {
    let started = Instant::now();
    let mut ledger = Ledger::create(dir, ORIGIN, "operator").expect("create");
    // The genesis must name the key that signs checkpoints and state notes.
    let operator = NoteSigner::new(
        KeyName::new("operator").expect("name"),
        read_private_pem(&dir.join("operator.key")).expect("the ledger's operator key"),
    );
    let envelopes = workload::workload(entries, ORIGIN, &operator);
    let signatures: usize = envelopes.iter().map(|e| e.signatures().len()).sum();
    let n = envelopes.len();
    let signed = started.elapsed();
    // Each batch verified on the rayon pool, then appended: simpler than the server's
    // overlap, and made once.
    let keys = KeyCache::self_certifying();
    let mut refused = 0;
    for chunk in envelopes.chunks(BATCH) {
        let verified: Vec<VerifiedEnvelope> = verify_batch(chunk.to_vec(), &keys)
            .into_iter()
            .map(|v| v.expect("a workload entry verifies"))
            .collect();
        let outcomes = ledger.submit(verified).expect("submit");
        refused += outcomes
            .iter()
            .filter(|o| !matches!(o, Outcome::Ok(_)))
            .count();
    }
    ledger.close().expect("close");
    assert_eq!(refused, 0, "the workload is accepted in full");
    eprintln!(
        "made {}: {n} entries, {signatures} signatures (signed in {:.1} s, appended in {:.1} s)",
        dir.display(),
        signed.as_secs_f64(),
        (started.elapsed() - signed).as_secs_f64()
    );
}
