//! Step 2: the value relaxation, a max flow source → class → pledge → sink per connected
//! component, solved with Dinic in fairness phases (capped in-district, then online edges,
//! then full capacities); its first-round optimum is the bound.

use std::collections::HashMap;

use super::classes::{Problem, State, RANK_ONLINE};
use super::error::MatchError;
use super::flow::FlowGraph;
use super::rounding::hand_out;

/// Connected components of the class–pledge graph, as lists of classes (in class order);
/// classes with no compatible pledge are left out. Largest first, for load balance.
pub(super) fn components(problem: &Problem<'_>) -> Vec<Vec<u32>> {
    let nc = problem.classes.len();
    let mut parent: Vec<u32> = (0..(nc + problem.pledges.len()) as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let up = parent[parent[x as usize] as usize];
            parent[x as usize] = up;
            x = up;
        }
        x
    }
    for (k, class) in problem.classes.iter().enumerate() {
        for &(j, _) in &class.pledges {
            let a = find(&mut parent, k as u32);
            let b = find(&mut parent, (nc as u32) + j);
            if a != b {
                parent[a.max(b) as usize] = a.min(b);
            }
        }
    }
    let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
    for (k, class) in problem.classes.iter().enumerate() {
        if !class.pledges.is_empty() {
            let r = find(&mut parent, k as u32);
            groups.entry(r).or_default().push(k as u32);
        }
    }
    let mut out: Vec<Vec<u32>> = groups.into_values().collect();
    // Deterministic order: size descending, then first class.
    out.sort_unstable_by(|a, b| (b.len(), a[0]).cmp(&(a.len(), b[0])));
    out
}

pub(super) struct Solved {
    pub(super) flow: u64,
    pub(super) first_pass: u64,
    pub(super) edges: u64,
    /// `(claim, pledge, lessons)` from rounding inside classes.
    pub(super) allocations: Vec<(u32, u32, u32)>,
}

/// Σ over `us` (sorted ascending, with prefix sums `pre`) of `min(u, limit)` for `u >= lo`.
pub(super) fn sum_min(us: &[u64], pre: &[u64], lo: u64, limit: u64) -> u64 {
    let start = us.partition_point(|&u| u < lo);
    let mid = us.partition_point(|&u| u <= limit).max(start);
    // us[start..mid] are <= limit: their sum; us[mid..] count `limit` each.
    let below = pre[mid] - pre[start];
    let above = (us.len() - mid) as u64;
    below.saturating_add(above.saturating_mul(limit))
}

/// The relaxation of one component from `state`, solved in the fairness phases, and
/// its flow rounded down to whole lessons handed out inside each class.
pub(super) fn solve_component(
    problem: &Problem<'_>,
    comp: &[u32],
    state: &State,
) -> Result<Solved, MatchError> {
    let mut network = Network::new(problem, comp.len());
    for (ci, &k) in comp.iter().enumerate() {
        network.add_class(problem, state, ci, k)?;
    }
    let edges = network.close(problem, state)?;
    let nodes = network.base as usize + network.pledges.len();
    let mut g = FlowGraph::new(nodes, &edges);
    drop(edges);
    let (total, first_pass) = phases(&mut g, &network)?;

    // Rounding: floor(flow / v) lessons per class and pledge, handed out in the class.
    let mut allocations = Vec::new();
    let mut n_edges = 0u64;
    for (ci, &k) in comp.iter().enumerate() {
        let mine = &network.class_edges[ci];
        n_edges += mine.len() as u64;
        let targets: Vec<(u32, u64)> = mine
            .iter()
            .map(|&(e, j)| (j, g.flow(e as usize) / problem.value[j as usize]))
            .filter(|&(_, n)| n > 0)
            .collect();
        hand_out(problem, state, k, targets, &mut allocations)?;
    }
    Ok(Solved {
        flow: total,
        first_pass,
        edges: n_edges,
        allocations,
    })
}

fn overflow(what: &'static str) -> MatchError {
    MatchError::Overflow { what }
}

/// Marks a pledge no edge of the component reaches yet.
const NONE: u32 = u32::MAX;

/// A component's flow network being built. Local numbering: 0 source, 1 sink, 2..
/// classes, then the pledges that some edge reaches. Edges that can carry nothing (a
/// pledge with no lesson left, no claim of the class able to buy one) are left out:
/// later rounds are then small graphs.
struct Network {
    pledge_local: Vec<u32>,
    pledges: Vec<u32>,
    base: u32,
    edges: Vec<(u32, u32, u64)>,
    /// Source edges at their first-pass capacity: (edge, full capacity).
    source_full: Vec<(usize, u64)>,
    /// Online edges start closed (the first phase is in-district only): (edge, capacity).
    online_edges: Vec<(usize, u64)>,
    /// Per class: its edges (edge index, pledge), in the class's pledge order.
    class_edges: Vec<Vec<(u32, u32)>>,
}

