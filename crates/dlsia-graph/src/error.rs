//! The error type of `dlsia-graph`.

use std::path::PathBuf;

/// Everything that can go wrong when sampling, validating, reading or drawing an SMSNet graph.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sampler, counting or drawing parameter that cannot be used, with what would be right.
    #[error("invalid parameter `{name}`: {msg}")]
    InvalidParameter {
        /// The parameter's name (as in dlsia where it has one).
        name: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// A graph that cannot be an SMSNet graph (cycle, several sources, unknown node, …).
    #[error("invalid SMSNet graph: {0}")]
    InvalidGraph(String),

    /// A JSON document that is not a valid graph file.
    #[error("graph JSON: {0}")]
    Json(String),

    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },

    /// The ensemble sampler found no graph inside the parameter bounds within `max_trial` tries.
    #[error(
        "ensemble member {member}: no graph with {min} < parameters < {max} in {trials} trials \
         (sampled counts ranged from {lowest} to {highest}); widen the bounds, change the layer \
         count or hidden channels, or raise max_trial"
    )]
    BoundsNotMet {
        /// Index of the ensemble member that failed.
        member: usize,
        /// How many graphs were sampled for it.
        trials: usize,
        /// Lower bound (exclusive).
        min: usize,
        /// Upper bound (exclusive).
        max: usize,
        /// Smallest parameter count seen.
        lowest: usize,
        /// Largest parameter count seen.
        highest: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error::InvalidParameter`].
pub(crate) fn invalid(name: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name,
        msg: msg.into(),
    }
}

/// Shorthand for an [`Error::InvalidGraph`].
pub(crate) fn bad_graph(msg: impl Into<String>) -> Error {
    Error::InvalidGraph(msg.into())
}
