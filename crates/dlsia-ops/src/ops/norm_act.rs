//! Training-mode batch normalisation fused with the preceding convolution's bias and a
//! (leaky-)ReLU: one graph node instead of three or four, two passes backward instead of a
//! dozen (see `kernels::norm_act`).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::channel::{batch_norm_train, channel_affine, BatchNormOutput};
use super::{check_float, expect_dims, is_half, up, up_opt, with_real};
use crate::error::{invalid, Error, Result};
use crate::kernels::channel::Planes;
use crate::kernels::norm_act::{Leaky, NormAct, Order};
use crate::kernels::{slice_of, Real};

/// An activation that [`batch_norm_act_train`] fuses with the normalisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FusedAct {
    /// No activation.
    Identity,
    /// `max(z, 0)`.
    Relu,
    /// `z` for `z > 0`, `slope·z` otherwise.
    LeakyRelu(f64),
}

impl FusedAct {
    fn leaky(self) -> Leaky {
        Leaky(match self {
            FusedAct::Identity => None,
            FusedAct::Relu => Some(0.0),
            FusedAct::LeakyRelu(s) => Some(s),
        })
    }

    /// The activation as a differentiable composition of Candle ops (the unfused path).
    fn apply(self, z: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            FusedAct::Identity => Ok(z.clone()),
            FusedAct::Relu => z.relu(),
            FusedAct::LeakyRelu(s) => candle_nn::ops::leaky_relu(z, s),
        }
    }
}

/// Where the fused activation sits relative to the normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActOrder {
    /// `act(BN(x + pre_bias))`: convolution → BatchNorm → activation (the U-Nets).
    AfterNorm,
    /// `BN(act(x + pre_bias))`: convolution → activation → BatchNorm (the MSAE's stacks).
    BeforeNorm,
}

/// Batch statistics of the normalised tensor, shared by the forward op, its caller and its
/// backward pass.
pub(crate) type SharedStats = Arc<Mutex<Option<(Vec<f64>, Vec<f64>)>>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `(x, [b₀; w; b]) → act/BN composition`, see [`batch_norm_act_train`].
#[derive(Debug, Clone)]
pub(crate) struct NormActOp {
    na: NormAct,
    eps: f64,
    /// Which of pre-bias, weight, bias are real operands (the others are constants).
    has: [bool; 3],
    stats: SharedStats,
}

/// Host copies of the per-channel quantities of one problem.
struct Coeffs {
    pre: Vec<f64>,
    /// Normalisation scale `w·r`.
    a: Vec<f64>,
    /// Normalisation shift `b − μ·a`.
    sh: Vec<f64>,
}

impl NormActOp {
    fn coeffs(&self, prm: &[f64], mean: &[f64], var: &[f64]) -> Coeffs {
        let c = self.na.p.c;
        let (pre, w, b) = (&prm[..c], &prm[c..2 * c], &prm[2 * c..]);
        let a: Vec<f64> = (0..c)
            .map(|i| 1.0 / (var[i] + self.eps).sqrt() * w[i])
            .collect();
        let sh = (0..c).map(|i| b[i] - mean[i] * a[i]).collect();
        Coeffs {
            pre: pre.to_vec(),
            a,
            sh,
        }
    }

    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = "dlsia-batch-norm-act";
        expect_dims(name, "parameters", l2, &[3, self.na.p.c])?;
        let x = slice_of::<T>(s1, l1, name)?;
        let prm: Vec<f64> = slice_of::<T>(s2, l2, name)?
            .iter()
            .map(|v| v.to_f64())
            .collect();
        let pre = &prm[..self.na.p.c];
        let (mean, var) = self.na.stats(x, pre);
        let k = self.coeffs(&prm, &mean, &var);
        let y = self.na.forward(x, &k.pre, &k.a, &k.sh);
        *lock(&self.stats) = Some((mean, var));
        Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
    }
}

impl CustomOp2 for NormActOp {
    fn name(&self) -> &'static str {
        "dlsia-batch-norm-act"
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

