//! AggNet: a small stack of 1×1 convolutions that learns to combine the outputs of ensemble
//! members (the original's `AggregateNet`, same parameter names), and an ensemble predictor that
//! uses it.

use candle_core::{Module, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use dlsia_losses::ops::{sigmoid, softmax_channels};
use dlsia_losses::Loss;
use dlsia_ops::nn::Conv;
use dlsia_ops::{ConvSpec, ParamBuilder, ParamStore};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::error::{invalid_config, Result};
use crate::predictor::{check_output, Predictor};

/// The activation after AggNet's last convolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalActivation {
    /// None: the output are logits (what [`AggregatedEnsemble`] expects by default).
    #[default]
    None,
    /// Softmax over the channels.
    Softmax,
    /// Element-wise sigmoid (not usable as an ensemble [`Predictor`]: channels do not sum to 1).
    Sigmoid,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn two() -> usize {
    2
}

/// AggNet hyperparameters (the original's `AggregateNet(in_channels, out_channels, layers=1,
/// relu=True, bias=True, final_activation=None)`, plus the number of spatial axes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggNetConfig {
    /// Input channels (members × classes when combining member probabilities).
    pub in_channels: usize,
    /// Output channels (classes).
    pub out_channels: usize,
    /// Number of 1×1 convolutions (≥ 1): `layers − 1` hidden `in → in` ones, then `in → out`.
    #[serde(default = "one")]
    pub layers: usize,
    /// ReLU after every hidden convolution.
    #[serde(default = "yes")]
    pub relu: bool,
    /// Convolutions with bias.
    #[serde(default = "yes")]
    pub bias: bool,
    /// Activation after the last convolution.
    #[serde(default)]
    pub final_activation: FinalActivation,
    /// 2 (images; the original's Conv2d weights `(out, in, 1, 1)`) or 3 (volumes).
    #[serde(default = "two")]
    pub spatial_dims: usize,
}

impl AggNetConfig {
    /// The original's defaults for `in_channels → out_channels`.
    pub fn new(in_channels: usize, out_channels: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            layers: 1,
            relu: true,
            bias: true,
            final_activation: FinalActivation::None,
            spatial_dims: 2,
        }
    }

    /// Checks the hyperparameters and creates the parameters under `pb`: `conv.{j}.weight`
    /// (`j` counts the original's `nn.Sequential` slots, ReLUs included) and
    /// `final_conv.weight`, with biases, initialised like PyTorch's `Conv2d` from the store's
    /// seed.
    pub fn build(&self, pb: &ParamBuilder) -> Result<AggNet> {
        if self.in_channels == 0 || self.out_channels == 0 || self.layers == 0 {
            return Err(invalid_config(
                "AggNet",
                format!(
                    "in_channels ({}), out_channels ({}) and layers ({}) must be positive",
                    self.in_channels, self.out_channels, self.layers
                ),
            ));
        }
        if !(1..=3).contains(&self.spatial_dims) {
            return Err(invalid_config(
                "AggNet",
                format!("spatial_dims must be 1, 2 or 3, got {}", self.spatial_dims),
            ));
        }
        let kernel = vec![1; self.spatial_dims];
        let spec = ConvSpec::new(self.spatial_dims);
        let step = if self.relu { 2 } else { 1 };
        let hidden = (0..self.layers - 1)
            .map(|i| {
                Conv::new(
                    &pb.pp("conv").pp(step * i),
                    self.in_channels,
                    self.in_channels,
                    &kernel,
                    spec.clone(),
                    self.bias,
                )
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let final_conv = Conv::new(
            &pb.pp("final_conv"),
            self.in_channels,
            self.out_channels,
            &kernel,
            spec,
            self.bias,
        )?;
        Ok(AggNet {
            cfg: self.clone(),
            hidden,
            final_conv,
        })
    }
}

/// A stack of 1×1 convolutions, `(N, in, spatial…) → (N, out, spatial…)`.
#[derive(Debug, Clone)]
pub struct AggNet {
    cfg: AggNetConfig,
    hidden: Vec<Conv>,
    final_conv: Conv,
}

impl AggNet {
    /// The hyperparameters.
    pub fn config(&self) -> &AggNetConfig {
        &self.cfg
    }

    /// The forward pass.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for conv in &self.hidden {
            h = conv.forward(&h)?;
            if self.cfg.relu {
                h = h.relu()?;
            }
        }
        let out = self.final_conv.forward(&h)?;
        Ok(match self.cfg.final_activation {
            FinalActivation::None => out,
            FinalActivation::Softmax => softmax_channels(&out)?,
            FinalActivation::Sigmoid => sigmoid(&out)?,
        })
    }
}

