//! `dlsia train --config run.toml`: reads the images and labels, fits the input normalisation,
//! splits, trains with dlsia-train and writes a model directory that `dlsia predict` and
//! `dlsia evaluate` use (its metadata holds the task and the normalisation).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use dlsia_data::{randomized_split, DataLoader, LoaderConfig, Normalization, SplitConfig};
use dlsia_data::{TensorDataset, Volume};
use dlsia_nets::save_model;
use dlsia_train::{TaskConfig, Trainer};
use serde_json::json;

use crate::output::new_dir;
use crate::run_config::RunConfig;
use crate::volume_io::read_whole;

/// Arguments of `dlsia train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The configuration (`dlsia init` writes a commented example).
    #[arg(long)]
    pub config: PathBuf,
    /// Replace an existing model directory.
    #[arg(long)]
    pub force: bool,
    /// No progress bar (overrides `train.progress`).
    #[arg(long)]
    pub quiet: bool,
}

/// Images `(N, C, spatial…)` from a volume of a `dims`-D model with `channels` input channels.
pub fn image_batch(v: &Volume, dims: usize, channels: usize, what: &str) -> Result<Tensor> {
    let shape = v.shape().to_vec();
    let t = v.to_tensor(&Device::Cpu)?;
    let r = shape.len();
    let t = if r == dims && channels == 1 {
        t.unsqueeze(0)?.unsqueeze(0)?
    } else if r == dims + 1 && channels == 1 {
        t.unsqueeze(1)?
    } else if r == dims + 2 && shape[1] == channels {
        t
    } else {
        bail!(
            "{what} has shape {shape:?}; a {dims}-D model with {channels} input channel(s) takes \
             {} (one image), (N, {}) or (N, {channels}, {})",
            spatial(dims),
            spatial(dims),
            spatial(dims)
        );
    };
    Ok(t.to_dtype(DType::F32)?)
}

fn spatial(dims: usize) -> &'static str {
    if dims == 3 {
        "D, H, W"
    } else {
        "H, W"
    }
}

/// Targets matching `images` `(N, C, spatial…)`: labels `(N, spatial…)` as i64 for
/// segmentation, values `(N, 1, spatial…)` for regression.
pub fn target_batch(v: &Volume, images: &Tensor, segmentation: bool, what: &str) -> Result<Tensor> {
    let want: Vec<usize> = images
        .dims()
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 1)
        .map(|(_, &d)| d)
        .collect();
    let n_elems: usize = want.iter().product();
    if v.len() != n_elems {
        bail!(
            "{what} has shape {:?} but the images give {want:?} (without the channel axis); images and labels must have the same shape",
            v.shape()
        );
    }
    let same_spatial = v
        .shape()
        .iter()
        .rev()
        .zip(want.iter().rev())
        .all(|(a, b)| a == b);
    if !same_spatial {
        bail!(
            "{what} has shape {:?} but the images give {want:?}; images and labels must have the same shape",
            v.shape()
        );
    }
    if segmentation {
        Ok(v.to_label_tensor(&Device::Cpu)?.reshape(want)?)
    } else {
        Ok(v.to_tensor(&Device::Cpu)?
            .reshape(want)?
            .unsqueeze(1)?
            .to_dtype(DType::F32)?)
    }
}

