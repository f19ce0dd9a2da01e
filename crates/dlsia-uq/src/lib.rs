//! # dlsia-uq
//!
//! Uncertainty for segmentation networks, on 2D images and 3D volumes:
//!
//! * [`Predictor`]: a batch in, class probabilities out. Wrap a network's forward pass with
//!   [`LogitsFn`] (softmax applied) or [`ProbabilitiesFn`] (used as is).
//! * [`Ensemble`]: mean and standard-deviation maps of several predictors
//!   ([`EnsembleStats`]), the DLSIA paper's rule "keep pixels whose mean probability minus one
//!   standard deviation exceeds 0.5" ([`EnsembleStats::confident_labels`]); itself a predictor.
//!   [`AggregatedEnsemble`] combines members with a trained 1×1-convolution [`AggNet`].
//! * [`conformal`]: split-conformal prediction sets (LAC, APS) calibrated on sparse labelled
//!   pixels, set-size maps and coverage reports, all streamed batch by batch or tile by tile
//!   ([`Tiling`]) so that a large volume's probabilities never need to be in memory at once.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_uq::conformal::ConformalConfig;
//! use dlsia_uq::{LogitsFn, Predictor, Tiling};
//!
//! // A "network": two-class logits from one input channel.
//! let net = LogitsFn::new(2, |x: &Tensor| Tensor::cat(&[&x.neg()?, x], 1))?;
//! let image = Tensor::arange(0f32, 64.0, &Device::Cpu)?.affine(0.1, -3.2)?.reshape((1, 1, 8, 8))?;
//! let labels = image.ge(0.0)?.to_dtype(candle_core::DType::I64)?.squeeze(1)?;
//!
//! let tiling = Tiling::new(vec![4, 4])?;
//! let mut cal = ConformalConfig::new(0.1).build()?;
//! tiling.calibrate(&mut cal, &net, &image, &labels)?;
//! let cp = cal.predictor()?;
//! let sizes = tiling.set_sizes(&cp, &net, &image)?; // (1, 8, 8) u8
//! assert_eq!(sizes.dims(), &[1, 8, 8]);
//! let report = tiling.coverage(&cp, &net, &image, &labels, -1)?;
//! assert!(report.coverage().unwrap() >= 0.9);
//! # Ok::<(), dlsia_uq::Error>(())
//! ```

mod aggnet;
pub mod conformal;
mod ensemble;
pub mod error;
mod predictor;
mod tiles;

pub use aggnet::{
    train_aggnet, AggNet, AggNetConfig, AggNetTraining, AggregatedEnsemble, FinalActivation,
};
pub use ensemble::{Ensemble, EnsembleStats, Spread};
pub use error::{Error, Result};
pub use predictor::{LogitsFn, Predictor, ProbabilitiesFn};
pub use tiles::{Region, Tiling};
