//! Dinic's maximum flow on a static graph in compressed (CSR) form, integer capacities.
//!
//! Built once from an edge list; capacities may then be *raised* between runs (the
//! matcher's phases: capped first pass, then online edges, then full capacities), and each
//! run continues from the flow already found. An augmenting path from the source never
//! sends flow back into the source, so the flow on every source edge never decreases from
//! one run to the next: what a class of claims holds after the first pass it keeps.
//!
//! Algorithm: Dinic (E. A. Dinitz, 1970; see
//! <https://cp-algorithms.com/graph/dinic.html>): repeat a BFS that labels nodes with
//! their distance from the source in the residual graph, then find a blocking flow along
//! edges that go one level up, with a current-arc pointer per node. The depth-first search
//! is iterative: paths in the class graph may be long, and the stack must not overflow.
//!
//! ```
//! use lesson_ledger::matching::flow::FlowGraph;
//! // s=0, t=1, a=2: s -> a (5), a -> t (3)
//! let mut g = FlowGraph::new(3, &[(0, 2, 5), (2, 1, 3)]);
//! assert_eq!(g.max_flow(0, 1), Some(3));
//! assert_eq!(g.flow(0), 3);
//! ```

/// A flow network with residual capacities. Edge `i` of the list given to
/// [`FlowGraph::new`] is addressed by `i` in [`flow`](FlowGraph::flow) and
/// [`raise`](FlowGraph::raise).
#[derive(Debug, Clone)]
pub struct FlowGraph {
    /// `head[u]..head[u + 1]` are the arcs leaving `u`.
    head: Vec<u32>,
    to: Vec<u32>,
    /// Residual capacity of each arc.
    cap: Vec<u64>,
    /// The arc in the other direction.
    rev: Vec<u32>,
    /// Position of edge `i`'s forward arc.
    fwd: Vec<u32>,
    /// Capacity given to edge `i` so far (the flow is `given - residual`).
    given: Vec<u64>,
    level: Vec<u32>,
    next_arc: Vec<u32>,
}

const UNSEEN: u32 = u32::MAX;

impl FlowGraph {
    /// A graph of `nodes` nodes and the edges `(from, to, capacity)`. Arcs leave each
    /// node in the order the edges are listed, which is the order the search tries them.
    ///
    /// # Panics
    /// On a caller bug only: an edge naming a node `>= nodes`, or more than
    /// `u32::MAX / 2` edges. The matcher builds the list itself from validated input.
    #[must_use]
    pub fn new(nodes: usize, edges: &[(u32, u32, u64)]) -> FlowGraph {
        assert!(edges.len() < (u32::MAX / 2) as usize, "too many edges");
        assert!(nodes < UNSEEN as usize, "too many nodes");
        let mut deg = vec![0u32; nodes + 1];
        for &(u, v, _) in edges {
            deg[u as usize] += 1;
            deg[v as usize] += 1;
        }
        let mut head = vec![0u32; nodes + 1];
        for u in 0..nodes {
            head[u + 1] = head[u] + deg[u];
        }
        let arcs = head[nodes] as usize;
        let mut pos: Vec<u32> = head[..nodes].to_vec();
        let mut to = vec![0u32; arcs];
        let mut cap = vec![0u64; arcs];
        let mut rev = vec![0u32; arcs];
        let mut fwd = Vec::with_capacity(edges.len());
        let mut given = Vec::with_capacity(edges.len());
        for &(u, v, c) in edges {
            let a = pos[u as usize];
            pos[u as usize] += 1;
            let b = pos[v as usize];
            pos[v as usize] += 1;
            to[a as usize] = v;
            cap[a as usize] = c;
            rev[a as usize] = b;
            to[b as usize] = u;
            cap[b as usize] = 0;
            rev[b as usize] = a;
            fwd.push(a);
            given.push(c);
        }
        FlowGraph {
            head,
            to,
            cap,
            rev,
            fwd,
            given,
            level: vec![UNSEEN; nodes],
            next_arc: vec![0; nodes],
        }
    }

    /// The flow on edge `i`.
    #[must_use]
    pub fn flow(&self, i: usize) -> u64 {
        let a = self.fwd[i] as usize;
        // Residual never exceeds what was given: an invariant of the updates below.
        self.given[i] - self.cap[a]
    }

    /// Raise edge `i`'s capacity to `capacity` (never lower it: the flow already on the
    /// edge must stay feasible). Returns `None` if `capacity` is below the current one.
    pub fn raise(&mut self, i: usize, capacity: u64) -> Option<()> {
        let delta = capacity.checked_sub(self.given[i])?;
        let a = self.fwd[i] as usize;
        self.cap[a] = self.cap[a].checked_add(delta)?;
        self.given[i] = capacity;
        Some(())
    }

