//! The fully connected building blocks of the `sparsenet` heads.

use candle_core::{Module, ModuleT, Tensor};
use dlsia_ops::nn::{BatchNorm, Dropout, Linear};
use dlsia_ops::ParamBuilder;

use crate::blocks::Pass;
use crate::error::Result;

/// `nn.Sequential([Linear, BatchNorm1d, ReLU, Dropout] × k, Linear)` through `widths`
/// (`widths[0]` inputs, `widths[last]` outputs), children named `0, 1, 4, 5, 8, …` as
/// PyTorch numbers them.
#[derive(Debug, Clone)]
pub(crate) struct FcStack {
    hidden: Vec<(Linear, BatchNorm, Dropout)>,
    last: Linear,
}

impl FcStack {
    pub(crate) fn new(pb: &ParamBuilder, widths: &[usize], dropout: f64) -> Result<Self> {
        let k = widths.len() - 2;
        let hidden = (0..k)
            .map(|i| {
                Ok((
                    Linear::new(&pb.pp(4 * i), widths[i], widths[i + 1], true)?,
                    BatchNorm::new(&pb.pp(4 * i + 1), widths[i + 1])?,
                    Dropout::new(pb, dropout)?,
                ))
            })
            .collect::<Result<_>>()?;
        let last = Linear::new(&pb.pp(4 * k), widths[k], widths[k + 1], true)?;
        Ok(FcStack { hidden, last })
    }

    pub(crate) fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let mut h = x.clone();
        for (lin, bn, drop) in &self.hidden {
            let y = pass.keep(bn.forward_t(&pass.keep(lin.forward(&h)?), pass.train())?);
            h = pass.keep(drop.forward_t(&y.relu()?, pass.train())?);
        }
        Ok(pass.keep(self.last.forward(&h)?))
    }
}

/// `Linear → BatchNorm1d`, optionally followed by ReLU and dropout: one layer of the
/// classifier heads of `SparseAEC` and `SparseLabeler`.
#[derive(Debug, Clone)]
pub(crate) struct FcBn {
    pub(crate) linear: Linear,
    pub(crate) bn: BatchNorm,
}

impl FcBn {
    /// `bn(linear(x))`, then ReLU and `drop` when given.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        relu_drop: Option<&Dropout>,
        pass: Pass,
    ) -> Result<Tensor> {
        let y = pass.keep(
            self.bn
                .forward_t(&pass.keep(self.linear.forward(x)?), pass.train())?,
        );
        Ok(match relu_drop {
            Some(d) => pass.keep(d.forward_t(&y.relu()?, pass.train())?),
            None => y,
        })
    }
}

/// Flattens `(N, C, Y, X)` to `(N, C·Y·X)`.
pub(crate) fn flatten(x: &Tensor) -> Result<Tensor> {
    let n = x.dim(0)?;
    Ok(x.reshape((n, ()))?)
}
