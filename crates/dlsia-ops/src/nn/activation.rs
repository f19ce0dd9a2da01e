//! Activation functions as a serialisable enum.

use candle_core::{Module, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{softmax_channels, FusedAct};

/// An activation function (PyTorch's module of the same name), usable as a layer.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// `max(x, 0) + slope·min(x, 0)` (PyTorch's default slope is 0.01).
    LeakyRelu(f64),
    /// `x` for `x > 0`, `α·(eˣ − 1)` otherwise (PyTorch's default α is 1).
    Elu(f64),
    /// The exact (erf) GELU, PyTorch's `nn.GELU()` default.
    Gelu,
    /// `x·σ(x)`.
    Silu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Softmax over the channel axis (`nn.Softmax(dim=1)`).
    Softmax,
    /// No-op.
    Identity,
}

impl std::str::FromStr for Activation {
    type Err = crate::Error;
    /// Parses `relu`, `leaky_relu`, `elu`, `gelu`, `silu`, `tanh`, `sigmoid`, `softmax`,
    /// `identity` (PyTorch defaults for the parameters).
    fn from_str(s: &str) -> crate::Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "relu" => Activation::Relu,
            "leaky_relu" | "leakyrelu" => Activation::LeakyRelu(0.01),
            "elu" => Activation::Elu(1.0),
            "gelu" => Activation::Gelu,
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "softmax" => Activation::Softmax,
            "identity" | "none" => Activation::Identity,
            other => {
                return Err(invalid(
                    "Activation",
                    format!("unknown activation `{other}`; expected relu, leaky_relu, elu, gelu, silu, tanh, sigmoid, softmax or identity"),
                ))
            }
        })
    }
}

impl Module for Activation {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match *self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(s) => candle_nn::ops::leaky_relu(x, s),
            Activation::Elu(a) => x.elu(a),
            Activation::Gelu => x.gelu_erf(),
            Activation::Silu => x.silu(),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => candle_nn::ops::sigmoid(x),
            Activation::Softmax => Ok(softmax_channels(x)?),
            Activation::Identity => Ok(x.clone()),
        }
    }
}

impl Activation {
    /// The activation as a [`FusedAct`] (for [`crate::batch_norm_act_train`]), if it is one
    /// of the fusable kinds (ReLU, leaky ReLU, identity).
    pub fn fused(&self) -> Option<FusedAct> {
        match *self {
            Activation::Relu => Some(FusedAct::Relu),
            Activation::LeakyRelu(s) => Some(FusedAct::LeakyRelu(s)),
            Activation::Identity => Some(FusedAct::Identity),
            _ => None,
        }
    }
}
