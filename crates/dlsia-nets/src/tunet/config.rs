//! TUNet hyperparameters (dlsia's `TUNet(...)` constructor vocabulary) and channel arithmetic.

use serde::{Deserialize, Serialize};

use crate::blocks::min_size;
use crate::choices::{Act, FinalAct, Norm};
use crate::error::{config_error, Result};

pub(crate) const NET: &str = "TUNet";

pub(crate) fn default_growth() -> f64 {
    2.0
}
pub(crate) fn default_hidden() -> f64 {
    1.0
}
pub(crate) fn default_kernel() -> usize {
    3
}
pub(crate) fn default_pool() -> usize {
    2
}
pub(crate) fn default_dilation() -> usize {
    1
}

/// Hyperparameters of a tunable U-Net, with dlsia's names and defaults.
///
/// ```
/// use dlsia_nets::TuNetConfig;
///
/// let cfg = TuNetConfig::new(&[256, 256], 1, 2, 4, 16);
/// cfg.validate()?;
/// let json = serde_json::to_value(&cfg)?;
/// assert_eq!(json["growth_rate"], 2.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuNetConfig {
    /// Spatial shape the original was built for (2 or 3 entries, no channel axis). It fixes the
    /// number of spatial axes; the network itself takes any size the depth allows.
    pub image_shape: Vec<usize>,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (classes).
    pub out_channels: usize,
    /// Number of levels, bottleneck included (≥ 2).
    pub depth: usize,
    /// Channels of the first level.
    pub base_channels: usize,
    /// Channel growth from one level to the next (may be non-integer; truncated like Python's
    /// `int()`), default 2.
    #[serde(default = "default_growth")]
    pub growth_rate: f64,
    /// Channel growth inside a level, between its two convolutions, default 1.
    #[serde(default = "default_hidden")]
    pub hidden_rate: f64,
    /// Normalisation after each convolution, default BatchNorm.
    #[serde(default)]
    pub normalization: Norm,
    /// Activation after each normalisation, default ReLU.
    #[serde(default)]
    pub activation: Act,
    /// Transform of the output. The original does not save it (quirk): this port does.
    #[serde(default)]
    pub final_activation: Option<FinalAct>,
    /// Convolution kernel size (odd), default 3.
    #[serde(default = "default_kernel")]
    pub conv_kernel_size: usize,
    /// Max-pool kernel = stride = transposed-convolution kernel between levels, default 2.
    #[serde(default = "default_pool")]
    pub maxpool_kernel_size: usize,
    /// Must be 1: the original's sizing chart is inconsistent for any other value, so no dlsia
    /// TUNet with `dilation != 1` can run (kept for the original's vocabulary).
    #[serde(default = "default_dilation")]
    pub dilation: usize,
}

impl TuNetConfig {
    /// A configuration with the original's defaults for everything not given.
    pub fn new(
        image_shape: &[usize],
        in_channels: usize,
        out_channels: usize,
        depth: usize,
        base_channels: usize,
    ) -> Self {
        TuNetConfig {
            image_shape: image_shape.to_vec(),
            in_channels,
            out_channels,
            depth,
            base_channels,
            growth_rate: default_growth(),
            hidden_rate: default_hidden(),
            normalization: Norm::default(),
            activation: Act::default(),
            final_activation: None,
            conv_kernel_size: default_kernel(),
            maxpool_kernel_size: default_pool(),
            dilation: default_dilation(),
        }
    }

    /// Number of spatial axes (length of `image_shape`).
    pub fn spatial_dims(&self) -> usize {
        self.image_shape.len()
    }

    /// The channel counts of every level (fails on hyperparameters that give zero channels).
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

