//! Step 4c: the ledger's clock. With the demo's short day (the genesis `day_micros`),
//! the national 15-day confirmation window and the allocations' validity pass in wall
//! time, and what depends on them is recorded once they have passed in *ledger* time —
//! the time the server stamps on each entry, not the demo's:
//! - every lesson left pending is `lesson_deemed_confirmed` by the operator once its
//!   window is over ("proposal time + window, and it was not disputed");
//! - once the allocations are past their validity, a late lesson is refused
//!   (`allocation_past_expiry`) and the operator records `allocation_expired` for each
//!   allocation with lessons left, which go back to the pool.
//!
//! The two deadlines are taken in the order they fall. Each is over only once a consumer
//! association has attested a time past it (`time_attested`, `schemas/README.md` §12):
//! after each wait, the demo's association attests the time on its own clock, and only
//! then does the operator act.
//!
//! ```no_run
//! # use lesson_ledger::demo::{clock, feed::Feed, lessons, story, world::World, HttpLedger, Scale};
//! # let world = World::new(1, Scale::Tiny, 0);
//! # let created = lesson_ledger::demo::create::ledger(std::path::Path::new("/tmp/l"), &world)?;
//! # let cast = story::Cast::new(&world, created.operator)?;
//! # let mut feed = Feed::new(HttpLedger::new("http://127.0.0.1:8080", "operator+1+A")?, "l.example/a", 1);
//! # let allocations = vec![];
//! let delivered = lessons::run(&mut feed, &world, &cast, &allocations)?;
//! let counts = clock::run(&mut feed, &world, &cast, &allocations, delivered)?;
//! println!("{} deemed confirmed, {} expired", counts.deemed, counts.expired);
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::feed::{Expect, Feed};
use super::lessons::{donor_of, operator, Counts, Delivered, PendingLesson};
use super::matching::Alloc;
use super::story::{yuan, Cast};
use super::world::{now_micros, World};
use super::DemoError;
use crate::ledger::defaults::CONFIRMATION_WINDOW_DAYS;

/// Waited beyond a deadline before acting on it: the server stamps its own clock, read
/// a little after the demo's.
const MARGIN_MICROS: u64 = 100_000;

/// Step 4c: deem the pending lessons and expire the allocations, each once its time
/// has come; the counts of the whole of step 4.
///
/// # Errors
/// An unexpected answer (an entry refused because the window had not passed after
/// all); faults.
pub fn run(
    feed: &mut Feed,
    world: &World,
    cast: &Cast,
    allocs: &[Alloc],
    delivered: Delivered,
) -> Result<Counts, DemoError> {
    let Delivered {
        mut counts,
        pending,
        window_end_micros,
        open,
        expires_at_micros,
    } = delivered;
    let deem = |feed: &mut Feed, counts: &mut Counts| {
        deem_pending(feed, world, cast, &pending, window_end_micros, counts)
    };
    let expire = |feed: &mut Feed, counts: &mut Counts| {
        expire_open(
            feed,
            world,
            cast,
            (allocs, &open),
            expires_at_micros,
            counts,
        )
    };
    if window_end_micros <= expires_at_micros {
        deem(feed, &mut counts)?;
        expire(feed, &mut counts)?;
    } else {
        expire(feed, &mut counts)?;
        deem(feed, &mut counts)?;
    }
    Ok(counts)
}

/// Once the last confirmation window has passed (and an association attested it), the
/// operator deems every pending lesson confirmed.
fn deem_pending(
    feed: &mut Feed,
    world: &World,
    cast: &Cast,
    pending: &[PendingLesson],
    window_end_micros: u64,
    counts: &mut Counts,
) -> Result<(), DemoError> {
    let day_secs = world.params().day_micros as f64 / 1e6;
    if pending.is_empty() {
        return Ok(());
    }
    wait_until(window_end_micros, "confirmation window");
    attest(feed, cast, "window")?;
    for p in pending {
        feed.push(
            &json!({"kind": "lesson_deemed_confirmed",
                    "id": format!("lesson_deemed_confirmed.{}", p.lesson), "lesson": p.lesson}),
            operator(cast),
            Expect::Accepted,
        )?;
    }
    feed.flush()?;
    counts.deemed = pending.len() as u64;
    println!(
        "{} lessons deemed confirmed once their {}-day window ({:.0} s) had passed in ledger time",
        counts.deemed,
        CONFIRMATION_WINDOW_DAYS,
        CONFIRMATION_WINDOW_DAYS as f64 * day_secs
    );
    Ok(())
}

