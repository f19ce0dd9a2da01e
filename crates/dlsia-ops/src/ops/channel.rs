//! Per-channel operations with fused backward passes: the affine map `x·a[c] + b[c]` (bias
//! addition, BatchNorm in eval mode) and training-mode batch normalisation.
//!
//! Built from Candle's broadcast operations, their backward passes reduce through Candle's
//! generic strided `sum` over the batch and spatial axes, which dominated a U-Net's training
//! step; here the reductions are one parallel pass per plane, accumulated in f64.

use std::sync::{Arc, Mutex};

#[cfg(feature = "cuda")]
use candle_core::{backend::BackendStorage, CudaStorage};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::{check_float, expect_dims, is_half, up, up_opt, with_real};
use crate::error::{invalid, Error, Result};
use crate::kernels::channel::{self, Planes};
use crate::kernels::{slice_of, Real};

fn planes_of(op: &'static str, x: &Tensor) -> Result<Planes> {
    let d = x.dims();
    if d.len() < 2 || d[1] == 0 {
        return Err(Error::Shape {
            op,
            expected: "a tensor (N, C, …) of rank ≥ 2 with at least one channel".into(),
            got: x.shape().clone(),
        });
    }
    Ok(Planes {
        n: d[0],
        c: d[1],
        s: d[2..].iter().product(),
    })
}

/// Checks that `v` is a `(C,)` vector of `x`'s dtype.
fn check_vector(op: &'static str, what: &str, v: &Tensor, x: &Tensor, c: usize) -> Result<()> {
    if v.dims() != [c] {
        return Err(Error::Shape {
            op,
            expected: format!("{what} of shape ({c},), one value per channel"),
            got: v.shape().clone(),
        });
    }
    check_float(op, x, Some(v))
}

fn host_f64(v: &Tensor) -> candle_core::Result<Vec<f64>> {
    v.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()
}

/// `(x, a, b) → x·a[c] + b[c]`; absent operands are passed as constants and get no gradient.
#[derive(Debug, Clone)]
struct AffineOp {
    p: Planes,
    has_scale: bool,
    has_shift: bool,
}

impl AffineOp {
    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = "dlsia-channel-affine";
        expect_dims(name, "scale", l2, &[self.p.c])?;
        expect_dims(name, "shift", l3, &[self.p.c])?;
        let x = slice_of::<T>(s1, l1, name)?;
        let a: Vec<f64> = slice_of::<T>(s2, l2, name)?
            .iter()
            .map(|v| v.to_f64())
            .collect();
        let b: Vec<f64> = slice_of::<T>(s3, l3, name)?
            .iter()
            .map(|v| v.to_f64())
            .collect();
        let y = channel::affine(self.p, x, &a, &b);
        Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    #[allow(clippy::too_many_arguments)]
    fn run_cuda<T: crate::cuda::CudaReal>(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        use crate::cuda::view;
        let name = "dlsia-channel-affine";
        expect_dims(name, "scale", l2, &[self.p.c])?;
        expect_dims(name, "shift", l3, &[self.p.c])?;
        let (x, a, b) = (
            view::<T>(s1, l1, name)?,
            view::<T>(s2, l2, name)?,
            view::<T>(s3, l3, name)?,
        );
        let dev = s1.device();
        let y = crate::cuda::channel::affine(dev, self.p, &x, &a, &b)?;
        Ok((
            CudaStorage::wrap_cuda_slice(y, dev.clone()),
            l1.shape().clone(),
        ))
    }
}

impl CustomOp3 for AffineOp {
    fn name(&self) -> &'static str {
        "dlsia-channel-affine"
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
        with_real!(self.name(), s1, T => self.run::<T>(s1, l1, s2, l2, s3, l3))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        crate::cuda::with_cuda_real!(self.name(), s1, T => self.run_cuda::<T>(s1, l1, s2, l2, s3, l3))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let dx = if self.has_scale {
            let zero = a.zeros_like()?;
            let op = AffineOp {
                has_shift: false,
                ..self.clone()
            };
            g.apply_op3_no_bwd(&a.detach(), &zero, &op)?
        } else {
            g.clone()
        };
        if !(self.has_scale || self.has_shift) {
            return Ok((Some(dx), None, None));
        }
        // Row 0: Σ g, row 1: Σ g·x, per channel.
        let sums = x.apply_op2_no_bwd(&g, &GradSumsOp(self.p))?;
        let da = self.has_scale.then(|| sums.get(1)).transpose()?;
        let db = self.has_shift.then(|| sums.get(0)).transpose()?;
        Ok((Some(dx), da, db))
    }
}

