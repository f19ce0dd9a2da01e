//! N-d max pooling with per-axis kernel, stride and padding (PyTorch floor mode) and a correct
//! backward pass for any kernel/stride combination.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::{check_float, expect_dims, is_half, split_dims, up, with_real};
use crate::error::{invalid, Error, Result};
use crate::kernels::pool::{self, PoolGeom};
use crate::kernels::{slice_of, to3, volume, Real};

/// Max pooling forward: `x → y`.
#[derive(Debug, Clone)]
struct MaxPoolOp(PoolGeom);

/// Max pooling backward: `(x, dy) → dx`.
#[derive(Debug, Clone)]
struct MaxPoolGradOp(PoolGeom);

fn x_dims(g: &PoolGeom) -> Vec<usize> {
    [vec![g.n, g.c], g.input[3 - g.ndim..].to_vec()].concat()
}

impl MaxPoolOp {
    fn run<T: Real>(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        expect_dims(self.name(), "input", l, &x_dims(&self.0))?;
        let x = slice_of::<T>(s, l, self.name())?;
        let y = pool::forward(&self.0, x);
        Ok((T::to_cpu_storage_owned(y), Shape::from(self.0.y_dims())))
    }

    #[cfg(feature = "cuda")]
    fn run_cuda<T: crate::cuda::CudaReal>(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        expect_dims(self.name(), "input", l, &x_dims(&self.0))?;
        let x = crate::cuda::view::<T>(s, l, self.name())?;
        let y = crate::cuda::pool::forward(s.device(), &self.0, &x)?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(y, s.device().clone()),
            Shape::from(self.0.y_dims()),
        ))
    }
}

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "dlsia-max-pool"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(self.name(), s, T => self.run::<T>(s, l))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::with_cuda_real!(self.name(), s, T => self.run_cuda::<T>(s, l))
    }
    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(
            arg.apply_op2_no_bwd(&grad, &MaxPoolGradOp(self.0.clone()))?,
        ))
    }
}

impl MaxPoolGradOp {
    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        expect_dims(self.name(), "input", l1, &x_dims(&self.0))?;
        expect_dims(self.name(), "output gradient", l2, &self.0.y_dims())?;
        let x = slice_of::<T>(s1, l1, self.name())?;
        let dy = slice_of::<T>(s2, l2, self.name())?;
        let dx = pool::backward(&self.0, x, dy);
        Ok((T::to_cpu_storage_owned(dx), Shape::from(x_dims(&self.0))))
    }

    #[cfg(feature = "cuda")]
    fn run_cuda<T: crate::cuda::CudaReal>(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        expect_dims(self.name(), "input", l1, &x_dims(&self.0))?;
        expect_dims(self.name(), "output gradient", l2, &self.0.y_dims())?;
        let x = crate::cuda::view::<T>(s1, l1, self.name())?;
        let dy = crate::cuda::view::<T>(s2, l2, self.name())?;
        let dx = crate::cuda::pool::backward(s1.device(), &self.0, &x, &dy)?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(dx, s1.device().clone()),
            Shape::from(x_dims(&self.0)),
        ))
    }
}

impl CustomOp2 for MaxPoolGradOp {
    fn name(&self) -> &'static str {
        "dlsia-max-pool-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if s1.dtype() != s2.dtype() {
            candle_core::bail!("{}: dtypes differ", self.name());
        }
        with_real!(self.name(), s1, T => self.run::<T>(s1, l1, s2, l2))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        if s1.dtype() != s2.dtype() {
            candle_core::bail!("{}: dtypes differ", self.name());
        }
        crate::cuda::with_cuda_real!(self.name(), s1, T => self.run_cuda::<T>(s1, l1, s2, l2))
    }
}

/// Max pooling of an `(N, C, spatial…)` tensor with per-axis `kernel`, `stride` and `padding`
/// (one entry per spatial axis, 1–3 axes), PyTorch semantics: floor mode, padding counts as −∞
/// and may be at most half the kernel. The gradient of each window goes to its first maximum
/// (the last NaN if there is one), as in PyTorch; windows may overlap (kernel ≠ stride).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_ops::max_pool;
///
/// let x = Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
/// let y = max_pool(&x, &[2, 2], &[2, 2], &[0, 0])?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [5., 7., 13., 15.]);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn max_pool(
    x: &Tensor,
    kernel: &[usize],
    stride: &[usize],
    padding: &[usize],
) -> Result<Tensor> {
    const OP: &str = "max_pool";
    if is_half(x) {
        return Ok(max_pool(&up(x)?, kernel, stride, padding)?.to_dtype(x.dtype())?);
    }
    let nd = kernel.len();
    if !(1..=3).contains(&nd) || stride.len() != nd || padding.len() != nd {
        return Err(invalid(
            OP,
            format!(
                "kernel, stride and padding need one entry per spatial axis (1–3 axes); got {}, {} and {}",
                kernel.len(),
                stride.len(),
                padding.len()
            ),
        ));
    }
    let (n, c, input) = split_dims(OP, "input", x, nd)?;
    check_float(OP, x, None)?;
    let mut output = Vec::with_capacity(nd);
    for i in 0..nd {
        let (k, s, p, len) = (kernel[i], stride[i], padding[i], input[i]);
        if k == 0 || s == 0 {
            return Err(invalid(
                OP,
                format!("kernel and stride must be at least 1 (axis {i}: kernel {k}, stride {s})"),
            ));
        }
        if 2 * p > k {
            return Err(invalid(
                OP,
                format!("padding {p} on axis {i} must be at most half the kernel size {k}"),
            ));
        }
        if len + 2 * p < k {
            return Err(invalid(
                OP,
                format!("kernel {k} on spatial axis {i} is larger than the padded input length {} (input {len} + 2·padding {p})", len + 2 * p),
            ));
        }
        output.push((len + 2 * p - k) / s + 1);
    }
    let geom = PoolGeom {
        ndim: nd,
        n,
        c,
        input: to3(&input, 1),
        output: to3(&output, 1),
        kernel: to3(kernel, 1),
        stride: to3(stride, 1),
        pad: to3(padding, 0),
    };
    debug_assert!(volume(&geom.output) > 0);
    x.contiguous()?
        .apply_op1(MaxPoolOp(geom))
        .map_err(Error::from)
}