/// Once the last allocation's validity is over (and an association attested it): a
/// lesson proposed too late is refused, then the operator expires every open
/// allocation (`open`: indices into `allocs`, with their lessons left).
fn expire_open(
    feed: &mut Feed,
    world: &World,
    cast: &Cast,
    (allocs, open): (&[Alloc], &[(usize, u64)]),
    expires_at_micros: u64,
    counts: &mut Counts,
) -> Result<(), DemoError> {
    let day_secs = world.params().day_micros as f64 / 1e6;
    if open.is_empty() {
        return Ok(());
    }
    wait_until(expires_at_micros, "allocations' validity");
    attest(feed, cast, "validity")?;
    let before = feed.transport().pool()?;
    // A donor teaching after the allocation's end is refused.
    if let Some((i, _)) = open.first() {
        let a = &allocs[*i];
        let late = format!("l-{i:07}-late");
        feed.push(
            &json!({"kind": "lesson_proposed", "id": format!("lesson_proposed.{late}"),
                    "lesson": late, "allocation": a.id}),
            vec![donor_of(cast, a)?],
            Expect::Refused("allocation_past_expiry"),
        )?;
    }
    feed.progress("expiring allocations", open.len() as u64);
    for (i, _) in open {
        let a = &allocs[*i];
        feed.push(
            &json!({"kind": "allocation_expired", "id": format!("allocation_expired.{}", a.id),
                    "allocation": a.id}),
            operator(cast),
            Expect::Accepted,
        )?;
    }
    feed.flush()?;
    feed.finish_progress();
    counts.expired = open.len() as u64;
    let after = feed.transport().pool()?;
    let lessons: u64 = open.iter().map(|(_, n)| n).sum();
    println!(
        "{} allocations expired after {} days ({:.0} s) with {} lessons left: the pool's available value went from {} to {} yuan",
        counts.expired,
        world.params().allocation_validity_days,
        world.params().allocation_validity_days as f64 * day_secs,
        lessons,
        yuan(before.available.0),
        yuan(after.available.0)
    );
    Ok(())
}

/// The first association attests the time on its clock (the demo's wall clock, which
/// the server's ledger time is read after, so the attestation is never ahead of it),
/// and the entry is committed before anything that depends on it.
///
/// # Errors
/// No association; the attestation refused; faults.
fn attest(feed: &mut Feed, cast: &Cast, deadline: &str) -> Result<(), DemoError> {
    let association = cast
        .associations
        .first()
        .ok_or_else(|| DemoError::Setup("no consumer association to attest time".into()))?;
    let at = now_micros();
    feed.push(
        &json!({"kind": "time_attested", "id": format!("time_attested.{}.{deadline}", association.name()),
                "at_micros": at}),
        vec![association.clone()],
        Expect::Accepted,
    )?;
    feed.flush()
}

/// Sleeps until the wall clock passes `deadline` (µs), with a bar of the seconds left.
fn wait_until(deadline: u64, what: &str) {
    let target = deadline.saturating_add(MARGIN_MICROS);
    let now = now_micros();
    if now >= target {
        return;
    }
    let bar = ProgressBar::new((target - now).div_ceil(1_000_000));
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} {bar:40} {pos}/{len} s")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("waiting: {what}"));
    let start = now;
    loop {
        let now = now_micros();
        if now >= target {
            break;
        }
        bar.set_position((now - start) / 1_000_000);
        std::thread::sleep(Duration::from_micros((target - now).min(200_000)));
    }
    bar.finish_and_clear();
}
