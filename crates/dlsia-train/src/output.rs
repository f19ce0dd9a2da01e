//! The files of a run directory: the guard against overwriting an earlier run, periodic
//! checkpoints with pruning, and the best-model directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use dlsia_nets::model_dir::{ModelFile, FORMAT_VERSION, MODEL_JSON, WEIGHTS_FILE};
use dlsia_nets::Network;

use crate::best::BestModel;
use crate::checkpoint::{
    checkpoint_name, list_checkpoints, BestMeta, Checkpoint, CheckpointMeta, RngState,
    CHECKPOINT_DIR, CHECKPOINT_FORMAT,
};
use crate::config::OutputConfig;
use crate::early_stopping::EarlyStopping;
use crate::error::{io_err, Error, Result};
use crate::fsutil::{safetensors_bytes, write_atomic};
use crate::optim::Optimizer;
use crate::precision::LossScaler;
use crate::record::EpochRecord;
use crate::run_log::{LOSS_SVG, METRIC_SVG, RUN_CSV, RUN_JSONL};
use crate::schedule::Scheduler;

/// Name of the best-model directory inside a run directory.
pub const BEST_DIR: &str = "best";

/// A run directory and its settings.
#[derive(Debug, Clone)]
pub(crate) struct RunFiles {
    config: OutputConfig,
}

impl RunFiles {
    pub(crate) fn new(config: OutputConfig) -> Self {
        Self { config }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.config.dir
    }

    pub(crate) fn config(&self) -> &OutputConfig {
        &self.config
    }

    pub(crate) fn periodic_due(&self, epoch: usize) -> bool {
        let every = self.config.checkpoint_every;
        every > 0 && epoch % every == 0
    }

    /// Checks the directory before a run writes into it. Files of an earlier run are an error
    /// unless `overwrite` (then its checkpoints and best model are removed) or the run resumes
    /// from a checkpoint inside this directory.
    pub(crate) fn prepare(&self, resuming_from: Option<&Path>) -> Result<()> {
        let dir = self.dir();
        if dir.exists() && !dir.is_dir() {
            return Err(io_err(dir, "exists and is not a directory"));
        }
        let ckpt_dir = dir.join(CHECKPOINT_DIR);
        let own_checkpoint = resuming_from.is_some_and(|p| {
            let canon = |p: &Path| std::fs::canonicalize(p).ok();
            p.parent()
                .and_then(canon)
                .is_some_and(|parent| Some(parent) == canon(&ckpt_dir))
        });
        if own_checkpoint {
            return Ok(());
        }
        let ours = [
            RUN_CSV,
            RUN_JSONL,
            LOSS_SVG,
            METRIC_SVG,
            CHECKPOINT_DIR,
            BEST_DIR,
        ];
        let existing: Vec<PathBuf> = ours
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.exists())
            .collect();
        if existing.is_empty() {
            return Ok(());
        }
        if !self.config.overwrite {
            return Err(Error::Exists {
                path: existing[0].clone(),
            });
        }
        for (_, p) in list_checkpoints(&ckpt_dir)? {
            std::fs::remove_file(&p).map_err(|e| io_err(&p, format!("cannot remove: {e}")))?;
        }
        for name in [MODEL_JSON, WEIGHTS_FILE] {
            let p = dir.join(BEST_DIR).join(name);
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| io_err(&p, format!("cannot remove: {e}")))?;
            }
        }
        Ok(())
    }
}

/// What goes into a checkpoint.
pub(crate) struct CheckpointParts<'r> {
    pub net: &'r dyn Network,
    pub config: &'r crate::config::TrainConfig,
    pub seed: u64,
    pub epochs_done: usize,
    pub global_step: u64,
    pub optimizer: &'r dyn Optimizer,
    pub scheduler: Option<&'r dyn Scheduler>,
    pub early: Option<&'r EarlyStopping>,
    pub best: &'r BestModel,
    pub scaler: Option<&'r LossScaler>,
    pub history: &'r [EpochRecord],
}

fn live_tensors(net: &dyn Network) -> BTreeMap<String, Tensor> {
    net.params()
        .entries()
        .into_iter()
        .map(|(name, _, t)| (name, t))
        .collect()
}

/// Writes `checkpoints/epoch-NNNN.safetensors` and prunes older periodic checkpoints.
pub(crate) fn write_checkpoint(files: &RunFiles, p: &CheckpointParts<'_>) -> Result<PathBuf> {
    let dir = files.dir().join(CHECKPOINT_DIR);
    let path = dir.join(checkpoint_name(p.epochs_done));
    let opt = p.optimizer.state()?;
    let best_is_last = p.best.epoch() == Some(p.epochs_done);
    let best = match (p.best.epoch(), p.best.value()) {
        (Some(epoch), Some(value)) => Some(BestMeta {
            monitor: p.best.monitor(),
            epoch,
            value,
        }),
        _ => None,
    };
    let ckpt = Checkpoint {
        meta: CheckpointMeta {
            format_version: CHECKPOINT_FORMAT,
            topology: p.net.topology(),
            config: p.config.clone(),
            epochs_done: p.epochs_done,
            global_step: p.global_step,
            rng: RngState {
                seed: p.seed,
                next_epoch: p.epochs_done as u64,
            },
            optimizer: opt.meta,
            scheduler: p.scheduler.map(|s| s.state()),
            early_stopping: p.early.cloned(),
            loss_scaler: p.scaler.cloned(),
            best,
            history: p.history.to_vec(),
        },
        model: live_tensors(p.net),
        best: if best_is_last {
            None
        } else {
            p.best.weights().cloned()
        },
        optimizer: opt.tensors,
    };
    ckpt.save(&path)?;
    let keep = files.config().keep_last;
    if keep > 0 {
        let all = list_checkpoints(&dir)?;
        let excess = all.len().saturating_sub(keep);
        for (_, old) in all.into_iter().filter(|(_, q)| *q != path).take(excess) {
            std::fs::remove_file(&old).map_err(|e| io_err(&old, format!("cannot remove: {e}")))?;
        }
    }
    Ok(path)
}

/// Writes the best weights as a model directory `best/` (`model.json` + `weights.safetensors`,
/// readable by `dlsia_nets::load_model`), atomically file by file.
pub(crate) fn write_best_model(
    files: &RunFiles,
    net: &dyn Network,
    best: &BestModel,
) -> Result<PathBuf> {
    let dir = files.dir().join(BEST_DIR);
    let Some(weights) = best.weights() else {
        return Ok(dir);
    };
    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = safetensors_bytes(weights, None, &weights_path)?;
    write_atomic(&weights_path, &bytes)?;
    let file = ModelFile {
        format_version: FORMAT_VERSION,
        topology: net.topology(),
        metadata: serde_json::json!({
            "trained_by": "dlsia-train",
            "epoch": best.epoch(),
            "monitor": best.monitor().to_string(),
            "value": best.value(),
        }),
    };
    let json_path = dir.join(MODEL_JSON);
    let json = serde_json::to_string_pretty(&file).map_err(|e| io_err(&json_path, e))?;
    write_atomic(&json_path, (json + "\n").as_bytes())?;
    Ok(dir)
}
