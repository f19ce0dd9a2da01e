//! Masked regression losses: L1 and mean squared error.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{invalid_value, shape_error, Result};
use crate::loss::Loss;
use crate::ops::weighted_mean;
use crate::target::{check_prediction, prepare_mask};

/// Checks a regression target and turns the mask into weights broadcastable to the prediction.
fn regression_weights(
    what: &'static str,
    prediction: &Tensor,
    target: &Tensor,
    mask: Option<&Tensor>,
) -> Result<(Tensor, Option<Tensor>)> {
    check_prediction(what, prediction)?;
    if target.shape() != prediction.shape() {
        return Err(shape_error(
            what,
            format!("a target of the prediction's shape {:?}", prediction.dims()),
            target.shape(),
        ));
    }
    let target = target.to_dtype(prediction.dtype())?;
    let finite = (target.eq(&target)? * target.abs()?.lt(f64::INFINITY)?)?;
    if finite.min_all()?.to_scalar::<u8>()? == 0 {
        return Err(invalid_value(
            what,
            "the target contains NaN or infinite values; give missing values any finite value and weight 0 in the mask",
        ));
    }
    let weights = mask
        .map(|m| prepare_mask(what, prediction, m))
        .transpose()?;
    Ok((target, weights))
}

fn masked_mean(values: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
    match weights {
        Some(w) => weighted_mean(values, w),
        None => Ok(values.mean_all()?),
    }
}

/// Hyperparameters of [`MaskedL1`] (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskedL1Config {}

impl MaskedL1Config {
    /// Builds the loss.
    pub fn build(&self) -> Result<MaskedL1> {
        Ok(MaskedL1)
    }
}

/// Masked mean absolute error `Σ m·|x − y| / Σ m` (the original's `L1LossMasked`); without a
/// mask, the plain mean. The mask may be `(N, 1 or C, spatial…)`, `(N, spatial…)` or of the
/// prediction's shape; it is broadcast over the channels before both sums.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaskedL1;

impl Loss for MaskedL1 {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (target, w) = regression_weights("masked_l1", prediction, target, mask)?;
        masked_mean(&(prediction - target)?.abs()?, w.as_ref())
    }
}

/// Hyperparameters of [`MaskedMse`] (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskedMseConfig {}

impl MaskedMseConfig {
    /// Builds the loss.
    pub fn build(&self) -> Result<MaskedMse> {
        Ok(MaskedMse)
    }
}

/// Masked mean squared error `Σ m·(x − y)² / Σ m` (the original's `MSELossMasked`); without a
/// mask, the plain mean. Mask shapes as for [`MaskedL1`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MaskedMse;

impl Loss for MaskedMse {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (target, w) = regression_weights("masked_mse", prediction, target, mask)?;
        masked_mean(&(prediction - target)?.sqr()?, w.as_ref())
    }
}
