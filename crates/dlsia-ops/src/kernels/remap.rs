//! Gathers and scatter-adds through per-axis index maps: the kernels of explicit padding
//! (all modes) and nearest-neighbour upsampling.
//!
//! Output position `(d, h, w)` reads input position `(map_d[d], map_h[h], map_w[w])`, or zero
//! when any map entry is `None`. The backward pass adds each output gradient to the input
//! position it read, so inputs read several times (reflections, upsampling) sum their
//! gradients.

use rayon::prelude::*;

use super::{volume, Real};

/// Per-axis index maps from output to input positions, normalised to three axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remap {
    /// Number of spatial axes of the caller's tensors.
    pub ndim: usize,
    /// Number of `(batch, channel)` planes.
    pub planes: usize,
    /// Input spatial size.
    pub input: [usize; 3],
    /// For each axis and output position, the input position read (or `None` for zero).
    pub maps: [Vec<Option<usize>>; 3],
}

impl Remap {
    /// Output spatial size.
    pub(crate) fn output(&self) -> [usize; 3] {
        [self.maps[0].len(), self.maps[1].len(), self.maps[2].len()]
    }
}

/// `y[p, d, h, w] = x[p, map_d[d], map_h[h], map_w[w]]` (zero where a map is `None`).
pub(crate) fn gather<T: Real>(r: &Remap, x: &[T]) -> Vec<T> {
    let (ip, out) = (volume(&r.input), r.output());
    let op = volume(&out);
    let mut y = super::zeroed::<T>(r.planes * op);
    if op == 0 || ip == 0 {
        return y;
    }
    let (ih, iw) = (r.input[1], r.input[2]);
    y.par_chunks_mut(op)
        .zip(x.par_chunks(ip))
        .for_each(|(yp, xp)| {
            for (od, md) in r.maps[0].iter().enumerate() {
                for (oh, mh) in r.maps[1].iter().enumerate() {
                    let yrow = &mut yp[(od * out[1] + oh) * out[2]..][..out[2]];
                    let (Some(d), Some(h)) = (md, mh) else {
                        continue; // already zero
                    };
                    let xrow = &xp[(d * ih + h) * iw..][..iw];
                    for (y, mw) in yrow.iter_mut().zip(&r.maps[2]) {
                        if let Some(w) = mw {
                            *y = xrow[*w];
                        }
                    }
                }
            }
        });
    y
}

/// The adjoint of [`gather`]: `dx[p, map(d, h, w)] += dy[p, d, h, w]`.
pub(crate) fn scatter_add<T: Real>(r: &Remap, dy: &[T]) -> Vec<T> {
    let (ip, out) = (volume(&r.input), r.output());
    let op = volume(&out);
    let mut dx = super::zeroed::<T>(r.planes * ip);
    if op == 0 || ip == 0 {
        return dx;
    }
    let (ih, iw) = (r.input[1], r.input[2]);
    dx.par_chunks_mut(ip)
        .zip(dy.par_chunks(op))
        .for_each(|(dxp, dyp)| {
            for (od, md) in r.maps[0].iter().enumerate() {
                for (oh, mh) in r.maps[1].iter().enumerate() {
                    let (Some(d), Some(h)) = (md, mh) else {
                        continue;
                    };
                    let yrow = &dyp[(od * out[1] + oh) * out[2]..][..out[2]];
                    let xrow = &mut dxp[(d * ih + h) * iw..][..iw];
                    for (g, mw) in yrow.iter().zip(&r.maps[2]) {
                        if let Some(w) = mw {
                            xrow[*w] += *g;
                        }
                    }
                }
            }
        });
    dx
}
