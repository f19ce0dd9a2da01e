//! `dlsia demo`: the first thing to run. Synthetic shapes (dlsia's `random_shape_set`), a small
//! ensemble of U-Nets trained with dlsia-train, predictions with ensemble uncertainty on unseen
//! images, and a report folder:
//!
//! * `metrics.json` — test scores of the ensemble mean and of each member, training history,
//!   uncertainty of right and wrong pixels, timings;
//! * `loss.svg` — training and validation loss of every member per epoch;
//! * `overlay-K.png` — test image `K` with the predicted classes, the reference classes and the
//!   uncertainty map (`uncertainty-K.png`);
//! * `models/member-KK/` — the trained models (usable with `dlsia predict`, `info`, `draw`);
//! * `test-image.npy`, `test-labels.npy` — one unseen image and its labels, to try `dlsia
//!   predict` and `dlsia evaluate` on.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use dlsia_analysis::plot::{
    heatmap_png, segmentation_overlay_png, training_curves_svg, Colormap, HeatmapOptions, Series,
};
use dlsia_data::io::write_npy;
use dlsia_data::synth::random_shape_set;
use dlsia_data::Volume;
use dlsia_data::{randomized_split, DataLoader, LoaderConfig, SplitConfig, SplitLevel};
use dlsia_nets::{save_model, Topology, TuNetConfig};
use dlsia_train::{build_members, train_ensemble, EnsembleMode, OptimizerConfig, TrainConfig};
use dlsia_train::{SchedulerConfig, TaskConfig, TrainReport};
use serde_json::json;

use crate::models::{ensemble_predict, Model};
use crate::output::new_dir;
use crate::scores::segmentation_scores;

