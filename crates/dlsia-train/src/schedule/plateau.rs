//! Reduce-on-plateau memory and update, PyTorch `ReduceLROnPlateau`'s rule.

use serde::{Deserialize, Serialize};

use super::config::{PlateauConfig, ThresholdMode};
use crate::monitor::Goal;

/// What reduce-on-plateau remembers between epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateauState {
    /// The current learning rate.
    pub lr: f64,
    /// The best monitored value so far (`None` before the first finite value).
    pub best: Option<f64>,
    /// Epochs since the last improvement.
    pub num_bad_epochs: usize,
    /// Epochs of cooldown left.
    pub cooldown_counter: usize,
}

impl PlateauState {
    /// The state at the start of a run.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            best: None,
            num_bad_epochs: 0,
            cooldown_counter: 0,
        }
    }

    fn is_better(c: &PlateauConfig, goal: Goal, a: f64, best: Option<f64>) -> bool {
        let Some(best) = best else {
            return a.is_finite();
        };
        match (goal, c.threshold_mode) {
            (Goal::Minimize, ThresholdMode::Rel) => a < best * (1.0 - c.threshold),
            (Goal::Minimize, ThresholdMode::Abs) => a < best - c.threshold,
            (Goal::Maximize, ThresholdMode::Rel) => a > best * (1.0 + c.threshold),
            (Goal::Maximize, ThresholdMode::Abs) => a > best + c.threshold,
        }
    }

    /// One epoch's update with the monitored value (`None` or NaN counts as no improvement).
    pub(crate) fn update(&mut self, c: &PlateauConfig, goal: Goal, value: Option<f64>) {
        match value {
            Some(v) if Self::is_better(c, goal, v, self.best) => {
                self.best = Some(v);
                self.num_bad_epochs = 0;
            }
            _ => self.num_bad_epochs += 1,
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > c.patience {
            let new_lr = (self.lr * c.factor).max(c.min_lr);
            if self.lr - new_lr > c.eps {
                self.lr = new_lr;
            }
            self.cooldown_counter = c.cooldown;
            self.num_bad_epochs = 0;
        }
    }
}
