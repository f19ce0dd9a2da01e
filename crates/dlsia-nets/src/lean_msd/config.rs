//! Hyperparameters of the lean MSDNet, in the vocabulary of dlsia's `MixedScaleDenseNetwork`.

use dlsia_ops::msd::{cyclic_dilations, MsdNorm, MsdSpec};
use dlsia_ops::PaddingMode;
use serde::{Deserialize, Serialize};

use crate::choices::{FinalAct, Norm};
use crate::error::{config_error, Result};

pub(crate) const NET: &str = "LeanMSDNet";

fn one() -> usize {
    1
}
fn ten() -> usize {
    10
}
fn three() -> usize {
    3
}
fn no_norm() -> Norm {
    Norm::None
}

/// Hyperparameters of a [`LeanMsdNet`](super::LeanMsdNet).
///
/// The names follow dlsia's `MixedScaleDenseNetwork(in_channels, out_channels, num_layers,
/// layer_width, max_dilation, custom_msdnet, …)`. Differences, all deliberate:
///
/// * the activation of the new channels is always ReLU (the fused kernel recovers its mask
///   from the stored output);
/// * `normalization` is `"none"` (default: Pelt & Sethian's MSD) or `"batch"`, which normalises
///   each new channel once, before its ReLU — dlsia instead re-normalises the whole stack after
///   every layer, which costs memory quadratic in depth;
/// * the input is passed on as it is, unless `relu_input` (dlsia applies its activation to the
///   raw input first; the converter sets this flag);
/// * the padding mode is an explicit, stored setting.
///
/// ```
/// use dlsia_nets::LeanMsdConfig;
///
/// let cfg = LeanMsdConfig::new(2, 1, 2, 100, 1, 10);
/// cfg.validate()?;
/// assert_eq!(cfg.dilations()[..12], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2]);
/// let json = serde_json::to_value(&cfg)?;
/// assert_eq!(json["padding_mode"], "zeros");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeanMsdConfig {
    /// Number of spatial axes: 2 or 3.
    pub spatial_dims: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of layers (depth).
    pub num_layers: usize,
    /// New channels per layer, default 1.
    #[serde(default = "one")]
    pub layer_width: usize,
    /// Dilations cycle `1..=max_dilation` (dlsia's schedule), default 10. Ignored when
    /// `custom_dilations` is given.
    #[serde(default = "ten")]
    pub max_dilation: usize,
    /// Dilation of every new channel, layer-major (`num_layers·layer_width` entries); with
    /// `layer_width = 1` a shorter list is repeated, as dlsia repeats a 1-D `custom_msdnet`.
    #[serde(default)]
    pub custom_dilations: Option<Vec<usize>>,
    /// Kernel size (odd), default 3.
    #[serde(default = "three")]
    pub conv_kernel_size: usize,
    /// How images are continued beyond their border, default zeros (dlsia's default).
    #[serde(default)]
    pub padding_mode: PaddingMode,
    /// `"none"` (default) or `"batch"`: per-layer BatchNorm of the new channels.
    #[serde(default = "no_norm")]
    pub normalization: Norm,
    /// Transform of the output.
    #[serde(default)]
    pub final_activation: Option<FinalAct>,
    /// Apply ReLU to the input before the first layer (dlsia's quirk; set when converting).
    #[serde(default)]
    pub relu_input: bool,
}

impl LeanMsdConfig {
    /// A network with dlsia's defaults otherwise (width given, kernel 3, zero padding, no
    /// normalisation, no final activation).
    pub fn new(
        spatial_dims: usize,
        in_channels: usize,
        out_channels: usize,
        num_layers: usize,
        layer_width: usize,
        max_dilation: usize,
    ) -> Self {
        LeanMsdConfig {
            spatial_dims,
            in_channels,
            out_channels,
            num_layers,
            layer_width,
            max_dilation,
            custom_dilations: None,
            conv_kernel_size: 3,
            padding_mode: PaddingMode::Zeros,
            normalization: Norm::None,
            final_activation: None,
            relu_input: false,
        }
    }

    /// The dilation of every new channel, layer-major.
    pub fn dilations(&self) -> Vec<usize> {
        let n = self.num_layers * self.layer_width;
        match &self.custom_dilations {
            Some(d) if d.len() == n || d.is_empty() => d.clone(),
            Some(d) => d.iter().copied().cycle().take(n).collect(),
            None => cyclic_dilations(self.num_layers, self.layer_width, self.max_dilation),
        }
    }

    /// Channels of the feature buffer: `in_channels + num_layers·layer_width`.
    pub fn buffer_channels(&self) -> usize {
        self.in_channels + self.num_layers * self.layer_width
    }

    /// The fused block's hyperparameters.
    pub fn block_spec(&self) -> MsdSpec {
        MsdSpec {
            ndim: self.spatial_dims,
            in_channels: self.in_channels,
            width: self.layer_width,
            dilations: self.dilations(),
            kernel_size: self.conv_kernel_size,
            padding: self.padding_mode,
            norm: (self.normalization == Norm::Batch).then(MsdNorm::default),
        }
    }

    /// Checks every hyperparameter, saying what would be right.
    pub fn validate(&self) -> Result<()> {
        if !(2..=3).contains(&self.spatial_dims) {
            return Err(config_error(
                NET,
                format!("spatial_dims = {}; expected 2 or 3", self.spatial_dims),
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 {
            return Err(config_error(
                NET,
                "in_channels and out_channels must be at least 1",
            ));
        }
        if self.num_layers == 0 || self.layer_width == 0 {
            return Err(config_error(
                NET,
                "num_layers and layer_width must be at least 1",
            ));
        }
        match &self.custom_dilations {
            None if self.max_dilation == 0 => {
                return Err(config_error(
                    NET,
                    "max_dilation must be at least 1 (or give custom_dilations)",
                ))
            }
            Some(d) => {
                let n = self.num_layers * self.layer_width;
                if d.is_empty() || (d.len() != n && self.layer_width != 1) {
                    return Err(config_error(
                        NET,
                        format!(
                            "custom_dilations has {} entries; expected num_layers·layer_width = {n} (one per new channel, layer-major), or any non-empty list with layer_width 1 (repeated)",
                            d.len()
                        ),
                    ));
                }
            }
            None => {}
        }
        if !matches!(self.normalization, Norm::None | Norm::Batch) {
            return Err(config_error(
                NET,
                format!(
                    "normalization {:?} is not available: the lean network normalises each new channel with batch statistics (\"batch\") or not at all (\"none\")",
                    self.normalization
                ),
            ));
        }
        self.block_spec()
            .validate()
            .map_err(|e| config_error(NET, e.to_string()))
    }
}
