//! The error type of `dlsia-data`.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading, generating, splitting, augmenting or tiling data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error raised by Candle itself.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// The operating system refused to read or write a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A file that exists but whose content cannot be used: truncated, corrupt, or of a kind this
    /// crate does not read.
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it and, where possible, what would be right.
        msg: String,
    },

    /// An argument or hyperparameter that cannot be used, with what would be right.
    #[error("invalid argument for {what}: {msg}")]
    InvalidArgument {
        /// The function or configuration that rejected the argument.
        what: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// An array or tensor of the wrong shape.
    #[error("{what}: expected {expected}, got shape {got:?}")]
    Shape {
        /// The function that rejected the array.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape it received.
        got: Vec<usize>,
    },

    /// A background worker (the loader's prefetch thread) stopped unexpectedly.
    #[error("background worker failed: {0}")]
    Worker(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error::InvalidArgument`].
pub(crate) fn invalid(what: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        what,
        msg: msg.into(),
    }
}

/// Shorthand for an [`Error::Format`].
pub(crate) fn format_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Shorthand for an [`Error::Io`].
pub(crate) fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Shorthand for an [`Error::Shape`].
pub(crate) fn shape_err(what: &'static str, expected: impl Into<String>, got: &[usize]) -> Error {
    Error::Shape {
        what,
        expected: expected.into(),
        got: got.to_vec(),
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
