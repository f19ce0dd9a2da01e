//! The seedable random SMSNet graph sampler: dlsia's `random_SMS_network` (2-D),
//! `random_3DSMS_network` and `random_1DSMS_network` up to and including the graph.
//!
//! The steps are those of the original, each in its own module: the hidden graph
//! ([`ll`](crate::ll)), the input/output connections ([`multi_source`](crate::multi_source)),
//! pruning and renaming ([`rename`](crate::rename)) and the attributes
//! ([`attributes`](crate::attributes)). The random draws come from `rand`'s `StdRng`, not numpy's
//! Mersenne twister, so a seed gives a different graph than in dlsia, but the *distribution* of
//! graphs is the original's (with [`Quirks::DLSIA`](crate::Quirks::DLSIA)), and the same seed
//! always gives the same graph.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::attributes::assign_attributes;
use crate::config::SmsGraphParams;
use crate::graph::SmsGraph;
use crate::ll::{dense_ll_adjacency, ll_adjacency, LlModel};
use crate::multi_source::{full_adjacency, pick_uniform, NodeClasses};
use crate::rename::{sort_and_rename, Skeleton};

/// A checked sampler; build one with [`SmsGraphParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct SmsGraphSampler {
    params: SmsGraphParams,
}

/// Every intermediate of one draw, for inspection and tests.
#[derive(Clone, Debug)]
pub struct SampleTrace {
    /// Raw hidden edges on labels 1 … layers, in networkx insertion order (empty if dense).
    pub ll_edges: Vec<(usize, usize)>,
    /// The hidden adjacency over matrix indices (after the `triu` quirk if replicated).
    pub ll_adjacency: Vec<Vec<usize>>,
    /// The hidden nodes' classes.
    pub classes: NodeClasses,
    /// Drawn optional input → hidden targets (matrix indices).
    pub il_picks: Vec<usize>,
    /// Drawn optional hidden → output sources (matrix indices).
    pub lo_picks: Vec<usize>,
    /// The renamed structure.
    pub skeleton: Skeleton,
    /// The final graph.
    pub graph: SmsGraph,
}

impl SmsGraphSampler {
    pub(crate) fn from_checked(params: SmsGraphParams) -> Self {
        Self { params }
    }

    /// The (checked) parameters.
    pub fn params(&self) -> &SmsGraphParams {
        &self.params
    }

    /// Samples a graph from `seed` (`StdRng::seed_from_u64`): the same seed gives the same graph.
    pub fn sample(&self, seed: u64) -> SmsGraph {
        self.sample_with(&mut StdRng::seed_from_u64(seed))
    }

    /// Samples a graph drawing from `rng`.
    pub fn sample_with<R: Rng + ?Sized>(&self, rng: &mut R) -> SmsGraph {
        self.sample_traced(rng).graph
    }

    /// Samples a graph and returns every intermediate step.
    pub fn sample_traced<R: Rng + ?Sized>(&self, rng: &mut R) -> SampleTrace {
        let p = &self.params;
        let (ll_edges, ll) = match p.ll_gamma {
            None => (Vec::new(), dense_ll_adjacency(p.layers)),
            Some(gamma) => {
                let model = LlModel {
                    n: p.layers,
                    alpha: p.ll_alpha,
                    gamma,
                    min_degree: p.ll_min_degree,
                    max_degree: p.ll_max_degree,
                    quirks: p.quirks,
                };
                let edges = model.sample_edges(rng);
                let adj = ll_adjacency(p.layers, &edges, p.quirks.insertion_order_triu);
                (edges, adj)
            }
        };
        let classes = NodeClasses::of(&ll);
        let il_picks = pick_uniform(&classes.il_skip(), p.il, rng);
        let lo_picks = pick_uniform(&classes.lo_skip(), p.lo, rng);
        let full = full_adjacency(&ll, &classes, &il_picks, &lo_picks, p.io);
        // Invariants of the construction (layers ≥ 2 ⇒ the hidden graph has an edge ⇒ a
        // must-have input and a must-have output exist), so these cannot fail on checked params.
        let skeleton = sort_and_rename(&full).expect("the full matrix is upper triangular");
        let graph = assign_attributes(&skeleton, p, rng)
            .expect("a sampled graph has one source and one sink (layers ≥ 2)");
        SampleTrace {
            ll_edges,
            ll_adjacency: ll,
            classes,
            il_picks,
            lo_picks,
            skeleton,
            graph,
        }
    }
}
