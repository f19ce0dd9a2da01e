//! # dlsia-losses
//!
//! Training objectives and epoch-level metrics for segmentation and regression of scientific
//! images, on Candle tensors `(N, C, spatial…)` in 1D, 2D or 3D.
//!
//! * [`Loss`]: `loss(prediction, target, mask)`; every loss honours sparse labels (the ignore
//!   value, −1 by default) and an optional weight mask in both the numerator and the
//!   denominator, so unlabelled pixels change nothing whatever the network predicts there.
//! * Losses: [`CrossEntropy`], [`BinaryCrossEntropy`], [`Dice`], [`DiceBce`], [`Focal`]
//!   (standard, per pixel), [`FocalDlsia`] (the original's formula), [`Tversky`],
//!   [`FocalTversky`], [`MaskedL1`], [`MaskedMse`], [`TvRegularized`]. Each has a serde config
//!   with the original's defaults and a checked `build()`; [`LossConfig`] picks one by name.
//! * Whether the prediction holds logits or probabilities is part of every class loss's
//!   configuration ([`PredictionKind`]); logits go through a stable log-softmax / log-sigmoid,
//!   so a softmax is never applied twice and large logits never overflow.
//! * [`metrics`]: [`metrics::ConfusionMatrix`] (F1 micro/macro as torchmetrics computes them,
//!   per-class IoU/Dice) and [`metrics::Pearson`], accumulated over an epoch.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_losses::{CrossEntropy, Loss};
//!
//! let logits = Tensor::new(&[[[2f32, 0.0]], [[0.0, 3.0]]], &Device::Cpu)?.reshape((1, 2, 1, 2))?;
//! let labels = Tensor::new(&[[[0i64, -1]]], &Device::Cpu)?; // second pixel unlabelled
//! let l = CrossEntropy::default().loss(&logits, &labels, None)?;
//! let expected = (1.0f64 + (-2.0f64).exp()).ln(); // −ln softmax([2, 0])[0]
//! assert!((l.to_scalar::<f32>()? as f64 - expected).abs() < 1e-6);
//! # Ok::<(), dlsia_losses::Error>(())
//! ```

mod config;
mod cross_entropy;
mod dice_bce;
pub mod error;
mod focal;
mod fused;
#[doc(hidden)]
pub use fused::without_fused_kernels;
mod loss;
pub mod metrics;
pub mod ops;
mod overlap;
mod regression;
mod target;
mod total_variation;

pub use config::{LossConfig, TvRegularizedConfig};
pub use cross_entropy::{
    BinaryCrossEntropy, BinaryCrossEntropyConfig, CrossEntropy, CrossEntropyConfig,
};
pub use dice_bce::{DiceBce, DiceBceConfig};
pub use error::{Error, Result};
pub use focal::{Focal, FocalConfig, FocalDlsia, FocalDlsiaConfig};
pub use loss::{ClassAverage, Loss, PredictionKind};
pub use overlap::{Dice, DiceConfig, FocalTversky, FocalTverskyConfig, Tversky, TverskyConfig};
pub use regression::{MaskedL1, MaskedL1Config, MaskedMse, MaskedMseConfig};
pub use total_variation::{TotalVariation, TvOn, TvRegularized};
