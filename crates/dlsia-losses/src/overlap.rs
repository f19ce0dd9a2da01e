//! Overlap losses on class probabilities: Dice, Tversky and FocalTversky.
//!
//! All three are built from soft counts over the labelled pixels of a batch, per class `c`:
//! `TP = Σ w·p·y`, `FP = Σ w·p·(1−y)`, `FN = Σ w·(1−p)·y`, where `p` are the predicted
//! probabilities, `y` the one-hot (or soft) targets and `w` the weights (0 on unlabelled pixels).
//! An unlabelled pixel therefore changes none of the counts, whatever the prediction there.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::cross_entropy::default_ignore;
use crate::error::{invalid_config, Result};
use crate::loss::{ClassAverage, Loss, PredictionKind};
use crate::ops::{safe_pow, safe_ratio, sum_except_channels};
use crate::target::{class_targets, probabilities};

fn one() -> f64 {
    1.0
}

/// Checks that a hyperparameter is finite and at least `min` (strictly above when `strict`).
pub(crate) fn check_param(
    what: &'static str,
    name: &str,
    value: f64,
    min: f64,
    strict: bool,
) -> Result<()> {
    let ok = value.is_finite() && if strict { value > min } else { value >= min };
    if !ok {
        let rel = if strict { ">" } else { "≥" };
        return Err(invalid_config(
            what,
            format!("{name} must be finite and {rel} {min}, got {value}"),
        ));
    }
    Ok(())
}

/// Soft true-positive, false-positive and false-negative counts, `(C,)` tensors (macro) or
/// scalars reshaped to `(1,)` (pooled).
pub(crate) struct SoftCounts {
    pub tp: Tensor,
    pub fp: Tensor,
    pub fn_: Tensor,
}

/// The soft counts of a batch (see the module documentation).
pub(crate) fn soft_counts(
    what: &'static str,
    prediction: &Tensor,
    target: &Tensor,
    mask: Option<&Tensor>,
    ignore_index: i64,
    input: PredictionKind,
    average: ClassAverage,
) -> Result<SoftCounts> {
    let reduce = |x: &Tensor| -> Result<Tensor> {
        match average {
            ClassAverage::Macro => Ok(x.clone()),
            ClassAverage::Pooled => Ok(x.sum_all()?.reshape(1)?),
        }
    };
    if let Some(inputs) =
        crate::fused::prepare(what, prediction, target, mask, ignore_index, input)?
    {
        let counts = crate::fused::soft_counts(&inputs)?;
        return Ok(SoftCounts {
            tp: reduce(&counts.get(0)?)?,
            fp: reduce(&counts.get(1)?)?,
            fn_: reduce(&counts.get(2)?)?,
        });
    }
    let t = class_targets(what, prediction, target, mask, ignore_index)?;
    let p = probabilities(what, prediction, input)?;
    let w = t.w.broadcast_as(p.shape())?;
    let pw = (&p * &w)?;
    let tp = (&pw * &t.y)?;
    let fp = (&pw - &tp)?;
    let fn_ = ((&t.y * &w)? - &tp)?;
    let per_class = |x: &Tensor| -> Result<Tensor> { reduce(&sum_except_channels(x)?) };
    Ok(SoftCounts {
        tp: per_class(&tp)?,
        fp: per_class(&fp)?,
        fn_: per_class(&fn_)?,
    })
}

/// The Tversky index per class, `(TP + s) / (TP + α·FP + β·FN + s)`.
fn tversky_index(c: &SoftCounts, alpha: f64, beta: f64, smooth: f64) -> Result<Tensor> {
    let num = (&c.tp + smooth)?;
    let den = (((&c.tp + (&c.fp * alpha)?)? + (&c.fn_ * beta)?)? + smooth)?;
    safe_ratio(&num, &den)
}

/// Hyperparameters of [`Dice`] (defaults are the original's `DiceLoss(smooth=1)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiceConfig {
    /// Added to numerator and denominator (≥ 0; default 1).
    #[serde(default = "one")]
    pub smooth: f64,
    /// Logits (default: sigmoid for one channel, softmax otherwise) or probabilities.
    #[serde(default)]
    pub input: PredictionKind,
    /// Label value of unlabelled pixels (default −1).
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
    /// How classes are combined for multi-channel predictions (default: per-class mean).
    #[serde(default)]
    pub class_average: ClassAverage,
}

impl Default for DiceConfig {
    fn default() -> Self {
        Self {
            smooth: 1.0,
            input: PredictionKind::Logits,
            ignore_index: -1,
            class_average: ClassAverage::Macro,
        }
    }
}

impl DiceConfig {
    /// Checks the hyperparameters and builds the loss.
    pub fn build(&self) -> Result<Dice> {
        check_param("dice", "smooth", self.smooth, 0.0, false)?;
        Ok(Dice { cfg: self.clone() })
    }
}

/// Soft Dice loss `1 − (2·TP + s) / (2·TP + FP + FN + s)` (i.e. `1 − (2Σpy + s)/(Σp + Σy + s)`),
/// averaged over classes as configured. On probabilities from a sigmoid (one channel) or a
/// softmax (several channels) of the logits, unless the input already holds probabilities.
#[derive(Debug, Clone)]
pub struct Dice {
    cfg: DiceConfig,
}

impl Dice {
    /// The Dice index per class (or pooled), a `(C,)` or `(1,)` tensor.
    pub fn index(
        &self,
        prediction: &Tensor,
        target: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let c = soft_counts(
            "dice",
            prediction,
            target,
            mask,
            self.cfg.ignore_index,
            self.cfg.input,
            self.cfg.class_average,
        )?;
        let tp2 = (&c.tp * 2.0)?;
        let num = (&tp2 + self.cfg.smooth)?;
        let den = (((&tp2 + &c.fp)? + &c.fn_)? + self.cfg.smooth)?;
        safe_ratio(&num, &den)
    }
}

