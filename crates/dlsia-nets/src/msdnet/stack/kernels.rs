//! The element-wise passes of the stack operation, parallel over `(batch, channel)` planes.
//!
//! Buffers are `(N, C, S)` (`S` = spatial volume). Every pass reads a channel's raw map `r`
//! through the channel's [`ClampAffine`] map instead of a stored copy of its current value.
//! Per-channel sums are accumulated per plane in f64 and then added plane by plane in a fixed
//! order, so results do not depend on the thread count.

use candle_core::WithDType;
use rayon::prelude::*;

use super::affine::ClampAffine;

/// The element types the passes run on (f32, f64).
pub(crate) trait Elem: WithDType {
    /// `min(max(self, lo), hi)`.
    fn clamp_to(self, lo: Self, hi: Self) -> Self;
    /// `max(self, 0)`.
    fn relu(self) -> Self;
}

impl Elem for f32 {
    #[inline(always)]
    fn clamp_to(self, lo: Self, hi: Self) -> Self {
        self.max(lo).min(hi)
    }
    #[inline(always)]
    fn relu(self) -> Self {
        self.max(0.0)
    }
}

impl Elem for f64 {
    #[inline(always)]
    fn clamp_to(self, lo: Self, hi: Self) -> Self {
        self.max(lo).min(hi)
    }
    #[inline(always)]
    fn relu(self) -> Self {
        self.max(0.0)
    }
}

/// Shape of a stack buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planes {
    /// Batch size.
    pub n: usize,
    /// Channels of the buffer.
    pub c: usize,
    /// Spatial volume.
    pub s: usize,
}

impl Planes {
    /// Elements of the buffer.
    pub(crate) fn len(&self) -> usize {
        self.n * self.c * self.s
    }
    /// The plane of `(batch b, channel c)`.
    pub(crate) fn plane(&self, b: usize, c: usize) -> std::ops::Range<usize> {
        let start = (b * self.c + c) * self.s;
        start..start + self.s
    }
}

/// Adds per-plane sums channel by channel (planes are `(b, c)` for `b < n`, `c < channels`).
fn per_channel(partials: Vec<[f64; 2]>, channels: usize) -> Vec<[f64; 2]> {
    let mut out = vec![[0.0; 2]; channels];
    for (i, p) in partials.into_iter().enumerate() {
        let o = &mut out[i % channels];
        o[0] += p[0];
        o[1] += p[1];
    }
    out
}

/// `Σ v` and `Σ v²` of a slice, in f64 with four accumulators.
#[inline]
fn sums<T: Elem>(v: &[T]) -> [f64; 2] {
    let mut s1 = [0f64; 4];
    let mut s2 = [0f64; 4];
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            let x = c[k].to_f64();
            s1[k] += x;
            s2[k] += x * x;
        }
    }
    for &x in rest {
        let x = x.to_f64();
        s1[0] += x;
        s2[0] += x * x;
    }
    [s1.iter().sum(), s2.iter().sum()]
}

/// Writes `out[b, c] = f[c](r[b, c])` for the first `f.len()` channels of `r` into a new
/// `(N, f.len(), S)` buffer and returns, per channel, `[Σ t, Σ t²]` of `t = act(out)` (`act` is
/// ReLU when `relu`, else the identity).
pub(crate) fn materialize<T: Elem>(
    r: &[T],
    rp: Planes,
    f: &[ClampAffine],
    relu: bool,
) -> (Vec<T>, Vec<[f64; 2]>) {
    let oc = f.len();
    let mut out = vec![T::zero(); rp.n * oc * rp.s];
    if out.is_empty() {
        return (out, vec![[0.0; 2]; oc]);
    }
    let partials: Vec<[f64; 2]> = out
        .par_chunks_mut(rp.s)
        .enumerate()
        .map(|(i, o)| {
            let (b, c) = (i / oc, i % oc);
            let src = &r[rp.plane(b, c)];
            let [a, bb, lo, hi] = f[c].cast::<T>();
            for (o, &v) in o.iter_mut().zip(src) {
                *o = (v * a + bb).clamp_to(lo, hi);
            }
            if relu {
                // t = relu(z): sums of the clamped values with the lower bound raised to 0.
                let mut s1 = 0f64;
                let mut s2 = 0f64;
                for &z in o.iter() {
                    let t = z.relu().to_f64();
                    s1 += t;
                    s2 += t * t;
                }
                [s1, s2]
            } else {
                sums(o)
            }
        })
        .collect();
    (out, per_channel(partials, oc))
}

