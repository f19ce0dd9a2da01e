//! The error type of the library part of `dlsia-cli` (reading PyTorch files, importing models).

use std::path::PathBuf;

/// Everything that can go wrong reading a PyTorch file or turning it into a dlsia-rs model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        msg: String,
    },
    /// The file is not a readable torch zip archive.
    #[error("{path}: not a PyTorch file saved by torch.save ({msg})")]
    NotTorchFile {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        msg: String,
    },
    /// The pickle stream is malformed or uses something this reader does not implement.
    #[error("pickle at byte {offset}: {msg}")]
    Pickle {
        /// Byte offset of the opcode in `data.pkl`.
        offset: usize,
        /// What is wrong.
        msg: String,
    },
    /// The pickle refers to a Python class or function this reader does not know.
    #[error(
        "pickle at byte {offset}: unknown Python class or function `{module}.{name}`; a file \
         written by dlsia's save_network_parameters for MSDNet, TUNet, TUNet3+ or SMSNet refers \
         only to torch, numpy, networkx, collections and dlsia.core.networks.smsnet/sms3d objects"
    )]
    UnknownGlobal {
        /// Byte offset of the GLOBAL opcode.
        offset: usize,
        /// Python module.
        module: String,
        /// Class or function name.
        name: String,
    },
    /// The pickled objects do not have the structure a dlsia model file has.
    #[error("{what}: {msg}")]
    Format {
        /// Which part of the file (e.g. `topo_dict.activation`).
        what: String,
        /// What is wrong and what was expected.
        msg: String,
    },
    /// The model uses a feature dlsia-rs does not support.
    #[error("{what}: {msg}")]
    Unsupported {
        /// Which part of the model.
        what: String,
        /// What is not supported and what is.
        msg: String,
    },
    /// A tensor could not be built from its storage.
    #[error("tensor `{name}`: {msg}")]
    Tensor {
        /// The state_dict name (or storage key).
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// An error from the networks crate (invalid topology, weight mismatch, existing output).
    #[error(transparent)]
    Nets(#[from] dlsia_nets::Error),
    /// An error from the SMSNet graph crate (invalid graph).
    #[error(transparent)]
    Graph(#[from] dlsia_graph::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A [`Error::Format`] error.
pub(crate) fn format_err(what: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Format {
        what: what.into(),
        msg: msg.into(),
    }
}

/// A [`Error::Unsupported`] error.
pub(crate) fn unsupported(what: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Unsupported {
        what: what.into(),
        msg: msg.into(),
    }
}
