//! Focal losses: the standard per-pixel definition (Lin et al. 2017) and, separately, the
//! original dlsia formula, which applies the focal factor to the batch-mean cross-entropy.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::cross_entropy::{
    bce_elementwise, check_class_weight_len, check_class_weights, class_weight_tensor,
    default_ignore, log_probabilities,
};
use crate::error::{invalid_config, Result};
use crate::loss::{Loss, PredictionKind};
use crate::ops::{clamped_log, log_sigmoid, safe_pow, sigmoid, weighted_mean};
use crate::overlap::check_param;
use crate::target::{check_probabilities, class_targets};

fn default_gamma() -> f64 {
    2.0
}

/// Hyperparameters of [`Focal`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalConfig {
    /// Focusing exponent `γ ≥ 0` (default 2; 0 gives the cross-entropy).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Binary (one-channel) only: weight `α ∈ [0, 1]` of the positive class, `1 − α` of the
    /// negative one (torchvision's `sigmoid_focal_loss`); none by default (both weigh 1).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Multi-class only: per-class weights, normalised as in [`crate::CrossEntropy`].
    #[serde(default)]
    pub class_weights: Option<Vec<f64>>,
    /// Logits (default) or probabilities.
    #[serde(default)]
    pub input: PredictionKind,
    /// Label value of unlabelled pixels (default −1).
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
}

impl Default for FocalConfig {
    fn default() -> Self {
        Self {
            gamma: 2.0,
            alpha: None,
            class_weights: None,
            input: PredictionKind::Logits,
            ignore_index: -1,
        }
    }
}

impl FocalConfig {
    /// Checks the hyperparameters and builds the loss.
    pub fn build(&self) -> Result<Focal> {
        check_param("focal", "gamma", self.gamma, 0.0, false)?;
        if let Some(a) = self.alpha {
            if !(0.0..=1.0).contains(&a) {
                return Err(invalid_config(
                    "focal",
                    format!("alpha must lie in [0, 1], got {a}"),
                ));
            }
        }
        if let Some(w) = &self.class_weights {
            check_class_weights("focal", w)?;
        }
        Ok(Focal { cfg: self.clone() })
    }
}

/// The standard focal loss, per pixel, averaged over the labelled pixels:
///
/// * one channel (binary): `−α·y·(1−p)^γ·ln p − (1−α)·(1−y)·p^γ·ln(1−p)` per element with
///   `p = σ(x)` (α-terms only when `alpha` is set), mean over labelled elements;
/// * `C ≥ 2` channels: `−(1 − p_y)^γ·ln p_y` per pixel with `p = softmax(x)`, weighted mean with
///   the class weights as in cross-entropy.
///
/// With `γ = 0` (and no `alpha`) it equals the binary or categorical cross-entropy.
#[derive(Debug, Clone)]
pub struct Focal {
    cfg: FocalConfig,
}

