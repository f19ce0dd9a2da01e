//! MSDNet hyperparameters (dlsia's `MixedScaleDenseNetwork(...)` vocabulary) and the checked
//! layer plan they describe.

use dlsia_ops::PaddingMode;
use serde::{Deserialize, Serialize};

use crate::choices::{Act, FinalAct, Norm};
use crate::error::{config_error, Result};

pub(crate) const NET: &str = "MSDNet";

/// dlsia's padding `((k − 1)·d + 1) // 2` of a `k`-tap convolution with dilation `d`, which keeps
/// the image size for odd `k`.
pub(crate) fn same_padding(kernel: usize, dilation: usize) -> usize {
    ((kernel - 1) * dilation).div_ceil(2)
}

fn default_layers() -> usize {
    10
}
fn default_one() -> usize {
    1
}
fn default_max_dilation() -> usize {
    10
}
fn default_kernel() -> usize {
    3
}
fn default_dims() -> usize {
    2
}

/// A custom dilation schedule (dlsia's `custom_msdnet` numpy array).
///
/// In JSON a flat list is [`CustomDilations::Cycle`], a list of lists
/// [`CustomDilations::Matrix`]:
///
/// ```
/// use dlsia_nets::msdnet::CustomDilations;
///
/// let c: CustomDilations = serde_json::from_str("[1, 2, 4]")?;
/// assert_eq!(c, CustomDilations::Cycle(vec![1, 2, 4]));
/// let m: CustomDilations = serde_json::from_str("[[1, 2, 3], [4, 5, 6]]")?;
/// assert_eq!(m.layer_dilations(7), vec![vec![1, 4], vec![2, 5], vec![3, 6]]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CustomDilations {
    /// A 1-D array: tiled to `num_layers` entries, one channel per layer (width 1).
    Cycle(Vec<usize>),
    /// A 2-D array `(width, layers)`: layer `i` uses column `i` (one dilation per new channel);
    /// the number of columns is the number of layers and `num_layers` is ignored, as in dlsia.
    Matrix(Vec<Vec<usize>>),
}

impl CustomDilations {
    /// The dilations of every layer for a network of `num_layers` layers (used only by the
    /// 1-D form).
    pub fn layer_dilations(&self, num_layers: usize) -> Vec<Vec<usize>> {
        match self {
            CustomDilations::Cycle(c) if c.is_empty() => vec![],
            CustomDilations::Cycle(c) => (0..num_layers).map(|i| vec![c[i % c.len()]]).collect(),
            CustomDilations::Matrix(rows) => {
                let layers = rows.first().map_or(0, Vec::len);
                (0..layers)
                    .map(|i| rows.iter().map(|r| r[i]).collect())
                    .collect()
            }
        }
    }

    fn check(&self) -> Result<()> {
        let all: Vec<usize> = match self {
            CustomDilations::Cycle(c) => {
                if c.is_empty() {
                    return Err(config_error(NET, "custom_dilations is an empty list"));
                }
                c.clone()
            }
            CustomDilations::Matrix(rows) => {
                let cols = rows.first().map_or(0, Vec::len);
                if rows.is_empty() || cols == 0 {
                    return Err(config_error(
                        NET,
                        "custom_dilations matrix is empty; give (width) rows of (layers) dilations",
                    ));
                }
                if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
                    return Err(config_error(
                        NET,
                        format!(
                            "custom_dilations matrix is ragged: row 0 has {cols} layers, row {i} has {}",
                            r.len()
                        ),
                    ));
                }
                rows.concat()
            }
        };
        if all.contains(&0) {
            return Err(config_error(
                NET,
                "custom_dilations contains 0; dilations are ≥ 1",
            ));
        }
        Ok(())
    }
}

/// The activation argument: one activation, applied to the input first and after every layer,
/// or a list applied in order after every layer (and not to the input), as in dlsia.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MsdActivation {
    /// A single module (`activation=nn.ReLU()`): registered first, so also applied to the input.
    One(Act),
    /// A Python list (`activation=[nn.ReLU(), nn.Tanh()]`): `activation_{i}_{j}` in order.
    List(Vec<Act>),
}

impl Default for MsdActivation {
    fn default() -> Self {
        MsdActivation::One(Act::Relu)
    }
}

