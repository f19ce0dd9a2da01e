//! # dlsia-cli
//!
//! The `dlsia` command-line tool (binary `dlsia`, see `dlsia --help`) and the pieces of it other
//! programs can use:
//!
//! * [`pickle`]: a small pickle machine (no Python, no code execution) for the files
//!   `torch.save` writes;
//! * [`torch_file`]: torch zip archives — the unpickled object and its tensors as Candle tensors;
//! * [`import`]: model files saved by the PyTorch original's `save_network_parameters`
//!   (MSDNet, TUNet, TUNet3+, SMSNet 2-D/3-D, sparsenet) decoded into dlsia-rs topologies and weights.

pub mod error;
pub mod import;
pub mod pickle;
pub mod torch_file;

pub use error::{Error, Result};
