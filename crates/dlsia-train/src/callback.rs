//! [`Callback`]: the events of a run, for progress displays, logs and custom hooks.
//!
//! The trainer's own progress bar ([`crate::ProgressBar`]) and run log ([`crate::RunLog`]) are
//! callbacks; library users add theirs with [`crate::Trainer::with_callback`].
//!
//! ```
//! use dlsia_train::{Callback, Control, EpochEnd, Result};
//!
//! /// Stops the run once the training loss is below a target.
//! struct StopBelow(f64);
//!
//! impl Callback for StopBelow {
//!     fn on_epoch_end(&mut self, e: &EpochEnd<'_>) -> Result<Control> {
//!         Ok(match e.record.train.loss {
//!             Some(l) if l < self.0 => Control::Stop,
//!             _ => Control::Continue,
//!         })
//!     }
//! }
//! ```

use std::path::Path;

use crate::error::Result;
use crate::monitor::Monitor;
use crate::record::EpochRecord;
use crate::task::TaskConfig;

/// Whether the run goes on after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this epoch (checkpoint and best model are written as usual).
    Stop,
}

/// Facts about a run, given when it starts.
#[derive(Debug, Clone, Copy)]
pub struct RunInfo<'a> {
    /// Total epochs of the run.
    pub epochs: usize,
    /// Epochs already done (non-zero when resuming).
    pub start_epoch: usize,
    /// Training batches per epoch.
    pub train_batches: usize,
    /// Validation batches per epoch, if there is validation data.
    pub validation_batches: Option<usize>,
    /// The task.
    pub task: &'a TaskConfig,
    /// The metric that picks the best model.
    pub monitor: Monitor,
    /// Trainable scalars of the network.
    pub parameters: usize,
    /// Records of the epochs already done (when resuming).
    pub history: &'a [EpochRecord],
    /// The run directory, if the run writes files.
    pub output_dir: Option<&'a Path>,
}

/// One training batch done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchEnd {
    /// Epoch (from 1).
    pub epoch: usize,
    /// Batch within the epoch (from 0).
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// The batch's loss.
    pub loss: f64,
    /// Learning rate of the last optimizer step.
    pub lr: f64,
    /// Global gradient norm before clipping, when this batch completed an optimizer step.
    pub grad_norm: Option<f64>,
}

/// One epoch done.
#[derive(Debug, Clone, Copy)]
pub struct EpochEnd<'a> {
    /// The epoch's record.
    pub record: &'a EpochRecord,
    /// Total epochs of the run.
    pub epochs: usize,
    /// Whether this epoch is the new best by the monitored metric.
    pub improved: bool,
    /// The checkpoint written after this epoch, if any.
    pub checkpoint: Option<&'a Path>,
    /// Whether early stopping ends the run after this epoch.
    pub early_stop: bool,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// All configured epochs ran.
    Completed,
    /// Early stopping ended the run.
    EarlyStopping,
    /// A callback returned [`Control::Stop`].
    Callback,
}

/// The end of a run.
#[derive(Debug, Clone, Copy)]
pub struct TrainEnd<'a> {
    /// Every epoch record of the run (including those before a resume).
    pub history: &'a [EpochRecord],
    /// Epoch (from 1) of the best model, if any.
    pub best_epoch: Option<usize>,
    /// Why the run ended.
    pub stop: StopReason,
}

/// Hooks called by the trainer; every method has a default that does nothing. An `Err` aborts
/// the run with that error.
pub trait Callback: Send {
    /// The run starts (or resumes).
    fn on_train_start(&mut self, _info: &RunInfo<'_>) -> Result<()> {
        Ok(())
    }
    /// An epoch (from 1) of `batches` training batches starts.
    fn on_epoch_start(&mut self, _epoch: usize, _batches: usize) -> Result<()> {
        Ok(())
    }
    /// A training batch is done.
    fn on_batch_end(&mut self, _event: &BatchEnd) -> Result<()> {
        Ok(())
    }
    /// Validation of an epoch starts.
    fn on_validation_start(&mut self, _epoch: usize, _batches: usize) -> Result<()> {
        Ok(())
    }
    /// An epoch is done (validated, checkpointed); the return value may stop the run.
    fn on_epoch_end(&mut self, _event: &EpochEnd<'_>) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// The run is over (also after an early stop).
    fn on_train_end(&mut self, _end: &TrainEnd<'_>) -> Result<()> {
        Ok(())
    }
}

impl<C: Callback + ?Sized> Callback for Box<C> {
    fn on_train_start(&mut self, info: &RunInfo<'_>) -> Result<()> {
        (**self).on_train_start(info)
    }
    fn on_epoch_start(&mut self, epoch: usize, batches: usize) -> Result<()> {
        (**self).on_epoch_start(epoch, batches)
    }
    fn on_batch_end(&mut self, event: &BatchEnd) -> Result<()> {
        (**self).on_batch_end(event)
    }
    fn on_validation_start(&mut self, epoch: usize, batches: usize) -> Result<()> {
        (**self).on_validation_start(epoch, batches)
    }
    fn on_epoch_end(&mut self, event: &EpochEnd<'_>) -> Result<Control> {
        (**self).on_epoch_end(event)
    }
    fn on_train_end(&mut self, end: &TrainEnd<'_>) -> Result<()> {
        (**self).on_train_end(end)
    }
}
