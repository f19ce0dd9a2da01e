//! Training-mode batch normalisation fused with a preceding per-channel bias and a
//! (leaky-)ReLU, before or after the normalisation, on contiguous `(N, C, S)` buffers.
//!
//! The unfused chain `conv bias → BatchNorm → ReLU` (TUNet) or `conv bias → ReLU → BatchNorm`
//! (MSAE) costs four full-size tensors forward and, in Candle's autograd, a dozen full-size
//! passes backward (ReLU masks, comparisons, dtype casts, gradient accumulation per node). Here
//! the forward pass is two statistics passes and one output pass, the backward pass two passes,
//! each parallel over the `N·C` planes. Intermediates (biased input, pre-activation) are
//! recomputed from the input instead of stored.
//!
//! Every element-wise step is computed in `T` exactly as the unfused composition computes it
//! (`x + b₀`, `u·a + sh`, `z·slope`), and every reduction in f64 per plane, then per channel in
//! plane order, as [`super::channel`] does, so the results equal the unfused ops' bit for bit
//! (except for a pre-activation exactly 0, where the gradient follows PyTorch: 0).

use super::channel::{per_channel_sums, Planes};
use super::{par_output, Real};

/// Where the activation sits relative to the normalisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Order {
    /// `act(BN(x + b₀))`.
    AfterNorm,
    /// `BN(act(x + b₀))`.
    BeforeNorm,
}

/// The fused activation: `z` for `z > 0`, `slope·z` otherwise (`None` = identity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Leaky(pub Option<f64>);

impl Leaky {
    /// The activation with Candle's NaN semantics: ReLU (`max(z, 0)`) maps NaN to 0, a leaky
    /// ReLU keeps it.
    #[inline(always)]
    fn apply<T: Real>(s: Option<T>, z: T) -> T {
        match s {
            None => z,
            Some(s) => {
                if z > T::ZERO {
                    z
                } else if s == T::ZERO {
                    T::ZERO
                } else {
                    z * s
                }
            }
        }
    }

    /// The gradient through the activation: `g` where `z > 0`, `slope·g` where `z ≤ 0`, and
    /// `0·g` where `z` is NaN (Candle's masks are false there).
    #[inline(always)]
    fn grad<T: Real>(s: Option<T>, z: T, g: T) -> T {
        match s {
            None => g,
            Some(s) => {
                let m = if z > T::ZERO {
                    T::ONE
                } else if z <= T::ZERO {
                    s
                } else {
                    T::ZERO
                };
                g * m
            }
        }
    }
}

/// Static description of one fused problem.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NormAct {
    /// Shape.
    pub p: Planes,
    /// Activation placement.
    pub order: Order,
    /// Activation.
    pub act: Leaky,
}

/// Per-channel quantities in `T`, derived once per plane.
struct PlaneConsts<T> {
    pre: T,
    slope: Option<T>,
}

impl NormAct {
    fn consts<T: Real>(&self, pre: &[f64], c: usize) -> PlaneConsts<T> {
        PlaneConsts {
            pre: T::from_f64(pre[c]),
            slope: self.act.0.map(T::from_f64),
        }
    }

    /// The normalisation's input `u` for an input element: `x + b₀`, activated first when the
    /// activation precedes the normalisation.
    #[inline(always)]
    fn u<T: Real>(&self, k: &PlaneConsts<T>, x: T) -> T {
        let v = x + k.pre;
        match self.order {
            Order::AfterNorm => v,
            Order::BeforeNorm => Leaky::apply(k.slope, v),
        }
    }

    /// Mean and biased variance of `u` per channel (two passes, f64).
    pub(crate) fn stats<T: Real>(&self, x: &[T], pre: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let p = self.p;
        let m = p.per_channel() as f64;
        let sums = per_channel_sums::<1>(p, |i, c| {
            let k = self.consts::<T>(pre, c);
            [x[i * p.s..(i + 1) * p.s]
                .iter()
                .map(|&v| self.u(&k, v).to_f64())
                .sum()]
        });
        let mean: Vec<f64> = sums.iter().map(|s| s[0] / m).collect();
        let sq = per_channel_sums::<1>(p, |i, c| {
            let k = self.consts::<T>(pre, c);
            let mu = mean[c];
            [x[i * p.s..(i + 1) * p.s]
                .iter()
                .map(|&v| {
                    let d = self.u(&k, v).to_f64() - mu;
                    d * d
                })
                .sum()]
        });
        let var = sq.iter().map(|s| s[0] / m).collect();
        (mean, var)
    }

