//! Step 4 of the story: matching, then the lessons (消课).
//!
//! - matching ([`matching::greedy`](super::matching::greedy)) issues `allocation_made`
//!   (operator);
//! - some allocations are declined by the student (`allocation_declined`) before any
//!   lesson;
//! - most lessons are `lesson_consumed`, co-signed by student and donor at once; some are
//!   `lesson_proposed` by the donor and then `lesson_confirmed` by the student; some are
//!   disputed (`lesson_disputed`, by the student or a consumer association) and
//!   `dispute_resolved` by the operator, upheld and rejected in turn; a few stay
//!   pending, and the operator's early `lesson_deemed_confirmed` is refused with
//!   `window_not_elapsed` (the window is at least a day: see the module docs of
//!   [`demo`](super));
//! - one lesson is submitted twice and answered with its first receipt (`exists`);
//! - expiry: short-lived pledges are offered for claims whose allocation was declined;
//!   an allocation expires with its pledge's validity, so after a few seconds a late
//!   lesson is refused (`allocation_past_expiry`) and `allocation_expired` releases
//!   the rest back to the claim.
//!
//! ```no_run
//! # use lesson_ledger::demo::{feed::Feed, lessons, story, world::World, LocalLedger, Scale};
//! # let world = World::new(1, Scale::Tiny, lesson_ledger::demo::world::now_micros());
//! # let (ledger, operator) = LocalLedger::create(std::path::Path::new("/tmp/l"), world.origin())?;
//! # let cast = story::Cast::new(&world, operator)?;
//! # let mut feed = Feed::new(ledger);
//! // after steps 1-3:
//! lessons::run(&mut feed, &world, &cast)?;
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;

use super::feed::{Expect, Feed};
use super::matching::{greedy, Need, OpenPledge};
use super::story::Cast;
use super::transport::Transport;
use super::world::{now_micros, World};
use super::DemoError;
use crate::ledger::defaults::SUBJECTS;
use crate::log::note::NoteSigner;

/// Most allocations one claim gets from the greedy matcher.
const ALLOCATIONS_PER_CLAIM_MAX: usize = 3;
/// Early deemed confirmations the operator tries (each refused).
const DEEMED_ATTEMPTS_MAX: u64 = 3;

/// An allocation the story made.
struct Alloc {
    id: String,
    claim: u64,
    donor: usize,
    lessons: u64,
}

/// What happens to a proposed lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    Confirm,
    Dispute { by_association: bool, upheld: bool },
    Pending,
}

/// The first non-co-signed lessons cycle through every path, so that even the tiny
/// scale shows each of them.
const FORCED: [Follow; 5] = [
    Follow::Confirm,
    Follow::Dispute {
        by_association: false,
        upheld: true,
    },
    Follow::Dispute {
        by_association: true,
        upheld: false,
    },
    Follow::Pending,
    Follow::Dispute {
        by_association: true,
        upheld: true,
    },
];

/// What step 4 did, for the summary.
#[derive(Debug, Default, Clone)]
struct Counts {
    allocations: u64,
    declined: u64,
    consumed: u64,
    confirmed: u64,
    upheld: u64,
    rejected: u64,
    pending: u64,
    expired: u64,
}

/// Step 4: matching and lessons.
///
/// # Errors
/// An unexpected answer; faults.
pub fn run<T: Transport>(feed: &mut Feed<T>, world: &World, cast: &Cast) -> Result<(), DemoError> {
    let mut counts = Counts::default();
    let allocs = match_claims(feed, world, cast, &mut counts)?;
    let declined = decline(feed, world, &allocs, &mut counts)?;
    let follow = deliver(feed, world, cast, &allocs, &declined, &mut counts)?;
    settle(feed, world, cast, &allocs, &follow, &mut counts)?;
    expire(feed, world, cast, &allocs, &declined, &mut counts)?;
    println!(
        "{} allocations ({} declined, {} expired); lessons: {} co-signed, {} confirmed, \
         {} disputed ({} upheld, {} rejected), {} still pending",
        counts.allocations,
        counts.declined,
        counts.expired,
        counts.consumed,
        counts.confirmed,
        counts.upheld + counts.rejected,
        counts.upheld,
        counts.rejected,
        counts.pending
    );
    Ok(())
}

fn operator(cast: &Cast) -> Vec<Arc<NoteSigner>> {
    vec![cast.operator.clone()]
}