    fn bfs(&mut self, s: u32, t: u32) -> bool {
        self.level.fill(UNSEEN);
        let mut queue = std::collections::VecDeque::new();
        self.level[s as usize] = 0;
        queue.push_back(s);
        while let Some(u) = queue.pop_front() {
            let lu = self.level[u as usize];
            for a in self.head[u as usize]..self.head[u as usize + 1] {
                let v = self.to[a as usize];
                if self.cap[a as usize] > 0 && self.level[v as usize] == UNSEEN {
                    self.level[v as usize] = lu + 1;
                    queue.push_back(v);
                }
            }
        }
        self.level[t as usize] != UNSEEN
    }

    /// Augment from the current flow to a maximum flow from `s` to `t`; returns the
    /// flow added by this run, or `None` on overflow of the total (not reachable when
    /// the capacities out of `s` sum within `u64`, which the matcher checks).
    pub fn max_flow(&mut self, s: u32, t: u32) -> Option<u64> {
        let mut total: u64 = 0;
        let mut path: Vec<u32> = Vec::new();
        while self.bfs(s, t) {
            for u in 0..self.next_arc.len() {
                self.next_arc[u] = self.head[u];
            }
            path.clear();
            let mut u = s;
            loop {
                if u == t {
                    // Bottleneck of the path, push it, and retreat to the tail of the
                    // first arc it saturated.
                    let f = path
                        .iter()
                        .map(|&a| self.cap[a as usize])
                        .min()
                        .unwrap_or(0);
                    let mut cut = path.len();
                    for (k, &a) in path.iter().enumerate() {
                        self.cap[a as usize] -= f;
                        let r = self.rev[a as usize] as usize;
                        self.cap[r] += f;
                        if self.cap[a as usize] == 0 && cut == path.len() {
                            cut = k;
                        }
                    }
                    total = total.checked_add(f)?;
                    path.truncate(cut);
                    u = match path.last() {
                        Some(&a) => self.to[a as usize],
                        None => s,
                    };
                    continue;
                }
                let end = self.head[u as usize + 1];
                let mut advanced = false;
                while self.next_arc[u as usize] < end {
                    let a = self.next_arc[u as usize];
                    let v = self.to[a as usize];
                    if self.cap[a as usize] > 0
                        && self.level[v as usize] == self.level[u as usize] + 1
                    {
                        path.push(a);
                        u = v;
                        advanced = true;
                        break;
                    }
                    self.next_arc[u as usize] += 1;
                }
                if !advanced {
                    // Dead end: no blocking-flow path goes through `u` any more.
                    match path.pop() {
                        None => break,
                        Some(a) => {
                            self.level[u as usize] = UNSEEN;
                            u = self.to[self.rev[a as usize] as usize];
                            self.next_arc[u as usize] += 1;
                        }
                    }
                }
            }
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_network_has_its_known_maximum() {
        // CLRS figure 26.1: maximum flow 23. s=0, t=1, v1..v4 = 2..5.
        let edges = [
            (0, 2, 16),
            (0, 3, 13),
            (3, 2, 4),
            (2, 4, 12),
            (4, 3, 9),
            (3, 5, 14),
            (5, 4, 7),
            (4, 1, 20),
            (5, 1, 4),
        ];
        let mut g = FlowGraph::new(6, &edges);
        assert_eq!(g.max_flow(0, 1), Some(23));
        // Conservation at every inner node.
        for node in 2..6u32 {
            let inflow: u64 = (0..edges.len())
                .filter(|&i| edges[i].1 == node)
                .map(|i| g.flow(i))
                .sum();
            let outflow: u64 = (0..edges.len())
                .filter(|&i| edges[i].0 == node)
                .map(|i| g.flow(i))
                .sum();
            assert_eq!(inflow, outflow, "node {node}");
        }
    }

    #[test]
    fn raising_a_capacity_continues_from_the_flow_found() {
        let mut g = FlowGraph::new(4, &[(0, 2, 2), (2, 3, 10), (3, 1, 10)]);
        assert_eq!(g.max_flow(0, 1), Some(2));
        assert_eq!(g.raise(0, 7), Some(()));
        assert_eq!(g.max_flow(0, 1), Some(5));
        assert_eq!(g.flow(0), 7);
        assert_eq!(g.raise(0, 3), None, "capacities are never lowered");
    }

    #[test]
    fn long_paths_do_not_overflow_the_stack() {
        let n = 200_000u32;
        let mut edges = vec![(0, 2, 1)];
        for u in 2..n - 1 {
            edges.push((u, u + 1, 1));
        }
        edges.push((n - 1, 1, 1));
        let mut g = FlowGraph::new(n as usize, &edges);
        assert_eq!(g.max_flow(0, 1), Some(1));
    }
}
