//! Workflow 1: inpainting detector gaps in X-ray scattering patterns (the DLSIA paper's first
//! application).
//!
//! Synthetic scattering patterns come with their noise-free truth everywhere, including in the
//! detector's module gaps. [`add_artificial_gaps`] blanks new gap-shaped bands where the truth is
//! known; a TUNet and an MSDNet learn to fill them, with an L1 loss counted on those pixels only
//! (the mask). On held-out patterns both are scored by the Pearson correlation and the L1 error
//! between predicted and true gap pixels, beside the trivial zero-fill baseline.
//!
//! ```no_run
//! use dlsia_examples::inpainting::{run, InpaintingSettings};
//! let summary = run(&InpaintingSettings::quick(0), std::path::Path::new("runs/inpainting"))?;
//! println!("TUNet Pearson on gaps: {:.3}", summary.tunet.gap_pearson);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use candle_core::Device;
use dlsia_analysis::plot::{heatmap_png, training_curves_svg, Colormap, HeatmapOptions, Series};
use dlsia_data::seed::mix_seed;
use dlsia_data::synth::{add_artificial_gaps, scattering_pattern, ScatteringConfig};
use dlsia_data::{DataLoader, LoaderConfig, TensorDataset};
use dlsia_losses::{LossConfig, MaskedL1Config};
use dlsia_nets::{save_model, MsdNetConfig, Network, Topology, TuNetConfig};
use dlsia_train::optim::AdamConfig;
use dlsia_train::{OptimizerConfig, TaskConfig, TrainConfig, TrainReport, Trainer};
use serde::Serialize;

use crate::outdir::write_json;
use crate::stats::{l1_where, pearson_where};
use crate::tensors::{predict_batched, stack_images, to_vec_f32};

/// Everything a run needs; build one with [`quick`](Self::quick),
/// [`standard`](Self::standard) or [`paper`](Self::paper) and adjust.
#[derive(Debug, Clone, Serialize)]
pub struct InpaintingSettings {
    /// Side of the square detector images.
    pub image_size: usize,
    /// Training patterns.
    pub train_images: usize,
    /// Held-out patterns the networks are scored on.
    pub test_images: usize,
    /// Artificial gaps per pattern: `(horizontal, vertical)` bands.
    pub artificial_gaps: (usize, usize),
    /// Width of a gap in pixels.
    pub gap_width: usize,
    /// Training epochs of each network.
    pub epochs: usize,
    /// Patterns per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// The U-Net.
    pub tunet: TuNetConfig,
    /// The mixed-scale dense network.
    pub msdnet: MsdNetConfig,
    /// Seed of data, weights and batch order.
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
}

impl InpaintingSettings {
    /// A few seconds: 48×48 patterns, tiny networks (what the tests run).
    pub fn quick(seed: u64) -> Self {
        let n = 48;
        Self {
            image_size: n,
            train_images: 12,
            test_images: 4,
            artificial_gaps: (1, 1),
            gap_width: 3,
            epochs: 30,
            batch_size: 4,
            learning_rate: 5e-3,
            tunet: TuNetConfig::new(&[n, n], 1, 1, 2, 6),
            msdnet: MsdNetConfig::new(1, 1, 8, 1, 4),
            seed,
            progress: false,
        }
    }

    /// The default run (a few minutes on 2 cores): 96×96 patterns, a depth-3 TUNet with 16 base
    /// channels and a 40-layer MSDNet with dilations up to 10.
    pub fn standard(seed: u64) -> Self {
        let n = 96;
        Self {
            image_size: n,
            train_images: 48,
            test_images: 12,
            artificial_gaps: (2, 2),
            gap_width: 5,
            epochs: 25,
            batch_size: 4,
            learning_rate: 2e-3,
            tunet: TuNetConfig::new(&[n, n], 1, 1, 3, 16),
            msdnet: MsdNetConfig::new(1, 1, 40, 1, 10),
            seed,
            progress: true,
        }
    }

