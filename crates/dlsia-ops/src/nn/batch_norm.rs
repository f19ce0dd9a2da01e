//! Batch normalisation over any rank ≥ 2 (`BatchNorm1d/2d/3d`), PyTorch semantics and names.

use candle_core::{DType, ModuleT, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::Conv;
use super::{check_input, per_channel};
use crate::error::{invalid, Error, Result};
use crate::params::{Init, ParamBuilder};
use crate::{
    batch_norm_act_train, batch_norm_train, channel_affine, conv_batch_norm_act_train, ActOrder,
    FusedAct, NormActSpec,
};

/// Hyperparameters of [`BatchNorm`], PyTorch's defaults by `Default`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchNormConfig {
    /// Added to the variance before the square root (1e-5).
    pub eps: f64,
    /// Weight of the new batch in the running averages (0.1); `None` = cumulative average.
    pub momentum: Option<f64>,
    /// Learn a per-channel scale `weight` and shift `bias` (true).
    pub affine: bool,
    /// Keep running statistics for eval mode (true). Without them (SMSNet's `LinearReLU`),
    /// batch statistics are used in train and eval mode alike and only weight/bias are stored.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

impl BatchNormConfig {
    fn validate(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(invalid(
                "BatchNorm",
                format!("eps must be finite and positive, got {}", self.eps),
            ));
        }
        if let Some(m) = self.momentum {
            if !(0.0..=1.0).contains(&m) {
                return Err(invalid(
                    "BatchNorm",
                    format!("momentum must be in [0, 1], got {m}"),
                ));
            }
        }
        Ok(())
    }
}

/// Running statistics of a normalisation layer.
#[derive(Debug, Clone)]
pub(crate) struct RunningStats {
    pub mean: Var,
    pub var: Var,
    pub num_batches_tracked: Var,
}

impl RunningStats {
    pub(crate) fn new(pb: &ParamBuilder, c: usize) -> Result<Self> {
        Ok(RunningStats {
            mean: pb.buffer("running_mean", c, Init::Const(0.0))?,
            var: pb.buffer("running_var", c, Init::Const(1.0))?,
            num_batches_tracked: pb.int_buffer("num_batches_tracked", (), 0)?,
        })
    }

    /// `running ← (1 − f)·running + f·batch` for mean and (unbiased) variance.
    pub(crate) fn update(
        &self,
        factor: f64,
        mean: &Tensor,
        unbiased_var: &Tensor,
    ) -> candle_core::Result<()> {
        let dt = self.mean.dtype();
        let upd = |r: &Var, b: &Tensor| -> candle_core::Result<()> {
            let b = b.detach().flatten_all()?.to_dtype(dt)?;
            let new = ((r.as_tensor() * (1.0 - factor))? + (b * factor)?)?;
            r.set(&new)
        };
        upd(&self.mean, mean)?;
        upd(&self.var, unbiased_var)
    }

    /// Increments `num_batches_tracked` and returns the new count.
    pub(crate) fn count_batch(&self) -> candle_core::Result<i64> {
        let n = self
            .num_batches_tracked
            .as_tensor()
            .to_dtype(DType::I64)?
            .to_scalar::<i64>()?
            + 1;
        self.num_batches_tracked
            .set(&Tensor::new(n, self.num_batches_tracked.device())?)?;
        Ok(n)
    }
}

/// Batch normalisation: per channel, `(x − mean)/√(var + eps)·weight + bias` with batch
/// statistics (biased variance) in training and running statistics in eval mode. Training
/// updates `running_mean`, `running_var` (unbiased variance) and `num_batches_tracked`, as
/// PyTorch does. Parameters: `weight` (ones), `bias` (zeros); buffers `running_mean`,
/// `running_var`, `num_batches_tracked` (int64, 0-d).
#[derive(Debug, Clone)]
pub struct BatchNorm {
    name: String,
    channels: usize,
    cfg: BatchNormConfig,
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    stats: Option<RunningStats>,
}

impl BatchNorm {
    /// A layer with PyTorch's defaults.
    pub fn new(pb: &ParamBuilder, channels: usize) -> Result<Self> {
        Self::with_config(pb, channels, BatchNormConfig::default())
    }

