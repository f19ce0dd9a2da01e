//! Differentiable operations on `candle_core::Tensor`, implemented as Candle custom ops.
//!
//! Every function validates its arguments and returns an [`Error`](crate::Error) that says
//! what is wrong and what would be right; inputs are made contiguous before they reach a
//! kernel. Gradients flow through Candle's autograd (`Tensor::backward`). Supported dtypes are
//! f32 and f64, on the CPU (a `cuda_fwd` can be added to each op beside its `cpu_fwd`).

mod channel;
mod conv;
mod conv_bias;
mod conv_norm_act;
mod conv_transpose;
mod norm_act;
mod pool;
mod remap;
mod softmax;

pub use channel::{batch_norm_train, channel_affine, BatchNormOutput};
pub use conv::{conv, conv_input_grad, conv_weight_grad};
pub use conv_norm_act::{conv_batch_norm_act_train, NormActSpec};
pub use conv_transpose::conv_transpose;
#[doc(hidden)]
pub use norm_act::batch_norm_act_train_composed;
pub use norm_act::{batch_norm_act_train, ActOrder, FusedAct};
pub use pool::max_pool;
pub use remap::{pad, upsample_nearest, upsample_nearest_scale};
pub use softmax::softmax_channels;

use candle_core::{DType, Tensor};

use crate::error::{invalid, Error, Result};

/// Letters naming the spatial axes of an `ndim`-D tensor, for error messages.
fn axis_names(ndim: usize) -> &'static str {
    match ndim {
        1 => "(N, C, L)",
        2 => "(N, C, H, W)",
        _ => "(N, C, D, H, W)",
    }
}

/// Checks that `t` has rank `ndim + 2` and returns `(batch, channels, spatial dims)`.
pub(crate) fn split_dims(
    op: &'static str,
    what: &str,
    t: &Tensor,
    ndim: usize,
) -> Result<(usize, usize, Vec<usize>)> {
    let d = t.dims();
    if d.len() != ndim + 2 {
        return Err(Error::Shape {
            op,
            expected: format!(
                "{what} of rank {} {} for {ndim} spatial axes",
                ndim + 2,
                axis_names(ndim)
            ),
            got: t.shape().clone(),
        });
    }
    Ok((d[0], d[1], d[2..].to_vec()))
}

/// Checks that `t` is f32 or f64 (and, if given, of the same dtype as `other`).
/// Whether `t` holds half-precision floats (bf16, f16). The kernels run in f32 and f64 only, so
/// every op casts such inputs to f32 and its result back (autograd differentiates through both
/// casts): mixed-precision networks run, with these ops' arithmetic in f32.
pub(crate) fn is_half(t: &Tensor) -> bool {
    matches!(t.dtype(), DType::BF16 | DType::F16)
}

/// `t` in f32 (see [`is_half`]).
pub(crate) fn up(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_dtype(DType::F32)?)
}

/// An optional tensor in f32 (see [`is_half`]).
pub(crate) fn up_opt(t: Option<&Tensor>) -> Result<Option<Tensor>> {
    t.map(up).transpose()
}

pub(crate) fn check_float(op: &'static str, t: &Tensor, other: Option<&Tensor>) -> Result<()> {
    if !matches!(t.dtype(), DType::F32 | DType::F64) {
        return Err(invalid(
            op,
            format!("unsupported dtype {:?}; expected f32 or f64", t.dtype()),
        ));
    }
    if let Some(o) = other {
        if o.dtype() != t.dtype() {
            return Err(invalid(
                op,
                format!(
                    "dtypes differ: {:?} and {:?}; convert both to one of f32/f64",
                    t.dtype(),
                    o.dtype()
                ),
            ));
        }
        if !o.device().same_device(t.device()) {
            return Err(invalid(op, "tensors are on different devices"));
        }
    }
    Ok(())
}

/// Adds a per-channel bias `(C,)` to an `(N, C, …)` tensor (fused backward: see
/// [`channel_affine`]).
pub(crate) fn add_channel_bias(
    op: &'static str,
    y: Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let Some(b) = bias else { return Ok(y) };
    check_bias(op, &y, y.dim(1)?, b)?;
    channel_affine(&y, None, Some(b))
}

/// Checks that `b` is a `(c,)` bias of `x`'s dtype and device.
pub(crate) fn check_bias(op: &'static str, x: &Tensor, c: usize, b: &Tensor) -> Result<()> {
    if b.dims() != [c] {
        return Err(Error::Shape {
            op,
            expected: format!("bias of shape ({c},), one value per output channel"),
            got: b.shape().clone(),
        });
    }
    check_float(op, x, Some(b))
}

/// `x ⋆ w + b` as one op where the bias can be fused (CPU), else a convolution node and a bias
/// node (same values).
pub(crate) fn conv_with_bias(
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    conv: conv::ConvOp,
) -> Result<Tensor> {
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match bias {
        Some(b) if x.device().is_cpu() => {
            check_bias(op, &x, conv::out_channels(&conv), b)?;
            Ok(x.apply_op3(&w, &b.contiguous()?, conv_bias::BiasedConvOp(conv))?)
        }
        _ => {
            let y = x.apply_op2(&w, conv).map_err(Error::from)?;
            add_channel_bias(op, y, bias)
        }
    }
}

/// Runs `$body` with `$t` bound to the element type of a `CpuStorage` (f32 or f64).
macro_rules! with_real {
    ($op:expr, $storage:expr, $t:ident => $body:expr) => {
        match $storage {
            candle_core::CpuStorage::F32(_) => {
                type $t = f32;
                $body
            }
            candle_core::CpuStorage::F64(_) => {
                type $t = f64;
                $body
            }
            other => candle_core::bail!(
                "{}: unsupported dtype {:?}; expected f32 or f64",
                $op,
                candle_core::backend::BackendStorage::dtype(other)
            ),
        }
    };
}
pub(crate) use with_real;

/// Checks inside a kernel that a layout has the dims the op was planned for.
pub(crate) fn expect_dims(
    op: &str,
    what: &str,
    l: &candle_core::Layout,
    dims: &[usize],
) -> candle_core::Result<()> {
    if l.dims() != dims {
        candle_core::bail!("{op}: {what} has shape {:?}, expected {:?}", l.dims(), dims);
    }
    Ok(())
}
