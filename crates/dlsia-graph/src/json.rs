//! The JSON graph format, written by this crate and by `tools/export_sms_graph.py`.
//!
//! ```json
//! {
//!   "format": "dlsia-sms-graph",
//!   "version": 1,
//!   "in_channels": 2,
//!   "channel_count": [[0, 2], [1, 2], [2, 3], [3, 5], [4, 7]],
//!   "meta": {"sampler": "random_SMS_network", "seed": 3},
//!   "nodes": [
//!     {"id": 0, "size": 0, "edges": [{"to": 1, "dilation": 1, "channels": 2},
//!                                    {"to": 3, "dilation": 1, "channels": 2}]},
//!     {"id": 1, "size": 0, "edges": [{"to": 2, "dilation": 2, "channels": 3}]},
//!     {"id": 2, "size": 0, "edges": [{"to": 3, "dilation": 4, "channels": 3}]},
//!     {"id": 3, "size": 0, "edges": [{"to": 4, "dilation": 1, "channels": 3}]},
//!     {"id": 4, "size": 0, "edges": []}
//!   ]
//! }
//! ```
//!
//! * `nodes` is in **iteration order** (dlsia's `G.nodes()`), and each `edges` list in
//!   **adjacency order** (`G.adj[u]`): together they fix the network's action and concatenation
//!   order. `id` is the node label (0 = input, n−1 = output), `size` the size power (default 0).
//! * `in_channels` (optional) is the network's input channel count.
//! * `channel_count` (optional) is dlsia's `channel_count` as `[label, channels]` pairs in
//!   iteration order; when present together with `in_channels` it is checked against the edges.
//! * `meta` (optional) is free-form provenance (sampler, parameters, seed, counts).
//! * Unknown fields are errors, so a misspelt attribute cannot silently default.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::{SmsGraph, SmsNode};

/// The value of the `format` field.
pub const FORMAT: &str = "dlsia-sms-graph";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;

/// A graph file: the graph plus optional channel information and provenance.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphDocument {
    /// The graph.
    pub graph: SmsGraph,
    /// The network's input channels, if recorded.
    pub in_channels: Option<usize>,
    /// dlsia's `channel_count` as recorded (`[label, channels]` in iteration order).
    pub channel_count: Option<Vec<[usize; 2]>>,
    /// Free-form provenance.
    pub meta: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    format: String,
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_channels: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel_count: Option<Vec<[usize; 2]>>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    meta: serde_json::Map<String, serde_json::Value>,
    nodes: Vec<SmsNode>,
}

impl GraphDocument {
    /// A document holding just a graph.
    pub fn new(graph: SmsGraph) -> Self {
        Self {
            graph,
            in_channels: None,
            channel_count: None,
            meta: serde_json::Map::new(),
        }
    }

    /// A document with the graph's channel counts for `in_channels` input channels recorded.
    pub fn with_channels(graph: SmsGraph, in_channels: usize) -> Self {
        let counts = graph.channel_count(in_channels);
        let channel_count = graph.nodes().iter().map(|n| [n.id, counts[n.id]]).collect();
        Self {
            graph,
            in_channels: Some(in_channels),
            channel_count: Some(channel_count),
            meta: serde_json::Map::new(),
        }
    }

    /// Parses and validates a document.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: RawDocument =
            serde_json::from_str(text).map_err(|e| Error::Json(e.to_string()))?;
        if raw.format != FORMAT {
            return Err(Error::Json(format!(
                "`format` is {:?}, expected {FORMAT:?}",
                raw.format
            )));
        }
        if raw.version != VERSION {
            return Err(Error::Json(format!(
                "version {} is not supported; this crate reads version {VERSION}",
                raw.version
            )));
        }
        let graph = SmsGraph::new(raw.nodes)?;
        if let (Some(cin), Some(cc)) = (raw.in_channels, &raw.channel_count) {
            graph.check_channel_count(cin, cc)?;
        }
        Ok(Self {
            graph,
            in_channels: raw.in_channels,
            channel_count: raw.channel_count,
            meta: raw.meta,
        })
    }

    /// Serialises the document as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let raw = RawDocument {
            format: FORMAT.to_string(),
            version: VERSION,
            in_channels: self.in_channels,
            channel_count: self.channel_count.clone(),
            meta: self.meta.clone(),
            nodes: self.graph.nodes().to_vec(),
        };
        // Serialising plain structs of integers and JSON values cannot fail.
        serde_json::to_string_pretty(&raw).unwrap_or_default()
    }

    /// Reads a document from a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
        Self::from_json(&text).map_err(|e| match e {
            Error::Json(msg) => Error::Json(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Writes the document to a file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()).map_err(|e| io_error(path, e))
    }
}

impl SmsGraph {
    /// Parses and validates a graph from the JSON format (extra document fields are checked and
    /// then dropped; use [`GraphDocument`] to keep them).
    pub fn from_json(text: &str) -> Result<Self> {
        Ok(GraphDocument::from_json(text)?.graph)
    }

    /// The graph as a JSON document without channel information.
    pub fn to_json(&self) -> String {
        GraphDocument::new(self.clone()).to_json()
    }

    /// Reads a graph from a JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Ok(GraphDocument::load(path)?.graph)
    }

    /// Writes the graph as a JSON file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        GraphDocument::new(self.clone()).save(path)
    }
}

pub(crate) fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}