    /// The paper's network sizes: a depth-4 TUNet of about 8.56 M parameters (base 32, growth
    /// 2) and a 200-layer MSDNet with dilations up to 10 (0.18 M convolution parameters), on
    /// 256×256 patterns. Slow on a CPU: hours on 2 cores.
    pub fn paper(seed: u64) -> Self {
        let n = 256;
        Self {
            image_size: n,
            train_images: 200,
            test_images: 20,
            artificial_gaps: (2, 2),
            gap_width: 5,
            epochs: 50,
            batch_size: 4,
            learning_rate: 1e-3,
            tunet: TuNetConfig::new(&[n, n], 1, 1, 4, 32),
            msdnet: MsdNetConfig::new(1, 1, 200, 1, 10),
            seed,
            progress: true,
        }
    }

    /// Checks the values the networks and generators do not check themselves.
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.train_images >= 1 && self.test_images >= 1,
            "need at least one training and one test pattern, got {} and {}",
            self.train_images,
            self.test_images
        );
        ensure!(
            self.epochs >= 1 && self.batch_size >= 1,
            "epochs and batch_size must be at least 1"
        );
        ensure!(
            self.artificial_gaps.0 + self.artificial_gaps.1 >= 1,
            "need at least one artificial gap per pattern"
        );
        ensure!(
            self.tunet.image_shape == [self.image_size, self.image_size],
            "the TUNet's image_shape {:?} must be the pattern size [{n}, {n}]",
            self.tunet.image_shape,
            n = self.image_size
        );
        ensure!(
            self.tunet.in_channels == 1
                && self.tunet.out_channels == 1
                && self.msdnet.in_channels == 1
                && self.msdnet.out_channels == 1,
            "both networks map one channel (the pattern) to one channel (the filled pattern)"
        );
        Ok(())
    }
}

/// One network's scores on the held-out patterns.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkScores {
    /// Architecture name.
    pub network: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Pearson correlation of predicted and true gap pixels.
    pub gap_pearson: f64,
    /// Mean absolute error on gap pixels.
    pub gap_l1: f64,
    /// Training loss (masked L1) per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss (masked L1 on the held-out patterns) per epoch.
    pub validation_loss: Vec<f64>,
    /// Wall-clock training time in seconds.
    pub train_seconds: f64,
}

/// What a run reports (also written as `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct InpaintingSummary {
    /// The settings of the run.
    pub settings: InpaintingSettings,
    /// Gap pixels scored in the held-out patterns.
    pub gap_pixels: usize,
    /// Mean absolute error on gap pixels when the gaps are left at zero.
    pub zero_fill_l1: f64,
    /// Mean absolute error on gap pixels when they are filled with the mean of the
    /// pattern's recorded pixels.
    pub mean_fill_l1: f64,
    /// The TUNet's scores.
    pub tunet: NetworkScores,
    /// The MSDNet's scores.
    pub msdnet: NetworkScores,
    /// Wall-clock time of the whole run in seconds.
    pub seconds: f64,
}

/// Patterns with artificial gaps, flat row-major `image_size²` each.
struct GapData {
    inputs: Vec<Vec<f32>>,
    truths: Vec<Vec<f32>>,
    masks: Vec<Vec<f32>>,
    valid: Vec<Vec<f32>>,
}

fn make_patterns(s: &InpaintingSettings, first: usize, count: usize) -> Result<GapData> {
    let mut d = GapData {
        inputs: vec![],
        truths: vec![],
        masks: vec![],
        valid: vec![],
    };
    for i in first..first + count {
        let cfg = ScatteringConfig {
            height: s.image_size,
            width: s.image_size,
            module: (s.image_size * 3 / 5, s.image_size * 3 / 5),
            gap: s.gap_width,
            beamstop_radius: s.image_size as f64 / 32.0,
            seed: mix_seed(s.seed, i as u64),
            ..Default::default()
        };
        let p = scattering_pattern(&cfg)?;
        let g = add_artificial_gaps(
            &p.observed,
            &p.valid,
            p.shape,
            s.artificial_gaps.0,
            s.artificial_gaps.1,
            s.gap_width,
            mix_seed(s.seed ^ 0x6a70, i as u64),
        )?;
        d.inputs.push(g.input);
        d.truths.push(p.truth);
        d.masks.push(g.loss_mask);
        d.valid.push(g.valid);
    }
    Ok(d)
}

fn dataset(d: &GapData, n: usize) -> Result<TensorDataset> {
    let sp = [n, n];
    Ok(TensorDataset::new(
        stack_images(&d.inputs, &sp)?,
        Some(stack_images(&d.truths, &sp)?),
        Some(stack_images(&d.masks, &sp)?),
    )?)
}

