//! Step 5: a consumer association audits the ledger from outside, over HTTP only —
//! what `lesson-ledger verify --url` does, with its state file, plus a replay.
//!
//! 1. [`first_look`] (at the end of step 3): the association audits the log so far
//!    ([`client::audit`]) and remembers the checkpoint in its state file.
//! 2. [`run`]: the audit again ([`client::audit_visiting`]): the checkpoint under the
//!    operator key it pinned, every entry from the tlog-tiles bundles with every
//!    signature, the root recomputed, and a consistency proof from the checkpoint it
//!    remembered — a ledger that rewrote its history since is caught. Every verified
//!    entry is replayed under the rules into the association's own state (each match
//!    run re-run at its place in the log, its allocations compared), and the pool the
//!    server serves (`GET /v1/pool`) must equal the replay's.
//! 3. It co-signs the checkpoint it verified (C2SP cosignature/v1) with
//!    `POST /v1/cosign`, and checks that `GET /checkpoint` now carries its cosignature.
//! 4. For several students (seeded choice): the balance served with its proofs
//!    (`GET /v1/students/{ref}`, every inclusion proof checked by
//!    [`client::verify_answer`]) equals the replay's, adds up (value = unreserved +
//!    reserved + consumed), and the claim's value is `lessons × price` of its entry.
//!
//! ```no_run
//! # use lesson_ledger::demo::{audit, feed::Feed, story, world::World, HttpLedger, Scale};
//! # let world = World::new(1, Scale::Tiny, 0);
//! # let created = lesson_ledger::demo::create::ledger(std::path::Path::new("/tmp/l"), &world)?;
//! # let cast = story::Cast::new(&world, created.operator)?;
//! # let mut feed = Feed::new(HttpLedger::new("http://127.0.0.1:8080", "operator+1+A")?, "l.example/a", 1);
//! let state = std::path::Path::new("/tmp/assoc-01.audit.json");
//! audit::first_look(&feed, &cast, state)?;
//! let report = audit::run(&mut feed, &world, &cast, state)?;
//! assert!(report.passed);
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;

use super::feed::Feed;
use super::story::Cast;
use super::world::World;
use super::{AuditFailure, DemoError};
use crate::api::StudentAnswer;
use crate::client;
use crate::http::cosign::CosignRequest;
use crate::ledger::queries::{self, StudentSummary};
use crate::log::envelope::Envelope;
use crate::log::note::{cosign, verify_cosignature, NoteSigner};
use crate::runs::replay::Replayer;

/// Students whose balances are checked with proofs.
pub const STUDENTS_CHECKED: usize = 5;

/// What the audit established.
#[derive(Debug, Clone)]
pub struct AuditReport {
    /// Whether every check passed.
    pub passed: bool,
    /// Entries audited.
    pub entries: u64,
    /// Signatures verified.
    pub signatures: u64,
    /// The root hash of the tree audited, base64.
    pub root_base64: String,
    /// The size of the checkpoint the association had remembered and found consistent.
    pub consistent_with: Option<u64>,
    /// How long the audit took.
    pub elapsed: Duration,
    /// The replay compared with what the server serves, in words.
    pub state_line: String,
    /// The association that co-signed the checkpoint.
    pub cosigned_by: String,
    /// The checkpoint as served after the cosignature (note text, both signatures).
    pub checkpoint: String,
    /// The students whose balances were checked against the replay (pseudonymous ids).
    pub students_checked: Vec<String>,
    /// State and inclusion proofs verified.
    pub proofs_verified: u64,
}

fn association(cast: &Cast) -> Result<&Arc<NoteSigner>, DemoError> {
    cast.associations
        .first()
        .ok_or_else(|| DemoError::Setup("no consumer association".into()))
}