/// `(x, g) → [Σ g; Σ g·x]` per channel, shape `(2, C)`.
#[derive(Debug, Clone)]
struct GradSumsOp(Planes);

impl GradSumsOp {
    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = "dlsia-channel-grad-sums";
        expect_dims(name, "gradient", l2, l1.dims())?;
        let x = slice_of::<T>(s1, l1, name)?;
        let g = slice_of::<T>(s2, l2, name)?;
        let (sg, sgx) = channel::grad_sums(self.0, x, g);
        let out: Vec<T> = sg.iter().chain(&sgx).map(|&v| T::from_f64(v)).collect();
        Ok((T::to_cpu_storage_owned(out), Shape::from((2, self.0.c))))
    }

    #[cfg(feature = "cuda")]
    fn run_cuda<T: crate::cuda::CudaReal>(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let name = "dlsia-channel-grad-sums";
        expect_dims(name, "gradient", l2, l1.dims())?;
        let x = crate::cuda::view::<T>(s1, l1, name)?;
        let g = crate::cuda::view::<T>(s2, l2, name)?;
        let dev = s1.device();
        let out = crate::cuda::channel::grad_sums(dev, self.0, &x, &g)?;
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev.clone()),
            Shape::from((2, self.0.c)),
        ))
    }
}

impl CustomOp2 for GradSumsOp {
    fn name(&self) -> &'static str {
        "dlsia-channel-grad-sums"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_real!(self.name(), s1, T => self.run::<T>(s1, l1, s2, l2))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        crate::cuda::with_cuda_real!(self.name(), s1, T => self.run_cuda::<T>(s1, l1, s2, l2))
    }
}

/// `y = x·a[c] + b[c]` on an `(N, C, …)` tensor with one `scale` and `shift` value per channel
/// (either may be omitted: scale 1, shift 0), with a fused backward pass (gradients for `x`,
/// `scale` and `shift`).
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[[[1f32, 2.], [3., 4.]]], &Device::Cpu)?;
/// let a = Tensor::new(&[2f32, -1.], &Device::Cpu)?;
/// let b = Tensor::new(&[0.5f32, 0.], &Device::Cpu)?;
/// let y = dlsia_ops::channel_affine(&x, Some(&a), Some(&b))?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [2.5, 4.5, -3., -4.]);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn channel_affine(
    x: &Tensor,
    scale: Option<&Tensor>,
    shift: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "channel_affine";
    if is_half(x) {
        let y = channel_affine(&up(x)?, up_opt(scale)?.as_ref(), up_opt(shift)?.as_ref())?;
        return Ok(y.to_dtype(x.dtype())?);
    }
    let p = planes_of(OP, x)?;
    check_float(OP, x, None)?;
    if let Some(a) = scale {
        check_vector(OP, "scale", a, x, p.c)?;
    }
    if let Some(b) = shift {
        check_vector(OP, "shift", b, x, p.c)?;
    }
    let ones;
    let zeros;
    let a = match scale {
        Some(a) => a.contiguous()?,
        None => {
            ones = Tensor::ones(p.c, x.dtype(), x.device())?;
            ones
        }
    };
    let b = match shift {
        Some(b) => b.contiguous()?,
        None => {
            zeros = Tensor::zeros(p.c, x.dtype(), x.device())?;
            zeros
        }
    };
    let op = AffineOp {
        p,
        has_scale: scale.is_some(),
        has_shift: shift.is_some(),
    };
    Ok(x.contiguous()?.apply_op3(&a, &b, op)?)
}

/// Batch statistics shared between the forward op and its caller (running-statistics update)
/// and its backward pass.
type SharedStats = Arc<Mutex<Option<(Vec<f64>, Vec<f64>)>>>;

/// `(x, w, b) → (x − μ[c])/√(σ²[c] + eps)·w[c] + b[c]` with batch statistics.
#[derive(Debug, Clone)]
struct BatchNormOp {
    p: Planes,
    eps: f64,
    has_weight: bool,
    has_bias: bool,
    stats: SharedStats,
}

