//! [`Trainer`]: the training loop.
//!
//! Per batch: forward in train mode, loss, backward, gradients summed over
//! `accumulate_batches` batches; per optimizer step: average, (loss-scale removal,) global norm
//! (a non-finite norm stops the run), clipping, learning rate and momentum from the schedule,
//! one optimizer step. Per epoch: metrics over all pixels, validation in eval mode, schedule,
//! best-model copy, early stopping, checkpoint, best-model directory, callbacks. A NaN or
//! infinite loss stops the run with an error naming the last good checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Tensor};
use dlsia_data::seed::mix_seed;
use dlsia_losses::Loss;
use dlsia_nets::Network;

use crate::accumulate::EpochAccumulator;
use crate::batches::Batches;
use crate::best::BestModel;
use crate::callback::{BatchEnd, Callback, Control, EpochEnd, RunInfo, StopReason, TrainEnd};
use crate::checkpoint::{resolve_checkpoint, Checkpoint};
use crate::config::{CheckedTrainConfig, TrainConfig};
use crate::early_stopping::EarlyStopping;
use crate::error::{Error, Result};
use crate::grads::Gradients;
use crate::mixed::MixedPrecision;
use crate::monitor::Monitor;
use crate::optim::{trainable_vars, Optimizer};
use crate::output::{self, RunFiles};
use crate::precision::{LossScaleConfig, LossScaler, Precision};
use crate::progress::ProgressBar;
use crate::record::{EpochMetrics, EpochRecord};
use crate::run_log::RunLog;
use crate::schedule::{LrSchedule, Scheduler};

/// Salt of the validation batches' stream (so validation order never equals training order).
const VALIDATION_STREAM: u64 = 0x7661_6c69_6461_7465;

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// Every epoch record (including those before a resume).
    pub history: Vec<EpochRecord>,
    /// The metric that picked the best model.
    pub monitor: Monitor,
    /// Epoch (from 1) of the best model.
    pub best_epoch: Option<usize>,
    /// Its monitored value.
    pub best_value: Option<f64>,
    /// Whether the best weights were loaded into the network at the end.
    pub restored_best: bool,
    /// Why the run ended.
    pub stop: StopReason,
    /// The last checkpoint written.
    pub last_checkpoint: Option<PathBuf>,
    /// The best model directory, if written.
    pub best_model_dir: Option<PathBuf>,
    /// Optimizer steps skipped by the loss scaler (non-finite gradients).
    pub skipped_steps: u64,
}

/// Everything that changes while a run goes on.
struct Run<'a> {
    seed: u64,
    epochs_done: usize,
    global_step: u64,
    last_lr: f64,
    optimizer: Box<dyn Optimizer>,
    scheduler: Option<Box<dyn Scheduler + 'a>>,
    early: Option<EarlyStopping>,
    best: BestModel,
    scaler: Option<LossScaler>,
    history: Vec<EpochRecord>,
    last_checkpoint: Option<PathBuf>,
    best_dir: Option<PathBuf>,
}

/// Trains one network.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use dlsia_data::Batch;
/// use dlsia_nets::{Topology, TuNetConfig};
/// use dlsia_train::{TaskConfig, TrainConfig, Trainer};
///
/// let dev = Device::Cpu;
/// let net = Topology::TuNet(TuNetConfig::new(&[8, 8], 1, 2, 2, 4)).build(0, &dev)?;
/// let image = Tensor::rand(0f32, 1.0, (2, 1, 8, 8), &dev)?;
/// let target = image.gt(0.5)?.to_dtype(DType::I64)?.squeeze(1)?;
/// let batches = vec![Batch { image, target: Some(target), mask: None }];
///
/// let mut cfg = TrainConfig::new(3, TaskConfig::segmentation(2));
/// cfg.progress = false;
/// let report = Trainer::new(&cfg, net.as_ref())?.fit(&batches, None)?;
/// assert_eq!(report.history.len(), 3);
/// assert!(report.history[2].train.f1_micro.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Trainer<'a> {
    config: CheckedTrainConfig,
    net: &'a dyn Network,
    loss: Box<dyn Loss + 'a>,
    scheduler: Option<Box<dyn Scheduler + 'a>>,
    callbacks: Vec<Box<dyn Callback + 'a>>,
    progress: Option<ProgressBar>,
    /// The compute copy of the network for bf16/f16 training (`None` in f32).
    mixed: Option<MixedPrecision>,
}

