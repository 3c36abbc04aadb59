//! Ledger-rules benchmark: what the lesson rules cost on top of the log core, measured
//! on the same envelopes in the same run.
//!
//! Run: `cargo bench --bench ledger_rules` (`LEDGER_BENCH_SCALE=tiny|small|city`,
//! default small). The workload is the demo's own log (parties, claims, pledges,
//! allocations, lessons co-signed, proposed, confirmed, disputed...), read back and
//! appended again into fresh stores:
//! - the log core alone (every signature verified, no rules), entries/s;
//! - the ledger (the same, plus the rules, the state in sled and a state note per
//!   batch), entries/s — target: the rules add at most 25%;
//! - `verify` of the ledger's log alone vs with the replay of every entry under the
//!   rules — target: the replay within 1.5x of the log core's verify time.

use std::path::Path;
use std::time::Instant;

use lesson_ledger::demo::{self, DemoConfig, Scale};
use lesson_ledger::ledger::replay::Replayer;
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::audit::{audit, audit_with, AuditOptions};
use lesson_ledger::log::envelope::{verify_batch, Envelope, KeyCache, VerifiedEnvelope};
use lesson_ledger::log::store::{AdmitAll, EntryIdOnly, Log, Outcome};

const BATCH: usize = 2048;

fn main() {
    let scale = match std::env::var("LEDGER_BENCH_SCALE").as_deref() {
        Ok("tiny") => Scale::Tiny,
        Ok("city") => Scale::City,
        _ => Scale::Small,
    };
    let tmp = tempfile::TempDir::new().expect("temp dir");
    let source = tmp.path().join("demo");
    demo::run(&DemoConfig {
        data: source.clone(),
        scale,
        seed: demo::SEED_DEFAULT,
        keep_serving: false,
    })
    .expect("the demo runs");
    let envelopes = read_back(&source.join("ledger"));
    let n = envelopes.len() as u64;
    println!(
        "\nledger_rules benchmark: {n} entries of the demo (scale {}), batches of {BATCH}",
        scale.as_str()
    );

    let core_dir = tmp.path().join("core");
    let t = Instant::now();
    let mut log = Log::create(
        &core_dir,
        "bench.example/core",
        "operator",
        Box::new(EntryIdOnly),
    )
    .expect("create");
    let core_refused = pipeline(envelopes.clone(), |batch| {
        log.append(batch, &mut AdmitAll)
            .expect("append")
            .iter()
            .filter(|o| !matches!(o, Outcome::Ok(_)))
            .count()
    });
    let core_secs = t.elapsed().as_secs_f64();
    drop(log);

    let ledger_dir = tmp.path().join("ledger");
    let t = Instant::now();
    let mut ledger =
        Ledger::create(&ledger_dir, "bench.example/ledger", "operator").expect("create");
    let refused = pipeline(envelopes, |batch| {
        ledger
            .submit(batch)
            .expect("submit")
            .iter()
            .filter(|o| !matches!(o, Outcome::Ok(_)))
            .count()
    });
    let rules_secs = t.elapsed().as_secs_f64();
    ledger.close().expect("close");
    println!(
        "{:<44} {:>10.0} entries/s ({core_refused} not appended)",
        "append, log core (verify + group commit)",
        n as f64 / core_secs
    );
    println!(
        "{:<44} {:>10.0} entries/s ({refused} refused: time-driven entries replayed early) = +{:.0}% time (target <= +25%)",
        "append, ledger (+ rules, state, state notes)",
        n as f64 / rules_secs,
        100.0 * (rules_secs / core_secs - 1.0)
    );

    let t = Instant::now();
    let summary = audit(&ledger_dir, &AuditOptions::default(), &|_, _| {}).expect("log verifies");
    let verify_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut replayer = Replayer::new();
    audit_with(
        &ledger_dir,
        &AuditOptions::default(),
        &|_, _| {},
        &mut replayer,
    )
    .expect("ledger verifies");
    let replay_secs = t.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>10.2} s for {} entries",
        "verify, log core", verify_secs, summary.entries
    );
    println!(
        "{:<44} {:>10.2} s = {:.2}x the log core's verify (target <= 1.5x)",
        "verify + replay under the rules",
        replay_secs,
        replay_secs / verify_secs
    );
}

/// Every envelope of a log, in order.
fn read_back(dir: &Path) -> Vec<Envelope> {
    let (log, _) = Log::open(dir, Box::new(EntryIdOnly)).expect("open the demo's log");
    (0..log.size())
        .map(|i| log.entry(i).expect("entry").envelope)
        .collect()
}

/// Verifies batches on the rayon pool while a writer thread appends the previous one
/// (as a server does); returns how many entries `append` did not take.
fn pipeline(
    envelopes: Vec<Envelope>,
    mut append: impl FnMut(Vec<VerifiedEnvelope>) -> usize + Send,
) -> usize {
    let keys = KeyCache::self_certifying();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<VerifiedEnvelope>>(2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || rx.into_iter().map(&mut append).sum::<usize>());
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
