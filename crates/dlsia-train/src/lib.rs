//! # dlsia-train
//!
//! The trainer for DLSIA's networks: one [`Trainer`] for segmentation (class labels with an
//! ignore label), regression (with an optional mask of where the loss counts) and autoencoders,
//! and [`train_ensemble`] for N networks trained one after the other or in threads.
//!
//! * [`TrainConfig`] (serde; a TOML file with unknown keys rejected by name) is checked once
//!   into a [`CheckedTrainConfig`] before anything runs.
//! * [`optim`]: Adam, AdamW and SGD (momentum, Nesterov, weight decay), PyTorch's update rules,
//!   with state that is saved and restored.
//! * [`schedule`]: step, multi-step, exponential, cosine with warm-up, one-cycle and
//!   reduce-on-plateau, as serde configurations; custom schedules implement [`Scheduler`].
//! * [`ClipConfig`] (by value or global norm), gradient accumulation, [`EarlyStoppingConfig`]
//!   (metric, patience, min-delta), and a [`BestModel`] that really copies the best weights (the
//!   original restores the last epoch's weights because `state_dict()` aliases them).
//! * Checkpoints ([`Checkpoint`]): one safetensors file with weights, optimizer moments, schedule,
//!   RNG state and history, written atomically; [`Trainer::resume`] continues bit for bit as if
//!   the run had never stopped. Existing run files are never overwritten unless
//!   `output.overwrite`.
//! * Metrics over all pixels of an epoch (loss, F1 micro/macro, mean IoU, Pearson), a run log
//!   (`run.csv`, `run.jsonl`), curves (`loss.svg`, `metric.svg`), a progress bar; all of them
//!   [`Callback`]s, and users can add their own.
//! * A NaN or infinite loss (or gradient) stops the run with an error naming the last good
//!   checkpoint.
//! * Precision: f32; bf16 and f16 on CUDA with f32 master weights ([`Precision`],
//!   [`MixedPrecision`]; compiled and tested on the CPU with stand-in dtypes, not yet run on a GPU).
//!
//! Randomness: the batch order and augmentation of epoch `e` come from the loader's seed and
//! `mix_seed(config.seed, e)`; weights come from the network's own seeded initialisation. The
//! same seeds give bit-identical weights on the CPU.
//!
//! ```
//! use candle_core::Device;
//! use dlsia_data::synth::random_shape_set;
//! use dlsia_data::{randomized_split, DataLoader, LoaderConfig, SplitConfig};
//! use dlsia_nets::{Topology, TuNetConfig};
//! use dlsia_train::{TrainConfig, Trainer};
//!
//! let shapes = random_shape_set(8, 0.1, 16, 1)?;
//! let (train, val) =
//!     randomized_split(&shapes.normalized, &shapes.class_image, None, &SplitConfig::default())?;
//! let loader = |ds, shuffle| {
//!     DataLoader::new(ds, LoaderConfig { batch_size: 4, shuffle, prefetch: 0, ..Default::default() })
//! };
//! let (train, val) = (loader(train, true)?, loader(val, false)?);
//!
//! let cfg = TrainConfig::from_toml(r#"
//!     epochs = 2
//!     progress = false
//!     task = { kind = "segmentation", num_classes = 5 }
//!     optimizer = { kind = "adamw", lr = 3e-3 }
//! "#)?;
//! let net = Topology::TuNet(TuNetConfig::new(&[16, 16], 1, 5, 2, 4)).build(0, &Device::Cpu)?;
//! let report = Trainer::new(&cfg, net.as_ref())?.fit(&train, Some(&val))?;
//! assert_eq!(report.history.len(), 2);
//! assert!(report.history[1].validation.as_ref().unwrap().f1_macro.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod accumulate;
mod batches;
mod best;
pub mod callback;
pub mod checkpoint;
mod clip;
mod config;
mod early_stopping;
mod ensemble;
pub mod error;
mod fsutil;
mod grads;
mod mixed;
pub mod monitor;
pub mod optim;
mod output;
mod precision;
mod progress;
mod record;
pub mod run_log;
pub mod schedule;
mod task;
mod trainer;

pub use accumulate::EpochAccumulator;
pub use batches::Batches;
pub use best::BestModel;
pub use callback::{BatchEnd, Callback, Control, EpochEnd, RunInfo, StopReason, TrainEnd};
pub use checkpoint::{Checkpoint, CheckpointMeta};
pub use clip::ClipConfig;
pub use config::{CheckedTrainConfig, OutputConfig, TrainConfig};
pub use early_stopping::{EarlyStopping, EarlyStoppingConfig};
pub use ensemble::{build_members, member_config, train_ensemble, EnsembleMode};
pub use error::{Error, Result};
pub use grads::Gradients;
pub use mixed::MixedPrecision;
pub use monitor::{Goal, MetricKind, Monitor};
pub use optim::{Optimizer, OptimizerConfig};
pub use output::BEST_DIR;
pub use precision::{LossScaleConfig, LossScaler, Precision};
pub use progress::ProgressBar;
pub use record::{EpochMetrics, EpochRecord};
pub use run_log::RunLog;
pub use schedule::{Scheduler, SchedulerConfig};
pub use task::TaskConfig;
pub use trainer::{TrainReport, Trainer};
