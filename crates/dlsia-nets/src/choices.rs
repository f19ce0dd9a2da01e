//! The normalisation and activation vocabulary shared by every architecture's configuration.
//!
//! In JSON/TOML a choice without parameters is a plain string (`"batch"`, `"relu"`), one with
//! parameters a one-key table (`{"group": {"groups": 4}}`, `{"leaky_relu": {"negative_slope":
//! 0.2}}`). The same names parse from strings for command lines ([`std::str::FromStr`]).
//!
//! ```
//! use dlsia_nets::{Act, Norm};
//!
//! let norm: Norm = serde_json::from_str(r#"{"group": {"groups": 4}}"#)?;
//! assert_eq!(norm, Norm::Group { groups: 4 });
//! assert_eq!("leaky_relu".parse::<Act>()?, Act::LeakyRelu { negative_slope: 0.01 });
//! assert_eq!(serde_json::to_string(&Act::default())?, r#""relu""#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{ModuleT, Tensor};
use dlsia_ops::nn::{Activation, BatchNorm, GroupNorm, InstanceNorm};
use dlsia_ops::ParamBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{config_error, Error, Result};

/// Normalisation applied after a convolution (PyTorch's `normalization=` class argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// `BatchNorm1d/2d/3d(channels)`: parameters `weight`, `bias`, buffers `running_mean`,
    /// `running_var`, `num_batches_tracked` (the original's default).
    #[default]
    Batch,
    /// `GroupNorm(groups, channels)`: parameters `weight`, `bias`; every normalised channel
    /// count must be divisible by `groups`.
    Group {
        /// Number of channel groups.
        groups: usize,
    },
    /// `InstanceNorm1d/2d/3d(channels)` with PyTorch's defaults: no parameters, no buffers.
    Instance,
    /// No normalisation layer at all (the original's `normalization=None`).
    None,
}

impl Norm {
    /// Whether a layer exists (and so occupies an index in a `Sequential`).
    pub fn is_some(&self) -> bool {
        !matches!(self, Norm::None)
    }

    /// Checks that the choice can normalise `channels` channels.
    pub fn check_channels(&self, net: &'static str, channels: usize, layer: &str) -> Result<()> {
        if let Norm::Group { groups } = *self {
            if groups == 0 || channels % groups != 0 {
                return Err(config_error(
                    net,
                    format!(
                        "GroupNorm with {groups} groups cannot normalise the {channels} channels of {layer}; choose a group count that divides every layer's channel count"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Builds the layer for `channels` channels under `pb`, or `None` for [`Norm::None`].
    pub fn layer(&self, pb: &ParamBuilder, channels: usize) -> Result<Option<NormLayer>> {
        Ok(match *self {
            Norm::Batch => Some(NormLayer::Batch(BatchNorm::new(pb, channels)?)),
            Norm::Group { groups } => Some(NormLayer::Group(GroupNorm::new(pb, groups, channels)?)),
            Norm::Instance => Some(NormLayer::Instance(InstanceNorm::new(pb, channels)?)),
            Norm::None => None,
        })
    }
}

impl std::str::FromStr for Norm {
    type Err = Error;
    /// Parses `batch`, `instance`, `none` and `group:<groups>`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, arg) = match lower.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (lower.as_str(), None),
        };
        match (name, arg) {
            ("batch" | "batchnorm" | "batch_norm", None) => Ok(Norm::Batch),
            ("instance" | "instancenorm" | "instance_norm", None) => Ok(Norm::Instance),
            ("none", None) => Ok(Norm::None),
            ("group" | "groupnorm" | "group_norm", Some(g)) => {
                g.parse().map(|groups| Norm::Group { groups }).map_err(|_| {
                    config_error(
                        "normalization",
                        format!("`{s}`: the group count must be a positive integer, e.g. group:4"),
                    )
                })
            }
            _ => Err(config_error(
                "normalization",
                format!(
                    "unknown normalisation `{s}`; expected batch, instance, none or group:<groups>"
                ),
            )),
        }
    }
}

/// A built normalisation layer.
#[derive(Debug, Clone)]
pub enum NormLayer {
    /// Batch normalisation.
    Batch(BatchNorm),
    /// Group normalisation.
    Group(GroupNorm),
    /// Instance normalisation.
    Instance(InstanceNorm),
}

impl ModuleT for NormLayer {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        match self {
            NormLayer::Batch(l) => l.forward_t(x, train),
            NormLayer::Group(l) => l.forward_t(x, train),
            NormLayer::Instance(l) => l.forward_t(x, train),
        }
    }
}

/// Activation applied after each normalisation (PyTorch's `activation=` instance argument).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// `nn.ReLU()` (the original's default).
    #[default]
    Relu,
    /// `nn.LeakyReLU(negative_slope)` (PyTorch's default slope 0.01).
    LeakyRelu {
        /// Slope for negative inputs.
        negative_slope: f64,
    },
    /// `nn.ELU(alpha)` (PyTorch's default α = 1).
    Elu {
        /// Saturation value for negative inputs is −α.
        alpha: f64,
    },
    /// `nn.GELU()` (exact, erf-based).
    Gelu,
    /// `nn.SiLU()`.
    Silu,
    /// `nn.Tanh()`.
    Tanh,
    /// No activation layer (the original's `activation=None`).
    None,
}

impl Act {
    /// Whether a layer exists (and so occupies an index in a `Sequential`).
    pub fn is_some(&self) -> bool {
        !matches!(self, Act::None)
    }

    /// Checks the parameters (finite slope / α).
    pub fn check(&self, net: &'static str) -> Result<()> {
        match *self {
            Act::LeakyRelu { negative_slope: v } | Act::Elu { alpha: v } if !v.is_finite() => Err(
                config_error(net, format!("activation {self:?} needs a finite parameter")),
            ),
            _ => Ok(()),
        }
    }

    /// The layer, or `None` for [`Act::None`].
    pub fn layer(&self) -> Option<Activation> {
        match *self {
            Act::Relu => Some(Activation::Relu),
            Act::LeakyRelu { negative_slope } => Some(Activation::LeakyRelu(negative_slope)),
            Act::Elu { alpha } => Some(Activation::Elu(alpha)),
            Act::Gelu => Some(Activation::Gelu),
            Act::Silu => Some(Activation::Silu),
            Act::Tanh => Some(Activation::Tanh),
            Act::None => None,
        }
    }
}

impl std::str::FromStr for Act {
    type Err = Error;
    /// Parses `relu`, `leaky_relu[:slope]`, `elu[:alpha]`, `gelu`, `silu`, `tanh`, `none`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, arg) = match lower.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (lower.as_str(), None),
        };
        let num = |default: f64| -> Result<f64> {
            match arg {
                None => Ok(default),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        config_error("activation", format!("`{s}`: `{a}` is not a finite number"))
                    }),
            }
        };
        let plain = |a: Act| -> Result<Act> {
            match arg {
                None => Ok(a),
                Some(_) => Err(config_error(
                    "activation",
                    format!("`{s}`: this activation takes no parameter"),
                )),
            }
        };
        match name {
            "relu" => plain(Act::Relu),
            "leaky_relu" | "leakyrelu" => Ok(Act::LeakyRelu {
                negative_slope: num(0.01)?,
            }),
            "elu" => Ok(Act::Elu { alpha: num(1.0)? }),
            "gelu" => plain(Act::Gelu),
            "silu" | "swish" => plain(Act::Silu),
            "tanh" => plain(Act::Tanh),
            "none" | "identity" => plain(Act::None),
            _ => Err(config_error(
                "activation",
                format!("unknown activation `{s}`; expected relu, leaky_relu[:slope], elu[:alpha], gelu, silu, tanh or none"),
            )),
        }
    }
}

