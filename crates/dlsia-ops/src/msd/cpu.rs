//! The CPU forward and backward passes of the fused block, layer block by layer block.
//!
//! Layers are processed `lpp` at a time ("layers per pass"). Forward: all units of a block first
//! accumulate the contributions of the channels before the block in one sweep over those
//! channels (each channel is read once for `lpp` layers, which divides memory traffic by
//! `lpp`); then, layer by layer, each finished layer is pushed into all later layers of the
//! block in one sweep, which completes the next layer (ReLU, or normalisation and ReLU).
//! Backward, in reverse with one gradient buffer: each layer's output gradient is finalised
//! once all later layers of the block have been pulled into it in one sweep; at the end of the
//! block all its units are swept into the channels before the block.

use super::backward::{BwdPhase, GradPad};
use super::buf::Shared;
use super::forward::{FwdPhase, Start};
use super::geom::Geom;
use super::norm::{self, Planes, Stats};
use super::simd::{Float, Level};

/// How the normalisation of a call gets its statistics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StatsMode {
    /// Batch statistics (training).
    Batch,
    /// Given running statistics, one per unit (evaluation).
    Running(Vec<Stats>),
}

/// Normalisation settings of one call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NormRun {
    /// Added to the variance.
    pub eps: f64,
    /// Where the statistics come from.
    pub mode: StatsMode,
}

fn blocks(depth: usize, lpp: usize) -> Vec<(usize, usize)> {
    let lpp = lpp.max(1);
    (0..depth)
        .step_by(lpp)
        .map(|i0| (i0, (i0 + lpp).min(depth)))
        .collect()
}

/// Forward pass: the buffer `(N, channels, plane)` and, with normalisation, the statistics used
/// for every unit. `params` is `[bias]` or `[bias, γ, β]` (one entry per unit each).
pub(crate) fn forward<T: Float>(
    g: &Geom,
    x: &[T],
    weights: &[T],
    params: &[T],
    norm: Option<&NormRun>,
    lpp: usize,
    level: Level,
) -> (Vec<T>, Vec<Stats>) {
    let (n, ch, plane, cin) = (g.n, g.channels, g.plane(), g.spec.in_channels);
    let nu = g.units.len();
    let mut buf = vec![T::ZERO; n * ch * plane];
    for b in 0..n {
        buf[b * ch * plane..][..cin * plane].copy_from_slice(&x[b * cin * plane..][..cin * plane]);
    }
    let pl = Planes {
        n,
        stride: ch,
        plane,
    };
    let mut stats = Vec::new();
    let w = g.spec.width;
    for (i0, i1) in blocks(g.spec.depth(), lpp) {
        let bu = &g.units[i0 * w..i1 * w];
        let last_of = |l: usize| -> Vec<bool> {
            bu.iter()
                .map(|u| norm.is_none() && (u.channel - cin) / w == l)
                .collect()
        };
        // Everything before the block, into every unit of the block.
        {
            let sh = Shared::new(&mut buf);
            FwdPhase {
                geom: g,
                input: sh,
                out: sh,
                out_stride: ch,
                out_slot: bu.iter().map(|u| u.channel).collect(),
                units: bu,
                weights,
                c0: 0,
                c1: g.layer_prefix(i0),
                start: Start::Values(bu.iter().map(|u| params[u.channel - cin]).collect()),
                relu: last_of(i0),
            }
            .run(level);
        }
        for l in i0..i1 {
            if let Some(nr) = norm {
                for u in g.layer(l) {
                    let i = u.channel - cin;
                    let s = match &nr.mode {
                        StatsMode::Batch => norm::batch_stats(&buf, pl, u.channel),
                        StatsMode::Running(r) => r[i],
                    };
                    let (gamma, beta) = (params[nu + i].into(), params[2 * nu + i].into());
                    norm::normalize_relu(&mut buf, pl, u.channel, s, nr.eps, gamma, beta);
                    stats.push(s);
                }
            }
            if l + 1 < i1 {
                // Layer l is final: push it into the later layers of the block, which completes
                // layer l + 1.
                let later = &g.units[(l + 1) * w..i1 * w];
                let sh = Shared::new(&mut buf);
                FwdPhase {
                    geom: g,
                    input: sh,
                    out: sh,
                    out_stride: ch,
                    out_slot: later.iter().map(|u| u.channel).collect(),
                    units: later,
                    weights,
                    c0: g.layer_prefix(l),
                    c1: g.layer_prefix(l + 1),
                    start: Start::Output,
                    relu: later
                        .iter()
                        .map(|u| norm.is_none() && (u.channel - cin) / w == l + 1)
                        .collect(),
                }
                .run(level);
            }
        }
    }
    (buf, stats)
}

