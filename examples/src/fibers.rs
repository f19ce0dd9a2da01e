//! Workflow 2: fibers in a concrete tomogram (the DLSIA paper's second application).
//!
//! A synthetic fibers-in-concrete volume comes with sparse labels as a user would paint them: a
//! few fibers and some background in a few slices. Five SMSNets (random sparse mixed-scale
//! graphs of about 45 k parameters, sampled with the ensemble builder's bounds) are trained on
//! the labelled slices and applied slice by slice to the whole volume. The ensemble's mean and
//! standard deviation of the fiber probability give the paper's rule: a voxel is fiber where
//! mean − std > 0.5. 26-connected components with small ones dusted away are the fibers found;
//! each is measured (length, direction), and the orientation distribution of the segmentation
//! is drawn as a Hammer projection. The generator's ground truth gives F1 and the number of
//! fibers present.
//!
//! ```no_run
//! use dlsia_examples::fibers::{run, FiberSettings};
//! let summary = run(&FiberSettings::quick(0), std::path::Path::new("runs/fibers"))?;
//! println!("F1 = {:.3}", summary.scores.f1);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use candle_core::{Device, IndexOp, Tensor};
use dlsia_analysis::ccl::{connected_components, Connectivity};
use dlsia_analysis::fiber::{
    fibers_to_csv, measure_fibers, orientation_distribution, OrientationOptions,
};
use dlsia_analysis::histogram::Histogram;
use dlsia_analysis::plot::{
    hammer_png, hammer_svg, heatmap_png, histogram_svg, segmentation_overlay_png, Colormap,
    HeatmapOptions,
};
use dlsia_data::seed::mix_seed;
use dlsia_data::synth::{fibers_in_concrete, FiberConfig, FiberVolume};
use dlsia_data::Batch;
use dlsia_graph::{sample_ensemble, EnsembleParams, NetworkType, SpatialDims};
use dlsia_nets::{Network, SmsNetConfig, Topology};
use dlsia_train::optim::AdamConfig;
use dlsia_train::{train_ensemble, EnsembleMode, OptimizerConfig, TaskConfig, TrainConfig};
use dlsia_uq::{Ensemble, LogitsFn, Predictor, Spread};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::outdir::write_json;
use crate::stats::{binary_scores, BinaryScores};

/// Everything a run needs; build one with [`quick`](Self::quick) or
/// [`standard`](Self::standard) and adjust.
#[derive(Debug, Clone, Serialize)]
pub struct FiberSettings {
    /// The synthetic volume and its sparse labels.
    pub volume: FiberConfig,
    /// The ensemble builder (number of networks, layers, channels, parameter bounds).
    pub ensemble: EnsembleParams,
    /// Training epochs of each member.
    pub epochs: usize,
    /// Labelled slices per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// The confidence rule's threshold on mean − std (the paper: 0.5).
    pub threshold: f64,
    /// Components smaller than this many voxels are dropped (dusting).
    pub dust_voxels: u64,
    /// Sphere radius of the orientation autocorrelation, in voxels.
    pub orientation_radius: f64,
    /// A ground-truth fiber counts as found when this fraction of its voxels is segmented.
    pub found_fraction: f64,
    /// Seed of graphs, weights and batch order (the volume has its own seed in `volume`).
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
}

impl FiberSettings {
    /// A few seconds: a 16×40×40 volume and five tiny SMSNets (what the tests run).
    pub fn quick(seed: u64) -> Self {
        let mut ensemble = EnsembleParams::new(5, 1, 2, 4);
        ensemble.hidden_channels = Some(vec![4]);
        ensemble.network_type = NetworkType::Classification;
        Self {
            volume: FiberConfig {
                shape: [16, 40, 40],
                n_fibers: 8,
                radius: (1.5, 2.2),
                length: (16.0, 30.0),
                n_grains: 3,
                grain_radius: (3.0, 6.0),
                labelled_fibers: 4,
                labelled_slices: 6,
                background_strokes: 6,
                brush_radius: 3.0,
                seed,
                ..Default::default()
            },
            ensemble,
            epochs: 25,
            batch_size: 3,
            learning_rate: 1e-2,
            threshold: 0.5,
            dust_voxels: 10,
            orientation_radius: 5.0,
            found_fraction: 0.5,
            seed,
            progress: false,
        }
    }

