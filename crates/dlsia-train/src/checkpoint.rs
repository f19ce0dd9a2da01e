//! Checkpoints: one safetensors file per checkpoint holding everything a run needs to continue
//! exactly where it stopped.
//!
//! * tensors `model/<name>`: the network's weights and buffers (dlsia `state_dict` names);
//! * tensors `best/<name>`: the best epoch's weights (when the best epoch is not the last);
//! * tensors `optimizer/<slot>.<name>`: the optimizer's moments;
//! * metadata key `dlsia_train`: JSON [`CheckpointMeta`]: topology, the run's configuration,
//!   epochs done, optimizer step counts, RNG state, scheduler, early-stopping and loss-scaler
//!   state, best epoch and the history of epoch records.
//!
//! Files are written atomically (temporary file, flush, rename). Any safetensors reader can open
//! them; [`Checkpoint::model_tensors`] are the network's weights under their usual names.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use dlsia_nets::Topology;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::early_stopping::EarlyStopping;
use crate::error::{io_err, Error, Result};
use crate::fsutil::{read_safetensors, safetensors_bytes, write_atomic};
use crate::optim::{OptimizerMeta, OptimizerState};
use crate::precision::LossScaler;
use crate::record::EpochRecord;

/// Version of the checkpoint layout this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;
/// Metadata key of the JSON [`CheckpointMeta`].
pub const META_KEY: &str = "dlsia_train";
const MODEL: &str = "model/";
const BEST: &str = "best/";
const OPTIMIZER: &str = "optimizer/";

/// The run's randomness: every random choice of the trainer (batch order, augmentation) is a
/// function of `seed` and the epoch number, so this is the whole generator state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngState {
    /// The run's seed.
    pub seed: u64,
    /// The next epoch (0-based) whose stream will be drawn.
    pub next_epoch: u64,
}

/// The best epoch so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BestMeta {
    /// The metric that chose it.
    pub monitor: crate::monitor::Monitor,
    /// Epoch (from 1).
    pub epoch: usize,
    /// The monitored value.
    pub value: f64,
}

/// Everything but the tensors (stored as JSON in the file's metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// [`CHECKPOINT_FORMAT`].
    pub format_version: u32,
    /// The network's topology (resume checks it matches).
    pub topology: Topology,
    /// The configuration of the run that wrote the checkpoint.
    pub config: TrainConfig,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps completed.
    pub global_step: u64,
    /// The RNG state.
    pub rng: RngState,
    /// Optimizer scalars (moments are tensors).
    pub optimizer: OptimizerMeta,
    /// Scheduler state, if the run has a scheduler.
    pub scheduler: Option<serde_json::Value>,
    /// Early-stopping state, if configured.
    pub early_stopping: Option<EarlyStopping>,
    /// Loss-scaler state, if configured.
    pub loss_scaler: Option<LossScaler>,
    /// The best epoch so far (its weights are the `best/` tensors, or `model/` when it is the
    /// last epoch).
    pub best: Option<BestMeta>,
    /// Every epoch record so far.
    pub history: Vec<EpochRecord>,
}

/// A checkpoint in memory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Scalars and history.
    pub meta: CheckpointMeta,
    /// The network's tensors by `state_dict` name.
    pub model: BTreeMap<String, Tensor>,
    /// The best epoch's tensors when they differ from `model`.
    pub best: Option<BTreeMap<String, Tensor>>,
    /// The optimizer's buffers, `"<slot>.<name>"`.
    pub optimizer: BTreeMap<String, Tensor>,
}

fn prefixed(out: &mut BTreeMap<String, Tensor>, prefix: &str, src: &BTreeMap<String, Tensor>) {
    for (k, v) in src {
        out.insert(format!("{prefix}{k}"), v.clone());
    }
}

