//! A convolution followed by training-mode batch normalisation and a (leaky-)ReLU as one graph
//! node on the CPU: the convolution's output stays inside the op (kept for the backward pass)
//! instead of becoming a graph node of its own, which saves Candle's autograd a zero-filled
//! gradient accumulator and an addition over it per block.

use std::sync::{Arc, Mutex};

use candle_core::op::BackpropOp;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Storage, Tensor};

use super::conv::{plan_conv, ConvOp};
use super::norm_act::{check_act, down, lock, Fused, NormActOp};
use super::{batch_norm_act_train, conv, is_half, up, up_opt, ActOrder, BatchNormOutput, FusedAct};
use crate::error::Result;
use crate::ConvSpec;

/// The normalisation and activation of [`conv_batch_norm_act_train`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormActSpec {
    /// Added to the variance before the square root.
    pub eps: f64,
    /// The activation.
    pub act: FusedAct,
    /// Where the activation sits.
    pub order: ActOrder,
}

/// `(x, w, [b₀; γ; β]) →` the normalised, activated convolution.
#[derive(Debug, Clone)]
struct ConvNormActOp {
    conv: ConvOp,
    norm: NormActOp,
    /// The convolution's output, kept for the backward pass.
    saved: Arc<Mutex<Option<Tensor>>>,
}

impl CustomOp3 for ConvNormActOp {
    fn name(&self) -> &'static str {
        "dlsia-conv-batch-norm-act"
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
        let (u, shape) = self.conv.cpu_fwd(s1, l1, s2, l2)?;
        let (y, y_shape) = self
            .norm
            .cpu_fwd(&u, &Layout::contiguous(shape.clone()), s3, l3)?;
        let u = Tensor::from_storage(Storage::Cpu(u), shape, BackpropOp::none(), false);
        *lock(&self.saved) = Some(u);
        Ok((y, y_shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        prm: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let u = lock(&self.saved).clone().ok_or_else(|| {
            candle_core::Error::Msg("conv_batch_norm_act: convolution output missing".into())
        })?;
        let (du, dprm) = self.norm.bwd(&u, prm, res, grad)?;
        let du = du.ok_or_else(|| {
            candle_core::Error::Msg("conv_batch_norm_act: no normalisation gradient".into())
        })?;
        let (dx, dw) = self.conv.bwd(x, w, &u, &du)?;
        Ok((dx, dw, dprm))
    }
}

/// `act(BN(conv(x, w) + conv_bias))` ([`ActOrder::AfterNorm`]) or
/// `BN(act(conv(x, w) + conv_bias))` ([`ActOrder::BeforeNorm`]) in training mode (batch
/// statistics, returned for running-statistics updates), with BatchNorm's `weight` and `bias`.
/// The same values and gradients as [`conv`] followed by [`batch_norm_act_train`]; on the CPU
/// one graph node, elsewhere those two ops.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlsia_ops::{conv_batch_norm_act_train, ActOrder, ConvSpec, FusedAct, NormActSpec};
///
/// let x = Tensor::arange(0f32, 18., &Device::Cpu)?.reshape((2, 1, 9))?;
/// let w = Tensor::new(&[[[1f32, 1., 1.]]], &Device::Cpu)?;
/// let na = NormActSpec { eps: 1e-5, act: FusedAct::Relu, order: ActOrder::AfterNorm };
/// let out = conv_batch_norm_act_train(&x, &w, None, &ConvSpec::uniform(1, 1, 0, 1), None, None, &na)?;
/// assert_eq!(out.y.dims(), &[2, 1, 7]);
/// assert!((out.mean.to_vec1::<f32>()?[0] - 25.5).abs() < 1e-4); // mean of the sums of 3
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
pub fn conv_batch_norm_act_train(
    x: &Tensor,
    w: &Tensor,
    conv_bias: Option<&Tensor>,
    spec: &ConvSpec,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    na: &NormActSpec,
) -> Result<BatchNormOutput> {
    const OP: &str = "conv_batch_norm_act_train";
    check_act(OP, na.act)?;
    if is_half(x) {
        let o = conv_batch_norm_act_train(
            &up(x)?,
            &up(w)?,
            up_opt(conv_bias)?.as_ref(),
            spec,
            up_opt(weight)?.as_ref(),
            up_opt(bias)?.as_ref(),
            na,
        )?;
        return down(o, x.dtype());
    }
    if !x.device().is_cpu() {
        let u = conv(x, w, None, spec)?;
        return batch_norm_act_train(&u, conv_bias, weight, bias, na.eps, na.act, na.order);
    }
    let (x, conv_op) = plan_conv(OP, x, w, spec)?;
    let fused = Fused::new(
        OP,
        &conv_op.geom.y_dims(),
        &x,
        [conv_bias, weight, bias],
        na.eps,
        na.act,
        na.order,
    )?;
    let op = ConvNormActOp {
        conv: conv_op,
        norm: fused.op.clone(),
        saved: Arc::default(),
    };
    let y = x
        .contiguous()?
        .apply_op3(&w.contiguous()?, &fused.prm, op)?;
    fused.output(OP, y)
}
