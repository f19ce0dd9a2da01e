//! The [`Predictor`] trait (a batch in, class probabilities out) and adapters that turn any
//! closure — a network's forward pass — into one.

use std::sync::Arc;

use candle_core::Tensor;
use dlsia_losses::ops::{sigmoid, softmax_channels};

use crate::error::{invalid_config, shape_error, Error, Result};

/// Maps a batch `(N, C_in, spatial…)` to class probabilities `(N, C, spatial…)` that sum to 1
/// over the channel axis. A single network and an ensemble both implement it, so calibration
/// and evaluation work on either.
pub trait Predictor: Send + Sync {
    /// Class probabilities `(N, C, spatial…)` for a batch.
    fn predict_proba(&self, x: &Tensor) -> Result<Tensor>;
    /// The number of classes `C`.
    fn num_classes(&self) -> usize;
}

impl<P: Predictor + ?Sized> Predictor for Box<P> {
    fn predict_proba(&self, x: &Tensor) -> Result<Tensor> {
        (**self).predict_proba(x)
    }
    fn num_classes(&self) -> usize {
        (**self).num_classes()
    }
}

impl<P: Predictor + ?Sized> Predictor for Arc<P> {
    fn predict_proba(&self, x: &Tensor) -> Result<Tensor> {
        (**self).predict_proba(x)
    }
    fn num_classes(&self) -> usize {
        (**self).num_classes()
    }
}

impl<P: Predictor + ?Sized> Predictor for &P {
    fn predict_proba(&self, x: &Tensor) -> Result<Tensor> {
        (**self).predict_proba(x)
    }
    fn num_classes(&self) -> usize {
        (**self).num_classes()
    }
}

/// Checks that `out` is `(N, channels, …)` for an input batch of `n` items.
pub(crate) fn check_output(
    what: &'static str,
    out: &Tensor,
    x: &Tensor,
    channels: usize,
) -> Result<()> {
    let n = x.dim(0)?;
    if out.rank() < 2 || out.dim(0)? != n || out.dim(1)? != channels {
        return Err(shape_error(
            what,
            format!("an output (N = {n}, C = {channels}, spatial…)"),
            out.shape(),
        ));
    }
    Ok(())
}

fn wrap_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Error::Predictor(Box::new(e))
}

/// A predictor from a closure that returns **logits** (a network without final activation):
/// probabilities are the softmax over the channel axis, or, for a one-channel binary network
/// declared with 2 classes, `[1 − σ(x), σ(x)]`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_uq::{LogitsFn, Predictor};
///
/// // A stand-in for `move |x| net.forward_t(x, false)`.
/// let p = LogitsFn::new(3, |x: &Tensor| x.repeat((1, 3, 1, 1)))?;
/// let probs = p.predict_proba(&Tensor::zeros((2, 1, 4, 4), candle_core::DType::F32, &Device::Cpu)?)?;
/// assert_eq!(probs.dims(), &[2, 3, 4, 4]);
/// # Ok::<(), dlsia_uq::Error>(())
/// ```
pub struct LogitsFn<F> {
    f: F,
    num_classes: usize,
}

impl<F, E> LogitsFn<F>
where
    F: Fn(&Tensor) -> std::result::Result<Tensor, E> + Send + Sync,
    E: std::error::Error + Send + Sync + 'static,
{
    /// Wraps `f`, whose output has `num_classes ≥ 2` channels (or one channel when
    /// `num_classes == 2`).
    pub fn new(num_classes: usize, f: F) -> Result<Self> {
        if num_classes < 2 {
            return Err(invalid_config(
                "LogitsFn",
                format!(
                    "num_classes must be at least 2 (a binary network has 2), got {num_classes}"
                ),
            ));
        }
        Ok(Self { f, num_classes })
    }
}

impl<F, E> Predictor for LogitsFn<F>
where
    F: Fn(&Tensor) -> std::result::Result<Tensor, E> + Send + Sync,
    E: std::error::Error + Send + Sync + 'static,
{
    fn predict_proba(&self, x: &Tensor) -> Result<Tensor> {
        let logits = (self.f)(x).map_err(wrap_err)?;
        if self.num_classes == 2 && logits.rank() >= 2 && logits.dim(1)? == 1 {
            check_output("LogitsFn", &logits, x, 1)?;
            let p1 = sigmoid(&logits)?;
            let p0 = sigmoid(&logits.neg()?)?;
            return Ok(Tensor::cat(&[&p0, &p1], 1)?);
        }
        check_output("LogitsFn", &logits, x, self.num_classes)?;
        Ok(softmax_channels(&logits)?)
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }
}

/// A predictor from a closure that already returns probabilities (a network ending in a
/// softmax): used as they are, so a softmax is never applied twice. Conformal calibration and
/// prediction check that they sum to 1.
pub struct ProbabilitiesFn<F> {
    f: F,
    num_classes: usize,
}

impl<F, E> ProbabilitiesFn<F>
where
    F: Fn(&Tensor) -> std::result::Result<Tensor, E> + Send + Sync,
    E: std::error::Error + Send + Sync + 'static,
{
    /// Wraps `f`, whose output has `num_classes ≥ 2` channels.
    pub fn new(num_classes: usize, f: F) -> Result<Self> {
        if num_classes < 2 {
            return Err(invalid_config(
                "ProbabilitiesFn",
                format!("num_classes must be at least 2, got {num_classes}"),
            ));
        }
        Ok(Self { f, num_classes })
    }
}

impl<F, E> Predictor for ProbabilitiesFn<F>
where
    F: Fn(&Tensor) -> std::result::Result<Tensor, E> + Send + Sync,
    E: std::error::Error + Send + Sync + 'static,
{
    fn predict_proba(&self, x: &Tensor) -> Result<Tensor> {
        let p = (self.f)(x).map_err(wrap_err)?;
        check_output("ProbabilitiesFn", &p, x, self.num_classes)?;
        Ok(p)
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }
}
