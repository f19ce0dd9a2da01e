//! Ensembles of predictors: mean and standard-deviation maps of the members' class
//! probabilities, and the DLSIA paper's confidence rule "mean − std > 0.5".

use candle_core::{DType, Tensor};

use crate::error::{invalid_config, shape_error, Result};
use crate::predictor::{check_output, Predictor};

/// An ensemble of predictors with the same number of classes. Members run one after another and
/// are combined with a running (Welford) mean and variance, so memory does not grow with the
/// number of members. As a [`Predictor`] it returns the mean probabilities.
pub struct Ensemble {
    members: Vec<Box<dyn Predictor>>,
    num_classes: usize,
}

impl std::fmt::Debug for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ensemble")
            .field("members", &self.members.len())
            .field("num_classes", &self.num_classes)
            .finish()
    }
}

/// Which spread [`EnsembleStats::confident`] subtracts from the mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// The members' sample standard deviation (`N − 1` denominator).
    StandardDeviation,
    /// The standard error of the mean, `std / √N` — what the original's
    /// `model_baggin(..., return_std=True)` returns as "std".
    StandardError,
}

/// Per-pixel statistics of an ensemble's class probabilities, `(N, C, spatial…)` each.
#[derive(Debug, Clone)]
pub struct EnsembleStats {
    /// Mean probability over the members (sums to 1 over classes).
    pub mean: Tensor,
    /// Sample standard deviation over the members (`N − 1` denominator, like `torch.std`).
    pub std: Tensor,
    /// Number of members.
    pub members: usize,
}

impl EnsembleStats {
    /// The standard error of the mean, `std / √members`.
    pub fn standard_error(&self) -> Result<Tensor> {
        Ok((&self.std / (self.members as f64).sqrt())?)
    }

    fn spread(&self, spread: Spread) -> Result<Tensor> {
        match spread {
            Spread::StandardDeviation => Ok(self.std.clone()),
            Spread::StandardError => self.standard_error(),
        }
    }

    /// Where each class is confidently predicted: `mean − spread > threshold`, a u8 tensor
    /// `(N, C, spatial…)`. With the paper's `threshold = 0.5` at most one class per pixel passes.
    pub fn confident(&self, spread: Spread, threshold: f64) -> Result<Tensor> {
        Ok((&self.mean - self.spread(spread)?)?.gt(threshold)?)
    }

    /// Labels `(N, spatial…)` (i64) of pixels where a class passes
    /// [`confident`](Self::confident) with a threshold of at least 0.5, `unsure` elsewhere.
    pub fn confident_labels(&self, spread: Spread, threshold: f64, unsure: i64) -> Result<Tensor> {
        if !(0.5..1.0).contains(&threshold) {
            return Err(invalid_config(
                "EnsembleStats::confident_labels",
                format!("threshold must lie in [0.5, 1) so that at most one class passes, got {threshold}"),
            ));
        }
        let ok = self.confident(spread, threshold)?.to_dtype(DType::F32)?;
        let any = ok.max_keepdim(1)?.squeeze(1)?;
        let label = ok.argmax_keepdim(1)?.squeeze(1)?.to_dtype(DType::I64)?;
        let unsure = Tensor::full(unsure, label.shape(), label.device())?;
        Ok(any.ne(0.0)?.where_cond(&label, &unsure)?)
    }
}

impl Ensemble {
    /// An ensemble of at least one member; all must report the same number of classes.
    pub fn new(members: Vec<Box<dyn Predictor>>) -> Result<Self> {
        let Some(first) = members.first() else {
            return Err(invalid_config(
                "Ensemble",
                "an ensemble needs at least one member",
            ));
        };
        let num_classes = first.num_classes();
        if let Some((i, m)) = members
            .iter()
            .enumerate()
            .find(|(_, m)| m.num_classes() != num_classes)
        {
            return Err(invalid_config(
                "Ensemble",
                format!(
                    "member {i} predicts {} classes, member 0 predicts {num_classes}",
                    m.num_classes()
                ),
            ));
        }
        Ok(Self {
            members,
            num_classes,
        })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: an ensemble has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members.
    pub fn members(&self) -> &[Box<dyn Predictor>] {
        &self.members
    }

    /// Mean and sample standard deviation of the members' probabilities for a batch (at least
    /// two members are needed for a standard deviation).
    pub fn stats(&self, x: &Tensor) -> Result<EnsembleStats> {
        if self.members.len() < 2 {
            return Err(invalid_config(
                "Ensemble::stats",
                "a standard deviation needs at least 2 members",
            ));
        }
        let (mean, m2) = self.welford(x)?;
        let std = (m2 / (self.members.len() - 1) as f64)?.sqrt()?;
        Ok(EnsembleStats {
            mean,
            std,
            members: self.members.len(),
        })
    }

    /// Running mean and sum of squared deviations over the members.
    fn welford(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut mean: Option<Tensor> = None;
        let mut m2: Option<Tensor> = None;
        for (k, member) in self.members.iter().enumerate() {
            let p = member.predict_proba(x)?.detach();
            check_output("Ensemble member", &p, x, self.num_classes)?;
            match (&mean, &m2) {
                (Some(m), Some(s)) => {
                    if p.shape() != m.shape() {
                        return Err(shape_error(
                            "Ensemble",
                            format!("member {k} to return the shape of member 0, {:?}", m.dims()),
                            p.shape(),
                        ));
                    }
                    let delta = (&p - m)?;
                    let new_mean = (m + (&delta / (k + 1) as f64)?)?;
                    let new_m2 = (s + (&delta * (&p - &new_mean)?)?)?;
                    mean = Some(new_mean);
                    m2 = Some(new_m2);
                }
                _ => {
                    m2 = Some(p.zeros_like()?);
                    mean = Some(p);
                }
            }
        }
        match (mean, m2) {
            (Some(m), Some(s)) => Ok((m, s)),
            _ => Err(invalid_config(
                "Ensemble",
                "an ensemble needs at least one member",
            )),
        }
    }
}

impl Predictor for Ensemble {
    fn predict_proba(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.welford(x)?.0)
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }
}
