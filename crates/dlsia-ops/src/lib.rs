//! # dlsia-ops
//!
//! The tensor operations the DLSIA networks need and Candle 0.11 lacks or gets wrong, each with
//! a backward pass that composes with Candle's autograd, plus the parameter store that gives
//! every network seeded, PyTorch-compatible weights under PyTorch's `state_dict` names.

pub mod error;
pub mod padding;
pub mod params;

pub use error::{Error, Result};
pub use padding::PaddingMode;
pub use params::{Init, LoadOptions, ParamBuilder, ParamKind, ParamStore};
