//! Split-conformal prediction sets for per-pixel segmentation.
//!
//! 1. **Calibrate** on labelled pixels the network did not train on: a [`Calibrator`] collects
//!    one non-conformity score per labelled pixel, batch by batch or tile by tile (only the
//!    scores are kept, never the probabilities), skipping the ignore label.
//! 2. **Threshold**: with `n` scores, `q̂` is the `⌈(n+1)(1−α)⌉`-th smallest (the original
//!    intends this with `np.quantile(scores, ⌈(n+1)(1−α)⌉/n, method="higher")`, which actually
//!    returns the next larger score; [`QuantileRule::NumpyHigher`] reproduces it).
//! 3. **Predict**: the set of a pixel is every class whose score is at most `q̂`
//!    ([`ConformalPredictor`]); its size is a per-pixel uncertainty map.
//!
//! Two scores ([`ScoreMethod`]):
//! * **LAC** (the original's): `s = 1 − p̂_y`; set `{c : p̂_c ≥ 1 − q̂}`. Smallest sets on
//!   average, but coverage is uneven across easy and hard pixels.
//! * **APS** (Romano et al. 2020): `s = Σ_{k ranked above y} p̂_k + u·p̂_y`, the probability mass
//!   of the classes ranked at least as high as `y` (`u ~ U(0,1)` when randomised, `u = 1`
//!   otherwise). Sets adapt to how spread out the prediction is.
//!
//! **Guarantee, and why it is approximate for images.** If the calibration pixels and a test
//! pixel are exchangeable, `P(y ∈ set) ≥ 1 − α` (and `≤ 1 − α + 1/(n+1)` for continuous scores).
//! Pixels of one image are not exchangeable: neighbours are strongly correlated, and the
//! calibration and test pixels usually come from different places or images. The guarantee is
//! then only approximate. Calibrating on pixels spaced apart ([`ConformalConfig::spacing`]) makes
//! the scores closer to independent (and smaller to store); calibrating on images drawn like the
//! test images matters more. Always check coverage on held-out labelled pixels
//! ([`CoverageReport`]).
//!
//! Differences from the original: `q̂` is the exact order statistic, not one rank higher (with
//! few calibration pixels the original over-covers: 20/21 = 0.952 instead of 19/21 = 0.905 for
//! `n = 20`, `α = 0.1`); the set uses `≤ q̂` on the score (the original tests `p > 1 − q̂`,
//! which drops a class sitting exactly on the threshold); too few calibration pixels for the
//! requested α is an error instead of a numpy exception; APS is new.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_uq::conformal::{ConformalConfig, ScoreMethod};
//!
//! let probs = Tensor::new(&[0.7f32, 0.6, 0.1, 0.3, 0.4, 0.9], &Device::Cpu)?.reshape((1, 2, 3))?;
//! let labels = Tensor::new(&[[0i64, 1, 1]], &Device::Cpu)?;
//! let mut cal = ConformalConfig::new(0.25).build()?;
//! cal.update(&probs, &labels)?; // scores 0.3, 0.6, 0.1
//! let cp = cal.predictor()?;    // ⌈4 · 0.75⌉ = 3rd smallest
//! assert!((cp.qhat() - 0.6).abs() < 1e-6);
//! let sizes = cp.set_sizes(&probs)?; // {0}∪{1 if p1 ≥ 0.4}: sizes 1, 2, 1
//! assert_eq!(sizes.flatten_all()?.to_vec1::<u8>()?, vec![1, 2, 1]);
//! # Ok::<(), dlsia_uq::Error>(())
//! ```

mod calibrate;
mod coverage;
mod host;
mod predict;
mod score;

pub use calibrate::{conformal_quantile, Calibrator, ConformalConfig, QuantileRule};
pub use coverage::CoverageReport;
pub use predict::ConformalPredictor;
pub use score::ScoreMethod;