impl MsdActivation {
    /// The activations applied after each layer, in order.
    pub fn per_layer(&self) -> Vec<Act> {
        match self {
            MsdActivation::One(a) => vec![*a],
            MsdActivation::List(l) => l.clone(),
        }
    }

    /// The activation applied to the raw input (dlsia's quirk: a single module is registered
    /// as the Sequential's first child), if any.
    pub fn on_input(&self) -> Option<Act> {
        match self {
            MsdActivation::One(a) if a.is_some() => Some(*a),
            _ => None,
        }
    }
}

/// Hyperparameters of dlsia's mixed-scale dense network, with its names and defaults.
///
/// ```
/// use dlsia_nets::MsdNetConfig;
///
/// let cfg = MsdNetConfig::new(1, 2, 100, 1, 10); // the W1 workload
/// assert_eq!(cfg.plan()?.dilations[12], vec![3]);
/// let json = serde_json::to_value(&cfg)?;
/// assert_eq!(json["normalization"], "batch");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdNetConfig {
    /// Number of spatial axes: 2 (`nn.Conv2d`, default), 3 (`nn.Conv3d`) or 1 (`nn.Conv1d`).
    #[serde(default = "default_dims")]
    pub spatial_dims: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of layers (default 10); ignored with a [`CustomDilations::Matrix`].
    #[serde(default = "default_layers")]
    pub num_layers: usize,
    /// New channels per layer (default 1), each its own convolution `layer_i.conv_j`.
    #[serde(default = "default_one")]
    pub layer_width: usize,
    /// Generated dilations cycle through `1 … max_dilation` (default 10).
    #[serde(default = "default_max_dilation")]
    pub max_dilation: usize,
    /// A custom dilation schedule instead of the generated one.
    #[serde(default)]
    pub custom_dilations: Option<CustomDilations>,
    /// Activation (default ReLU; `"none"` for `activation=None`).
    #[serde(default)]
    pub activation: MsdActivation,
    /// Normalisation of the whole stack after every layer (default BatchNorm).
    #[serde(default)]
    pub normalization: Norm,
    /// dlsia's `final_layer`: applied to the output and, like the activation, to the input first.
    #[serde(default)]
    pub final_activation: Option<FinalAct>,
    /// Kernel size of the dilated convolutions (odd, default 3).
    #[serde(default = "default_kernel")]
    pub conv_kernel_size: usize,
    /// Dropout probabilities `[initial, hidden, final]` (dlsia's `dropout`), or none.
    #[serde(default)]
    pub dropout: Option<[f64; 3]>,
    /// Padding mode of the dilated convolutions (default zeros).
    #[serde(default)]
    pub padding_mode: PaddingMode,
}

/// The layer structure a valid [`MsdNetConfig`] describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsdPlan {
    /// Dilations of each layer's convolutions (`dilations[i][j]` for `layer_i.conv_j`).
    pub dilations: Vec<Vec<usize>>,
    /// Channels of the stack before each layer and at the end: `channels[0] = in_channels`,
    /// `channels[i + 1] = channels[i] + width_i`.
    pub channels: Vec<usize>,
}

impl MsdPlan {
    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.dilations.len()
    }
    /// Channels of the final stack (input of `final_convolution`).
    pub fn total_channels(&self) -> usize {
        *self.channels.last().unwrap_or(&0)
    }
    /// The largest dilation used.
    pub fn max_dilation(&self) -> usize {
        self.dilations.iter().flatten().copied().max().unwrap_or(1)
    }
}

