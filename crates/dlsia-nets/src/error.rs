//! The error type of `dlsia-nets`.

use std::path::PathBuf;

/// Everything that can go wrong when configuring, building, running, saving or loading a network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from an operation, a layer or the parameter store (includes missing, unexpected
    /// and wrongly shaped tensors when loading weights).
    #[error(transparent)]
    Ops(#[from] dlsia_ops::Error),

    /// An error raised by Candle itself.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// Hyperparameters that do not describe a network, with what would be right.
    #[error("invalid {net} configuration: {msg}")]
    Config {
        /// The architecture (`"TUNet"`, `"MSAE"`, …).
        net: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// An input tensor the network cannot take, with the shapes it can take.
    #[error("{net} cannot take an input of shape {got:?}: {msg}")]
    Input {
        /// The architecture.
        net: &'static str,
        /// The shape it received.
        got: Vec<usize>,
        /// What is wrong and which shapes would work.
        msg: String,
    },

    /// A model directory or file could not be read or written, or its content is malformed.
    #[error("{path}: {msg}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },

    /// Saving would replace an existing model.
    #[error("{path} already holds a model; pass overwrite = true to replace it")]
    Exists {
        /// The file that would be overwritten.
        path: PathBuf,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error::Config`].
pub(crate) fn config_error(net: &'static str, msg: impl Into<String>) -> Error {
    Error::Config {
        net,
        msg: msg.into(),
    }
}

/// Shorthand for an [`Error::Input`].
pub(crate) fn input_error(net: &'static str, got: &[usize], msg: impl Into<String>) -> Error {
    Error::Input {
        net,
        got: got.to_vec(),
        msg: msg.into(),
    }
}
