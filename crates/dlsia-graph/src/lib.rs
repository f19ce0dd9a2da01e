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