/// Runs the training.
pub fn run(args: TrainArgs) -> Result<()> {
    let t0 = Instant::now();
    let mut cfg = RunConfig::from_file(&args.config)?;
    if args.quiet {
        cfg.train.progress = false;
    }
    if cfg.model_dir.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to replace it",
            cfg.model_dir.display()
        );
    }
    let device = Device::Cpu;
    let net = cfg.model.build(cfg.train.seed, &device)?;
    let (dims, channels) = (net.spatial_dims(), net.in_channels());
    let images = read_whole(&cfg.data.images)?;
    let images = image_batch(
        &images,
        dims,
        channels,
        &cfg.data.images.display().to_string(),
    )?;
    let segmentation = matches!(cfg.train.task, TaskConfig::Segmentation { .. });
    let targets = match (&cfg.train.task, &cfg.data.labels) {
        (TaskConfig::Autoencoder, _) => images.clone(),
        (_, None) => bail!("data.labels is missing: segmentation and regression need targets"),
        (_, Some(p)) => {
            let v = read_whole(p)?;
            target_batch(&v, &images, segmentation, &p.display().to_string())?
        }
    };
    if let TaskConfig::Segmentation {
        num_classes,
        ignore_label,
        ..
    } = cfg.train.task
    {
        let v = targets.flatten_all()?.to_vec1::<i64>()?;
        if let Some(bad) = v
            .iter()
            .find(|&&l| l != ignore_label && !(0..num_classes as i64).contains(&l))
        {
            bail!(
                "the labels contain {bad}; with task.num_classes = {num_classes} they must be 0..{} or the ignore label {ignore_label}",
                num_classes - 1
            );
        }
    }
    net.check_input(images.dims())
        .with_context(|| format!("{} does not fit [model]", cfg.data.images.display()))?;
    let normalization = if cfg.data.normalize {
        Some(Normalization::fit_mean_std(&images)?)
    } else {
        None
    };
    let x = match &normalization {
        Some(n) => n.apply_batch(&images)?,
        None => images.clone(),
    };
    let split = SplitConfig {
        use_fraction: cfg.data.train_fraction,
        level: cfg.data.split.level(),
        missing_label: -1,
        seed: cfg.train.seed,
    };
    let (train, val): (TensorDataset, TensorDataset) = if x.dim(0)? == 1
        && cfg.data.split.level() == dlsia_data::SplitLevel::Image
    {
        bail!(
            "data.split = \"image\" needs two or more images; use split = \"pixel\" for one image"
        );
    } else if segmentation {
        randomized_split(&x, &targets, None, &split)?
    } else {
        if cfg.data.split.level() == dlsia_data::SplitLevel::Pixel {
            bail!("data.split = \"pixel\" is for labelled segmentation pixels; use \"image\" for regression");
        }
        randomized_split(&x, &targets, None, &split)?
    };
    let loader = |ds, shuffle| {
        DataLoader::new(
            ds,
            LoaderConfig {
                batch_size: cfg.data.batch_size,
                shuffle,
                seed: cfg.train.seed,
                prefetch: 0,
                ..Default::default()
            },
        )
    };
    let (train, val) = (loader(train, true)?, loader(val, false)?);
    let report = Trainer::new(&cfg.train, net.as_ref())?
        .fit(&train, Some(&val))
        .context("training failed")?;
    new_dir(&cfg.model_dir, true)?;
    let task = match cfg.train.task {
        TaskConfig::Segmentation { num_classes, .. } => {
            json!({"kind": "segmentation", "num_classes": num_classes})
        }
        _ => json!({"kind": "regression"}),
    };
    let last = report.history.last();
    let meta = json!({
        "task": task,
        "normalization": normalization,
        "created_by": "dlsia train",
        "config": args.config.display().to_string(),
        "epochs": report.history.len(),
        "best_epoch": report.best_epoch,
        "last_epoch": last,
    });
    save_model(net.as_ref(), &cfg.model_dir, &meta, true)?;
    println!(
        "trained {} ({} parameters) for {} epochs in {:.1} s: {:?}",
        cfg.model.architecture(),
        net.num_parameters(),
        report.history.len(),
        t0.elapsed().as_secs_f64(),
        report.stop
    );
    if let Some(e) = last {
        let v = e.validation.as_ref();
        println!(
            "  last epoch: training loss {}, validation loss {}{}",
            fmt(e.train.loss),
            fmt(v.and_then(|m| m.loss)),
            match v.and_then(|m| m.f1_macro.or(m.pearson)) {
                Some(s) if segmentation => format!(", validation F1 macro {s:.3}"),
                Some(s) => format!(", validation Pearson {s:.3}"),
                None => String::new(),
            }
        );
    }
    println!("wrote {}", cfg.model_dir.display());
    Ok(())
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}