    /// Checks every hyperparameter once; a network is only built from a valid configuration.
    pub fn validate(&self) -> Result<()> {
        let ch = check_unet_common(
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
        for i in 0..self.depth - 1 {
            let name = format!("Decode_{i}");
            self.normalization
                .check_channels(NET, ch.enc_out[i], &name)?;
            self.normalization
                .check_channels(NET, ch.enc_mid[i], &name)?;
        }
        Ok(())
    }
}

/// Channel counts of the encoder levels of a TUNet or TUNet3+ (dlsia's
/// `encoder_layer_channels_{in,middle,out}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnetChannels {
    /// Input channels of each level's block.
    pub enc_in: Vec<usize>,
    /// Channels after each level's first convolution.
    pub enc_mid: Vec<usize>,
    /// Channels after each level's second convolution.
    pub enc_out: Vec<usize>,
}

impl UnetChannels {
    /// `mid[0] = int(base)`, `mid[i] = int(in[i]·growth)`, `out[i] = int(mid[i]·hidden)`,
    /// `in[i] = out[i−1]`, with Python's truncation toward zero.
    pub(crate) fn plan(
        net: &'static str,
        in_channels: usize,
        depth: usize,
        base: usize,
        growth: f64,
        hidden: f64,
    ) -> Result<Self> {
        let (mut enc_in, mut enc_mid, mut enc_out) = (vec![], vec![], vec![]);
        for i in 0..depth {
            let cin = if i == 0 { in_channels } else { enc_out[i - 1] };
            let mid = if i == 0 {
                base
            } else {
                (cin as f64 * growth) as usize
            };
            let out = (mid as f64 * hidden) as usize;
            if mid == 0 || out == 0 {
                return Err(config_error(
                    net,
                    format!(
                        "level {i} would have {mid} hidden and {out} output channels (growth_rate {growth}, hidden_rate {hidden}, truncated like Python's int()); use larger base_channels or rates"
                    ),
                ));
            }
            enc_in.push(cin);
            enc_mid.push(mid);
            enc_out.push(out);
        }
        Ok(UnetChannels {
            enc_in,
            enc_mid,
            enc_out,
        })
    }
}

/// The hyperparameters TUNet and TUNet3+ share, borrowed for validation.
pub(crate) struct UnetCommon<'a> {
    pub image_shape: &'a [usize],
    pub in_channels: usize,
    pub out_channels: usize,
    pub depth: usize,
    pub base_channels: usize,
    pub growth_rate: f64,
    pub hidden_rate: f64,
    pub normalization: Norm,
    pub activation: Act,
    pub conv_kernel_size: usize,
    pub maxpool_kernel_size: usize,
    pub dilation: usize,
}

