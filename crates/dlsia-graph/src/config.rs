//! The sampler's parameters (dlsia's `random_SMS_network` arguments) and their checking.
//!
//! [`SmsGraphParams`] is the plain, serialisable form; [`SmsGraphParams::check`] validates it
//! once and returns an [`SmsGraphSampler`] that cannot fail afterwards.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::network::SpatialDims;
use crate::sampler::SmsGraphSampler;

/// A bound on a hidden node's out-degree, as dlsia's `LL_min_degree` / `LL_max_degree`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DegreeBound {
    /// An absolute number of edges (≥ 1).
    Count(usize),
    /// A fraction of the number of hidden layers, in [0, 1): dlsia uses `int(N·f + 0.5)`.
    Fraction(f64),
}

/// How dilations are assigned to edges (dlsia's `dilation_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DilationMode {
    /// `"Edges"` (default): edges from the input and edges into the output get 1, every other edge
    /// an independent uniform choice.
    Edges,
    /// `"Node"`: one uniform choice per hidden node, shared by all edges into it (edges from the
    /// input included, as in dlsia); edges into the output get 1.
    Node,
    /// `"NodeCyclic"`: hidden node `v` gets `dilation_choices[(v−1) mod len]` for all its incoming
    /// edges; edges into the output get 1. dlsia builds this list as `int(H/len + 0.5)` repeats
    /// of the choices and crashes with an IndexError when that is shorter than the H hidden
    /// nodes; this crate always cycles, which equals dlsia wherever dlsia does not crash.
    NodeCyclic,
}

/// dlsia's sampler quirks that change the distribution of graphs, each replicated when `true`.
///
/// [`Quirks::DLSIA`] (the default) reproduces the original's distribution; [`Quirks::FIXED`] gives
/// the behaviour its documentation describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quirks {
    /// `LL_max_degree = None` becomes 1, so every hidden node has out-degree exactly 1 (and
    /// `LL_gamma` has no effect). When `false`, `None` means no limit: up to every later node.
    pub unbounded_max_degree_is_one: bool,
    /// An integer `LL_max_degree = m` allows out-degrees up to `m − 1` only, and fractional
    /// bounds `f` become `int(N·f + 0.5) − 1`. When `false`, a bound means what it says.
    pub degree_off_by_one: bool,
    /// The hidden adjacency matrix is taken in networkx *insertion* order and then `triu`-ed,
    /// which silently drops every edge whose target was inserted before its source (typically a
    /// few percent of the edges; nodes can lose all their edges and disappear). When `false`, the
    /// matrix is in label order and keeps every sampled edge.
    pub insertion_order_triu: bool,
}

impl Quirks {
    /// The original's behaviour (all quirks replicated).
    pub const DLSIA: Quirks = Quirks {
        unbounded_max_degree_is_one: true,
        degree_off_by_one: true,
        insertion_order_triu: true,
    };
    /// The documented intent (no quirk replicated).
    pub const FIXED: Quirks = Quirks {
        unbounded_max_degree_is_one: false,
        degree_off_by_one: false,
        insertion_order_triu: false,
    };
}

impl Default for Quirks {
    fn default() -> Self {
        Self::DLSIA
    }
}

/// dlsia's `sizing_settings`: the range of node size powers (resolution `stride_base^power`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SizingSettings {
    /// Base of the strides (dlsia default 2).
    pub stride_base: u32,
    /// Smallest power (≤ 0; negative powers are downsampled nodes).
    pub min_power: i32,
    /// Largest power (≥ 0; positive powers are upsampled nodes).
    pub max_power: i32,
}

impl Default for SizingSettings {
    fn default() -> Self {
        Self {
            stride_base: 2,
            min_power: 0,
            max_power: 0,
        }
    }
}

fn d_hidden() -> Vec<usize> {
    vec![1]
}
fn d_one() -> usize {
    1
}
fn d_dims() -> SpatialDims {
    SpatialDims::Two
}
fn d_alpha() -> f64 {
    0.75
}
fn d_gamma() -> Option<f64> {
    Some(2.0)
}
fn d_min_degree() -> DegreeBound {
    DegreeBound::Count(1)
}
fn d_quarter() -> f64 {
    0.25
}
fn d_true() -> bool {
    true
}
fn d_mode() -> DilationMode {
    DilationMode::Edges
}
fn d_64() -> usize {
    64
}

