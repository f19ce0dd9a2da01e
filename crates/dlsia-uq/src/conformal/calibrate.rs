//! Streaming calibration: collect scores batch by batch, then compute the conformal threshold.

use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::host::{global_coords, hash_uniform, host_labels, host_probs, CHUNK};
use super::predict::ConformalPredictor;
use super::score::ScoreMethod;
use crate::error::{invalid_config, Error, Result};
use rayon::prelude::*;

/// Salt of the random numbers drawn for calibration scores (APS).
pub(crate) const CALIBRATION_SALT: u64 = 0xCA11_B8A7_E5C0_8E50;

fn minus_one() -> i64 {
    -1
}
fn default_tolerance() -> f64 {
    1e-3
}

/// Which order statistic of the calibration scores becomes the threshold `q̂`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantileRule {
    /// The `k`-th smallest score, `k = ⌈(n+1)(1−α)⌉`: the split-conformal threshold, with
    /// `1 − α ≤ coverage ≤ 1 − α + 1/(n+1)` (numpy's `method="inverted_cdf"` at `k/n`).
    #[default]
    Exact,
    /// The original's `np.quantile(scores, k/n, method="higher")`, which is the `(k+1)`-th
    /// smallest score (the `n`-th when `k = n`): one rank more conservative, coverage up to
    /// `1 − α + 2/(n+1)`. For reproducing dlsia's sets.
    NumpyHigher,
}

/// Settings of a split-conformal calibration, checked by [`build`](Self::build).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConformalConfig {
    /// Miscoverage level `α ∈ (0, 1)`: sets should contain the true class with probability
    /// `1 − α`.
    pub alpha: f64,
    /// The score (default LAC, the original's).
    #[serde(default)]
    pub method: ScoreMethod,
    /// Which order statistic becomes `q̂` (default: the exact split-conformal one).
    #[serde(default)]
    pub quantile: QuantileRule,
    /// Label of unlabelled pixels (default −1).
    #[serde(default = "minus_one")]
    pub ignore_label: i64,
    /// Calibrate only on pixels of a regular grid with this spacing (one entry for every
    /// spatial axis, or a single entry for all), at a seeded random offset; `None` uses every
    /// labelled pixel. Spaced-apart pixels are less correlated (see the module docs).
    #[serde(default)]
    pub spacing: Option<Vec<usize>>,
    /// Seed of the grid offset and of APS's random numbers.
    #[serde(default)]
    pub seed: u64,
    /// How far the class probabilities of a pixel may sum from 1 (default 1e-3).
    #[serde(default = "default_tolerance")]
    pub sum_tolerance: f64,
}

impl ConformalConfig {
    /// LAC at level `alpha`, every labelled pixel, ignore label −1, seed 0.
    pub fn new(alpha: f64) -> Self {
        Self {
            alpha,
            method: ScoreMethod::Lac,
            quantile: QuantileRule::Exact,
            ignore_label: -1,
            spacing: None,
            seed: 0,
            sum_tolerance: 1e-3,
        }
    }

    /// Checks the settings and returns an empty calibrator.
    pub fn build(&self) -> Result<Calibrator> {
        check_alpha(self.alpha)?;
        if let Some(s) = &self.spacing {
            if s.is_empty() || s.contains(&0) {
                return Err(invalid_config(
                    "ConformalConfig",
                    format!("spacing must hold positive pixel distances, got {s:?}"),
                ));
            }
        }
        if !(self.sum_tolerance.is_finite()
            && self.sum_tolerance >= 0.0
            && self.sum_tolerance < 0.5)
        {
            return Err(invalid_config(
                "ConformalConfig",
                format!(
                    "sum_tolerance must lie in [0, 0.5), got {}",
                    self.sum_tolerance
                ),
            ));
        }
        Ok(Calibrator {
            cfg: self.clone(),
            scores: Vec::new(),
            num_classes: None,
            offsets: None,
            calls: 0,
        })
    }
}

pub(crate) fn check_alpha(alpha: f64) -> Result<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(invalid_config(
            "conformal",
            format!(
                "alpha must lie strictly between 0 and 1 (e.g. 0.1 for 90 % coverage), got {alpha}"
            ),
        ));
    }
    Ok(())
}

/// The conformal threshold of `scores` at level `alpha` under `rule` (see [`QuantileRule`]).
///
/// Errors when there are no scores, or too few for `alpha` (`n < 1/α − 1`: the rank
/// `⌈(n+1)(1−α)⌉` would exceed `n`, i.e. only the set of all classes would be valid).
pub fn conformal_quantile(scores: &[f64], alpha: f64, rule: QuantileRule) -> Result<f64> {
    check_alpha(alpha)?;
    let n = scores.len();
    if n == 0 {
        return Err(Error::Calibration(
            "the calibration set is empty: no labelled pixels were seen (check the ignore label and the spacing)".into(),
        ));
    }
    let k = ((n as f64 + 1.0) * (1.0 - alpha)).ceil() as usize;
    if k > n {
        let need = (1.0 / alpha - 1.0).ceil() as usize;
        return Err(Error::Calibration(format!(
            "{n} calibration pixels are too few for alpha = {alpha}: at least {need} are needed"
        )));
    }
    let index = match rule {
        QuantileRule::Exact => k.max(1) - 1,
        QuantileRule::NumpyHigher => k.min(n - 1),
    };
    let mut v = scores.to_vec();
    let (_, kth, _) = v.select_nth_unstable_by(index, |a, b| a.total_cmp(b));
    Ok(*kth)
}

