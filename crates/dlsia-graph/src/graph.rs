//! The SMSNet graph: a DAG whose node order and per-node edge order fix the network.
//!
//! dlsia builds an SMSNet by walking `for u in G.nodes(): for v in G.adj[u]` and appending every
//! edge's output to the channel stack of `v` in that order. [`SmsGraph`] keeps exactly that
//! information: the nodes in *their iteration order* (a topological order, not necessarily sorted
//! by label), each node's out-edges in adjacency order, per edge its `dilation` and `channels`, and
//! per node its `size` (a power of the stride base; 0 keeps the input resolution).

use petgraph::graph::DiGraph;
use serde::{Deserialize, Serialize};

use crate::error::{bad_graph, invalid, Result};

/// One out-edge of a node: the edge `u → to` with its attributes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsEdge {
    /// Label of the target node.
    pub to: usize,
    /// Dilation of the edge's convolution (dlsia's `dilation` attribute).
    pub dilation: usize,
    /// Number of feature maps the edge emits (dlsia's `channels` attribute).
    pub channels: usize,
}

/// One node: its label, its size power and its out-edges in adjacency (= action) order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsNode {
    /// The node's label, 0 … n−1; 0 is the input, n−1 the output.
    pub id: usize,
    /// dlsia's `size` attribute: the node works at `stride_base^size` times the input resolution.
    #[serde(default)]
    pub size: i32,
    /// Out-edges in `G.adj[u]` order.
    #[serde(default)]
    pub edges: Vec<SmsEdge>,
}

/// The node weight of [`SmsGraph::to_petgraph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's label.
    pub id: usize,
    /// The node's size power.
    pub size: i32,
}

/// A validated SMSNet graph (see the [module docs](self)).
///
/// Invariants, checked by [`SmsGraph::new`]: at least two nodes; labels are exactly 0 … n−1;
/// node 0 comes first and is the only node without incoming edges; node n−1 comes last and is the
/// only node without outgoing edges; every edge goes forward in the node order (so the order is a
/// topological order and the graph is acyclic, and every node lies on a path from 0 to n−1); no
/// self-loops or repeated edges; dilations and channel counts are at least 1.
///
/// With serde it (de)serialises as its list of nodes (validated when read), so it can sit inside
/// a network's topology; the stand-alone file format is [`GraphDocument`](crate::GraphDocument).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<SmsNode>", into = "Vec<SmsNode>")]
pub struct SmsGraph {
    nodes: Vec<SmsNode>,
    /// `position[id]` is the index of node `id` in `nodes`.
    position: Vec<usize>,
}

impl TryFrom<Vec<SmsNode>> for SmsGraph {
    type Error = crate::Error;
    fn try_from(nodes: Vec<SmsNode>) -> Result<Self> {
        Self::new(nodes)
    }
}

impl From<SmsGraph> for Vec<SmsNode> {
    fn from(g: SmsGraph) -> Self {
        g.nodes
    }
}

impl SmsGraph {
    /// Builds a graph from its nodes in iteration order, checking every invariant.
    pub fn new(nodes: Vec<SmsNode>) -> Result<Self> {
        let n = nodes.len();
        if n < 2 {
            return Err(bad_graph(format!(
                "a graph needs at least an input and an output node, got {n} node(s)"
            )));
        }
        let mut position = vec![usize::MAX; n];
        for (pos, node) in nodes.iter().enumerate() {
            if node.id >= n {
                return Err(bad_graph(format!(
                    "node label {} out of range: a graph with {n} nodes has labels 0..={}",
                    node.id,
                    n - 1
                )));
            }
            if position[node.id] != usize::MAX {
                return Err(bad_graph(format!("node label {} appears twice", node.id)));
            }
            position[node.id] = pos;
        }
        if nodes[0].id != 0 {
            return Err(bad_graph(format!(
                "the first node must be the input, label 0, but it is {}",
                nodes[0].id
            )));
        }
        if nodes[n - 1].id != n - 1 {
            return Err(bad_graph(format!(
                "the last node must be the output, label {}, but it is {}",
                n - 1,
                nodes[n - 1].id
            )));
        }
        let mut in_degree = vec![0usize; n];
        for (pos, node) in nodes.iter().enumerate() {
            let mut seen = Vec::with_capacity(node.edges.len());
            for e in &node.edges {
                let u = node.id;
                if e.to >= n {
                    return Err(bad_graph(format!(
                        "edge {u}→{} points to a node that does not exist (labels are 0..={})",
                        e.to,
                        n - 1
                    )));
                }
                if e.to == u {
                    return Err(bad_graph(format!("self-loop on node {u}")));
                }
                if seen.contains(&e.to) {
                    return Err(bad_graph(format!("edge {u}→{} is listed twice", e.to)));
                }
                seen.push(e.to);
                if e.dilation == 0 {
                    return Err(bad_graph(format!(
                        "edge {u}→{} has dilation 0; dilations are ≥ 1",
                        e.to
                    )));
                }
                if e.channels == 0 {
                    return Err(bad_graph(format!(
                        "edge {u}→{} has 0 channels; every edge emits ≥ 1",
                        e.to
                    )));
                }
                if position[e.to] <= pos {
                    return Err(bad_graph(format!(
                        "node order is not a topological order: edge {u}→{} points to a node listed \
                         before {u} (or the graph has a cycle); list the nodes so that every edge \
                         points forward, as dlsia's G.nodes() order does",
                        e.to
                    )));
                }
                in_degree[e.to] += 1;
            }
        }
        for node in &nodes {
            let id = node.id;
            if id != 0 && in_degree[id] == 0 {
                return Err(bad_graph(format!(
                    "node {id} has no incoming edge: the input (node 0) must be the only source"
                )));
            }
            if id != n - 1 && node.edges.is_empty() {
                return Err(bad_graph(format!(
                    "node {id} has no outgoing edge: the output (node {}) must be the only sink",
                    n - 1
                )));
            }
        }
        Ok(Self { nodes, position })
    }

