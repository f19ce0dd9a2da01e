//! N-d transposed convolution (PyTorch's `ConvTranspose1d/2d/3d`), per-axis geometry including
//! per-axis output padding, as the input gradient of the matching convolution.

use candle_core::Tensor;

use super::conv::{check_groups, ConvKind, ConvOp};
use super::{check_float, conv_with_bias, is_half, split_dims, up, up_opt};
use crate::error::Result;
use crate::kernels::conv_gemm::ConvGeom;
use crate::kernels::to3;
use crate::ConvTransposeSpec;

/// A transposed convolution: `x` is `(N, C_in, spatial…)`, `w` is `(C_in, C_out/groups,
/// kernel…)` as in PyTorch, `bias` (if any) is `(C_out,)`. Output size per axis:
/// `(in − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1`.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use dlsia_ops::{conv_transpose, ConvTransposeSpec};
///
/// let x = Tensor::ones((1, 4, 3, 5), DType::F32, &Device::Cpu)?;
/// let w = Tensor::ones((4, 2, 2, 2), DType::F32, &Device::Cpu)?;
/// let y = conv_transpose(&x, &w, None, &ConvTransposeSpec::uniform(2, 2, 0, 0, 1))?;
/// assert_eq!(y.dims(), &[1, 2, 6, 10]);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn conv_transpose(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    spec: &ConvTransposeSpec,
) -> Result<Tensor> {
    const OP: &str = "conv_transpose";
    if is_half(x) {
        let y = conv_transpose(&up(x)?, &up(w)?, up_opt(bias)?.as_ref(), spec)?;
        return Ok(y.to_dtype(x.dtype())?);
    }
    spec.validate()?;
    let nd = spec.ndim();
    let (n, c_in, input) = split_dims(OP, "input", x, nd)?;
    let (_, c_out_g, kernel) = split_dims(OP, "weight", w, nd)?;
    check_float(OP, x, Some(w))?;
    check_groups(OP, c_in, w, spec.groups, true)?;
    let output = spec.output_size(&input, &kernel)?;
    // The convolution whose input gradient this is: its input is our output.
    let geom = ConvGeom {
        ndim: nd,
        n,
        c_in: c_out_g * spec.groups,
        c_out: c_in,
        groups: spec.groups,
        input: to3(&output, 1),
        output: to3(&input, 1),
        kernel: to3(&kernel, 1),
        stride: to3(&spec.stride, 1),
        pad: to3(&spec.padding, 0),
        dil: to3(&spec.dilation, 1),
    };
    let op = ConvOp {
        geom,
        kind: ConvKind::DataGrad,
    };
    conv_with_bias(OP, x, w, bias, op)
}
