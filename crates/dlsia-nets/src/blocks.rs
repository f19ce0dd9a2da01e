//! Building blocks shared by the U-Net family: `Sequential`-indexed convolution blocks and the
//! per-level size arithmetic that replaces the original's construction-time sizing charts.

use candle_core::{Module, ModuleT, Tensor};
use dlsia_ops::nn::{Activation, Conv};
use dlsia_ops::{ActOrder, ConvSpec, FusedAct, ParamBuilder};

use crate::choices::{Act, Norm, NormLayer};
use crate::error::Result;

/// How a forward pass runs: training (batch statistics, graph recorded), evaluation (running
/// statistics, graph recorded so that eval-mode gradients exist) or inference (running
/// statistics, every intermediate detached as soon as it is produced, so that memory is freed
/// layer by layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// `forward_t(x, true)`.
    Train,
    /// `forward_t(x, false)`.
    Eval,
    /// `predict(x)`.
    Infer,
}

impl Pass {
    /// The pass of `forward_t(x, train)`.
    pub(crate) fn of(train: bool) -> Self {
        if train {
            Pass::Train
        } else {
            Pass::Eval
        }
    }

    /// Whether normalisation uses batch statistics.
    pub(crate) fn train(self) -> bool {
        self == Pass::Train
    }

    /// `t`, detached from the graph when inferring.
    pub(crate) fn keep(self, t: Tensor) -> Tensor {
        if self == Pass::Infer {
            t.detach()
        } else {
            t
        }
    }
}

/// Hands out consecutive `nn.Sequential` indices, so that module names shift exactly as in
/// PyTorch when optional layers (normalisation, activation) are absent.
#[derive(Debug, Default)]
pub(crate) struct SeqIndex(usize);

impl SeqIndex {
    /// The next index.
    pub(crate) fn next(&mut self) -> usize {
        self.0 += 1;
        self.0 - 1
    }
}

/// Geometry and layer choices common to the blocks of one network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockStyle {
    /// Number of spatial axes.
    pub nd: usize,
    /// Convolution kernel size (odd), padded by `(k − 1)/2` to keep the size.
    pub kernel: usize,
    /// Normalisation after each convolution.
    pub norm: Norm,
    /// Activation after each normalisation.
    pub act: Act,
}

impl BlockStyle {
    /// A size-preserving `k×k(×k)` convolution with bias.
    pub(crate) fn conv(&self, pb: &ParamBuilder, cin: usize, cout: usize) -> Result<Conv> {
        let spec = ConvSpec::uniform(self.nd, 1, (self.kernel - 1) / 2, 1);
        Ok(Conv::new(
            pb,
            cin,
            cout,
            &vec![self.kernel; self.nd],
            spec,
            true,
        )?)
    }

    /// A `1×1(×1)` convolution with bias.
    pub(crate) fn pointwise(&self, pb: &ParamBuilder, cin: usize, cout: usize) -> Result<Conv> {
        Ok(Conv::new(
            pb,
            cin,
            cout,
            &vec![1; self.nd],
            ConvSpec::new(self.nd),
            true,
        )?)
    }
}

/// `conv → [norm] → [act]`, registered at consecutive `Sequential` indices.
#[derive(Debug, Clone)]
pub(crate) struct ConvNormAct {
    conv: Conv,
    norm: Option<NormLayer>,
    act: Option<Activation>,
}

impl ConvNormAct {
    /// Registers the convolution and the optional layers under `pb` at indices from `idx`.
    pub(crate) fn new(
        pb: &ParamBuilder,
        idx: &mut SeqIndex,
        style: &BlockStyle,
        cin: usize,
        cout: usize,
    ) -> Result<Self> {
        let conv = style.conv(&pb.pp(idx.next()), cin, cout)?;
        let norm = if style.norm.is_some() {
            style.norm.layer(&pb.pp(idx.next()), cout)?
        } else {
            None
        };
        let act = style.act.layer();
        if act.is_some() {
            idx.next();
        }
        Ok(ConvNormAct { conv, norm, act })
    }

    /// Runs the three layers. In training with batch normalisation and a ReLU-type (or no)
    /// activation, the convolution's bias, the normalisation and the activation run as one
    /// fused op (same values and gradients, a fraction of the passes).
    pub(crate) fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        if let (Pass::Train, Some(NormLayer::Batch(bn))) = (pass, &self.norm) {
            let act = match &self.act {
                Some(a) => a.fused(),
                None => Some(FusedAct::Identity),
            };
            if let Some(act) = act {
                return Ok(bn.forward_conv_fused(&self.conv, x, act, ActOrder::AfterNorm)?);
            }
        }
        let mut y = pass.keep(self.conv.forward(x)?);
        if let Some(n) = &self.norm {
            y = pass.keep(n.forward_t(&y, pass.train())?);
        }
        if let Some(a) = &self.act {
            y = pass.keep(a.forward(&y)?);
        }
        Ok(y)
    }
}

