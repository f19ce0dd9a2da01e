//! Prediction sets, set-size maps and coverage from a calibrated threshold.

use candle_core::Tensor;

use super::coverage::CoverageReport;
use super::host::{global_coords, hash_uniform, host_labels, host_probs, HostProbs, CHUNK};
use super::score::ScoreMethod;
use crate::error::{invalid_config, Result};
use rayon::prelude::*;

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

    /// The sets `(N, C, S)` (u8) and sizes `(N, S)` of every pixel of a tile at `origin`,
    /// computed in parallel over fixed chunks of pixels.
    fn compute_sets(&self, hp: &HostProbs, origin: &[usize]) -> Result<(Vec<u8>, Vec<u32>)> {
        let rank = hp.spatial.len();
        if !origin.is_empty() && origin.len() != rank {
            return Err(invalid_config(
                "ConformalPredictor",
                format!("origin {origin:?} must have one entry per spatial axis ({rank})"),
            ));
        }
        let pixels = hp.pixels();
        let total = hp.n * pixels;
        let c = hp.c;
        let blocks: Vec<(Vec<u8>, Vec<u32>)> = (0..total.div_ceil(CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let start = chunk * CHUNK;
                let len = CHUNK.min(total - start);
                let mut sets = vec![0u8; c * len];
                let mut sizes = vec![0u32; len];
                let mut p = vec![0.0; c];
                let mut set = vec![false; c];
                let mut coords = vec![0usize; rank];
                let mut key = vec![0u64; rank + 1];
                for j in 0..len {
                    let (b, s) = ((start + j) / pixels, (start + j) % pixels);
                    hp.gather(b, s, &mut p);
                    let u = if self.method.uses_u() {
                        global_coords(s, &hp.spatial, origin, &mut coords);
                        key[0] = b as u64;
                        for (k, x) in key[1..].iter_mut().zip(&coords) {
                            *k = *x as u64;
                        }
                        hash_uniform(self.seed ^ TEST_SALT, &key)
                    } else {
                        1.0
                    };
                    sizes[j] = self.method.set(&p, self.qhat, u, &mut set) as u32;
                    for (k, &inside) in set.iter().enumerate() {
                        sets[k * len + j] = inside as u8;
                    }
                }
                (sets, sizes)
            })
            .collect();
        let mut sets = vec![0u8; total * c];
        let mut sizes = Vec::with_capacity(total);
        for (chunk, (block, block_sizes)) in blocks.into_iter().enumerate() {
            let start = chunk * CHUNK;
            let len = block_sizes.len();
            let mut j = 0;
            while j < len {
                let (b, s) = ((start + j) / pixels, (start + j) % pixels);
                let run = (pixels - s).min(len - j);
                for k in 0..c {
                    let dst = (b * c + k) * pixels + s;
                    sets[dst..dst + run].copy_from_slice(&block[k * len + j..k * len + j + run]);
                }
                j += run;
            }
            sizes.extend(block_sizes);
        }
        Ok((sets, sizes))
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
        let (sets, _) = self.compute_sets(&hp, origin)?;
        Ok(Tensor::from_vec(sets, probs.shape(), probs.device())?)
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
        let (_, sizes) = self.compute_sets(&hp, origin)?;
        let out: Vec<u8> = sizes.into_iter().map(|v| v as u8).collect();
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
        let (sets, sizes) = self.compute_sets(&hp, origin)?;
        let pixels = hp.pixels();
        let mut report = CoverageReport::new(self.num_classes);
        for (pix, &y) in labels.iter().enumerate() {
            if y != ignore {
                let (b, s) = (pix / pixels, pix % pixels);
                let covered = sets[(b * hp.c + y as usize) * pixels + s] == 1;
                report.record(y as usize, covered, sizes[pix] as usize);
            }
        }
        Ok(report)
    }
}
