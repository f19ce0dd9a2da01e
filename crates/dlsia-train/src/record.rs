//! What one epoch produced: [`EpochMetrics`] per split and the [`EpochRecord`] that the run log,
//! the curves, the callbacks and the checkpoints share.

use serde::{Deserialize, Serialize};

/// Metrics of one pass over a split, each computed over every counted pixel of the epoch (not
/// averaged per batch). `None` where the task does not define the metric or it is undefined
/// (no labelled pixel, constant prediction).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochMetrics {
    /// The loss, each batch weighted by its counted pixels (labelled pixels in segmentation,
    /// mask weight or element count in regression): the exact epoch mean of per-pixel losses.
    pub loss: Option<f64>,
    /// Micro F1 over all labelled pixels (segmentation).
    pub f1_micro: Option<f64>,
    /// Macro F1 over the classes present (segmentation).
    pub f1_macro: Option<f64>,
    /// Mean IoU over the classes present (segmentation).
    pub mean_iou: Option<f64>,
    /// Pearson correlation of prediction and target (regression, autoencoder).
    pub pearson: Option<f64>,
    /// Counted pixels (labelled pixels, or the total mask weight).
    pub pixels: f64,
}

/// One epoch of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    /// Epoch number, counting from 1.
    pub epoch: usize,
    /// Learning rate of the epoch's last optimizer step.
    pub lr: f64,
    /// Optimizer steps taken since the start of the run.
    pub steps: u64,
    /// Metrics of the training batches (train mode, as they were seen during the epoch).
    pub train: EpochMetrics,
    /// Metrics of the validation batches after the epoch (eval mode), if there are any.
    pub validation: Option<EpochMetrics>,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

impl EpochRecord {
    /// The record without its wall-clock time (for comparing runs).
    pub fn without_time(&self) -> EpochRecord {
        EpochRecord {
            seconds: 0.0,
            ..self.clone()
        }
    }
}
