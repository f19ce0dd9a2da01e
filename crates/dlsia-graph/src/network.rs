//! How dlsia turns a graph into layers: per-edge operation, action order and the last action.
//!
//! These are the construction rules of `SMSNet` (2-D), `SMSNet3D` and `SMSNet1D`, which differ:
//!
//! | edge | 2-D | 1-D / 3-D |
//! |---|---|---|
//! | from the input (node 0), including input → output | k×k conv, **dilation 1**, + BN + ReLU | like any other edge |
//! | into the output (n−1), from a hidden node | 1×1 conv, no bias | 1×1 conv, no bias |
//! | any other | kᵈ conv with the edge's dilation + BN + ReLU | same |
//!
//! (In 1-D/3-D *every* edge into the output, the input → output edge included, is the 1×1 conv.)
//! The convolutions use reflect padding `dilation·(k−1)/2` and BatchNorm without running
//! statistics; the network builder in `dlsia-nets` owns those details.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Error, Result};
use crate::graph::SmsGraph;

/// Spatial dimensionality of the network a graph is built into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum SpatialDims {
    /// `SMSNet1D` (Conv1d).
    One,
    /// `SMSNet` (Conv2d).
    Two,
    /// `SMSNet3D` (Conv3d).
    Three,
}

impl SpatialDims {
    /// 1, 2 or 3.
    pub fn count(self) -> u32 {
        match self {
            Self::One => 1,
            Self::Two => 2,
            Self::Three => 3,
        }
    }
}

impl TryFrom<u8> for SpatialDims {
    type Error = Error;
    fn try_from(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Self::One),
            2 => Ok(Self::Two),
            3 => Ok(Self::Three),
            _ => Err(invalid(
                "dims",
                format!("{v}; SMSNets are 1-, 2- or 3-dimensional"),
            )),
        }
    }
}

impl From<SpatialDims> for u8 {
    fn from(d: SpatialDims) -> u8 {
        d.count() as u8
    }
}

/// The operation on one edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeOp {
    /// kᵈ convolution (with bias) at this dilation, then BatchNorm, then ReLU
    /// (dlsia's `Conv2DReLU` / `Conv3DReLU` / `Conv1DReLU`).
    ConvBnRelu {
        /// The dilation actually used (2-D input edges use 1 whatever their attribute says).
        dilation: usize,
    },
    /// 1×…×1 convolution without bias (dlsia's `Linear(..., bias=False)`).
    Linear,
}

/// The last action applied to the output node's stack (`Last_Action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LastAction {
    /// 1×1 conv with bias (`Linear`): Regression and Classification.
    Linear,
    /// 1×1 conv with bias, then sigmoid (`LinearSigmoid`).
    LinearSigmoid,
    /// 1×1 conv with bias, BatchNorm, ReLU (`LinearReLU`, 2-D "Regression_Positive").
    LinearBnRelu,
    /// No last action (`nn.Identity`, the reservoir's inner network).
    Identity,
}

/// dlsia's `network_type` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkType {
    /// `"Regression"`: linear last action.
    Regression,
    /// `"Classification"`: linear last action (same network as Regression).
    Classification,
    /// `"Regression_Sigmoid"`: linear + sigmoid.
    RegressionSigmoid,
    /// `"Regression_Positive"`: linear + BN + ReLU in 2-D; dlsia's 1-D/3-D samplers accept it
    /// but build a plain linear last action, and so does this.
    RegressionPositive,
}

impl NetworkType {
    /// The last action dlsia builds for this network type and dimensionality.
    pub fn last_action(self, dims: SpatialDims) -> LastAction {
        match (self, dims) {
            (Self::Regression | Self::Classification, _) => LastAction::Linear,
            (Self::RegressionSigmoid, _) => LastAction::LinearSigmoid,
            (Self::RegressionPositive, SpatialDims::Two) => LastAction::LinearBnRelu,
            (Self::RegressionPositive, _) => LastAction::Linear,
        }
    }
}

/// The operation dlsia puts on edge `from → to` of a graph whose output node is `output`.
pub fn edge_op(
    dims: SpatialDims,
    from: usize,
    to: usize,
    dilation: usize,
    output: usize,
) -> EdgeOp {
    match dims {
        SpatialDims::Two if from == 0 => EdgeOp::ConvBnRelu { dilation: 1 },
        _ if to == output => EdgeOp::Linear,
        _ => EdgeOp::ConvBnRelu { dilation },
    }
}

/// One edge module of the network, in action order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    /// Source node label.
    pub from: usize,
    /// Target node label.
    pub to: usize,
    /// Channels of the source node's stack (the module's input channels).
    pub in_channels: usize,
    /// Channels the module emits (the edge's `channels`).
    pub out_channels: usize,
    /// The module's operation.
    pub op: EdgeOp,
    /// Size power of the source node.
    pub from_size: i32,
    /// Size power of the target node.
    pub to_size: i32,
}

impl Action {
    /// The module's name in dlsia's state_dict, `Edge_{from}_{to}`.
    pub fn name(&self) -> String {
        format!("Edge_{}_{}", self.from, self.to)
    }
}

impl SmsGraph {
    /// The edge modules in dlsia's action order (which is also the concatenation order of each
    /// node's stack) for a network with `in_channels` input channels.
    pub fn actions(&self, in_channels: usize, dims: SpatialDims) -> Vec<Action> {
        let counts = self.channel_count(in_channels);
        let out = self.output();
        let size = |id: usize| self.node(id).map_or(0, |n| n.size);
        self.edges()
            .map(|(u, e)| Action {
                from: u,
                to: e.to,
                in_channels: counts[u],
                out_channels: e.channels,
                op: edge_op(dims, u, e.to, e.dilation, out),
                from_size: size(u),
                to_size: size(e.to),
            })
            .collect()
    }
}