    fn bwd(
        &self,
        x: &Tensor,
        prm: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (mean, var) = lock(&self.stats)
            .clone()
            .ok_or_else(|| candle_core::Error::Msg("batch_norm_act: statistics missing".into()))?;
        let g = grad.contiguous()?;
        let prm = prm
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let k = Arc::new(self.coeffs(&prm, &mean, &var));
        let c = self.na.p.c;
        let sums = x
            .apply_op2_no_bwd(
                &g,
                &GradOp {
                    na: self.na,
                    k: k.clone(),
                    phase: Phase::Sums,
                },
            )?
            .to_vec2::<f64>()?;
        let (sum_g, sum_gu) = (&sums[0], &sums[1]);
        let m = self.na.p.per_channel() as f64;
        let w = &prm[c..2 * c];
        let mut dw = vec![0.0; c];
        let mut coef = vec![[0.0; 3]; c];
        for i in 0..c {
            let rstd = 1.0 / (var[i] + self.eps).sqrt();
            // Σ g'·û = r·(Σ g'·u − μ·Σ g').
            dw[i] = rstd * (sum_gu[i] - mean[i] * sum_g[i]);
            // du = k·g' − k·Σg'/M − k·r·Σg'û/M·(u − μ) = α·g' + β·u + γ, k = w·r.
            let kk = w[i] * rstd;
            let beta = -kk * rstd * dw[i] / m;
            coef[i] = [kk, beta, -kk * sum_g[i] / m - beta * mean[i]];
        }
        let pre_sums: Arc<Mutex<Vec<f64>>> = Arc::default();
        let dx = x.apply_op2_no_bwd(
            &g,
            &GradOp {
                na: self.na,
                k,
                phase: Phase::Input {
                    coef: Arc::new(coef),
                    pre_sums: pre_sums.clone(),
                },
            },
        )?;
        let d_pre = std::mem::take(&mut *lock(&pre_sums));
        let rows: Vec<f64> = [
            if self.has[0] { d_pre } else { vec![0.0; c] },
            if self.has[1] { dw } else { vec![0.0; c] },
            if self.has[2] {
                sum_g.clone()
            } else {
                vec![0.0; c]
            },
        ]
        .concat();
        let dprm = Tensor::from_vec(rows, (3, c), x.device())?.to_dtype(x.dtype())?;
        Ok((Some(dx), Some(dprm)))
    }
}

/// What a [`GradOp`] computes.
#[derive(Debug, Clone)]
enum Phase {
    /// `(2, C)` in f64: per channel `Σ g'`, `Σ g'·u`.
    Sums,
    /// The input gradient; its per-channel sums go to `pre_sums`.
    Input {
        coef: Arc<Vec<[f64; 3]>>,
        pre_sums: Arc<Mutex<Vec<f64>>>,
    },
}

/// `(x, g) →` one backward pass of [`NormActOp`].
#[derive(Debug, Clone)]
struct GradOp {
    na: NormAct,
    k: Arc<Coeffs>,
    phase: Phase,
}

impl std::fmt::Debug for Coeffs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coeffs").finish_non_exhaustive()
    }
}

impl GradOp {
    fn run<T: Real>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = "dlsia-batch-norm-act-grad";
        expect_dims(name, "gradient", l2, l1.dims())?;
        let x = slice_of::<T>(s1, l1, name)?;
        let g = slice_of::<T>(s2, l2, name)?;
        let k = &self.k;
        match &self.phase {
            Phase::Sums => {
                let (sg, sgu) = self.na.grad_sums(x, g, &k.pre, &k.a, &k.sh);
                let out: Vec<f64> = sg.into_iter().chain(sgu).collect();
                Ok((CpuStorage::F64(out), Shape::from((2, self.na.p.c))))
            }
            Phase::Input { coef, pre_sums } => {
                let (dx, sums) = self.na.backward(x, g, &k.pre, &k.a, &k.sh, coef);
                *lock(pre_sums) = sums;
                Ok((T::to_cpu_storage_owned(dx), l1.shape().clone()))
            }
        }
    }
}

