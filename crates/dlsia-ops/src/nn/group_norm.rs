//! Group and instance normalisation, PyTorch semantics and names.

use candle_core::{Module, ModuleT, Tensor};
use serde::{Deserialize, Serialize};

use super::batch_norm::{normalize, RunningStats};
use super::{check_input, per_channel};
use crate::error::{invalid, Result};
use crate::params::{Init, ParamBuilder};

/// Mean and biased variance of `x3 (N, G, L)` over the last axis, as `(N, G, 1)`.
fn stats_last(x3: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let mean = x3.mean_keepdim(2)?;
    let var = x3.broadcast_sub(&mean)?.sqr()?.mean_keepdim(2)?;
    Ok((mean, var))
}

/// Group normalisation (`nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)`):
/// statistics per sample over each group of channels and all positions. Parameters `weight`
/// (ones) and `bias` (zeros) when affine.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    name: String,
    groups: usize,
    channels: usize,
    eps: f64,
    weight: Option<Tensor>,
    bias: Option<Tensor>,
}

impl GroupNorm {
    /// A layer with eps 1e-5 and affine parameters.
    pub fn new(pb: &ParamBuilder, groups: usize, channels: usize) -> Result<Self> {
        Self::with_config(pb, groups, channels, 1e-5, true)
    }

    /// A layer with explicit eps and affine flag.
    pub fn with_config(
        pb: &ParamBuilder,
        groups: usize,
        channels: usize,
        eps: f64,
        affine: bool,
    ) -> Result<Self> {
        if groups == 0 || channels == 0 || channels % groups != 0 {
            return Err(invalid(
                "GroupNorm",
                format!(
                    "num_channels {channels} must be positive and divisible by num_groups {groups}"
                ),
            ));
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(invalid(
                "GroupNorm",
                format!("eps must be finite and positive, got {eps}"),
            ));
        }
        let (weight, bias) = if affine {
            (
                Some(pb.param("weight", channels, Init::Const(1.0))?),
                Some(pb.param("bias", channels, Init::Const(0.0))?),
            )
        } else {
            (None, None)
        };
        Ok(GroupNorm {
            name: pb.prefix().to_string(),
            groups,
            channels,
            eps,
            weight,
            bias,
        })
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        check_input(
            &format!("GroupNorm `{}`", self.name),
            x,
            self.channels,
            None,
        )?;
        let n = x.dim(0)?;
        let x3 = x.reshape((n, self.groups, ()))?;
        let (mean, var) = stats_last(&x3)?;
        let y = x3
            .broadcast_sub(&mean)?
            .broadcast_mul(&(var + self.eps)?.sqrt()?.recip()?)?
            .reshape(x.shape())?;
        let mut y = y;
        if let Some(w) = &self.weight {
            y = y.broadcast_mul(&per_channel(w, x.rank())?)?;
        }
        if let Some(b) = &self.bias {
            y = y.broadcast_add(&per_channel(b, x.rank())?)?;
        }
        Ok(y)
    }
}

/// Hyperparameters of [`InstanceNorm`], PyTorch's defaults by `Default`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InstanceNormConfig {
    /// Added to the variance (1e-5).
    pub eps: f64,
    /// Weight of the new batch in the running averages (0.1); `None` behaves as 0, as in PyTorch.
    pub momentum: Option<f64>,
    /// Learn `weight`/`bias` (false).
    pub affine: bool,
    /// Keep running statistics and use them in eval mode (false).
    pub track_running_stats: bool,
}

impl Default for InstanceNormConfig {
    fn default() -> Self {
        InstanceNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: false,
            track_running_stats: false,
        }
    }
}

/// Instance normalisation (`InstanceNorm1d/2d/3d`): statistics per sample and channel over all
/// positions. With running statistics, training updates them with the batch average of the
/// instance statistics and eval mode uses them; `num_batches_tracked` is stored but, as in
/// PyTorch, not incremented.
#[derive(Debug, Clone)]
pub struct InstanceNorm {
    name: String,
    channels: usize,
    cfg: InstanceNormConfig,
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    stats: Option<RunningStats>,
}

impl InstanceNorm {
    /// A layer with PyTorch's defaults (no affine parameters, no running statistics).
    pub fn new(pb: &ParamBuilder, channels: usize) -> Result<Self> {
        Self::with_config(pb, channels, InstanceNormConfig::default())
    }

    /// A layer with explicit hyperparameters.
    pub fn with_config(
        pb: &ParamBuilder,
        channels: usize,
        cfg: InstanceNormConfig,
    ) -> Result<Self> {
        if channels == 0 {
            return Err(invalid("InstanceNorm", "needs at least one channel"));
        }
        if !(cfg.eps.is_finite() && cfg.eps > 0.0) {
            return Err(invalid(
                "InstanceNorm",
                format!("eps must be finite and positive, got {}", cfg.eps),
            ));
        }
        if let Some(m) = cfg.momentum {
            if !(0.0..=1.0).contains(&m) {
                return Err(invalid(
                    "InstanceNorm",
                    format!("momentum must be in [0, 1], got {m}"),
                ));
            }
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
        Ok(InstanceNorm {
            name: pb.prefix().to_string(),
            channels,
            cfg,
            weight,
            bias,
            stats,
        })
    }
}

impl ModuleT for InstanceNorm {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        check_input(
            &format!("InstanceNorm `{}`", self.name),
            x,
            self.channels,
            None,
        )?;
        if x.rank() < 3 {
            return Err(invalid(
                "InstanceNorm",
                format!(
                    "`{}`: expected (N, C, spatial…) of rank ≥ 3, got {:?}",
                    self.name,
                    x.dims()
                ),
            )
            .into());
        }
        let (n, c, rank) = (x.dim(0)?, self.channels, x.rank());
        if let (Some(s), false) = (&self.stats, train) {
            let (m, v) = (
                per_channel(s.mean.as_tensor(), rank)?,
                per_channel(s.var.as_tensor(), rank)?,
            );
            return normalize(
                x,
                &m,
                &v,
                self.cfg.eps,
                self.weight.as_ref(),
                self.bias.as_ref(),
            );
        }
        let len = x.elem_count() / (n * c).max(1);
        if len < 2 {
            return Err(invalid(
                "InstanceNorm",
                format!(
                    "`{}`: expected more than 1 spatial element per channel, got input shape {:?}",
                    self.name,
                    x.dims()
                ),
            )
            .into());
        }
        let x3 = x.reshape((n, c, len))?;
        let (mean, var) = stats_last(&x3)?;
        if let (Some(s), true) = (&self.stats, train) {
            let factor = self.cfg.momentum.unwrap_or(0.0);
            let unbiased = (&var * (len as f64 / (len - 1) as f64))?;
            s.update(factor, &mean.mean(0)?, &unbiased.mean(0)?)?;
        }
        let mut y = x3
            .broadcast_sub(&mean)?
            .broadcast_mul(&(var + self.cfg.eps)?.sqrt()?.recip()?)?
            .reshape(x.shape())?;
        if let Some(w) = &self.weight {
            y = y.broadcast_mul(&per_channel(w, rank)?)?;
        }
        if let Some(b) = &self.bias {
            y = y.broadcast_add(&per_channel(b, rank)?)?;
        }
        Ok(y)
    }
}
