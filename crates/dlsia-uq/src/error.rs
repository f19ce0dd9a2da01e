//! The error type of `dlsia-uq`.

use candle_core::Shape;

/// Everything that can go wrong in an ensemble, a conformal calibration or a prediction.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error raised by Candle itself.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// An error from a loss (AggNet training).
    #[error(transparent)]
    Loss(#[from] dlsia_losses::Error),

    /// An error from a layer or the parameter store (AggNet).
    #[error(transparent)]
    Ops(#[from] dlsia_ops::Error),

    /// An error returned by a wrapped predictor's closure.
    #[error("the predictor failed: {0}")]
    Predictor(Box<dyn std::error::Error + Send + Sync>),

    /// A hyperparameter or argument that cannot be used, with what would be right.
    #[error("invalid configuration for {what}: {msg}")]
    InvalidConfig {
        /// The object being configured.
        what: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// A tensor of the wrong shape.
    #[error("{what}: expected {expected}, got shape {got:?}")]
    Shape {
        /// The operation that rejected the tensor.
        what: &'static str,
        /// What it expects, in words.
        expected: String,
        /// The shape it received.
        got: Shape,
    },

    /// Tensor values that cannot be used (probabilities that do not sum to 1, labels out of
    /// range).
    #[error("{what}: {msg}")]
    InvalidValue {
        /// The operation that rejected the values.
        what: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// Calibration is impossible with the scores collected so far.
    #[error("conformal calibration: {0}")]
    Calibration(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid_config(what: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidConfig {
        what,
        msg: msg.into(),
    }
}

pub(crate) fn invalid_value(what: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidValue {
        what,
        msg: msg.into(),
    }
}

pub(crate) fn shape_error(what: &'static str, expected: impl Into<String>, got: &Shape) -> Error {
    Error::Shape {
        what,
        expected: expected.into(),
        got: got.clone(),
    }
}

impl From<Error> for candle_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Candle(c) => c,
            other => candle_core::Error::Msg(other.to_string()),
        }
    }
}
