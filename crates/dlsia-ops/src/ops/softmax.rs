//! Softmax over the channel axis, differentiable (Candle's fused `softmax_last_dim` has no
//! backward pass and silently drops gradients).

use candle_core::Tensor;

use crate::error::{invalid, Result};

/// Softmax over axis 1 (channels) of an `(N, C, …)` tensor, max-shifted for stability and
/// built from differentiable primitives so that gradients flow.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[[[1000f32], [1000.]]], &Device::Cpu)?;
/// let p = dlsia_ops::softmax_channels(&x)?;
/// assert_eq!(p.flatten_all()?.to_vec1::<f32>()?, [0.5, 0.5]);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn softmax_channels(x: &Tensor) -> Result<Tensor> {
    if x.rank() < 2 {
        return Err(invalid(
            "softmax_channels",
            format!(
                "expected a tensor of rank ≥ 2 (N, C, …), got shape {:?}",
                x.dims()
            ),
        ));
    }
    let m = x.max_keepdim(1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    let s = e.sum_keepdim(1)?;
    Ok(e.broadcast_div(&s)?)
}
