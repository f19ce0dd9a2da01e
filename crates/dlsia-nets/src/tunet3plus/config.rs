//! TUNet3+ hyperparameters (dlsia's `TUNet3Plus(...)` vocabulary).

use serde::{Deserialize, Serialize};

use crate::choices::{Act, FinalAct, Norm};
use crate::error::{config_error, Result};
use crate::tunet::{
    check_unet_common, default_dilation, default_growth, default_hidden, default_kernel,
    default_pool, UnetChannels, UnetCommon,
};

pub(crate) const NET: &str = "TUNet3+";

/// How a full-scale skip connection brings a deeper level up to a shallower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upsampling {
    /// Nearest-neighbour resize to the target level's size (`kernel_up=nn.Upsample`, the
    /// default); no parameters.
    #[default]
    Nearest,
    /// A transposed convolution `Cin → Cin` with kernel = stride = `pool^levels`
    /// (`kernel_up=nn.ConvTranspose2d`; the original supports it in 2-D only, this port in 3-D
    /// too).
    ConvTranspose,
}

/// Hyperparameters of a U-Net3+ with full-scale skip connections, with dlsia's names and
/// defaults. The original's `stride` argument is ignored by dlsia (overwritten by
/// `maxpool_kernel_size`) and is therefore not part of this configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuNet3PlusConfig {
    /// Spatial shape the original was built for (2 or 3 entries); fixes the number of spatial
    /// axes. The network takes any size the depth allows.
    pub image_shape: Vec<usize>,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of levels, bottleneck included (≥ 2).
    pub depth: usize,
    /// Channels of the first level.
    pub base_channels: usize,
    /// Channel growth between levels (default 2).
    #[serde(default = "default_growth")]
    pub growth_rate: f64,
    /// Channel growth inside a level (default 1).
    #[serde(default = "default_hidden")]
    pub hidden_rate: f64,
    /// Channels each skip connection carries; 0 (the default) means `base_channels`.
    #[serde(default)]
    pub carryover_channels: usize,
    /// Resampling of the upward skip connections (default nearest).
    #[serde(default)]
    pub upsampling: Upsampling,
    /// Normalisation after each convolution (default BatchNorm).
    #[serde(default)]
    pub normalization: Norm,
    /// Activation after each normalisation (default ReLU).
    #[serde(default)]
    pub activation: Act,
    /// Transform of the output (an addition: the original has none).
    #[serde(default)]
    pub final_activation: Option<FinalAct>,
    /// Convolution kernel size (odd, default 3).
    #[serde(default = "default_kernel")]
    pub conv_kernel_size: usize,
    /// Max-pool kernel = stride between levels (default 2).
    #[serde(default = "default_pool")]
    pub maxpool_kernel_size: usize,
    /// Must be 1 (see [`TuNetConfig::dilation`](crate::TuNetConfig::dilation)).
    #[serde(default = "default_dilation")]
    pub dilation: usize,
}

impl TuNet3PlusConfig {
    /// A configuration with the original's defaults for everything not given.
    pub fn new(
        image_shape: &[usize],
        in_channels: usize,
        out_channels: usize,
        depth: usize,
        base_channels: usize,
    ) -> Self {
        TuNet3PlusConfig {
            image_shape: image_shape.to_vec(),
            in_channels,
            out_channels,
            depth,
            base_channels,
            growth_rate: default_growth(),
            hidden_rate: default_hidden(),
            carryover_channels: 0,
            upsampling: Upsampling::default(),
            normalization: Norm::default(),
            activation: Act::default(),
            final_activation: None,
            conv_kernel_size: default_kernel(),
            maxpool_kernel_size: default_pool(),
            dilation: default_dilation(),
        }
    }

    /// Number of spatial axes.
    pub fn spatial_dims(&self) -> usize {
        self.image_shape.len()
    }

    /// Channels carried by each skip connection (`carryover_channels`, or `base_channels` if 0).
    pub fn carryover(&self) -> usize {
        if self.carryover_channels == 0 {
            self.base_channels
        } else {
            self.carryover_channels
        }
    }

    /// The encoder's channel counts.
    pub fn channels(&self) -> Result<UnetChannels> {
        UnetChannels::plan(
            NET,
            self.in_channels,
            self.depth,
            self.base_channels,
            self.growth_rate,
            self.hidden_rate,
        )
    }

    /// Trainable scalars of dlsia's unused `Decode_1 … Decode_{depth−2}` blocks (each
    /// `conv(cc·depth → cc)`, norm, `conv(cc → cc)`, norm), which this port does not build:
    /// dlsia's parameter count is the network's plus this.
    pub fn dlsia_unused_parameters(&self) -> usize {
        let (cc, d) = (self.carryover(), self.depth);
        let kv = self.conv_kernel_size.pow(self.spatial_dims() as u32);
        let norm = match self.normalization {
            Norm::Batch | Norm::Group { .. } => 2 * cc,
            Norm::Instance | Norm::None => 0,
        };
        let block = (cc * d * kv * cc + cc) + norm + (cc * kv * cc + cc) + norm;
        d.saturating_sub(2) * block
    }

    /// Checks every hyperparameter once.
    pub fn validate(&self) -> Result<()> {
        check_unet_common(
            NET,
            &UnetCommon {
                image_shape: &self.image_shape,
                in_channels: self.in_channels,
                out_channels: self.out_channels,
                depth: self.depth,
                base_channels: self.base_channels,
                growth_rate: self.growth_rate,
                hidden_rate: self.hidden_rate,
                normalization: self.normalization,
                activation: self.activation,
                conv_kernel_size: self.conv_kernel_size,
                maxpool_kernel_size: self.maxpool_kernel_size,
                dilation: self.dilation,
            },
        )?;
        let cc = self.carryover();
        self.normalization
            .check_channels(NET, cc, "the skip connections and Decode_0")?;
        let levels = self.depth - 1;
        if self
            .maxpool_kernel_size
            .checked_pow(levels as u32)
            .is_none()
        {
            return Err(config_error(
                NET,
                format!(
                    "maxpool_kernel_size {} to the power {levels} overflows",
                    self.maxpool_kernel_size
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carryover_zero_means_base_and_json_defaults() {
        let cfg: TuNet3PlusConfig = serde_json::from_str(
            r#"{"image_shape":[32,32],"in_channels":1,"out_channels":2,"depth":3,"base_channels":4}"#,
        )
        .unwrap();
        assert_eq!(cfg, TuNet3PlusConfig::new(&[32, 32], 1, 2, 3, 4));
        assert_eq!(cfg.carryover(), 4);
        assert_eq!(
            TuNet3PlusConfig {
                carryover_channels: 6,
                ..cfg.clone()
            }
            .carryover(),
            6
        );
        let e = serde_json::from_str::<TuNet3PlusConfig>(
            r#"{"image_shape":[32,32],"in_channels":1,"out_channels":2,"depth":3,"base_channels":4,"upsampling":"bilinear"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bilinear"), "{e}");
    }

    #[test]
    fn validation_covers_the_skip_channels() {
        let cfg = TuNet3PlusConfig {
            normalization: Norm::Group { groups: 4 },
            carryover_channels: 6,
            ..TuNet3PlusConfig::new(&[32, 32], 1, 2, 3, 4)
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("6 channels of the skip connections"), "{e}");
        let e = TuNet3PlusConfig::new(&[32, 32], 1, 2, 7, 4)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("too deep"), "{e}");
    }
}
