//! Per-channel normalisation of the new channels: statistics, the forward transform
//! `relu(a·z + c)` and the backward transform of the gradient, on `(N, slots, plane)` buffers.
//!
//! Sums run in `f64` over a fixed partition, so results do not depend on the thread count.

use rayon::prelude::*;

use super::simd::Float;

/// Where a unit's plane lives: `(b·stride + slot)·plane`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planes {
    /// Batch size.
    pub n: usize,
    /// Planes per batch item.
    pub stride: usize,
    /// Elements per plane.
    pub plane: usize,
}

impl Planes {
    fn at(&self, b: usize, slot: usize) -> usize {
        (b * self.stride + slot) * self.plane
    }
}

/// Statistics used to normalise one new channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    /// Mean.
    pub mean: f64,
    /// Variance (biased for batch statistics).
    pub var: f64,
}

/// Mean and biased variance of the plane `slot` over the batch (two passes).
pub(crate) fn batch_stats<T: Float>(buf: &[T], pl: Planes, slot: usize) -> Stats {
    let sum = |f: &(dyn Fn(f64) -> f64 + Sync)| -> f64 {
        (0..pl.n)
            .into_par_iter()
            .map(|b| {
                buf[pl.at(b, slot)..][..pl.plane]
                    .iter()
                    .map(|&v| f(v.into()))
                    .sum::<f64>()
            })
            .collect::<Vec<f64>>()
            .iter()
            .sum()
    };
    let m = (pl.n * pl.plane) as f64;
    let mean = sum(&|v| v) / m;
    let var = sum(&|v| (v - mean) * (v - mean)) / m;
    Stats { mean, var }
}

/// `buf[slot] ← relu(γ·(buf[slot] − mean)/√(var + eps) + β)` for every batch item.
pub(crate) fn normalize_relu<T: Float>(
    buf: &mut [T],
    pl: Planes,
    slot: usize,
    s: Stats,
    eps: f64,
    gamma: f64,
    beta: f64,
) {
    let a = gamma / (s.var + eps).sqrt();
    let (a, c) = (T::of(a), T::of(beta - a * s.mean));
    for b in 0..pl.n {
        let start = pl.at(b, slot);
        buf[start..start + pl.plane]
            .par_chunks_mut(4096)
            .for_each(|ch| {
                for v in ch {
                    *v = (a * *v + c).relu();
                }
            });
    }
}

/// Gradient sums of one normalised unit and the gradient it passes on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NormGrads {
    /// `∂L/∂γ`.
    pub gamma: f64,
    /// `∂L/∂β`.
    pub beta: f64,
}

/// Turns the masked output gradient `gy` (in `grad[slot]`) into the gradient of the
/// pre-normalisation value `z` (in `z[zslot]`), in place, and returns `∂L/∂γ`, `∂L/∂β`.
///
/// With batch statistics: `dz = γ/σ·(gy − mean(gy) − x̂·mean(gy·x̂))`; with running
/// statistics: `dz = γ/σ·gy`, where `x̂ = (z − μ)/σ` and `σ = √(var + eps)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Float>(
    grad: &mut [T],
    gp: Planes,
    slot: usize,
    z: &[T],
    zp: Planes,
    zslot: usize,
    s: Stats,
    eps: f64,
    gamma: f64,
    batch: bool,
) -> NormGrads {
    let inv = 1.0 / (s.var + eps).sqrt();
    let mut dbeta = 0.0;
    let mut dgamma = 0.0;
    for b in 0..gp.n {
        let g = &grad[gp.at(b, slot)..][..gp.plane];
        let zz = &z[zp.at(b, zslot)..][..zp.plane];
        for (&gv, &zv) in g.iter().zip(zz) {
            let gv: f64 = gv.into();
            let zv: f64 = zv.into();
            dbeta += gv;
            dgamma += gv * (zv - s.mean) * inv;
        }
    }
    let m = (gp.n * gp.plane) as f64;
    let k = gamma * inv;
    let (mb, mg) = if batch {
        (dbeta / m, dgamma / m)
    } else {
        (0.0, 0.0)
    };
    for b in 0..gp.n {
        let start = gp.at(b, slot);
        let g = &mut grad[start..start + gp.plane];
        let zz = &z[zp.at(b, zslot)..][..zp.plane];
        g.par_chunks_mut(4096)
            .zip(zz.par_chunks(4096))
            .for_each(|(gc, zc)| {
                for (gv, &zv) in gc.iter_mut().zip(zc) {
                    let xh = (Into::<f64>::into(zv) - s.mean) * inv;
                    *gv = T::of(k * (Into::<f64>::into(*gv) - mb - xh * mg));
                }
            });
    }
    NormGrads {
        gamma: dgamma,
        beta: dbeta,
    }
}
