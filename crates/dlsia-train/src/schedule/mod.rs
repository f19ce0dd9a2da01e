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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: &str, base: f64, epochs: usize, steps: usize, n: usize) -> Vec<f64> {
        let cfg: SchedulerConfig = toml::from_str(cfg).unwrap();
        let mut s = LrSchedule::new(&cfg, base, Goal::Minimize, epochs, steps).unwrap();
        (0..n)
            .map(|_| {
                let lr = s.lr();
                s.after_epoch(None);
                lr
            })
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn hand_computed_epoch_sequences() {
        close(
            &run("kind = \"multi_step\"\nmilestones = [1, 3]", 0.1, 5, 1, 5),
            &[0.1, 0.01, 0.01, 0.001, 0.001],
        );
        close(
            &run("kind = \"exponential\"\ngamma = 0.5", 0.1, 4, 1, 4),
            &[0.1, 0.05, 0.025, 0.0125],
        );
        // Warm-up 0.5 → 1 over 2 epochs, then a half cosine of 4 epochs, then eta_min.
        let c = std::f64::consts::FRAC_1_SQRT_2;
        let want = [
            0.5,
            0.75,
            1.0,
            (1.0 + c) / 2.0,
            0.5,
            (1.0 - c) / 2.0,
            0.0,
            0.0,
        ];
        close(
            &run(
                "kind = \"cosine\"\nwarmup = 2\nwarmup_start_factor = 0.5\nt_max = 4",
                1.0,
                8,
                1,
                8,
            ),
            &want,
        );
        // Without t_max the cosine fills the rest of the run (6 epochs - 2 of warm-up).
        close(
            &run(
                "kind = \"cosine\"\nwarmup = 2\nwarmup_start_factor = 0.5",
                1.0,
                6,
                1,
                7,
            ),
            &want[..7],
        );
        close(&run("kind = \"constant\"", 0.3, 3, 1, 3), &[0.3, 0.3, 0.3]);
    }

    #[test]
    fn step_interval_counts_optimizer_steps() {
        let cfg: SchedulerConfig =
            toml::from_str("kind = \"step\"\nstep_size = 2\ngamma = 0.5\ninterval = \"step\"")
                .unwrap();
        let mut s = LrSchedule::new(&cfg, 1.0, Goal::Minimize, 2, 3).unwrap();
        let mut lrs = vec![];
        for _ in 0..2 {
            for _ in 0..3 {
                lrs.push(s.lr());
                s.after_step();
            }
            s.after_epoch(None);
        }
        close(&lrs, &[1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
    }

    #[test]
    fn one_cycle_end_points_by_hand() {
        let cfg: SchedulerConfig =
            toml::from_str("kind = \"one_cycle\"\nmax_lr = 1.0\npct_start = 0.2").unwrap();
        // 11 steps: phase one ends at 0.2·11 − 1 = 1.2.
        let mut s = LrSchedule::new(&cfg, 0.5, Goal::Minimize, 1, 11).unwrap();
        let mut lrs = vec![];
        let mut moms = vec![];
        for _ in 0..12 {
            lrs.push(s.lr());
            moms.push(s.momentum().unwrap());
            s.after_step();
        }
        let pct = 1.0 / 1.2;
        let lr1 = 1.0 + (0.04 - 1.0) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0);
        assert!((lrs[0] - 0.04).abs() < 1e-15 && (lrs[1] - lr1).abs() < 1e-12);
        assert!((lrs[10] - 4e-6).abs() < 1e-15, "{}", lrs[10]);
        assert_eq!(lrs[11], lrs[10], "stays at the final rate after the cycle");
        assert!((moms[0] - 0.95).abs() < 1e-15 && (moms[10] - 0.95).abs() < 1e-15);
        assert!(moms[2] < 0.9 && lrs[2] > 0.9);
    }

    #[test]
    fn plateau_on_a_scripted_metric() {
        let cfg: SchedulerConfig = toml::from_str(
            "kind = \"reduce_on_plateau\"\nfactor = 0.5\npatience = 1\nthreshold = 0.0\nthreshold_mode = \"abs\"",
        )
        .unwrap();
        let mut s = LrSchedule::new(&cfg, 0.1, Goal::Minimize, 10, 1).unwrap();
        let metric = [1.0, 0.9, 0.95, 0.96, 0.8, 0.85, 0.86];
        let mut lrs = vec![];
        for m in metric {
            lrs.push(s.lr());
            s.after_epoch(Some(m));
        }
        lrs.push(s.lr());
        close(&lrs, &[0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
        // Maximised metrics reduce on falling values.
        let mut s = LrSchedule::new(&cfg, 0.1, Goal::Maximize, 10, 1).unwrap();
        for m in [0.5, 0.4, 0.3] {
            s.after_epoch(Some(m));
        }
        assert_eq!(s.lr(), 0.05);
    }

    #[test]
    fn state_round_trip_and_kind_check() {
        let cfg: SchedulerConfig =
            toml::from_str("kind = \"reduce_on_plateau\"\npatience = 0").unwrap();
        let mut a = LrSchedule::new(&cfg, 0.1, Goal::Minimize, 10, 1).unwrap();
        a.after_epoch(Some(1.0));
        a.after_epoch(Some(2.0));
        let state = a.state();
        let mut b = LrSchedule::new(&cfg, 0.1, Goal::Minimize, 10, 1).unwrap();
        b.load_state(&state).unwrap();
        assert_eq!(b.lr(), a.lr());
        assert_eq!(b.state(), state);
        let other: SchedulerConfig = toml::from_str("kind = \"constant\"").unwrap();
        let mut c = LrSchedule::new(&other, 0.1, Goal::Minimize, 10, 1).unwrap();
        assert!(c.load_state(&state).is_err());
    }

    #[test]
    fn impossible_values_name_their_key() {
        for (text, key) in [
            ("kind = \"step\"\nstep_size = 0", "scheduler.step_size"),
            ("kind = \"exponential\"\ngamma = 1.5", "scheduler.gamma"),
            (
                "kind = \"multi_step\"\nmilestones = [3, 2]",
                "scheduler.milestones",
            ),
            (
                "kind = \"one_cycle\"\nmax_lr = 0.1\npct_start = 1.0",
                "scheduler.pct_start",
            ),
            (
                "kind = \"reduce_on_plateau\"\nfactor = 1.0",
                "scheduler.factor",
            ),
        ] {
            let cfg: SchedulerConfig = toml::from_str(text).unwrap();
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        let warm: SchedulerConfig = toml::from_str("kind = \"cosine\"\nwarmup = 5").unwrap();
        let e = LrSchedule::new(&warm, 0.1, Goal::Minimize, 5, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("scheduler.warmup"), "{e}");
        let unknown =
            toml::from_str::<SchedulerConfig>("kind = \"step\"\nstep_size = 2\ngama = 0.5")
                .unwrap_err()
                .to_string();
        assert!(unknown.contains("gama"), "{unknown}");
    }
}
