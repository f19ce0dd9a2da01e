//! Step 1 of the sampler: dlsia's random hidden ("LL") graph, `graph_utils.random_LL_graph`.
//!
//! Hidden nodes carry networkx labels 1 … N. For each `ii = 0 … N−2`, node `ii+1` draws an
//! out-degree k from [`degree_bounds`] with weight `k^(−gamma)`, then k distinct targets among the
//! later nodes, a target at distance d with weight `exp(−alpha·d)`. The resulting edges, in the
//! order networkx inserts them, are turned into an adjacency over *matrix indices* by
//! [`ll_adjacency`], which replicates (or not) the insertion-order `triu` quirk.

use rand::Rng;

use crate::config::{DegreeBound, Quirks};
use crate::weighted::{pick_log_weighted, sample_without_replacement};

/// Smallest and largest out-degree allowed for hidden node `ii+1` of `n` (dlsia's
/// `random_graph_MT.node_model`), under the given quirks. Always `1 ≤ min ≤ max ≤ n−ii−1`.
pub fn degree_bounds(
    n: usize,
    ii: usize,
    min_degree: DegreeBound,
    max_degree: Option<DegreeBound>,
    quirks: &Quirks,
) -> (usize, usize) {
    let candidates = (n - ii - 1) as i64;
    let k_max = candidates + 1;
    // Python's int(N·f + 0.5) for f ≥ 0.
    let round = |f: f64| (n as f64 * f + 0.5).floor() as i64;
    let (lo, hi) = if quirks.degree_off_by_one {
        let lo = match min_degree {
            DegreeBound::Count(m) => (m as i64).min(k_max),
            DegreeBound::Fraction(f) => (k_max.min(round(f)) - 1).max(1),
        };
        let hi = match max_degree {
            None if quirks.unbounded_max_degree_is_one => 1.min(k_max) - 1,
            None => candidates,
            Some(DegreeBound::Count(m)) => (m as i64).min(k_max) - 1,
            Some(DegreeBound::Fraction(f)) => k_max.min(round(f)) - 1,
        };
        (lo, hi)
    } else {
        let lo = match min_degree {
            DegreeBound::Count(m) => (m as i64).min(candidates),
            DegreeBound::Fraction(f) => candidates.min(round(f)),
        };
        let hi = match max_degree {
            None if quirks.unbounded_max_degree_is_one => 1,
            None => candidates,
            Some(DegreeBound::Count(m)) => (m as i64).min(candidates),
            Some(DegreeBound::Fraction(f)) => candidates.min(round(f)),
        };
        (lo, hi)
    };
    let hi = hi.max(1);
    let lo = lo.max(1).min(hi);
    (lo as usize, hi as usize)
}

/// dlsia's `random_graph_MT` node model: everything that fixes the raw hidden graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LlModel {
    /// Number of hidden nodes (labels 1 … n).
    pub n: usize,
    /// `LL_alpha`: a target at distance d has weight `exp(−alpha·d)`.
    pub alpha: f64,
    /// `LL_gamma`: out-degree k has weight `k^(−gamma)`.
    pub gamma: f64,
    /// `LL_min_degree`.
    pub min_degree: DegreeBound,
    /// `LL_max_degree`.
    pub max_degree: Option<DegreeBound>,
    /// Which quirks to replicate.
    pub quirks: Quirks,
}

impl LlModel {
    /// Out-degree bounds of hidden node `ii+1`, see [`degree_bounds`].
    pub fn degree_bounds(&self, ii: usize) -> (usize, usize) {
        degree_bounds(self.n, ii, self.min_degree, self.max_degree, &self.quirks)
    }

    /// Draws the sorted targets (labels) of hidden node `ii+1`.
    pub fn sample_node_targets<R: Rng + ?Sized>(&self, ii: usize, rng: &mut R) -> Vec<usize> {
        let (lo, hi) = self.degree_bounds(ii);
        let degree = if lo == hi {
            lo
        } else {
            let log_w: Vec<f64> = (lo..=hi).map(|k| -self.gamma * (k as f64).ln()).collect();
            lo + pick_log_weighted(&log_w, &vec![true; log_w.len()], rng)
        };
        // Candidate targets: labels ii+2 … n, at distance d = 1 … n−ii−1.
        let log_w: Vec<f64> = (1..self.n - ii).map(|d| -self.alpha * d as f64).collect();
        sample_without_replacement(&log_w, degree, rng)
            .into_iter()
            .map(|i| ii + 2 + i)
            .collect()
    }

    /// Draws the raw hidden graph on labels 1 … n: edges `(u, v)` in networkx insertion order.
    pub fn sample_edges<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<(usize, usize)> {
        let mut edges = Vec::new();
        for ii in 0..self.n.saturating_sub(1) {
            for v in self.sample_node_targets(ii, rng) {
                edges.push((ii + 1, v));
            }
        }
        edges
    }
}