/// Copies `y` (`(N, 1, S)`, one new channel) plus `bias` into channel `c` of `r` and returns
/// `[Σ t, Σ t²]` of `t = act(y + bias)`.
pub(crate) fn store_new_channel<T: Elem>(
    r: &mut [T],
    rp: Planes,
    c: usize,
    y: &[T],
    bias: T,
    relu: bool,
) -> [f64; 2] {
    let mut total = [0.0; 2];
    for b in 0..rp.n {
        let dst = &mut r[rp.plane(b, c)];
        let src = &y[b * rp.s..(b + 1) * rp.s];
        let part: Vec<[f64; 2]> = dst
            .par_chunks_mut(4096)
            .zip(src.par_chunks(4096))
            .map(|(d, s)| {
                let mut s1 = 0f64;
                let mut s2 = 0f64;
                for (d, &v) in d.iter_mut().zip(s) {
                    *d = v + bias;
                    let t = if relu { d.relu() } else { *d }.to_f64();
                    s1 += t;
                    s2 += t * t;
                }
                [s1, s2]
            })
            .collect();
        for p in part {
            total[0] += p[0];
            total[1] += p[1];
        }
    }
    total
}

/// What the backward passes of one layer know about each channel `c < C_{k+1}`.
pub(crate) struct LayerGrad<'a> {
    /// The channel's value entering the layer's activation, as a map of its raw map.
    pub pre: &'a [ClampAffine],
    /// Whether the activation is ReLU (else the identity).
    pub relu: bool,
    /// Normalisation: `(mean, 1/std)` the layer normalised with, per channel (absent without
    /// normalisation).
    pub norm: Option<(&'a [f64], &'a [f64])>,
}

impl LayerGrad<'_> {
    /// `(z, t̂)` for one raw value: the pre-activation and the normalised activation.
    #[inline(always)]
    fn values<T: Elem>(v: T, m: [T; 4], mean: T, inv: T, relu: bool) -> (T, T) {
        let z = (v * m[0] + m[1]).clamp_to(m[2], m[3]);
        let t = if relu { z.relu() } else { z };
        (z, (t - mean) * inv)
    }
}

/// Per channel `c < pre.len()`: `[Σ g, Σ g·t̂]` with `g = G + D` (`D`, the pending input
/// gradient of the next layer's convolutions, has `pre.len()` channels).
pub(crate) fn backward_sums<T: Elem>(
    r: &[T],
    g: &[T],
    rp: Planes,
    d: Option<&[T]>,
    lg: &LayerGrad,
) -> Vec<[f64; 2]> {
    let ch = lg.pre.len();
    let partials: Vec<[f64; 2]> = (0..rp.n * ch)
        .into_par_iter()
        .map(|i| {
            let (b, c) = (i / ch, i % ch);
            let (rs, gs) = (&r[rp.plane(b, c)], &g[rp.plane(b, c)]);
            let ds = d.map(|d| &d[(b * ch + c) * rp.s..][..rp.s]);
            let Some((mean, inv)) = lg.norm else {
                let sg = match ds {
                    Some(ds) => gs.iter().zip(ds).map(|(&a, &b)| (a + b).to_f64()).sum(),
                    None => gs.iter().map(|&a| a.to_f64()).sum(),
                };
                return [sg, 0.0];
            };
            let m = lg.pre[c].cast::<T>();
            let (mu, iv) = (T::from_f64(mean[c]), T::from_f64(inv[c]));
            let mut s1 = 0f64;
            let mut s2 = 0f64;
            for (j, (&v, &gv)) in rs.iter().zip(gs).enumerate() {
                let gv = match ds {
                    Some(ds) => gv + ds[j],
                    None => gv,
                };
                let (_, th) = LayerGrad::values(v, m, mu, iv, lg.relu);
                let gf = gv.to_f64();
                s1 += gf;
                s2 += gf * th.to_f64();
            }
            [s1, s2]
        })
        .collect();
    per_channel(partials, ch)
}

/// Per-channel coefficients of the backward pass through `act → normalisation`:
/// `dL/dz = mask(z)·scale·(g − m1 − t̂·m2)`.
pub(crate) struct ApplyCoef<'a> {
    pub scale: &'a [f64],
    pub m1: &'a [f64],
    pub m2: &'a [f64],
}

