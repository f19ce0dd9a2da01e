//! Numerically stable tensor building blocks shared by the losses, each with a working gradient.
//!
//! Candle's `softmax_last_dim` has no backward and its `binary_cross_entropy_with_logit` returns
//! `inf` for large logits; the functions here avoid both.

use candle_core::{DType, Tensor, D};

use crate::error::Result;

/// Softmax over the channel axis (dim 1). The maximum subtracted for stability is detached: the
/// result does not depend on it, so neither does the gradient.
pub fn softmax_channels(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(1)?;
    Ok(e.broadcast_div(&sum)?)
}

/// Log-softmax over the channel axis (dim 1), `x − max − ln Σ exp(x − max)`.
pub fn log_softmax_channels(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

/// The logistic sigmoid `1 / (1 + e^{−x})`, stable for any `x`.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::sigmoid(x)?)
}

/// `ln σ(x) = −(max(−x, 0) + ln(1 + e^{−|x|}))`, finite for any finite `x`.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let softplus_neg = (x.neg()?.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    Ok(softplus_neg.neg()?)
}

/// The smallest value [`clamped_log`] takes the logarithm of: the smallest normal number of the
/// dtype, so that no subnormal (flushed to zero on some devices) enters a division.
fn log_floor(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::MIN_POSITIVE,
        DType::F16 => 6.103_515_625e-5,
        DType::BF16 => 1.175_494_4e-38,
        _ => f32::MIN_POSITIVE as f64,
    }
}

/// `max(ln p, −100)` as PyTorch's `binary_cross_entropy` computes it, without NaN gradients at
/// `p = 0`: the argument is first raised to the smallest normal number of the dtype (for f32 the
/// logarithm therefore bottoms out at −87.3 instead of −100).
pub fn clamped_log(p: &Tensor) -> Result<Tensor> {
    let floor = log_floor(p.dtype());
    Ok(p.maximum(floor)?.log()?.maximum(-100.0)?)
}

/// `base^gamma` with the base raised to at least `1e-12` first, so that the gradient stays finite
/// when `gamma < 1` and the base reaches zero (a perfectly classified pixel).
pub fn safe_pow(base: &Tensor, gamma: f64) -> Result<Tensor> {
    if gamma == 1.0 {
        return Ok(base.clone());
    }
    if gamma == 0.0 {
        return Ok(base.ones_like()?);
    }
    Ok(base.maximum(1e-12)?.powf(gamma)?)
}

/// `Σ values·weights / Σ weights`, with the weights broadcast to the shape of `values` before
/// either sum. An all-zero weight tensor gives 0 (not NaN), still connected to the graph.
pub fn weighted_mean(values: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let w = weights.broadcast_as(values.shape())?;
    let num = (values * &w)?.sum_all()?;
    let den = w.sum_all()?;
    safe_ratio(&num, &den)
}

/// `num / max(den, tiny)`: 0 where both are 0 (used for sums over empty masks).
pub fn safe_ratio(num: &Tensor, den: &Tensor) -> Result<Tensor> {
    let tiny = log_floor(den.dtype());
    Ok(num.broadcast_div(&den.maximum(tiny)?)?)
}

/// Sum over every axis except the channel axis (dim 1): `(N, C, …) → (C,)`.
pub fn sum_except_channels(x: &Tensor) -> Result<Tensor> {
    let x = x.transpose(0, 1)?.contiguous()?;
    let c = x.dim(0)?;
    Ok(x.reshape((c, ()))?.sum(D::Minus1)?)
}