fn donor_of<'c>(cast: &'c Cast, a: &Alloc) -> Result<&'c Arc<NoteSigner>, DemoError> {
    cast.donors
        .get(a.donor)
        .ok_or_else(|| DemoError::Setup(format!("no donor {}", a.donor)))
}

/// The greedy matcher over every claim, in claim order.
fn match_claims<T: Transport>(
    feed: &mut Feed<T>,
    world: &World,
    cast: &Cast,
    counts: &mut Counts,
) -> Result<Vec<Alloc>, DemoError> {
    let specs = world.pledges();
    let mut open: Vec<OpenPledge> = specs
        .iter()
        .map(|p| OpenPledge {
            subject: p.subject.to_string(),
            grade_min: p.grade_min,
            grade_max: p.grade_max,
            district: p.district.map(str::to_string),
            lessons_per_seat: p.lessons_per_seat,
            value_fen: p.value_fen,
            available: p.seats * p.lessons_per_seat,
        })
        .collect();
    let by_subject: Vec<Vec<usize>> = SUBJECTS
        .iter()
        .map(|s| (0..open.len()).filter(|&i| open[i].subject == *s).collect())
        .collect();
    let students = world.params().students;
    feed.progress("matching", students);
    let mut allocs = Vec::new();
    for n in 0..students {
        let claim = world.claim(n);
        let Some(candidates) = SUBJECTS
            .iter()
            .position(|s| *s == claim.subject)
            .and_then(|i| by_subject.get(i))
        else {
            continue;
        };
        let need = Need {
            subject: claim.subject,
            grade: claim.grade,
            district: claim.district,
            accepts_online: claim.accepts_online,
            accepted_districts: &claim.accepted_districts,
            unreserved_fen: claim.value_fen(),
        };
        for (i, k) in greedy(&need, &mut open, candidates, ALLOCATIONS_PER_CLAIM_MAX) {
            let id = format!("a-{:07}", allocs.len() + 1);
            feed.push(
                &json!({"kind": "allocation_made", "id": format!("allocation_made.{id}"),
                        "allocation": id, "claim": claim.claim,
                        "pledge": specs[i].pledge, "lessons": k}),
                operator(cast),
                Expect::Accepted,
            )?;
            allocs.push(Alloc {
                id,
                claim: n,
                donor: usize::try_from(specs[i].donor).unwrap_or(usize::MAX),
                lessons: k,
            });
        }
    }
    feed.flush()?;
    feed.finish_progress();
    counts.allocations = allocs.len() as u64;
    Ok(allocs)
}

/// Some students decline their match ("allocation_declined: the student"); the first
/// allocation always is, so every scale shows it.
fn decline<T: Transport>(
    feed: &mut Feed<T>,
    world: &World,
    allocs: &[Alloc],
    counts: &mut Counts,
) -> Result<Vec<bool>, DemoError> {
    let mut rng = world.rng("declines");
    let mut declined = vec![false; allocs.len()];
    for (i, a) in allocs.iter().enumerate() {
        if i == 0 || rng.gen_bool(0.04) {
            declined[i] = true;
            counts.declined += 1;
            let student = world.key(&World::student(a.claim))?;
            feed.push(
                &json!({"kind": "allocation_declined", "id": format!("allocation_declined.{}", a.id),
                        "allocation": a.id}),
                vec![student],
                Expect::Accepted,
            )?;
        }
    }
    feed.flush()?;
    Ok(declined)
}

