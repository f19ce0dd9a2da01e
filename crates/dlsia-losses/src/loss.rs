//! The [`Loss`] trait and the small enums the loss configurations share.

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A differentiable training objective.
///
/// * `prediction`: the network output `(N, C, spatial…)`, logits or probabilities as the loss's
///   configuration says ([`PredictionKind`]).
/// * `target`: integer class labels `(N, spatial…)` (or `(N, 1, spatial…)`) where the loss's
///   ignore value marks unlabelled pixels, or floating-point targets with the prediction's shape
///   (soft/one-hot targets, regression targets).
/// * `mask`: optional weights `(N, 1 or C, spatial…)` of where the loss counts (1 = counts,
///   0 = ignored); any non-negative finite value is a weight.
///
/// Returns a scalar (0-d) tensor. Pixels that are unlabelled or have weight 0 contribute to
/// neither the numerator nor the denominator of any average.
pub trait Loss: Send + Sync {
    /// The loss of one batch (a 0-d tensor, differentiable with respect to `prediction`).
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor>;
}

impl<L: Loss + ?Sized> Loss for Box<L> {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        (**self).loss(prediction, target, mask)
    }
}

impl<L: Loss + ?Sized> Loss for Arc<L> {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        (**self).loss(prediction, target, mask)
    }
}

impl<L: Loss + ?Sized> Loss for &L {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        (**self).loss(prediction, target, mask)
    }
}

/// What the network output fed to a loss is.
///
/// Logits are turned into probabilities inside the loss: with a sigmoid when the prediction has
/// one channel (binary segmentation), with a softmax over the channel axis when it has two or more
/// (mutually exclusive classes). Probabilities are used as they are (the network already applied
/// its final activation), so a softmax is never applied twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionKind {
    /// Raw network outputs (the default: networks end in a linear 1×1 convolution).
    #[default]
    Logits,
    /// Probabilities in `[0, 1]` (after a sigmoid or softmax in the network).
    Probabilities,
}

/// How an overlap loss (Dice, Tversky, FocalTversky) combines the classes of a multi-channel
/// prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassAverage {
    /// The index is computed per class (over all labelled pixels of the batch) and the classes'
    /// losses are averaged: every class weighs the same whatever its size (the usual multi-class
    /// soft Dice).
    #[default]
    Macro,
    /// Sums run over all classes and pixels at once, as the original's `.view(-1)` does on
    /// one-hot targets. Identical to `Macro` for a one-channel (binary) prediction.
    Pooled,
}
