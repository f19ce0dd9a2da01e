//! Moving data between host vectors and `(N, C, spatial…)` tensors, and batched prediction.

use anyhow::Result;
use candle_core::{Device, Tensor};
use dlsia_nets::Network;

/// Stacks equally long row-major images into an `(N, 1, spatial…)` f32 tensor.
pub fn stack_images(images: &[Vec<f32>], spatial: &[usize]) -> Result<Tensor> {
    let mut dims = vec![images.len(), 1];
    dims.extend_from_slice(spatial);
    let flat: Vec<f32> = images.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, dims, &Device::Cpu)?)
}

/// Runs `net` in eval mode on `images` (`(N, C, …)`) `batch` images at a time and returns the
/// outputs concatenated along the batch axis.
pub fn predict_batched(net: &dyn Network, images: &Tensor, batch: usize) -> Result<Tensor> {
    let n = images.dim(0)?;
    let mut outs = Vec::new();
    let mut i = 0;
    while i < n {
        let len = batch.max(1).min(n - i);
        outs.push(net.predict(&images.narrow(0, i, len)?)?);
        i += len;
    }
    Ok(Tensor::cat(&outs, 0)?)
}

/// All values of a tensor, row-major, as f32.
pub fn to_vec_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1()?)
}