impl Loss for Focal {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        const WHAT: &str = "focal";
        if prediction.rank() >= 2 && prediction.dim(1)? >= 2 && self.cfg.alpha.is_none() {
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
                return crate::fused::pixel_nll(
                    &inputs,
                    self.cfg.class_weights.as_deref(),
                    self.cfg.gamma,
                );
            }
        }
        let t = class_targets(WHAT, prediction, target, mask, self.cfg.ignore_index)?;
        let gamma = self.cfg.gamma;
        if prediction.dim(1)? == 1 {
            if self.cfg.class_weights.is_some() {
                return Err(invalid_config(
                    WHAT,
                    "class_weights apply to multi-channel predictions; use alpha for one channel",
                ));
            }
            let (p, log_p, log_q) = match self.cfg.input {
                PredictionKind::Logits => (
                    sigmoid(prediction)?,
                    log_sigmoid(prediction)?,
                    log_sigmoid(&prediction.neg()?)?,
                ),
                PredictionKind::Probabilities => {
                    check_probabilities(WHAT, prediction)?;
                    (
                        prediction.clone(),
                        clamped_log(prediction)?,
                        clamped_log(&prediction.affine(-1.0, 1.0)?)?,
                    )
                }
            };
            let q = p.affine(-1.0, 1.0)?;
            let (a_pos, a_neg) = match self.cfg.alpha {
                Some(a) => (a, 1.0 - a),
                None => (1.0, 1.0),
            };
            let pos = ((&t.y * safe_pow(&q, gamma)?)? * log_p)?.affine(-a_pos, 0.0)?;
            let neg =
                ((t.y.affine(-1.0, 1.0)? * safe_pow(&p, gamma)?)? * log_q)?.affine(-a_neg, 0.0)?;
            weighted_mean(&(pos + neg)?, &t.w)
        } else {
            if self.cfg.alpha.is_some() {
                return Err(invalid_config(
                    WHAT,
                    "alpha applies to one-channel (binary) predictions; use class_weights for several classes",
                ));
            }
            let log_p = log_probabilities(WHAT, prediction, self.cfg.input)?;
            let p = log_p.exp()?;
            let modulating = safe_pow(&p.affine(-1.0, 1.0)?, gamma)?;
            let per_pixel = ((&t.y * modulating)? * log_p)?.sum_keepdim(1)?.neg()?;
            let wc = match &self.cfg.class_weights {
                Some(cw) => {
                    t.w.broadcast_mul(&class_weight_tensor(WHAT, cw, prediction)?)?
                }
                None => t.w.clone(),
            };
            let pixel_weight = t.y.broadcast_mul(&wc)?.sum_keepdim(1)?;
            weighted_mean(&per_pixel, &pixel_weight)
        }
    }
}

fn default_dlsia_alpha() -> f64 {
    0.8
}
fn default_dlsia_gamma() -> f64 {
    0.5
}

/// Hyperparameters of [`FocalDlsia`] (defaults are the original's `FocalLoss(alpha=0.8,
/// gamma=0.5)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalDlsiaConfig {
    /// Overall factor (default 0.8).
    #[serde(default = "default_dlsia_alpha")]
    pub alpha: f64,
    /// Exponent of `1 − e^{−BCE}` (≥ 0; default 0.5).
    #[serde(default = "default_dlsia_gamma")]
    pub gamma: f64,
    /// Logits (default; element-wise sigmoid) or probabilities (what the original expects).
    #[serde(default)]
    pub input: PredictionKind,
    /// Label value of unlabelled pixels (default −1).
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
}

impl Default for FocalDlsiaConfig {
    fn default() -> Self {
        Self {
            alpha: 0.8,
            gamma: 0.5,
            input: PredictionKind::Logits,
            ignore_index: -1,
        }
    }
}

impl FocalDlsiaConfig {
    /// Checks the hyperparameters and builds the loss.
    pub fn build(&self) -> Result<FocalDlsia> {
        check_param("focal_dlsia", "alpha", self.alpha, 0.0, false)?;
        check_param("focal_dlsia", "gamma", self.gamma, 0.0, false)?;
        Ok(FocalDlsia { cfg: self.clone() })
    }
}

/// The original dlsia `FocalLoss`: `α·(1 − e^{−B})^γ·B` where `B` is the **batch-mean**
/// element-wise binary cross-entropy (every channel an independent binary problem, one-hot
/// targets for integer labels with `C ≥ 2`). The focal factor is one number for the whole
/// batch, so it does not down-weight easy pixels as the focal loss is meant to; it rescales the
/// mean BCE. Kept for reproducing the original; prefer [`Focal`].
#[derive(Debug, Clone)]
pub struct FocalDlsia {
    cfg: FocalDlsiaConfig,
}

impl Loss for FocalDlsia {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        const WHAT: &str = "focal_dlsia";
        let t = class_targets(WHAT, prediction, target, mask, self.cfg.ignore_index)?;
        let bce = weighted_mean(
            &bce_elementwise(WHAT, prediction, &t.y, self.cfg.input)?,
            &t.w,
        )?;
        let factor = safe_pow(&bce.neg()?.exp()?.affine(-1.0, 1.0)?, self.cfg.gamma)?;
        Ok((factor * &bce)?.affine(self.cfg.alpha, 0.0)?)
    }
}
