//! Step 4: rounding — a class's flow to a pledge becomes whole lessons, handed out to
//! the class's claims in claim order, capped pass first; and the per-claim take that the
//! greedy shares.

use super::classes::{Problem, State};
use super::error::MatchError;

/// How many lessons of pledge `j` a claim may take now: its seat's room, the lessons on
/// offer, and what its value allows (within the first-pass budget if `capped`).
pub(super) fn take(
    problem: &Problem<'_>,
    j: usize,
    offer: u64,
    unreserved: u64,
    spent: u64,
    held_of_j: u64,
    capped: bool,
) -> u64 {
    let v = problem.value[j];
    let room = problem.seat[j].saturating_sub(held_of_j).min(offer);
    let budget = match (capped, problem.cap) {
        (true, Some(cap)) => {
            // The first lesson is always allowed, even when dearer than the cap.
            let allowed = if spent == 0 { cap.max(v) } else { cap };
            unreserved.min(allowed.saturating_sub(spent))
        }
        _ => unreserved,
    };
    room.min(budget / v)
}

pub(super) fn passes(problem: &Problem<'_>) -> &'static [bool] {
    if problem.cap.is_some() {
        &[true, false]
    } else {
        &[false]
    }
}

/// Hand out a class's `targets` (pledge, lessons; in the class's pledge order) to its
/// claims in claim order: capped pass, then full pass.
pub(super) fn hand_out(
    problem: &Problem<'_>,
    state: &State,
    k: u32,
    mut targets: Vec<(u32, u64)>,
    out: &mut Vec<(u32, u32, u32)>,
) -> Result<(), MatchError> {
    let class = &problem.classes[k as usize];
    let n = class.claims.len();
    let mut unreserved: Vec<u64> = class
        .claims
        .iter()
        .map(|&i| state.unreserved[i as usize])
        .collect();
    let mut spent: Vec<u64> = class
        .claims
        .iter()
        .zip(&unreserved)
        .map(|(&i, &u)| problem.claims[i as usize].unreserved_fen.0 - u)
        .collect();
    let mut held: Vec<Vec<(u32, u64)>> = class
        .claims
        .iter()
        .map(|&i| {
            state.held[i as usize]
                .iter()
                .map(|&(j, x)| (j, u64::from(x)))
                .collect()
        })
        .collect();
    let mut given: Vec<(u32, u32, u32)> = Vec::new();
    for &capped in passes(problem) {
        for pos in 0..n {
            for t in targets.iter_mut() {
                if t.1 == 0 {
                    continue;
                }
                let j = t.0 as usize;
                let h = held[pos].iter().find(|x| x.0 == t.0).map_or(0, |x| x.1);
                let x = take(problem, j, t.1, unreserved[pos], spent[pos], h, capped);
                if x == 0 {
                    continue;
                }
                let v = problem.value[j] * x;
                unreserved[pos] -= v;
                spent[pos] += v;
                t.1 -= x;
                match held[pos].iter_mut().find(|x| x.0 == t.0) {
                    Some(e) => e.1 += x,
                    None => held[pos].push((t.0, x)),
                }
                let x = u32::try_from(x).map_err(|_| MatchError::Overflow { what: "lessons" })?;
                given.push((class.claims[pos], t.0, x));
            }
        }
    }
    out.append(&mut given);
    Ok(())
}