impl<'a> Trainer<'a> {
    /// A trainer for `net`: checks the configuration, that the network fits the task and that
    /// its device supports the precision, and builds the configured loss.
    pub fn new(config: &TrainConfig, net: &'a dyn Network) -> Result<Self> {
        let config = config.check()?;
        config.task.check_network(net)?;
        config.check_device(net.params().device())?;
        let loss = config.loss_config(net.out_channels()).build()?;
        let progress = config.progress.then(ProgressBar::new);
        let mixed = config
            .precision
            .compute_dtype()
            .map(|d| MixedPrecision::new(net, d))
            .transpose()?;
        Ok(Self {
            config,
            net,
            loss,
            scheduler: None,
            callbacks: vec![],
            progress,
            mixed,
        })
    }

    /// Runs the forward and backward passes in `dtype` on a compute copy of the network, with
    /// the network's own weights as master weights ([`MixedPrecision`]) — what `precision =
    /// "bf16"`/`"f16"` selects on a CUDA device. Usable on any device and dtype pair the
    /// network's layers support (the tests train an f64 network through an f32 copy on the CPU).
    pub fn with_compute_dtype(mut self, dtype: DType) -> Result<Self> {
        self.mixed = Some(MixedPrecision::new(self.net, dtype)?);
        Ok(self)
    }

    /// Replaces the configured loss.
    pub fn with_loss(mut self, loss: impl Loss + 'a) -> Self {
        self.loss = Box::new(loss);
        self
    }

    /// Replaces the configured schedule by a custom one.
    pub fn with_scheduler(mut self, scheduler: impl Scheduler + 'a) -> Self {
        self.scheduler = Some(Box::new(scheduler));
        self
    }

