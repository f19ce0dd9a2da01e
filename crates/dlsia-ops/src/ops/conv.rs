//! N-d convolution (1-D, 2-D, 3-D) with stride, padding (any [`PaddingMode`]), dilation and
//! groups, per axis, as a Candle custom op with input and weight gradients.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::{check_float, conv_with_bias, expect_dims, is_half, split_dims, up, up_opt, with_real};
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
    if is_half(x) {
        let y = conv(&up(x)?, &up(w)?, up_opt(bias)?.as_ref(), spec)?;
        return Ok(y.to_dtype(x.dtype())?);
    }
    const OP: &str = "conv";
    let (x, op) = plan_conv(OP, x, w, spec)?;
    conv_with_bias(OP, &x, w, bias, op)
}

/// Validates a convolution and returns its (explicitly padded, if the padding mode needs it)
/// input and the forward op.
pub(crate) fn plan_conv(
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    spec: &ConvSpec,
) -> Result<(Tensor, ConvOp)> {
    let (n, c_in, input) = split_dims(op, "input", x, spec.ndim())?;
    let (c_out, _, kernel) = split_dims(op, "weight", w, spec.ndim())?;
    check_float(op, x, Some(w))?;
    check_groups(op, c_in, w, spec.groups, false)?;
    let plan = Plan::new(spec, n, c_in, c_out, &input, &kernel)?;
    let x = match &plan.explicit_pads {
        Some(pads) => super::pad(x, pads, spec.padding_mode)?,
        None => x.clone(),
    };
    Ok((
        x,
        ConvOp {
            geom: plan.geom,
            kind: ConvKind::Forward,
        },
    ))
}

/// Channels of the tensor a [`ConvOp`] produces.
pub(crate) fn out_channels(op: &ConvOp) -> usize {
    match op.kind {
        ConvKind::Forward => op.geom.c_out,
        _ => op.geom.c_in,
    }
}

/// The geometry of a convolution after explicit padding (modes other than zeros pad the input
/// explicitly and then run a valid convolution).
struct Plan {
    geom: ConvGeom,
    /// `(before, after)` per axis when the input is padded explicitly.
    explicit_pads: Option<Vec<(usize, usize)>>,
}

impl Plan {
    fn new(
        spec: &ConvSpec,
        n: usize,
        c_in: usize,
        c_out: usize,
        input: &[usize],
        kernel: &[usize],
    ) -> Result<Self> {
        spec.validate()?;
        let nd = spec.ndim();
        let output = spec.output_size(input, kernel)?;
        let explicit =
            spec.padding_mode != PaddingMode::Zeros && spec.padding.iter().any(|&p| p > 0);
        let (padded, padding, explicit_pads) = if explicit {
            let padded: Vec<usize> = input
                .iter()
                .zip(&spec.padding)
                .map(|(&i, &p)| i + 2 * p)
                .collect();
            let pads = spec.padding.iter().map(|&p| (p, p)).collect();
            (padded, vec![0; nd], Some(pads))
        } else {
            (input.to_vec(), spec.padding.clone(), None)
        };
        Ok(Plan {
            geom: ConvGeom {
                ndim: nd,
                n,
                c_in,
                c_out,
                groups: spec.groups,
                input: to3(&padded, 1),
                output: to3(&output, 1),
                kernel: to3(kernel, 1),
                stride: to3(&spec.stride, 1),
                pad: to3(&padding, 0),
                dil: to3(&spec.dilation, 1),
            },
            explicit_pads,
        })
    }
}