    /// A layer with explicit hyperparameters.
    pub fn with_config(pb: &ParamBuilder, channels: usize, cfg: BatchNormConfig) -> Result<Self> {
        cfg.validate()?;
        if channels == 0 {
            return Err(invalid("BatchNorm", "needs at least one channel"));
        }
        let (weight, bias) = if cfg.affine {
            (
                Some(pb.param("weight", channels, Init::Const(1.0))?),
                Some(pb.param("bias", channels, Init::Const(0.0))?),
            )
        } else {
            (None, None)
        };
        let stats = if cfg.track_running_stats {
            Some(RunningStats::new(pb, channels)?)
        } else {
            None
        };
        Ok(BatchNorm {
            name: pb.prefix().to_string(),
            channels,
            cfg,
            weight,
            bias,
            stats,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &BatchNormConfig {
        &self.cfg
    }
    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// The running mean, if tracked.
    pub fn running_mean(&self) -> Option<&Tensor> {
        self.stats.as_ref().map(|s| s.mean.as_tensor())
    }
    /// The running variance, if tracked.
    pub fn running_var(&self) -> Option<&Tensor> {
        self.stats.as_ref().map(|s| s.var.as_tensor())
    }
    /// Number of training batches seen, if tracked.
    pub fn num_batches_tracked(&self) -> Option<i64> {
        self.stats
            .as_ref()
            .and_then(|s| s.num_batches_tracked.as_tensor().to_scalar::<i64>().ok())
    }
}

impl BatchNorm {
    /// Training-mode forward (batch statistics, running statistics updated) of
    /// `act(BN(x + pre_bias))` ([`ActOrder::AfterNorm`]) or `BN(act(x + pre_bias))`
    /// ([`ActOrder::BeforeNorm`]) as one fused op ([`batch_norm_act_train`]): the same values and
    /// gradients as a bias addition, this layer's `forward_t(·, true)` and the activation in
    /// sequence, at a fraction of the cost. `pre_bias` is typically the preceding convolution's
    /// bias (the convolution then runs without it).
    pub fn forward_train_fused(
        &self,
        x: &Tensor,
        pre_bias: Option<&Tensor>,
        act: FusedAct,
        order: ActOrder,
    ) -> Result<Tensor> {
        check_input(
            &format!("BatchNorm `{}`", self.name),
            x,
            self.channels,
            None,
        )?;
        let out = batch_norm_act_train(
            x,
            pre_bias,
            self.weight.as_ref(),
            self.bias.as_ref(),
            self.cfg.eps,
            act,
            order,
        )
        .map_err(|e| match e {
            Error::InvalidArgument { msg, .. } => {
                invalid("BatchNorm", format!("`{}`: {msg}", self.name))
            }
            other => other,
        })?;
        self.update_running(x, &out)?;
        Ok(out.y)
    }

    /// Training-mode forward of `act(BN(conv(x)))` ([`ActOrder::AfterNorm`]) or
    /// `BN(act(conv(x)))` ([`ActOrder::BeforeNorm`]), the convolution with its bias, as one
    /// fused op ([`conv_batch_norm_act_train`]); running statistics are updated. The same values
    /// and gradients as `conv.forward`, this layer's `forward_t(·, true)` and the activation in
    /// sequence.
    pub fn forward_conv_fused(
        &self,
        conv: &Conv,
        x: &Tensor,
        act: FusedAct,
        order: ActOrder,
    ) -> Result<Tensor> {
        if conv.out_channels() != self.channels {
            return Err(invalid(
                "BatchNorm",
                format!(
                    "`{}` normalises {} channels but the convolution produces {}",
                    self.name,
                    self.channels,
                    conv.out_channels()
                ),
            ));
        }
        let na = NormActSpec {
            eps: self.cfg.eps,
            act,
            order,
        };
        let out = conv_batch_norm_act_train(
            x,
            conv.weight(),
            conv.bias(),
            conv.spec(),
            self.weight.as_ref(),
            self.bias.as_ref(),
            &na,
        )
        .map_err(|e| match e {
            Error::InvalidArgument { msg, .. } => {
                invalid("BatchNorm", format!("`{}`: {msg}", self.name))
            }
            other => other,
        })?;
        let u_count = out.y.elem_count();
        self.update_running_count(u_count, &out)?;
        Ok(out.y)
    }

    /// Updates the running statistics (if tracked) from a training batch's statistics.
    fn update_running(&self, x: &Tensor, out: &crate::BatchNormOutput) -> candle_core::Result<()> {
        self.update_running_count(x.elem_count(), out)
    }

    /// [`Self::update_running`] for a normalised tensor of `elems` elements.
    fn update_running_count(
        &self,
        elems: usize,
        out: &crate::BatchNormOutput,
    ) -> candle_core::Result<()> {
        if let Some(s) = &self.stats {
            let count = elems / self.channels;
            let nb = s.count_batch()?;
            let factor = self.cfg.momentum.unwrap_or(1.0 / nb as f64);
            let unbiased = (&out.var * (count as f64 / (count - 1) as f64))?;
            s.update(factor, &out.mean, &unbiased)?;
        }
        Ok(())
    }
}

/// Normalises with `mean`/`var` given as `(1, C, 1, …)` and applies the affine map.
pub(crate) fn normalize(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let inv = (var + eps)?.sqrt()?.recip()?;
    let mut y = x.broadcast_sub(mean)?.broadcast_mul(&inv)?;
    if let Some(w) = weight {
        y = y.broadcast_mul(&per_channel(w, x.rank())?)?;
    }
    if let Some(b) = bias {
        y = y.broadcast_add(&per_channel(b, x.rank())?)?;
    }
    Ok(y)
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        check_input(
            &format!("BatchNorm `{}`", self.name),
            x,
            self.channels,
            None,
        )?;
        match (&self.stats, train) {
            (Some(s), false) => {
                // Running statistics: one fused per-channel affine map x·a + b, with
                // a = weight/√(var + eps) and b = bias − mean·a (differentiable in weight/bias).
                let inv = (s.var.as_tensor().detach() + self.cfg.eps)?
                    .sqrt()?
                    .recip()?;
                let a = match &self.weight {
                    Some(w) => (w * &inv)?,
                    None => inv,
                };
                let shift = (s.mean.as_tensor().detach() * &a)?.neg()?;
                let shift = match &self.bias {
                    Some(b) => (b + shift)?,
                    None => shift,
                };
                Ok(channel_affine(x, Some(&a), Some(&shift))?)
            }
            _ => {
                let out =
                    batch_norm_train(x, self.weight.as_ref(), self.bias.as_ref(), self.cfg.eps)
                        .map_err(|e| match e {
                            Error::InvalidArgument { msg, .. } => {
                                invalid("BatchNorm", format!("`{}`: {msg}", self.name))
                            }
                            other => other,
                        })?;
                if train {
                    self.update_running(x, &out)?;
                }
                Ok(out.y)
            }
        }
    }
}
