//! Step 5: a consumer association audits the ledger from outside the writer.
//!
//! 1. The whole log is re-read and every entry replayed under the rules
//!    ([`Transport::audit`]: `audit_with` + `Replayer`), and the replay is compared with
//!    the state the writer stored, object by object and digest by digest.
//! 2. The association verifies the latest checkpoint with the operator's key, checks
//!    that it is the tree the audit recomputed, and co-signs it (C2SP cosignature/v1).
//! 3. For several students (seeded choice): the balance the ledger serves equals the
//!    auditor's replay; every entry it derives from is proven included in the
//!    co-signed checkpoint (RFC 9162 §2.1.3.2, over leaf bytes the auditor hashes
//!    itself); and the claim's recorded value is `lessons × price` of its entry.
//!
//! ```no_run
//! # use lesson_ledger::demo::{audit, feed::Feed, story, world::World, LocalLedger, Scale};
//! # let world = World::new(1, Scale::Tiny, lesson_ledger::demo::world::now_micros());
//! # let (ledger, operator) = LocalLedger::create(std::path::Path::new("/tmp/l"), world.origin())?;
//! # let cast = story::Cast::new(&world, operator)?;
//! # let mut feed = Feed::new(ledger);
//! let report = audit::run(&mut feed, &world, &cast)?;
//! assert!(report.passed);
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;

use super::feed::Feed;
use super::story::Cast;
use super::transport::Transport;
use super::world::World;
use super::DemoError;
use crate::ledger::queries;
use crate::log::hash::leaf_hash;
use crate::log::leaf::Leaf;
use crate::log::note::{cosign, verify_cosignature, NoteVerifier, SignedCheckpoint};
use crate::log::proof::verify_inclusion;

/// Students whose balances are checked with proofs.
pub const STUDENTS_CHECKED: usize = 5;

/// What the audit established.
#[derive(Debug, Clone)]
pub struct AuditReport {
    pub passed: bool,
    pub entries: u64,
    pub signatures: u64,
    pub checkpoints: u64,
    pub bytes: u64,
    pub root_base64: String,
    pub elapsed: Duration,
    /// The replay compared with the stored state, in words.
    pub state_line: String,
    /// The association that co-signed the checkpoint.
    pub cosigned_by: String,
    /// The co-signed checkpoint (note text with both signatures).
    pub checkpoint: String,
    pub students_checked: Vec<String>,
    pub proofs_verified: u64,
}

/// Step 5.
///
/// # Errors
/// [`DemoError::AuditFailed`] with the first finding; a balance that differs from the
/// replay or a proof that does not verify; faults.
pub fn run<T: Transport>(
    feed: &mut Feed<T>,
    world: &World,
    cast: &Cast,
) -> Result<AuditReport, DemoError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} {bar:40} {bytes}/{total_bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("auditing");
    let transport = feed.transport();
    let audited = transport.audit(&|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let audited = audited?;
    let s = &audited.summary;
    println!(
        "audit ok: {} entries, {} signatures, {} checkpoints verified; root {}; {} bytes in {:.2?}",
        s.entries,
        s.signatures,
        s.checkpoints,
        s.root.to_base64(),
        s.bytes,
        s.elapsed
    );
    println!("{}", audited.state_line);

    // The association checks the checkpoint it is served against the operator key and
    // the tree it recomputed, then co-signs it.
    let operator = NoteVerifier::from_vkey(&transport.operator_vkey())?;
    let mut checkpoint =
        SignedCheckpoint::parse_and_verify(transport.checkpoint_text().as_bytes(), &operator)?;
    let cp = checkpoint.checkpoint().clone();
    if cp.size != s.entries || cp.root != s.root {
        return Err(DemoError::AuditFailed(format!(
            "the served checkpoint (size {}, root {}) is not the audited tree (size {}, root {})",
            cp.size,
            cp.root.to_base64(),
            s.entries,
            s.root.to_base64()
        )));
    }
    let association = cast
        .associations
        .first()
        .ok_or_else(|| DemoError::Setup("no consumer association".into()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let line = cosign(&checkpoint, association, now)?;
    checkpoint.add_signature_lines(&line)?;
    verify_cosignature(&checkpoint, &association.cosigner_key())?;
    println!(
        "{} co-signed the checkpoint of size {}",
        association.name(),
        cp.size
    );

    // Several students' balances, each entry proven against the co-signed checkpoint.
    let mut students: Vec<u64> = (0..world.params().students).collect();
    students.shuffle(&mut world.rng("audited students"));
    students.truncate(STUDENTS_CHECKED);
    students.sort_unstable();
    let mut proofs = 0;
    let mut checked = Vec::new();
    for n in students {
        let student = World::student(n);
        let served = transport.student_summary(&student)?;
        let replayed = queries::student_summary(audited.replayed.state(), &student)?;
        if served != replayed {
            return Err(DemoError::check(
                format!("balance of {student}"),
                format!("{replayed:?}"),
                format!("{served:?}"),
            ));
        }
        let Some(summary) = served else {
            return Err(DemoError::check(
                format!("claims of {student}"),
                "one",
                "none",
            ));
        };
        for claim in &summary.claims {
            // "Per claim: recorded value = unreserved + reserved + consumed."
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
            for &index in &claim.entries {
                let bytes = transport.leaf_bytes(index)?;
                let proof = transport.inclusion_proof(index, cp.size)?;
                verify_inclusion(&leaf_hash(&bytes), index, cp.size, &proof, &cp.root)
                    .map_err(|source| DemoError::Proof { index, source })?;
                proofs += 1;
                let leaf = Leaf::decode(&bytes).map_err(crate::log::store::LogError::from)?;
                let payload: serde_json::Value = serde_json::from_slice(leaf.envelope.payload())
                    .map_err(|e| DemoError::AuditFailed(format!("entry {index}: {e}")))?;
                if payload["kind"] == "claim_recorded" && payload["claim"] == claim.claim.as_str() {
                    let lessons = payload["lessons"].as_u64().unwrap_or(0);
                    let price = payload["price_per_lesson_fen"].as_u64().unwrap_or(0);
                    if lessons.checked_mul(price) != Some(claim.value.0) {
                        return Err(DemoError::check(
                            format!("value of {}", claim.claim),
                            claim.value.0,
                            format!("{lessons} × {price}"),
                        ));
                    }
                }
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
        checked.push(student);
    }
    println!(
        "verdict: PASS — {} inclusion proofs verified for {} students",
        proofs,
        checked.len()
    );
    Ok(AuditReport {
        passed: true,
        entries: s.entries,
        signatures: s.signatures,
        checkpoints: s.checkpoints,
        bytes: s.bytes,
        root_base64: s.root.to_base64(),
        elapsed: s.elapsed,
        state_line: audited.state_line.clone(),
        cosigned_by: association.name().to_string(),
        checkpoint: checkpoint.text(),
        students_checked: checked,
        proofs_verified: proofs,
    })
}