fn train_config(s: &InpaintingSettings) -> TrainConfig {
    let mut cfg = TrainConfig::new(s.epochs, TaskConfig::Regression);
    cfg.seed = s.seed;
    cfg.loss = Some(LossConfig::MaskedL1(MaskedL1Config {}));
    cfg.optimizer = OptimizerConfig::Adam(AdamConfig {
        lr: s.learning_rate,
        ..Default::default()
    });
    cfg.progress = s.progress;
    cfg
}

fn train_and_score(
    name: &str,
    net: &dyn Network,
    s: &InpaintingSettings,
    train: &DataLoader<TensorDataset>,
    val: &DataLoader<TensorDataset>,
    test: &GapData,
    out: &Path,
) -> Result<(NetworkScores, Vec<f32>)> {
    if s.progress {
        eprintln!("training {name} ({} parameters)", net.num_parameters());
    }
    let t0 = Instant::now();
    let report: TrainReport = Trainer::new(&train_config(s), net)?.fit(train, Some(val))?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let n = s.image_size;
    let x = stack_images(&test.inputs, &[n, n])?;
    let pred = to_vec_f32(&predict_batched(net, &x, s.batch_size)?)?;
    let truth: Vec<f32> = test.truths.concat();
    let mask: Vec<bool> = test.masks.concat().iter().map(|&m| m > 0.5).collect();
    let gap_pearson = pearson_where(&pred, &truth, &mask)
        .context("the prediction or the truth is constant on the gap pixels")?;
    let gap_l1 = l1_where(&pred, &truth, &mask);
    save_model(
        net,
        &out.join(format!("{}-model", name.to_lowercase())),
        &serde_json::json!({"workflow": "inpainting"}),
        true,
    )?;
    let loss = |val: bool| -> Vec<f64> {
        report
            .history
            .iter()
            .map(|r| {
                let m = if val {
                    r.validation.as_ref()
                } else {
                    Some(&r.train)
                };
                m.and_then(|m| m.loss).unwrap_or(f64::NAN)
            })
            .collect()
    };
    Ok((
        NetworkScores {
            network: name.into(),
            parameters: net.num_parameters(),
            gap_pearson,
            gap_l1,
            train_loss: loss(false),
            validation_loss: loss(true),
            train_seconds,
        },
        pred,
    ))
}

fn write_pictures(
    out: &Path,
    s: &InpaintingSettings,
    test: &GapData,
    tunet_pred: &[f32],
    msd_pred: &[f32],
    scores: [&NetworkScores; 2],
) -> Result<()> {
    let n = s.image_size;
    let first = 0..n * n;
    let truth = &test.truths[0];
    let valid = &test.valid[0];
    // The filled pattern: recorded pixels kept; every pixel without data (artificial gaps,
    // the detector's own gaps, the beam stop) from the network.
    let filled = |pred: &[f32]| -> Vec<f32> {
        (0..n * n)
            .map(|i| {
                if valid[i] < 0.5 {
                    pred[i]
                } else {
                    test.inputs[0][i]
                }
            })
            .collect()
    };
    let hi = truth.iter().copied().fold(0f32, f32::max).max(1e-6);
    let opts = HeatmapOptions {
        colormap: Colormap::Viridis,
        range: Some((0.0, hi)),
        scale: (384 / n).max(1),
    };
    heatmap_png(out.join("before.png"), &test.inputs[0], (n, n), &opts)?;
    heatmap_png(out.join("truth.png"), truth, (n, n), &opts)?;
    heatmap_png(
        out.join("after_tunet.png"),
        &filled(&tunet_pred[first.clone()]),
        (n, n),
        &opts,
    )?;
    heatmap_png(
        out.join("after_msdnet.png"),
        &filled(&msd_pred[first]),
        (n, n),
        &opts,
    )?;
    let pts = |v: &[f64]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .filter(|(_, y)| y.is_finite())
            .map(|(i, &y)| ((i + 1) as f64, y))
            .collect()
    };
    let curves: Vec<(String, Vec<(f64, f64)>)> = scores
        .iter()
        .flat_map(|sc| {
            [
                (format!("{} train", sc.network), pts(&sc.train_loss)),
                (
                    format!("{} validation", sc.network),
                    pts(&sc.validation_loss),
                ),
            ]
        })
        .collect();
    let series: Vec<Series> = curves
        .iter()
        .map(|(name, p)| Series { name, points: p })
        .collect();
    training_curves_svg(
        out.join("loss_curves.svg"),
        "Inpainting: masked L1 on gap pixels",
        ("epoch", "L1"),
        &series,
        true,
    )?;
    Ok(())
}

