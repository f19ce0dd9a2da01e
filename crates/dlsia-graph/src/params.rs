//! Counting a network's trainable parameters from its graph alone.
//!
//! Equal to `dlsia.core.helpers.count_parameters(net)` (PyTorch's `numel` of every parameter
//! with `requires_grad`) for the network dlsia builds from the same graph; checked against the
//! original in `tests/parameter_counts.rs` on fixtures written by `tools/export_sms_graph.py`.
//! Strides and transposed convolutions do not change a count, so node sizes play no part.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::graph::SmsGraph;
use crate::network::{EdgeOp, LastAction, SpatialDims};

/// What besides the graph fixes a network's parameter count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CountSpec {
    /// Input channels of the network.
    pub in_channels: usize,
    /// Output channels (of `Last_Action`).
    pub out_channels: usize,
    /// Convolution kernel size (dlsia's `convolution_kernel_size`, default 3).
    pub kernel_size: usize,
    /// 1-, 2- or 3-D.
    pub dims: SpatialDims,
    /// The last action.
    pub last_action: LastAction,
}

impl CountSpec {
    /// A spec with dlsia's defaults: kernel 3, linear last action.
    pub fn new(in_channels: usize, out_channels: usize, dims: SpatialDims) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: 3,
            dims,
            last_action: LastAction::Linear,
        }
    }

    fn check(&self) -> Result<()> {
        if self.in_channels == 0 {
            return Err(invalid(
                "in_channels",
                "0; a network needs ≥ 1 input channel",
            ));
        }
        if self.out_channels == 0 {
            return Err(invalid(
                "out_channels",
                "0; a network needs ≥ 1 output channel",
            ));
        }
        if self.kernel_size == 0 {
            return Err(invalid("kernel_size", "0; kernels are ≥ 1 (dlsia uses 3)"));
        }
        Ok(())
    }
}

/// Parameters of one edge module: weights + bias + BatchNorm affine for a conv, weights for a
/// bias-free 1×1 conv.
pub fn edge_parameters(
    op: EdgeOp,
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    dims: SpatialDims,
) -> usize {
    match op {
        EdgeOp::ConvBnRelu { .. } => kernel.pow(dims.count()) * in_ch * out_ch + 3 * out_ch,
        EdgeOp::Linear => in_ch * out_ch,
    }
}

/// Parameters of the last action reading `in_ch` channels.
pub fn last_action_parameters(last: LastAction, in_ch: usize, out_ch: usize) -> usize {
    match last {
        LastAction::Linear | LastAction::LinearSigmoid => in_ch * out_ch + out_ch,
        LastAction::LinearBnRelu => in_ch * out_ch + 3 * out_ch,
        LastAction::Identity => 0,
    }
}

/// Trainable parameters of the network dlsia builds from `graph` with `spec`.
pub fn count_parameters(graph: &SmsGraph, spec: &CountSpec) -> Result<usize> {
    spec.check()?;
    let edges: usize = graph
        .actions(spec.in_channels, spec.dims)
        .iter()
        .map(|a| {
            edge_parameters(
                a.op,
                a.in_channels,
                a.out_channels,
                spec.kernel_size,
                spec.dims,
            )
        })
        .sum();
    let last_in = graph.channel_count(spec.in_channels)[graph.output()];
    Ok(edges + last_action_parameters(spec.last_action, last_in, spec.out_channels))
}
