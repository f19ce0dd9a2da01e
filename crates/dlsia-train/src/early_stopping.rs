//! Early stopping on a monitored metric with patience and minimum improvement.

use serde::{Deserialize, Serialize};

use crate::error::{config_err, Result};
use crate::monitor::Monitor;

/// When to stop a run that no longer improves.
///
/// The run stops at the end of the epoch that makes `patience` epochs in a row without an
/// improvement of the monitored metric by more than `min_delta` over its best value.
///
/// ```
/// use dlsia_train::EarlyStoppingConfig;
/// let c: EarlyStoppingConfig = toml::from_str("patience = 5\nmin_delta = 1e-3").unwrap();
/// assert_eq!(c.monitor, None); // the run's monitor (validation loss by default)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// The metric (default: the run's `monitor`).
    #[serde(default)]
    pub monitor: Option<Monitor>,
    /// Epochs without improvement before stopping (≥ 1).
    pub patience: usize,
    /// Smallest change that counts as an improvement (default 0).
    #[serde(default)]
    pub min_delta: f64,
}

impl EarlyStoppingConfig {
    /// Checks the values.
    pub fn check(&self) -> Result<()> {
        if self.patience == 0 {
            return Err(config_err(
                "early_stopping.patience",
                "must be at least 1 epoch",
            ));
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return Err(config_err(
                "early_stopping.min_delta",
                format!("must be finite and >= 0, got {}", self.min_delta),
            ));
        }
        Ok(())
    }
}

/// The running state of early stopping (saved in checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// The metric watched.
    pub monitor: Monitor,
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// Smallest improvement.
    pub min_delta: f64,
    /// Best value so far.
    pub best: Option<f64>,
    /// Epoch (from 1) of the best value.
    pub best_epoch: Option<usize>,
    /// Epochs since the best value.
    pub bad_epochs: usize,
}

impl EarlyStopping {
    /// Fresh state; `default_monitor` is used when the configuration names no metric.
    pub fn new(config: &EarlyStoppingConfig, default_monitor: Monitor) -> Self {
        Self {
            monitor: config.monitor.unwrap_or(default_monitor),
            patience: config.patience,
            min_delta: config.min_delta,
            best: None,
            best_epoch: None,
            bad_epochs: 0,
        }
    }

    /// Feeds the monitored value of epoch `epoch` (`None`/NaN: no improvement); returns `true`
    /// when the run should stop after this epoch.
    pub fn update(&mut self, epoch: usize, value: Option<f64>) -> bool {
        let goal = self.monitor.goal();
        match value {
            Some(v) if goal.improves(v, self.best, self.min_delta) => {
                self.best = Some(v);
                self.best_epoch = Some(epoch);
                self.bad_epochs = 0;
            }
            _ => self.bad_epochs += 1,
        }
        self.bad_epochs >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a scripted metric sequence and returns the epoch (from 1) at which it stops.
    fn stop_epoch(cfg: &str, metric: &[f64], monitor: &str) -> Option<usize> {
        let cfg: EarlyStoppingConfig = toml::from_str(cfg).unwrap();
        cfg.check().unwrap();
        let mut es = EarlyStopping::new(&cfg, monitor.parse().unwrap());
        metric
            .iter()
            .enumerate()
            .find(|(i, v)| es.update(i + 1, Some(**v)))
            .map(|(i, _)| i + 1)
    }

    #[test]
    fn stops_after_patience_epochs_without_min_delta_improvement() {
        // Best 0.8 at epoch 2; 0.75 (epoch 3) improves by less than min_delta 0.1.
        let seq = [1.0, 0.8, 0.75, 0.85, 0.71, 0.6];
        assert_eq!(
            stop_epoch("patience = 3\nmin_delta = 0.1", &seq, "val_loss"),
            Some(5)
        );
        // Without min_delta, 0.75 and 0.71 are improvements: it never stops.
        assert_eq!(stop_epoch("patience = 3", &seq, "val_loss"), None);
        // Maximised score: the run stops 2 epochs after its best (epoch 2).
        let f1 = [0.5, 0.7, 0.69, 0.7, 0.9];
        assert_eq!(stop_epoch("patience = 2", &f1, "val_f1_macro"), Some(4));
    }

    #[test]
    fn undefined_values_count_as_no_improvement() {
        let cfg: EarlyStoppingConfig = toml::from_str("patience = 2").unwrap();
        let mut es = EarlyStopping::new(&cfg, "val_loss".parse().unwrap());
        assert!(!es.update(1, Some(1.0)));
        assert!(!es.update(2, None));
        assert!(es.update(3, Some(f64::NAN)));
        assert_eq!(es.best_epoch, Some(1));
    }

    #[test]
    fn rejects_zero_patience() {
        let cfg: EarlyStoppingConfig = toml::from_str("patience = 0").unwrap();
        assert!(cfg.check().unwrap_err().to_string().contains("patience"));
        assert!(toml::from_str::<EarlyStoppingConfig>("patience = 1\nmindelta = 0.1").is_err());
    }
}