/// Runs the workflow and writes into `out` (which must exist): `summary.json`, `loss_curves.svg`,
/// `before.png` / `truth.png` / `after_tunet.png` / `after_msdnet.png` (the first held-out
/// pattern), and the trained networks as model folders `tunet-model/` and `msdnet-model/`.
pub fn run(s: &InpaintingSettings, out: &Path) -> Result<InpaintingSummary> {
    s.check()?;
    let t0 = Instant::now();
    let n = s.image_size;
    let train = make_patterns(s, 0, s.train_images)?;
    let test = make_patterns(s, s.train_images, s.test_images)?;
    let loader = |d: &GapData, shuffle: bool| {
        DataLoader::new(
            dataset(d, n)?,
            LoaderConfig {
                batch_size: s.batch_size,
                shuffle,
                seed: s.seed,
                drop_last: false,
                prefetch: 0,
            },
        )
        .map_err(anyhow::Error::from)
    };
    let (train_loader, val_loader) = (loader(&train, true)?, loader(&test, false)?);

    let truth: Vec<f32> = test.truths.concat();
    let mask: Vec<bool> = test.masks.concat().iter().map(|&m| m > 0.5).collect();
    let gap_pixels = mask.iter().filter(|&&m| m).count();
    ensure!(
        gap_pixels > 0,
        "the held-out patterns have no artificial gap pixels over recorded data"
    );
    let zeros = vec![0f32; truth.len()];
    let zero_fill_l1 = l1_where(&zeros, &truth, &mask);
    let mean_fill: Vec<f32> = test
        .inputs
        .iter()
        .zip(&test.valid)
        .flat_map(|(x, v)| {
            let (s, c) = x
                .iter()
                .zip(v)
                .filter(|(_, &v)| v > 0.5)
                .fold((0f64, 0f64), |(s, c), (&x, _)| (s + x as f64, c + 1.0));
            vec![(s / c.max(1.0)) as f32; x.len()]
        })
        .collect();
    let mean_fill_l1 = l1_where(&mean_fill, &truth, &mask);

    let dev = Device::Cpu;
    let tunet = Topology::TuNet(s.tunet.clone()).build(s.seed, &dev)?;
    let msdnet = Topology::MsdNet(s.msdnet.clone()).build(s.seed, &dev)?;
    let (tunet_scores, tunet_pred) = train_and_score(
        "TUNet",
        tunet.as_ref(),
        s,
        &train_loader,
        &val_loader,
        &test,
        out,
    )?;
    let (msd_scores, msd_pred) = train_and_score(
        "MSDNet",
        msdnet.as_ref(),
        s,
        &train_loader,
        &val_loader,
        &test,
        out,
    )?;
    write_pictures(
        out,
        s,
        &test,
        &tunet_pred,
        &msd_pred,
        [&tunet_scores, &msd_scores],
    )?;
    let summary = InpaintingSummary {
        settings: s.clone(),
        gap_pixels,
        zero_fill_l1,
        mean_fill_l1,
        tunet: tunet_scores,
        msdnet: msd_scores,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_json(out, "summary.json", &summary)?;
    Ok(summary)
}

/// The summary as a few lines of text.
pub fn describe(s: &InpaintingSummary) -> String {
    let mut t = format!(
        "inpainting: {} held-out patterns, {} gap pixels; zero-fill L1 {:.4}, mean-fill L1 {:.4}\n",
        s.settings.test_images, s.gap_pixels, s.zero_fill_l1, s.mean_fill_l1
    );
    for n in [&s.tunet, &s.msdnet] {
        t += &format!(
            "  {:<7} {:>9} params  gap Pearson {:.4}  gap L1 {:.4}  trained in {:.1} s\n",
            n.network, n.parameters, n.gap_pearson, n.gap_l1, n.train_seconds
        );
    }
    t += &format!("  total {:.1} s", s.seconds);
    t
}