/// Backward pass. `fwd` is the forward buffer, `grad` the gradient of the loss with respect to
/// it, `stats` the statistics the forward pass used (with normalisation). Returns `∂L/∂x`
/// (`(N, in_channels, plane)`), `∂L/∂weights` and `∂L/∂params`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Float>(
    g: &Geom,
    fwd: &[T],
    grad: &[T],
    weights: &[T],
    params: &[T],
    norm: Option<(&NormRun, &[Stats])>,
    lpp: usize,
    level: Level,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (n, ch, plane, cin) = (g.n, g.channels, g.plane(), g.spec.in_channels);
    let nu = g.units.len();
    let w = g.spec.width;
    let mut gb = grad.to_vec();
    let mut dw = vec![0.0f64; g.weight_len()];
    let mut dp = vec![0.0f64; params.len()];
    let pl = Planes {
        n,
        stride: ch,
        plane,
    };
    for (i0, i1) in blocks(g.spec.depth(), lpp).into_iter().rev() {
        let bu = &g.units[i0 * w..i1 * w];
        // With normalisation, recompute the pre-normalisation values z of the block.
        let z = norm.map(|(nr, _)| {
            let mut z = vec![T::ZERO; n * bu.len() * plane];
            FwdPhase {
                geom: g,
                input: Shared::read_only(fwd),
                out: Shared::new(&mut z),
                out_stride: bu.len(),
                out_slot: (0..bu.len()).collect(),
                units: bu,
                weights,
                c0: 0,
                c1: g.layer_prefix(i1 - 1),
                start: Start::Values(bu.iter().map(|u| params[u.channel - cin]).collect()),
                relu: vec![false; bu.len()],
            }
            .run(level);
            (z, nr)
        });
        let zp = Planes {
            n,
            stride: bu.len(),
            plane,
        };
        let mut gpad = GradPad::<T>::new(g, bu.len());
        for l in (i0..i1).rev() {
            let first = (l - i0) * w;
            for (k, &u) in bu.iter().enumerate().skip(first).take(w) {
                let i = u.channel - cin;
                // Mask by the ReLU: the output is positive exactly where the ReLU passed.
                for b in 0..n {
                    let at = (b * ch + u.channel) * plane;
                    for (gv, &rv) in gb[at..at + plane].iter_mut().zip(&fwd[at..at + plane]) {
                        if rv <= T::ZERO {
                            *gv = T::ZERO;
                        }
                    }
                }
                if let (Some((z, nr)), Some((_, st))) = (&z, norm) {
                    let ng = norm::backward(
                        &mut gb,
                        pl,
                        u.channel,
                        z,
                        zp,
                        k,
                        st[i],
                        nr.eps,
                        params[nu + i].into(),
                        nr.mode == StatsMode::Batch,
                    );
                    dp[nu + i] += ng.gamma;
                    dp[2 * nu + i] += ng.beta;
                }
                let mut db = 0.0;
                for b in 0..n {
                    let at = (b * ch + u.channel) * plane;
                    db += gb[at..at + plane]
                        .iter()
                        .map(|&v| Into::<f64>::into(v))
                        .sum::<f64>();
                }
                dp[i] += db;
                gpad.set(g, k, &gb, ch, u.channel);
            }
            if l > i0 {
                // Pull every later layer of the block into layer l − 1, which completes its
                // output gradient.
                let later = &g.units[l * w..i1 * w];
                let first = (l - i0) * w;
                let gbs = Shared::new(&mut gb);
                BwdPhase {
                    geom: g,
                    fwd: Shared::read_only(fwd),
                    grad: gbs,
                    gpad: &gpad,
                    gpad_slot: (first..first + later.len()).collect(),
                    units: later,
                    weights,
                    c0: g.layer_prefix(l - 1),
                    c1: g.layer_prefix(l),
                }
                .run(level, &mut dw);
            }
        }
        let gbs = Shared::new(&mut gb);
        BwdPhase {
            geom: g,
            fwd: Shared::read_only(fwd),
            grad: gbs,
            gpad: &gpad,
            gpad_slot: (0..bu.len()).collect(),
            units: bu,
            weights,
            c0: 0,
            c1: g.layer_prefix(i0),
        }
        .run(level, &mut dw);
    }
    let mut dx = vec![T::ZERO; n * cin * plane];
    for b in 0..n {
        dx[b * cin * plane..][..cin * plane].copy_from_slice(&gb[b * ch * plane..][..cin * plane]);
    }
    let conv = |v: Vec<f64>| v.into_iter().map(T::of).collect::<Vec<T>>();
    (dx, conv(dw), conv(dp))
}
