//! Prediction sets, set-size maps and coverage from a calibrated threshold.

use candle_core::Tensor;

use super::coverage::CoverageReport;
use super::host::{global_coords, hash_uniform, host_labels, host_probs, HostProbs};
use super::score::ScoreMethod;
use crate::error::{invalid_config, Result};

/// Salt of the random numbers drawn for test pixels (APS), distinct from calibration's.
const TEST_SALT: u64 = 0x7E57_5A17_0000_0001;

/// A calibrated conformal predictor: the threshold `q̂` and the score it applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct ConformalPredictor {
    qhat: f64,
    alpha: f64,
    method: ScoreMethod,
    num_classes: usize,
    n_calibration: usize,
    seed: u64,
    tolerance: f64,
}

impl ConformalPredictor {
    pub(crate) fn new(
        qhat: f64,
        alpha: f64,
        method: ScoreMethod,
        num_classes: usize,
        n_calibration: usize,
        seed: u64,
        tolerance: f64,
    ) -> Self {
        Self {
            qhat,
            alpha,
            method,
            num_classes,
            n_calibration,
            seed,
            tolerance,
        }
    }

    /// The score threshold `q̂`.
    pub fn qhat(&self) -> f64 {
        self.qhat
    }

    /// The miscoverage level `α`.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The score.
    pub fn method(&self) -> ScoreMethod {
        self.method
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Number of calibration pixels `n`; the coverage bound is `1 − α + 1/(n + 1)`.
    pub fn n_calibration(&self) -> usize {
        self.n_calibration
    }

    /// Calls `f(image, pixel, set, size)` for every pixel of a tile at `origin`.
    fn for_each_set(
        &self,
        hp: &HostProbs,
        origin: &[usize],
        mut f: impl FnMut(usize, usize, &[bool], usize),
    ) -> Result<()> {
        let rank = hp.spatial.len();
        if !origin.is_empty() && origin.len() != rank {
            return Err(invalid_config(
                "ConformalPredictor",
                format!("origin {origin:?} must have one entry per spatial axis ({rank})"),
            ));
        }
        let pixels = hp.pixels();
        let mut p = vec![0.0; hp.c];
        let mut set = vec![false; hp.c];
        let mut coords = vec![0usize; rank];
        let mut key = vec![0u64; rank + 1];
        for b in 0..hp.n {
            for s in 0..pixels {
                hp.gather(b, s, &mut p);
                let u = if self.method.uses_u() {
                    global_coords(s, &hp.spatial, origin, &mut coords);
                    key[0] = b as u64;
                    for (k, c) in key[1..].iter_mut().zip(&coords) {
                        *k = *c as u64;
                    }
                    hash_uniform(self.seed ^ TEST_SALT, &key)
                } else {
                    1.0
                };
                let size = self.method.set(&p, self.qhat, u, &mut set);
                f(b, s, &set, size);
            }
        }
        Ok(())
    }

    fn host(&self, probs: &Tensor) -> Result<HostProbs> {
        host_probs(
            "ConformalPredictor",
            probs,
            Some(self.num_classes),
            self.tolerance,
        )
    }

    /// Prediction sets `(N, C, spatial…)` as a u8 tensor (1 = class in the set).
    pub fn prediction_sets(&self, probs: &Tensor) -> Result<Tensor> {
        self.prediction_sets_tile(probs, &[])
    }

    /// Prediction sets of a tile at `origin` (APS's random numbers follow the pixel's position
    /// in the full image, so the result does not depend on the tiling).
    pub fn prediction_sets_tile(&self, probs: &Tensor, origin: &[usize]) -> Result<Tensor> {
        let hp = self.host(probs)?;
        let pixels = hp.pixels();
        let mut out = vec![0u8; hp.data.len()];
        self.for_each_set(&hp, origin, |b, s, set, _| {
            for (k, &inside) in set.iter().enumerate() {
                out[(b * hp.c + k) * pixels + s] = inside as u8;
            }
        })?;
        Ok(Tensor::from_vec(out, probs.shape(), probs.device())?)
    }

    /// Set sizes `(N, spatial…)` as a u8 tensor: 1 = confident, larger = ambiguous,
    /// 0 = no class plausible enough (possible with LAC).
    pub fn set_sizes(&self, probs: &Tensor) -> Result<Tensor> {
        self.set_sizes_tile(probs, &[])
    }

    /// Set sizes of a tile at `origin`.
    pub fn set_sizes_tile(&self, probs: &Tensor, origin: &[usize]) -> Result<Tensor> {
        if self.num_classes > u8::MAX as usize {
            return Err(invalid_config(
                "ConformalPredictor::set_sizes",
                format!(
                    "{} classes do not fit the u8 set-size map (at most 255)",
                    self.num_classes
                ),
            ));
        }
        let hp = self.host(probs)?;
        let pixels = hp.pixels();
        let mut out = vec![0u8; hp.n * pixels];
        self.for_each_set(&hp, origin, |b, s, _, size| {
            out[b * pixels + s] = size as u8;
        })?;
        let mut shape = probs.dims().to_vec();
        shape.remove(1);
        Ok(Tensor::from_vec(out, shape, probs.device())?)
    }

    /// Coverage of the sets on held-out labelled pixels (labels equal to `ignore` are skipped).
    pub fn coverage(&self, probs: &Tensor, labels: &Tensor, ignore: i64) -> Result<CoverageReport> {
        self.coverage_tile(probs, labels, ignore, &[])
    }

    /// Coverage on a tile at `origin`; merge the reports of all tiles with
    /// [`CoverageReport::merge`].
    pub fn coverage_tile(
        &self,
        probs: &Tensor,
        labels: &Tensor,
        ignore: i64,
        origin: &[usize],
    ) -> Result<CoverageReport> {
        let hp = self.host(probs)?;
        let labels = host_labels("ConformalPredictor::coverage", labels, &hp, ignore)?;
        let pixels = hp.pixels();
        let mut report = CoverageReport::new(self.num_classes);
        self.for_each_set(&hp, origin, |b, s, set, size| {
            let y = labels[b * pixels + s];
            if y != ignore {
                report.record(y as usize, set[y as usize], size);
            }
        })?;
        Ok(report)
    }
}