/// The parameters of [`random SMSNet graphs`](crate::SmsGraphSampler), named after dlsia's.
/// When deserialised, only `layers` and `dilation_choices` are required; every other field
/// takes `random_SMS_network`'s default (see [`SmsGraphParams::new`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsGraphParams {
    /// Number of hidden nodes before pruning (`layers`, ≥ 2).
    pub layers: usize,
    /// Dilations to draw from (`dilation_choices`, non-empty, each ≥ 1).
    pub dilation_choices: Vec<usize>,
    /// Channels a hidden node's edge emits, drawn uniformly (`hidden_out_channels`, default `[1]`).
    #[serde(default = "d_hidden")]
    pub hidden_out_channels: Vec<usize>,
    /// Input channels of the network: the input → output edge, and in 2-D every input edge,
    /// emits this many channels (1-D/3-D input → hidden edges emit 1).
    #[serde(default = "d_one")]
    pub in_channels: usize,
    /// 1-, 2- or 3-D: decides input-edge channels and node sizes as dlsia's three samplers do.
    #[serde(default = "d_dims")]
    pub dims: SpatialDims,
    /// `LL_alpha` (≥ 0): a hidden edge of length d is drawn with weight `exp(−alpha·d)`.
    #[serde(default = "d_alpha")]
    pub ll_alpha: f64,
    /// `LL_gamma`: out-degree k drawn with weight `k^(−gamma)`; `None` makes the hidden graph
    /// dense (every forward edge).
    #[serde(default = "d_gamma")]
    pub ll_gamma: Option<f64>,
    /// `LL_min_degree` (dlsia default 1).
    #[serde(default = "d_min_degree")]
    pub ll_min_degree: DegreeBound,
    /// `LL_max_degree` (dlsia default `None`; see [`Quirks::unbounded_max_degree_is_one`]).
    #[serde(default)]
    pub ll_max_degree: Option<DegreeBound>,
    /// `IL` in [0, 1]: fraction of the optional input → hidden edges that are drawn.
    #[serde(default = "d_quarter")]
    pub il: f64,
    /// `LO` in [0, 1]: fraction of the optional hidden → output edges that are drawn.
    #[serde(default = "d_quarter")]
    pub lo: f64,
    /// `IO`: whether the input connects straight to the output.
    #[serde(default = "d_true")]
    pub io: bool,
    /// `dilation_mode`.
    #[serde(default = "d_mode")]
    pub dilation_mode: DilationMode,
    /// `sizing_settings`: node size powers (2-D only; 1-D/3-D nodes keep size 0).
    #[serde(default)]
    pub sizing: SizingSettings,
    /// `in_shape[0]` (only the ratio to `out_size` matters): sets the output node's size power
    /// `−int(log(in_size/out_size)/log(stride_base))` in 2-D and 1-D.
    #[serde(default = "d_64")]
    pub in_size: usize,
    /// `out_shape[0]`.
    #[serde(default = "d_64")]
    pub out_size: usize,
    /// Which of dlsia's quirks to replicate.
    #[serde(default)]
    pub quirks: Quirks,
}

impl SmsGraphParams {
    /// `random_SMS_network`'s defaults for the given layer count and dilation choices:
    /// alpha 0.75, gamma 2, min degree 1, max degree None, IL 0.25, LO 0.25, IO true, hidden
    /// channels `[1]`, 1 input channel, 2-D, "Edges" mode, no resizing, dlsia's quirks.
    pub fn new(layers: usize, dilation_choices: Vec<usize>) -> Self {
        Self {
            layers,
            dilation_choices,
            hidden_out_channels: vec![1],
            in_channels: 1,
            dims: SpatialDims::Two,
            ll_alpha: 0.75,
            ll_gamma: Some(2.0),
            ll_min_degree: DegreeBound::Count(1),
            ll_max_degree: None,
            il: 0.25,
            lo: 0.25,
            io: true,
            dilation_mode: DilationMode::Edges,
            sizing: SizingSettings::default(),
            in_size: 64,
            out_size: 64,
            quirks: Quirks::DLSIA,
        }
    }