    /// The default run (a few minutes on 2 cores): a 48×96×96 volume with 24 fibers and an
    /// ensemble of five SMSNets of 16 layers, 6 hidden channels, dilations 1–4 and 40–50 k
    /// parameters each (the W4 family).
    pub fn standard(seed: u64) -> Self {
        let mut ensemble = EnsembleParams::new(5, 1, 2, 16);
        ensemble.hidden_channels = Some(vec![6]);
        ensemble.network_type = NetworkType::Classification;
        ensemble.parameter_bounds = Some((40_000, 50_000));
        Self {
            volume: FiberConfig {
                shape: [48, 96, 96],
                n_fibers: 24,
                length: (30.0, 70.0),
                n_grains: 12,
                grain_radius: (5.0, 10.0),
                labelled_fibers: 5,
                labelled_slices: 8,
                seed,
                ..Default::default()
            },
            ensemble,
            epochs: 30,
            batch_size: 4,
            learning_rate: 5e-3,
            threshold: 0.5,
            dust_voxels: 50,
            orientation_radius: 12.0,
            found_fraction: 0.5,
            seed,
            progress: true,
        }
    }

    /// Checks the values the generators and networks do not check themselves.
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.ensemble.n_networks >= 2,
            "the ensemble needs at least 2 networks for a standard deviation, got {}",
            self.ensemble.n_networks
        );
        ensure!(
            self.ensemble.in_channels == 1 && self.ensemble.out_channels == 2,
            "the SMSNets map the grey volume (1 channel) to background/fiber logits (2 channels)"
        );
        ensure!(
            self.ensemble.dims == SpatialDims::Two,
            "the members are 2-D networks applied slice by slice"
        );
        ensure!(
            self.epochs >= 1 && self.batch_size >= 1,
            "epochs and batch_size must be at least 1"
        );
        ensure!(
            (0.5..1.0).contains(&self.threshold),
            "threshold {} must lie in [0.5, 1)",
            self.threshold
        );
        ensure!(
            self.found_fraction > 0.0 && self.found_fraction <= 1.0,
            "found_fraction {} must lie in (0, 1]",
            self.found_fraction
        );
        ensure!(
            self.volume.labelled_fibers >= 1 && self.volume.labelled_slices >= 1,
            "the volume needs labelled fibers and labelled slices to train on"
        );
        Ok(())
    }
}

/// One member of the ensemble.
#[derive(Debug, Clone, Serialize)]
pub struct MemberSummary {
    /// Trainable parameters.
    pub parameters: usize,
    /// Training loss (cross-entropy on labelled voxels) of the last epoch.
    pub final_loss: f64,
}

/// What a run reports (also written as `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct FiberSummary {
    /// The settings of the run.
    pub settings: FiberSettings,
    /// The ensemble's members.
    pub members: Vec<MemberSummary>,
    /// Labelled voxels trained on (fiber, background).
    pub labelled_voxels: (usize, usize),
    /// Voxel scores of the confident fiber segmentation against the ground truth.
    pub scores: BinaryScores,
    /// Voxel scores of the plain ensemble mean > 0.5, for comparison.
    pub mean_only_scores: BinaryScores,
    /// Fraction of voxels where the ensemble is unsure (neither class passes the rule).
    pub unsure_fraction: f64,
    /// Fibers generated.
    pub fibers_present: usize,
    /// Components left after dusting (fibers found, touching fibers merge into one).
    pub components_found: usize,
    /// Generated fibers of which at least `found_fraction` of the voxels were segmented.
    pub fibers_detected: usize,
    /// Lengths of the components found, in voxels.
    pub lengths: Vec<f64>,
    /// Mean length of the found components and of the generated fibers.
    pub mean_length: (f64, f64),
    /// Direction `[z, y, x]` of the orientation distribution's peak.
    pub peak_direction: [f64; 3],
    /// Wall-clock time of the whole run in seconds.
    pub seconds: f64,
}

