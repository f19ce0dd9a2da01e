//! Parameter-free resampling layers: max pooling and nearest-neighbour upsampling.

use candle_core::{Module, Tensor};

use crate::error::{invalid, Result};
use crate::{max_pool, upsample_nearest, upsample_nearest_scale};

/// Max pooling (`MaxPool1d/2d/3d`) with per-axis kernel, stride and padding, floor mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPool {
    kernel: Vec<usize>,
    stride: Vec<usize>,
    padding: Vec<usize>,
}

impl MaxPool {
    /// A pooling layer; one entry per spatial axis (1–3) in each list. PyTorch's default stride
    /// is the kernel size.
    pub fn new(kernel: &[usize], stride: &[usize], padding: &[usize]) -> Result<Self> {
        let nd = kernel.len();
        if !(1..=3).contains(&nd) || stride.len() != nd || padding.len() != nd {
            return Err(invalid(
                "MaxPool",
                format!("kernel {kernel:?}, stride {stride:?} and padding {padding:?} need one entry per spatial axis (1–3)"),
            ));
        }
        if kernel.contains(&0) || stride.contains(&0) {
            return Err(invalid(
                "MaxPool",
                format!("kernel {kernel:?} and stride {stride:?} must be positive"),
            ));
        }
        if kernel.iter().zip(padding).any(|(&k, &p)| 2 * p > k) {
            return Err(invalid(
                "MaxPool",
                format!("padding {padding:?} must be at most half the kernel {kernel:?}"),
            ));
        }
        Ok(MaxPool {
            kernel: kernel.to_vec(),
            stride: stride.to_vec(),
            padding: padding.to_vec(),
        })
    }
    /// Window size per axis.
    pub fn kernel(&self) -> &[usize] {
        &self.kernel
    }
    /// Stride per axis.
    pub fn stride(&self) -> &[usize] {
        &self.stride
    }
    /// Padding per axis.
    pub fn padding(&self) -> &[usize] {
        &self.padding
    }
}

impl Module for MaxPool {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(max_pool(x, &self.kernel, &self.stride, &self.padding)?)
    }
}

/// Nearest-neighbour upsampling (`nn.Upsample(mode='nearest')`) to a fixed size or by integer
/// factors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsample {
    /// Resize to this spatial size (one entry per axis).
    Size(Vec<usize>),
    /// Multiply each spatial axis by this factor.
    Scale(Vec<usize>),
}

impl Upsample {
    /// Resizes to `size`; errors on an empty list, more than 3 axes or a zero size.
    pub fn to_size(size: &[usize]) -> Result<Self> {
        if !(1..=3).contains(&size.len()) || size.contains(&0) {
            return Err(invalid(
                "Upsample",
                format!("size {size:?} needs 1–3 positive entries"),
            ));
        }
        Ok(Upsample::Size(size.to_vec()))
    }
    /// Scales by `factor`; errors on an empty list, more than 3 axes or a zero factor.
    pub fn by_scale(factor: &[usize]) -> Result<Self> {
        if !(1..=3).contains(&factor.len()) || factor.contains(&0) {
            return Err(invalid(
                "Upsample",
                format!("scale {factor:?} needs 1–3 positive entries"),
            ));
        }
        Ok(Upsample::Scale(factor.to_vec()))
    }
}

impl Module for Upsample {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(match self {
            Upsample::Size(s) => upsample_nearest(x, s)?,
            Upsample::Scale(f) => upsample_nearest_scale(x, f)?,
        })
    }
}