/// The association's first audit: the log so far, its checkpoint remembered in
/// `state_file` (the operator key pinned from the demo's own genesis, not the server's
/// word).
///
/// # Errors
/// [`client::ClientError::Verification`] for anything that does not verify; faults.
pub fn first_look(feed: &Feed, cast: &Cast, state_file: &Path) -> Result<(), DemoError> {
    if let Some(dir) = state_file.parent() {
        std::fs::create_dir_all(dir).map_err(super::io_err(dir))?;
    }
    let ledger = feed.transport();
    let report = client::audit(
        ledger.client(),
        Some(&ledger.operator().to_vkey()),
        Some(state_file),
    )?;
    println!(
        "{} audited the ledger so far over HTTP: {} entries, {} signatures, root {}; checkpoint remembered in {}",
        association(cast)?.name(),
        report.size,
        report.signatures,
        report.root.to_base64(),
        state_file.display()
    );
    Ok(())
}

/// Step 5.
///
/// # Errors
/// [`DemoError::AuditFailed`] with the first thing that does not verify or differs
/// from the replay; faults.
pub fn run(
    feed: &mut Feed,
    world: &World,
    cast: &Cast,
    state_file: &Path,
) -> Result<AuditReport, DemoError> {
    let started = Instant::now();
    let ledger = feed.transport();
    let association = association(cast)?;
    let mut replayer = Replayer::new();
    let audited = audit_remote(ledger, association, state_file, &mut replayer)?;

    // The replay's pool is the served one.
    let served_pool = ledger.pool()?;
    let replayed_pool = queries::pool_totals(replayer.state())?;
    if served_pool != replayed_pool {
        return Err(DemoError::AuditFailed(AuditFailure::Differs(format!(
            "GET /v1/pool serves {served_pool:?}, the replay gives {replayed_pool:?}"
        ))));
    }
    let state_line = format!(
        "replayed {} entries under the rules, re-running {} match run(s) to the same allocations: {} objects, state map root {}; the pool served equals the replay's",
        replayer.entries(),
        replayer.runs().checked(),
        replayer.state().len(),
        crate::ledger::units::hex(&replayer.state().root())
    );
    println!("{state_line}");

    // Co-sign the checkpoint just verified, and see it served with the cosignature.
    let served = cosign_audited(ledger, association, (audited.size, audited.root))?;

    let (students_checked, proofs_verified) = check_students(feed, world, &replayer)?;
    println!(
        "verdict: PASS — {} inclusion proofs verified for {} students, each balance equal to the replay's",
        proofs_verified,
        students_checked.len()
    );
    Ok(AuditReport {
        passed: true,
        entries: audited.size,
        signatures: audited.signatures,
        root_base64: audited.root.to_base64(),
        consistent_with: audited.consistent_with,
        elapsed: started.elapsed(),
        state_line,
        cosigned_by: association.name().to_string(),
        checkpoint: served.text(),
        students_checked,
        proofs_verified,
    })
}

/// The association's remote audit (`verify --url`): every entry from the tiles, every
/// signature, the root, the replay into `replayer`.
fn audit_remote(
    ledger: &super::transport::HttpLedger,
    association: &NoteSigner,
    state_file: &Path,
    replayer: &mut Replayer,
) -> Result<client::AuditReport, DemoError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} {bar:40} {pos}/{len} entries ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("auditing over HTTP");
    let audited = client::audit_visiting(
        ledger.client(),
        Some(&ledger.operator().to_vkey()),
        Some(state_file),
        replayer,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    let audited = audited.map_err(|e| DemoError::AuditFailed(e.into()))?;
    println!(
        "{} audited {} entries over HTTP: {} signatures verified, root {} recomputed from the tiles{}",
        association.name(),
        audited.size,
        audited.signatures,
        audited.root.to_base64(),
        audited.consistent_with.map_or_else(String::new, |m| format!(
            ", consistent with the checkpoint of size {m} it remembered"
        ))
    );
    Ok(audited)
}

