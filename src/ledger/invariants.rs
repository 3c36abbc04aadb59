//! The balance identities of the MISSION, checkable on the objects one entry wrote
//! ([`check_changes`], cheap, run by [`decide`](super::decide) on every entry in release
//! builds: a violation refuses the entry as `invariant_violated`) or on a whole state
//! ([`check_invariants`], for tests and audits):
//! - per claim: `value = unreserved + reserved + consumed` (held by the type
//!   [`ClaimValue`](super::conservation::ClaimValue)) and `value = lessons × price`;
//! - per pledge: `capacity = available + reserved + delivered + withdrawn` (held by
//!   [`PledgeCapacity`](super::conservation::PledgeCapacity)) and
//!   `capacity = seats × lessons_per_seat`;
//! - per allocation: `lessons = consumed + pending + remaining + released` (held by
//!   [`AllocationLessons`](super::conservation::AllocationLessons)), and
//!   `remaining = 0` once it has ended;
//! - across objects: the pool totals equal the sums over claims and approved pledges, each
//!   institution's liability equals the sums over its claims, and each allocation's
//!   consumed and pending counts equal the count of its final and pending/disputed
//!   lessons. Nothing is below zero because every amount is unsigned and every
//!   subtraction checked.
//!
//! ```
//! use lesson_ledger::ledger::{invariants::check_invariants, MemoryState};
//! assert_eq!(check_invariants(&MemoryState::new()), Ok(()));
//! ```

use std::collections::BTreeMap;

use super::objects::{Allocation, AllocationStatus, Claim, LessonStatus, Liability, Pledge, Pool};
use super::state::{Changes, MemoryState, Value};
use super::units::{Fen, Lessons};

fn claim_ok(c: &Claim) -> Result<(), String> {
    // `value = unreserved + reserved + consumed` is held by `ClaimValue` itself.
    if c.price_per_lesson.0.checked_mul(c.lessons.0) != Some(c.value.total().0) {
        return Err(format!("claim {}: value != lessons × price", c.claim));
    }
    Ok(())
}

fn pledge_ok(p: &Pledge) -> Result<(), String> {
    // `capacity = available + reserved + delivered + withdrawn` is held by `PledgeCapacity`.
    if p.seats.checked_mul(p.lessons_per_seat) != Some(p.capacity.total().0) {
        return Err(format!(
            "pledge {}: capacity != seats × lessons_per_seat",
            p.pledge
        ));
    }
    Ok(())
}

fn allocation_ok(a: &Allocation) -> Result<(), String> {
    // `lessons = consumed + pending + remaining + released` is held by `AllocationLessons`.
    if a.status != AllocationStatus::Active && a.lessons.remaining().0 != 0 {
        return Err(format!(
            "allocation {}: ended with lessons remaining",
            a.allocation
        ));
    }
    // The open list is what a family's client relies on to see every proposal.
    if a.open_lessons.len() as u64 != a.lessons.pending().0 {
        return Err(format!(
            "allocation {}: {} open lessons listed, {} pending",
            a.allocation,
            a.open_lessons.len(),
            a.lessons.pending().0
        ));
    }
    Ok(())
}

/// Check the per-object identities of the objects in `changes`.
///
/// # Errors
/// A description of the first identity broken.
pub fn check_changes(changes: &Changes) -> Result<(), String> {
    for (_, v) in changes {
        match v {
            Value::Claim(c) => claim_ok(c)?,
            Value::Pledge(p) => pledge_ok(p)?,
            Value::Allocation(a) => allocation_ok(a)?,
            _ => {}
        }
    }
    Ok(())
}

/// Each claim lists exactly its open allocations, oldest first.
fn open_allocations_listed(
    claim_lists: &BTreeMap<String, Vec<String>>,
    allocs: &BTreeMap<String, Allocation>,
) -> Result<(), String> {
    let mut open: BTreeMap<&str, Vec<&Allocation>> = BTreeMap::new();
    for a in allocs.values().filter(|a| a.is_open()) {
        open.entry(a.claim.as_str()).or_default().push(a);
    }
    for (claim, listed) in claim_lists {
        let mut expected: Vec<&Allocation> = open.remove(claim.as_str()).unwrap_or_default();
        // Oldest first: the first entry of each is the one that made it.
        expected.sort_by_key(|a| a.entries.first().copied());
        let expected: Vec<&str> = expected.iter().map(|a| a.allocation.as_str()).collect();
        if *listed != expected {
            return Err(format!(
                "claim {claim} lists allocations {listed:?}, its open ones are {expected:?}"
            ));
        }
    }
    match open.keys().next() {
        Some(claim) => Err(format!("open allocations of unknown claim {claim}")),
        None => Ok(()),
    }
}