impl CustomOp2 for GradOp {
    fn name(&self) -> &'static str {
        "dlsia-batch-norm-act-grad"
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
}

/// Training-mode batch normalisation fused with a per-channel bias added to its input (the
/// preceding convolution's bias) and an activation, either after the normalisation,
/// `act(BN(x + pre_bias))`, or before it, `BN(act(x + pre_bias))`. Statistics are batch
/// statistics of the normalised tensor (biased variance), returned for running-statistics
/// updates. Gradients reach `x`, `pre_bias`, `weight` and `bias`; absent operands are 0
/// (`pre_bias`, `bias`) or 1 (`weight`).
///
/// The values and gradients equal those of the unfused composition `channel_affine` →
/// [`batch_norm_train`] → activation (or with the activation first), element for element; on
/// the CPU the op is one graph node with two passes backward, elsewhere it runs as that
/// composition.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_ops::{batch_norm_act_train, ActOrder, FusedAct};
///
/// let x = Tensor::new(&[[[1f32, 2.]], [[3., 4.]]], &Device::Cpu)?; // (N, C, W) = (2, 1, 2)
/// let out = batch_norm_act_train(&x, None, None, None, 1e-5, FusedAct::Relu, ActOrder::AfterNorm)?;
/// let y = out.y.flatten_all()?.to_vec1::<f32>()?;
/// assert_eq!(y[..2], [0., 0.]); // the two values below the mean are cut off
/// assert!((y[3] - 1.3416).abs() < 1e-3);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn batch_norm_act_train(
    x: &Tensor,
    pre_bias: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
    act: FusedAct,
    order: ActOrder,
) -> Result<BatchNormOutput> {
    const OP: &str = "batch_norm_act_train";
    check_act(OP, act)?;
    if is_half(x) {
        let o = batch_norm_act_train(
            &up(x)?,
            up_opt(pre_bias)?.as_ref(),
            up_opt(weight)?.as_ref(),
            up_opt(bias)?.as_ref(),
            eps,
            act,
            order,
        )?;
        return down(o, x.dtype());
    }
    if !x.device().is_cpu() {
        return composed(x, pre_bias, weight, bias, eps, act, order);
    }
    let fused = Fused::new(OP, x.dims(), x, [pre_bias, weight, bias], eps, act, order)?;
    let y = x.contiguous()?.apply_op2(&fused.prm, fused.op.clone())?;
    fused.output(OP, y)
}

/// A half-precision caller's result: `o` (computed in f32) cast to `dtype`.
pub(crate) fn down(o: BatchNormOutput, dtype: candle_core::DType) -> Result<BatchNormOutput> {
    Ok(BatchNormOutput {
        y: o.y.to_dtype(dtype)?,
        mean: o.mean.to_dtype(dtype)?,
        var: o.var.to_dtype(dtype)?,
    })
}

/// Checks the activation's parameter.
pub(crate) fn check_act(op: &'static str, act: FusedAct) -> Result<()> {
    if let FusedAct::LeakyRelu(s) = act {
        if !s.is_finite() {
            return Err(invalid(
                op,
                format!("the leaky-ReLU slope must be finite, got {s}"),
            ));
        }
    }
    Ok(())
}

/// A validated fused problem: the op and its packed `(3, C)` parameter operand.
pub(crate) struct Fused {
    pub(crate) op: NormActOp,
    pub(crate) prm: Tensor,
}

