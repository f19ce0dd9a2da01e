//! Max pooling (PyTorch floor mode, implicit −∞ padding), forward and backward.
//!
//! The backward pass sends each window's gradient to one element: the first maximum in scan
//! order, or the last NaN if the window holds one — PyTorch's CPU rule. It recomputes the
//! winners from the input instead of storing indices.

use rayon::prelude::*;

use super::{volume, Real};

/// The geometry of one pooling, normalised to three spatial axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolGeom {
    /// Number of spatial axes of the caller's tensors.
    pub ndim: usize,
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input spatial size.
    pub input: [usize; 3],
    /// Output spatial size.
    pub output: [usize; 3],
    /// Window size.
    pub kernel: [usize; 3],
    /// Stride.
    pub stride: [usize; 3],
    /// Padding before (and after) each axis.
    pub pad: [usize; 3],
}

impl PoolGeom {
    /// Dims of the output tensor.
    pub(crate) fn y_dims(&self) -> Vec<usize> {
        [vec![self.n, self.c], self.output[3 - self.ndim..].to_vec()].concat()
    }

    /// The input range of window `o` on axis `i` (clipped to the input).
    #[inline]
    fn window(&self, i: usize, o: usize) -> (usize, usize) {
        let start = (o * self.stride[i]) as isize - self.pad[i] as isize;
        let end = (start + self.kernel[i] as isize).min(self.input[i] as isize);
        (start.max(0) as usize, end.max(0) as usize)
    }

    /// Index (within the plane) and value of the winner of window `(od, oh, ow)`.
    #[inline]
    fn winner<T: Real>(&self, xp: &[T], od: usize, oh: usize, ow: usize) -> (usize, T) {
        let (d0, d1) = self.window(0, od);
        let (h0, h1) = self.window(1, oh);
        let (w0, w1) = self.window(2, ow);
        let (ih, iw) = (self.input[1], self.input[2]);
        let mut best = T::NEG_INFINITY;
        let mut arg = (d0 * ih + h0) * iw + w0;
        for d in d0..d1 {
            for h in h0..h1 {
                let row = (d * ih + h) * iw;
                for (w, &v) in xp[row + w0..row + w1].iter().enumerate() {
                    if v > best || v.is_nan_value() {
                        best = v;
                        arg = row + w0 + w;
                    }
                }
            }
        }
        (arg, best)
    }
}

/// `y = max_pool(x)`; `x` is `n·c` planes of `input`.
pub(crate) fn forward<T: Real>(g: &PoolGeom, x: &[T]) -> Vec<T> {
    let (ip, op) = (volume(&g.input), volume(&g.output));
    let mut y = vec![T::ZERO; g.n * g.c * op];
    if op == 0 {
        return y;
    }
    y.par_chunks_mut(op)
        .zip(x.par_chunks(ip.max(1)))
        .for_each(|(yp, xp)| {
            let mut k = 0;
            for od in 0..g.output[0] {
                for oh in 0..g.output[1] {
                    for ow in 0..g.output[2] {
                        yp[k] = g.winner(xp, od, oh, ow).1;
                        k += 1;
                    }
                }
            }
        });
    y
}

/// The input gradient of [`forward`] for the output gradient `dy`.
pub(crate) fn backward<T: Real>(g: &PoolGeom, x: &[T], dy: &[T]) -> Vec<T> {
    let (ip, op) = (volume(&g.input), volume(&g.output));
    let mut dx = vec![T::ZERO; g.n * g.c * ip];
    if op == 0 || ip == 0 {
        return dx;
    }
    dx.par_chunks_mut(ip)
        .zip(x.par_chunks(ip).zip(dy.par_chunks(op)))
        .for_each(|(dxp, (xp, dyp))| {
            let mut k = 0;
            for od in 0..g.output[0] {
                for oh in 0..g.output[1] {
                    for ow in 0..g.output[2] {
                        let (arg, _) = g.winner(xp, od, oh, ow);
                        dxp[arg] += dyp[k];
                        k += 1;
                    }
                }
            }
        });
    dx
}
