//! Step 6: the exchange pass — a lesson stranded by whole-lesson rounding is traded for
//! more value of another compatible pledge.

use super::classes::{apply, Problem, State};
use super::error::MatchError;

/// Most exchanges tried per claim: each strictly raises the claim's value, so a few
/// suffice to use up what whole lessons left; the bound keeps the pass linear.
pub(super) const EXCHANGES_PER_CLAIM_MAX: usize = 4;

/// The exchange pass: a claim whose unreserved value buys no lesson still on offer gives
/// back one lesson of a pledge it holds when the value freed (that lesson and what was
/// left) buys strictly more value of another compatible pledge (for example, one lesson
/// of 600 yuan and 400 left become two of 500). Each exchange raises the value matched.
/// Returns whether any lesson was given back.
pub(super) fn exchange(problem: &Problem<'_>, state: &mut State) -> Result<bool, MatchError> {
    // Pledges with lessons left, per class, in the class's pledge order.
    let live: Vec<Vec<u32>> = problem
        .classes
        .iter()
        .map(|c| {
            c.pledges
                .iter()
                .map(|&(j, _)| j)
                .filter(|&j| state.available[j as usize] > 0)
                .collect()
        })
        .collect();
    let mut gave_back = false;
    for c in 0..problem.claims.len() {
        let list = &live[problem.class_of[c] as usize];
        if list.is_empty() {
            continue;
        }
        for _ in 0..EXCHANGES_PER_CLAIM_MAX {
            let left = state.unreserved[c];
            if left == 0 {
                break;
            }
            // The best exchange: (gain, give-back pledge, take pledge, lessons taken).
            let mut best: Option<(u64, u32, u32, u64)> = None;
            for &(j, _) in &state.held[c] {
                let vj = problem.value[j as usize];
                let freed = left + vj;
                for &j2 in list {
                    if j2 == j {
                        continue;
                    }
                    let offer = state.available[j2 as usize];
                    if offer == 0 {
                        continue;
                    }
                    let h = state.held[c]
                        .iter()
                        .find(|x| x.0 == j2)
                        .map_or(0, |x| u64::from(x.1));
                    let v2 = problem.value[j2 as usize];
                    let x = problem.seat[j2 as usize]
                        .saturating_sub(h)
                        .min(offer)
                        .min(freed / v2);
                    let gain = (x * v2).saturating_sub(vj);
                    if gain > 0 && best.map_or(true, |b| gain > b.0) {
                        best = Some((gain, j, j2, x));
                    }
                }
            }
            let Some((_, j, j2, x)) = best else { break };
            give_back(problem, state, c, j)?;
            apply(problem, state, c as u32, j2, x)?;
            gave_back = true;
        }
    }
    Ok(gave_back)
}

/// Return one lesson of pledge `j` held by claim `c`.
pub(super) fn give_back(
    problem: &Problem<'_>,
    state: &mut State,
    c: usize,
    j: u32,
) -> Result<(), MatchError> {
    let held = &mut state.held[c];
    let Some(pos) = held.iter().position(|x| x.0 == j) else {
        return Err(MatchError::Overflow { what: "give back" });
    };
    held[pos].1 -= 1;
    if held[pos].1 == 0 {
        held.remove(pos);
    }
    let v = problem.value[j as usize];
    state.unreserved[c] = state.unreserved[c]
        .checked_add(v)
        .ok_or(MatchError::Overflow { what: "give back" })?;
    state.available[j as usize] = state.available[j as usize]
        .checked_add(1)
        .ok_or(MatchError::Overflow { what: "give back" })?;
    Ok(())
}
