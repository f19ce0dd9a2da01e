//! N-d convolution (1-D, 2-D, 3-D) with stride, padding (any [`PaddingMode`]), dilation and
//! groups, per axis, as a Candle custom op with input and weight gradients.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::{add_channel_bias, check_float, expect_dims, split_dims, with_real};
use crate::error::{invalid, Error, Result};
use crate::kernels::conv_gemm::{self, ConvGeom};
use crate::kernels::{slice_of, to3, Real};
use crate::{ConvSpec, PaddingMode};

/// Which of the three convolution computations an op performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvKind {
    /// `(x, w) → y`.
    Forward,
    /// `(dy, w) → dx`; also the forward pass of a transposed convolution.
    DataGrad,
    /// `(x, dy) → dw`.
    WeightGrad,
}

/// One convolution computation for a fixed geometry.
#[derive(Debug, Clone)]
pub(crate) struct ConvOp {
    pub geom: ConvGeom,
    pub kind: ConvKind,
}

impl ConvOp {
    fn with(&self, kind: ConvKind) -> Self {
        ConvOp {
            geom: self.geom.clone(),
            kind,
        }
    }

    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.geom;
        let name = self.name();
        let (a, b) = (slice_of::<T>(s1, l1, name)?, slice_of::<T>(s2, l2, name)?);
        let (out, dims) = match self.kind {
            ConvKind::Forward => {
                expect_dims(name, "input", l1, &g.x_dims())?;
                expect_dims(name, "weight", l2, &g.w_dims())?;
                (conv_gemm::forward(g, a, b), g.y_dims())
            }
            ConvKind::DataGrad => {
                expect_dims(name, "output gradient", l1, &g.y_dims())?;
                expect_dims(name, "weight", l2, &g.w_dims())?;
                (conv_gemm::data_grad(g, a, b), g.x_dims())
            }
            ConvKind::WeightGrad => {
                expect_dims(name, "input", l1, &g.x_dims())?;
                expect_dims(name, "output gradient", l2, &g.y_dims())?;
                (conv_gemm::weight_grad(g, a, b), g.w_dims())
            }
        };
        Ok((T::to_cpu_storage_owned(out), Shape::from(dims)))
    }

    #[cfg(feature = "cuda")]
    fn run_cuda<T: crate::cuda::CudaReal>(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::cuda::{conv as cuda_conv, view};
        let g = &self.geom;
        let name = self.name();
        let dev = s1.device();
        let (a, b) = (view::<T>(s1, l1, name)?, view::<T>(s2, l2, name)?);
        let (out, dims) = match self.kind {
            ConvKind::Forward => {
                expect_dims(name, "input", l1, &g.x_dims())?;
                expect_dims(name, "weight", l2, &g.w_dims())?;
                (cuda_conv::forward(dev, g, &a, &b)?, g.y_dims())
            }
            ConvKind::DataGrad => {
                expect_dims(name, "output gradient", l1, &g.y_dims())?;
                expect_dims(name, "weight", l2, &g.w_dims())?;
                (cuda_conv::data_grad(dev, g, &a, &b)?, g.x_dims())
            }
            ConvKind::WeightGrad => {
                expect_dims(name, "input", l1, &g.x_dims())?;
                expect_dims(name, "output gradient", l2, &g.y_dims())?;
                (cuda_conv::weight_grad(dev, g, &a, &b)?, g.w_dims())
            }
        };
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone()),
            Shape::from(dims),
        ))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        match self.kind {
            ConvKind::Forward => "dlsia-conv",
            ConvKind::DataGrad => "dlsia-conv-data-grad",
            ConvKind::WeightGrad => "dlsia-conv-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if s1.dtype() != s2.dtype() {
            candle_core::bail!(
                "{}: dtypes differ ({:?} and {:?})",
                self.name(),
                s1.dtype(),
                s2.dtype()
            );
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
            candle_core::bail!(
                "{}: dtypes differ ({:?} and {:?})",
                self.name(),
                s1.dtype(),
                s2.dtype()
            );
        }
        crate::cuda::with_cuda_real!(self.name(), s1, T => self.run_cuda::<T>(s1, l1, s2, l2))
    }

    fn bwd(
        &self,
        a1: &Tensor,
        a2: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        match self.kind {
            ConvKind::Forward => {
                // a1 = x, a2 = w
                let dx = grad.apply_op2_no_bwd(a2, &self.with(ConvKind::DataGrad))?;
                let dw = a1.apply_op2_no_bwd(&grad, &self.with(ConvKind::WeightGrad))?;
                Ok((Some(dx), Some(dw)))
            }
            ConvKind::DataGrad => {
                // A transposed convolution: a1 = its input (the conv's output side), a2 = w.
                let dx = grad.apply_op2_no_bwd(a2, &self.with(ConvKind::Forward))?;
                let dw = grad.apply_op2_no_bwd(a1, &self.with(ConvKind::WeightGrad))?;
                Ok((Some(dx), Some(dw)))
            }
            ConvKind::WeightGrad => Err(candle_core::Error::BackwardNotSupported {
                op: "dlsia-conv-weight-grad",
            }),
        }
    }
}

