//! SMSNet hyperparameters: the graph plus what dlsia's `SMSNet(...)` constructor adds to it.

use dlsia_graph::{count_parameters, CountSpec, LastAction, SmsGraph, SpatialDims};
use serde::{Deserialize, Serialize};

use crate::error::{config_error, Result};

pub(crate) const NET: &str = "SMSNet";

fn default_dims() -> usize {
    2
}
fn default_kernel() -> usize {
    3
}
fn default_base() -> usize {
    2
}
fn default_last() -> LastAction {
    LastAction::Linear
}

/// A sparse mixed-scale network: a [`SmsGraph`] (nodes in dlsia's `G.nodes()` order, edges in
/// `G.adj` order, per edge its dilation and channels, per node its size power) and the
/// constructor arguments of dlsia's `SMSNet` / `SMSNet3D` / `SMSNet1D`.
///
/// ```
/// use dlsia_graph::{SmsGraphParams, SpatialDims};
/// use dlsia_nets::SmsNetConfig;
///
/// let mut p = SmsGraphParams::new(6, vec![1, 2, 4]);
/// p.hidden_out_channels = vec![2, 3];
/// let graph = p.check()?.sample(7);
/// let cfg = SmsNetConfig::new(SpatialDims::Two, 1, 2, graph);
/// assert!(cfg.num_parameters()? > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsNetConfig {
    /// Number of spatial axes: 2 (`SMSNet`, default), 3 (`SMSNet3D`) or 1 (`SMSNet1D`). The
    /// three differ in which edges are 1×1 convolutions (see [`dlsia_graph::edge_op`]).
    #[serde(default = "default_dims")]
    pub spatial_dims: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (of `Last_Action`).
    pub out_channels: usize,
    /// The spatial shape the original was built for (its `in_shape`), kept for reference. The
    /// network takes any input whose sizes survive its strided edges: strides and transposed
    /// convolutions' output paddings are computed from the actual input, as the original's
    /// scaling tables compute them from `in_shape`.
    #[serde(default)]
    pub in_shape: Option<Vec<usize>>,
    /// Base of the strides between node sizes (dlsia's `stride_base`, default 2).
    #[serde(default = "default_base")]
    pub stride_base: usize,
    /// Kernel size of the convolution edges (`convolution_kernel_size`, odd, default 3).
    #[serde(default = "default_kernel")]
    pub kernel_size: usize,
    /// The module applied to the output node's stack (`Last_Action`), default `Linear`.
    #[serde(default = "default_last")]
    pub last_action: LastAction,
    /// The graph.
    pub graph: SmsGraph,
}

impl SmsNetConfig {
    /// A configuration with dlsia's defaults (kernel 3, linear last action, stride base 2).
    pub fn new(
        dims: SpatialDims,
        in_channels: usize,
        out_channels: usize,
        graph: SmsGraph,
    ) -> Self {
        SmsNetConfig {
            spatial_dims: dims.count() as usize,
            in_channels,
            out_channels,
            in_shape: None,
            stride_base: default_base(),
            kernel_size: default_kernel(),
            last_action: default_last(),
            graph,
        }
    }

    /// The dimensionality as `dlsia-graph` names it.
    pub fn dims(&self) -> Result<SpatialDims> {
        SpatialDims::try_from(self.spatial_dims as u8).map_err(|_| {
            config_error(
                NET,
                format!(
                    "spatial_dims = {}; SMSNets are 1-, 2- or 3-dimensional",
                    self.spatial_dims
                ),
            )
        })
    }

    /// Checks every hyperparameter once (the graph itself is validated when it is built).
    pub fn validate(&self) -> Result<()> {
        self.dims()?;
        if self.in_channels == 0 || self.out_channels == 0 {
            return Err(config_error(
                NET,
                format!(
                    "in_channels = {} and out_channels = {} must both be at least 1",
                    self.in_channels, self.out_channels
                ),
            ));
        }
        let k = self.kernel_size;
        if k == 0 || k % 2 == 0 {
            return Err(config_error(
                NET,
                format!(
                    "kernel_size = {k}; use an odd size (3 or 5) so that edges keep the image size"
                ),
            ));
        }
        if self.stride_base < 2 {
            return Err(config_error(
                NET,
                format!("stride_base = {}; use 2 or more", self.stride_base),
            ));
        }
        if let Some(s) = &self.in_shape {
            if s.len() != self.spatial_dims || s.contains(&0) {
                return Err(config_error(
                    NET,
                    format!(
                        "in_shape {s:?} must give {} positive spatial sizes",
                        self.spatial_dims
                    ),
                ));
            }
        }
        let sizes: Vec<i32> = self.graph.nodes().iter().map(|n| n.size).collect();
        if sizes.iter().any(|s| s.unsigned_abs() > 16) {
            return Err(config_error(
                NET,
                format!("node sizes {sizes:?} are beyond ±16 powers of the stride base"),
            ));
        }
        Ok(())
    }

    /// Trainable parameters of the network (dlsia's `helpers.count_parameters`).
    pub fn num_parameters(&self) -> Result<usize> {
        self.validate()?;
        let spec = CountSpec {
            kernel_size: self.kernel_size,
            last_action: self.last_action,
            ..CountSpec::new(self.in_channels, self.out_channels, self.dims()?)
        };
        count_parameters(&self.graph, &spec).map_err(|e| config_error(NET, e.to_string()))
    }
}