/// dlsia's `build_unet_layer` (two [`ConvNormAct`]s) or, with `head`, `build_output_layer` (the
/// same plus a final 1×1 convolution to `head` channels).
#[derive(Debug, Clone)]
pub(crate) struct UnetBlock {
    first: ConvNormAct,
    second: ConvNormAct,
    head: Option<Conv>,
}

impl UnetBlock {
    /// `cin → mid → cout` [→ `head`] under the `Sequential` named by `pb`.
    pub(crate) fn new(
        pb: &ParamBuilder,
        style: &BlockStyle,
        cin: usize,
        mid: usize,
        cout: usize,
        head: Option<usize>,
    ) -> Result<Self> {
        let mut idx = SeqIndex::default();
        let first = ConvNormAct::new(pb, &mut idx, style, cin, mid)?;
        let second = ConvNormAct::new(pb, &mut idx, style, mid, cout)?;
        let head = match head {
            Some(c) => Some(style.pointwise(&pb.pp(idx.next()), cout, c)?),
            None => None,
        };
        Ok(UnetBlock {
            first,
            second,
            head,
        })
    }

    /// Runs the block.
    pub(crate) fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let y = self.second.forward(&self.first.forward(x, pass)?, pass)?;
        Ok(match &self.head {
            Some(h) => pass.keep(h.forward(&y)?),
            None => y,
        })
    }
}

/// Spatial sizes at every level of a U-Net whose levels are joined by max pooling with kernel =
/// stride = `pool` and no padding: `sizes[0] = input`, `sizes[l + 1] = ⌊sizes[l] / pool⌋`.
pub(crate) fn level_sizes(input: &[usize], depth: usize, pool: usize) -> Vec<Vec<usize>> {
    let mut out = vec![input.to_vec()];
    for l in 1..depth {
        let next = out[l - 1].iter().map(|&n| n / pool).collect();
        out.push(next);
    }
    out
}

/// The transposed-convolution `output_padding`, per axis, that brings `small` (upsampled by
/// `factor` with kernel = stride = `factor`) back to exactly `big`: `big − small·factor`.
pub(crate) fn output_padding(big: &[usize], small: &[usize], factor: usize) -> Vec<usize> {
    big.iter()
        .zip(small)
        .map(|(&b, &s)| b - s * factor)
        .collect()
}

/// The smallest spatial size (per axis) that survives `levels` poolings by `pool`.
pub(crate) fn min_size(pool: usize, levels: usize) -> usize {
    pool.saturating_pow(levels as u32)
}

/// Checks rank, channels and a minimum spatial size shared by the U-Nets; `what` names the rule.
pub(crate) fn check_unet_input(
    net: &'static str,
    shape: &[usize],
    nd: usize,
    in_channels: usize,
    min: usize,
    rule: &str,
) -> Result<()> {
    use crate::error::input_error;
    if shape.len() != nd + 2 {
        return Err(input_error(
            net,
            shape,
            format!(
                "expected rank {} ({}), one batch axis, one channel axis and {nd} spatial axes",
                nd + 2,
                if nd == 2 {
                    "N, C, H, W"
                } else {
                    "N, C, D, H, W"
                }
            ),
        ));
    }
    if shape[0] == 0 {
        return Err(input_error(net, shape, "the batch is empty"));
    }
    if shape[1] != in_channels {
        return Err(input_error(
            net,
            shape,
            format!("expected {in_channels} input channels, got {}", shape[1]),
        ));
    }
    if shape[2..].iter().any(|&n| n < min) {
        return Err(input_error(
            net,
            shape,
            format!("every spatial size must be at least {min} ({rule}); any size ≥ {min} works"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_output_padding_follow_the_original_chart() {
        // dlsia's chart for (33, 30), depth 4, pool 2: 33→16→8→4 and 30→15→7→3, with
        // output paddings (1,0), (0,1), (0,1) from level 1, 2, 3 back up.
        let s = level_sizes(&[33, 30], 4, 2);
        assert_eq!(s, vec![vec![33, 30], vec![16, 15], vec![8, 7], vec![4, 3]]);
        assert_eq!(output_padding(&s[0], &s[1], 2), vec![1, 0]);
        assert_eq!(output_padding(&s[1], &s[2], 2), vec![0, 1]);
        assert_eq!(output_padding(&s[2], &s[3], 2), vec![0, 1]);
        assert_eq!(level_sizes(&[10], 3, 3), vec![vec![10], vec![3], vec![1]]);
        assert_eq!(output_padding(&[10], &[3], 3), vec![1]);
        assert_eq!(min_size(2, 3), 8);
        assert_eq!(min_size(3, 0), 1);
    }

    #[test]
    fn sequential_indices_shift_with_missing_layers() {
        let mut i = SeqIndex::default();
        assert_eq!((i.next(), i.next(), i.next()), (0, 1, 2));
    }
}