    /// The output node's size power, dlsia's `−int(log(in/out)/log(stride_base))` (0 in 3-D).
    pub fn output_power(&self) -> i32 {
        if self.dims == SpatialDims::Three {
            return 0;
        }
        let ratio = (self.in_size as f64 / self.out_size as f64).ln()
            / f64::from(self.sizing.stride_base).ln();
        -(ratio.trunc() as i32)
    }

    /// Validates every parameter and returns the sampler.
    pub fn check(self) -> Result<SmsGraphSampler> {
        if self.layers < 2 {
            return Err(invalid(
                "layers",
                format!(
                    "{}; need ≥ 2 hidden layers (dlsia's sampler fails for 1: its hidden graph \
                     has no edges)",
                    self.layers
                ),
            ));
        }
        if self.dilation_choices.is_empty() {
            return Err(invalid(
                "dilation_choices",
                "empty; give at least one dilation, e.g. [1, 2, 4]",
            ));
        }
        if self.dilation_choices.contains(&0) {
            return Err(invalid("dilation_choices", "contains 0; dilations are ≥ 1"));
        }
        if self.hidden_out_channels.is_empty() {
            return Err(invalid(
                "hidden_out_channels",
                "empty; give at least one channel count, e.g. [1]",
            ));
        }
        if self.hidden_out_channels.contains(&0) {
            return Err(invalid(
                "hidden_out_channels",
                "contains 0; every edge emits ≥ 1 channel",
            ));
        }
        if self.in_channels == 0 {
            return Err(invalid(
                "in_channels",
                "0; a network needs ≥ 1 input channel",
            ));
        }
        if !(self.ll_alpha.is_finite() && self.ll_alpha >= 0.0) {
            return Err(invalid(
                "LL_alpha",
                format!(
                    "{}; must be a finite number ≥ 0 (0 = all edge lengths equally likely)",
                    self.ll_alpha
                ),
            ));
        }
        if let Some(g) = self.ll_gamma {
            if !g.is_finite() {
                return Err(invalid(
                    "LL_gamma",
                    format!("{g}; must be finite, or None for a dense hidden graph"),
                ));
            }
        }
        check_bound("LL_min_degree", self.ll_min_degree)?;
        if let Some(b) = self.ll_max_degree {
            check_bound("LL_max_degree", b)?;
        }
        for (name, p) in [("IL", self.il), ("LO", self.lo)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(
                    name,
                    format!("{p}; must be a probability in [0, 1]"),
                ));
            }
        }
        let s = self.sizing;
        if s.stride_base < 2 {
            return Err(invalid(
                "stride_base",
                format!("{}; must be ≥ 2", s.stride_base),
            ));
        }
        if s.min_power > 0 || s.max_power < 0 {
            return Err(invalid(
                "sizing",
                format!(
                    "powers {}..={} must include 0 (the input's size): need min_power ≤ 0 ≤ max_power",
                    s.min_power, s.max_power
                ),
            ));
        }
        if s.max_power > 16 || s.min_power < -16 {
            return Err(invalid(
                "sizing",
                "powers beyond ±16 overflow any image size",
            ));
        }
        if self.in_size == 0 || self.out_size == 0 {
            return Err(invalid("in_size/out_size", "sizes must be ≥ 1"));
        }
        let p = self.output_power();
        if p < s.min_power || p > s.max_power {
            return Err(invalid(
                "out_size",
                format!(
                    "in_size {} / out_size {} needs output power {p}, outside min_power..=max_power = {}..={}",
                    self.in_size, self.out_size, s.min_power, s.max_power
                ),
            ));
        }
        Ok(SmsGraphSampler::from_checked(self))
    }
}

fn check_bound(name: &'static str, b: DegreeBound) -> Result<()> {
    match b {
        DegreeBound::Count(0) => Err(invalid(name, "0; use ≥ 1, or a fraction in [0, 1) of the layer count")),
        DegreeBound::Fraction(f) if !(0.0..1.0).contains(&f) => Err(invalid(
            name,
            format!("fraction {f}; fractions must lie in [0, 1) (use a whole number for an absolute degree)"),
        )),
        _ => Ok(()),
    }
}
