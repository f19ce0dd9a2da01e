//! The error type of `dlsia-train`.

use std::path::PathBuf;

/// Everything that can go wrong when configuring, running, checkpointing or resuming training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error raised by Candle itself.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// An error from a network (forward pass, topology, weights).
    #[error(transparent)]
    Network(#[from] dlsia_nets::Error),

    /// An error from the parameter store (loading weights into a network).
    #[error(transparent)]
    Params(#[from] dlsia_ops::Error),

    /// An error from a loss or a metric (wrong target shape, labels out of range…).
    #[error(transparent)]
    Loss(#[from] dlsia_losses::Error),

    /// An error from a dataset or a loader.
    #[error(transparent)]
    Data(#[from] dlsia_data::Error),

    /// An error while drawing a curve.
    #[error(transparent)]
    Plot(#[from] dlsia_analysis::Error),

    /// A configuration value that cannot be used, naming the key and what would be right.
    #[error("invalid training configuration `{key}`: {msg}")]
    Config {
        /// The configuration key (dotted path, e.g. `scheduler.gamma`).
        key: String,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// A configuration file that cannot be parsed (syntax, unknown key, wrong type).
    #[error("cannot parse the training configuration: {0}")]
    Parse(String),

    /// Data that does not fit the network or the task (wrong channels, missing targets…).
    #[error("{what}: {msg}")]
    Incompatible {
        /// What was being checked.
        what: &'static str,
        /// What is wrong and what would be right.
        msg: String,
    },

    /// The loss became NaN or infinite; the run stopped.
    #[error(
        "the {split} loss is {value} at epoch {epoch}, batch {batch}; training stopped. \
         Lower the learning rate, clip gradients or check the data for NaN/Inf. {}",
        last_checkpoint_note(.last_checkpoint)
    )]
    NonFiniteLoss {
        /// `"training"` or `"validation"`.
        split: &'static str,
        /// Epoch (from 1) of the bad batch.
        epoch: usize,
        /// Batch (0-based) within the epoch.
        batch: usize,
        /// The loss value (NaN or ±inf).
        value: f64,
        /// The last checkpoint written before the failure, which holds finite weights.
        last_checkpoint: Option<PathBuf>,
    },

    /// The gradients became NaN or infinite; the run stopped before the optimizer step.
    #[error(
        "the gradient norm is {value} at epoch {epoch}, batch {batch} (the loss was finite); \
         training stopped before the weights were changed. Lower the learning rate or clip \
         gradients. {}",
        last_checkpoint_note(.last_checkpoint)
    )]
    NonFiniteGradient {
        /// Epoch (from 1) of the bad step.
        epoch: usize,
        /// Batch (0-based) within the epoch.
        batch: usize,
        /// The global gradient norm (NaN or inf).
        value: f64,
        /// The last checkpoint written before the failure, which holds finite weights.
        last_checkpoint: Option<PathBuf>,
    },

    /// A file or directory the run would replace exists and overwriting was not allowed.
    #[error(
        "{path:?} exists; refusing to overwrite it. Choose another output directory, resume \
         from its checkpoint, or set `output.overwrite = true`"
    )]
    Exists {
        /// The existing path.
        path: PathBuf,
    },

    /// A file-system operation failed.
    #[error("{path:?}: {msg}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What failed.
        msg: String,
    },

    /// A checkpoint that cannot be used (corrupt, another format, another network…).
    #[error("checkpoint {path:?}: {msg}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },

    /// Optimizer or scheduler state that does not fit the optimizer or scheduler.
    #[error("cannot restore {what} state: {msg}")]
    State {
        /// The optimizer or scheduler.
        what: &'static str,
        /// What does not fit.
        msg: String,
    },

    /// A callback asked to abort the run with an error.
    #[error("callback error: {0}")]
    Callback(String),

    /// A training thread panicked (a bug; please report it).
    #[error("{0}")]
    Thread(String),

    /// A member of an ensemble failed.
    #[error("ensemble member {member}: {source}")]
    Member {
        /// Index of the member.
        member: usize,
        /// Its error.
        source: Box<Error>,
    },
}

fn last_checkpoint_note(p: &Option<PathBuf>) -> String {
    match p {
        Some(p) => format!("The last good checkpoint is {p:?}."),
        None => "No checkpoint had been written yet.".to_string(),
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error::Config`].
pub(crate) fn config_err(key: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        msg: msg.into(),
    }
}

/// Shorthand for an [`Error::Io`].
pub(crate) fn io_err(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.into(),
        msg: msg.to_string(),
    }
}

/// Shorthand for an [`Error::State`].
pub(crate) fn state_err(what: &'static str, msg: impl Into<String>) -> Error {
    Error::State {
        what,
        msg: msg.into(),
    }
}