/// The association co-signs the checkpoint of the tree it audited (`size`, `root`) and
/// sees it served with its cosignature; returns the served checkpoint.
fn cosign_audited(
    ledger: &super::transport::HttpLedger,
    association: &NoteSigner,
    (size, root): (u64, crate::log::hash::Hash),
) -> Result<crate::log::note::SignedCheckpoint, DemoError> {
    let cp = ledger.client().checkpoint(ledger.operator())?;
    if cp.checkpoint().size != size || cp.checkpoint().root != root {
        return Err(DemoError::AuditFailed(AuditFailure::Differs(format!(
            "the checkpoint (size {}) is not the tree audited (size {})",
            cp.checkpoint().size,
            size
        ))));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ledger.client().cosign(&CosignRequest {
        party: association.name().to_string(),
        size,
        cosignature: cosign(&cp, association, now)?,
    })?;
    let served = ledger.client().checkpoint(ledger.operator())?;
    verify_cosignature(&served, &association.cosigner_key())?;
    println!(
        "{} co-signed the checkpoint of size {} (POST /v1/cosign); GET /checkpoint carries it",
        association.name(),
        size
    );
    Ok(served)
}

/// Several students' balances, fetched with their proofs (verified by the client),
/// compared with the replay.
fn check_students(
    feed: &Feed,
    world: &World,
    replayer: &Replayer,
) -> Result<(Vec<String>, u64), DemoError> {
    let ledger = feed.transport();
    let mut students: Vec<u64> = (0..world.params().students).collect();
    students.shuffle(&mut world.rng("audited students"));
    students.truncate(STUDENTS_CHECKED);
    students.sort_unstable();
    let mut proofs = 0;
    let mut checked = Vec::new();
    for n in students {
        let student = World::student(n);
        // `balance` verifies the checkpoint and every inclusion proof before answering.
        // Every object proven against the state note, every entry included.
        let proven: StudentAnswer = ledger.client().balance(&student, ledger.operator())?;
        let claims = proven.claims.iter().map(|c| c.object.clone()).collect();
        let served = StudentSummary::of(proven.student.object.student.clone(), claims)?;
        let replayed = queries::student_summary(replayer.state(), &student)?;
        if Some(&served) != replayed.as_ref() {
            return Err(DemoError::check(
                format!("balance of {student} against the replay"),
                format!("{replayed:?}"),
                format!("{served:?}"),
            ));
        }
        check_claim_parts(&student, &served)?;
        check_recorded_values(&proven, &served)?;
        proofs += proven.entries.len() as u64;
        checked.push(student);
    }
    Ok((checked, proofs))
}

/// "Per claim: recorded value = unreserved + reserved + consumed", for each served claim.
fn check_claim_parts(student: &str, served: &StudentSummary) -> Result<(), DemoError> {
    for claim in &served.claims {
        let parts = [claim.unreserved.0, claim.reserved.0, claim.consumed.0]
            .iter()
            .try_fold(0u64, |acc, v| acc.checked_add(*v));
        if parts != Some(claim.value.0) {
            return Err(DemoError::check(
                format!(
                    "value of {} = unreserved + reserved + consumed",
                    claim.claim
                ),
                claim.value.0,
                format!("{parts:?}"),
            ));
        }
        println!(
            "  {student} {}: value {} fen = unreserved {} + reserved {} + consumed {}; entries proven: {}",
            claim.claim,
            claim.value.0,
            claim.unreserved.0,
            claim.reserved.0,
            claim.consumed.0,
            claim.entries.len()
        );
    }
    Ok(())
}

/// Each claim's value equals the lessons × price its proven `claim_recorded` entry says.
fn check_recorded_values(proven: &StudentAnswer, served: &StudentSummary) -> Result<(), DemoError> {
    for e in &proven.entries {
        let envelope = Envelope::from_json(e.envelope.get().as_bytes())?;
        let payload: serde_json::Value =
            serde_json::from_slice(envelope.payload()).map_err(|source| {
                DemoError::AuditFailed(AuditFailure::EntryPayload {
                    index: e.index,
                    source,
                })
            })?;
        if payload["kind"] != "claim_recorded" {
            continue;
        }
        let lessons = payload["lessons"].as_u64().unwrap_or(0);
        let price = payload["price_per_lesson_fen"].as_u64().unwrap_or(0);
        let claim = served
            .claims
            .iter()
            .find(|c| payload["claim"] == c.claim.as_str());
        if let Some(c) = claim.filter(|c| lessons.checked_mul(price) != Some(c.value.0)) {
            return Err(DemoError::check(
                format!("value of {}", c.claim),
                c.value.0,
                format!("{lessons} × {price}"),
            ));
        }
    }
    Ok(())
}
