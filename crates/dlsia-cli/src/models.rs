//! Models as the commands use them: a network from a model directory plus what the CLI stores in
//! its metadata — the task (segmentation with N classes, or regression) and the input
//! normalisation fitted at training time.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use dlsia_data::Normalization;
use dlsia_nets::model_dir::MODEL_JSON;
use dlsia_nets::{load_model, Network};
use serde::{Deserialize, Serialize};

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// Per-pixel classes; the output is logits (one channel per class, or one logit for two
    /// classes).
    Segmentation {
        /// Number of classes.
        num_classes: usize,
    },
    /// Per-pixel values.
    Regression,
}

impl Task {
    /// The task for `out_channels` when the model does not record one: several channels are
    /// classes, one channel is a value.
    pub fn infer(out_channels: usize) -> Task {
        if out_channels >= 2 {
            Task::Segmentation {
                num_classes: out_channels,
            }
        } else {
            Task::Regression
        }
    }

    /// Output channels of a prediction: classes, or the network's channels.
    pub fn channels(&self, out_channels: usize) -> usize {
        match self {
            Task::Segmentation { num_classes } => *num_classes,
            Task::Regression => out_channels,
        }
    }
}

/// A loaded model.
pub struct Model {
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// The network.
    pub net: Box<dyn Network>,
    /// What it predicts.
    pub task: Task,
    /// Input normalisation stored with it.
    pub normalization: Option<Normalization>,
    /// The device its weights live on (inputs are moved there).
    pub device: Device,
}

impl Model {
    /// Loads a model directory; `task` overrides the task recorded in its metadata.
    pub fn load(dir: &Path, task: Option<Task>, device: &Device) -> Result<Model> {
        if !dir.join(MODEL_JSON).is_file() {
            bail!(
                "{}: not a model directory (no {MODEL_JSON}); `dlsia train` and `dlsia import` write one",
                dir.display()
            );
        }
        let (net, meta) =
            load_model(dir, device).with_context(|| format!("cannot load {}", dir.display()))?;
        let recorded: Option<Task> = meta
            .get("task")
            .map(|t| serde_json::from_value(t.clone()))
            .transpose()
            .with_context(|| format!("{}: malformed metadata.task", dir.display()))?;
        let task = task
            .or(recorded)
            .unwrap_or_else(|| Task::infer(net.out_channels()));
        if let Task::Segmentation { num_classes } = task {
            let out = net.out_channels();
            if !(out == num_classes || (out == 1 && num_classes == 2)) {
                bail!(
                    "{}: a network with {out} output channels cannot give {num_classes} classes",
                    dir.display()
                );
            }
        }
        let normalization = meta
            .get("normalization")
            .map(|n| serde_json::from_value(n.clone()))
            .transpose()
            .with_context(|| format!("{}: malformed metadata.normalization", dir.display()))?;
        Ok(Model {
            dir: dir.to_path_buf(),
            net,
            task,
            normalization,
            device: device.clone(),
        })
    }

    /// Runs the network in eval mode on a raw batch `(B, C_in, spatial…)`: normalises it,
    /// then returns class probabilities (segmentation) or values (regression).
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_device(&self.device)?;
        let x = match &self.normalization {
            Some(n) => n.apply_batch(&x)?,
            None => x,
        };
        let y = self.net.forward_t(&x, false)?;
        Ok(match self.task {
            Task::Regression => y,
            Task::Segmentation { .. } if y.dim(1)? == 1 => {
                let p = sigmoid(&y)?;
                Tensor::cat(&[&(1.0 - &p)?, &p], 1)?
            }
            Task::Segmentation { .. } => softmax_channels(&y)?,
        })
    }
}

/// Softmax over the channel axis (axis 1), computed stably.
pub fn softmax_channels(y: &Tensor) -> Result<Tensor> {
    let max = y.max_keepdim(1)?;
    let e = y.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(1)?;
    Ok(e.broadcast_div(&s)?)
}

/// Logistic sigmoid, element-wise.
fn sigmoid(y: &Tensor) -> Result<Tensor> {
    Ok((y.neg()?.exp()? + 1.0)?.recip()?)
}

/// Mean and standard deviation (population) of several models' predictions of one batch, on
/// the CPU whatever device the models run on.
pub fn ensemble_predict(models: &[Model], x: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
    let outs = models
        .iter()
        .map(|m| Ok(m.predict(x)?.to_device(&Device::Cpu)?))
        .collect::<Result<Vec<_>>>()?;
    if outs.len() == 1 {
        return Ok((outs.into_iter().next().expect("one output"), None));
    }
    let stacked = Tensor::stack(&outs, 0)?.to_dtype(DType::F32)?;
    let mean = stacked.mean(0)?;
    let var = stacked.broadcast_sub(&mean)?.sqr()?.mean(0)?;
    Ok((mean, Some(var.sqrt()?)))
}