/// Validates what TUNet and TUNet3+ share and returns the encoder channel plan.
pub(crate) fn check_unet_common(net: &'static str, c: &UnetCommon) -> Result<UnetChannels> {
    let nd = c.image_shape.len();
    if !(2..=3).contains(&nd) {
        return Err(config_error(
            net,
            format!(
                "image_shape {:?} must have 2 (H, W) or 3 (D, H, W) entries, without the channel axis",
                c.image_shape
            ),
        ));
    }
    for (name, v) in [
        ("in_channels", c.in_channels),
        ("out_channels", c.out_channels),
        ("base_channels", c.base_channels),
    ] {
        if v == 0 {
            return Err(config_error(net, format!("{name} must be at least 1")));
        }
    }
    if c.depth < 2 {
        return Err(config_error(
            net,
            format!(
                "depth {} is too shallow: a U-Net needs at least 2 levels (one pooling step)",
                c.depth
            ),
        ));
    }
    for (name, v) in [
        ("growth_rate", c.growth_rate),
        ("hidden_rate", c.hidden_rate),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(config_error(
                net,
                format!("{name} must be finite and positive, got {v}"),
            ));
        }
    }
    if c.conv_kernel_size % 2 == 0 {
        return Err(config_error(
            net,
            format!(
                "conv_kernel_size {} must be odd: padding (k − 1)/2 keeps the size only for odd kernels",
                c.conv_kernel_size
            ),
        ));
    }
    if c.maxpool_kernel_size == 0 {
        return Err(config_error(net, "maxpool_kernel_size must be at least 1"));
    }
    if c.dilation != 1 {
        return Err(config_error(
            net,
            format!(
                "dilation {} is not supported: dlsia sizes its charts with the dilation but builds its max-pool and transposed convolutions without it, so no such network runs; use 1",
                c.dilation
            ),
        ));
    }
    let min = min_size(c.maxpool_kernel_size, c.depth - 1);
    if c.image_shape.iter().any(|&n| n < min) {
        return Err(config_error(
            net,
            format!(
                "depth {} is too deep for image_shape {:?}: {} poolings by {} need every spatial size ≥ {min}; use a smaller depth or a larger image",
                c.depth, c.image_shape, c.depth - 1, c.maxpool_kernel_size
            ),
        ));
    }
    c.activation.check(net)?;
    let ch = UnetChannels::plan(
        net,
        c.in_channels,
        c.depth,
        c.base_channels,
        c.growth_rate,
        c.hidden_rate,
    )?;
    for i in 0..c.depth {
        let name = if i + 1 == c.depth {
            format!("Final_layer_{i}")
        } else {
            format!("Encode_{i}")
        };
        c.normalization.check_channels(net, ch.enc_mid[i], &name)?;
        c.normalization.check_channels(net, ch.enc_out[i], &name)?;
    }
    Ok(ch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_arithmetic_truncates_like_python() {
        // dlsia.md §2.3: TUNet((33,30), 2, 3, depth=4, base=6, growth=1.5, hidden=1.5)
        let c = UnetChannels::plan(NET, 2, 4, 6, 1.5, 1.5).unwrap();
        assert_eq!(c.enc_mid, [6, 13, 28, 63]);
        assert_eq!(c.enc_out, [9, 19, 42, 94]);
        assert_eq!(c.enc_in, [2, 9, 19, 42]);
    }

    #[test]
    fn rejects_impossible_hyperparameters_with_a_reason() {
        let ok = TuNetConfig::new(&[32, 32], 1, 2, 3, 4);
        ok.validate().unwrap();
        let cases: Vec<(TuNetConfig, &str)> = vec![
            (TuNetConfig::new(&[32], 1, 2, 3, 4), "2 (H, W) or 3"),
            (TuNetConfig::new(&[32, 32], 0, 2, 3, 4), "in_channels"),
            (TuNetConfig::new(&[32, 32], 1, 2, 1, 4), "at least 2 levels"),
            (TuNetConfig::new(&[32, 7], 1, 2, 4, 4), "≥ 8"),
            (
                TuNetConfig {
                    growth_rate: f64::NAN,
                    ..ok.clone()
                },
                "growth_rate",
            ),
            (
                TuNetConfig {
                    growth_rate: 0.1,
                    ..ok.clone()
                },
                "level 1 would have 0",
            ),
            (
                TuNetConfig {
                    conv_kernel_size: 4,
                    ..ok.clone()
                },
                "odd",
            ),
            (
                TuNetConfig {
                    dilation: 2,
                    ..ok.clone()
                },
                "dilation 2",
            ),
            (
                TuNetConfig {
                    normalization: Norm::Group { groups: 3 },
                    ..ok.clone()
                },
                "GroupNorm with 3 groups",
            ),
        ];
        for (cfg, want) in cases {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(want), "expected `{want}` in `{e}`");
        }
    }

    #[test]
    fn json_uses_the_originals_names_and_defaults() {
        let cfg: TuNetConfig = serde_json::from_str(
            r#"{"image_shape":[64,64],"in_channels":1,"out_channels":3,"depth":3,"base_channels":8}"#,
        )
        .unwrap();
        assert_eq!(cfg, TuNetConfig::new(&[64, 64], 1, 3, 3, 8));
        let e = serde_json::from_str::<TuNetConfig>(
            r#"{"image_shape":[64,64],"in_channels":1,"out_channels":3,"depth":3,"base_channels":8,"growht_rate":2}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("growht_rate"), "{e}");
    }
}
