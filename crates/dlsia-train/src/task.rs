//! [`TaskConfig`]: what is learned (segmentation with an ignore label, regression with an
//! optional mask, autoencoder reconstruction), the default loss and the metrics of each.

use candle_core::{DType, Tensor};
use dlsia_data::Batch;
use dlsia_losses::{BinaryCrossEntropyConfig, CrossEntropyConfig, LossConfig, MaskedMseConfig};
use dlsia_nets::Network;
use serde::{Deserialize, Serialize};

use crate::error::{config_err, Error, Result};
use crate::monitor::MetricKind;

fn minus_one() -> i64 {
    -1
}

/// The learning task, by `kind`.
///
/// * `segmentation`: integer label targets `(N, spatial…)`, unlabelled pixels hold
///   `ignore_label` (default −1); the network outputs one channel per class (or one logit
///   channel for two classes). Metrics: F1 micro/macro, mean IoU.
/// * `regression`: floating-point targets of the output's shape, an optional mask of where the
///   loss counts (e.g. inpainting gaps). Metric: Pearson.
/// * `autoencoder`: the target is the input itself (masked where the batch has a mask).
///   Metric: Pearson of the reconstruction.
///
/// ```
/// use dlsia_train::TaskConfig;
/// let t: TaskConfig = toml::from_str("kind = \"segmentation\"\nnum_classes = 3").unwrap();
/// assert_eq!(t, TaskConfig::Segmentation { num_classes: 3, ignore_label: -1, threshold: 0.0 });
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskConfig {
    /// Per-pixel classification.
    Segmentation {
        /// Number of classes (≥ 2).
        num_classes: usize,
        /// Label of unlabelled pixels (default −1).
        #[serde(default = "minus_one")]
        ignore_label: i64,
        /// For a one-channel output: class 1 where the output exceeds this (default 0, for
        /// logits; use 0.5 for probabilities).
        #[serde(default)]
        threshold: f64,
    },
    /// Per-pixel regression (restoration, inpainting).
    Regression,
    /// Reconstruction of the input.
    Autoencoder,
}

impl TaskConfig {
    /// A segmentation task with `num_classes` classes and ignore label −1.
    pub fn segmentation(num_classes: usize) -> Self {
        TaskConfig::Segmentation {
            num_classes,
            ignore_label: -1,
            threshold: 0.0,
        }
    }

    /// Checks the task's values.
    pub fn check(&self) -> Result<()> {
        if let TaskConfig::Segmentation {
            num_classes,
            ignore_label,
            threshold,
        } = self
        {
            if *num_classes < 2 {
                return Err(config_err(
                    "task.num_classes",
                    format!("segmentation needs at least 2 classes, got {num_classes}"),
                ));
            }
            if (0..*num_classes as i64).contains(ignore_label) {
                return Err(config_err(
                    "task.ignore_label",
                    format!(
                        "{ignore_label} is a class label (0..{num_classes}); unlabelled pixels need a value outside it, e.g. -1"
                    ),
                ));
            }
            if !threshold.is_finite() {
                return Err(config_err("task.threshold", "must be finite"));
            }
        }
        Ok(())
    }

    /// The loss used when the configuration names none: cross-entropy with the task's ignore
    /// label (binary cross-entropy for a one-channel output) or mean squared error.
    pub fn default_loss(&self, out_channels: usize) -> LossConfig {
        match self {
            TaskConfig::Segmentation { ignore_label, .. } if out_channels == 1 => {
                LossConfig::BinaryCrossEntropy(BinaryCrossEntropyConfig {
                    ignore_index: *ignore_label,
                    ..Default::default()
                })
            }
            TaskConfig::Segmentation { ignore_label, .. } => {
                LossConfig::CrossEntropy(CrossEntropyConfig {
                    ignore_index: *ignore_label,
                    ..Default::default()
                })
            }
            TaskConfig::Regression | TaskConfig::Autoencoder => {
                LossConfig::MaskedMse(MaskedMseConfig {})
            }
        }
    }

    /// The metrics the task computes every epoch.
    pub fn metrics(&self) -> &'static [MetricKind] {
        match self {
            TaskConfig::Segmentation { .. } => &[
                MetricKind::Loss,
                MetricKind::F1Micro,
                MetricKind::F1Macro,
                MetricKind::MeanIou,
            ],
            _ => &[MetricKind::Loss, MetricKind::Pearson],
        }
    }

    /// The task's name.
    pub fn name(&self) -> &'static str {
        match self {
            TaskConfig::Segmentation { .. } => "segmentation",
            TaskConfig::Regression => "regression",
            TaskConfig::Autoencoder => "autoencoder",
        }
    }

    /// Checks that the network's channels fit the task.
    pub fn check_network(&self, net: &dyn Network) -> Result<()> {
        let (cin, cout) = (net.in_channels(), net.out_channels());
        match self {
            TaskConfig::Segmentation { num_classes, .. } => {
                if cout != *num_classes && !(cout == 1 && *num_classes == 2) {
                    return Err(Error::Incompatible {
                        what: "segmentation",
                        msg: format!(
                            "the network has {cout} output channels for {num_classes} classes; it needs one channel per class (or one logit channel for 2 classes)"
                        ),
                    });
                }
            }
            TaskConfig::Autoencoder => {
                if cout != cin {
                    return Err(Error::Incompatible {
                        what: "autoencoder",
                        msg: format!(
                            "the network maps {cin} input channels to {cout} output channels; a reconstruction needs as many outputs as inputs"
                        ),
                    });
                }
            }
            TaskConfig::Regression => {}
        }
        Ok(())
    }

    /// The input, target and mask of a batch for this task.
    pub(crate) fn split_batch(&self, batch: &Batch) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let x = batch.image.clone();
        let mask = batch.mask.clone();
        let target = match self {
            TaskConfig::Autoencoder => x.clone(),
            _ => batch.target.clone().ok_or_else(|| Error::Incompatible {
                what: "batch",
                msg: format!(
                    "a {} batch needs targets; the dataset gives images only",
                    self.name()
                ),
            })?,
        };
        match self {
            TaskConfig::Segmentation { .. } if !target.dtype().is_int() => {
                return Err(Error::Incompatible {
                    what: "batch",
                    msg: format!(
                        "segmentation needs integer label targets, got {:?}; use the regression task for floating-point targets",
                        target.dtype()
                    ),
                })
            }
            TaskConfig::Regression if target.dtype().is_int() => {
                return Err(Error::Incompatible {
                    what: "batch",
                    msg: "regression needs floating-point targets, got integer labels; use the segmentation task for labels".into(),
                })
            }
            _ => {}
        }
        let target = if target.dtype().is_float() && target.dtype() != x.dtype() {
            target.to_dtype(x.dtype())?
        } else if target.dtype().is_int() && target.dtype() != DType::I64 {
            target.to_dtype(DType::I64)?
        } else {
            target
        };
        Ok((x, target, mask))
    }
}