impl BatchNormOp {
    fn stats(&self) -> candle_core::Result<(Vec<f64>, Vec<f64>)> {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| candle_core::Error::Msg("batch_norm: statistics missing".into()))
    }

    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = "dlsia-batch-norm";
        expect_dims(name, "weight", l2, &[self.p.c])?;
        expect_dims(name, "bias", l3, &[self.p.c])?;
        let x = slice_of::<T>(s1, l1, name)?;
        let w = slice_of::<T>(s2, l2, name)?;
        let b = slice_of::<T>(s3, l3, name)?;
        let (mean, var) = channel::stats(self.p, x);
        let (mut a, mut sh) = (vec![0.0; self.p.c], vec![0.0; self.p.c]);
        for c in 0..self.p.c {
            let r = 1.0 / (var[c] + self.eps).sqrt();
            a[c] = r * w[c].to_f64();
            sh[c] = b[c].to_f64() - mean[c] * a[c];
        }
        let y = channel::affine(self.p, x, &a, &sh);
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Some((mean, var));
        Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    #[allow(clippy::too_many_arguments)]
    fn run_cuda<T: crate::cuda::CudaReal>(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        use crate::cuda::view;
        let name = "dlsia-batch-norm";
        expect_dims(name, "weight", l2, &[self.p.c])?;
        expect_dims(name, "bias", l3, &[self.p.c])?;
        let dev = s1.device();
        let x = view::<T>(s1, l1, name)?;
        let w = dev.clone_dtoh(&view::<T>(s2, l2, name)?)?;
        let b = dev.clone_dtoh(&view::<T>(s3, l3, name)?)?;
        let (mean, var) = crate::cuda::channel::stats(dev, self.p, &x)?;
        let (mut a, mut sh) = (vec![T::ZERO; self.p.c], vec![T::ZERO; self.p.c]);
        for c in 0..self.p.c {
            let r = 1.0 / (var[c] + self.eps).sqrt();
            let ac = r * w[c].to_f64();
            a[c] = T::from_f64(ac);
            sh[c] = T::from_f64(b[c].to_f64() - mean[c] * ac);
        }
        let (a, sh) = (dev.clone_htod(&a)?, dev.clone_htod(&sh)?);
        let y = crate::cuda::channel::affine(dev, self.p, &x, &a.slice(..), &sh.slice(..))?;
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Some((mean, var));
        Ok((
            CudaStorage::wrap_cuda_slice(y, dev.clone()),
            l1.shape().clone(),
        ))
    }
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "dlsia-batch-norm"
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
        with_real!(self.name(), s1, T => self.run::<T>(s1, l1, s2, l2, s3, l3))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        crate::cuda::with_cuda_real!(self.name(), s1, T => self.run_cuda::<T>(s1, l1, s2, l2, s3, l3))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (mean, var) = self.stats()?;
        let g = grad.contiguous()?;
        let sums = x.apply_op2_no_bwd(&g, &GradSumsOp(self.p))?;
        let sums = sums.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
        let w = host_f64(w)?;
        let c = self.p.c;
        let rstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect();
        // Σ g·x̂ = r·(Σ g·x − μ·Σ g).
        let sum_gxhat: Vec<f64> = (0..c)
            .map(|i| rstd[i] * (sums[1][i] - mean[i] * sums[0][i]))
            .collect();
        let k: Vec<f64> = (0..c).map(|i| w[i] * rstd[i]).collect();
        let params: Vec<f64> = [&mean, &rstd, &k, &sums[0], &sum_gxhat]
            .iter()
            .flat_map(|v| v.iter().copied())
            .collect();
        let params = Tensor::from_vec(params, (5, c), x.device())?.to_dtype(x.dtype())?;
        let dx = x.apply_op3_no_bwd(&g, &params, &BatchNormGradOp(self.p))?;
        let vec = |v: &[f64]| -> candle_core::Result<Tensor> {
            Tensor::from_vec(v.to_vec(), c, x.device())?.to_dtype(x.dtype())
        };
        let dw = if self.has_weight {
            Some(vec(&sum_gxhat)?)
        } else {
            None
        };
        let db = if self.has_bias {
            Some(vec(&sums[0])?)
        } else {
            None
        };
        Ok((Some(dx), dw, db))
    }
}

/// `(x, g, [μ; r; k; Σg; Σg·x̂]) → dx` of batch normalisation.
#[derive(Debug, Clone)]
struct BatchNormGradOp(Planes);