impl Checkpoint {
    /// The network's tensors.
    pub fn model_tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.model
    }

    /// The best epoch's tensors (the `model` tensors when the best epoch is the last one).
    pub fn best_tensors(&self) -> Option<&BTreeMap<String, Tensor>> {
        match (&self.meta.best, &self.best) {
            (None, _) => None,
            (Some(_), Some(b)) => Some(b),
            (Some(_), None) => Some(&self.model),
        }
    }

    /// The optimizer state.
    pub fn optimizer_state(&self) -> OptimizerState {
        OptimizerState {
            meta: self.meta.optimizer.clone(),
            tensors: self.optimizer.clone(),
        }
    }

    /// Writes the checkpoint to `path` atomically (replacing a file of the same name).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut all = BTreeMap::new();
        prefixed(&mut all, MODEL, &self.model);
        if let Some(b) = &self.best {
            prefixed(&mut all, BEST, b);
        }
        prefixed(&mut all, OPTIMIZER, &self.optimizer);
        let json = serde_json::to_string(&self.meta)
            .map_err(|e| io_err(path, format!("cannot encode the checkpoint metadata: {e}")))?;
        let meta = HashMap::from([(META_KEY.to_string(), json)]);
        let bytes = safetensors_bytes(&all, Some(meta), path)?;
        write_atomic(path, &bytes)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |msg: String| Error::Checkpoint {
            path: path.to_path_buf(),
            msg,
        };
        let (tensors, meta) = read_safetensors(path)?;
        let json = meta.get(META_KEY).ok_or_else(|| {
            bad(format!(
                "no `{META_KEY}` metadata: this safetensors file is not a dlsia-train checkpoint (a plain weights file loads with dlsia_nets::load_weights)"
            ))
        })?;
        let meta: CheckpointMeta =
            serde_json::from_str(json).map_err(|e| bad(format!("malformed metadata: {e}")))?;
        if meta.format_version == 0 || meta.format_version > CHECKPOINT_FORMAT {
            return Err(bad(format!(
                "format version {} is not supported; this build reads versions 1 to {CHECKPOINT_FORMAT}",
                meta.format_version
            )));
        }
        let (mut model, mut best, mut optimizer) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for (k, v) in tensors {
            if let Some(n) = k.strip_prefix(MODEL) {
                model.insert(n.to_string(), v);
            } else if let Some(n) = k.strip_prefix(BEST) {
                best.insert(n.to_string(), v);
            } else if let Some(n) = k.strip_prefix(OPTIMIZER) {
                optimizer.insert(n.to_string(), v);
            } else {
                return Err(bad(format!("unexpected tensor `{k}`")));
            }
        }
        if model.is_empty() {
            return Err(bad("no model tensors".into()));
        }
        Ok(Self {
            meta,
            model,
            best: (!best.is_empty()).then_some(best),
            optimizer,
        })
    }
}

/// Directory of periodic checkpoints inside a run directory.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// File name of the checkpoint after `epoch` epochs.
pub fn checkpoint_name(epoch: usize) -> String {
    format!("epoch-{epoch:04}.safetensors")
}

fn parse_name(name: &str) -> Option<usize> {
    name.strip_prefix("epoch-")?
        .strip_suffix(".safetensors")?
        .parse()
        .ok()
}

/// The checkpoints in `dir` (a run directory or its `checkpoints/`), sorted by epoch.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let dir = if dir.join(CHECKPOINT_DIR).is_dir() {
        dir.join(CHECKPOINT_DIR)
    } else {
        dir.to_path_buf()
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io_err(&dir, format!("cannot list: {e}"))),
    };
    let mut out: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            parse_name(&name).map(|n| (n, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The newest checkpoint of a run directory, or `path` itself if it is a file.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    list_checkpoints(path)?
        .pop()
        .map(|(_, p)| p)
        .ok_or_else(|| {
            io_err(
                path,
                "no checkpoint (checkpoints/epoch-NNNN.safetensors) found",
            )
        })
}