/// The input gradient of [`conv`] without autograd: for the output gradient `dy`
/// `(N, C_out, out…)` and the weight `w` `(C_out, C_in/groups, k…)`, the gradient with respect to
/// an input of spatial size `input` (`(N, C_in, input…)`), for any padding mode.
///
/// This is one of the two computations of the convolution's backward pass, for callers that run
/// their own backward pass (fused networks, recomputation). The result is not tracked by
/// autograd.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_ops::{conv_input_grad, ConvSpec};
///
/// let dy = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &Device::Cpu)?;
/// let w = Tensor::ones((1, 2, 3, 3), candle_core::DType::F32, &Device::Cpu)?;
/// let dx = conv_input_grad(&dy, &w, &[3, 3], &ConvSpec::uniform(2, 1, 1, 1))?;
/// assert_eq!(dx.dims(), &[1, 2, 3, 3]);
/// // the centre pixel is read by all nine output positions
/// assert_eq!(dx.get(0)?.get(1)?.get(1)?.get(1)?.to_scalar::<f32>()?, 9.0);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn conv_input_grad(
    dy: &Tensor,
    w: &Tensor,
    input: &[usize],
    spec: &ConvSpec,
) -> Result<Tensor> {
    const OP: &str = "conv_input_grad";
    if is_half(dy) {
        let dx = conv_input_grad(&up(dy)?, &up(w)?, input, spec)?;
        return Ok(dx.to_dtype(dy.dtype())?);
    }
    let nd = spec.ndim();
    let (n, c_out, out) = split_dims(OP, "output gradient", dy, nd)?;
    let (w_out, w_in, kernel) = split_dims(OP, "weight", w, nd)?;
    check_float(OP, dy, Some(w))?;
    if w_out != c_out {
        return Err(invalid(
            OP,
            format!("the output gradient has {c_out} channels but the weight has {w_out} output channels"),
        ));
    }
    if input.len() != nd {
        return Err(invalid(
            OP,
            format!("input size {input:?} needs one entry per spatial axis ({nd})"),
        ));
    }
    let c_in = w_in * spec.groups;
    check_groups(OP, c_in, w, spec.groups, false)?;
    let plan = Plan::new(spec, n, c_in, c_out, input, &kernel)?;
    let want = plan.geom.y_dims();
    if dy.dims() != want.as_slice() {
        return Err(Error::Shape {
            op: OP,
            expected: format!("output gradient {want:?} for an input of size {input:?} (output size {out:?} given)"),
            got: dy.shape().clone(),
        });
    }
    let op = ConvOp {
        geom: plan.geom,
        kind: ConvKind::DataGrad,
    };
    let dx = dy
        .detach()
        .contiguous()?
        .apply_op2_no_bwd(&w.detach().contiguous()?, &op)
        .map_err(Error::from)?;
    match &plan.explicit_pads {
        Some(pads) => super::remap::pad_adjoint(&dx, input, pads, spec.padding_mode),
        None => Ok(dx),
    }
}

/// The weight gradient of [`conv`] without autograd: for the input `x` `(N, C_in, input…)` and
/// the output gradient `dy` `(N, C_out, out…)`, the gradient with respect to a weight with a
/// kernel of size `kernel` (`(C_out, C_in/groups, kernel…)`), for any padding mode. Summed over
/// the batch; the bias gradient is `dy` summed over every axis but the channel axis.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_ops::{conv_weight_grad, ConvSpec};
///
/// let x = Tensor::ones((2, 1, 4, 4), candle_core::DType::F32, &Device::Cpu)?;
/// let dy = Tensor::ones((2, 1, 4, 4), candle_core::DType::F32, &Device::Cpu)?;
/// let dw = conv_weight_grad(&x, &dy, &[3, 3], &ConvSpec::uniform(2, 1, 1, 1))?;
/// // the centre tap sees all 16 pixels of both images; a corner tap 9 of them
/// assert_eq!(dw.get(0)?.get(0)?.get(1)?.get(1)?.to_scalar::<f32>()?, 32.0);
/// assert_eq!(dw.get(0)?.get(0)?.get(0)?.get(0)?.to_scalar::<f32>()?, 18.0);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn conv_weight_grad(
    x: &Tensor,
    dy: &Tensor,
    kernel: &[usize],
    spec: &ConvSpec,
) -> Result<Tensor> {
    const OP: &str = "conv_weight_grad";
    if is_half(x) {
        let dw = conv_weight_grad(&up(x)?, &up(dy)?, kernel, spec)?;
        return Ok(dw.to_dtype(x.dtype())?);
    }
    let nd = spec.ndim();
    let (n, c_in, input) = split_dims(OP, "input", x, nd)?;
    let (_, c_out, _) = split_dims(OP, "output gradient", dy, nd)?;
    check_float(OP, x, Some(dy))?;
    if kernel.len() != nd || kernel.contains(&0) {
        return Err(invalid(
            OP,
            format!("kernel {kernel:?} needs one positive entry per spatial axis ({nd})"),
        ));
    }
    let g = spec.groups;
    if g == 0 || c_in % g != 0 || c_out % g != 0 {
        return Err(invalid(
            OP,
            format!("input channels {c_in} and output channels {c_out} must both be divisible by groups = {g}"),
        ));
    }
    let plan = Plan::new(spec, n, c_in, c_out, &input, kernel)?;
    let want = plan.geom.y_dims();
    if dy.dims() != want.as_slice() {
        return Err(Error::Shape {
            op: OP,
            expected: format!(
                "output gradient {want:?} for an input of shape {:?}",
                x.dims()
            ),
            got: dy.shape().clone(),
        });
    }
    let x = x.detach();
    let x = match &plan.explicit_pads {
        Some(pads) => super::pad(&x, pads, spec.padding_mode)?,
        None => x,
    };
    let op = ConvOp {
        geom: plan.geom,
        kind: ConvKind::WeightGrad,
    };
    x.contiguous()?
        .apply_op2_no_bwd(&dy.detach().contiguous()?, &op)
        .map_err(Error::from)
}