impl BatchNormGradOp {
    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = "dlsia-batch-norm-grad";
        let c = self.0.c;
        expect_dims(name, "gradient", l2, l1.dims())?;
        expect_dims(name, "parameters", l3, &[5, c])?;
        let x = slice_of::<T>(s1, l1, name)?;
        let g = slice_of::<T>(s2, l2, name)?;
        let prm: Vec<f64> = slice_of::<T>(s3, l3, name)?
            .iter()
            .map(|v| v.to_f64())
            .collect();
        let row = |i: usize| &prm[i * c..(i + 1) * c];
        let q = channel::BnGrad {
            mean: row(0),
            rstd: row(1),
            k: row(2),
            sum_g: row(3),
            sum_gx: row(4),
        };
        let dx = channel::batch_norm_dx(self.0, x, g, &q);
        Ok((T::to_cpu_storage_owned(dx), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    #[allow(clippy::too_many_arguments)]
    fn run_cuda<T: crate::cuda::CudaReal>(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        use crate::cuda::view;
        let name = "dlsia-batch-norm-grad";
        expect_dims(name, "gradient", l2, l1.dims())?;
        expect_dims(name, "parameters", l3, &[5, self.0.c])?;
        let (x, g, prm) = (
            view::<T>(s1, l1, name)?,
            view::<T>(s2, l2, name)?,
            view::<T>(s3, l3, name)?,
        );
        let dev = s1.device();
        let dx = crate::cuda::channel::batch_norm_dx(dev, self.0, &x, &g, &prm)?;
        Ok((
            CudaStorage::wrap_cuda_slice(dx, dev.clone()),
            l1.shape().clone(),
        ))
    }
}

impl CustomOp3 for BatchNormGradOp {
    fn name(&self) -> &'static str {
        "dlsia-batch-norm-grad"
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
        with_real!(self.name(), s1, T => self.run::<T>(s1, l1, s2, l2, s3, l3))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        crate::cuda::with_cuda_real!(self.name(), s1, T => self.run_cuda::<T>(s1, l1, s2, l2, s3, l3))
    }
}

/// The result of [`batch_norm_train`].
#[derive(Debug, Clone)]
pub struct BatchNormOutput {
    /// The normalised (and affinely transformed) tensor, differentiable in `x`, weight and bias.
    pub y: Tensor,
    /// Per-channel batch mean `(C,)` (no gradient).
    pub mean: Tensor,
    /// Per-channel biased batch variance `(C,)` (no gradient).
    pub var: Tensor,
}

/// Training-mode batch normalisation of an `(N, C, …)` tensor with batch statistics, in one
/// pass forward and two passes backward: `(x − μ[c])/√(σ²[c] + eps)·weight[c] + bias[c]`,
/// where μ and the biased σ² are taken over the batch and spatial axes. Also returns μ and σ²
/// for running-statistics updates.
pub fn batch_norm_train(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<BatchNormOutput> {
    const OP: &str = "batch_norm_train";
    if is_half(x) {
        let o = batch_norm_train(
            &up(x)?,
            up_opt(weight)?.as_ref(),
            up_opt(bias)?.as_ref(),
            eps,
        )?;
        let d = x.dtype();
        return Ok(BatchNormOutput {
            y: o.y.to_dtype(d)?,
            mean: o.mean.to_dtype(d)?,
            var: o.var.to_dtype(d)?,
        });
    }
    let p = planes_of(OP, x)?;
    check_float(OP, x, None)?;
    if !(eps.is_finite() && eps > 0.0) {
        return Err(invalid(
            OP,
            format!("eps must be finite and positive, got {eps}"),
        ));
    }
    if p.per_channel() < 2 {
        return Err(invalid(
            OP,
            format!(
                "expected more than 1 value per channel when using batch statistics, got input shape {:?}",
                x.dims()
            ),
        ));
    }
    if let Some(w) = weight {
        check_vector(OP, "weight", w, x, p.c)?;
    }
    if let Some(b) = bias {
        check_vector(OP, "bias", b, x, p.c)?;
    }
    let w = match weight {
        Some(w) => w.contiguous()?,
        None => Tensor::ones(p.c, x.dtype(), x.device())?,
    };
    let b = match bias {
        Some(b) => b.contiguous()?,
        None => Tensor::zeros(p.c, x.dtype(), x.device())?,
    };
    let stats: SharedStats = Arc::new(Mutex::new(None));
    let op = BatchNormOp {
        p,
        eps,
        has_weight: weight.is_some(),
        has_bias: bias.is_some(),
        stats: stats.clone(),
    };
    let y = x.contiguous()?.apply_op3(&w, &b, op)?;
    let (mean, var) = stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| invalid(OP, "the forward pass produced no statistics"))?;
    let to = |v: Vec<f64>| -> Result<Tensor> {
        Ok(Tensor::from_vec(v, p.c, x.device())?.to_dtype(x.dtype())?)
    };
    Ok(BatchNormOutput {
        y,
        mean: to(mean)?,
        var: to(var)?,
    })
}
