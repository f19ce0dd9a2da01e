//! `dlsia evaluate`: scores of a segmentation (or restoration) against reference labels —
//! either a prediction file, or models run on an input image — printed and optionally written
//! as JSON.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use candle_core::DType;
use clap::Args;
use serde_json::json;

use crate::commands::train::{image_batch, target_batch};
use crate::models::{ensemble_predict, Model, Task};
use crate::output::new_file;
use crate::scores::{regression_scores, segmentation_scores};
use crate::volume_io::read_whole;

/// Arguments of `dlsia evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Reference labels (−1 = unlabelled) or reference values (with --regression).
    #[arg(long)]
    pub labels: PathBuf,
    /// A prediction written by `dlsia predict` (or any label image of the same shape).
    #[arg(long, conflicts_with_all = ["models", "input"])]
    pub prediction: Option<PathBuf>,
    /// Instead of --prediction: model directories to run on --input (repeat for an ensemble).
    #[arg(long = "model", requires = "input")]
    pub models: Vec<PathBuf>,
    /// The image the models segment.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Number of classes (default: from the model, or the largest label + 1).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Label of unlabelled pixels.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub ignore_label: i64,
    /// Compare values (Pearson, MAE, RMSE) instead of classes.
    #[arg(long)]
    pub regression: bool,
    /// Also write the scores as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite an existing --json file.
    #[arg(long)]
    pub force: bool,
    /// Where to run the models: `cpu`, `cuda` or `cuda:N` (CUDA needs a build with
    /// `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Runs the evaluation.
pub fn run(args: EvaluateArgs) -> Result<()> {
    let device = dlsia_ops::device_from_str(&args.device)?;
    if let Some(j) = &args.json {
        new_file(j, args.force)?;
    }
    let reference = read_whole(&args.labels)?;
    let shown = args.labels.display().to_string();
    let (scores, source) = if let Some(p) = &args.prediction {
        let pred = read_whole(p)?;
        ensure!(
            pred.shape() == reference.shape(),
            "{} has shape {:?} but {} has shape {:?}; a prediction and its labels must have the same shape",
            p.display(),
            pred.shape(),
            shown,
            reference.shape()
        );
        let scores = if args.regression {
            json!(regression_scores(
                &pred.to_f32_vec(),
                &reference.to_f32_vec()
            )?)
        } else {
            let (p, r) = (pred.to_i64_vec()?, reference.to_i64_vec()?);
            let k = args.num_classes.unwrap_or_else(|| classes_in(&[&p, &r]));
            json!(segmentation_scores(&p, &r, k, args.ignore_label)?)
        };
        (scores, p.display().to_string())
    } else if let Some(input) = &args.input {
        let models = args
            .models
            .iter()
            .map(|d| Model::load(d, None, &device))
            .collect::<Result<Vec<_>>>()?;
        let first = &models[0];
        let (dims, ch) = (first.net.spatial_dims(), first.net.in_channels());
        let x = image_batch(&read_whole(input)?, dims, ch, &input.display().to_string())?;
        first
            .net
            .check_input(x.dims())
            .with_context(|| format!("{} does not fit the model", input.display()))?;
        let (mean, _) = ensemble_predict(&models, &x)?;
        let scores = match first.task {
            Task::Segmentation { num_classes } => {
                let labels = target_batch(&reference, &x, true, &shown)?;
                let p = mean
                    .argmax(1)?
                    .to_dtype(DType::I64)?
                    .flatten_all()?
                    .to_vec1::<i64>()?;
                let r = labels.flatten_all()?.to_vec1::<i64>()?;
                let k = args.num_classes.unwrap_or(num_classes);
                json!(segmentation_scores(&p, &r, k, args.ignore_label)?)
            }
            Task::Regression => {
                let t = target_batch(&reference, &mean, false, &shown)?;
                let p = mean.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let r = t.flatten_all()?.to_vec1::<f32>()?;
                json!(regression_scores(&p, &r)?)
            }
        };
        (
            scores,
            format!("{} model(s) on {}", models.len(), input.display()),
        )
    } else {
        bail!("give --prediction FILE, or --model DIR with --input IMAGE");
    };
    println!("{source} vs {shown}:");
    if let Some(obj) = scores.as_object() {
        for (k, v) in obj {
            match v.as_f64() {
                Some(x) if v.is_f64() => println!("  {k}: {x:.4}"),
                _ => println!("  {k}: {v}"),
            }
        }
    }
    if let Some(j) = &args.json {
        let doc = json!({"prediction": source, "labels": shown, "scores": scores});
        std::fs::write(j, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("cannot write {}", j.display()))?;
        println!("wrote {}", j.display());
    }
    Ok(())
}

/// Largest label in any of the slices, plus one (at least 2).
fn classes_in(all: &[&[i64]]) -> usize {
    let max = all
        .iter()
        .flat_map(|v| v.iter())
        .copied()
        .max()
        .unwrap_or(1);
    (max.max(1) + 1) as usize
}
