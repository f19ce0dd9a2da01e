//! Total-variation regularisation of a prediction, added to a base loss (2D, 3D, any rank).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{invalid_config, shape_error, Result};
use crate::loss::Loss;
use crate::ops::softmax_channels;

/// What the total variation is measured on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TvOn {
    /// The raw prediction (the original's 2D `CombinedLossWithTVNorm`).
    #[default]
    Prediction,
    /// The softmax over channels of the prediction (the original's 3D
    /// `CombinedLossWithTVNorm3D`).
    Softmax,
}

/// Weighted anisotropic total variation of a prediction `(N, C, spatial…)`:
///
/// `TV = Σ_axes Σ_c w_c·Σ |x[…, i+1, …] − x[…, i, …]| / (N · Π spatial)`
///
/// summed over every spatial axis (two in 2D, three in 3D), normalised by the batch size times
/// the number of pixels as in the original. The regulariser acts on every pixel, labelled or not:
/// smoothness of the prediction is what it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct TotalVariation {
    weights: Vec<f64>,
    on: TvOn,
}

impl TotalVariation {
    /// A regulariser with one non-negative finite weight per channel.
    pub fn new(weights: Vec<f64>, on: TvOn) -> Result<Self> {
        if weights.is_empty() || weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(invalid_config(
                "total_variation",
                format!(
                    "weights must be one finite, non-negative value per channel, got {weights:?}"
                ),
            ));
        }
        Ok(Self { weights, on })
    }

    /// The (weighted, normalised) total variation of `prediction`, a 0-d tensor.
    pub fn value(&self, prediction: &Tensor) -> Result<Tensor> {
        const WHAT: &str = "total_variation";
        if prediction.rank() < 3 {
            return Err(shape_error(
                WHAT,
                "a prediction (N, C, spatial…) with at least one spatial axis",
                prediction.shape(),
            ));
        }
        let c = prediction.dim(1)?;
        if c != self.weights.len() {
            return Err(invalid_config(
                WHAT,
                format!(
                    "{} weights given for a prediction with {c} channels",
                    self.weights.len()
                ),
            ));
        }
        let x = match self.on {
            TvOn::Prediction => prediction.clone(),
            TvOn::Softmax => softmax_channels(prediction)?,
        };
        let mut wshape = vec![1usize; x.rank()];
        wshape[1] = c;
        let w = Tensor::new(self.weights.as_slice(), x.device())?
            .to_dtype(x.dtype())?
            .reshape(wshape)?;
        let mut total = Tensor::zeros((), x.dtype(), x.device())?;
        for axis in 2..x.rank() {
            let len = x.dim(axis)?;
            if len < 2 {
                continue;
            }
            let diff = (x.narrow(axis, 1, len - 1)? - x.narrow(axis, 0, len - 1)?)?.abs()?;
            total = (total + diff.broadcast_mul(&w)?.sum_all()?)?;
        }
        let pixels: usize = x.dims()[2..].iter().product();
        let norm = (x.dim(0)? * pixels) as f64;
        Ok((total / norm)?)
    }
}

/// A base loss plus a total-variation term on the prediction: `base(x, y, m) + TV(x)`.
pub struct TvRegularized {
    base: Box<dyn Loss>,
    tv: TotalVariation,
}

impl TvRegularized {
    /// Combines `base` with the regulariser `tv`.
    pub fn new(base: Box<dyn Loss>, tv: TotalVariation) -> Self {
        Self { base, tv }
    }

    /// The regulariser.
    pub fn total_variation(&self) -> &TotalVariation {
        &self.tv
    }
}

impl std::fmt::Debug for TvRegularized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TvRegularized")
            .field("tv", &self.tv)
            .finish_non_exhaustive()
    }
}

impl Loss for TvRegularized {
    fn loss(&self, prediction: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let base = self.base.loss(prediction, target, mask)?;
        Ok((base + self.tv.value(prediction)?)?)
    }
}