    /// The output given the per-channel affine map `u·a + sh` of the normalisation.
    pub(crate) fn forward<T: Real>(&self, x: &[T], pre: &[f64], a: &[f64], sh: &[f64]) -> Vec<T> {
        let p = self.p;
        let s = p.s.max(1);
        par_output(x.len(), s, |i, yp| {
            let c = i % p.c;
            let k = self.consts::<T>(pre, c);
            let (ac, bc) = (T::from_f64(a[c]), T::from_f64(sh[c]));
            for (o, &v) in yp.iter_mut().zip(&x[i * s..(i + 1) * s]) {
                let z = self.u(&k, v) * ac + bc;
                o.write(match self.order {
                    Order::AfterNorm => Leaky::apply(k.slope, z),
                    Order::BeforeNorm => z,
                });
            }
        })
        .0
    }

    /// The gradient reaching the normalisation's output, `∂L/∂(u·a + sh)`, from the output
    /// gradient `g` and the input element `x`.
    #[inline(always)]
    fn g_norm<T: Real>(&self, k: &PlaneConsts<T>, ac: T, bc: T, x: T, g: T) -> T {
        match self.order {
            Order::AfterNorm => Leaky::grad(k.slope, self.u(k, x) * ac + bc, g),
            Order::BeforeNorm => g,
        }
    }

    /// Per-channel `(Σ g', Σ g'·u)` with `g'` the gradient at the normalisation's output.
    pub(crate) fn grad_sums<T: Real>(
        &self,
        x: &[T],
        g: &[T],
        pre: &[f64],
        a: &[f64],
        sh: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let p = self.p;
        let s = per_channel_sums::<2>(p, |i, c| {
            let k = self.consts::<T>(pre, c);
            let (ac, bc) = (T::from_f64(a[c]), T::from_f64(sh[c]));
            let (xp, gp) = (&x[i * p.s..(i + 1) * p.s], &g[i * p.s..(i + 1) * p.s]);
            let mut acc = [0.0f64; 2];
            for (&xv, &gv) in xp.iter().zip(gp) {
                let gn = self.g_norm(&k, ac, bc, xv, gv);
                let gn64 = gn.to_f64();
                acc[0] += gn64;
                acc[1] += gn64 * self.u(&k, xv).to_f64();
            }
            acc
        });
        (
            s.iter().map(|v| v[0]).collect(),
            s.iter().map(|v| v[1]).collect(),
        )
    }

    /// The input gradient and its per-channel sums (the pre-bias gradient). `coef[c] = (α, β,
    /// γ)` of the batch-norm input gradient `du = α·g' + β·u + γ`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward<T: Real>(
        &self,
        x: &[T],
        g: &[T],
        pre: &[f64],
        a: &[f64],
        sh: &[f64],
        coef: &[[f64; 3]],
    ) -> (Vec<T>, Vec<f64>) {
        let p = self.p;
        let s = p.s.max(1);
        let (dx, per_plane) = par_output(x.len(), s, |i, dp| {
            let (xp, gp) = (&x[i * s..(i + 1) * s], &g[i * s..(i + 1) * s]);
            let c = i % p.c;
            let k = self.consts::<T>(pre, c);
            let (ac, bc) = (T::from_f64(a[c]), T::from_f64(sh[c]));
            let [al, be, ga] = coef[c];
            let (al, be, ga) = (T::from_f64(al), T::from_f64(be), T::from_f64(ga));
            let mut sum = 0.0f64;
            for ((o, &xv), &gv) in dp.iter_mut().zip(xp).zip(gp) {
                let gn = self.g_norm(&k, ac, bc, xv, gv);
                let du = al * gn + be * self.u(&k, xv) + ga;
                let d = match self.order {
                    Order::AfterNorm => du,
                    Order::BeforeNorm => Leaky::grad(k.slope, xv + k.pre, du),
                };
                o.write(d);
                sum += d.to_f64();
            }
            sum
        });
        let mut sums = vec![0.0; p.c];
        for (i, v) in per_plane.iter().enumerate() {
            sums[i % p.c] += v;
        }
        (dx, sums)
    }
}