/// The hidden graph as adjacency lists over matrix indices 0 … n−1 (ascending in each row).
///
/// With `insertion_order_triu` (dlsia), matrix index = the node's position in networkx insertion
/// order (a node is inserted when it first appears in an edge, source before target), and an
/// edge survives only if its source's index is smaller than its target's (`np.triu`). Without
/// it, index = label − 1 and every edge survives. Labels not in any edge get no index in dlsia;
/// they cannot occur (every node 1 … n−1 has an out-edge and node n is the only choice of n−1).
pub fn ll_adjacency(
    n: usize,
    edges: &[(usize, usize)],
    insertion_order_triu: bool,
) -> Vec<Vec<usize>> {
    let mut index = vec![usize::MAX; n + 1];
    if insertion_order_triu {
        let mut next = 0;
        for &(u, v) in edges {
            for w in [u, v] {
                if index[w] == usize::MAX {
                    index[w] = next;
                    next += 1;
                }
            }
        }
        // Defensive: give any label that never appeared the next free indices in label order.
        for slot in index.iter_mut().skip(1) {
            if *slot == usize::MAX {
                *slot = next;
                next += 1;
            }
        }
    } else {
        for (label, slot) in index.iter_mut().enumerate().skip(1) {
            *slot = label - 1;
        }
    }
    let mut adj = vec![Vec::new(); n];
    for &(u, v) in edges {
        let (a, b) = (index[u], index[v]);
        if a < b {
            adj[a].push(b);
        }
    }
    for row in &mut adj {
        row.sort_unstable();
        row.dedup();
    }
    adj
}

/// The dense hidden graph used when `LL_gamma` is `None`: every edge i → j with i < j.
pub fn dense_ll_adjacency(n: usize) -> Vec<Vec<usize>> {
    (0..n).map(|i| (i + 1..n).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Quirks = Quirks::DLSIA;
    const F: Quirks = Quirks::FIXED;
    use DegreeBound::{Count, Fraction};

    #[test]
    fn dlsia_degree_rules_by_hand() {
        // None → 1: always out-degree exactly 1.
        for ii in 0..9 {
            assert_eq!(degree_bounds(10, ii, Count(1), None, &D), (1, 1));
        }
        // Integer max 3 → {1, 2}; near the end capped by the candidates.
        assert_eq!(degree_bounds(10, 0, Count(1), Some(Count(3)), &D), (1, 2));
        assert_eq!(degree_bounds(10, 8, Count(1), Some(Count(3)), &D), (1, 1));
        // min = max = 5 gives degree 4 (the tutorial's setting).
        assert_eq!(degree_bounds(10, 0, Count(5), Some(Count(5)), &D), (4, 4));
        // Fraction 0.5 of N=10: int(5.5) = 5, minus one = 4.
        assert_eq!(
            degree_bounds(10, 0, Count(1), Some(Fraction(0.5)), &D),
            (1, 4)
        );
        // Fractional min 0.3: max(1, min(10, int(3.5)) - 1) = 2.
        assert_eq!(
            degree_bounds(10, 0, Fraction(0.3), Some(Count(10)), &D),
            (2, 9)
        );
        // Near the end k_max = 2: min(3, 2) - 1 = 1.
        assert_eq!(
            degree_bounds(10, 8, Fraction(0.3), Some(Count(10)), &D),
            (1, 1)
        );
    }

    #[test]
    fn fixed_degree_rules_by_hand() {
        assert_eq!(degree_bounds(10, 0, Count(1), None, &F), (1, 9));
        assert_eq!(degree_bounds(10, 0, Count(1), Some(Count(3)), &F), (1, 3));
        assert_eq!(degree_bounds(10, 7, Count(1), Some(Count(3)), &F), (1, 2));
        assert_eq!(degree_bounds(10, 0, Count(5), Some(Count(5)), &F), (5, 5));
        assert_eq!(
            degree_bounds(10, 0, Count(1), Some(Fraction(0.5)), &F),
            (1, 5)
        );
    }

    #[test]
    fn insertion_order_drops_backward_edges() {
        // Edges in insertion order: 1→3 inserts 1, 3; 2→3 inserts 2 (index 2) after 3 (index 1):
        // its edge to 3 goes backwards and is dropped by triu. 3→4 inserts 4.
        let edges = [(1, 3), (2, 3), (3, 4)];
        let dlsia = ll_adjacency(4, &edges, true);
        assert_eq!(dlsia, vec![vec![1], vec![3], vec![], vec![]]);
        let fixed = ll_adjacency(4, &edges, false);
        assert_eq!(fixed, vec![vec![2], vec![2], vec![3], vec![]]);
    }

    #[test]
    fn dense_graph_has_every_forward_edge() {
        let d = dense_ll_adjacency(4);
        assert_eq!(d, vec![vec![1, 2, 3], vec![2, 3], vec![3], vec![]]);
    }
}
