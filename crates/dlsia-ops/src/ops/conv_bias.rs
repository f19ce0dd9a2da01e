//! A convolution (or transposed convolution) with its bias added inside the op, on the CPU.
//!
//! As two graph nodes (convolution, then `channel_affine` for the bias), a training step pays
//! for an extra full-size output, an extra pass over it forward and, in Candle's autograd, a
//! zero-filled gradient accumulator plus an addition backward. Here the bias is added in place
//! to the convolution's fresh output and its gradient is one reduction of the output gradient.
//! Values and gradients are those of the two-node composition, bit for bit.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::conv::{ConvKind, ConvOp};
use super::{expect_dims, with_real};
use crate::kernels::channel::{per_channel_sums, Planes};
use crate::kernels::{slice_of, Real};

/// Planes of the tensor a [`ConvOp`] produces.
fn out_planes(op: &ConvOp) -> Planes {
    let d = match op.kind {
        ConvKind::Forward => op.geom.y_dims(),
        _ => op.geom.x_dims(),
    };
    Planes {
        n: d[0],
        c: d[1],
        s: d[2..].iter().product(),
    }
}

/// `(x, w, b) → conv(x, w) + b[c]` for a forward or data-gradient (transposed) [`ConvOp`].
#[derive(Debug, Clone)]
pub(crate) struct BiasedConvOp(pub ConvOp);

impl BiasedConvOp {
    #[allow(clippy::too_many_arguments)]
    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = CustomOp3::name(self);
        let p = out_planes(&self.0);
        expect_dims(name, "bias", l3, &[p.c])?;
        let b = slice_of::<T>(s3, l3, name)?;
        let (storage, shape) = self.0.cpu_fwd(s1, l1, s2, l2)?;
        let mut y = T::cpu_storage_data(storage)?;
        y.par_chunks_mut(p.s.max(1))
            .enumerate()
            .for_each(|(i, yp)| {
                let bc = b[i % p.c];
                // `y·1 + b`, as the separate bias op computes it.
                for v in yp {
                    *v = *v * T::ONE + bc;
                }
            });
        Ok((T::to_cpu_storage_owned(y), shape))
    }
}

impl CustomOp3 for BiasedConvOp {
    fn name(&self) -> &'static str {
        match self.0.kind {
            ConvKind::Forward => "dlsia-conv-bias",
            _ => "dlsia-conv-transpose-bias",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(CustomOp3::name(self), s3, T => self.run::<T>(s1, l1, s2, l2, s3, l3))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let (dx, dw) = self.0.bwd(x, w, res, &g)?;
        let db = g.apply_op1_no_bwd(&ChannelSumOp(out_planes(&self.0)))?;
        Ok((dx, dw, Some(db)))
    }
}

/// `g → Σ g` per channel, `(C,)`, accumulated in f64 per plane, then per channel in plane
/// order (as the bias gradient of `channel_affine`).
#[derive(Debug, Clone)]
struct ChannelSumOp(Planes);

impl ChannelSumOp {
    fn run<T: Real>(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        let p = self.0;
        if l.shape().elem_count() != p.n * p.c * p.s {
            candle_core::bail!("{name}: gradient has shape {:?}, expected {p:?}", l.dims());
        }
        let g = slice_of::<T>(s, l, name)?;
        let sums = per_channel_sums::<1>(p, |i, _| {
            [g[i * p.s..(i + 1) * p.s].iter().map(|v| v.to_f64()).sum()]
        });
        let out: Vec<T> = sums.iter().map(|v| T::from_f64(v[0])).collect();
        Ok((T::to_cpu_storage_owned(out), Shape::from(p.c)))
    }
}

impl CustomOp1 for ChannelSumOp {
    fn name(&self) -> &'static str {
        "dlsia-channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(self.name(), s, T => self.run::<T>(s, l))
    }
}
