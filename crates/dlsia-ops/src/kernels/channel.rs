//! Per-channel kernels on contiguous `(N, C, S)` buffers (`S` = spatial volume): statistics,
//! affine maps and their backward passes, parallel over the `N·C` planes, accumulating in f64.
//!
//! They replace chains of broadcast operations whose backward passes go through Candle's generic
//! strided reductions (the dominant cost of a BatchNorm network's training step).

use rayon::prelude::*;

use super::{par_output, Real};

/// Shape of a per-channel problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planes {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Elements per plane (spatial volume).
    pub s: usize,
}

impl Planes {
    /// Elements per channel over the whole batch.
    pub(crate) fn per_channel(&self) -> usize {
        self.n * self.s
    }
}

/// Sums `f(plane, channel)` over the planes of each channel: per-plane values in parallel, then
/// a sequential sum per channel (deterministic order).
pub(crate) fn per_channel_sums<const K: usize>(
    p: Planes,
    f: impl Fn(usize, usize) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let per_plane: Vec<[f64; K]> = (0..p.n * p.c)
        .into_par_iter()
        .map(|i| f(i, i % p.c))
        .collect();
    let mut out = vec![[0.0; K]; p.c];
    for (i, v) in per_plane.iter().enumerate() {
        for k in 0..K {
            out[i % p.c][k] += v[k];
        }
    }
    out
}

/// Mean and biased variance of every channel (two passes: mean, then squared deviations).
pub(crate) fn stats<T: Real>(p: Planes, x: &[T]) -> (Vec<f64>, Vec<f64>) {
    let m = p.per_channel() as f64;
    let sums = per_channel_sums::<1>(p, |i, _| {
        [x[i * p.s..(i + 1) * p.s].iter().map(|v| v.to_f64()).sum()]
    });
    let mean: Vec<f64> = sums.iter().map(|s| s[0] / m).collect();
    let sq = per_channel_sums::<1>(p, |i, c| {
        let mu = mean[c];
        [x[i * p.s..(i + 1) * p.s]
            .iter()
            .map(|v| {
                let d = v.to_f64() - mu;
                d * d
            })
            .sum()]
    });
    let var = sq.iter().map(|s| s[0] / m).collect();
    (mean, var)
}

/// `y = x·a[c] + b[c]`.
pub(crate) fn affine<T: Real>(p: Planes, x: &[T], a: &[f64], b: &[f64]) -> Vec<T> {
    let s = p.s.max(1);
    par_output(x.len(), s, |i, yp| {
        let c = i % p.c;
        let (ac, bc) = (T::from_f64(a[c]), T::from_f64(b[c]));
        for (o, &v) in yp.iter_mut().zip(&x[i * s..(i + 1) * s]) {
            o.write(v * ac + bc);
        }
    })
    .0
}

/// Per-channel `(Σ g, Σ g·x)`.
pub(crate) fn grad_sums<T: Real>(p: Planes, x: &[T], g: &[T]) -> (Vec<f64>, Vec<f64>) {
    let s = per_channel_sums::<2>(p, |i, _| {
        let (xp, gp) = (&x[i * p.s..(i + 1) * p.s], &g[i * p.s..(i + 1) * p.s]);
        let mut acc = [0.0f64; 2];
        for (&xv, &gv) in xp.iter().zip(gp) {
            let gv = gv.to_f64();
            acc[0] += gv;
            acc[1] += gv * xv.to_f64();
        }
        acc
    });
    (
        s.iter().map(|v| v[0]).collect(),
        s.iter().map(|v| v[1]).collect(),
    )
}

/// Per-channel quantities of the batch-norm input gradient.
pub(crate) struct BnGrad<'a> {
    /// Batch mean μ.
    pub mean: &'a [f64],
    /// Reciprocal standard deviation r = 1/√(σ² + eps).
    pub rstd: &'a [f64],
    /// k = weight·r.
    pub k: &'a [f64],
    /// Σ g.
    pub sum_g: &'a [f64],
    /// Σ g·x̂.
    pub sum_gx: &'a [f64],
}

/// Batch-norm input gradient: with `x̂ = (x − μ[c])·r[c]`,
/// `dx = k[c]·(g − Σg/M − x̂·Σ(g·x̂)/M)` where `M = N·S`.
pub(crate) fn batch_norm_dx<T: Real>(p: Planes, x: &[T], g: &[T], q: &BnGrad) -> Vec<T> {
    let BnGrad {
        mean,
        rstd,
        k,
        sum_g,
        sum_gx,
    } = *q;
    let m = p.per_channel() as f64;
    let s = p.s.max(1);
    par_output(x.len(), s, |i, dp| {
        let (xp, gp) = (&x[i * s..(i + 1) * s], &g[i * s..(i + 1) * s]);
        let c = i % p.c;
        // dx = k·g − k·Σg/M − k·r·Σgx̂/M·(x − μ) = α·g + β·x + γ
        let alpha = k[c];
        let beta = -k[c] * rstd[c] * sum_gx[c] / m;
        let gamma = -k[c] * sum_g[c] / m - beta * mean[c];
        let (a, b, cc) = (T::from_f64(alpha), T::from_f64(beta), T::from_f64(gamma));
        for ((o, &xv), &gv) in dp.iter_mut().zip(xp).zip(gp) {
            o.write(a * gv + b * xv + cc);
        }
    })
    .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_sums_match_direct_formulas() {
        let p = Planes { n: 2, c: 3, s: 4 };
        let x: Vec<f64> = (0..24).map(|i| ((i * 7 % 11) as f64) * 0.5 - 2.0).collect();
        let g: Vec<f64> = (0..24)
            .map(|i| ((i * 5 % 13) as f64) * 0.25 - 1.0)
            .collect();
        let (mean, var) = stats(p, &x);
        let (sg, sgx) = grad_sums(p, &x, &g);
        for c in 0..3 {
            let idx: Vec<usize> = (0..2)
                .flat_map(|n| (0..4).map(move |s| (n * 3 + c) * 4 + s))
                .collect();
            let mu = idx.iter().map(|&i| x[i]).sum::<f64>() / 8.0;
            let v = idx.iter().map(|&i| (x[i] - mu).powi(2)).sum::<f64>() / 8.0;
            assert!((mean[c] - mu).abs() < 1e-12 && (var[c] - v).abs() < 1e-12);
            assert!((sg[c] - idx.iter().map(|&i| g[i]).sum::<f64>()).abs() < 1e-12);
            assert!((sgx[c] - idx.iter().map(|&i| g[i] * x[i]).sum::<f64>()).abs() < 1e-12);
        }
        let y = affine(p, &x, &[1.0, 2.0, -0.5], &[0.0, 1.0, 0.5]);
        assert_eq!(y[4], x[4] * 2.0 + 1.0);
        assert_eq!(y[20], x[20] * -0.5 + 0.5);
    }
}
