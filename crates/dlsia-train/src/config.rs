//! [`TrainConfig`]: everything about a run that a TOML file can say, checked once
//! ([`TrainConfig::check`] → [`CheckedTrainConfig`]) before anything is trained.
//!
//! ```
//! use dlsia_train::TrainConfig;
//!
//! let cfg = TrainConfig::from_toml(r#"
//!     epochs = 40
//!     seed = 7
//!     monitor = "val_f1_macro"
//!     task = { kind = "segmentation", num_classes = 3 }
//!
//!     [optimizer]
//!     kind = "adamw"
//!     lr = 1e-3
//!
//!     [scheduler]
//!     kind = "cosine"
//!     warmup = 2
//!
//!     [clip]
//!     kind = "norm"
//!     max_norm = 1.0
//!
//!     [early_stopping]
//!     patience = 8
//!
//!     [output]
//!     dir = "runs/shapes"
//!     checkpoint_every = 5
//! "#)?;
//! let checked = cfg.check()?;
//! assert_eq!(checked.epochs, 40);
//!
//! let e = TrainConfig::from_toml("epochs = 3\ntask = { kind = \"regression\" }\nlearning_rate = 1")
//!     .unwrap_err();
//! assert!(e.to_string().contains("learning_rate"));
//! # Ok::<(), dlsia_train::Error>(())
//! ```

use std::ops::Deref;
use std::path::PathBuf;

use candle_core::Device;
use dlsia_losses::LossConfig;
use serde::{Deserialize, Serialize};

use crate::clip::ClipConfig;
use crate::early_stopping::EarlyStoppingConfig;
use crate::error::{config_err, Error, Result};
use crate::monitor::{Monitor, Split};
use crate::optim::OptimizerConfig;
use crate::precision::{LossScaleConfig, Precision};
use crate::schedule::SchedulerConfig;
use crate::task::TaskConfig;

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn keep_last() -> usize {
    2
}

/// Where a run writes its files (all optional files are inside `dir`).
///
/// * `run.csv`, `run.jsonl`: one row / JSON object per epoch;
/// * `loss.svg`, `metric.svg`: the curves;
/// * `checkpoints/epoch-NNNN.safetensors`: resumable checkpoints;
/// * `best/`: the best model as a model directory (`model.json` + `weights.safetensors`, what
///   `dlsia_nets::load_model` reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The run directory (created if needed).
    pub dir: PathBuf,
    /// Write a checkpoint every this many epochs (default 1; 0: only at the end of the run).
    #[serde(default = "one")]
    pub checkpoint_every: usize,
    /// Periodic checkpoints kept, the newest (default 2; 0: keep all).
    #[serde(default = "keep_last")]
    pub keep_last: usize,
    /// Write the best model to `best/` whenever it improves (default true).
    #[serde(default = "yes")]
    pub save_best: bool,
    /// Draw `loss.svg` and `metric.svg` (default true).
    #[serde(default = "yes")]
    pub plot: bool,
    /// Replace the files of an earlier run in `dir` (default false: such files are an error).
    #[serde(default)]
    pub overwrite: bool,
}

impl OutputConfig {
    /// Output into `dir` with the defaults.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            checkpoint_every: 1,
            keep_last: keep_last(),
            save_best: true,
            plot: true,
            overwrite: false,
        }
    }
}

/// A training run's configuration; unknown keys are errors that name the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of epochs (≥ 1).
    pub epochs: usize,
    /// The task (segmentation, regression, autoencoder).
    pub task: TaskConfig,
    /// Seed of the run's randomness (batch order and augmentation, through the loader).
    #[serde(default)]
    pub seed: u64,
    /// The loss (default: [`TaskConfig::default_loss`]).
    #[serde(default)]
    pub loss: Option<LossConfig>,
    /// The optimizer (default Adam, lr 1e-3).
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule (default: constant).
    #[serde(default)]
    pub scheduler: Option<SchedulerConfig>,
    /// Gradient clipping (default: none).
    #[serde(default)]
    pub clip: Option<ClipConfig>,
    /// Batches whose gradients are averaged into one optimizer step (default 1).
    #[serde(default = "one")]
    pub accumulate_batches: usize,
    /// The metric that picks the best model (and drives early stopping and reduce-on-plateau
    /// unless they name their own); default `val_loss` with validation data, else `train_loss`.
    #[serde(default)]
    pub monitor: Option<Monitor>,
    /// Early stopping (default: none).
    #[serde(default)]
    pub early_stopping: Option<EarlyStoppingConfig>,
    /// Load the best epoch's weights into the network at the end (default true).
    #[serde(default = "yes")]
    pub restore_best: bool,
    /// Files of the run (default: none written).
    #[serde(default)]
    pub output: Option<OutputConfig>,
    /// Numeric precision (default f32; bf16/f16 on CUDA only; see [`Precision`]).
    #[serde(default)]
    pub precision: Precision,
    /// Dynamic loss scaling (default: none).
    #[serde(default)]
    pub loss_scale: Option<LossScaleConfig>,
    /// Show a progress bar (default true; false for scripts).
    #[serde(default = "yes")]
    pub progress: bool,
}

