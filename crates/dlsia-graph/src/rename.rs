//! Step 3 of the sampler: dlsia's `sort_and_rename`.
//!
//! Nodes without any edge are removed, the rest are labelled by their position in networkx's
//! `topological_sort` (Kahn's algorithm by generations: the first generation is every node of
//! in-degree 0 in node order, each next one collects children in adjacency order as their last
//! parent is processed). The node order and each adjacency order stay those of the matrix, so
//! the iteration order is a topological order that need not be sorted by label.

use crate::error::{bad_graph, Result};

/// A graph's structure after renaming, before edge and node attributes are drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skeleton {
    /// Node labels in iteration order.
    pub order: Vec<usize>,
    /// Per node (same order as `order`): target labels in adjacency order.
    pub adjacency: Vec<Vec<usize>>,
}

/// Removes isolated nodes from a matrix-indexed adjacency and relabels the rest as networkx's
/// topological sort does. Fails only if the adjacency has a cycle.
pub fn sort_and_rename(adj: &[Vec<usize>]) -> Result<Skeleton> {
    let m = adj.len();
    let mut indeg = vec![0usize; m];
    for row in adj {
        for &j in row {
            indeg[j] += 1;
        }
    }
    let kept: Vec<usize> = (0..m).filter(|&v| indeg[v] + adj[v].len() > 0).collect();
    let mut remaining = indeg.clone();
    let mut label = vec![usize::MAX; m];
    let mut next = 0;
    let mut generation: Vec<usize> = kept.iter().copied().filter(|&v| indeg[v] == 0).collect();
    while !generation.is_empty() {
        let mut following = Vec::new();
        for &v in &generation {
            label[v] = next;
            next += 1;
            for &c in &adj[v] {
                remaining[c] -= 1;
                if remaining[c] == 0 {
                    following.push(c);
                }
            }
        }
        generation = following;
    }
    if next != kept.len() {
        return Err(bad_graph(
            "the sampled adjacency has a cycle (cannot happen for an upper-triangular matrix)",
        ));
    }
    Ok(Skeleton {
        order: kept.iter().map(|&v| label[v]).collect(),
        adjacency: kept
            .iter()
            .map(|&v| adj[v].iter().map(|&c| label[c]).collect())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsorted_iteration_order_by_hand() {
        // Matrix: 0→{1,3}, 1→4, 2 isolated, 3→{1,4}. Generations: [0], [3] (1 still waits
        // for 3), [1], [4].
        let adj = vec![vec![1, 3], vec![4], vec![], vec![1, 4], vec![]];
        let s = sort_and_rename(&adj).unwrap();
        // Kept nodes in matrix order 0, 1, 3, 4 get labels 0, 2, 1, 3.
        assert_eq!(s.order, vec![0, 2, 1, 3]);
        assert_eq!(s.adjacency, vec![vec![2, 1], vec![3], vec![2, 3], vec![]]);
    }

    #[test]
    fn cycle_is_an_error() {
        let adj = vec![vec![1], vec![2], vec![1]];
        assert!(sort_and_rename(&adj).is_err());
    }
}