/// The labelled slices as 2-D training batches: image `(B, 1, H, W)`, labels `(B, H, W)` with −1
/// where unlabelled.
fn labelled_batches(v: &FiberVolume, batch: usize) -> Result<Vec<Batch>> {
    let [d, h, w] = v.shape;
    let plane = h * w;
    let slices: Vec<usize> = (0..d)
        .filter(|&z| {
            v.sparse_labels[z * plane..(z + 1) * plane]
                .iter()
                .any(|&l| l >= 0)
        })
        .collect();
    ensure!(!slices.is_empty(), "the volume has no labelled slice");
    slices
        .chunks(batch)
        .map(|zs| {
            let img: Vec<f32> = zs
                .iter()
                .flat_map(|&z| v.image[z * plane..(z + 1) * plane].iter().copied())
                .collect();
            let lab: Vec<i64> = zs
                .iter()
                .flat_map(|&z| v.sparse_labels[z * plane..(z + 1) * plane].iter().copied())
                .collect();
            Ok(Batch {
                image: Tensor::from_vec(img, (zs.len(), 1, h, w), &Device::Cpu)?,
                target: Some(Tensor::from_vec(lab, (zs.len(), h, w), &Device::Cpu)?),
                mask: None,
            })
        })
        .collect()
}

/// Per-voxel ensemble mean and std of the fiber probability and the confident mask, slice by
/// slice through the volume.
struct EnsembleMaps {
    mean: Vec<f32>,
    std: Vec<f32>,
    confident_fiber: Vec<u8>,
    unsure: usize,
}

