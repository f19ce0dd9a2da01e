//! Files of dlsia's `sparsenet` networks → [`SparseSpec`]: `SparseAutoEncoder` and `SparseAEC`
//! save `{"encode": {topo_dict, state_dict}, "decode": {…}, "topo_dict", "state_dict"}`,
//! `SparseLabeler` saves `{"encoder": topo_dict, "topo_dict", "state_dict"}`.
//!
//! The SMSNet graphs are read as for a plain SMSNet. What the original does not save is
//! recovered: `SparseAutoEncoder`'s `latent_sequence` (its `topology_dict` drops it) from the
//! shapes of `encoder_fc_layers.{0,4,8,…}.weight`; its `dropout_p` is the original's default
//! 0.05 (it only matters for further training). `depth`, `dilations` and `hidden_channels` only
//! steer the sampling of new graphs, so they are taken from the saved encoder graph.

use candle_core::Tensor;
use dlsia_graph::{LastAction, SmsGraph};
use dlsia_nets::Topology;
use serde::Serialize;
use serde_json::json;

use super::classes::final_activation;
use super::smsnet::{decode_smsnet, SmsNetSpec};
use super::topo_dict::TopoDict;
use crate::error::{format_err, unsupported, Result};
use crate::pickle::Value;

/// A saved `sparsenet` network: its SMSNets as saved and the dlsia-nets topology they make.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SparseSpec {
    /// dlsia's class: `SparseAutoEncoder`, `SparseAEC` or `SparseLabeler`.
    pub class: String,
    /// The encoder SMSNet (`encode`).
    pub encoder: SmsNetSpec,
    /// The decoder SMSNet (`decode`), for the autoencoders.
    pub decoder: Option<SmsNetSpec>,
    /// The dlsia-nets topology (graphs explicit).
    pub topology: Topology,
}

/// Whether a file's root dict is one of the `sparsenet` layouts.
pub fn is_sparse(root: &Value) -> bool {
    root.get("encode").is_some() || root.get("encoder").is_some()
}

/// The SMSNet `topo_dict` under `key`, nested in `{topo_dict, state_dict}` when `nested`.
fn sms_spec(root: &Value, key: &str, nested: bool, class: &str) -> Result<SmsNetSpec> {
    let what = format!("{key:?} entry of a dlsia {class} file");
    let v = root.require(key, &what)?;
    let topo = if nested {
        v.require("topo_dict", &what)?
    } else {
        v
    };
    let spec = decode_smsnet(&topo)?;
    if spec.spatial_dims != 2 || spec.convolution_kernel_size != 3 {
        return Err(unsupported(
            what,
            "sparsenet SMSNets are 2-D with 3×3 kernels",
        ));
    }
    if spec.last_action != LastAction::Linear {
        return Err(unsupported(
            what,
            format!(
                "last action {:?}; sparsenet builds Linear (network_type \"Regression\")",
                spec.last_action
            ),
        ));
    }
    Ok(spec)
}

/// `depth`, `dilations` and `hidden_channels` as the saved encoder graph shows them.
fn sampling_hints(graph: &SmsGraph) -> (usize, Vec<usize>, usize) {
    let last = graph.node_count() - 1;
    let hidden = graph
        .nodes()
        .iter()
        .filter(|n| n.id > 0 && n.id < last)
        .count();
    let mut dilations: Vec<usize> = graph.edges().map(|(_, e)| e.dilation).collect();
    dilations.sort_unstable();
    dilations.dedup();
    let channels = graph
        .edges()
        .filter(|(u, _)| *u > 0 && *u < last)
        .map(|(_, e)| e.channels)
        .max()
        .unwrap_or(10);
    (hidden.max(2), dilations, channels)
}

/// `latent_sequence` from the shapes of `encoder_fc_layers.{4i}.weight`.
fn latent_sequence(state: &[(String, Tensor)]) -> Result<Vec<usize>> {
    let mut layers: Vec<(usize, usize)> = state
        .iter()
        .filter_map(|(name, t)| {
            let k = name
                .strip_prefix("encoder_fc_layers.")?
                .strip_suffix(".weight")?
                .parse::<usize>()
                .ok()?;
            (k % 4 == 0 && t.rank() == 2).then(|| (k, t.dims()[0]))
        })
        .collect();
    layers.sort_unstable();
    if layers.is_empty() || layers.iter().enumerate().any(|(i, &(k, _))| k != 4 * i) {
        return Err(format_err(
            "state_dict of a dlsia SparseAutoEncoder",
            "no encoder_fc_layers.0/4/8….weight sequence to read latent_sequence from",
        ));
    }
    Ok(layers.into_iter().map(|(_, w)| w).collect())
}

/// Decodes a `sparsenet` file's root dict (with its already read `state_dict`).
pub fn decode_sparse(root: &Value, state: &[(String, Tensor)]) -> Result<SparseSpec> {
    let topo_value = root.require("topo_dict", "dlsia sparsenet file")?;
    let labeler = root.get("encoder").is_some();
    let aec = !labeler && topo_value.get("out_classes").is_some();
    let (class, architecture) = match (labeler, aec) {
        (true, _) => ("SparseLabeler", "sparse_labeler"),
        (false, true) => ("SparseAEC", "sparse_aec"),
        (false, false) => ("SparseAutoEncoder", "sparse_autoencoder"),
    };
    let encoder = if labeler {
        sms_spec(root, "encoder", false, class)?
    } else {
        sms_spec(root, "encode", true, class)?
    };
    let decoder = if labeler {
        None
    } else {
        Some(sms_spec(root, "decode", true, class)?)
    };
    let name: &'static str = match class {
        "SparseLabeler" => "SparseLabeler",
        "SparseAEC" => "SparseAEC",
        _ => "SparseAutoEncoder",
    };
    let mut t = TopoDict::new(name, &topo_value)?;
    let (depth, dilations, hidden_channels) = sampling_hints(&encoder.graph);
    let mut topo = json!({
        "architecture": architecture,
        "in_shape": t.shape("in_shape")?,
        "latent_shape": t.shape("latent_shape")?,
        "in_channels": t.usize("in_channels")?,
        "out_channels": t.usize("out_channels")?,
        "depth": depth,
        "dilations": dilations,
        "hidden_channels": hidden_channels,
        "stride_base": encoder.stride_base()?,
        "encoder_graph": encoder.graph,
    });
    if let Some(d) = &decoder {
        topo["decoder_graph"] = json!(d.graph);
    }
    if !labeler {
        // SparseLabeler does not save it; the others do.
        let base = t.usize("stride_base")?;
        topo["stride_base"] = json!(base);
    }
    match class {
        "SparseAutoEncoder" => {
            let what = t.what("final_transform");
            let f = final_activation(&t.take("final_transform")?, &what)?;
            topo["final_transform"] = json!(f);
            topo["latent_sequence"] = json!(latent_sequence(state)?);
        }
        _ => {
            topo["out_classes"] = json!(t.usize("out_classes")?);
            topo["dropout_rate"] = json!(t.f64("dropout_rate")?);
            if labeler {
                topo["p_il"] = json!(0.25);
                topo["p_lo"] = json!(0.25);
            }
        }
    }
    t.finish()?;
    let topology: Topology = serde_json::from_value(topo).map_err(|e| {
        format_err(
            format!("topo_dict of a dlsia {class}"),
            format!("does not describe a dlsia-nets {architecture}: {e}"),
        )
    })?;
    topology.validate()?;
    Ok(SparseSpec {
        class: class.to_string(),
        encoder,
        decoder,
        topology,
    })
}