impl Fused {
    /// Validates a problem whose normalised tensor has dims `dims` (dtype and device of
    /// `like`) and packs `[pre_bias; weight; bias]`, absent ones as constants 0, 1, 0.
    pub(crate) fn new(
        op: &'static str,
        dims: &[usize],
        like: &Tensor,
        vectors: [Option<&Tensor>; 3],
        eps: f64,
        act: FusedAct,
        order: ActOrder,
    ) -> Result<Self> {
        let p = batch_norm_train_checks(op, dims, like, vectors, eps)?;
        let vec_or = |v: Option<&Tensor>, fill: f64| -> Result<Tensor> {
            Ok(match v {
                Some(v) => v.clone(),
                None => (Tensor::ones(p.c, like.dtype(), like.device())? * fill)?,
            })
        };
        let [pre_bias, weight, bias] = vectors;
        let prm = Tensor::stack(
            &[
                vec_or(pre_bias, 0.0)?,
                vec_or(weight, 1.0)?,
                vec_or(bias, 0.0)?,
            ],
            0,
        )?;
        let op = NormActOp {
            na: NormAct {
                p,
                order: match order {
                    ActOrder::AfterNorm => Order::AfterNorm,
                    ActOrder::BeforeNorm => Order::BeforeNorm,
                },
                act: act.leaky(),
            },
            eps,
            has: [pre_bias.is_some(), weight.is_some(), bias.is_some()],
            stats: Arc::default(),
        };
        Ok(Fused { op, prm })
    }

    /// `y` with the statistics the forward pass left behind.
    pub(crate) fn output(&self, op: &'static str, y: Tensor) -> Result<BatchNormOutput> {
        let (mean, var) = lock(&self.op.stats)
            .clone()
            .ok_or_else(|| invalid(op, "the forward pass produced no statistics"))?;
        let to = |v: Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, self.op.na.p.c, y.device())?.to_dtype(y.dtype())?)
        };
        Ok(BatchNormOutput {
            mean: to(mean)?,
            var: to(var)?,
            y,
        })
    }
}

/// Shape and value checks shared with [`batch_norm_train`]; returns the planes.
fn batch_norm_train_checks(
    op: &'static str,
    d: &[usize],
    x: &Tensor,
    vectors: [Option<&Tensor>; 3],
    eps: f64,
) -> Result<Planes> {
    if d.len() < 2 || d[1] == 0 {
        return Err(Error::Shape {
            op,
            expected: "a tensor (N, C, …) of rank ≥ 2 with at least one channel".into(),
            got: Shape::from(d),
        });
    }
    check_float(op, x, None)?;
    let p = Planes {
        n: d[0],
        c: d[1],
        s: d[2..].iter().product(),
    };
    if !(eps.is_finite() && eps > 0.0) {
        return Err(invalid(
            op,
            format!("eps must be finite and positive, got {eps}"),
        ));
    }
    if p.per_channel() < 2 {
        return Err(invalid(
            op,
            format!(
                "expected more than 1 value per channel when using batch statistics, got input shape {d:?}"
            ),
        ));
    }
    for (v, what) in vectors.iter().zip(["pre_bias", "weight", "bias"]) {
        if let Some(v) = v {
            if v.dims() != [p.c] {
                return Err(Error::Shape {
                    op,
                    expected: format!("{what} of shape ({},), one value per channel", p.c),
                    got: v.shape().clone(),
                });
            }
            check_float(op, x, Some(v))?;
        }
    }
    Ok(p)
}

/// The unfused composition (any device).
fn composed(
    x: &Tensor,
    pre_bias: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
    act: FusedAct,
    order: ActOrder,
) -> Result<BatchNormOutput> {
    let v = match pre_bias {
        Some(b0) => channel_affine(x, None, Some(b0))?,
        None => x.clone(),
    };
    Ok(match order {
        ActOrder::AfterNorm => {
            let out = batch_norm_train(&v, weight, bias, eps)?;
            BatchNormOutput {
                y: act.apply(&out.y)?,
                ..out
            }
        }
        ActOrder::BeforeNorm => batch_norm_train(&act.apply(&v)?, weight, bias, eps)?,
    })
}

/// The unfused composition on any device, for tests comparing the fused op against it.
#[doc(hidden)]
pub fn batch_norm_act_train_composed(
    x: &Tensor,
    pre_bias: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
    act: FusedAct,
    order: ActOrder,
) -> Result<BatchNormOutput> {
    composed(x, pre_bias, weight, bias, eps, act, order)
}