/// Arguments of `dlsia demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Report folder (refused if it exists and is not empty, unless --force).
    #[arg(long, default_value = "dlsia-demo")]
    pub out: PathBuf,
    /// Write into an existing, non-empty report folder.
    #[arg(long)]
    pub force: bool,
    /// A few seconds instead of about a minute: tiny data, two epochs (for tests).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the data, the weights and the batch order (same seed, same report).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Networks in the ensemble (its spread is the uncertainty map).
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Training epochs per member (default 48, or 2 with --quick).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Where to train: `cpu`, `cuda` or `cuda:N` (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Sizes of the demo.
struct Plan {
    images: usize,
    test_images: usize,
    size: usize,
    depth: usize,
    base_channels: usize,
    epochs: usize,
}

const CLASSES: usize = 5;
const NOISE: f64 = 0.3;
const CLASS_NAMES: [&str; CLASSES] = ["background", "rectangle", "circle", "triangle", "donut"];

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    anyhow::ensure!(
        (1..=16).contains(&args.members),
        "--members {} must be between 1 and 16",
        args.members
    );
    let plan = if args.quick {
        Plan {
            images: 24,
            test_images: 8,
            size: 16,
            depth: 2,
            base_channels: 4,
            epochs: args.epochs.unwrap_or(2),
        }
    } else {
        Plan {
            images: 120,
            test_images: 32,
            size: 32,
            depth: 3,
            base_channels: 8,
            epochs: args.epochs.unwrap_or(48),
        }
    };
    anyhow::ensure!(plan.epochs >= 1, "--epochs must be at least 1");
    let device = dlsia_ops::device_from_str(&args.device)?;
    new_dir(&args.out, args.force)?;
    let t0 = Instant::now();

    // Data: noisy shapes (rectangles, circles, triangles, donuts) with per-pixel classes.
    let shapes = random_shape_set(plan.images, NOISE, plan.size, args.seed)
        .context("cannot generate the training shapes")?;
    let test = random_shape_set(plan.test_images, NOISE, plan.size, args.seed ^ 0x7e57)
        .context("cannot generate the test shapes")?;
    let split = SplitConfig {
        use_fraction: 0.8,
        level: SplitLevel::Image,
        missing_label: -1,
        seed: args.seed,
    };
    let (train, val) = randomized_split(&shapes.normalized, &shapes.class_image, None, &split)?;
    let loader = |ds, shuffle| {
        DataLoader::new(
            ds,
            LoaderConfig {
                batch_size: 8,
                shuffle,
                seed: args.seed,
                prefetch: 0,
                ..Default::default()
            },
        )
    };
    let (train, val) = (loader(train, true)?, loader(val, false)?);

    // Training: an ensemble of small U-Nets, AdamW with a cosine schedule.
    let topology = Topology::TuNet(TuNetConfig::new(
        &[plan.size, plan.size],
        1,
        CLASSES,
        plan.depth,
        plan.base_channels,
    ));
    let mut config = TrainConfig::new(plan.epochs, TaskConfig::segmentation(CLASSES));
    config.seed = args.seed;
    config.optimizer = toml::from_str::<OptimizerConfig>("kind = \"adamw\"\nlr = 5e-3")?;
    config.scheduler = Some(toml::from_str::<SchedulerConfig>("kind = \"cosine\"")?);
    config.progress = !args.quiet;
    let members = build_members(&topology, args.members, args.seed, &device)?;
    let n_params = members[0].num_parameters();
    if !args.quiet {
        eprintln!(
            "training {} U-Nets ({n_params} parameters each) on {} noisy {s}×{s} shapes for {} epochs",
            args.members,
            plan.images,
            plan.epochs,
            s = plan.size
        );
    }
    let t_train = Instant::now();
    let reports = train_ensemble(
        &config,
        &members,
        &train,
        Some(&val),
        EnsembleMode::Sequential,
    )
    .context("training failed")?;
    let train_seconds = t_train.elapsed().as_secs_f64();

    // Save, then load the models back as `dlsia predict` would.
    let task = json!({"kind": "segmentation", "num_classes": CLASSES});
    let mut model_dirs = Vec::new();
    for (k, net) in members.iter().enumerate() {
        let dir = args.out.join("models").join(format!("member-{k:02}"));
        let meta = json!({"task": task, "created_by": "dlsia demo", "class_names": CLASS_NAMES});
        save_model(net.as_ref(), &dir, &meta, true)?;
        model_dirs.push(dir);
    }
    // The test set is small: predict on the CPU whatever device trained the members.
    let models = model_dirs
        .iter()
        .map(|d| Model::load(d, None, &Device::Cpu))
        .collect::<Result<Vec<_>>>()?;

    // Prediction with uncertainty on unseen images.
    let t_pred = Instant::now();
    let (mean, std) = ensemble_predict(&models, &test.normalized)?;
    let predict_seconds = t_pred.elapsed().as_secs_f64();
    let labels = mean.argmax(1)?.to_dtype(DType::I64)?;
    let reference = test.class_image.to_dtype(DType::I64)?;
    let pred_v = labels.flatten_all()?.to_vec1::<i64>()?;
    let ref_v = reference.flatten_all()?.to_vec1::<i64>()?;
    let ensemble_scores = segmentation_scores(&pred_v, &ref_v, CLASSES, -1)?;
    let uncertainty = match &std {
        Some(s) => chosen_class_std(s, &labels)?,
        None => Tensor::zeros(labels.dims(), DType::F32, &Device::Cpu)?,
    };
    let unc_v = uncertainty.flatten_all()?.to_vec1::<f32>()?;
    let (unc_right, unc_wrong) = mean_by_correctness(&unc_v, &pred_v, &ref_v);
    let mut member_scores = Vec::new();
    for m in &models {
        let p = m
            .predict(&test.normalized)?
            .argmax(1)?
            .to_dtype(DType::I64)?;
        let p = p.flatten_all()?.to_vec1::<i64>()?;
        member_scores.push(segmentation_scores(&p, &ref_v, CLASSES, -1)?);
    }

    // Report.
    write_loss_curves(&args.out.join("loss.svg"), &reports)?;
    let (n, h, w) = (plan.test_images, plan.size, plan.size);
    let image_v = test.normalized.flatten_all()?.to_vec1::<f32>()?;
    let shown = n.min(4);
    let scale = (256 / w).max(1);
    for k in 0..shown {
        let px = k * h * w..(k + 1) * h * w;
        let to_u32 = |v: &[i64]| v.iter().map(|&l| l.max(0) as u32).collect::<Vec<_>>();
        segmentation_overlay_png(
            args.out.join(format!("overlay-{k}-predicted.png")),
            &image_v[px.clone()],
            &to_u32(&pred_v[px.clone()]),
            (h, w),
            0.45,
            scale,
        )?;
        segmentation_overlay_png(
            args.out.join(format!("overlay-{k}-reference.png")),
            &image_v[px.clone()],
            &to_u32(&ref_v[px.clone()]),
            (h, w),
            0.45,
            scale,
        )?;
        heatmap_png(
            args.out.join(format!("uncertainty-{k}.png")),
            &unc_v[px],
            (h, w),
            &HeatmapOptions {
                colormap: Colormap::Viridis,
                range: None,
                scale,
            },
        )?;
    }
    write_test_pair(&args.out, &test.normalized, &reference)?;
    let total_seconds = t0.elapsed().as_secs_f64();
    let metrics = json!({
        "data": {"train_and_validation_images": plan.images, "test_images": plan.test_images,
                 "size": [plan.size, plan.size], "classes": CLASS_NAMES, "noise": NOISE, "seed": args.seed},
        "model": {"topology": topology, "parameters": n_params, "members": args.members},
        "training": {"epochs": plan.epochs, "optimizer": "adamw lr 5e-3, cosine schedule",
                     "history": reports.iter().map(|r| &r.history).collect::<Vec<_>>()},
        "test": {"ensemble_mean": ensemble_scores, "members": member_scores,
                 "mean_uncertainty_right_pixels": unc_right,
                 "mean_uncertainty_wrong_pixels": unc_wrong},
        "seconds": {"train": train_seconds, "predict": predict_seconds, "total": total_seconds},
    });
    let metrics_path = args.out.join("metrics.json");
    std::fs::write(
        &metrics_path,
        serde_json::to_string_pretty(&metrics)? + "\n",
    )
    .with_context(|| format!("cannot write {}", metrics_path.display()))?;

    println!("dlsia demo: {} (seed {})", args.out.display(), args.seed);
    println!(
        "  trained {} U-Nets × {} epochs ({n_params} parameters each) in {train_seconds:.1} s",
        args.members, plan.epochs
    );
    println!(
        "  test ({} unseen images): F1 micro {:.3}, F1 macro {:.3}, mean IoU {:.3} (ensemble mean)",
        plan.test_images,
        ensemble_scores.f1_micro,
        ensemble_scores.f1_macro,
        ensemble_scores.mean_iou
    );
    for (k, s) in member_scores.iter().enumerate() {
        println!("    member {k}: F1 macro {:.3}", s.f1_macro);
    }
    if let (Some(r), Some(w)) = (unc_right, unc_wrong) {
        println!("  uncertainty (ensemble std): {r:.4} on right pixels, {w:.4} on wrong ones");
    }
    println!("  report: metrics.json, loss.svg, overlay-*-{{predicted,reference}}.png, uncertainty-*.png");
    println!(
        "  next: dlsia predict --model {m} --input {i} --output seg.tif",
        m = model_dirs[0].display(),
        i = args.out.join("test-image.npy").display()
    );
    println!("  total {total_seconds:.1} s");
    Ok(())
}