/// Collects calibration scores over batches or tiles; only the scores (8 bytes per labelled
/// calibration pixel) are kept.
#[derive(Debug, Clone)]
pub struct Calibrator {
    cfg: ConformalConfig,
    scores: Vec<f64>,
    num_classes: Option<usize>,
    offsets: Option<Vec<usize>>,
    /// Update calls so far (keys APS's random numbers).
    calls: u64,
}

impl Calibrator {
    /// The settings.
    pub fn config(&self) -> &ConformalConfig {
        &self.cfg
    }

    /// Scores collected so far (one per labelled calibration pixel, in the order seen).
    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    /// Number of calibration pixels so far.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether no calibration pixel has been seen.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Adds a batch: probabilities `(N, C, spatial…)` and integer labels `(N, spatial…)`.
    pub fn update(&mut self, probs: &Tensor, labels: &Tensor) -> Result<()> {
        self.update_tile(probs, labels, &[])
    }

    /// Adds a tile whose first pixel sits at `origin` (one entry per spatial axis, or empty for
    /// the origin) in the full image, so that the calibration grid is the same whatever the
    /// tiling.
    pub fn update_tile(&mut self, probs: &Tensor, labels: &Tensor, origin: &[usize]) -> Result<()> {
        const WHAT: &str = "Calibrator";
        let hp = host_probs(WHAT, probs, self.num_classes, self.cfg.sum_tolerance)?;
        let labels = host_labels(WHAT, labels, &hp, self.cfg.ignore_label)?;
        let rank = hp.spatial.len();
        if !origin.is_empty() && origin.len() != rank {
            return Err(invalid_config(
                WHAT,
                format!("origin {origin:?} must have one entry per spatial axis ({rank})"),
            ));
        }
        self.num_classes = Some(hp.c);
        let offsets = self.grid_offsets(rank)?;
        let pixels = hp.pixels();
        let total = hp.n * pixels;
        let call = self.calls;
        self.calls += 1;
        let (ignore, method, key) = (
            self.cfg.ignore_label,
            self.cfg.method,
            self.cfg.seed ^ CALIBRATION_SALT,
        );
        let spacing = self.cfg.spacing.as_deref();
        let offsets = offsets.as_deref();
        // Scores of fixed chunks of pixels in parallel, concatenated in pixel order. APS's
        // random number is keyed by (update call, pixel), independent across calibration pixels.
        let chunks: Vec<Vec<f64>> = (0..total.div_ceil(CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let mut out = Vec::new();
                let mut p = vec![0.0; hp.c];
                let mut coords = vec![0usize; rank];
                let start = chunk * CHUNK;
                let end = (start + CHUNK).min(total);
                for (pix, &y) in (start..end).zip(&labels[start..end]) {
                    if y == ignore {
                        continue;
                    }
                    let (b, s) = (pix / pixels, pix % pixels);
                    if let (Some(offsets), Some(spacing)) = (offsets, spacing) {
                        global_coords(s, &hp.spatial, origin, &mut coords);
                        let on_grid = coords.iter().enumerate().all(|(a, &x)| {
                            let sp = if spacing.len() == 1 {
                                spacing[0]
                            } else {
                                spacing[a]
                            };
                            (x + offsets[a]) % sp == 0
                        });
                        if !on_grid {
                            continue;
                        }
                    }
                    hp.gather(b, s, &mut p);
                    let u = if method.uses_u() {
                        hash_uniform(key, &[call, pix as u64])
                    } else {
                        1.0
                    };
                    out.push(method.score(&p, y as usize, u));
                }
                out
            })
            .collect();
        for c in chunks {
            self.scores.extend(c);
        }
        Ok(())
    }

    /// The seeded grid offsets for `rank` spatial axes (`None` without spacing).
    fn grid_offsets(&mut self, rank: usize) -> Result<Option<Vec<usize>>> {
        let Some(spacing) = &self.cfg.spacing else {
            return Ok(None);
        };
        if spacing.len() != 1 && spacing.len() != rank {
            return Err(invalid_config(
                "Calibrator",
                format!(
                    "spacing {spacing:?} must have 1 or {rank} entries for {rank} spatial axes"
                ),
            ));
        }
        if let Some(o) = &self.offsets {
            if o.len() != rank {
                return Err(invalid_config(
                    "Calibrator",
                    format!("a {rank}-D tile after {}-D tiles", o.len()),
                ));
            }
            return Ok(Some(o.clone()));
        }
        let mut rng = StdRng::seed_from_u64(self.cfg.seed);
        let o: Vec<usize> = (0..rank)
            .map(|a| {
                let sp = if spacing.len() == 1 {
                    spacing[0]
                } else {
                    spacing[a]
                };
                rng.random_range(0..sp)
            })
            .collect();
        self.offsets = Some(o.clone());
        Ok(Some(o))
    }

    /// The predictor at the configured `alpha`.
    pub fn predictor(&self) -> Result<ConformalPredictor> {
        self.predictor_at(self.cfg.alpha)
    }

    /// The predictor at another level `alpha` (the scores are kept, so this is cheap; the
    /// original's `recalibrate`).
    pub fn predictor_at(&self, alpha: f64) -> Result<ConformalPredictor> {
        let qhat = conformal_quantile(&self.scores, alpha, self.cfg.quantile)?;
        let num_classes = self.num_classes.ok_or_else(|| {
            Error::Calibration("the calibration set is empty: no batch was added".into())
        })?;
        Ok(ConformalPredictor::new(
            qhat,
            alpha,
            self.cfg.method,
            num_classes,
            self.scores.len(),
            self.cfg.seed,
            self.cfg.sum_tolerance,
        ))
    }
}
