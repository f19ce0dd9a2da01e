//! [`SchedulerConfig`]: a learning-rate schedule chosen by `kind`, as serde data.

use serde::{Deserialize, Serialize};

use crate::error::{config_err, Result};

/// What a schedule counts: epochs (it advances once per epoch, as dlsia's scripts call
/// `scheduler.step()`) or optimizer steps (once per optimizer step, as PyTorch's one-cycle
/// schedule is used).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// Once per epoch.
    #[default]
    Epoch,
    /// Once per optimizer step (after gradient accumulation).
    Step,
}

fn step_interval() -> Interval {
    Interval::Step
}
fn tenth() -> f64 {
    0.1
}
fn third() -> f64 {
    1.0 / 3.0
}
fn pct_start() -> f64 {
    0.3
}
fn div_factor() -> f64 {
    25.0
}
fn final_div_factor() -> f64 {
    1e4
}
fn yes() -> bool {
    true
}
fn base_momentum() -> f64 {
    0.85
}
fn max_momentum() -> f64 {
    0.95
}
fn plateau_patience() -> usize {
    10
}
fn plateau_threshold() -> f64 {
    1e-4
}
fn plateau_eps() -> f64 {
    1e-8
}

/// `lr = base · γ^⌊t / step_size⌋` (PyTorch `StepLR`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Units (epochs or steps) between decays, ≥ 1.
    pub step_size: usize,
    /// Decay factor (default 0.1).
    #[serde(default = "tenth")]
    pub gamma: f64,
    /// What `t` counts (default epochs).
    #[serde(default)]
    pub interval: Interval,
}

/// `lr = base · γ^(number of milestones ≤ t)` (PyTorch `MultiStepLR`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiStepConfig {
    /// Strictly increasing units at which the rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    /// Decay factor (default 0.1).
    #[serde(default = "tenth")]
    pub gamma: f64,
    /// What `t` counts (default epochs).
    #[serde(default)]
    pub interval: Interval,
}

/// `lr = base · γ^t` (PyTorch `ExponentialLR`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExponentialConfig {
    /// Decay factor per unit, in `(0, 1]`.
    pub gamma: f64,
    /// What `t` counts (default epochs).
    #[serde(default)]
    pub interval: Interval,
}

/// Linear warm-up from `base · warmup_start_factor` to `base` over `warmup` units (PyTorch
/// `LinearLR`), then a half cosine from `base` down to `eta_min` over `t_max` units (PyTorch
/// `CosineAnnealingLR`), then `eta_min` (the rate does not climb back up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineConfig {
    /// Length of the cosine in units (default: the rest of the run after the warm-up).
    #[serde(default)]
    pub t_max: Option<usize>,
    /// Final learning rate (default 0).
    #[serde(default)]
    pub eta_min: f64,
    /// Warm-up length in units (default 0: no warm-up).
    #[serde(default)]
    pub warmup: usize,
    /// Learning rate at the first warm-up unit as a fraction of the base rate, in `(0, 1]`
    /// (default 1/3, PyTorch `LinearLR`'s).
    #[serde(default = "third")]
    pub warmup_start_factor: f64,
    /// What `t` counts (default epochs).
    #[serde(default)]
    pub interval: Interval,
}

/// How a one-cycle phase interpolates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// Half cosine (default).
    #[default]
    Cos,
    /// Straight line.
    Linear,
}

/// PyTorch `OneCycleLR`: from `max_lr/div_factor` up to `max_lr` over the first `pct_start` of
/// the run, then down to `max_lr/(div_factor·final_div_factor)`; the momentum (SGD momentum or
/// Adam β₁) cycles the opposite way between `max_momentum` and `base_momentum`. The optimizer's
/// own `lr` is ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneCycleConfig {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Length of the cycle in units (default: the whole run).
    #[serde(default)]
    pub total_steps: Option<usize>,
    /// Fraction of the cycle spent increasing the rate (default 0.3).
    #[serde(default = "pct_start")]
    pub pct_start: f64,
    /// Interpolation (default cosine).
    #[serde(default)]
    pub anneal: Anneal,
    /// `initial_lr = max_lr / div_factor` (default 25).
    #[serde(default = "div_factor")]
    pub div_factor: f64,
    /// `min_lr = initial_lr / final_div_factor` (default 1e4).
    #[serde(default = "final_div_factor")]
    pub final_div_factor: f64,
    /// Three phases (up, down to the initial rate, annihilation) instead of two.
    #[serde(default)]
    pub three_phase: bool,
    /// Cycle the momentum too (default true, PyTorch's).
    #[serde(default = "yes")]
    pub cycle_momentum: bool,
    /// Momentum at the peak rate (default 0.85).
    #[serde(default = "base_momentum")]
    pub base_momentum: f64,
    /// Momentum at the start and end (default 0.95).
    #[serde(default = "max_momentum")]
    pub max_momentum: f64,
    /// What `t` counts (default optimizer steps).
    #[serde(default = "step_interval")]
    pub interval: Interval,
}

/// Whether a plateau threshold is relative or absolute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// Improvement means better than `best · (1 ∓ threshold)` (default).
    #[default]
    Rel,
    /// Improvement means better than `best ∓ threshold`.
    Abs,
}

/// PyTorch `ReduceLROnPlateau` on the monitored metric (minimised for losses, maximised for
/// scores): after more than `patience` epochs without improvement the rate is multiplied by
/// `factor` (not below `min_lr`), then `cooldown` epochs pass before counting again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateauConfig {
    /// Multiplier of the rate, in `(0, 1)` (default 0.1).
    #[serde(default = "tenth")]
    pub factor: f64,
    /// Epochs without improvement tolerated (default 10).
    #[serde(default = "plateau_patience")]
    pub patience: usize,
    /// Minimal improvement (default 1e-4).
    #[serde(default = "plateau_threshold")]
    pub threshold: f64,
    /// Relative (default) or absolute threshold.
    #[serde(default)]
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction (default 0).
    #[serde(default)]
    pub cooldown: usize,
    /// Lower bound of the rate (default 0).
    #[serde(default)]
    pub min_lr: f64,
    /// Reductions smaller than this are skipped (default 1e-8).
    #[serde(default = "plateau_eps")]
    pub eps: f64,
}