    /// The nodes in iteration order (dlsia's `G.nodes()` order).
    pub fn nodes(&self) -> &[SmsNode] {
        &self.nodes
    }

    /// Consumes the graph and returns its nodes in iteration order.
    pub fn into_nodes(self) -> Vec<SmsNode> {
        self.nodes
    }

    /// The node with label `id`, if there is one.
    pub fn node(&self, id: usize) -> Option<&SmsNode> {
        self.position.get(id).map(|&p| &self.nodes[p])
    }

    /// The index of node `id` in the iteration order.
    pub fn position(&self, id: usize) -> Option<usize> {
        self.position.get(id).copied()
    }

    /// Number of nodes (input and output included).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.nodes.iter().map(|n| n.edges.len()).sum()
    }

    /// Label of the input node (always 0).
    pub fn input(&self) -> usize {
        0
    }

    /// Label of the output node (always `node_count() − 1`).
    pub fn output(&self) -> usize {
        self.nodes.len() - 1
    }

    /// All edges as `(from, edge)` in action order: nodes in iteration order, then adjacency order.
    /// This is the order in which dlsia registers `Edge_{u}_{v}` modules and concatenates outputs.
    pub fn edges(&self) -> impl Iterator<Item = (usize, &SmsEdge)> + '_ {
        self.nodes
            .iter()
            .flat_map(|n| n.edges.iter().map(move |e| (n.id, e)))
    }

    /// The edge `u → v`, if present.
    pub fn edge(&self, u: usize, v: usize) -> Option<&SmsEdge> {
        self.node(u)?.edges.iter().find(|e| e.to == v)
    }

    /// In-degree of every node, indexed by label.
    pub fn in_degrees(&self) -> Vec<usize> {
        let mut d = vec![0; self.nodes.len()];
        for (_, e) in self.edges() {
            d[e.to] += 1;
        }
        d
    }

    /// Out-degree of every node, indexed by label.
    pub fn out_degrees(&self) -> Vec<usize> {
        let mut d = vec![0; self.nodes.len()];
        for n in &self.nodes {
            d[n.id] = n.edges.len();
        }
        d
    }

    /// Channels of each node's tensor for a network with `in_channels` input channels, indexed by
    /// label: `in_channels` for the input, otherwise the sum of the incoming edges' `channels`
    /// (dlsia's `channel_count`, whose iteration order is [`nodes`](Self::nodes)).
    pub fn channel_count(&self, in_channels: usize) -> Vec<usize> {
        let mut c = vec![0; self.nodes.len()];
        c[0] = in_channels;
        for (_, e) in self.edges() {
            c[e.to] += e.channels;
        }
        c
    }

    /// Longest-path depth of every node from the input (input 0), indexed by label.
    pub fn depths(&self) -> Vec<usize> {
        let mut depth = vec![0usize; self.nodes.len()];
        for n in &self.nodes {
            let du = depth[n.id];
            for e in &n.edges {
                depth[e.to] = depth[e.to].max(du + 1);
            }
        }
        depth
    }

    /// The graph as a petgraph `DiGraph`: node index `i` is the `i`-th node in iteration order,
    /// and edges are added in action order.
    pub fn to_petgraph(&self) -> DiGraph<NodeInfo, SmsEdge> {
        let mut g = DiGraph::with_capacity(self.nodes.len(), self.edge_count());
        let idx: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                g.add_node(NodeInfo {
                    id: n.id,
                    size: n.size,
                })
            })
            .collect();
        for (u, e) in self.edges() {
            g.add_edge(idx[self.position[u]], idx[self.position[e.to]], e.clone());
        }
        g
    }

    /// Builds a graph from a petgraph `DiGraph` whose node order is the iteration order; each
    /// node's out-edges are taken in the order they were added. Validates like [`SmsGraph::new`].
    pub fn from_petgraph(g: &DiGraph<NodeInfo, SmsEdge>) -> Result<Self> {
        let mut nodes: Vec<SmsNode> = g
            .node_weights()
            .map(|w| SmsNode {
                id: w.id,
                size: w.size,
                edges: Vec::new(),
            })
            .collect();
        for e in g.raw_edges() {
            let from = e.source().index();
            let mut edge = e.weight.clone();
            edge.to = g[e.target()].id;
            nodes[from].edges.push(edge);
        }
        Self::new(nodes)
    }

    /// Checks that `channel_count` (pairs `[label, channels]` in iteration order, as dlsia's
    /// `channel_count` OrderedDict) agrees with this graph for `in_channels` input channels.
    pub fn check_channel_count(
        &self,
        in_channels: usize,
        channel_count: &[[usize; 2]],
    ) -> Result<()> {
        let ours = self.channel_count(in_channels);
        if channel_count.len() != self.nodes.len() {
            return Err(invalid(
                "channel_count",
                format!(
                    "{} entries for a graph with {} nodes",
                    channel_count.len(),
                    self.nodes.len()
                ),
            ));
        }
        for (node, &[id, count]) in self.nodes.iter().zip(channel_count) {
            if node.id != id {
                return Err(invalid(
                    "channel_count",
                    format!(
                        "entry for node {id} where the node order has node {}",
                        node.id
                    ),
                ));
            }
            if ours[id] != count {
                return Err(invalid(
                    "channel_count",
                    format!(
                        "node {id} has {count} channels in the file but the edges give {}",
                        ours[id]
                    ),
                ));
            }
        }
        Ok(())
    }
}