impl Network {
    fn new(problem: &Problem<'_>, classes: usize) -> Network {
        Network {
            pledge_local: vec![NONE; problem.pledges.len()],
            pledges: Vec::new(),
            base: 2 + classes as u32,
            edges: Vec::new(),
            source_full: Vec::with_capacity(classes),
            online_edges: Vec::new(),
            class_edges: Vec::with_capacity(classes),
        }
    }

    /// Class `k` (local `ci`): its source edge and its class → pledge edges.
    fn add_class(
        &mut self,
        problem: &Problem<'_>,
        state: &State,
        ci: usize,
        k: u32,
    ) -> Result<(), MatchError> {
        let class = &problem.classes[k as usize];
        let mut us: Vec<u64> = class
            .claims
            .iter()
            .map(|&i| state.unreserved[i as usize])
            .collect();
        us.sort_unstable();
        let mut pre = Vec::with_capacity(us.len() + 1);
        pre.push(0u64);
        for &u in &us {
            let last = *pre.last().unwrap_or(&0);
            pre.push(last.checked_add(u).ok_or(overflow("class value"))?);
        }
        let full = *pre.last().unwrap_or(&0);
        let mut mine = Vec::new();
        if full == 0 {
            self.class_edges.push(mine);
            return Ok(());
        }
        let first = first_pass_capacity(problem, state, k)?.unwrap_or(full);
        self.source_full.push((self.edges.len(), full));
        self.edges.push((0, 2 + ci as u32, first));
        for &(j, rank) in &class.pledges {
            if state.available[j as usize] == 0 {
                continue;
            }
            let v = problem.value[j as usize];
            let seat_value = v
                .checked_mul(problem.seat[j as usize])
                .ok_or(overflow("seat value"))?;
            let c = sum_min(&us, &pre, v, seat_value);
            if c == 0 {
                continue;
            }
            if self.pledge_local[j as usize] == NONE {
                self.pledge_local[j as usize] = self.pledges.len() as u32;
                self.pledges.push(j);
            }
            let local = self.base + self.pledge_local[j as usize];
            let e = u32::try_from(self.edges.len()).map_err(|_| overflow("edges"))?;
            mine.push((e, j));
            if rank == RANK_ONLINE {
                self.online_edges.push((self.edges.len(), c));
                self.edges.push((2 + ci as u32, local, 0));
            } else {
                self.edges.push((2 + ci as u32, local, c));
            }
        }
        self.class_edges.push(mine);
        Ok(())
    }

    /// The pledge → sink edges (a pledge's available value); returns every edge.
    fn close(
        &mut self,
        problem: &Problem<'_>,
        state: &State,
    ) -> Result<Vec<(u32, u32, u64)>, MatchError> {
        for (pi, &j) in self.pledges.iter().enumerate() {
            let cap = state.available[j as usize]
                .checked_mul(problem.value[j as usize])
                .ok_or(overflow("pledge value"))?;
            self.edges.push((self.base + pi as u32, 1, cap));
        }
        Ok(std::mem::take(&mut self.edges))
    }
}

/// What class `k`'s claims may still take within their first-pass share; `None` without
/// a cap.
fn first_pass_capacity(
    problem: &Problem<'_>,
    state: &State,
    k: u32,
) -> Result<Option<u64>, MatchError> {
    let Some(cap) = problem.cap else {
        return Ok(None);
    };
    problem.classes[k as usize]
        .claims
        .iter()
        .map(|&i| {
            let u = state.unreserved[i as usize];
            let spent = problem.claims[i as usize].unreserved_fen.0 - u;
            u.min(cap.saturating_sub(spent))
        })
        .try_fold(0u64, |a, b| a.checked_add(b))
        .map(Some)
        .ok_or(overflow("class value"))
}

/// The fairness phases: (a) capped, in-district only; (b) capped, with online edges;
/// (c) full capacities — augmenting paths never lower a source edge. Returns the total
/// flow and the flow after (b), the first pass.
fn phases(g: &mut FlowGraph, network: &Network) -> Result<(u64, u64), MatchError> {
    let run = |g: &mut FlowGraph, total: u64| -> Result<u64, MatchError> {
        let f = g.max_flow(0, 1).ok_or(overflow("flow"))?;
        total.checked_add(f).ok_or(overflow("flow"))
    };
    let mut total = run(g, 0)?;
    for &(e, c) in &network.online_edges {
        g.raise(e, c).ok_or(overflow("raise"))?;
    }
    total = run(g, total)?;
    let first_pass = total;
    for &(e, full) in &network.source_full {
        g.raise(e, full).ok_or(overflow("raise"))?;
    }
    total = run(g, total)?;
    Ok((total, first_pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_min_counts_only_claims_that_buy_a_lesson() {
        let us = [100, 250, 400, 1000];
        let mut pre = vec![0];
        for u in us {
            pre.push(pre.last().unwrap() + u);
        }
        // lo 200 drops 100; limit 500 caps 1000.
        assert_eq!(sum_min(&us, &pre, 200, 500), 250 + 400 + 500);
        assert_eq!(sum_min(&us, &pre, 0, u64::MAX), 1750);
        assert_eq!(sum_min(&us, &pre, 2000, 5000), 0);
        assert_eq!(sum_min(&us, &pre, 0, 50), 200);
    }
}