/// How [`train_aggnet`] optimises.
#[derive(Debug, Clone, PartialEq)]
pub struct AggNetTraining {
    /// Passes over the batches.
    pub epochs: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay (0 = Adam).
    pub weight_decay: f64,
    /// Show a progress bar on standard error.
    pub show_progress: bool,
}

impl Default for AggNetTraining {
    fn default() -> Self {
        Self {
            epochs: 50,
            learning_rate: 1e-2,
            weight_decay: 0.0,
            show_progress: false,
        }
    }
}

/// Trains `net` (whose parameters live in `store`) on `(features, target)` batches with `loss`
/// (e.g. a cross-entropy with ignore label on AggNet's logits), visiting the batches in order.
/// Returns the mean loss of every epoch.
pub fn train_aggnet(
    net: &AggNet,
    store: &ParamStore,
    batches: &[(Tensor, Tensor)],
    loss: &dyn Loss,
    cfg: &AggNetTraining,
) -> Result<Vec<f64>> {
    if batches.is_empty() || cfg.epochs == 0 {
        return Err(invalid_config(
            "train_aggnet",
            "training needs at least one batch and one epoch",
        ));
    }
    let lr_ok = cfg.learning_rate.is_finite() && cfg.learning_rate > 0.0;
    let wd_ok = cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0;
    if !(lr_ok && wd_ok) {
        return Err(invalid_config(
            "train_aggnet",
            format!(
                "learning_rate must be positive and weight_decay non-negative, got {} and {}",
                cfg.learning_rate, cfg.weight_decay
            ),
        ));
    }
    let mut opt = AdamW::new(
        store.trainable_vars(),
        ParamsAdamW {
            lr: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let pb = if cfg.show_progress {
        ProgressBar::new(cfg.epochs as u64)
    } else {
        ProgressBar::hidden()
    };
    let mut history = Vec::with_capacity(cfg.epochs);
    for _ in 0..cfg.epochs {
        let mut total = 0.0;
        for (x, y) in batches {
            let l = loss.loss(&net.forward(x)?, y, None)?;
            total += l.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            opt.backward_step(&l)?;
        }
        let mean = total / batches.len() as f64;
        pb.set_message(format!("loss {mean:.4}"));
        pb.inc(1);
        history.push(mean);
    }
    pb.finish_and_clear();
    Ok(history)
}

/// An ensemble whose members' class probabilities are concatenated along the channel axis and
/// combined by an [`AggNet`]; as a [`Predictor`] it returns AggNet's softmax (or its output when
/// AggNet already ends in a softmax).
pub struct AggregatedEnsemble {
    members: Vec<Box<dyn Predictor>>,
    net: AggNet,
}

impl AggregatedEnsemble {
    /// Combines `members` with `net`, whose input channels must equal the members' classes
    /// summed and whose output must be at least 2 classes without a sigmoid.
    pub fn new(members: Vec<Box<dyn Predictor>>, net: AggNet) -> Result<Self> {
        let total: usize = members.iter().map(|m| m.num_classes()).sum();
        let cfg = net.config();
        if members.is_empty() || total != cfg.in_channels {
            return Err(invalid_config(
                "AggregatedEnsemble",
                format!(
                    "AggNet takes {} channels, the {} members give {total}",
                    cfg.in_channels,
                    members.len()
                ),
            ));
        }
        if cfg.out_channels < 2 || cfg.final_activation == FinalActivation::Sigmoid {
            return Err(invalid_config(
                "AggregatedEnsemble",
                "AggNet must output at least 2 classes as logits or a softmax",
            ));
        }
        Ok(Self { members, net })
    }

    /// The members' probabilities concatenated along the channel axis (AggNet's input; use it
    /// to build training batches for [`train_aggnet`]). Detached from the members' graphs.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let parts = self
            .members
            .iter()
            .map(|m| {
                let p = m.predict_proba(x)?.detach();
                check_output("AggregatedEnsemble member", &p, x, m.num_classes())?;
                Ok(p)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 1)?)
    }

    /// The aggregation network.
    pub fn net(&self) -> &AggNet {
        &self.net
    }
}

impl Predictor for AggregatedEnsemble {
    fn predict_proba(&self, x: &Tensor) -> Result<Tensor> {
        let out = self.net.forward(&self.features(x)?)?;
        Ok(match self.net.config().final_activation {
            FinalActivation::Softmax => out,
            _ => softmax_channels(&out)?,
        })
    }

    fn num_classes(&self) -> usize {
        self.net.config().out_channels
    }
}
