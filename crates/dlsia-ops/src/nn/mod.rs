//! Layer types built from a [`ParamBuilder`](crate::ParamBuilder), with PyTorch's parameter
//! names, shapes and default initialisation, composing through Candle's `Module`/`ModuleT`.
//!
//! ```
//! use candle_core::{DType, Device, ModuleT, Tensor};
//! use dlsia_ops::nn::{BatchNorm, Conv};
//! use dlsia_ops::{ConvSpec, ParamStore};
//!
//! let store = ParamStore::new(0, &Device::Cpu);
//! let root = store.root();
//! let conv = Conv::new(&root.pp("conv"), 1, 4, &[3, 3, 3], ConvSpec::uniform(3, 1, 1, 1), true)?;
//! let bn = BatchNorm::new(&root.pp("bn"), 4)?;
//! let x = Tensor::ones((2, 1, 8, 8, 8), DType::F32, &Device::Cpu)?;
//! let y = bn.forward_t(&conv.forward_t(&x, true)?, true)?;
//! assert_eq!(y.dims(), &[2, 4, 8, 8, 8]);
//! assert!(store.get("bn.num_batches_tracked").is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod activation;
mod batch_norm;
mod conv;
mod dropout;
mod group_norm;
mod linear;
mod pool;

pub use activation::Activation;
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use conv::{Conv, ConvTranspose};
pub use dropout::Dropout;
pub use group_norm::{GroupNorm, InstanceNorm, InstanceNormConfig};
pub use linear::Linear;
pub use pool::{MaxPool, Upsample};

use candle_core::Tensor;

use crate::error::Error;

/// Checks that `x` is `(N, channels, …)` with `spatial` spatial axes (any number ≥ 0 if `None`).
pub(crate) fn check_input(
    layer: &str,
    x: &Tensor,
    channels: usize,
    spatial: Option<usize>,
) -> candle_core::Result<()> {
    let d = x.dims();
    let rank_ok = match spatial {
        Some(s) => d.len() == s + 2,
        None => d.len() >= 2,
    };
    if !rank_ok || d[1] != channels {
        let want = match spatial {
            Some(s) => format!("rank {}", s + 2),
            None => "rank ≥ 2".to_string(),
        };
        return Err(Error::Shape {
            op: "layer",
            expected: format!("{layer}: input (N, {channels}, …) of {want}"),
            got: x.shape().clone(),
        }
        .into());
    }
    Ok(())
}

/// A `(1, C, 1, …)` view of a per-channel vector for an input of rank `rank`.
pub(crate) fn per_channel(v: &Tensor, rank: usize) -> candle_core::Result<Tensor> {
    let mut shape = vec![1usize; rank];
    shape[1] = v.elem_count();
    v.reshape(shape)
}
