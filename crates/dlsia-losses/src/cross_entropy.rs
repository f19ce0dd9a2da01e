//! Categorical cross-entropy with an ignore label and class weights, and element-wise binary
//! cross-entropy, both on logits (numerically stable) or on probabilities.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{invalid_config, Result};
use crate::loss::{Loss, PredictionKind};
use crate::ops::{clamped_log, log_softmax_channels, weighted_mean};
use crate::target::{check_probabilities, class_targets};

pub(crate) fn default_ignore() -> i64 {
    -1
}

/// Hyperparameters of [`CrossEntropy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossEntropyConfig {
    /// Label value of unlabelled pixels (default −1, dlsia's `missing_label`).
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
    /// Optional per-class weights (PyTorch's `weight`): the loss is
    /// `Σ w[yᵢ]·(−ln p̂ᵢ[yᵢ]) / Σ w[yᵢ]` over the labelled pixels.
    #[serde(default)]
    pub class_weights: Option<Vec<f64>>,
    /// Logits (default; log-softmax inside) or probabilities (logarithm clamped at −100).
    #[serde(default)]
    pub input: PredictionKind,
}

impl Default for CrossEntropyConfig {
    fn default() -> Self {
        Self {
            ignore_index: -1,
            class_weights: None,
            input: PredictionKind::Logits,
        }
    }
}

impl CrossEntropyConfig {
    /// Checks the hyperparameters and builds the loss.
    pub fn build(&self) -> Result<CrossEntropy> {
        if let Some(w) = &self.class_weights {
            check_class_weights("cross_entropy", w)?;
        }
        Ok(CrossEntropy { cfg: self.clone() })
    }
}

/// Checks that class weights are non-empty, finite, non-negative and not all zero.
pub(crate) fn check_class_weights(what: &'static str, w: &[f64]) -> Result<()> {
    if w.is_empty() || w.iter().any(|v| !v.is_finite() || *v < 0.0) || w.iter().all(|v| *v == 0.0) {
        return Err(invalid_config(
            what,
            format!(
                "class_weights must be one finite, non-negative weight per class, not all zero; got {w:?}"
            ),
        ));
    }
    Ok(())
}

/// Checks that there is one class weight per channel of the prediction.
pub(crate) fn check_class_weight_len(
    what: &'static str,
    weights: &[f64],
    prediction: &Tensor,
) -> Result<()> {
    let c = prediction.dim(1)?;
    if weights.len() != c {
        return Err(invalid_config(
            what,
            format!(
                "{} class weights given for a prediction with {c} channels",
                weights.len()
            ),
        ));
    }
    Ok(())
}

/// Per-class weights as a `(1, C, 1, …)` tensor, checked against the prediction's channels.
pub(crate) fn class_weight_tensor(
    what: &'static str,
    weights: &[f64],
    prediction: &Tensor,
) -> Result<Tensor> {
    check_class_weight_len(what, weights, prediction)?;
    let c = prediction.dim(1)?;
    let mut shape = vec![1usize; prediction.rank()];
    shape[1] = c;
    Ok(Tensor::new(weights, prediction.device())?
        .to_dtype(prediction.dtype())?
        .reshape(shape)?)
}

/// `ln p̂` per class, `(N, C, spatial…)`: log-softmax of logits, or clamped log of probabilities.
pub(crate) fn log_probabilities(
    what: &'static str,
    prediction: &Tensor,
    input: PredictionKind,
) -> Result<Tensor> {
    match input {
        PredictionKind::Logits => log_softmax_channels(prediction),
        PredictionKind::Probabilities => {
            check_probabilities(what, prediction)?;
            clamped_log(prediction)
        }
    }
}

/// Categorical cross-entropy over the channel axis for mutually exclusive classes (`C ≥ 2`), the
/// equivalent of `nn.CrossEntropyLoss(weight, ignore_index=-1)` extended by a mask:
///
/// `L = Σᵢ mᵢ·w[yᵢ]·(−ln p̂ᵢ[yᵢ]) / Σᵢ mᵢ·w[yᵢ]`
///
/// over the pixels whose label is not the ignore value, where `mᵢ` is the mask weight (the
/// mask's value at the true class when it has `C` channels). Soft targets `t` of the
/// prediction's shape give `−Σ_c t_c ln p̂_c` per pixel, weighted by `Σ_c t_c·w_c`.
/// A batch without labelled pixels has loss 0.
#[derive(Debug, Clone, Default)]
pub struct CrossEntropy {
    cfg: CrossEntropyConfig,
}