/// Check every identity over a whole state.
///
/// # Errors
/// A description of the first identity broken.
pub fn check_invariants(state: &MemoryState) -> Result<(), String> {
    let mut sums = Sums::default();
    for (_, v) in state.iter() {
        sums.add(v)?;
    }
    let Sums {
        expect,
        pool,
        books,
        made_good,
        liabilities,
        allocs,
        claim_lists,
        lesson_counts,
    } = sums;
    if let Some(pool) = pool {
        if pool != expect {
            return Err(format!(
                "pool totals {pool:?} != sums over objects {expect:?}"
            ));
        }
    } else if !state.is_empty() {
        return Err("no pool totals".into());
    }
    for l in liabilities {
        let (claims, lessons, owed) = books
            .get(l.institution.as_str())
            .copied()
            .unwrap_or_default();
        let good = made_good
            .get(l.institution.as_str())
            .copied()
            .unwrap_or_default();
        if (l.claims, l.lessons_owed, l.owed, l.made_good)
            != (claims, Lessons(lessons), Fen(owed), Fen(good))
        {
            return Err(format!(
                "liability of {} != sums over its claims",
                l.institution
            ));
        }
    }
    open_allocations_listed(&claim_lists, &allocs)?;
    for (id, a) in allocs {
        let (fin, pend) = lesson_counts.get(&id).copied().unwrap_or_default();
        if (a.lessons.consumed().0, a.lessons.pending().0) != (fin, pend) {
            return Err(format!("allocation {id}: consumed/pending != its lessons"));
        }
    }
    Ok(())
}

/// What [`check_invariants`] sums over the objects, to compare with what is stored.
#[derive(Default)]
struct Sums {
    /// The pool totals the objects add up to.
    expect: Pool,
    /// The pool totals stored.
    pool: Option<Pool>,
    /// Per institution: claims, lessons, owed.
    books: BTreeMap<String, (u64, u64, u64)>,
    made_good: BTreeMap<String, u64>,
    liabilities: Vec<Liability>,
    allocs: BTreeMap<String, Allocation>,
    claim_lists: BTreeMap<String, Vec<String>>,
    /// Per allocation: final lessons, pending (or disputed) ones.
    lesson_counts: BTreeMap<String, (u64, u64)>,
}

fn add(a: &mut Fen, b: Fen) -> Result<(), String> {
    *a = a.checked_add(b, "sum").map_err(|e| e.to_string())?;
    Ok(())
}

impl Sums {
    /// One object, checked alone and added to the sums.
    fn add(&mut self, v: &Value) -> Result<(), String> {
        match v {
            Value::Claim(c) => self.add_claim(c)?,
            Value::Pledge(p) => self.add_pledge(p)?,
            Value::Allocation(a) => {
                allocation_ok(a)?;
                self.allocs.insert(a.allocation.to_string(), (**a).clone());
            }
            Value::Lesson(l) => {
                let c = self
                    .lesson_counts
                    .entry(l.allocation.to_string())
                    .or_default();
                match l.status {
                    LessonStatus::Final => c.0 += 1,
                    LessonStatus::Pending | LessonStatus::Disputed => c.1 += 1,
                    LessonStatus::Void => {}
                }
            }
            Value::Pool(p) => self.pool = Some((**p).clone()),
            Value::Liability(l) => self.liabilities.push((**l).clone()),
            _ => {}
        }
        Ok(())
    }

    fn add_claim(&mut self, c: &Claim) -> Result<(), String> {
        claim_ok(c)?;
        self.claim_lists.insert(
            c.claim.to_string(),
            c.allocations.iter().map(ToString::to_string).collect(),
        );
        let expect = &mut self.expect;
        expect.claims += 1;
        add(&mut expect.claims_value, c.value.total())?;
        add(&mut expect.claims_unreserved, c.value.unreserved())?;
        add(&mut expect.claims_reserved, c.value.reserved())?;
        add(&mut expect.claims_consumed, c.value.consumed())?;
        let b = self.books.entry(c.institution.to_string()).or_default();
        b.0 += 1;
        b.1 += c.lessons.0;
        b.2 += c.value.total().0;
        *self.made_good.entry(c.institution.to_string()).or_default() += c.value.consumed().0;
        Ok(())
    }

    fn add_pledge(&mut self, p: &Pledge) -> Result<(), String> {
        pledge_ok(p)?;
        if p.approved_at.is_some() {
            let v = p.value_per_lesson.0;
            let expect = &mut self.expect;
            expect.pledges_approved += 1;
            let c = &p.capacity;
            add(&mut expect.pledged, Fen(c.total().0 * v))?;
            add(&mut expect.available, Fen(c.available().0 * v))?;
            add(&mut expect.reserved, Fen(c.reserved().0 * v))?;
            add(&mut expect.delivered, Fen(c.delivered().0 * v))?;
            add(&mut expect.withdrawn, Fen(c.withdrawn().0 * v))?;
        }
        Ok(())
    }
}
