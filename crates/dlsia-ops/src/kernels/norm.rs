//! Per-channel normalisation kernels (batch normalisation): statistics, the affine apply and
//! its gradient, two passes over the data each.
//!
//! `x` is `n × c × len` (contiguous). Work is split into `(channel, sample)` items whose partial
//! sums are combined per channel in sample order, so results do not depend on scheduling.

use rayon::prelude::*;

use super::{Real, SyncPtr};

/// Shape of a normalisation: `n` samples, `c` channels, `len` positions per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NormShape {
    pub n: usize,
    pub c: usize,
    pub len: usize,
}

/// `(Σ f(a_i, b_i).0, Σ f(a_i, b_i).1)` with 8 independent lanes per block of 1024 elements (so
/// the loop vectorises), blocks summed in f64.
#[inline]
fn sum2<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> (T, T)) -> (f64, f64) {
    let (mut t1, mut t2) = (0.0f64, 0.0f64);
    for (ca, cb) in a.chunks(1024).zip(b.chunks(1024)) {
        let (mut l1, mut l2) = ([T::ZERO; 8], [T::ZERO; 8]);
        let mut ia = ca.chunks_exact(8);
        let mut ib = cb.chunks_exact(8);
        for (va, vb) in (&mut ia).zip(&mut ib) {
            for k in 0..8 {
                let (p, q) = f(va[k], vb[k]);
                l1[k] += p;
                l2[k] += q;
            }
        }
        for (&x, &y) in ia.remainder().iter().zip(ib.remainder()) {
            let (p, q) = f(x, y);
            l1[0] += p;
            l2[0] += q;
        }
        t1 += l1.iter().map(|v| v.to_f64()).sum::<f64>();
        t2 += l2.iter().map(|v| v.to_f64()).sum::<f64>();
    }
    (t1, t2)
}

/// Per-channel mean and biased variance (in f64).
pub(crate) fn channel_stats<T: Real>(s: NormShape, x: &[T]) -> (Vec<f64>, Vec<f64>) {
    // Shifted sums (by the channel's first value) keep E[x²] − E[x]² accurate.
    let shift: Vec<f64> = (0..s.c)
        .map(|c| {
            if s.len > 0 {
                x[c * s.len].to_f64()
            } else {
                0.0
            }
        })
        .collect();
    let parts: Vec<(f64, f64)> = (0..s.c * s.n)
        .into_par_iter()
        .map(|item| {
            let (c, n) = (item / s.n, item % s.n);
            let seg = &x[(n * s.c + c) * s.len..][..s.len];
            let sh = T::from_f64(shift[c]);
            sum2(seg, seg, |v, _| {
                let d = v - sh;
                (d, d * d)
            })
        })
        .collect();
    let m = (s.n * s.len) as f64;
    let mut mean = vec![0.0; s.c];
    let mut var = vec![0.0; s.c];
    for c in 0..s.c {
        let (s1, s2) = parts[c * s.n..(c + 1) * s.n]
            .iter()
            .fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
        let mu = s1 / m;
        mean[c] = shift[c] + mu;
        var[c] = (s2 / m - mu * mu).max(0.0);
    }
    (mean, var)
}

/// `y = x·scale[c] + shift[c]`.
pub(crate) fn apply<T: Real>(s: NormShape, x: &[T], scale: &[T], shift: &[T]) -> Vec<T> {
    let mut y = super::zeroed::<T>(s.n * s.c * s.len);
    if s.len == 0 {
        return y;
    }
    y.par_chunks_mut(s.len)
        .zip(x.par_chunks(s.len))
        .enumerate()
        .for_each(|(i, (yo, xi))| {
            let (a, b) = (scale[i % s.c], shift[i % s.c]);
            for (o, &v) in yo.iter_mut().zip(xi) {
                *o = v * a + b;
            }
        });
    y
}

/// Per-channel `Σ dy` and `Σ dy·(x − mean)` (in f64).
pub(crate) fn grad_sums<T: Real>(
    s: NormShape,
    x: &[T],
    dy: &[T],
    mean: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let parts: Vec<(f64, f64)> = (0..s.c * s.n)
        .into_par_iter()
        .map(|item| {
            let (c, n) = (item / s.n, item % s.n);
            let off = (n * s.c + c) * s.len;
            let mu = T::from_f64(mean[c]);
            sum2(&dy[off..off + s.len], &x[off..off + s.len], |g, v| {
                (g, g * (v - mu))
            })
        })
        .collect();
    let mut sdy = vec![0.0; s.c];
    let mut sdyx = vec![0.0; s.c];
    for c in 0..s.c {
        for p in &parts[c * s.n..(c + 1) * s.n] {
            sdy[c] += p.0;
            sdyx[c] += p.1;
        }
    }
    (sdy, sdyx)
}

/// `dx = a[c]·dy + b[c]·x + k[c]`.
pub(crate) fn combine<T: Real>(
    s: NormShape,
    x: &[T],
    dy: &[T],
    a: &[T],
    b: &[T],
    k: &[T],
) -> Vec<T> {
    let mut dx = super::zeroed::<T>(s.n * s.c * s.len);
    if s.len == 0 {
        return dx;
    }
    let ptr = SyncPtr::new(&mut dx);
    (0..s.n * s.c).into_par_iter().for_each(|i| {
        let c = i % s.c;
        let off = i * s.len;
        // SAFETY: item i owns dx[off..off + len].
        let out = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(off), s.len) };
        for ((o, &g), &v) in out
            .iter_mut()
            .zip(&dy[off..off + s.len])
            .zip(&x[off..off + s.len])
        {
            *o = a[c] * g + b[c] * v + k[c];
        }
    });
    dx
}
