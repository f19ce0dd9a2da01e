//! Step 2 of the sampler: dlsia's `RandomMultiSourceMultiSinkGraph.build_matrix`.
//!
//! The hidden nodes are classified from the hidden adjacency; the input connects to every
//! *must-have input* plus `int(len(IL_skip)·IL + 0.5)` nodes drawn uniformly without replacement
//! from `IL_skip = in-between ∪ must-have outputs`; every *must-have output* connects to the output
//! plus `int(len(LO_skip)·LO + 0.5)` drawn from `LO_skip = must-have inputs ∪ in-between`; the
//! input connects to the output when `IO` holds. Hidden nodes with no hidden edge stay isolated.

use rand::seq::index::sample;
use rand::Rng;

/// Classification of hidden nodes (matrix indices of the hidden adjacency, ascending).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeClasses {
    /// No incoming, some outgoing hidden edges: always fed by the input.
    pub must_have_inputs: Vec<usize>,
    /// Some incoming, no outgoing hidden edges: always feed the output.
    pub must_have_outputs: Vec<usize>,
    /// Both incoming and outgoing hidden edges.
    pub in_between: Vec<usize>,
}

impl NodeClasses {
    /// Classifies the nodes of a hidden adjacency.
    pub fn of(ll: &[Vec<usize>]) -> Self {
        let mut indeg = vec![0usize; ll.len()];
        for row in ll {
            for &j in row {
                indeg[j] += 1;
            }
        }
        let mut c = Self::default();
        for (i, row) in ll.iter().enumerate() {
            match (indeg[i] > 0, !row.is_empty()) {
                (false, true) => c.must_have_inputs.push(i),
                (true, false) => c.must_have_outputs.push(i),
                (true, true) => c.in_between.push(i),
                (false, false) => {}
            }
        }
        c
    }

    /// `IL_skip`: the optional input → hidden targets, in dlsia's order.
    pub fn il_skip(&self) -> Vec<usize> {
        [self.in_between.as_slice(), &self.must_have_outputs].concat()
    }

    /// `LO_skip`: the optional hidden → output sources, in dlsia's order.
    pub fn lo_skip(&self) -> Vec<usize> {
        [self.must_have_inputs.as_slice(), &self.in_between].concat()
    }
}

/// dlsia's pick count `int(len·p + 0.5)`.
pub fn pick_count(len: usize, p: f64) -> usize {
    ((len as f64 * p + 0.5).floor() as usize).min(len)
}

/// Draws `pick_count(len(choices), p)` distinct elements of `choices`, uniformly.
pub fn pick_uniform<R: Rng + ?Sized>(choices: &[usize], p: f64, rng: &mut R) -> Vec<usize> {
    let k = pick_count(choices.len(), p);
    let mut out: Vec<usize> = sample(rng, choices.len(), k)
        .into_iter()
        .map(|i| choices[i])
        .collect();
    out.sort_unstable();
    out
}

/// The full `(1 + L + 1)`-node adjacency (row-major order, ascending targets): index 0 is the
/// input, `1 + i` hidden node `i`, `L + 1` the output. `il` and `lo` are the *drawn* optional
/// hidden nodes (the must-have ones are added here).
pub fn full_adjacency(
    ll: &[Vec<usize>],
    classes: &NodeClasses,
    il: &[usize],
    lo: &[usize],
    io: bool,
) -> Vec<Vec<usize>> {
    let l = ll.len();
    let out = l + 1;
    let mut adj = vec![Vec::new(); l + 2];
    let mut from_input: Vec<usize> = classes
        .must_have_inputs
        .iter()
        .chain(il)
        .map(|&i| i + 1)
        .collect();
    from_input.sort_unstable();
    from_input.dedup();
    adj[0] = from_input;
    if io {
        adj[0].push(out);
    }
    let mut to_output = vec![false; l];
    for &i in classes.must_have_outputs.iter().chain(lo) {
        to_output[i] = true;
    }
    for (i, row) in ll.iter().enumerate() {
        adj[i + 1] = row.iter().map(|&j| j + 1).collect();
        if to_output[i] {
            adj[i + 1].push(out);
        }
    }
    adj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_full_matrix_by_hand() {
        // Hidden: 0→1, 1→2, 3 isolated, 4→2.
        let ll = vec![vec![1], vec![2], vec![], vec![], vec![2]];
        let c = NodeClasses::of(&ll);
        assert_eq!(c.must_have_inputs, vec![0, 4]);
        assert_eq!(c.must_have_outputs, vec![2]);
        assert_eq!(c.in_between, vec![1]);
        assert_eq!(c.il_skip(), vec![1, 2]);
        assert_eq!(c.lo_skip(), vec![0, 4, 1]);
        let full = full_adjacency(&ll, &c, &[2], &[1], true);
        assert_eq!(
            full,
            vec![
                vec![1, 3, 5, 6],
                vec![2],
                vec![3, 6],
                vec![6],
                vec![],
                vec![3],
                vec![]
            ]
        );
    }

    #[test]
    fn pick_count_rounds_half_up() {
        assert_eq!(pick_count(6, 0.25), 2); // 1.5 + 0.5
        assert_eq!(pick_count(5, 0.25), 1); // 1.25 + 0.5
        assert_eq!(pick_count(7, 0.995), 7);
        assert_eq!(pick_count(0, 0.5), 0);
    }
}
