//! Steps 4–6 of the sampler: dilations (`buildSMSdilations`), channels
//! (`buildSMSnodechannels`) and node sizes (`assign_size`), drawn on a [`Skeleton`].

use rand::seq::IndexedRandom;
use rand::Rng;

use crate::config::{DilationMode, SmsGraphParams};
use crate::graph::{SmsEdge, SmsGraph, SmsNode};
use crate::network::SpatialDims;
use crate::rename::Skeleton;
use crate::Result;

/// Draws every attribute of a skeleton (a sampled, renamed graph with one source 0 and one sink
/// n−1) and returns the validated graph.
pub fn assign_attributes<R: Rng + ?Sized>(
    skeleton: &Skeleton,
    p: &SmsGraphParams,
    rng: &mut R,
) -> Result<SmsGraph> {
    let n = skeleton.order.len();
    let sink = n.saturating_sub(1);
    // Per-node dilation for the node modes, indexed by label (hidden nodes 1 … n−2).
    let node_dilation: Vec<usize> = match p.dilation_mode {
        DilationMode::Edges => Vec::new(),
        DilationMode::Node => (0..n)
            .map(|_| *p.dilation_choices.choose(rng).unwrap_or(&1))
            .collect(),
        DilationMode::NodeCyclic => (0..n)
            .map(|v| {
                p.dilation_choices[(v + p.dilation_choices.len() - 1) % p.dilation_choices.len()]
            })
            .collect(),
    };
    let input_edge_channels = match p.dims {
        SpatialDims::Two => p.in_channels,
        SpatialDims::One | SpatialDims::Three => 1,
    };
    let mut nodes = Vec::with_capacity(n);
    for (&u, targets) in skeleton.order.iter().zip(&skeleton.adjacency) {
        let mut edges = Vec::with_capacity(targets.len());
        for &v in targets {
            let dilation = if v == sink {
                1
            } else {
                match p.dilation_mode {
                    DilationMode::Edges if u == 0 => 1,
                    DilationMode::Edges => *p.dilation_choices.choose(rng).unwrap_or(&1),
                    DilationMode::Node | DilationMode::NodeCyclic => node_dilation[v],
                }
            };
            let channels = if u == 0 {
                if v == sink {
                    p.in_channels
                } else {
                    input_edge_channels
                }
            } else {
                *p.hidden_out_channels.choose(rng).unwrap_or(&1)
            };
            edges.push(SmsEdge {
                to: v,
                dilation,
                channels,
            });
        }
        let size = if u == 0 {
            0
        } else if u == sink {
            p.output_power()
        } else if p.dims == SpatialDims::Two {
            rng.random_range(p.sizing.min_power..=p.sizing.max_power)
        } else {
            0
        };
        nodes.push(SmsNode { id: u, size, edges });
    }
    SmsGraph::new(nodes)
}