/// A learning-rate schedule by `kind`; missing keys take PyTorch's defaults, unknown keys are
/// errors.
///
/// ```
/// use dlsia_train::schedule::SchedulerConfig;
/// let c: SchedulerConfig = toml::from_str("kind = \"cosine\"\nwarmup = 2\neta_min = 1e-5").unwrap();
/// c.check().unwrap();
/// let c: SchedulerConfig = toml::from_str("kind = \"multi_step\"\nmilestones = [30, 80]").unwrap();
/// c.check().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchedulerConfig {
    /// The optimizer's rate throughout.
    Constant,
    /// [`StepConfig`].
    Step(StepConfig),
    /// [`MultiStepConfig`].
    MultiStep(MultiStepConfig),
    /// [`ExponentialConfig`].
    Exponential(ExponentialConfig),
    /// [`CosineConfig`].
    Cosine(CosineConfig),
    /// [`OneCycleConfig`].
    OneCycle(OneCycleConfig),
    /// [`PlateauConfig`].
    ReduceOnPlateau(PlateauConfig),
}

fn check_factor(key: &str, v: f64, lo_open: f64, hi_closed: f64) -> Result<()> {
    if !(v.is_finite() && v > lo_open && v <= hi_closed) {
        return Err(config_err(
            key,
            format!("must be in ({lo_open}, {hi_closed}], got {v}"),
        ));
    }
    Ok(())
}

fn check_nonneg(key: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(config_err(key, format!("must be finite and >= 0, got {v}")));
    }
    Ok(())
}

impl SchedulerConfig {
    /// What the schedule counts.
    pub fn interval(&self) -> Interval {
        match self {
            SchedulerConfig::Constant | SchedulerConfig::ReduceOnPlateau(_) => Interval::Epoch,
            SchedulerConfig::Step(c) => c.interval,
            SchedulerConfig::MultiStep(c) => c.interval,
            SchedulerConfig::Exponential(c) => c.interval,
            SchedulerConfig::Cosine(c) => c.interval,
            SchedulerConfig::OneCycle(c) => c.interval,
        }
    }

    /// Whether the schedule needs the monitored metric at the end of every epoch.
    pub fn needs_metric(&self) -> bool {
        matches!(self, SchedulerConfig::ReduceOnPlateau(_))
    }

    /// Checks every hyperparameter that does not depend on the run's length, naming the key of
    /// the first bad one.
    pub fn check(&self) -> Result<()> {
        match self {
            SchedulerConfig::Constant => Ok(()),
            SchedulerConfig::Step(c) => {
                if c.step_size == 0 {
                    return Err(config_err("scheduler.step_size", "must be at least 1"));
                }
                check_factor("scheduler.gamma", c.gamma, 0.0, 1.0)
            }
            SchedulerConfig::MultiStep(c) => {
                if c.milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(config_err(
                        "scheduler.milestones",
                        format!("must be strictly increasing, got {:?}", c.milestones),
                    ));
                }
                check_factor("scheduler.gamma", c.gamma, 0.0, 1.0)
            }
            SchedulerConfig::Exponential(c) => check_factor("scheduler.gamma", c.gamma, 0.0, 1.0),
            SchedulerConfig::Cosine(c) => {
                if c.t_max == Some(0) {
                    return Err(config_err("scheduler.t_max", "must be at least 1"));
                }
                check_nonneg("scheduler.eta_min", c.eta_min)?;
                check_factor(
                    "scheduler.warmup_start_factor",
                    c.warmup_start_factor,
                    0.0,
                    1.0,
                )
            }
            SchedulerConfig::OneCycle(c) => {
                if !(c.max_lr.is_finite() && c.max_lr > 0.0) {
                    return Err(config_err(
                        "scheduler.max_lr",
                        format!("must be finite and > 0, got {}", c.max_lr),
                    ));
                }
                if c.total_steps == Some(0) {
                    return Err(config_err("scheduler.total_steps", "must be at least 1"));
                }
                if !(c.pct_start > 0.0 && c.pct_start < 1.0) {
                    return Err(config_err(
                        "scheduler.pct_start",
                        format!("must be in (0, 1), got {}", c.pct_start),
                    ));
                }
                for (k, v) in [
                    ("scheduler.div_factor", c.div_factor),
                    ("scheduler.final_div_factor", c.final_div_factor),
                ] {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(config_err(k, format!("must be finite and > 0, got {v}")));
                    }
                }
                if c.cycle_momentum {
                    check_nonneg("scheduler.base_momentum", c.base_momentum)?;
                    if !(c.max_momentum.is_finite() && c.max_momentum < 1.0) {
                        return Err(config_err(
                            "scheduler.max_momentum",
                            format!("must be < 1, got {}", c.max_momentum),
                        ));
                    }
                }
                Ok(())
            }
            SchedulerConfig::ReduceOnPlateau(c) => {
                if !(c.factor > 0.0 && c.factor < 1.0) {
                    return Err(config_err(
                        "scheduler.factor",
                        format!("must be in (0, 1), got {}", c.factor),
                    ));
                }
                check_nonneg("scheduler.threshold", c.threshold)?;
                check_nonneg("scheduler.min_lr", c.min_lr)?;
                check_nonneg("scheduler.eps", c.eps)
            }
        }
    }
}