/// A transform applied to a network's output (TUNet's `final_activation`, MSAE's `final_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalAct {
    /// Logistic sigmoid, element-wise.
    Sigmoid,
    /// Softmax over the channel axis.
    Softmax,
}

impl FinalAct {
    /// The layer.
    pub fn layer(&self) -> Activation {
        match self {
            FinalAct::Sigmoid => Activation::Sigmoid,
            FinalAct::Softmax => Activation::Softmax,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_snake_case_and_round_trip() {
        for (v, s) in [
            (Norm::Batch, r#""batch""#),
            (Norm::Instance, r#""instance""#),
            (Norm::None, r#""none""#),
            (Norm::Group { groups: 4 }, r#"{"group":{"groups":4}}"#),
        ] {
            assert_eq!(serde_json::to_string(&v).unwrap(), s);
            assert_eq!(serde_json::from_str::<Norm>(s).unwrap(), v);
        }
        for (v, s) in [
            (Act::Relu, r#""relu""#),
            (Act::Tanh, r#""tanh""#),
            (
                Act::LeakyRelu {
                    negative_slope: 0.2,
                },
                r#"{"leaky_relu":{"negative_slope":0.2}}"#,
            ),
            (Act::Elu { alpha: 1.5 }, r#"{"elu":{"alpha":1.5}}"#),
        ] {
            assert_eq!(serde_json::to_string(&v).unwrap(), s);
            assert_eq!(serde_json::from_str::<Act>(s).unwrap(), v);
        }
        assert_eq!(
            serde_json::to_string(&FinalAct::Softmax).unwrap(),
            r#""softmax""#
        );
    }

    #[test]
    fn parse_from_strings_and_reject_nonsense() {
        assert_eq!(
            "group:8".parse::<Norm>().unwrap(),
            Norm::Group { groups: 8 }
        );
        assert_eq!("BatchNorm".parse::<Norm>().unwrap(), Norm::Batch);
        assert!("group".parse::<Norm>().is_err());
        assert!("group:x".parse::<Norm>().is_err());
        assert!("layer".parse::<Norm>().is_err());
        assert_eq!("elu:0.5".parse::<Act>().unwrap(), Act::Elu { alpha: 0.5 });
        assert_eq!("none".parse::<Act>().unwrap(), Act::None);
        let e = "relu:2".parse::<Act>().unwrap_err().to_string();
        assert!(e.contains("no parameter"), "{e}");
        assert!("leaky_relu:nan".parse::<Act>().is_err());
        assert!("prelu"
            .parse::<Act>()
            .unwrap_err()
            .to_string()
            .contains("gelu"));
    }

    #[test]
    fn group_norm_divisibility_and_activation_checks() {
        let g = Norm::Group { groups: 3 };
        assert!(g.check_channels("TUNet", 9, "Encode_0").is_ok());
        let e = g
            .check_channels("TUNet", 8, "Encode_0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("8 channels of Encode_0"), "{e}");
        assert!(Norm::Group { groups: 0 }
            .check_channels("x", 4, "l")
            .is_err());
        assert!(Act::Elu {
            alpha: f64::INFINITY
        }
        .check("x")
        .is_err());
        assert!(Act::Relu.check("x").is_ok());
        assert!(!Act::None.is_some() && !Norm::None.is_some());
    }
}