fn predict_volume(ensemble: &Ensemble, v: &FiberVolume, s: &FiberSettings) -> Result<EnsembleMaps> {
    let [d, h, w] = v.shape;
    let plane = h * w;
    let mut maps = EnsembleMaps {
        mean: Vec::with_capacity(d * plane),
        std: Vec::with_capacity(d * plane),
        confident_fiber: Vec::with_capacity(d * plane),
        unsure: 0,
    };
    let bar = if s.progress {
        let b = ProgressBar::new(d as u64);
        b.set_style(ProgressStyle::with_template(
            "predicting slices {bar:30} {pos}/{len} {elapsed}",
        )?);
        b
    } else {
        ProgressBar::hidden()
    };
    let step = s.batch_size.max(1);
    let mut z = 0;
    while z < d {
        let n = step.min(d - z);
        let x = Tensor::from_vec(
            v.image[z * plane..(z + n) * plane].to_vec(),
            (n, 1, h, w),
            &Device::Cpu,
        )?;
        let stats = ensemble.stats(&x)?;
        let confident = stats.confident(Spread::StandardDeviation, s.threshold)?; // (n, 2, h, w) u8
        let any = confident.max_keepdim(1)?;
        maps.unsure += any
            .flatten_all()?
            .to_vec1::<u8>()?
            .iter()
            .filter(|&&a| a == 0)
            .count();
        maps.mean
            .extend(stats.mean.i((.., 1))?.flatten_all()?.to_vec1::<f32>()?);
        maps.std
            .extend(stats.std.i((.., 1))?.flatten_all()?.to_vec1::<f32>()?);
        maps.confident_fiber
            .extend(confident.i((.., 1))?.flatten_all()?.to_vec1::<u8>()?);
        z += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(maps)
}

/// Runs the workflow and writes into `out` (which must exist): `summary.json`, `fibers.csv`
/// (one row per component), `fiber_lengths.svg`, `orientation_hammer.svg` and `.png`,
/// `middle_slice_overlay.png` (segmentation on the image), `middle_slice_mean.png` and
/// `middle_slice_std.png` (ensemble mean and spread of the fiber probability).
pub fn run(s: &FiberSettings, out: &Path) -> Result<FiberSummary> {
    s.check()?;
    let t0 = Instant::now();
    let vol = fibers_in_concrete(&s.volume)?;
    let [d, h, w] = vol.shape;
    let plane = h * w;
    let batches = labelled_batches(&vol, s.batch_size)?;
    let labelled = (
        vol.sparse_labels.iter().filter(|&&l| l == 1).count(),
        vol.sparse_labels.iter().filter(|&&l| l == 0).count(),
    );

    // The ensemble: graphs from the builder, one seeded network per graph.
    let graphs = sample_ensemble(&s.ensemble, s.seed)?;
    let nets: Vec<Box<dyn Network>> = graphs
        .into_iter()
        .enumerate()
        .map(|(k, m)| {
            let cfg = SmsNetConfig::new(SpatialDims::Two, 1, 2, m.graph);
            Topology::SmsNet(cfg).build(mix_seed(s.seed, k as u64), &Device::Cpu)
        })
        .collect::<std::result::Result<_, _>>()?;
    let mut cfg = TrainConfig::new(s.epochs, TaskConfig::segmentation(2));
    cfg.seed = s.seed;
    cfg.optimizer = OptimizerConfig::Adam(AdamConfig {
        lr: s.learning_rate,
        ..Default::default()
    });
    cfg.progress = s.progress;
    let reports = train_ensemble(&cfg, &nets, &batches, None, EnsembleMode::Sequential)?;
    let members: Vec<MemberSummary> = nets
        .iter()
        .zip(&reports)
        .map(|(n, r)| MemberSummary {
            parameters: n.num_parameters(),
            final_loss: r
                .history
                .last()
                .and_then(|e| e.train.loss)
                .unwrap_or(f64::NAN),
        })
        .collect();

    // Mean, std and the confidence rule over the whole volume.
    let predictors: Vec<Box<dyn Predictor>> = nets
        .into_iter()
        .map(|net| -> Result<Box<dyn Predictor>> {
            Ok(Box::new(LogitsFn::new(2, move |x: &Tensor| {
                net.predict(x)
            })?))
        })
        .collect::<Result<_>>()?;
    let maps = predict_volume(&Ensemble::new(predictors)?, &vol, s)?;
    let truth: Vec<bool> = vol.labels.iter().map(|&l| l == 1).collect();
    let fiber: Vec<bool> = maps.confident_fiber.iter().map(|&c| c == 1).collect();
    let scores = binary_scores(&fiber, &truth);
    let mean_only: Vec<bool> = maps.mean.iter().map(|&m| m > 0.5).collect();
    let mean_only_scores = binary_scores(&mean_only, &truth);

    // Fibers: 26-connected components, dusted, measured.
    let labeling =
        connected_components(&maps.confident_fiber, &[d, h, w], Connectivity::TwentySix)?
            .dust(s.dust_voxels);
    let measured = measure_fibers(&labeling, [1.0; 3])?;
    std::fs::write(out.join("fibers.csv"), fibers_to_csv(&measured))?;
    let lengths: Vec<f64> = measured.iter().map(|f| f.length).collect();
    let mut instance_voxels = vec![0usize; vol.fibers.len() + 1];
    let mut instance_hits = vec![0usize; vol.fibers.len() + 1];
    for (i, &k) in vol.instances.iter().enumerate() {
        instance_voxels[k as usize] += 1;
        if fiber[i] {
            instance_hits[k as usize] += 1;
        }
    }
    let fibers_detected = (1..instance_voxels.len())
        .filter(|&k| {
            instance_voxels[k] > 0
                && instance_hits[k] as f64 >= s.found_fraction * instance_voxels[k] as f64
        })
        .count();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let true_lengths: Vec<f64> = vol.fibers.iter().map(|f| f.length()).collect();

    // Pictures.
    if !lengths.is_empty() {
        let hist = Histogram::new(&lengths, 12.min(lengths.len().max(3)), None)?;
        histogram_svg(
            out.join("fiber_lengths.svg"),
            "Lengths of the fibers found",
            "length (voxels)",
            &hist,
        )?;
    }
    let dusted: Vec<u8> = labeling.labels().iter().map(|&l| u8::from(l > 0)).collect();
    let mut peak_direction = [f64::NAN; 3];
    if dusted.iter().any(|&v| v > 0) {
        let opts = OrientationOptions {
            radius: s.orientation_radius,
            seed: s.seed,
            ..Default::default()
        };
        let dist = orientation_distribution(&dusted, [d, h, w], &opts)
            .context("orientation distribution of the segmentation")?;
        peak_direction = dist.peak_direction();
        hammer_svg(
            out.join("orientation_hammer.svg"),
            "Fiber orientations (autocorrelation)",
            &dist.grid,
            &dist.values,
            Colormap::Viridis,
        )?;
        hammer_png(
            out.join("orientation_hammer.png"),
            &dist.grid,
            &dist.values,
            720,
            Colormap::Viridis,
        )?;
    }
    let z = d / 2;
    let sl = z * plane..(z + 1) * plane;
    let scale = (384 / w.max(h)).max(1);
    segmentation_overlay_png(
        out.join("middle_slice_overlay.png"),
        &vol.image[sl.clone()],
        &labeling.labels()[sl.clone()]
            .iter()
            .map(|&l| u32::from(l > 0))
            .collect::<Vec<_>>(),
        (h, w),
        0.6,
        scale,
    )?;
    let heat = |range| HeatmapOptions {
        colormap: Colormap::Viridis,
        range,
        scale,
    };
    heatmap_png(
        out.join("middle_slice_mean.png"),
        &maps.mean[sl.clone()],
        (h, w),
        &heat(Some((0.0, 1.0))),
    )?;
    heatmap_png(
        out.join("middle_slice_std.png"),
        &maps.std[sl],
        (h, w),
        &heat(None),
    )?;

    let summary = FiberSummary {
        settings: s.clone(),
        members,
        labelled_voxels: labelled,
        scores,
        mean_only_scores,
        unsure_fraction: maps.unsure as f64 / (d * plane) as f64,
        fibers_present: vol.fibers.len(),
        components_found: labeling.n_components() as usize,
        fibers_detected,
        mean_length: (mean(&lengths), mean(&true_lengths)),
        lengths,
        peak_direction,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_json(out, "summary.json", &summary)?;
    Ok(summary)
}

/// The summary as a few lines of text.
pub fn describe(s: &FiberSummary) -> String {
    let params: Vec<String> = s.members.iter().map(|m| m.parameters.to_string()).collect();
    format!(
        "fibers: volume {:?}, ensemble of {} SMSNets ({} parameters)\n  \
         F1 {:.3} (precision {:.3}, recall {:.3}); mean-only F1 {:.3}; unsure voxels {:.2} %\n  \
         fibers present {}, components found {}, fibers detected (≥ {:.0} % of voxels) {}\n  \
         mean length found {:.1} vs generated {:.1} voxels; orientation peak [z, y, x] = [{:.2}, {:.2}, {:.2}]\n  \
         total {:.1} s",
        s.settings.volume.shape,
        s.members.len(),
        params.join(", "),
        s.scores.f1,
        s.scores.precision,
        s.scores.recall,
        s.mean_only_scores.f1,
        100.0 * s.unsure_fraction,
        s.fibers_present,
        s.components_found,
        100.0 * s.settings.found_fraction,
        s.fibers_detected,
        s.mean_length.0,
        s.mean_length.1,
        s.peak_direction[0],
        s.peak_direction[1],
        s.peak_direction[2],
        s.seconds
    )
}
