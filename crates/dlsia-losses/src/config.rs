//! [`LossConfig`]: a loss chosen by name with its hyperparameters, as written in a TOML or JSON
//! configuration file, checked once and turned into a `Box<dyn Loss>`.
//!
//! ```
//! use dlsia_losses::LossConfig;
//!
//! let cfg: LossConfig = toml::from_str(r#"
//!     name = "dice_bce"
//!     alpha = 0.3
//! "#).unwrap();
//! let loss = cfg.build()?;
//!
//! let tv: LossConfig = toml::from_str(r#"
//!     name = "tv_regularized"
//!     weights = [0.1, 0.1]
//!     on = "softmax"
//!     base = { name = "cross_entropy", ignore_index = -1 }
//! "#).unwrap();
//! let _loss = tv.build()?;
//! # Ok::<(), dlsia_losses::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::cross_entropy::{BinaryCrossEntropyConfig, CrossEntropyConfig};
use crate::dice_bce::DiceBceConfig;
use crate::error::Result;
use crate::focal::{FocalConfig, FocalDlsiaConfig};
use crate::loss::Loss;
use crate::overlap::{DiceConfig, FocalTverskyConfig, TverskyConfig};
use crate::regression::{MaskedL1Config, MaskedMseConfig};
use crate::total_variation::{TotalVariation, TvOn, TvRegularized};

/// A loss by name (the `name` key) with its hyperparameters; missing keys take the documented
/// defaults (the original's), unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum LossConfig {
    /// [`crate::CrossEntropy`].
    CrossEntropy(CrossEntropyConfig),
    /// [`crate::BinaryCrossEntropy`].
    BinaryCrossEntropy(BinaryCrossEntropyConfig),
    /// [`crate::Dice`].
    Dice(DiceConfig),
    /// [`crate::DiceBce`].
    DiceBce(DiceBceConfig),
    /// [`crate::Focal`] (standard, per pixel).
    Focal(FocalConfig),
    /// [`crate::FocalDlsia`] (the original's focal factor on the mean BCE).
    FocalDlsia(FocalDlsiaConfig),
    /// [`crate::Tversky`].
    Tversky(TverskyConfig),
    /// [`crate::FocalTversky`].
    FocalTversky(FocalTverskyConfig),
    /// [`crate::MaskedL1`].
    MaskedL1(MaskedL1Config),
    /// [`crate::MaskedMse`].
    MaskedMse(MaskedMseConfig),
    /// [`crate::TvRegularized`]: a base loss plus total variation.
    TvRegularized(TvRegularizedConfig),
}

/// Hyperparameters of [`TvRegularized`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TvRegularizedConfig {
    /// The base loss.
    pub base: Box<LossConfig>,
    /// One total-variation weight per channel.
    pub weights: Vec<f64>,
    /// Raw prediction (default) or its softmax.
    #[serde(default)]
    pub on: TvOn,
}

impl LossConfig {
    /// Checks the hyperparameters and builds the loss.
    pub fn build(&self) -> Result<Box<dyn Loss>> {
        Ok(match self {
            LossConfig::CrossEntropy(c) => Box::new(c.build()?),
            LossConfig::BinaryCrossEntropy(c) => Box::new(c.build()?),
            LossConfig::Dice(c) => Box::new(c.build()?),
            LossConfig::DiceBce(c) => Box::new(c.build()?),
            LossConfig::Focal(c) => Box::new(c.build()?),
            LossConfig::FocalDlsia(c) => Box::new(c.build()?),
            LossConfig::Tversky(c) => Box::new(c.build()?),
            LossConfig::FocalTversky(c) => Box::new(c.build()?),
            LossConfig::MaskedL1(c) => Box::new(c.build()?),
            LossConfig::MaskedMse(c) => Box::new(c.build()?),
            LossConfig::TvRegularized(c) => Box::new(TvRegularized::new(
                c.base.build()?,
                TotalVariation::new(c.weights.clone(), c.on)?,
            )),
        })
    }
}