impl Loss for Dice {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        Ok(self
            .index(prediction, target, mask)?
            .mean_all()?
            .affine(-1.0, 1.0)?)
    }
}

/// Hyperparameters of [`Tversky`] (defaults are the original's
/// `TverskyLoss(smooth=1, alpha=0.75, beta=0.25)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TverskyConfig {
    /// Added to numerator and denominator (≥ 0; default 1).
    #[serde(default = "one")]
    pub smooth: f64,
    /// Weight of false positives (≥ 0; default 0.75).
    #[serde(default = "default_tversky_alpha")]
    pub alpha: f64,
    /// Weight of false negatives (≥ 0; default 0.25).
    #[serde(default = "default_tversky_beta")]
    pub beta: f64,
    /// Logits (default: sigmoid for one channel, softmax otherwise) or probabilities.
    #[serde(default)]
    pub input: PredictionKind,
    /// Label value of unlabelled pixels (default −1).
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
    /// How classes are combined for multi-channel predictions (default: per-class mean).
    #[serde(default)]
    pub class_average: ClassAverage,
}

fn default_tversky_alpha() -> f64 {
    0.75
}
fn default_tversky_beta() -> f64 {
    0.25
}

impl Default for TverskyConfig {
    fn default() -> Self {
        Self {
            smooth: 1.0,
            alpha: 0.75,
            beta: 0.25,
            input: PredictionKind::Logits,
            ignore_index: -1,
            class_average: ClassAverage::Macro,
        }
    }
}

impl TverskyConfig {
    /// Checks the hyperparameters and builds the loss.
    pub fn build(&self) -> Result<Tversky> {
        check_tversky("tversky", self.smooth, self.alpha, self.beta)?;
        Ok(Tversky { cfg: self.clone() })
    }
}

fn check_tversky(what: &'static str, smooth: f64, alpha: f64, beta: f64) -> Result<()> {
    check_param(what, "smooth", smooth, 0.0, false)?;
    check_param(what, "alpha", alpha, 0.0, false)?;
    check_param(what, "beta", beta, 0.0, false)
}

/// Tversky loss `1 − (TP + s) / (TP + α·FP + β·FN + s)`, averaged over classes as configured
/// (`α = β = 0.5` is Dice up to the smoothing term).
#[derive(Debug, Clone)]
pub struct Tversky {
    cfg: TverskyConfig,
}

impl Loss for Tversky {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let c = soft_counts(
            "tversky",
            prediction,
            target,
            mask,
            self.cfg.ignore_index,
            self.cfg.input,
            self.cfg.class_average,
        )?;
        let t = tversky_index(&c, self.cfg.alpha, self.cfg.beta, self.cfg.smooth)?;
        Ok(t.mean_all()?.affine(-1.0, 1.0)?)
    }
}

/// Hyperparameters of [`FocalTversky`] (defaults are the original's
/// `FocalTverskyLoss(smooth=1, alpha=0.5, beta=0.5, gamma=0.8)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalTverskyConfig {
    /// Added to numerator and denominator (≥ 0; default 1).
    #[serde(default = "one")]
    pub smooth: f64,
    /// Weight of false positives (≥ 0; default 0.5).
    #[serde(default = "half")]
    pub alpha: f64,
    /// Weight of false negatives (≥ 0; default 0.5).
    #[serde(default = "half")]
    pub beta: f64,
    /// Focusing exponent applied to `1 − Tversky` (> 0; default 0.8).
    #[serde(default = "default_ft_gamma")]
    pub gamma: f64,
    /// Logits (default: sigmoid for one channel, softmax otherwise) or probabilities.
    #[serde(default)]
    pub input: PredictionKind,
    /// Label value of unlabelled pixels (default −1).
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
    /// How classes are combined for multi-channel predictions (default: per-class mean).
    #[serde(default)]
    pub class_average: ClassAverage,
}

fn half() -> f64 {
    0.5
}
fn default_ft_gamma() -> f64 {
    0.8
}

impl Default for FocalTverskyConfig {
    fn default() -> Self {
        Self {
            smooth: 1.0,
            alpha: 0.5,
            beta: 0.5,
            gamma: 0.8,
            input: PredictionKind::Logits,
            ignore_index: -1,
            class_average: ClassAverage::Macro,
        }
    }
}

impl FocalTverskyConfig {
    /// Checks the hyperparameters and builds the loss.
    pub fn build(&self) -> Result<FocalTversky> {
        check_tversky("focal_tversky", self.smooth, self.alpha, self.beta)?;
        check_param("focal_tversky", "gamma", self.gamma, 0.0, true)?;
        Ok(FocalTversky { cfg: self.clone() })
    }
}

/// Focal Tversky loss `mean_c (1 − T_c)^γ` with `T_c` the Tversky index of class `c` (one pooled
/// index with [`ClassAverage::Pooled`], as the original computes it). The base is kept above
/// `1e-12` so the gradient stays finite at a perfect prediction when `γ < 1`.
#[derive(Debug, Clone)]
pub struct FocalTversky {
    cfg: FocalTverskyConfig,
}

impl Loss for FocalTversky {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let c = soft_counts(
            "focal_tversky",
            prediction,
            target,
            mask,
            self.cfg.ignore_index,
            self.cfg.input,
            self.cfg.class_average,
        )?;
        let t = tversky_index(&c, self.cfg.alpha, self.cfg.beta, self.cfg.smooth)?;
        Ok(safe_pow(&t.affine(-1.0, 1.0)?, self.cfg.gamma)?.mean_all()?)
    }
}