impl TrainConfig {
    /// A run of `epochs` epochs of `task` with every other value at its default.
    pub fn new(epochs: usize, task: TaskConfig) -> Self {
        Self {
            epochs,
            task,
            seed: 0,
            loss: None,
            optimizer: OptimizerConfig::default(),
            scheduler: None,
            clip: None,
            accumulate_batches: 1,
            monitor: None,
            early_stopping: None,
            restore_best: true,
            output: None,
            precision: Precision::F32,
            loss_scale: None,
            progress: true,
        }
    }

    /// Parses a TOML document (syntax errors, unknown keys and wrong types name the key).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Parse(e.to_string()))
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Parse(e.to_string()))
    }

    /// The loss configuration in effect for a network with `out_channels` outputs.
    pub fn loss_config(&self, out_channels: usize) -> LossConfig {
        self.loss
            .clone()
            .unwrap_or_else(|| self.task.default_loss(out_channels))
    }

    /// Checks every value (naming the key of the first bad one) and returns the checked
    /// configuration the trainer takes.
    pub fn check(&self) -> Result<CheckedTrainConfig> {
        if self.epochs == 0 {
            return Err(config_err("epochs", "must be at least 1"));
        }
        self.task.check()?;
        if let Some(l) = &self.loss {
            l.build().map_err(|e| config_err("loss", e.to_string()))?;
        }
        self.optimizer.check()?;
        if let Some(s) = &self.scheduler {
            s.check()?;
            if let SchedulerConfig::OneCycle(c) = s {
                if c.cycle_momentum && !self.optimizer.has_momentum() {
                    return Err(config_err(
                        "scheduler.cycle_momentum",
                        "the optimizer has no momentum to cycle (SGD with momentum = 0); set cycle_momentum = false or give SGD a momentum",
                    ));
                }
            }
        }
        if let Some(c) = &self.clip {
            c.check()?;
        }
        if self.accumulate_batches == 0 {
            return Err(config_err("accumulate_batches", "must be at least 1"));
        }
        let metrics = self.task.metrics();
        let check_monitor = |key: &str, m: &Monitor| {
            if metrics.contains(&m.metric) {
                Ok(())
            } else {
                Err(config_err(
                    key,
                    format!(
                        "{} is not computed for {}; available: {}",
                        m,
                        self.task.name(),
                        metrics
                            .iter()
                            .map(|k| k.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        };
        if let Some(m) = &self.monitor {
            check_monitor("monitor", m)?;
        }
        if let Some(e) = &self.early_stopping {
            e.check()?;
            if let Some(m) = &e.monitor {
                check_monitor("early_stopping.monitor", m)?;
            }
        }
        if let Some(s) = &self.loss_scale {
            s.check()?;
        }
        if let Some(o) = &self.output {
            if o.dir.as_os_str().is_empty() {
                return Err(config_err("output.dir", "must not be empty"));
            }
        }
        Ok(CheckedTrainConfig(self.clone()))
    }
}

/// A [`TrainConfig`] whose values have been checked; only [`TrainConfig::check`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTrainConfig(TrainConfig);

impl Deref for CheckedTrainConfig {
    type Target = TrainConfig;
    fn deref(&self) -> &TrainConfig {
        &self.0
    }
}

impl CheckedTrainConfig {
    /// The unchecked configuration (e.g. to edit and check again).
    pub fn into_inner(self) -> TrainConfig {
        self.0
    }

    /// The monitor in effect, given whether there is validation data; an error if the
    /// configured monitor needs validation data that is absent.
    pub(crate) fn resolve_monitor(&self, has_validation: bool) -> Result<(Monitor, Monitor)> {
        let default = if has_validation {
            Monitor::VAL_LOSS
        } else {
            Monitor::TRAIN_LOSS
        };
        let main = self.monitor.unwrap_or(default);
        let early = self
            .early_stopping
            .as_ref()
            .and_then(|e| e.monitor)
            .unwrap_or(main);
        for (key, m) in [("monitor", main), ("early_stopping.monitor", early)] {
            if m.split == Split::Validation && !has_validation {
                return Err(config_err(
                    key,
                    format!("{m} needs validation data, and none was given; give validation batches or monitor a train_ metric"),
                ));
            }
        }
        Ok((main, early))
    }

    /// Checks the precision against the device the network lives on.
    pub(crate) fn check_device(&self, device: &Device) -> Result<()> {
        self.precision.check(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "epochs = 3\ntask = { kind = \"segmentation\", num_classes = 2 }\n";

    fn parse_err(extra: &str) -> String {
        TrainConfig::from_toml(&format!("{BASE}{extra}"))
            .unwrap_err()
            .to_string()
    }

    fn check_err(extra: &str) -> String {
        TrainConfig::from_toml(&format!("{BASE}{extra}"))
            .unwrap()
            .check()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_keys_are_named_at_every_level() {
        for (extra, key) in [
            ("epoch = 4", "epoch"),
            (
                "[optimizer]\nkind = \"adam\"\nlearning_rate = 0.1",
                "learning_rate",
            ),
            (
                "[scheduler]\nkind = \"step\"\nstep_size = 2\ngama = 0.1",
                "gama",
            ),
            ("[clip]\nkind = \"norm\"\nmax = 1.0", "max"),
            ("[early_stopping]\npatience = 2\npatients = 3", "patients"),
            (
                "[output]\ndir = \"x\"\noverwrite_files = true",
                "overwrite_files",
            ),
            ("[loss]\nname = \"cross_entropy\"\nignore = -1", "ignore"),
        ] {
            let e = parse_err(extra);
            assert!(e.contains(key), "{extra}: {e}");
        }
        let e = TrainConfig::from_toml(
            "epochs = 3\ntask = { kind = \"segmentation\", num_classes = 2, classes = 3 }",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("classes"), "{e}");
        let e = parse_err("monitor = \"val_accuracy\"");
        assert!(e.contains("val_accuracy"), "{e}");
    }

    #[test]
    fn impossible_values_are_named() {
        for (extra, key) in [
            ("accumulate_batches = 0", "accumulate_batches"),
            ("monitor = \"val_pearson\"", "monitor"),
            (
                "[early_stopping]\npatience = 2\nmonitor = \"train_pearson\"",
                "early_stopping.monitor",
            ),
            (
                "[optimizer]\nkind = \"sgd\"\nlr = 0.1\n[scheduler]\nkind = \"one_cycle\"\nmax_lr = 0.5",
                "scheduler.cycle_momentum",
            ),
            ("[loss]\nname = \"cross_entropy\"\nclass_weights = [-1.0, 1.0]", "loss"),
            ("[loss_scale]\ngrowth_interval = 0", "loss_scale.growth_interval"),
        ] {
            let e = check_err(extra);
            assert!(e.contains(key), "{extra}: {e}");
        }
        let e = TrainConfig::from_toml("epochs = 0\ntask = { kind = \"regression\" }")
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("epochs"), "{e}");
        let e = TrainConfig::from_toml(
            "epochs = 1\ntask = { kind = \"segmentation\", num_classes = 3, ignore_label = 2 }",
        )
        .unwrap()
        .check()
        .unwrap_err()
        .to_string();
        assert!(e.contains("task.ignore_label"), "{e}");
    }

    #[test]
    fn defaults_and_toml_round_trip() {
        let c = TrainConfig::from_toml(BASE).unwrap();
        assert_eq!(c, TrainConfig::new(3, TaskConfig::segmentation(2)));
        let c = c.check().unwrap();
        assert_eq!(c.resolve_monitor(true).unwrap().0, Monitor::VAL_LOSS);
        assert_eq!(c.resolve_monitor(false).unwrap().0, Monitor::TRAIN_LOSS);
        let mut full = TrainConfig::from_toml(&format!(
            "{BASE}monitor = \"val_f1_macro\"\n[scheduler]\nkind = \"cosine\"\nwarmup = 1\n[output]\ndir = \"runs/a\"\n[early_stopping]\npatience = 2"
        ))
        .unwrap();
        full.loss = Some(full.loss_config(2));
        let text = full.to_toml().unwrap();
        assert_eq!(TrainConfig::from_toml(&text).unwrap(), full);
        let checked = full.check().unwrap();
        let e = checked.resolve_monitor(false).unwrap_err().to_string();
        assert!(e.contains("validation"), "{e}");
    }
}