/// Lessons taught on every allocation not declined: most co-signed at once, the rest
/// proposed by the donor (to be settled in [`settle`]).
fn deliver<T: Transport>(
    feed: &mut Feed<T>,
    world: &World,
    cast: &Cast,
    allocs: &[Alloc],
    declined: &[bool],
    counts: &mut Counts,
) -> Result<Vec<(usize, String, Follow)>, DemoError> {
    let mut rng = world.rng("lessons");
    let cap = world.params().lessons_per_allocation_max;
    let total: u64 = allocs
        .iter()
        .map(|a| cap.map_or(a.lessons, |c| a.lessons.min(c)))
        .sum();
    feed.progress("lessons", total);
    let mut follow = Vec::new();
    let mut forced = FORCED.iter();
    for (i, a) in allocs.iter().enumerate() {
        if declined.get(i).copied().unwrap_or(true) {
            continue;
        }
        let student = world.key(&World::student(a.claim))?;
        let donor = donor_of(cast, a)?;
        let most = cap.map_or(a.lessons, |c| a.lessons.min(c));
        let n = rng.gen_range(most.div_ceil(2).max(1)..=most);
        for j in 0..n {
            let lesson = format!("l-{}-{j:02}", &a.id[2..]);
            let r: f64 = rng.gen();
            let mode = if r < 0.85 {
                None
            } else if let Some(f) = forced.next() {
                Some(*f)
            } else if r < 0.93 {
                Some(Follow::Confirm)
            } else if r < 0.97 {
                Some(Follow::Dispute {
                    by_association: rng.gen_bool(0.5),
                    upheld: rng.gen_bool(0.5),
                })
            } else {
                Some(Follow::Pending)
            };
            let (kind, signers) = match mode {
                None => ("lesson_consumed", vec![student.clone(), donor.clone()]),
                Some(_) => ("lesson_proposed", vec![donor.clone()]),
            };
            feed.push(
                &json!({"kind": kind, "id": format!("{kind}.{lesson}"),
                        "lesson": lesson, "allocation": a.id}),
                signers,
                Expect::Accepted,
            )?;
            match mode {
                None => counts.consumed += 1,
                Some(f) => follow.push((i, lesson, f)),
            }
        }
    }
    feed.flush()?;
    feed.finish_progress();
    Ok(follow)
}

/// The proposed lessons settled: confirmed, disputed then resolved, or left pending.
fn settle<T: Transport>(
    feed: &mut Feed<T>,
    world: &World,
    cast: &Cast,
    allocs: &[Alloc],
    follow: &[(usize, String, Follow)],
    counts: &mut Counts,
) -> Result<(), DemoError> {
    let mut deemed_attempts = 0;
    let mut disputes = Vec::new();
    for (n, (i, lesson, f)) in follow.iter().enumerate() {
        let a = allocs
            .get(*i)
            .ok_or_else(|| DemoError::Setup(format!("no allocation {i}")))?;
        let student = || world.key(&World::student(a.claim));
        match *f {
            Follow::Confirm => {
                counts.confirmed += 1;
                feed.push(
                    &json!({"kind": "lesson_confirmed", "id": format!("lesson_confirmed.{lesson}"),
                            "lesson": lesson}),
                    vec![student()?],
                    Expect::Accepted,
                )?;
            }
            Follow::Dispute {
                by_association,
                upheld,
            } => {
                let by = if by_association && !cast.associations.is_empty() {
                    cast.associations[n % cast.associations.len()].clone()
                } else {
                    student()?
                };
                let dispute = format!("d-{}", &lesson[2..]);
                feed.push(
                    &json!({"kind": "lesson_disputed", "id": format!("lesson_disputed.{dispute}"),
                            "dispute": dispute, "lesson": lesson,
                            "reason": "no attendance record for this lesson"}),
                    vec![by],
                    Expect::Accepted,
                )?;
                disputes.push((dispute, upheld));
            }
            Follow::Pending => {
                counts.pending += 1;
                if deemed_attempts < DEEMED_ATTEMPTS_MAX {
                    deemed_attempts += 1;
                    feed.push(
                        &json!({"kind": "lesson_deemed_confirmed",
                                "id": format!("lesson_deemed_confirmed.{lesson}"), "lesson": lesson}),
                        operator(cast),
                        Expect::Refused("window_not_elapsed"),
                    )?;
                }
            }
        }
    }
    for (dispute, upheld) in disputes {
        let (outcome, reason) = if upheld {
            ("upheld", "no attendance record: the lesson is void")
        } else {
            (
                "rejected",
                "attendance record and co-signed timetable confirm the lesson",
            )
        };
        if upheld {
            counts.upheld += 1;
        } else {
            counts.rejected += 1;
        }
        feed.push(
            &json!({"kind": "dispute_resolved", "id": format!("dispute_resolved.{dispute}"),
                    "dispute": dispute, "outcome": outcome, "reason": reason}),
            operator(cast),
            Expect::Accepted,
        )?;
    }
    // "Submitting the same entry twice is answered with the first result."
    if let Some((i, lesson, Follow::Confirm)) = follow.iter().find(|f| f.2 == Follow::Confirm) {
        let a = allocs
            .get(*i)
            .ok_or_else(|| DemoError::Setup(format!("no allocation {i}")))?;
        feed.push(
            &json!({"kind": "lesson_confirmed", "id": format!("lesson_confirmed.{lesson}"),
                    "lesson": lesson}),
            vec![world.key(&World::student(a.claim))?],
            Expect::Exists,
        )?;
    }
    feed.flush()
}

