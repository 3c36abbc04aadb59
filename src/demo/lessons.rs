//! Step 4b: the lessons (消课) on the allocations the match run recorded.
//!
//! The order is the ledger's clock at work: whatever must wait for a window starts
//! first, so that the waiting overlaps the bulk of the work.
//! 1. some students decline their match (`allocation_declined`, the student; the
//!    first allocation always is) and the capacity returns to the pool;
//! 2. the lessons that are not co-signed at once are `lesson_proposed` by the donor,
//!    first of all, so that their confirmation window starts early;
//! 3. they are settled at once: `lesson_confirmed` by the student, or
//!    `lesson_disputed` (by the student or a consumer association) and
//!    `dispute_resolved` by the operator, upheld and rejected in turn; a few are left
//!    pending, and the operator's early `lesson_deemed_confirmed` is refused with
//!    `window_not_elapsed`; one confirmation sent twice is answered `exists`;
//! 4. the bulk: `lesson_consumed`, co-signed by student and donor.
//!
//! Step 4c ([`super::clock`]) then waits out the window and the allocations' validity.
//!
//! ```no_run
//! # use lesson_ledger::demo::{feed::Feed, lessons, matching, story, world::World, HttpLedger, Scale};
//! # let world = World::new(1, Scale::Tiny, 0);
//! # let created = lesson_ledger::demo::create::ledger(std::path::Path::new("/tmp/l"), &world)?;
//! # let cast = story::Cast::new(&world, created.operator)?;
//! # let mut feed = Feed::new(HttpLedger::new("http://127.0.0.1:8080", "operator+1+A")?, "l.example/a", 1);
//! let allocations = matching::run(&mut feed, &world, std::path::Path::new("/tmp/l"), 0)?;
//! let delivered = lessons::run(&mut feed, &world, &cast, &allocations)?;
//! println!("{} lessons left pending", delivered.pending.len());
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::sync::Arc;

use rand::Rng;
use serde_json::json;

use super::feed::{Expect, Feed};
use super::matching::Alloc;
use super::story::{yuan, Cast};
use super::world::{now_micros, World};
use super::DemoError;
use crate::ledger::defaults::CONFIRMATION_WINDOW_DAYS;
use crate::log::note::NoteSigner;

/// Early deemed confirmations the operator tries (each refused).
const DEEMED_ATTEMPTS_MAX: u64 = 3;
/// How close to the allocations' expiry the bulk may run before the demo gives up
/// (a lesson sent later would be refused `allocation_past_expiry`).
const EXPIRY_MARGIN_MICROS: u64 = 1_000_000;

/// What happens to a lesson that is not co-signed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    Confirm,
    Dispute { by_association: bool, upheld: bool },
    Pending,
}

/// The first proposed lessons cycle through every path, so that even the tiny scale
/// shows each of them.
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

/// What steps 4b and 4c did, for the summary.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Allocations made.
    pub allocations: u64,
    /// Allocations the students declined.
    pub declined: u64,
    /// Lessons proposed by the donors.
    pub consumed: u64,
    /// Lessons the students confirmed.
    pub confirmed: u64,
    /// Disputes upheld (the lesson void).
    pub upheld: u64,
    /// Disputes rejected (the lesson final).
    pub rejected: u64,
    /// Lessons deemed confirmed once their window passed.
    pub deemed: u64,
    /// Allocations that expired.
    pub expired: u64,
}

/// A lesson proposed and left to its window.
#[derive(Debug, Clone)]
pub struct PendingLesson {
    /// The lesson's id.
    pub lesson: String,
}

/// What step 4b leaves for step 4c.
#[derive(Debug)]
pub struct Delivered {
    /// What was done so far.
    pub counts: Counts,
    /// Lessons proposed and neither confirmed nor disputed.
    pub pending: Vec<PendingLesson>,
    /// When the last of them may be deemed confirmed (ledger time, µs).
    pub window_end_micros: u64,
    /// Allocations still active with lessons left: `(index into the allocations, lessons left)`.
    pub open: Vec<(usize, u64)>,
    /// When the last allocation expires (ledger time, µs).
    pub expires_at_micros: u64,
}

/// One planned lesson: its id and how it is taken.
struct Planned {
    alloc: usize,
    lesson: String,
    follow: Option<Follow>,
}