/// Checks channels and groups of a convolution-like op; returns channels per group of `w`'s
/// second axis.
pub(crate) fn check_groups(
    op: &'static str,
    c_in: usize,
    w: &Tensor,
    groups: usize,
    transposed: bool,
) -> Result<()> {
    let (w0, w1) = (w.dim(0)?, w.dim(1)?);
    if groups == 0 {
        return Err(invalid(op, "groups must be at least 1"));
    }
    if transposed {
        // x (N, C_in, …), w (C_in, C_out/g, k…)
        if w0 != c_in {
            return Err(invalid(
                op,
                format!("the input has {c_in} channels but the weight's first axis is {w0}; a transposed-convolution weight is (in_channels, out_channels/groups, k…)"),
            ));
        }
        if c_in % groups != 0 {
            return Err(invalid(
                op,
                format!("{c_in} input channels are not divisible by groups = {groups}"),
            ));
        }
        if w1 == 0 {
            return Err(invalid(op, "the weight has no output channels"));
        }
    } else {
        // x (N, C_in, …), w (C_out, C_in/g, k…)
        if c_in % groups != 0 || w0 % groups != 0 {
            return Err(invalid(
                op,
                format!("input channels {c_in} and output channels {w0} must both be divisible by groups = {groups}"),
            ));
        }
        if w1 * groups != c_in {
            return Err(invalid(
                op,
                format!("the input has {c_in} channels but the weight expects {} (weight axis 1 = {w1} channels per group × {groups} groups)", w1 * groups),
            ));
        }
        if w0 == 0 {
            return Err(invalid(op, "the weight has no output channels"));
        }
    }
    Ok(())
}

/// A convolution: `x` is `(N, C_in, spatial…)`, `w` is `(C_out, C_in/groups, kernel…)` as in
/// PyTorch, `bias` (if any) is `(C_out,)`. The number of spatial axes (1–3) is `spec.ndim()`.
///
/// Padding modes other than zeros pad explicitly (differentiably) and then run a valid
/// convolution, exactly as PyTorch's `Conv*d(padding_mode=…)` does.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_ops::{conv, ConvSpec};
///
/// let x = Tensor::ones((1, 2, 5, 5), candle_core::DType::F32, &Device::Cpu)?;
/// let w = Tensor::ones((3, 2, 3, 3), candle_core::DType::F32, &Device::Cpu)?;
/// let y = conv(&x, &w, None, &ConvSpec::uniform(2, 1, 1, 1))?;
/// assert_eq!(y.dims(), &[1, 3, 5, 5]);
/// assert_eq!(y.get(0)?.get(0)?.get(2)?.get(2)?.to_scalar::<f32>()?, 18.0);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn conv(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, spec: &ConvSpec) -> Result<Tensor> {
    const OP: &str = "conv";
    spec.validate()?;
    let nd = spec.ndim();
    let (n, c_in, input) = split_dims(OP, "input", x, nd)?;
    let (c_out, _, kernel) = split_dims(OP, "weight", w, nd)?;
    check_float(OP, x, Some(w))?;
    check_groups(OP, c_in, w, spec.groups, false)?;
    let output = spec.output_size(&input, &kernel)?;
    let (x, padding) =
        if spec.padding_mode != PaddingMode::Zeros && spec.padding.iter().any(|&p| p > 0) {
            let pads: Vec<_> = spec.padding.iter().map(|&p| (p, p)).collect();
            (super::pad(x, &pads, spec.padding_mode)?, vec![0; nd])
        } else {
            (x.clone(), spec.padding.clone())
        };
    let input = x.dims()[2..].to_vec();
    let geom = ConvGeom {
        ndim: nd,
        n,
        c_in,
        c_out,
        groups: spec.groups,
        input: to3(&input, 1),
        output: to3(&output, 1),
        kernel: to3(&kernel, 1),
        stride: to3(&spec.stride, 1),
        pad: to3(&padding, 0),
        dil: to3(&spec.dilation, 1),
    };
    let op = ConvOp {
        geom,
        kind: ConvKind::Forward,
    };
    let y = x
        .contiguous()?
        .apply_op2(&w.contiguous()?, op)
        .map_err(Error::from)?;
    add_channel_bias(OP, y, bias)
}