/// Short-lived pledges for claims whose allocation was declined; their allocations
/// expire with the pledge.
fn expire<T: Transport>(
    feed: &mut Feed<T>,
    world: &World,
    cast: &Cast,
    allocs: &[Alloc],
    declined: &[bool],
    counts: &mut Counts,
) -> Result<(), DemoError> {
    let p = world.params();
    let mut claims: Vec<u64> = allocs
        .iter()
        .zip(declined)
        .filter(|(_, d)| **d)
        .map(|(a, _)| a.claim)
        .collect();
    claims.dedup();
    claims.truncate(usize::try_from(p.short_pledges).unwrap_or(usize::MAX));
    let start = now_micros();
    let until = start + p.short_validity_micros;
    let mut made: Vec<(String, String, u64, Arc<NoteSigner>)> = Vec::new();
    for (i, &n) in claims.iter().enumerate() {
        let claim = world.claim(n);
        let unreserved = feed
            .transport()
            .claim_balance(&claim.claim)?
            .map_or(0, |b| b.unreserved.0);
        let value_fen = claim.price_fen.min(unreserved);
        if value_fen == 0 || cast.donors.is_empty() {
            continue;
        }
        let donor = cast.donors[i % cast.donors.len()].clone();
        let pledge = format!("p-short-{:02}", i + 1);
        let lessons = (unreserved / value_fen).clamp(1, 8);
        let offer = json!({"kind": "pledge_offered", "id": format!("pledge_offered.{pledge}"),
            "pledge": pledge, "institution": donor.name().as_str(), "subject": claim.subject,
            "grade_min": claim.grade, "grade_max": claim.grade, "district": claim.district,
            "seats": 1, "lessons_per_seat": lessons, "value_per_lesson_fen": value_fen,
            "valid_from_micros": start.saturating_sub(1_000_000), "valid_until_micros": until});
        feed.push(&offer, vec![donor.clone()], Expect::Accepted)?;
        feed.push(
            &json!({"kind": "pledge_approved", "id": format!("pledge_approved.{pledge}"), "pledge": pledge}),
            operator(cast),
            Expect::Accepted,
        )?;
        let alloc = format!("a-short-{:02}", i + 1);
        feed.push(
            &json!({"kind": "allocation_made", "id": format!("allocation_made.{alloc}"),
                    "allocation": alloc, "claim": claim.claim, "pledge": pledge, "lessons": lessons}),
            operator(cast),
            Expect::Accepted,
        )?;
        let student = world.key(&claim.student)?;
        let lesson = format!("l-short-{:02}-00", i + 1);
        feed.push(
            &json!({"kind": "lesson_consumed", "id": format!("lesson_consumed.{lesson}"),
                    "lesson": lesson, "allocation": alloc}),
            vec![student, donor.clone()],
            Expect::Accepted,
        )?;
        counts.consumed += 1;
        made.push((alloc, format!("l-short-{:02}-01", i + 1), lessons, donor));
    }
    feed.flush()?;
    if made.is_empty() {
        println!("no declined claim to offer a short course to: expiry not shown");
        return Ok(());
    }
    // Ledger time is the wall clock: wait until the pledges' validity is over.
    let now = now_micros();
    if now <= until {
        std::thread::sleep(Duration::from_micros(until - now + 1_000));
    }
    for (alloc, late_lesson, _, donor) in &made {
        feed.push(
            &json!({"kind": "lesson_proposed", "id": format!("lesson_proposed.{late_lesson}"),
                    "lesson": late_lesson, "allocation": alloc}),
            vec![donor.clone()],
            Expect::Refused("allocation_past_expiry"),
        )?;
        feed.push(
            &json!({"kind": "allocation_expired", "id": format!("allocation_expired.{alloc}"),
                    "allocation": alloc}),
            operator(cast),
            Expect::Accepted,
        )?;
        counts.expired += 1;
    }
    counts.allocations += made.len() as u64;
    feed.flush()?;
    println!(
        "short courses: {} (valid {:.1} s), expired with lessons left; a late lesson was refused (allocation_past_expiry)",
        made.len(),
        p.short_validity_micros as f64 / 1e6
    );
    Ok(())
}