/// Step 4b.
///
/// # Errors
/// An unexpected answer; the allocations about to expire with lessons still to send
/// (a machine too slow for the demo's day); faults.
pub fn run(
    feed: &mut Feed,
    world: &World,
    cast: &Cast,
    allocs: &[Alloc],
) -> Result<Delivered, DemoError> {
    let mut counts = Counts {
        allocations: allocs.len() as u64,
        ..Counts::default()
    };
    let (first_expiry, expires_at_micros) = expiries(feed, allocs)?;
    let declined = decline(feed, world, allocs, &mut counts)?;
    let plan = plan(world, allocs, &declined);
    let mut left: Vec<u64> = allocs
        .iter()
        .zip(&declined)
        .map(|(a, d)| if *d { 0 } else { a.lessons })
        .collect();
    for p in &plan {
        left[p.alloc] -= 1;
    }
    // Proposals first: their window runs while the bulk is delivered.
    let window_end_micros = propose(feed, world, cast, allocs, &plan)?;
    let pending = settle(feed, world, cast, allocs, &plan, &mut left, &mut counts)?;

    co_sign(
        feed,
        world,
        cast,
        (allocs, &plan),
        first_expiry,
        &mut counts,
    )?;
    let open = left
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (i, *n))
        .collect();
    println!(
        "lessons: {} co-signed, {} proposed and confirmed, {} disputed ({} upheld, {} rejected), {} left to their window",
        counts.consumed,
        counts.confirmed,
        counts.upheld + counts.rejected,
        counts.upheld,
        counts.rejected,
        pending.len()
    );
    Ok(Delivered {
        counts,
        pending,
        window_end_micros,
        open,
        expires_at_micros,
    })
}

/// The institutions propose the lessons the students will confirm or dispute; returns
/// when the last of their confirmation windows ends (ledger time, µs).
fn propose(
    feed: &mut Feed,
    world: &World,
    cast: &Cast,
    allocs: &[Alloc],
    plan: &[Planned],
) -> Result<u64, DemoError> {
    for p in plan.iter().filter(|p| p.follow.is_some()) {
        feed.push(
            &json!({"kind": "lesson_proposed", "id": format!("lesson_proposed.{}", p.lesson),
                    "lesson": p.lesson, "allocation": allocs[p.alloc].id}),
            vec![donor_of(cast, &allocs[p.alloc])?],
            Expect::Accepted,
        )?;
    }
    feed.flush()?;
    Ok(match feed.last_index() {
        Some(index) => feed
            .transport()
            .time_of(index)?
            .saturating_add(CONFIRMATION_WINDOW_DAYS * world.params().day_micros),
        None => 0,
    })
}

/// The bulk of the lessons, co-signed by student and institution, each before its
/// allocation's first expiry (`first_expiry`, wall clock µs).
fn co_sign(
    feed: &mut Feed,
    world: &World,
    cast: &Cast,
    (allocs, plan): (&[Alloc], &[Planned]),
    first_expiry: u64,
    counts: &mut Counts,
) -> Result<(), DemoError> {
    let bulk: Vec<&Planned> = plan.iter().filter(|p| p.follow.is_none()).collect();
    feed.progress("co-signed lessons", bulk.len() as u64);
    for p in bulk {
        if now_micros().saturating_add(EXPIRY_MARGIN_MICROS) >= first_expiry {
            return Err(DemoError::Setup(format!(
                "the allocations expire before every lesson is delivered: a day of {} s is \
                 too short for this machine at this scale",
                world.params().day_micros / 1_000_000
            )));
        }
        let a = &allocs[p.alloc];
        feed.push(
            &json!({"kind": "lesson_consumed", "id": format!("lesson_consumed.{}", p.lesson),
                    "lesson": p.lesson, "allocation": a.id}),
            vec![world.key(&World::student(a.claim))?, donor_of(cast, a)?],
            Expect::Accepted,
        )?;
        counts.consumed += 1;
    }
    feed.flush()?;
    feed.finish_progress();
    Ok(())
}

/// The operator resolves the disputes `(dispute, upheld, allocation)`: an upheld one
/// gives its lesson back to the allocation.
fn resolve(
    feed: &mut Feed,
    cast: &Cast,
    disputes: Vec<(String, bool, usize)>,
    left: &mut [u64],
    counts: &mut Counts,
) -> Result<(), DemoError> {
    for (dispute, upheld, alloc) in disputes {
        let (outcome, reason) = if upheld {
            // "upheld → the lesson is void and its value returns (to the allocation…)"
            left[alloc] += 1;
            counts.upheld += 1;
            ("upheld", "delivery_not_proven")
        } else {
            counts.rejected += 1;
            ("rejected", "delivery_proven")
        };
        feed.push(
            &json!({"kind": "dispute_resolved", "id": format!("dispute_resolved.{dispute}"),
                    "dispute": dispute, "outcome": outcome, "reason": reason}),
            operator(cast),
            Expect::Accepted,
        )?;
    }
    Ok(())
}

pub(super) fn operator(cast: &Cast) -> Vec<Arc<NoteSigner>> {
    vec![cast.operator.clone()]
}

pub(super) fn donor_of(cast: &Cast, a: &Alloc) -> Result<Arc<NoteSigner>, DemoError> {
    cast.donors
        .get(a.donor)
        .cloned()
        .ok_or_else(|| DemoError::Setup(format!("no donor {}", a.donor)))
}

