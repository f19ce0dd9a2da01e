//! SMSNet graphs for `dlsia-rs`: dlsia's random multi-source multi-sink DAG sampler, the graph
//! type networks are built from, JSON files, parameter counting, ensembles and drawings.
//!
//! * [`SmsGraph`]: nodes in iteration order, out-edges in adjacency order, per-edge dilation and
//!   channels, per-node size power; validated on construction. [`SmsGraph::actions`] gives the
//!   network's modules in dlsia's action (= concatenation) order and
//!   [`SmsGraph::channel_count`] each node's channels.
//! * [`SmsGraphParams`] → [`SmsGraphSampler`]: `random_SMS_network` / `random_3DSMS_network` /
//!   `random_1DSMS_network`'s graph, seedable, with dlsia's distribution including its quirks
//!   ([`Quirks`]; each can be switched off).
//! * [`GraphDocument`]: the JSON format (also written by `tools/export_sms_graph.py`).
//! * [`count_parameters`]: a network's trainable parameters from the graph alone.
//! * [`sample_ensemble`]: the ensemble builder with parameter bounds, which gives up after
//!   `max_trial` draws instead of looping forever.
//! * [`draw`]: DOT, SVG and the dilation/channel adjacency heat maps.
//!
//! # Decisions on dlsia's quirks
//!
//! | dlsia behaviour | here |
//! |---|---|
//! | `LL_max_degree=None` becomes 1: every hidden node has out-degree 1 | replicated by default; [`Quirks::unbounded_max_degree_is_one`] `= false` reads None as "no limit" |
//! | integer `LL_max_degree=m` allows degrees ≤ m−1; fractional bounds also lose one | replicated by default; [`Quirks::degree_off_by_one`] `= false` gives degrees ≤ m |
//! | hidden adjacency in networkx insertion order, then `triu`: drops backward-inserted edges (≈ 19 % of the hidden edges with the defaults) | replicated by default; [`Quirks::insertion_order_triu`] `= false` keeps every sampled edge |
//! | IL/LO pick `int(len·p + 0.5)` nodes (a fixed count, not Bernoulli) | replicated (it defines the model) |
//! | "Node" mode gives input edges the target node's dilation | replicated (2-D ignores it: input convs use dilation 1; 3-D uses it) |
//! | "NodeCyclic" crashes (IndexError) when `int(H/len+0.5)·len < H` | always cycles; equal to dlsia wherever dlsia works |
//! | `layers=1` fails inside networkx | rejected with an error: `layers ≥ 2` |
//! | the ensemble builder loops forever when the bounds cannot be met | [`Error::BoundsNotMet`] after `max_trial` draws |
//! | numpy's global Mersenne twister | `StdRng` per call: same distribution, not the same graph for a given seed |
//!
//! The deterministic steps (insertion-order `triu`, node classes, full matrix, networkx's
//! topological renaming, node and adjacency order) are checked to give *identical* graphs when
//! fed the original's random draws (`tests/trace_parity.rs`), and the distribution of sixteen
//! graph statistics matches the original's over 300 seeds in five settings
//! (`tests/statistics.rs`).
//!
//! ```
//! use dlsia_graph::{count_parameters, CountSpec, SmsGraph, SmsGraphParams, SpatialDims};
//!
//! let mut params = SmsGraphParams::new(10, vec![1, 2, 4]);
//! params.hidden_out_channels = vec![2, 3];
//! let sampler = params.check()?;
//! let graph = sampler.sample(42);
//! assert_eq!(graph, sampler.sample(42)); // same seed, same graph
//! let n = count_parameters(&graph, &CountSpec::new(1, 2, SpatialDims::Two))?;
//! assert!(n > 0);
//! let back = SmsGraph::from_json(&graph.to_json())?;
//! assert_eq!(back, graph);
//! # Ok::<(), dlsia_graph::Error>(())
//! ```

pub mod attributes;
pub mod config;
pub mod draw;
pub mod ensemble;
pub mod error;
pub mod graph;
pub mod json;
pub mod ll;
pub mod multi_source;
pub mod network;
pub mod params;
pub mod rename;
pub mod sampler;
pub mod scaling;
mod weighted;

pub use config::{DegreeBound, DilationMode, Quirks, SizingSettings, SmsGraphParams};
pub use ensemble::{member_seed, sample_ensemble, EnsembleMember, EnsembleParams};
pub use error::{Error, Result};
pub use graph::{NodeInfo, SmsEdge, SmsGraph, SmsNode};
pub use json::GraphDocument;
pub use network::{edge_op, Action, EdgeOp, LastAction, NetworkType, SpatialDims};
pub use params::{count_parameters, CountSpec};
pub use sampler::{SampleTrace, SmsGraphSampler};
pub use scaling::{ScaleStep, ScalingTable};