    /// Adds a callback (called after the built-in progress bar and run log).
    pub fn with_callback(mut self, callback: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Replaces the built-in progress bar (e.g. by one inside an `indicatif::MultiProgress`),
    /// or removes it with `None`.
    pub fn with_progress(mut self, progress: Option<ProgressBar>) -> Self {
        self.progress = progress;
        self
    }

    /// The checked configuration.
    pub fn config(&self) -> &CheckedTrainConfig {
        &self.config
    }

    /// Trains from the network's current weights for `config.epochs` epochs.
    pub fn fit(self, train: &dyn Batches, validation: Option<&dyn Batches>) -> Result<TrainReport> {
        let (monitor, early_monitor) = self.config.resolve_monitor(validation.is_some())?;
        let files = self.output_files();
        if let Some(f) = &files {
            f.prepare(None)?;
        }
        let run = self.fresh_run(train, monitor, early_monitor)?;
        self.run(run, files, train, validation, monitor)
    }

    /// Continues a run from a checkpoint file, or from the newest checkpoint of a run
    /// directory, until `config.epochs` epochs are done. The network must have the topology the
    /// checkpoint was written for; weights, optimizer, schedule, early stopping, best model,
    /// RNG state and history come from the checkpoint, everything else from the configuration.
    pub fn resume(
        self,
        checkpoint: &Path,
        train: &dyn Batches,
        validation: Option<&dyn Batches>,
    ) -> Result<TrainReport> {
        let (monitor, early_monitor) = self.config.resolve_monitor(validation.is_some())?;
        let path = resolve_checkpoint(checkpoint)?;
        let ckpt = Checkpoint::load(&path)?;
        let bad = |msg: String| Error::Checkpoint {
            path: path.clone(),
            msg,
        };
        let topo = self.net.topology();
        if ckpt.meta.topology != topo {
            return Err(bad(format!(
                "it was written for another network ({} {}); build the network from the checkpoint's topology to resume",
                ckpt.meta.topology.architecture(),
                serde_json::to_string(&ckpt.meta.topology).unwrap_or_default()
            )));
        }
        let files = self.output_files();
        if let Some(f) = &files {
            f.prepare(Some(&path))?;
        }
        let mut run = self.fresh_run(train, monitor, early_monitor)?;
        let m = &ckpt.meta;
        if m.rng.next_epoch != m.epochs_done as u64 || m.history.len() != m.epochs_done {
            return Err(bad(format!(
                "inconsistent: {} epochs done, {} records, next epoch {}",
                m.epochs_done,
                m.history.len(),
                m.rng.next_epoch
            )));
        }
        self.net
            .params()
            .load_tensors(&ckpt.model, &Default::default())
            .map_err(|e| bad(format!("cannot load the weights: {e}")))?;
        if let Some(m) = &self.mixed {
            m.sync_from_master()?;
        }
        run.optimizer.load_state(&ckpt.optimizer_state())?;
        match (&mut run.scheduler, &m.scheduler) {
            (Some(s), Some(state)) => s.load_state(state)?,
            (None, None) => {}
            (Some(_), None) => return Err(bad(
                "the run had no scheduler; remove `scheduler` from the configuration to resume it"
                    .into(),
            )),
            (None, Some(_)) => {
                return Err(bad(
                    "the run had a scheduler; configure the same scheduler to resume it".into(),
                ))
            }
        }
        if let (Some(e), Some(saved)) = (&mut run.early, &m.early_stopping) {
            if saved.monitor == e.monitor {
                let (patience, min_delta) = (e.patience, e.min_delta);
                *e = saved.clone();
                e.patience = patience;
                e.min_delta = min_delta;
            }
        }
        if let (Some(b), Some(w)) = (&m.best, ckpt.best_tensors()) {
            if b.monitor == monitor {
                run.best = BestModel::with_weights(monitor, b.epoch, b.value, w.clone());
            }
        }
        if let (Some(s), Some(saved)) = (&mut run.scaler, &m.loss_scaler) {
            *s = saved.clone();
        }
        run.seed = m.rng.seed;
        run.epochs_done = m.epochs_done;
        run.global_step = m.global_step;
        run.history = m.history.clone();
        run.last_lr = run
            .scheduler
            .as_ref()
            .map_or(run.optimizer.learning_rate(), |s| s.lr());
        run.last_checkpoint = Some(path);
        self.run(run, files, train, validation, monitor)
    }

    fn output_files(&self) -> Option<RunFiles> {
        self.config.output.clone().map(RunFiles::new)
    }

    fn fresh_run(
        &self,
        train: &dyn Batches,
        monitor: Monitor,
        early_monitor: Monitor,
    ) -> Result<Run<'a>> {
        let nb = train.num_batches();
        if nb == 0 {
            return Err(Error::Incompatible {
                what: "training data",
                msg: "the training batches are empty; give at least one batch".into(),
            });
        }
        let c = &self.config;
        let steps_per_epoch = nb.div_ceil(c.accumulate_batches);
        let optimizer = c.optimizer.build(trainable_vars(self.net.params()))?;
        let lr0 = optimizer.learning_rate();
        let scheduler: Option<Box<dyn Scheduler + 'a>> = match &c.scheduler {
            Some(s) => Some(Box::new(LrSchedule::new(
                s,
                lr0,
                monitor.goal(),
                c.epochs,
                steps_per_epoch,
            )?)),
            None => None,
        };
        let last_lr = scheduler.as_ref().map_or(lr0, |s| s.lr());
        Ok(Run {
            seed: c.seed,
            epochs_done: 0,
            global_step: 0,
            last_lr,
            optimizer,
            scheduler,
            early: c
                .early_stopping
                .as_ref()
                .map(|e| EarlyStopping::new(e, early_monitor)),
            best: BestModel::new(monitor),
            // f16 needs loss scaling: PyTorch GradScaler's defaults unless configured.
            scaler: c.loss_scale.as_ref().map(LossScaler::new).or_else(|| {
                (c.precision == Precision::F16)
                    .then(|| LossScaler::new(&LossScaleConfig::default()))
            }),
            history: vec![],
            last_checkpoint: None,
            best_dir: None,
        })
    }

    fn run(
        mut self,
        mut run: Run<'a>,
        files: Option<RunFiles>,
        train: &dyn Batches,
        validation: Option<&dyn Batches>,
        monitor: Monitor,
    ) -> Result<TrainReport> {
        if let Some(s) = self.scheduler.take() {
            let _ = run.scheduler.replace(s);
        }
        let mut callbacks: Vec<Box<dyn Callback + 'a>> = vec![];
        if let Some(p) = self.progress.take() {
            callbacks.push(Box::new(p));
        }
        if let Some(f) = &files {
            callbacks.push(Box::new(RunLog::new(f.dir(), f.config().plot)));
        }
        callbacks.append(&mut self.callbacks);
        let cfg = self.config.clone();
        let epochs = cfg.epochs;
        let info = RunInfo {
            epochs,
            start_epoch: run.epochs_done,
            train_batches: train.num_batches(),
            validation_batches: validation.map(|v| v.num_batches()),
            task: &cfg.task,
            monitor,
            parameters: self.net.num_parameters(),
            history: &run.history,
            output_dir: files.as_ref().map(|f| f.dir()),
        };
        for cb in callbacks.iter_mut() {
            cb.on_train_start(&info)?;
        }
        let mut stop = StopReason::Completed;
        for e in run.epochs_done..epochs {
            let epoch = e + 1;
            let t0 = Instant::now();
            for cb in callbacks.iter_mut() {
                cb.on_epoch_start(epoch, train.num_batches())?;
            }
            let train_metrics = self.train_epoch(&mut run, &mut callbacks, train, epoch)?;
            let val_metrics = match validation {
                Some(v) => {
                    for cb in callbacks.iter_mut() {
                        cb.on_validation_start(epoch, v.num_batches())?;
                    }
                    Some(self.evaluate(v, &run, epoch)?)
                }
                None => None,
            };
            let record = EpochRecord {
                epoch,
                lr: run.last_lr,
                steps: run.global_step,
                train: train_metrics,
                validation: val_metrics,
                seconds: t0.elapsed().as_secs_f64(),
            };
            let value = monitor.value(&record);
            if let Some(s) = run.scheduler.as_mut() {
                s.after_epoch(value);
            }
            let improved = run.best.update(epoch, value, self.net.params())?;
            let early_stop = match run.early.as_mut() {
                Some(es) => {
                    let v = es.monitor.value(&record);
                    es.update(epoch, v)
                }
                None => false,
            };
            run.history.push(record.clone());
            run.epochs_done = epoch;
            let mut checkpoint = None;
            if let Some(f) = &files {
                if epoch == epochs || early_stop || f.periodic_due(epoch) {
                    checkpoint = Some(self.write_checkpoint(&mut run, f)?);
                }
                if improved && f.config().save_best {
                    run.best_dir = Some(self.write_best(&run, f)?);
                }
            }
            let mut control = Control::Continue;
            for cb in callbacks.iter_mut() {
                let ev = EpochEnd {
                    record: &record,
                    epochs,
                    improved,
                    checkpoint: checkpoint.as_deref(),
                    early_stop,
                };
                if cb.on_epoch_end(&ev)? == Control::Stop {
                    control = Control::Stop;
                }
            }
            if early_stop {
                stop = StopReason::EarlyStopping;
                break;
            }
            if control == Control::Stop {
                stop = StopReason::Callback;
                if let (Some(f), None) = (&files, &checkpoint) {
                    self.write_checkpoint(&mut run, f)?;
                }
                break;
            }
        }
        let restored_best = cfg.restore_best && run.best.restore(self.net.params())?;
        let end = TrainEnd {
            history: &run.history,
            best_epoch: run.best.epoch(),
            stop,
        };
        for cb in callbacks.iter_mut() {
            cb.on_train_end(&end)?;
        }
        Ok(TrainReport {
            history: run.history,
            monitor,
            best_epoch: run.best.epoch(),
            best_value: run.best.value(),
            restored_best,
            stop,
            last_checkpoint: run.last_checkpoint,
            best_model_dir: run.best_dir,
            skipped_steps: run.scaler.as_ref().map_or(0, |s| s.skipped_steps()),
        })
    }

    /// One pass over the training batches with optimizer steps.
    fn train_epoch(
        &self,
        run: &mut Run<'a>,
        callbacks: &mut [Box<dyn Callback + 'a>],
        train: &dyn Batches,
        epoch: usize,
    ) -> Result<EpochMetrics> {
        let task = &self.config.task;
        let device = self.net.params().device().clone();
        let nb = train.num_batches();
        let k = self.config.accumulate_batches;
        let mut acc = EpochAccumulator::new(task)?;
        let mut pending = Gradients::default();
        let mut micro = 0usize;
        let mut last_b = 0;
        let stream = mix_seed(run.seed, (epoch - 1) as u64);
        for (b, batch) in train.batches(stream).enumerate() {
            last_b = b;
            let batch = batch?.to_device(&device)?;
            let (x, target, mask) = task.split_batch(&batch)?;
            self.net.check_input(x.dims())?;
            let out = match &self.mixed {
                Some(m) => m.forward_t(&x, true)?,
                None => self.net.forward_t(&x, true)?,
            };
            let loss = self.loss.loss(&out, &target, mask.as_ref())?;
            let value = scalar(&loss)?;
            if !value.is_finite() {
                return Err(Error::NonFiniteLoss {
                    split: "training",
                    epoch,
                    batch: b,
                    value,
                    last_checkpoint: run.last_checkpoint.clone(),
                });
            }
            acc.update(&out, &target, mask.as_ref(), value)?;
            let backward_loss = match &run.scaler {
                Some(s) => loss.affine(s.scale(), 0.0)?,
                None => loss,
            };
            let mut store = backward_loss.backward()?;
            drop(out);
            let grads = match &self.mixed {
                Some(m) => m.master_gradients(run.optimizer.vars(), &mut store)?,
                None => Gradients::from_store(run.optimizer.vars(), &mut store),
            };
            pending.accumulate(grads)?;
            drop(store);
            micro += 1;
            let grad_norm = if micro == k || b + 1 == nb {
                let g = std::mem::take(&mut pending);
                let n = self.optimizer_step(run, g, micro, epoch, b)?;
                micro = 0;
                n
            } else {
                None
            };
            let ev = BatchEnd {
                epoch,
                batch: b,
                batches: nb,
                loss: value,
                lr: run.last_lr,
                grad_norm,
            };
            for cb in callbacks.iter_mut() {
                cb.on_batch_end(&ev)?;
            }
        }
        if micro > 0 {
            let g = std::mem::take(&mut pending);
            self.optimizer_step(run, g, micro, epoch, last_b)?;
        }
        Ok(acc.finish())
    }

    /// Averages, unscales, checks, clips and applies accumulated gradients; returns the global
    /// norm before clipping, or `None` when the loss scaler skipped the step.
    fn optimizer_step(
        &self,
        run: &mut Run<'a>,
        mut grads: Gradients,
        micro: usize,
        epoch: usize,
        batch: usize,
    ) -> Result<Option<f64>> {
        let mut factor = 1.0 / micro as f64;
        if let Some(s) = &run.scaler {
            factor /= s.scale();
        }
        grads.scale(factor)?;
        let norm = grads.global_norm()?;
        if !norm.is_finite() {
            if let Some(s) = run.scaler.as_mut() {
                s.update(true);
                return Ok(None);
            }
            return Err(Error::NonFiniteGradient {
                epoch,
                batch,
                value: norm,
                last_checkpoint: run.last_checkpoint.clone(),
            });
        }
        if let Some(c) = &self.config.clip {
            c.apply(&mut grads, norm)?;
        }
        if let Some(s) = &run.scheduler {
            run.optimizer.set_learning_rate(s.lr());
            if let Some(m) = s.momentum() {
                run.optimizer.set_momentum(m)?;
            }
        }
        run.optimizer.step(grads.as_slice())?;
        if let Some(m) = &self.mixed {
            m.sync_from_master()?;
        }
        if let Some(s) = run.scheduler.as_mut() {
            s.after_step();
        }
        if let Some(s) = run.scaler.as_mut() {
            s.update(false);
        }
        run.global_step += 1;
        run.last_lr = run.optimizer.learning_rate();
        Ok(Some(norm))
    }

    /// One pass over the validation batches in eval mode.
    fn evaluate(&self, val: &dyn Batches, run: &Run<'a>, epoch: usize) -> Result<EpochMetrics> {
        let task = &self.config.task;
        let device = self.net.params().device().clone();
        let mut acc = EpochAccumulator::new(task)?;
        let stream = mix_seed(run.seed ^ VALIDATION_STREAM, (epoch - 1) as u64);
        for (b, batch) in val.batches(stream).enumerate() {
            let batch = batch?.to_device(&device)?;
            let (x, target, mask) = task.split_batch(&batch)?;
            self.net.check_input(x.dims())?;
            let out = self.net.forward_t(&x, false)?.detach();
            let loss = self.loss.loss(&out, &target, mask.as_ref())?;
            let value = scalar(&loss)?;
            if !value.is_finite() {
                return Err(Error::NonFiniteLoss {
                    split: "validation",
                    epoch,
                    batch: b,
                    value,
                    last_checkpoint: run.last_checkpoint.clone(),
                });
            }
            acc.update(&out, &target, mask.as_ref(), value)?;
        }
        Ok(acc.finish())
    }

    fn write_checkpoint(&self, run: &mut Run<'a>, files: &RunFiles) -> Result<PathBuf> {
        let path = output::write_checkpoint(
            files,
            &output::CheckpointParts {
                net: self.net,
                config: &self.config,
                seed: run.seed,
                epochs_done: run.epochs_done,
                global_step: run.global_step,
                optimizer: run.optimizer.as_ref(),
                scheduler: run.scheduler.as_deref(),
                early: run.early.as_ref(),
                best: &run.best,
                scaler: run.scaler.as_ref(),
                history: &run.history,
            },
        )?;
        run.last_checkpoint = Some(path.clone());
        Ok(path)
    }

    fn write_best(&self, run: &Run<'a>, files: &RunFiles) -> Result<PathBuf> {
        output::write_best_model(files, self.net, &run.best)
    }
}

/// The value of a one-element loss tensor as f64.
fn scalar(loss: &Tensor) -> Result<f64> {
    if loss.elem_count() != 1 {
        return Err(Error::Incompatible {
            what: "loss",
            msg: format!(
                "a loss must be one number, got a tensor of shape {:?}",
                loss.dims()
            ),
        });
    }
    Ok(loss.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0])
}
