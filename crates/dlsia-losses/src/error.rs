//! The error type of `dlsia-losses`.

use candle_core::Shape;

/// Everything that can go wrong when building or evaluating a loss or a metric.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error raised by Candle itself.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A hyperparameter that the loss or metric cannot take, with what would be right.
    #[error("invalid hyperparameter for {what}: {msg}")]
    InvalidConfig {
        /// The loss or metric being configured.
        what: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// A tensor of the wrong shape or dtype.
    #[error("{what}: expected {expected}, got {got:?}")]
    Shape {
        /// The loss or metric that rejected the tensor.
        what: &'static str,
        /// What the loss or metric expects, in words.
        expected: String,
        /// The shape it received.
        got: Shape,
    },

    /// Tensor values the loss or metric cannot take (labels out of range, probabilities
    /// outside `[0, 1]`, negative mask weights).
    #[error("{what}: {msg}")]
    InvalidValue {
        /// The loss or metric that rejected the values.
        what: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error::InvalidConfig`].
pub(crate) fn invalid_config(what: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidConfig {
        what,
        msg: msg.into(),
    }
}

/// Shorthand for an [`Error::InvalidValue`].
pub(crate) fn invalid_value(what: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidValue {
        what,
        msg: msg.into(),
    }
}

/// Shorthand for an [`Error::Shape`].
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