/// The ensemble's standard deviation of the probability of the chosen class, `(N, H, W)`.
fn chosen_class_std(std: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let idx = labels.unsqueeze(1)?.to_dtype(DType::U32)?;
    Ok(std.gather(&idx, 1)?.squeeze(1)?.to_dtype(DType::F32)?)
}

/// Mean of `values` where the prediction is right and where it is wrong (labelled pixels).
fn mean_by_correctness(
    values: &[f32],
    pred: &[i64],
    reference: &[i64],
) -> (Option<f64>, Option<f64>) {
    let mut sums = [(0.0f64, 0usize); 2];
    for ((&v, &p), &r) in values.iter().zip(pred).zip(reference) {
        if r >= 0 {
            let s = &mut sums[usize::from(p != r)];
            s.0 += f64::from(v);
            s.1 += 1;
        }
    }
    let mean = |(s, n): (f64, usize)| (n > 0).then(|| s / n as f64);
    (mean(sums[0]), mean(sums[1]))
}

/// Loss curves of every member (training and validation).
fn write_loss_curves(path: &Path, reports: &[TrainReport]) -> Result<()> {
    let mut names = Vec::new();
    let mut points = Vec::new();
    for (k, r) in reports.iter().enumerate() {
        let train: Vec<(f64, f64)> = r
            .history
            .iter()
            .filter_map(|e| e.train.loss.map(|l| (e.epoch as f64, l)))
            .collect();
        let val: Vec<(f64, f64)> = r
            .history
            .iter()
            .filter_map(|e| e.validation.as_ref()?.loss.map(|l| (e.epoch as f64, l)))
            .collect();
        names.push(format!("member {k} training"));
        points.push(train);
        names.push(format!("member {k} validation"));
        points.push(val);
    }
    let series: Vec<Series<'_>> = names
        .iter()
        .zip(&points)
        .map(|(name, p)| Series { name, points: p })
        .collect();
    training_curves_svg(
        path,
        "dlsia demo: cross-entropy",
        ("epoch", "loss"),
        &series,
        true,
    )?;
    Ok(())
}

/// Writes the first test image and its labels as `.npy`, for `dlsia predict` / `evaluate`.
fn write_test_pair(out: &Path, images: &Tensor, labels: &Tensor) -> Result<()> {
    let image = images.get(0)?.squeeze(0)?;
    let label = labels.get(0)?;
    write_npy(out.join("test-image.npy"), &Volume::from_tensor(&image)?)?;
    write_npy(out.join("test-labels.npy"), &Volume::from_tensor(&label)?)?;
    Ok(())
}
