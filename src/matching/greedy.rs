//! Steps 5 and 7: the greedy — the fill after rounding, and the baseline from scratch.

use super::classes::{apply, Problem, State};
use super::error::MatchError;
use super::rounding::{passes, take};

/// The greedy: claims in claim order, each taking from its class's pledges dearest first,
/// as much as the seat, the offer and its value allow; a capped pass first if the policy
/// has one. Exhausted pledges are dropped from each class's list as they are met.
pub(super) fn greedy(problem: &Problem<'_>, state: &mut State) -> Result<(), MatchError> {
    let mut lists: Vec<Vec<u32>> = problem
        .classes
        .iter()
        .map(|c| c.pledges.iter().map(|&(j, _)| j).collect())
        .collect();
    let min_value: Vec<u64> = lists
        .iter()
        .map(|l| {
            l.iter()
                .map(|&j| problem.value[j as usize])
                .min()
                .unwrap_or(u64::MAX)
        })
        .collect();
    for &capped in passes(problem) {
        for c in 0..problem.claims.len() {
            let k = problem.class_of[c] as usize;
            if state.unreserved[c] < min_value[k] {
                continue;
            }
            let list = &mut lists[k];
            let mut w = 0;
            let mut r = 0;
            while r < list.len() {
                let j = list[r];
                r += 1;
                let offer = state.available[j as usize];
                if offer == 0 {
                    continue; // dropped: availability never grows back
                }
                list[w] = j;
                w += 1;
                let u = state.unreserved[c];
                if u < min_value[k] {
                    break;
                }
                let held = &state.held[c];
                let spent = problem.claims[c].unreserved_fen.0 - u;
                let h = held.iter().find(|x| x.0 == j).map_or(0, |x| u64::from(x.1));
                let x = take(problem, j as usize, offer, u, spent, h, capped);
                if x > 0 {
                    apply(problem, state, c as u32, j, x)?;
                }
            }
            // Keep the unvisited tail.
            list.copy_within(r.., w);
            let len = w + (list.len() - r);
            list.truncate(len);
        }
    }
    Ok(())
}
