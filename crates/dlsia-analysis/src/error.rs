//! The error type of `dlsia-analysis`.

use std::path::PathBuf;

/// Everything that can go wrong in an analysis step or a plot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument the function cannot take, with what would be right.
    #[error("invalid argument for {op}: {msg}")]
    InvalidArgument {
        /// The function that rejected the argument.
        op: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// A data buffer whose length does not match the shape it came with.
    #[error("{op}: a shape of {shape:?} needs {expected} elements, the buffer has {got}")]
    ShapeMismatch {
        /// The function that rejected the buffer.
        op: &'static str,
        /// The shape the caller gave.
        shape: Vec<usize>,
        /// The number of elements that shape needs.
        expected: usize,
        /// The buffer's length.
        got: usize,
    },

    /// More components (or provisional labels) than a `u32` label can number.
    #[error("{op}: more than {limit} labels are needed; split the volume or dust it first")]
    TooManyLabels {
        /// The function that ran out of labels.
        op: &'static str,
        /// The largest label a `u32` can hold.
        limit: u64,
    },

    /// An error returned by a caller's reader or writer closure, passed through.
    #[error("{op}: the caller's {which} failed: {msg}")]
    Callback {
        /// The function that called the closure.
        op: &'static str,
        /// `"reader"` or `"writer"`.
        which: &'static str,
        /// The closure's message.
        msg: String,
    },

    /// The embedding library failed on input that passed validation.
    #[error("{op}: {msg}")]
    Embedding {
        /// The function that failed.
        op: &'static str,
        /// What went wrong.
        msg: String,
    },

    /// Drawing a plot failed.
    #[error("plot {path}: {msg}")]
    Plot {
        /// The file being drawn.
        path: PathBuf,
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
