//! `topo_dict` of dlsia's `SMSNet` / `SMSNet3D` (11 keys, the graph a pickled networkx
//! `DiGraph`) → [`SmsNetSpec`].
//!
//! The network's structure is the graph's *iteration* order: nodes in `G._node` insertion order,
//! each node's out-edges in `G._adj[u]` insertion order. Both orders are read from the pickled
//! dicts as they are, never sorted.

use dlsia_graph::{LastAction, SmsEdge, SmsGraph, SmsNode, SpatialDims};
use dlsia_nets::SmsNetConfig;
use serde::{Deserialize, Serialize};

use super::topo_dict::TopoDict;
use crate::error::{format_err, unsupported, Result};
use crate::pickle::Value;

/// One entry of a saved scaling table: edge `from → to` (size powers) on one axis table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingEntry {
    /// The table's name: `W3`, `H3` (kernel 3), `W1`, `H1` (kernel 1), and `D3`/`D1` in 3-D.
    pub table: String,
    /// Source size power.
    pub from: i32,
    /// Target size power.
    pub to: i32,
    /// Convolution stride.
    pub stride: u64,
    /// Output padding of a transposed convolution (`None` for a plain convolution).
    pub output_padding: Option<i64>,
}

/// Everything a saved dlsia SMSNet says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsNetSpec {
    /// 2 (`smsnet.SMSNet`) or 3 (`sms3d.SMSNet3D`).
    pub spatial_dims: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input shape the network was built for.
    pub in_shape: Vec<usize>,
    /// Output shape the network was built for.
    pub out_shape: Vec<usize>,
    /// The graph in dlsia's iteration order.
    pub graph: SmsGraph,
    /// dlsia's `channel_count` (`[node, channels]` in iteration order), checked against the
    /// graph.
    pub channel_count: Vec<[usize; 2]>,
    /// The scaling tables as saved.
    pub scaling_table: Vec<ScalingEntry>,
    /// Kernel size of the hidden convolutions.
    pub convolution_kernel_size: usize,
    /// The module applied to the output node's stack.
    pub last_action: LastAction,
}

impl SmsNetSpec {
    /// Whether every edge keeps the input resolution (all node sizes 0, all strides 1): the
    /// networks `random_SMS_network` builds with its default sizing settings.
    pub fn is_single_scale(&self) -> bool {
        self.graph.nodes().iter().all(|n| n.size == 0)
            && self
                .scaling_table
                .iter()
                .all(|e| e.stride == 1 && e.output_padding.is_none())
    }
}

impl SmsNetSpec {
    /// The base of the strides between node sizes, read from the scaling tables (a stride `s`
    /// between sizes `a` and `b` is `base^|a − b|`); 2 when no edge changes size.
    pub fn stride_base(&self) -> Result<usize> {
        let mut base = None;
        for e in &self.scaling_table {
            let steps = (e.to - e.from).unsigned_abs();
            if steps == 0 || e.stride <= 1 {
                continue;
            }
            let b = (e.stride as f64).powf(1.0 / f64::from(steps)).round() as u64;
            if b.checked_pow(steps) != Some(e.stride) || base.is_some_and(|x| x != b) {
                return Err(format_err(
                    "topo_dict[\"scaling_table\"] of a dlsia SMSNet",
                    format!(
                        "stride {} between sizes {} and {} is not a power of one common base",
                        e.stride, e.from, e.to
                    ),
                ));
            }
            base = Some(b);
        }
        Ok(base.unwrap_or(2) as usize)
    }

