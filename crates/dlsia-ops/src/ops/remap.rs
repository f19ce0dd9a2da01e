//! Explicit padding (zeros, reflect, replicate, symmetric) and nearest-neighbour upsampling,
//! both as index-map gathers whose backward pass scatter-adds.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::{check_float, expect_dims, is_half, split_dims, up, with_real};
use crate::error::{invalid, Error, Result};
use crate::kernels::remap::{self, Remap};
use crate::kernels::{slice_of, to3, Real};
use crate::PaddingMode;

/// `x → gather(x)` (or, with `adjoint`, `dy → scatter_add(dy)`).
#[derive(Debug, Clone)]
struct RemapOp {
    remap: Remap,
    name: &'static str,
    adjoint: bool,
}

impl RemapOp {
    fn dims(&self, s: [usize; 3]) -> Vec<usize> {
        let planes = self.remap.planes;
        let nd = self.remap.ndim;
        // planes = n·c; the caller's leading dims are restored by reshaping outside.
        [vec![planes], s[3 - nd..].to_vec()].concat()
    }

    fn run<T: Real>(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (input, output) = (self.dims(self.remap.input), self.dims(self.remap.output()));
        let (from, to) = if self.adjoint {
            (output, input)
        } else {
            (input, output)
        };
        expect_dims(self.name, "input", l, &from)?;
        let x = slice_of::<T>(s, l, self.name)?;
        let y = if self.adjoint {
            remap::scatter_add(&self.remap, x)
        } else {
            remap::gather(&self.remap, x)
        };
        Ok((T::to_cpu_storage_owned(y), Shape::from(to)))
    }

    #[cfg(feature = "cuda")]
    fn run_cuda<T: crate::cuda::CudaReal>(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        let (input, output) = (self.dims(self.remap.input), self.dims(self.remap.output()));
        let (from, to) = if self.adjoint {
            (output, input)
        } else {
            (input, output)
        };
        expect_dims(self.name, "input", l, &from)?;
        let x = crate::cuda::view::<T>(s, l, self.name)?;
        let dev = s.device();
        let y = if self.adjoint {
            crate::cuda::remap::scatter_add(dev, &self.remap, &x)?
        } else {
            crate::cuda::remap::gather(dev, &self.remap, &x)?
        };
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(y, dev.clone()),
            Shape::from(to),
        ))
    }
}

impl CustomOp1 for RemapOp {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(self.name, s, T => self.run::<T>(s, l))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::with_cuda_real!(self.name, s, T => self.run_cuda::<T>(s, l))
    }
    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        if self.adjoint {
            return Err(candle_core::Error::BackwardNotSupported {
                op: "dlsia-remap-adjoint",
            });
        }
        let adj = RemapOp {
            adjoint: true,
            ..self.clone()
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&adj)?))
    }
}

/// Applies per-axis maps to the last `maps.len()` axes of `x` (`(N, C, spatial…)`).
fn apply(op: &'static str, x: &Tensor, maps: Vec<Vec<Option<usize>>>) -> Result<Tensor> {
    if is_half(x) {
        return Ok(apply(op, &up(x)?, maps)?.to_dtype(x.dtype())?);
    }
    let nd = maps.len();
    let (n, c, input) = split_dims(op, "input", x, nd)?;
    check_float(op, x, None)?;
    let mut m3: [Vec<Option<usize>>; 3] = [vec![Some(0)], vec![Some(0)], vec![Some(0)]];
    for (i, m) in maps.into_iter().enumerate() {
        m3[3 - nd + i] = m;
    }
    let out: Vec<usize> = m3[3 - nd..].iter().map(Vec::len).collect();
    let r = Remap {
        ndim: nd,
        planes: n * c,
        input: to3(&input, 1),
        maps: m3,
    };
    let op = RemapOp {
        remap: r,
        name: op,
        adjoint: false,
    };
    let flat = x.contiguous()?.reshape([vec![n * c], input].concat())?;
    let y = flat.apply_op1(op).map_err(Error::from)?;
    Ok(y.reshape([vec![n, c], out].concat())?)
}

/// Pads the spatial axes of an `(N, C, spatial…)` tensor: `pads[i] = (before, after)` for
/// spatial axis `i` (one pair per spatial axis, 1–3 axes). Reflect padding may be at most
/// `length − 1`, symmetric at most `length` (one reflection); zeros and replicate have no limit.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_ops::{pad, PaddingMode};
///
/// let x = Tensor::new(&[[[1f32, 2., 3.]]], &Device::Cpu)?;
/// let y = pad(&x, &[(2, 1)], PaddingMode::Reflect)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [3., 2., 1., 2., 3., 2.]);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn pad(x: &Tensor, pads: &[(usize, usize)], mode: PaddingMode) -> Result<Tensor> {
    const OP: &str = "pad";
    let nd = pads.len();
    if !(1..=3).contains(&nd) {
        return Err(invalid(
            OP,
            format!("need one (before, after) pair per spatial axis (1–3 axes), got {nd}"),
        ));
    }
    let (_, _, input) = split_dims(OP, "input", x, nd)?;
    let maps = pad_maps(OP, &input, pads, mode)?;
    apply(OP, x, maps)
}