/// The earliest and the latest expiry of the allocations, as the server computed
/// them (`GET /v1/allocations/{id}`; a run's allocations are recorded in log order).
fn expiries(feed: &Feed, allocs: &[Alloc]) -> Result<(u64, u64), DemoError> {
    let (Some(first), Some(last)) = (allocs.first(), allocs.last()) else {
        return Ok((u64::MAX, 0));
    };
    let mut at = [0u64; 2];
    for (slot, a) in at.iter_mut().zip([first, last]) {
        *slot = feed
            .transport()
            .allocation(&a.id)?
            .ok_or_else(|| DemoError::check(format!("allocation {}", a.id), "served", "404"))?
            .expires_at_micros;
    }
    Ok((at[0].min(at[1]), at[0].max(at[1])))
}

/// Some students decline their match ("allocation_declined: the student"); what was
/// reserved returns to the pool.
fn decline(
    feed: &mut Feed,
    world: &World,
    allocs: &[Alloc],
    counts: &mut Counts,
) -> Result<Vec<bool>, DemoError> {
    let mut rng = world.rng("declines");
    let before = feed.transport().pool()?;
    let mut declined = vec![false; allocs.len()];
    for (i, a) in allocs.iter().enumerate() {
        if i == 0 || rng.gen_bool(0.04) {
            declined[i] = true;
            counts.declined += 1;
            feed.push(
                &json!({"kind": "allocation_declined", "id": format!("allocation_declined.{}", a.id),
                        "allocation": a.id}),
                vec![world.key(&World::student(a.claim))?],
                Expect::Accepted,
            )?;
        }
    }
    feed.flush()?;
    let after = feed.transport().pool()?;
    println!(
        "{} allocations declined by their students: the pool's available value went from {} to {} yuan",
        counts.declined,
        yuan(before.available.0),
        yuan(after.available.0)
    );
    Ok(declined)
}

/// The lessons taught on every allocation not declined (seeded): between half and all
/// of its lessons (capped per scale), 85% co-signed at once.
fn plan(world: &World, allocs: &[Alloc], declined: &[bool]) -> Vec<Planned> {
    let mut rng = world.rng("lessons");
    let cap = world.params().lessons_per_allocation_max;
    let mut forced = FORCED.iter();
    let mut out = Vec::new();
    for (i, a) in allocs.iter().enumerate() {
        if declined.get(i).copied().unwrap_or(true) || a.lessons == 0 {
            continue;
        }
        let most = cap.map_or(a.lessons, |c| a.lessons.min(c));
        let n = rng.gen_range(most.div_ceil(2).max(1)..=most);
        for j in 0..n {
            let r: f64 = rng.gen();
            let follow = if r < 0.85 {
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
            out.push(Planned {
                alloc: i,
                lesson: format!("l-{i:07}-{j:02}"),
                follow,
            });
        }
    }
    out
}

/// The proposed lessons settled at once: confirmed, or disputed then resolved; the
/// rest left to their window (the operator's early attempt to deem one is refused).
fn settle(
    feed: &mut Feed,
    world: &World,
    cast: &Cast,
    allocs: &[Alloc],
    plan: &[Planned],
    left: &mut [u64],
    counts: &mut Counts,
) -> Result<Vec<PendingLesson>, DemoError> {
    let mut pending = Vec::new();
    let mut disputes = Vec::new();
    let mut first_confirmed = None;
    for (n, p) in plan.iter().enumerate() {
        let Some(follow) = p.follow else { continue };
        let student = || world.key(&World::student(allocs[p.alloc].claim));
        match follow {
            Follow::Confirm => {
                counts.confirmed += 1;
                first_confirmed.get_or_insert(p);
                confirm(feed, world, allocs, p, Expect::Accepted)?;
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
                let dispute = format!("d-{}", &p.lesson[2..]);
                feed.push(
                    &json!({"kind": "lesson_disputed", "id": format!("lesson_disputed.{dispute}"),
                            "dispute": dispute, "lesson": p.lesson,
                            "reason": "not_attended"}),
                    vec![by],
                    Expect::Accepted,
                )?;
                disputes.push((dispute, upheld, p.alloc));
            }
            Follow::Pending => {
                if (pending.len() as u64) < DEEMED_ATTEMPTS_MAX {
                    feed.push(
                        &json!({"kind": "lesson_deemed_confirmed",
                                "id": format!("lesson_deemed_confirmed.{}", p.lesson), "lesson": p.lesson}),
                        operator(cast),
                        Expect::Refused("window_not_elapsed"),
                    )?;
                }
                pending.push(PendingLesson {
                    lesson: p.lesson.clone(),
                });
            }
        }
    }
    resolve(feed, cast, disputes, left, counts)?;
    // "Submitting the same entry twice is answered with the first result."
    if let Some(p) = first_confirmed {
        confirm(feed, world, allocs, p, Expect::Exists)?;
    }
    feed.flush()?;
    Ok(pending)
}

/// The student confirms the proposed lesson `p`.
fn confirm(
    feed: &mut Feed,
    world: &World,
    allocs: &[Alloc],
    p: &Planned,
    expect: Expect,
) -> Result<(), DemoError> {
    feed.push(
        &json!({"kind": "lesson_confirmed", "id": format!("lesson_confirmed.{}", p.lesson),
                "lesson": p.lesson}),
        vec![world.key(&World::student(allocs[p.alloc].claim))?],
        expect,
    )
}