    /// The dlsia-nets configuration of this network.
    pub fn to_config(&self) -> Result<SmsNetConfig> {
        let dims = SpatialDims::try_from(self.spatial_dims as u8).map_err(|_| {
            unsupported(
                "SMSNet",
                format!("{}-D networks are not supported", self.spatial_dims),
            )
        })?;
        let mut cfg = SmsNetConfig::new(
            dims,
            self.in_channels,
            self.out_channels,
            self.graph.clone(),
        );
        cfg.in_shape = Some(self.in_shape.clone());
        cfg.stride_base = self.stride_base()?;
        cfg.kernel_size = self.convolution_kernel_size;
        cfg.last_action = self.last_action;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Which dlsia module the building blocks come from: `smsnet` (2-D) or `sms3d` (3-D).
fn action_module(v: &Value, what: &str) -> Result<Option<(usize, String)>> {
    match v {
        Value::None => Ok(None),
        Value::Global(g) => match g.module.as_str() {
            "dlsia.core.networks.smsnet" => Ok(Some((2, g.name.clone()))),
            "dlsia.core.networks.sms3d" => Ok(Some((3, g.name.clone()))),
            _ => Err(unsupported(
                what,
                format!(
                    "building block {g}; expected a function of dlsia.core.networks.smsnet or sms3d"
                ),
            )),
        },
        other => Err(format_err(
            what,
            format!("expected a dlsia function, found {}", other.type_name()),
        )),
    }
}

/// Decodes an SMSNet `topo_dict` (2-D or 3-D).
pub fn decode_smsnet(topo: &Value) -> Result<SmsNetSpec> {
    let mut t = TopoDict::new("SMSNet", topo)?;
    let what = t.what("hidden_action");
    let (dims, hidden) = action_module(&t.take("hidden_action")?, &what)?
        .ok_or_else(|| format_err(&what, "None; dlsia always saves Conv2DReLU or Conv3DReLU"))?;
    let expected_hidden = if dims == 2 {
        "Conv2DReLU"
    } else {
        "Conv3DReLU"
    };
    if hidden != expected_hidden {
        return Err(unsupported(
            what,
            format!("hidden action {hidden}; dlsia's samplers build {expected_hidden}"),
        ));
    }
    let what = t.what("first_action");
    if let Some((d, _)) = action_module(&t.take("first_action")?, &what)? {
        if d != dims {
            return Err(format_err(what, "from a different dimensionality"));
        }
    }
    let what = t.what("last_action");
    let last_action = match action_module(&t.take("last_action")?, &what)? {
        None => LastAction::Identity,
        Some((d, name)) => {
            if d != dims {
                return Err(format_err(what, "from a different dimensionality"));
            }
            match (dims, name.as_str()) {
                (2, "Linear") | (3, "Linear3D") => LastAction::Linear,
                (2, "LinearSigmoid") | (3, "Linear3DSigmoid") => LastAction::LinearSigmoid,
                (2, "LinearReLU") => LastAction::LinearBnRelu,
                _ => {
                    return Err(unsupported(
                        what,
                        format!("last action {name} is not one dlsia's samplers build"),
                    ))
                }
            }
        }
    };
    let in_channels = t.usize("in_channels")?;
    let out_channels = t.usize("out_channels")?;
    let in_shape = t.shape("in_shape")?;
    let out_shape = t.shape("out_shape")?;
    for (k, s) in [("in_shape", &in_shape), ("out_shape", &out_shape)] {
        if s.len() != dims {
            return Err(format_err(
                t.what(k),
                format!("{s:?} has {} axes for a {dims}-D network", s.len()),
            ));
        }
    }
    let what = t.what("scaling_table");
    let scaling_table = scaling_tables(&t.take("scaling_table")?, dims, &what)?;
    let what = t.what("network_graph");
    let graph = digraph(&t.take("network_graph")?, &what)?;
    let what = t.what("channel_count");
    let mut channel_count = Vec::new();
    for (k, v) in t.take("channel_count")?.as_dict(&what)? {
        channel_count.push([k.as_usize(&what)?, v.as_usize(&what)?]);
    }
    // dlsia-graph's channel_count is indexed by node label; dlsia's dict iterates the nodes
    // in graph order.
    let by_label = graph.channel_count(in_channels);
    let expected: Vec<[usize; 2]> = graph
        .nodes()
        .iter()
        .map(|n| [n.id, by_label[n.id]])
        .collect();
    if channel_count != expected {
        return Err(format_err(
            what,
            format!("{channel_count:?} does not match the graph's edges, which give {expected:?}"),
        ));
    }
    let convolution_kernel_size = t.usize("convolution_kernel_size")?;
    t.finish()?;
    Ok(SmsNetSpec {
        spatial_dims: dims,
        in_channels,
        out_channels,
        in_shape,
        out_shape,
        graph,
        channel_count,
        scaling_table,
        convolution_kernel_size,
        last_action,
    })
}

fn scaling_tables(v: &Value, dims: usize, what: &str) -> Result<Vec<ScalingEntry>> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for (table, rows) in v.as_dict(what)? {
        let table = table.as_str(what)?;
        let w = format!("{what}[{table:?}]");
        for (a, row) in rows.as_dict(&w)? {
            let from = a.as_int(&w)? as i32;
            for (b, entry) in row.as_dict(&w)? {
                let to = b.as_int(&w)? as i32;
                let e = entry.as_seq(&w)?;
                let [stride, pad] = e.as_slice() else {
                    return Err(format_err(&w, "entries must be (stride, output_padding)"));
                };
                out.push(ScalingEntry {
                    table: table.clone(),
                    from,
                    to,
                    stride: stride.as_usize(&w)? as u64,
                    output_padding: if pad.is_none() {
                        None
                    } else {
                        Some(pad.as_int(&w)?)
                    },
                });
            }
        }
        names.push(table);
    }
    let axes: &[&str] = if dims == 2 {
        &["W", "H"]
    } else {
        &["D", "W", "H"]
    };
    for ax in axes {
        for k in ["3", "1"] {
            let name = format!("{ax}{k}");
            if !names.contains(&name) {
                return Err(format_err(
                    what,
                    format!(
                        "no `{name}` table (tables present: {}); a {dims}-D SMSNet has {}",
                        names.join(", "),
                        axes.iter()
                            .flat_map(|a| [format!("{a}3"), format!("{a}1")])
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Reads a pickled `networkx.DiGraph`: node order from `_node`, edge order from `_adj`.
fn digraph(v: &Value, what: &str) -> Result<SmsGraph> {
    let o = v
        .as_object()
        .filter(|o| o.class.is("networkx.classes.digraph", "DiGraph"))
        .ok_or_else(|| {
            format_err(
                what,
                format!("expected a networkx DiGraph, found {}", v.type_name()),
            )
        })?;
    let state = o
        .state
        .ok_or_else(|| format_err(what, "a DiGraph without its attributes (_node, _adj)"))?;
    let node_dict = state.require("_node", what)?;
    let adj = state.require("_adj", what)?;
    let mut nodes = Vec::new();
    for (id, attrs) in node_dict.as_dict(&format!("{what}._node"))? {
        let id = id.as_usize(&format!("{what} node label"))?;
        let size = match attrs.get("size") {
            Some(s) => s.as_int(&format!("{what} node {id} size"))? as i32,
            None => 0,
        };
        let out = adj
            .as_dict(&format!("{what}._adj"))?
            .into_iter()
            .find(|(k, _)| matches!(k, Value::Int(x) if *x == id as i64))
            .map(|(_, v)| v)
            .ok_or_else(|| format_err(what, format!("node {id} has no adjacency entry")))?;
        let mut edges = Vec::new();
        for (to, attrs) in out.as_dict(&format!("{what}._adj[{id}]"))? {
            let to = to.as_usize(&format!("{what} edge target"))?;
            let ew = format!("{what} edge {id}->{to}");
            edges.push(SmsEdge {
                to,
                dilation: attrs.require("dilation", &ew)?.as_usize(&ew)?,
                channels: attrs.require("channels", &ew)?.as_usize(&ew)?,
            });
        }
        nodes.push(SmsNode { id, size, edges });
    }
    Ok(SmsGraph::new(nodes)?)
}
