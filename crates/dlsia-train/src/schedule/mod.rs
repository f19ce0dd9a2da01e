//! Learning-rate schedules: the [`Scheduler`] trait the trainer drives, the serde
//! [`SchedulerConfig`] (step, multi-step, exponential, cosine with warm-up, one-cycle,
//! reduce-on-plateau) and [`LrSchedule`], which implements it for every configuration.
//!
//! Every schedule follows PyTorch's formula of the same name (checked against
//! `torch.optim.lr_scheduler` on a committed fixture) and counts either epochs or optimizer
//! steps ([`Interval`]). The rate returned by [`Scheduler::lr`] is the one the next optimizer
//! step uses.
//!
//! ```
//! use dlsia_train::monitor::Goal;
//! use dlsia_train::schedule::{LrSchedule, Scheduler, SchedulerConfig};
//!
//! let cfg: SchedulerConfig = toml::from_str("kind = \"step\"\nstep_size = 2\ngamma = 0.5").unwrap();
//! let mut s = LrSchedule::new(&cfg, 0.1, Goal::Minimize, 6, 10)?;
//! let mut lrs = vec![];
//! for _ in 0..6 {
//!     lrs.push(s.lr());
//!     s.after_epoch(None);
//! }
//! assert_eq!(lrs, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
//! # Ok::<(), dlsia_train::Error>(())
//! ```

mod config;
mod formulas;
mod plateau;

use serde::{Deserialize, Serialize};

pub use config::{
    Anneal, CosineConfig, ExponentialConfig, Interval, MultiStepConfig, OneCycleConfig,
    PlateauConfig, SchedulerConfig, StepConfig, ThresholdMode,
};
pub use plateau::PlateauState;

use crate::error::{config_err, state_err, Result};
use crate::monitor::Goal;

/// Sets the learning rate (and optionally the momentum) of every optimizer step.
///
/// The trainer calls [`Scheduler::lr`] and [`Scheduler::momentum`] before each optimizer step,
/// [`Scheduler::after_step`] after it, and [`Scheduler::after_epoch`] at the end of each epoch
/// with the monitored metric. State is saved in checkpoints as JSON.
pub trait Scheduler: Send {
    /// The learning rate of the next optimizer step.
    fn lr(&self) -> f64;
    /// The momentum (SGD momentum or Adam β₁) of the next step, if the schedule sets it.
    fn momentum(&self) -> Option<f64> {
        None
    }
    /// Called after every optimizer step.
    fn after_step(&mut self) {}
    /// Called at the end of every epoch with the monitored metric (`None` if undefined).
    fn after_epoch(&mut self, _monitored: Option<f64>) {}
    /// The schedule's position and memory, for checkpoints.
    fn state(&self) -> serde_json::Value;
    /// Restores a state saved by [`Scheduler::state`].
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()>;
}

/// Where a schedule is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Position {
    /// Epochs completed.
    epoch: u64,
    /// Optimizer steps completed.
    step: u64,
    /// Reduce-on-plateau memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plateau: Option<PlateauState>,
}

/// Every [`SchedulerConfig`] as a [`Scheduler`].
#[derive(Debug, Clone)]
pub struct LrSchedule {
    config: SchedulerConfig,
    base_lr: f64,
    /// Units (epochs or steps) in the whole run.
    units: u64,
    goal: Goal,
    pos: Position,
}

impl LrSchedule {
    /// A schedule for a run of `epochs` epochs of `steps_per_epoch` optimizer steps, starting
    /// from the optimizer's rate `base_lr`; `goal` says whether the monitored metric (used by
    /// reduce-on-plateau) is minimised or maximised.
    pub fn new(
        config: &SchedulerConfig,
        base_lr: f64,
        goal: Goal,
        epochs: usize,
        steps_per_epoch: usize,
    ) -> Result<Self> {
        config.check()?;
        if !(base_lr.is_finite() && base_lr > 0.0) {
            return Err(config_err(
                "optimizer.lr",
                format!("must be finite and > 0, got {base_lr}"),
            ));
        }
        let units = match config.interval() {
            Interval::Epoch => epochs as u64,
            Interval::Step => (epochs * steps_per_epoch) as u64,
        };
        if let SchedulerConfig::Cosine(c) = config {
            if c.t_max.is_none() && units <= c.warmup as u64 {
                return Err(config_err(
                    "scheduler.warmup",
                    format!(
                        "a warm-up of {} units leaves no room for the cosine in a run of {units} units; shorten it or set t_max",
                        c.warmup
                    ),
                ));
            }
        }
        if let SchedulerConfig::OneCycle(c) = config {
            if c.total_steps.is_none() && units == 0 {
                return Err(config_err(
                    "scheduler.total_steps",
                    "the run has no steps to cycle over",
                ));
            }
        }
        let plateau = matches!(config, SchedulerConfig::ReduceOnPlateau(_))
            .then(|| PlateauState::new(base_lr));
        Ok(Self {
            config: config.clone(),
            base_lr,
            units,
            goal,
            pos: Position {
                plateau,
                ..Position::default()
            },
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    fn t(&self, interval: Interval) -> u64 {
        match interval {
            Interval::Epoch => self.pos.epoch,
            Interval::Step => self.pos.step,
        }
    }

    fn one_cycle(&self) -> Option<(f64, f64)> {
        match &self.config {
            SchedulerConfig::OneCycle(c) => {
                let total = c.total_steps.map_or(self.units, |n| n as u64);
                Some(formulas::one_cycle(c, total, self.t(c.interval)))
            }
            _ => None,
        }
    }
}

impl Scheduler for LrSchedule {
    fn lr(&self) -> f64 {
        let base = self.base_lr;
        match &self.config {
            SchedulerConfig::Constant => base,
            SchedulerConfig::Step(c) => formulas::step(c, base, self.t(c.interval)),
            SchedulerConfig::MultiStep(c) => formulas::multi_step(c, base, self.t(c.interval)),
            SchedulerConfig::Exponential(c) => formulas::exponential(c, base, self.t(c.interval)),
            SchedulerConfig::Cosine(c) => {
                let t_max = c
                    .t_max
                    .map_or(self.units.saturating_sub(c.warmup as u64), |n| n as u64);
                formulas::cosine(c, t_max.max(1), base, self.t(c.interval))
            }
            SchedulerConfig::OneCycle(_) => self.one_cycle().map_or(base, |(lr, _)| lr),
            SchedulerConfig::ReduceOnPlateau(_) => self.pos.plateau.as_ref().map_or(base, |p| p.lr),
        }
    }

    fn momentum(&self) -> Option<f64> {
        match &self.config {
            SchedulerConfig::OneCycle(c) if c.cycle_momentum => self.one_cycle().map(|m| m.1),
            _ => None,
        }
    }

    fn after_step(&mut self) {
        self.pos.step += 1;
    }

    fn after_epoch(&mut self, monitored: Option<f64>) {
        self.pos.epoch += 1;
        if let (SchedulerConfig::ReduceOnPlateau(c), Some(p)) =
            (&self.config, self.pos.plateau.as_mut())
        {
            p.update(c, self.goal, monitored);
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.pos).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let pos: Position = serde_json::from_value(state.clone())
            .map_err(|e| state_err("scheduler", format!("malformed state {state}: {e}")))?;
        let is_plateau = matches!(self.config, SchedulerConfig::ReduceOnPlateau(_));
        if pos.plateau.is_some() != is_plateau {
            return Err(state_err(
                "scheduler",
                "the saved state is of another kind of schedule; configure the same scheduler to resume",
            ));
        }
        self.pos = pos;
        Ok(())
    }
}