impl CrossEntropy {
    /// The checked configuration.
    pub fn config(&self) -> &CrossEntropyConfig {
        &self.cfg
    }
}

impl Loss for CrossEntropy {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        const WHAT: &str = "cross_entropy";
        crate::target::check_prediction(WHAT, prediction)?;
        if prediction.dim(1)? < 2 {
            return Err(invalid_config(
                WHAT,
                "cross-entropy needs a prediction with at least 2 channels; use binary_cross_entropy for one channel",
            ));
        }
        if let Some(inputs) = crate::fused::prepare(
            WHAT,
            prediction,
            target,
            mask,
            self.cfg.ignore_index,
            self.cfg.input,
        )? {
            if let Some(cw) = &self.cfg.class_weights {
                check_class_weight_len(WHAT, cw, prediction)?;
            }
            return crate::fused::pixel_nll(&inputs, self.cfg.class_weights.as_deref(), 0.0);
        }
        let t = class_targets(WHAT, prediction, target, mask, self.cfg.ignore_index)?;
        let logp = log_probabilities(WHAT, prediction, self.cfg.input)?;
        let wc = match &self.cfg.class_weights {
            Some(cw) => {
                t.w.broadcast_mul(&class_weight_tensor(WHAT, cw, prediction)?)?
            }
            None => t.w.clone(),
        };
        let pixel_weight = t.y.broadcast_mul(&wc)?.sum_keepdim(1)?;
        let nll = (&t.y * &logp)?.sum_keepdim(1)?.neg()?;
        weighted_mean(&nll, &pixel_weight)
    }
}

/// Hyperparameters of [`BinaryCrossEntropy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryCrossEntropyConfig {
    /// Label value of unlabelled pixels (default −1).
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
    /// Logits (default; the stable form `max(x,0) − x·t + ln(1+e^{−|x|})`) or probabilities
    /// (logarithms clamped at −100 as in PyTorch).
    #[serde(default)]
    pub input: PredictionKind,
}

impl Default for BinaryCrossEntropyConfig {
    fn default() -> Self {
        Self {
            ignore_index: -1,
            input: PredictionKind::Logits,
        }
    }
}

impl BinaryCrossEntropyConfig {
    /// Builds the loss (there is nothing to check).
    pub fn build(&self) -> Result<BinaryCrossEntropy> {
        Ok(BinaryCrossEntropy { cfg: self.clone() })
    }
}

/// Element-wise binary cross-entropy, every channel an independent yes/no question: the mean of
/// `−t·ln p − (1−t)·ln(1−p)` over all labelled elements (weighted by the mask).
///
/// Targets: integer labels (0/1 for a one-channel prediction; one-hot encoded for `C ≥ 2`, which
/// is the original's flattened `binary_cross_entropy` on one-hot targets), or floating-point
/// targets in `[0, 1]` of the prediction's shape.
#[derive(Debug, Clone, Default)]
pub struct BinaryCrossEntropy {
    cfg: BinaryCrossEntropyConfig,
}

/// Element-wise binary cross-entropy `(N, C, spatial…)` of predictions against targets `y`.
pub(crate) fn bce_elementwise(
    what: &'static str,
    prediction: &Tensor,
    y: &Tensor,
    input: PredictionKind,
) -> Result<Tensor> {
    match input {
        PredictionKind::Logits => {
            let x = prediction;
            let softplus = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
            Ok(((x.relu()? - (x * y)?)? + softplus)?)
        }
        PredictionKind::Probabilities => {
            check_probabilities(what, prediction)?;
            let log_p = clamped_log(prediction)?;
            let log_q = clamped_log(&prediction.affine(-1.0, 1.0)?)?;
            let ny = y.affine(-1.0, 1.0)?;
            Ok(((y * log_p)? + (ny * log_q)?)?.neg()?)
        }
    }
}

impl Loss for BinaryCrossEntropy {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        const WHAT: &str = "binary_cross_entropy";
        let t = class_targets(WHAT, prediction, target, mask, self.cfg.ignore_index)?;
        let bce = bce_elementwise(WHAT, prediction, &t.y, self.cfg.input)?;
        weighted_mean(&bce, &t.w)
    }
}