/// Replaces `G[b, c]` (for `c < pre.len()`) by the gradient with respect to the layer's
/// pre-activation values, `mask(z)·scale·(G + D − m1 − t̂·m2)`, and writes the layer's
/// convolution input (the pre-activation values of channels `c < in_ch`) into a new
/// `(N, in_ch, S)` buffer, which it returns.
pub(crate) fn backward_apply<T: Elem>(
    r: &[T],
    g: &mut [T],
    rp: Planes,
    d: Option<&[T]>,
    lg: &LayerGrad,
    coef: &ApplyCoef,
    in_ch: usize,
) -> Vec<T> {
    let ch = lg.pre.len();
    let mut h = vec![T::zero(); rp.n * in_ch * rp.s];
    let hp = SyncPtr(h.as_mut_ptr());
    g.par_chunks_mut(rp.s)
        .enumerate()
        .filter(|(i, _)| i % rp.c < ch)
        .for_each(|(i, gs)| {
            let (b, c) = (i / rp.c, i % rp.c);
            let rs = &r[rp.plane(b, c)];
            let ds = d.map(|d| &d[(b * ch + c) * rp.s..][..rp.s]);
            // SAFETY: plane (b, c) of `h` is written by this job only; `h` outlives the loop.
            let hs = (c < in_ch).then(|| unsafe {
                std::slice::from_raw_parts_mut(hp.get().add((b * in_ch + c) * rp.s), rp.s)
            });
            let m = lg.pre[c].cast::<T>();
            let (mu, iv) = match lg.norm {
                Some((mean, inv)) => (T::from_f64(mean[c]), T::from_f64(inv[c])),
                None => (T::zero(), T::one()),
            };
            let (sc, m1, m2) = (
                T::from_f64(coef.scale[c]),
                T::from_f64(coef.m1[c]),
                T::from_f64(coef.m2[c]),
            );
            let mut hs = hs;
            for (j, (gv, &v)) in gs.iter_mut().zip(rs).enumerate() {
                let gt = match ds {
                    Some(ds) => *gv + ds[j],
                    None => *gv,
                };
                let (z, th) = LayerGrad::values(v, m, mu, iv, lg.relu);
                let pass = !lg.relu || z > T::zero();
                *gv = if pass {
                    sc * (gt - m1 - th * m2)
                } else {
                    T::zero()
                };
                if let Some(hs) = hs.as_deref_mut() {
                    hs[j] = z;
                }
            }
        });
    h
}

/// Channel `c` of `g` (`(N, 1, S)` copy) and its sum.
pub(crate) fn gather_channel<T: Elem>(g: &[T], rp: Planes, c: usize) -> (Vec<T>, f64) {
    let mut out = Vec::with_capacity(rp.n * rp.s);
    for b in 0..rp.n {
        out.extend_from_slice(&g[rp.plane(b, c)]);
    }
    let s = out.par_chunks(4096).map(|v| sums(v)[0]).sum::<f64>();
    (out, s)
}

/// A raw pointer shared by jobs that write disjoint planes.
#[derive(Clone, Copy)]
struct SyncPtr<T>(*mut T);
// SAFETY: only used for disjoint writes inside one parallel loop whose buffer outlives it.
unsafe impl<T: Send> Send for SyncPtr<T> {}
unsafe impl<T: Send> Sync for SyncPtr<T> {}
impl<T> SyncPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materialize_applies_maps_and_sums_activations() {
        let rp = Planes { n: 2, c: 3, s: 5 };
        let r: Vec<f64> = (0..rp.len()).map(|i| i as f64 * 0.1 - 1.0).collect();
        let f = [
            ClampAffine::IDENTITY,
            ClampAffine::IDENTITY.relu().then_affine(2.0, -0.5),
        ];
        let (out, s) = materialize(&r, rp, &f, true);
        assert_eq!(out.len(), 2 * 2 * 5);
        let mut want = [[0.0; 2]; 2];
        for b in 0..2 {
            for c in 0..2 {
                for j in 0..5 {
                    let v = r[(b * 3 + c) * 5 + j];
                    let z = f[c].eval(v);
                    assert!((out[(b * 2 + c) * 5 + j] - z).abs() < 1e-15);
                    let t = z.max(0.0);
                    want[c][0] += t;
                    want[c][1] += t * t;
                }
            }
        }
        for c in 0..2 {
            assert!((s[c][0] - want[c][0]).abs() < 1e-12 && (s[c][1] - want[c][1]).abs() < 1e-12);
        }
    }
}
