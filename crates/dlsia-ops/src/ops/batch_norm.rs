//! Fused batch normalisation: per-channel statistics in one parallel pass, the normalisation
//! and affine map in one pass, and a two-pass backward (the full gradient through the batch
//! statistics), instead of a dozen elementwise ops and their autograd nodes.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::with_real;
use crate::kernels::norm::{self, NormShape};
use crate::kernels::{slice_of, Real};

fn shape_of(l: &Layout) -> NormShape {
    let d = l.dims();
    NormShape {
        n: d[0],
        c: d[1],
        len: d[2..].iter().product(),
    }
}

/// `x → (2, C)` f64: per-channel mean and biased variance (no gradient).
struct StatsOp;

impl CustomOp1 for StatsOp {
    fn name(&self) -> &'static str {
        "dlsia-batch-norm-stats"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let sh = shape_of(l);
        let (mean, var) = with_real!(self.name(), s, T => norm::channel_stats(sh, slice_of::<T>(s, l, self.name())?));
        Ok((
            CpuStorage::F64([mean, var].concat()),
            Shape::from((2, sh.c)),
        ))
    }
}

/// Per-channel mean and biased variance of an `(N, C, …)` tensor (f64, no gradient).
pub(crate) fn channel_stats(x: &Tensor) -> candle_core::Result<(Vec<f64>, Vec<f64>)> {
    let s = x
        .contiguous()?
        .apply_op1_no_bwd(&StatsOp)?
        .to_vec2::<f64>()?;
    Ok((s[0].clone(), s[1].clone()))
}

/// `(x, weight, bias) → (x − mean)·inv_std·weight + bias` with fixed per-channel statistics.
/// With `batch_stats`, the statistics are those of `x` itself and the backward pass includes
/// their dependence on `x`.
#[derive(Debug, Clone)]
struct ApplyOp {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    batch_stats: bool,
}

impl ApplyOp {
    fn run<T: Real>(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        let sh = shape_of(lx);
        let (x, w, b) = (
            slice_of::<T>(sx, lx, name)?,
            slice_of::<T>(sw, lw, name)?,
            slice_of::<T>(sb, lb, name)?,
        );
        if w.len() != sh.c || b.len() != sh.c || self.mean.len() != sh.c {
            candle_core::bail!(
                "{name}: {} channels but {} weights, {} biases",
                sh.c,
                w.len(),
                b.len()
            );
        }
        let scale: Vec<T> = (0..sh.c)
            .map(|c| T::from_f64(w[c].to_f64() * self.inv_std[c]))
            .collect();
        let shift: Vec<T> = (0..sh.c)
            .map(|c| T::from_f64(b[c].to_f64() - self.mean[c] * w[c].to_f64() * self.inv_std[c]))
            .collect();
        let y = norm::apply(sh, x, &scale, &shift);
        Ok((T::to_cpu_storage_owned(y), lx.shape().clone()))
    }
}

impl CustomOp3 for ApplyOp {
    fn name(&self) -> &'static str {
        "dlsia-batch-norm"
    }
    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if sx.dtype() != sw.dtype() || sx.dtype() != sb.dtype() {
            candle_core::bail!("{}: input, weight and bias dtypes differ", self.name());
        }
        with_real!(self.name(), sx, T => self.run::<T>(sx, lx, sw, lw, sb, lb))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let sums = x
            .apply_op2_no_bwd(
                &dy,
                &GradSumsOp {
                    mean: self.mean.clone(),
                },
            )?
            .to_vec2::<f64>()?;
        let (sdy, sdyx) = (&sums[0], &sums[1]);
        let wv = w.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
        let c = wv.len();
        let m = (x.elem_count() / c.max(1)) as f64;
        let (mut a, mut bb, mut k) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
        for i in 0..c {
            let inv = self.inv_std[i];
            a[i] = wv[i] * inv;
            if self.batch_stats {
                // dx = w·inv·(dy − Σdy/M − x̂·Σ(dy·x̂)/M), x̂ = (x − mean)·inv
                let g = wv[i] * inv * inv * inv * sdyx[i] / m;
                bb[i] = -g;
                k[i] = -wv[i] * inv * sdy[i] / m + g * self.mean[i];
            }
        }
        let dx = x.apply_op2_no_bwd(&dy, &CombineOp { a, b: bb, k })?;
        let dt = w.dtype();
        let dw: Vec<f64> = (0..c).map(|i| sdyx[i] * self.inv_std[i]).collect();
        let dw = Tensor::from_vec(dw, c, w.device())?.to_dtype(dt)?;
        let db = Tensor::from_vec(sdy.clone(), c, w.device())?.to_dtype(dt)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// `(x, dy) → (2, C)` f64: `Σ dy` and `Σ dy·(x − mean)` per channel.
struct GradSumsOp {
    mean: Vec<f64>,
}

impl CustomOp2 for GradSumsOp {
    fn name(&self) -> &'static str {
        "dlsia-batch-norm-grad-sums"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let sh = shape_of(l1);
        if l1.dims() != l2.dims() {
            candle_core::bail!(
                "{}: gradient shape {:?} differs from input {:?}",
                self.name(),
                l2.dims(),
                l1.dims()
            );
        }
        let (a, b) = with_real!(self.name(), s1, T => norm::grad_sums(
            sh,
            slice_of::<T>(s1, l1, self.name())?,
            slice_of::<T>(s2, l2, self.name())?,
            &self.mean
        ));
        Ok((CpuStorage::F64([a, b].concat()), Shape::from((2, sh.c))))
    }
}

/// `(x, dy) → a[c]·dy + b[c]·x + k[c]`.
struct CombineOp {
    a: Vec<f64>,
    b: Vec<f64>,
    k: Vec<f64>,
}

impl CombineOp {
    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let sh = shape_of(l1);
        let cast = |v: &[f64]| -> Vec<T> { v.iter().map(|&x| T::from_f64(x)).collect() };
        let dx = norm::combine(
            sh,
            slice_of::<T>(s1, l1, self.name())?,
            slice_of::<T>(s2, l2, self.name())?,
            &cast(&self.a),
            &cast(&self.b),
            &cast(&self.k),
        );
        Ok((T::to_cpu_storage_owned(dx), l1.shape().clone()))
    }
}

impl CustomOp2 for CombineOp {
    fn name(&self) -> &'static str {
        "dlsia-batch-norm-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if s1.dtype() != s2.dtype() || l1.dims() != l2.dims() {
            candle_core::bail!(
                "{}: input and gradient differ in dtype or shape",
                self.name()
            );
        }
        with_real!(self.name(), s1, T => self.run::<T>(s1, l1, s2, l2))
    }
}

/// Normalises `x` (`(N, C, …)`, contiguous or not) per channel with the given statistics and
/// applies `weight`/`bias` (`(C,)`), differentiably in `x`, `weight` and `bias`. With
/// `batch_stats`, `mean`/`var` must be `x`'s own batch statistics (see [`channel_stats`]) and
/// the gradient flows through them.
pub(crate) fn batch_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    mean: Vec<f64>,
    var: &[f64],
    eps: f64,
    batch_stats: bool,
) -> candle_core::Result<Tensor> {
    let inv_std = var.iter().map(|&v| 1.0 / (v + eps).sqrt()).collect();
    let op = ApplyOp {
        mean,
        inv_std,
        batch_stats,
    };
    x.contiguous()?.apply_op3(weight, bias, op)
}