impl MsdNetConfig {
    /// A configuration with dlsia's defaults for everything not given (2-D, ReLU, BatchNorm,
    /// kernel 3, zeros padding, no dropout, no final activation).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        num_layers: usize,
        layer_width: usize,
        max_dilation: usize,
    ) -> Self {
        MsdNetConfig {
            spatial_dims: default_dims(),
            in_channels,
            out_channels,
            num_layers,
            layer_width,
            max_dilation,
            custom_dilations: None,
            activation: MsdActivation::default(),
            normalization: Norm::default(),
            final_activation: None,
            conv_kernel_size: default_kernel(),
            dropout: None,
            padding_mode: PaddingMode::Zeros,
        }
    }

    /// The same configuration with `spatial_dims` spatial axes.
    pub fn with_dims(mut self, spatial_dims: usize) -> Self {
        self.spatial_dims = spatial_dims;
        self
    }

    /// Checks every hyperparameter and returns the layer plan.
    pub fn plan(&self) -> Result<MsdPlan> {
        if !(1..=3).contains(&self.spatial_dims) {
            return Err(config_error(
                NET,
                format!(
                    "spatial_dims = {}; MSDNets are 1-, 2- or 3-dimensional",
                    self.spatial_dims
                ),
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 {
            return Err(config_error(
                NET,
                format!(
                    "in_channels = {} and out_channels = {} must both be at least 1",
                    self.in_channels, self.out_channels
                ),
            ));
        }
        let k = self.conv_kernel_size;
        if k == 0 || k % 2 == 0 {
            return Err(config_error(
                NET,
                format!("conv_kernel_size = {k}; use an odd size (3 or 5) so that layers keep the image size"),
            ));
        }
        let dilations = match &self.custom_dilations {
            Some(c) => {
                c.check()?;
                if matches!(c, CustomDilations::Cycle(_)) && self.num_layers == 0 {
                    return Err(config_error(NET, "num_layers = 0; use at least one layer"));
                }
                c.layer_dilations(self.num_layers)
            }
            None => {
                if self.num_layers == 0 || self.layer_width == 0 || self.max_dilation == 0 {
                    return Err(config_error(
                        NET,
                        format!(
                            "num_layers = {}, layer_width = {}, max_dilation = {}: all must be at least 1",
                            self.num_layers, self.layer_width, self.max_dilation
                        ),
                    ));
                }
                (0..self.num_layers)
                    .map(|i| {
                        (0..self.layer_width)
                            .map(|j| (i * self.layer_width + j) % self.max_dilation + 1)
                            .collect()
                    })
                    .collect()
            }
        };
        let mut channels = vec![self.in_channels];
        for d in &dilations {
            channels.push(channels.last().copied().unwrap_or(0) + d.len());
        }
        for (i, &c) in channels[1..].iter().enumerate() {
            self.normalization
                .check_channels(NET, c, &format!("normalization_{i}"))?;
        }
        for a in self.activation.per_layer() {
            a.check(NET)?;
        }
        if let MsdActivation::List(l) = &self.activation {
            if l.iter().any(|a| !a.is_some()) {
                return Err(config_error(
                    NET,
                    "an activation list cannot contain \"none\"; leave it out of the list",
                ));
            }
        }
        if let Some(p) = self.dropout {
            if let Some(bad) = p.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err(config_error(
                    NET,
                    format!("dropout probability {bad} is outside [0, 1]"),
                ));
            }
        }
        Ok(MsdPlan {
            dilations,
            channels,
        })
    }

    /// Checks the hyperparameters without building anything.
    pub fn validate(&self) -> Result<()> {
        self.plan().map(|_| ())
    }

    /// Number of trainable parameters of the network this configuration describes (dlsia's
    /// `helpers.count_parameters`): convolutions, normalisation affine parameters, final 1×1.
    pub fn num_parameters(&self) -> Result<usize> {
        let plan = self.plan()?;
        let taps = self.conv_kernel_size.pow(self.spatial_dims as u32);
        let mut n = 0;
        for (i, d) in plan.dilations.iter().enumerate() {
            n += d.len() * (plan.channels[i] * taps + 1);
            if matches!(self.normalization, Norm::Batch | Norm::Group { .. }) {
                n += 2 * plan.channels[i + 1];
            }
        }
        Ok(n + plan.total_channels() * self.out_channels + self.out_channels)
    }

    /// Number of convolution parameters only (the paper's "about 0.18 M" for 200 layers).
    pub fn num_conv_parameters(&self) -> Result<usize> {
        let plan = self.plan()?;
        let taps = self.conv_kernel_size.pow(self.spatial_dims as u32);
        let hidden: usize = plan
            .dilations
            .iter()
            .enumerate()
            .map(|(i, d)| d.len() * (plan.channels[i] * taps + 1))
            .sum();
        Ok(hidden + plan.total_channels() * self.out_channels + self.out_channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_dilations_follow_dlsia_formula() {
        // dlsia.md §2.1: MSDNet(1, 2, num_layers=3, layer_width=2, max_dilation=3) has
        // dilations L0 [1,2], L1 [3,1], L2 [2,3] and 214 parameters.
        let cfg = MsdNetConfig::new(1, 2, 3, 2, 3);
        let plan = cfg.plan().unwrap();
        assert_eq!(plan.dilations, vec![vec![1, 2], vec![3, 1], vec![2, 3]]);
        assert_eq!(plan.channels, vec![1, 3, 5, 7]);
        assert_eq!(cfg.num_parameters().unwrap(), 214);
    }

    #[test]
    fn paper_inpainting_network_counts() {
        // 200 layers, max dilation 10: 181,302 convolution parameters, 221,902 with BatchNorm.
        let cfg = MsdNetConfig::new(1, 1, 200, 1, 10);
        assert_eq!(cfg.num_conv_parameters().unwrap(), 181_302);
        assert_eq!(cfg.num_parameters().unwrap(), 221_902);
        let mut none = cfg.clone();
        none.normalization = Norm::None;
        assert_eq!(none.num_parameters().unwrap(), 181_302);
        // W1 of the peer benchmarks.
        assert_eq!(
            MsdNetConfig::new(1, 2, 100, 1, 10)
                .num_parameters()
                .unwrap(),
            56_054
        );
    }

    #[test]
    fn custom_dilations_tile_and_transpose() {
        let mut cfg = MsdNetConfig::new(1, 1, 5, 3, 10);
        cfg.custom_dilations = Some(CustomDilations::Cycle(vec![1, 2]));
        let plan = cfg.plan().unwrap();
        assert_eq!(
            plan.dilations,
            vec![vec![1], vec![2], vec![1], vec![2], vec![1]]
        );
        cfg.custom_dilations = Some(CustomDilations::Matrix(vec![vec![1, 2], vec![3, 4]]));
        let plan = cfg.plan().unwrap();
        assert_eq!(plan.dilations, vec![vec![1, 3], vec![2, 4]]);
        assert_eq!(plan.channels, vec![1, 3, 5]);
        assert_eq!(plan.max_dilation(), 4);
    }

    #[test]
    fn impossible_hyperparameters_are_errors() {
        let bad = |f: &dyn Fn(&mut MsdNetConfig), want: &str| {
            let mut c = MsdNetConfig::new(1, 1, 4, 1, 3);
            f(&mut c);
            let e = c.plan().unwrap_err().to_string();
            assert!(e.contains(want), "{e} should mention {want}");
        };
        bad(&|c| c.num_layers = 0, "num_layers");
        bad(&|c| c.in_channels = 0, "in_channels");
        bad(&|c| c.conv_kernel_size = 4, "odd");
        bad(&|c| c.spatial_dims = 4, "spatial_dims");
        bad(&|c| c.dropout = Some([0.1, 1.5, 0.0]), "dropout");
        bad(
            &|c| c.custom_dilations = Some(CustomDilations::Cycle(vec![])),
            "empty",
        );
        bad(
            &|c| c.custom_dilations = Some(CustomDilations::Matrix(vec![vec![1, 2], vec![3]])),
            "ragged",
        );
        bad(
            &|c| c.custom_dilations = Some(CustomDilations::Cycle(vec![1, 0])),
            "≥ 1",
        );
        bad(
            &|c| c.normalization = Norm::Group { groups: 2 },
            "3 channels of normalization_1",
        );
        bad(
            &|c| c.activation = MsdActivation::List(vec![Act::Relu, Act::None]),
            "none",
        );
    }

    #[test]
    fn json_round_trip_with_defaults() {
        let c: MsdNetConfig =
            serde_json::from_str(r#"{"in_channels": 1, "out_channels": 3}"#).unwrap();
        assert_eq!(c, MsdNetConfig::new(1, 3, 10, 1, 10));
        let mut d = c.clone();
        d.activation = MsdActivation::List(vec![Act::Relu, Act::Tanh]);
        d.custom_dilations = Some(CustomDilations::Matrix(vec![vec![1, 2]]));
        d.dropout = Some([0.0, 0.2, 0.1]);
        let back: MsdNetConfig = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<MsdNetConfig>(
            r#"{"in_channels": 1, "out_channels": 3, "depth": 3}"#
        )
        .is_err());
    }
}