/// The per-axis index maps of [`pad`] for an input of spatial size `input`.
fn pad_maps(
    op: &'static str,
    input: &[usize],
    pads: &[(usize, usize)],
    mode: PaddingMode,
) -> Result<Vec<Vec<Option<usize>>>> {
    let mut maps = Vec::with_capacity(pads.len());
    for (i, (&(b, a), &len)) in pads.iter().zip(input).enumerate() {
        let maxp = mode.max_padding(len);
        if b > maxp || a > maxp {
            return Err(invalid(
                op,
                format!("{} padding ({b}, {a}) on spatial axis {i} of length {len} is too large: at most {maxp} per side", mode.as_str()),
            ));
        }
        if len == 0 && mode != PaddingMode::Zeros {
            return Err(invalid(
                op,
                format!("spatial axis {i} is empty: only zero padding can extend it"),
            ));
        }
        maps.push(
            (0..b + len + a)
                .map(|j| mode.source_index(j as isize - b as isize, len))
                .collect(),
        );
    }
    Ok(maps)
}

/// The adjoint of [`pad`] (its backward pass, without autograd): folds the gradient of a padded
/// tensor `dy` (`(N, C, padded…)`) back onto an input of spatial size `input`, adding every
/// padded position's gradient to the input position it was copied from.
pub(crate) fn pad_adjoint(
    dy: &Tensor,
    input: &[usize],
    pads: &[(usize, usize)],
    mode: PaddingMode,
) -> Result<Tensor> {
    const OP: &str = "pad_adjoint";
    let nd = pads.len();
    let (n, c, padded) = split_dims(OP, "gradient", dy, nd)?;
    let maps = pad_maps(OP, input, pads, mode)?;
    let out: Vec<usize> = maps.iter().map(Vec::len).collect();
    if out != padded {
        return Err(Error::Shape {
            op: OP,
            expected: format!(
                "gradient of spatial size {out:?} (input {input:?} padded by {pads:?})"
            ),
            got: dy.shape().clone(),
        });
    }
    let mut m3: [Vec<Option<usize>>; 3] = [vec![Some(0)], vec![Some(0)], vec![Some(0)]];
    for (i, m) in maps.into_iter().enumerate() {
        m3[3 - nd + i] = m;
    }
    let op = RemapOp {
        remap: Remap {
            ndim: nd,
            planes: n * c,
            input: to3(input, 1),
            maps: m3,
        },
        name: OP,
        adjoint: true,
    };
    let flat = dy.contiguous()?.reshape([vec![n * c], padded].concat())?;
    let dx = flat.apply_op1_no_bwd(&op).map_err(Error::from)?;
    Ok(dx.reshape([vec![n, c], input.to_vec()].concat())?)
}

/// PyTorch's `mode='nearest'` source index: `min(floor(dst · scale), in − 1)` in f32, with
/// `scale = 1/scale_factor` when a factor is given and `in/out` otherwise.
fn nearest_map(input: usize, output: usize, factor: Option<usize>) -> Vec<Option<usize>> {
    let scale = match factor {
        Some(f) => (1.0 / f as f64) as f32,
        None => input as f32 / output as f32,
    };
    (0..output)
        .map(|d| {
            let s = if output == input {
                d
            } else if output == 2 * input {
                d >> 1
            } else {
                ((d as f32 * scale).floor() as usize).min(input - 1)
            };
            Some(s)
        })
        .collect()
}

/// Nearest-neighbour resize of the spatial axes of an `(N, C, spatial…)` tensor to `size`
/// (one entry per spatial axis), PyTorch's `nn.Upsample(size=…, mode='nearest')` index rule
/// `src = floor(dst · in/out)`. Sizes may shrink as well as grow.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_ops::upsample_nearest;
///
/// let x = Tensor::new(&[[[1f32, 2.]]], &Device::Cpu)?;
/// let y = upsample_nearest(&x, &[5])?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [1., 1., 1., 2., 2.]);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn upsample_nearest(x: &Tensor, size: &[usize]) -> Result<Tensor> {
    const OP: &str = "upsample_nearest";
    let nd = size.len();
    if !(1..=3).contains(&nd) {
        return Err(invalid(
            OP,
            format!("need one target size per spatial axis (1–3 axes), got {nd}"),
        ));
    }
    let (_, _, input) = split_dims(OP, "input", x, nd)?;
    if size.contains(&0) || input.contains(&0) {
        return Err(invalid(
            OP,
            format!("sizes must be positive: input {input:?}, target {size:?}"),
        ));
    }
    let maps = input
        .iter()
        .zip(size)
        .map(|(&i, &o)| nearest_map(i, o, None))
        .collect();
    apply(OP, x, maps)
}

/// Nearest-neighbour upsampling of the spatial axes by integer factors (one per spatial axis),
/// PyTorch's `nn.Upsample(scale_factor=…, mode='nearest')`.
pub fn upsample_nearest_scale(x: &Tensor, scale: &[usize]) -> Result<Tensor> {
    const OP: &str = "upsample_nearest_scale";
    let nd = scale.len();
    if !(1..=3).contains(&nd) {
        return Err(invalid(
            OP,
            format!("need one scale factor per spatial axis (1–3 axes), got {nd}"),
        ));
    }
    let (_, _, input) = split_dims(OP, "input", x, nd)?;
    if scale.contains(&0) || input.contains(&0) {
        return Err(invalid(
            OP,
            format!(
                "scale factors and input sizes must be positive: scale {scale:?}, input {input:?}"
            ),
        ));
    }
    let maps = input
        .iter()
        .zip(scale)
        .map(|(&i, &f)| nearest_map(i, i * f, Some(f)))
        .collect();
    apply(OP, x, maps)
}
