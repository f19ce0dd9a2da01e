//! Closed-form learning rates and momenta of the counter-based schedules.

use std::f64::consts::PI;

use super::config::{
    Anneal, CosineConfig, ExponentialConfig, MultiStepConfig, OneCycleConfig, StepConfig,
};

/// `StepLR` at unit `t`.
pub(crate) fn step(c: &StepConfig, base: f64, t: u64) -> f64 {
    base * c.gamma.powi((t / c.step_size as u64) as i32)
}

/// `MultiStepLR` at unit `t`.
pub(crate) fn multi_step(c: &MultiStepConfig, base: f64, t: u64) -> f64 {
    let passed = c.milestones.iter().filter(|&&m| m as u64 <= t).count();
    base * c.gamma.powi(passed as i32)
}

/// `ExponentialLR` at unit `t`.
pub(crate) fn exponential(c: &ExponentialConfig, base: f64, t: u64) -> f64 {
    base * c.gamma.powf(t as f64)
}

/// Linear warm-up then half cosine (length `t_max`) at unit `t`.
pub(crate) fn cosine(c: &CosineConfig, t_max: u64, base: f64, t: u64) -> f64 {
    let w = c.warmup as u64;
    if t < w {
        let f = c.warmup_start_factor + (1.0 - c.warmup_start_factor) * t as f64 / w as f64;
        return base * f;
    }
    let tc = t - w;
    if tc >= t_max {
        return c.eta_min;
    }
    c.eta_min + (base - c.eta_min) * (1.0 + (PI * tc as f64 / t_max as f64).cos()) / 2.0
}

fn anneal(kind: Anneal, start: f64, end: f64, pct: f64) -> f64 {
    match kind {
        Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
        Anneal::Linear => (end - start) * pct + start,
    }
}

/// One phase of a one-cycle schedule: it ends at (fractional) unit `end`.
struct Phase {
    end: f64,
    lr: (f64, f64),
    momentum: (f64, f64),
}

fn phases(c: &OneCycleConfig, total: u64) -> Vec<Phase> {
    let initial = c.max_lr / c.div_factor;
    let min_lr = initial / c.final_div_factor;
    let (lo, hi) = (c.base_momentum, c.max_momentum);
    let total = total as f64;
    if c.three_phase {
        vec![
            Phase {
                end: c.pct_start * total - 1.0,
                lr: (initial, c.max_lr),
                momentum: (hi, lo),
            },
            Phase {
                end: 2.0 * c.pct_start * total - 2.0,
                lr: (c.max_lr, initial),
                momentum: (lo, hi),
            },
            Phase {
                end: total - 1.0,
                lr: (initial, min_lr),
                momentum: (hi, hi),
            },
        ]
    } else {
        vec![
            Phase {
                end: c.pct_start * total - 1.0,
                lr: (initial, c.max_lr),
                momentum: (hi, lo),
            },
            Phase {
                end: total - 1.0,
                lr: (c.max_lr, min_lr),
                momentum: (lo, hi),
            },
        ]
    }
}

/// `OneCycleLR` learning rate and momentum at unit `t` of a cycle of `total` units; past the
/// end of the cycle both stay at their final values.
pub(crate) fn one_cycle(c: &OneCycleConfig, total: u64, t: u64) -> (f64, f64) {
    let ps = phases(c, total);
    let t = t.min(total.saturating_sub(1)) as f64;
    let k = ps.iter().position(|p| t <= p.end).unwrap_or(ps.len() - 1);
    let start = if k == 0 { 0.0 } else { ps[k - 1].end };
    let p = &ps[k];
    let span = p.end - start;
    let pct = if span > 0.0 {
        ((t - start) / span).clamp(0.0, 1.0)
    } else {
        1.0
    };
    (
        anneal(c.anneal, p.lr.0, p.lr.1, pct),
        anneal(c.anneal, p.momentum.0, p.momentum.1, pct),
    )
}
