//! A confusion matrix accumulated over an epoch, and the segmentation scores derived from it.

use candle_core::{DType, Tensor};

use crate::error::{invalid_config, invalid_value, shape_error, Result};

/// Counts of (true class, predicted class) pairs over every labelled pixel seen since the last
/// [`reset`](Self::reset); pixels whose target is the ignore label are skipped.
///
/// Scores are computed from the totals, i.e. over the pixels of a whole epoch, not averaged per
/// batch. F1 follows torchmetrics' `F1Score(task="multiclass")` (what the original's
/// `segmentation_metrics` reports): micro F1 = `2ΣTP / (2ΣTP + ΣFP + ΣFN)` (the pixel accuracy),
/// macro F1 = mean of per-class F1 over the classes that occur in the targets or predictions.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_losses::metrics::ConfusionMatrix;
///
/// let mut cm = ConfusionMatrix::new(2, -1)?;
/// let pred = Tensor::new(&[[0u32, 1, 1, 0]], &Device::Cpu)?;
/// let target = Tensor::new(&[[0i64, 1, 0, -1]], &Device::Cpu)?;
/// cm.update_from_labels(&pred, &target)?;
/// assert_eq!(cm.total(), 3);
/// assert!((cm.f1_micro() - 2.0 / 3.0).abs() < 1e-12);
/// # Ok::<(), dlsia_losses::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    num_classes: usize,
    ignore_label: i64,
    /// `counts[t * C + p]`: pixels of true class `t` predicted as `p`.
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `num_classes ≥ 1` classes, skipping targets equal to `ignore_label`.
    pub fn new(num_classes: usize, ignore_label: i64) -> Result<Self> {
        if num_classes == 0 {
            return Err(invalid_config(
                "confusion_matrix",
                "num_classes must be at least 1",
            ));
        }
        Ok(Self {
            num_classes,
            ignore_label,
            counts: vec![0; num_classes * num_classes],
        })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The label value of unlabelled pixels.
    pub fn ignore_label(&self) -> i64 {
        self.ignore_label
    }

    /// Forgets every count (start of an epoch).
    pub fn reset(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }

    /// Adds a batch of class scores (logits or probabilities) `(N, C, spatial…)`: the predicted
    /// class is the arg-max over the channel axis (the first one on ties). `target` holds integer
    /// labels `(N, spatial…)` or `(N, 1, spatial…)`.
    pub fn update_from_scores(&mut self, scores: &Tensor, target: &Tensor) -> Result<()> {
        const WHAT: &str = "confusion_matrix";
        if scores.rank() < 2 || scores.dim(1)? != self.num_classes {
            return Err(shape_error(
                WHAT,
                format!("scores (N, C = {}, spatial…)", self.num_classes),
                scores.shape(),
            ));
        }
        let pred = scores.argmax_keepdim(1)?.squeeze(1)?;
        self.update_from_labels(&pred, target)
    }

    /// Adds a batch of predicted labels `(N, spatial…)` (any integer dtype) against integer
    /// targets of the same shape (or `(N, 1, spatial…)`).
    pub fn update_from_labels(&mut self, predicted: &Tensor, target: &Tensor) -> Result<()> {
        const WHAT: &str = "confusion_matrix";
        let target = if target.rank() == predicted.rank() + 1 && target.dim(1)? == 1 {
            target.squeeze(1)?
        } else {
            target.clone()
        };
        if target.shape() != predicted.shape() {
            return Err(shape_error(
                WHAT,
                format!(
                    "targets of the predicted labels' shape {:?}",
                    predicted.dims()
                ),
                target.shape(),
            ));
        }
        if !predicted.dtype().is_int() || !target.dtype().is_int() {
            return Err(invalid_value(
                WHAT,
                format!(
                    "predicted labels and targets must be integer tensors, got {:?} and {:?}",
                    predicted.dtype(),
                    target.dtype()
                ),
            ));
        }
        let p = predicted
            .flatten_all()?
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?;
        let t = target
            .flatten_all()?
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?;
        self.update_from_slices(&p, &t)
    }

    /// Adds predicted labels and targets given as slices of equal length.
    pub fn update_from_slices(&mut self, predicted: &[i64], target: &[i64]) -> Result<()> {
        const WHAT: &str = "confusion_matrix";
        if predicted.len() != target.len() {
            return Err(invalid_value(
                WHAT,
                format!(
                    "{} predicted labels for {} targets",
                    predicted.len(),
                    target.len()
                ),
            ));
        }
        let c = self.num_classes as i64;
        let mut add = vec![0u64; self.counts.len()];
        for (&p, &t) in predicted.iter().zip(target) {
            if t == self.ignore_label {
                continue;
            }
            if !(0..c).contains(&t) {
                return Err(invalid_value(
                    WHAT,
                    format!(
                        "target label {t} is neither in 0..{c} nor the ignore label {}",
                        self.ignore_label
                    ),
                ));
            }
            if !(0..c).contains(&p) {
                return Err(invalid_value(
                    WHAT,
                    format!("predicted label {p} is not in 0..{c}"),
                ));
            }
            add[(t * c + p) as usize] += 1;
        }
        self.counts.iter_mut().zip(add).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Adds another matrix's counts (e.g. from another worker).
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<()> {
        if other.num_classes != self.num_classes {
            return Err(invalid_value(
                "confusion_matrix",
                format!(
                    "cannot merge a {}-class matrix into a {}-class one",
                    other.num_classes, self.num_classes
                ),
            ));
        }
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Pixels of true class `target` predicted as `predicted`.
    pub fn count(&self, target: usize, predicted: usize) -> u64 {
        self.counts[target * self.num_classes + predicted]
    }

    /// The matrix, row-major: row = true class, column = predicted class.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Labelled pixels counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// True positives of class `c`.
    pub fn true_positives(&self, c: usize) -> u64 {
        self.count(c, c)
    }

    /// False positives of class `c` (predicted `c`, truly another class).
    pub fn false_positives(&self, c: usize) -> u64 {
        (0..self.num_classes).map(|t| self.count(t, c)).sum::<u64>() - self.count(c, c)
    }

    /// False negatives of class `c` (truly `c`, predicted another class).
    pub fn false_negatives(&self, c: usize) -> u64 {
        (0..self.num_classes).map(|p| self.count(c, p)).sum::<u64>() - self.count(c, c)
    }

    /// Fraction of labelled pixels predicted correctly (0 when nothing was counted).
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        (0..self.num_classes)
            .map(|c| self.true_positives(c))
            .sum::<u64>() as f64
            / total as f64
    }

    /// Micro-averaged F1, `2ΣTP / (2ΣTP + ΣFP + ΣFN)`; for single-label classification this is
    /// the accuracy. 0 when nothing was counted (torchmetrics' `zero_division=0`).
    pub fn f1_micro(&self) -> f64 {
        let tp: u64 = (0..self.num_classes).map(|c| self.true_positives(c)).sum();
        let fp: u64 = (0..self.num_classes).map(|c| self.false_positives(c)).sum();
        let fn_: u64 = (0..self.num_classes).map(|c| self.false_negatives(c)).sum();
        ratio(2 * tp, 2 * tp + fp + fn_).unwrap_or(0.0)
    }

    /// F1 (= Dice) per class, `2TP / (2TP + FP + FN)`; `None` for a class that appears in
    /// neither targets nor predictions.
    pub fn f1_per_class(&self) -> Vec<Option<f64>> {
        (0..self.num_classes)
            .map(|c| {
                let tp = self.true_positives(c);
                ratio(
                    2 * tp,
                    2 * tp + self.false_positives(c) + self.false_negatives(c),
                )
            })
            .collect()
    }

    /// Dice coefficient per class (identical to [`f1_per_class`](Self::f1_per_class)).
    pub fn dice_per_class(&self) -> Vec<Option<f64>> {
        self.f1_per_class()
    }

    /// Macro-averaged F1: the mean of per-class F1 over the classes present in targets or
    /// predictions (torchmetrics' rule); 0 when nothing was counted.
    pub fn f1_macro(&self) -> f64 {
        mean_defined(&self.f1_per_class())
    }

    /// Intersection over union per class, `TP / (TP + FP + FN)`; `None` for a class that appears
    /// in neither targets nor predictions.
    pub fn iou_per_class(&self) -> Vec<Option<f64>> {
        (0..self.num_classes)
            .map(|c| {
                let tp = self.true_positives(c);
                ratio(tp, tp + self.false_positives(c) + self.false_negatives(c))
            })
            .collect()
    }

    /// Mean IoU over the classes present in targets or predictions; 0 when nothing was counted.
    pub fn mean_iou(&self) -> f64 {
        mean_defined(&self.iou_per_class())
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn mean_defined(values: &[Option<f64>]) -> f64 {
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    if defined.is_empty() {
        0.0
    } else {
        defined.iter().sum::<f64>() / defined.len() as f64
    }
}
