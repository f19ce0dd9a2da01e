//! Streaming Pearson correlation in f64 (Chan et al.'s pairwise update of the co-moments), for
//! regression and autoencoder training.

use candle_core::{DType, Tensor};

use crate::error::{invalid_value, shape_error, Result};
use crate::target::prepare_mask;

/// Pearson correlation between predictions and targets over every (weighted) element seen since
/// the last [`reset`](Self::reset), flattened over batch, channels and space like the original's
/// `regression_metrics` (`torch.corrcoef` of the flattened tensors), but accumulated over a whole
/// epoch in f64 with numerically stable co-moment updates.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_losses::metrics::Pearson;
///
/// let mut r = Pearson::new();
/// let x = Tensor::new(&[[[1f32, 2.0, 3.0]]], &Device::Cpu)?;
/// let y = Tensor::new(&[[[2f32, 4.0, 7.0]]], &Device::Cpu)?;
/// r.update(&x, &y, None)?;
/// assert!((r.compute().unwrap() - 0.9933992677987828).abs() < 1e-12);
/// # Ok::<(), dlsia_losses::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pearson {
    weight: f64,
    mean_x: f64,
    mean_y: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
}

/// The values of a tensor as f64 on the host (f32 is read as is and widened).
fn host_f64(t: &Tensor) -> Result<Vec<f64>> {
    let t = t.flatten_all()?;
    Ok(match t.dtype() {
        DType::F64 => t.to_vec1::<f64>()?,
        DType::F32 => t.to_vec1::<f32>()?.into_iter().map(f64::from).collect(),
        _ => t.to_dtype(DType::F64)?.to_vec1::<f64>()?,
    })
}

impl Pearson {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (start of an epoch).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Adds a batch: `prediction` and `target` of the same shape; `mask` (optional) weights
    /// elements as in the losses: `(N, 1 or C, spatial…)`, `(N, spatial…)` or the full shape.
    pub fn update(
        &mut self,
        prediction: &Tensor,
        target: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<()> {
        const WHAT: &str = "pearson";
        if prediction.shape() != target.shape() {
            return Err(shape_error(
                WHAT,
                format!("a target of the prediction's shape {:?}", prediction.dims()),
                target.shape(),
            ));
        }
        let x = host_f64(prediction)?;
        let y = host_f64(target)?;
        let w = match mask {
            None => None,
            Some(m) => {
                let pred64 = prediction.to_dtype(DType::F64)?;
                let m = prepare_mask(WHAT, &pred64, m)?.broadcast_as(prediction.shape())?;
                Some(m.flatten_all()?.to_vec1::<f64>()?)
            }
        };
        self.update_slices(&x, &y, w.as_deref())
    }

    /// Adds paired values (and optional non-negative weights) given as slices.
    pub fn update_slices(&mut self, x: &[f64], y: &[f64], weights: Option<&[f64]>) -> Result<()> {
        const WHAT: &str = "pearson";
        if x.len() != y.len() || weights.is_some_and(|w| w.len() != x.len()) {
            return Err(invalid_value(
                WHAT,
                "predictions, targets and weights must have the same length",
            ));
        }
        let wt = |i: usize| weights.map_or(1.0, |w| w[i]);
        let mut batch = Pearson::default();
        for i in 0..x.len() {
            let w = wt(i);
            if !(w.is_finite() && w >= 0.0) {
                return Err(invalid_value(
                    WHAT,
                    format!("weight {w} is not finite and non-negative"),
                ));
            }
            batch.weight += w;
            batch.mean_x += w * x[i];
            batch.mean_y += w * y[i];
        }
        if batch.weight == 0.0 {
            return Ok(());
        }
        batch.mean_x /= batch.weight;
        batch.mean_y /= batch.weight;
        for i in 0..x.len() {
            let w = wt(i);
            let dx = x[i] - batch.mean_x;
            let dy = y[i] - batch.mean_y;
            batch.sxx += w * dx * dx;
            batch.syy += w * dy * dy;
            batch.sxy += w * dx * dy;
        }
        if !(batch.sxx.is_finite() && batch.syy.is_finite() && batch.sxy.is_finite()) {
            return Err(invalid_value(
                WHAT,
                "predictions or targets contain NaN or infinite values",
            ));
        }
        self.merge(&batch);
        Ok(())
    }

    /// Combines another accumulator into this one.
    pub fn merge(&mut self, other: &Pearson) {
        if other.weight == 0.0 {
            return;
        }
        if self.weight == 0.0 {
            *self = other.clone();
            return;
        }
        let total = self.weight + other.weight;
        let dx = other.mean_x - self.mean_x;
        let dy = other.mean_y - self.mean_y;
        let f = self.weight * other.weight / total;
        self.sxx += other.sxx + dx * dx * f;
        self.syy += other.syy + dy * dy * f;
        self.sxy += other.sxy + dx * dy * f;
        self.mean_x += dx * other.weight / total;
        self.mean_y += dy * other.weight / total;
        self.weight = total;
    }

    /// Total weight (number of elements without a mask) accumulated.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The correlation coefficient, or `None` when it is undefined (no data, or predictions or
    /// targets constant).
    pub fn compute(&self) -> Option<f64> {
        let den = (self.sxx * self.syy).sqrt();
        (self.weight > 0.0 && den > 0.0).then(|| (self.sxy / den).clamp(-1.0, 1.0))
    }
}
