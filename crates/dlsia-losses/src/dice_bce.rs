//! Dice plus cross-entropy.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::cross_entropy::{bce_elementwise, default_ignore, log_probabilities};
use crate::error::{invalid_config, Result};
use crate::loss::{ClassAverage, Loss, PredictionKind};
use crate::ops::weighted_mean;
use crate::overlap::{check_param, DiceConfig};
use crate::target::class_targets;

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}

/// Hyperparameters of [`DiceBce`] (defaults are the original's `DiceBCELoss(smooth=1,
/// alpha=0.5)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiceBceConfig {
    /// Dice smoothing term (≥ 0; default 1).
    #[serde(default = "one")]
    pub smooth: f64,
    /// Weight of the cross-entropy term, `1 − alpha` goes to Dice (in `[0, 1]`; default 0.5).
    #[serde(default = "half")]
    pub alpha: f64,
    /// Logits (default) or probabilities.
    #[serde(default)]
    pub input: PredictionKind,
    /// Label value of unlabelled pixels (default −1).
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
    /// How the Dice term combines classes (default: per-class mean).
    #[serde(default)]
    pub class_average: ClassAverage,
}

impl Default for DiceBceConfig {
    fn default() -> Self {
        Self {
            smooth: 1.0,
            alpha: 0.5,
            input: PredictionKind::Logits,
            ignore_index: -1,
            class_average: ClassAverage::Macro,
        }
    }
}

impl DiceBceConfig {
    /// Checks the hyperparameters and builds the loss.
    pub fn build(&self) -> Result<DiceBce> {
        check_param("dice_bce", "smooth", self.smooth, 0.0, false)?;
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(invalid_config(
                "dice_bce",
                format!("alpha must lie in [0, 1], got {}", self.alpha),
            ));
        }
        let dice = DiceConfig {
            smooth: self.smooth,
            input: self.input,
            ignore_index: self.ignore_index,
            class_average: self.class_average,
        }
        .build()?;
        Ok(DiceBce {
            cfg: self.clone(),
            dice,
        })
    }
}

/// `α·CE + (1 − α)·Dice`.
///
/// The cross-entropy term is the binary cross-entropy for a one-channel prediction (the
/// original's `F.binary_cross_entropy`, mean over labelled pixels) and the categorical
/// cross-entropy for `C ≥ 2` channels (the proper likelihood of softmax outputs; the original
/// would apply element-wise BCE to the one-hot channels, which [`crate::BinaryCrossEntropy`]
/// offers separately).
#[derive(Debug, Clone)]
pub struct DiceBce {
    cfg: DiceBceConfig,
    dice: crate::overlap::Dice,
}

impl Loss for DiceBce {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        const WHAT: &str = "dice_bce";
        let dice = self.dice.loss(prediction, target, mask)?;
        if prediction.dim(1)? >= 2 {
            if let Some(inputs) = crate::fused::prepare(
                WHAT,
                prediction,
                target,
                mask,
                self.cfg.ignore_index,
                self.cfg.input,
            )? {
                let ce = crate::fused::pixel_nll(&inputs, None, 0.0)?;
                return Ok(((ce * self.cfg.alpha)? + (dice * (1.0 - self.cfg.alpha))?)?);
            }
        }
        let t = class_targets(WHAT, prediction, target, mask, self.cfg.ignore_index)?;
        let ce = if prediction.dim(1)? == 1 {
            weighted_mean(
                &bce_elementwise(WHAT, prediction, &t.y, self.cfg.input)?,
                &t.w,
            )?
        } else {
            let log_p = log_probabilities(WHAT, prediction, self.cfg.input)?;
            let nll = (&t.y * log_p)?.sum_keepdim(1)?.neg()?;
            let pixel_weight = t.y.broadcast_mul(&t.w)?.sum_keepdim(1)?;
            weighted_mean(&nll, &pixel_weight)?
        };
        Ok(((ce * self.cfg.alpha)? + (dice * (1.0 - self.cfg.alpha))?)?)
    }
}
