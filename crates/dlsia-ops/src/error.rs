//! The error type of `dlsia-ops`.

use candle_core::Shape;

/// Everything that can go wrong in an operation, a layer or the parameter store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error raised by Candle itself.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// An argument that the operation cannot take, with what would be right.
    #[error("invalid argument for {op}: {msg}")]
    InvalidArgument {
        /// The operation or layer that rejected the argument.
        op: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// A tensor of the wrong shape.
    #[error("{op}: expected {expected}, got shape {got:?}")]
    Shape {
        /// The operation that rejected the tensor.
        op: &'static str,
        /// What shape the operation expects, in words.
        expected: String,
        /// The shape it received.
        got: Shape,
    },

    /// A weight file lacks a tensor the network needs.
    #[error("missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// The tensor's name.
        name: String,
        /// The shape the network expects.
        expected: Shape,
    },

    /// A weight file holds a tensor the network does not have.
    #[error("unexpected tensor `{name}` with shape {shape:?}: the network has no parameter of that name")]
    UnexpectedTensor {
        /// The tensor's name.
        name: String,
        /// Its shape in the file.
        shape: Shape,
    },

    /// A weight file holds a tensor of the wrong shape.
    #[error("tensor `{name}`: the network expects shape {expected:?}, the file has {found:?}")]
    TensorShapeMismatch {
        /// The tensor's name.
        name: String,
        /// The shape the network expects.
        expected: Shape,
        /// The shape in the file.
        found: Shape,
    },

    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        msg: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error::InvalidArgument`].
pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op,
        msg: msg.into(),
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
