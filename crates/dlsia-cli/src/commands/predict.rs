//! `dlsia predict`: tiled, streaming inference on images, stacks and volumes of any size, with
//! one model or an ensemble (mean and standard deviation), optional class probabilities and
//! conformal set sizes.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use dlsia_data::tiling::{run_tiled, Blend, TileConfig};
use dlsia_data::SampleType;
use dlsia_uq::conformal::{ConformalConfig, ConformalPredictor};
use dlsia_uq::{ProbabilitiesFn, Tiling};

use crate::models::{ensemble_predict, Model, Task};
use crate::output::new_file;
use crate::prediction::{PredictionWriter, Sinks};
use crate::volume_io::{create_writer, open_reader, read_whole};

/// Arguments of `dlsia predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// A model directory; repeat `--model` for an ensemble (mean and standard deviation).
    #[arg(long = "model", required = true)]
    pub models: Vec<PathBuf>,
    /// The image (H×W), stack of images (N×H×W, for 2-D models) or volume (D×H×W, for 3-D
    /// models): .tif/.tiff, .npy or .png.
    #[arg(long)]
    pub input: PathBuf,
    /// Labels (segmentation, u8/u16) or values (regression, f32): .tif/.tiff or .npy.
    #[arg(long)]
    pub output: PathBuf,
    /// Also write the ensemble's standard deviation (needs two or more models).
    #[arg(long)]
    pub std: Option<PathBuf>,
    /// Also write the mean class probabilities (C, spatial…) as f32.
    #[arg(long)]
    pub probabilities: Option<PathBuf>,
    /// Also write conformal prediction-set sizes (needs --calibration-image and
    /// --calibration-labels).
    #[arg(long)]
    pub set_sizes: Option<PathBuf>,
    /// A labelled image for the conformal calibration (same layout as --input).
    #[arg(long)]
    pub calibration_image: Option<PathBuf>,
    /// Its labels (−1 = unlabelled).
    #[arg(long)]
    pub calibration_labels: Option<PathBuf>,
    /// Conformal miscoverage level: sets hold the true class with probability 1 − α.
    #[arg(long, default_value_t = 0.1)]
    pub alpha: f64,
    /// Override the models' task: `segmentation` or `regression`.
    #[arg(long)]
    pub task: Option<String>,
    /// Window size per spatial axis.
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// Overlap of neighbouring windows (blended with Gaussian weights).
    #[arg(long, default_value_t = 32)]
    pub overlap: usize,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// The first axis of a .npy input is the channel axis (multi-channel models).
    #[arg(long)]
    pub channels_first: bool,
    /// Where to run the models: `cpu`, `cuda` or `cuda:N` (CUDA needs a build with
    /// `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
}

/// How the file's axes map onto the network's input.
struct Layout {
    /// Spatial window per file axis.
    window: Vec<usize>,
    /// A stack of 2-D images: windows are `(1, t, t)` and axis 2 of each batch is squeezed.
    stack: bool,
}

fn layout(file_spatial: &[usize], dims: usize, tile: usize) -> Result<Layout> {
    match (dims, file_spatial.len()) {
        (2, 2) | (3, 3) => Ok(Layout {
            window: vec![tile; dims],
            stack: false,
        }),
        (2, 3) => Ok(Layout {
            window: vec![1, tile, tile],
            stack: true,
        }),
        (d, n) => bail!(
            "a {d}-D model cannot run on an input with {n} spatial axes {file_spatial:?}; \
             2-D models take H×W images or N×H×W stacks, 3-D models D×H×W volumes"
        ),
    }
}

fn parse_task(task: Option<&str>, models: &[PathBuf]) -> Result<Option<Task>> {
    Ok(match task {
        None => None,
        Some("regression") => Some(Task::Regression),
        Some("segmentation") => {
            // the number of classes comes from the first model
            let m = Model::load(&models[0], None, &Device::Cpu)?;
            Some(Task::infer(m.net.out_channels().max(2)))
        }
        Some(other) => bail!("--task `{other}`: expected segmentation or regression"),
    })
}

/// Calibrates a conformal predictor on a labelled image with the ensemble's mean.
fn calibrate(
    models: &[Model],
    classes: usize,
    args: &PredictArgs,
    dims: usize,
) -> Result<ConformalPredictor> {
    let (Some(img), Some(lab)) = (&args.calibration_image, &args.calibration_labels) else {
        bail!("--set-sizes needs --calibration-image and --calibration-labels (a labelled image)");
    };
    let image = read_whole(img)?;
    let labels = read_whole(lab)?;
    ensure!(
        image.shape() == labels.shape(),
        "calibration image {:?} and labels {:?} differ in shape",
        image.shape(),
        labels.shape()
    );
    let s = image.shape().to_vec();
    let (x_shape, y_shape) = match (dims, s.len()) {
        (2, 2) => (vec![1, 1, s[0], s[1]], vec![1, s[0], s[1]]),
        (2, 3) => (vec![s[0], 1, s[1], s[2]], s.clone()),
        (3, 3) => (vec![1, 1, s[0], s[1], s[2]], vec![1, s[0], s[1], s[2]]),
        _ => bail!(
            "calibration image of shape {s:?} does not fit a {dims}-D model with one input channel"
        ),
    };
    let x = Tensor::from_vec(image.to_f32_vec(), x_shape.as_slice(), &Device::Cpu)?;
    let y = Tensor::from_vec(labels.to_i64_vec()?, y_shape.as_slice(), &Device::Cpu)?;
    let predictor = ProbabilitiesFn::new(classes, |x: &Tensor| {
        ensemble_predict(models, x)
            .map(|(mean, _)| mean)
            .map_err(|e| candle_core::Error::msg(format!("{e:#}")))
    })?;
    let mut cal = ConformalConfig::new(args.alpha).build()?;
    Tiling::new(vec![args.tile; dims])?.calibrate(&mut cal, &predictor, &x, &y)?;
    ensure!(
        !cal.is_empty(),
        "the calibration labels hold no labelled pixel (all −1?)"
    );
    Ok(cal.predictor()?)
}

/// Runs `dlsia predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let device = dlsia_ops::device_from_str(&args.device)?;
    for p in std::iter::once(&args.output)
        .chain(args.std.iter())
        .chain(args.probabilities.iter())
        .chain(args.set_sizes.iter())
    {
        new_file(p, args.force)?;
    }
    ensure!(args.tile >= 1, "--tile must be at least 1");
    ensure!(
        args.overlap < args.tile,
        "--overlap {} must be smaller than --tile {}",
        args.overlap,
        args.tile
    );
    ensure!(args.batch >= 1, "--batch must be at least 1");
    let task = parse_task(args.task.as_deref(), &args.models)?;
    let models = args
        .models
        .iter()
        .map(|m| Model::load(m, task, &device))
        .collect::<Result<Vec<_>>>()?;
    let first = &models[0];
    let (dims, cin, out) = (
        first.net.spatial_dims(),
        first.net.in_channels(),
        first.net.out_channels(),
    );
    for m in &models[1..] {
        ensure!(
            (m.net.spatial_dims(), m.net.in_channels(), m.task)
                == (dims, cin, first.task),
            "{} ({}-D, {} input channels, {:?}) does not match {} ({dims}-D, {cin} input channels, {:?}); an ensemble needs models of one kind",
            m.dir.display(),
            m.net.spatial_dims(),
            m.net.in_channels(),
            m.task,
            first.dir.display(),
            first.task
        );
    }
    let task = first.task;
    let channels = task.channels(out);
    let ensemble = models.len() > 1;
    if args.std.is_some() && !ensemble {
        bail!("--std needs an ensemble: pass --model two or more times");
    }
    if args.probabilities.is_some() && task == Task::Regression {
        bail!("--probabilities needs a segmentation model");
    }

    let mut reader = open_reader(&args.input, args.channels_first, args.tile + 2)?;
    let shape = reader.shape();
    ensure!(
        shape[0] == cin,
        "{} has {} channel(s), the model takes {cin}{}",
        args.input.display(),
        shape[0],
        if cin > 1 && !args.channels_first {
            " (for a multi-channel .npy pass --channels-first)"
        } else {
            ""
        }
    );
    let lay = layout(&shape[1..], dims, args.tile)?;
    let mut probe = vec![args.batch, cin];
    let win: Vec<usize> = lay
        .window
        .iter()
        .zip(&shape[1..])
        .map(|(&w, &s)| w.min(s))
        .collect();
    probe.extend(if lay.stack { &win[1..] } else { &win[..] });
    first
        .net
        .check_input(&probe)
        .with_context(|| format!("window {win:?} does not suit the model; change --tile"))?;

    let set_sizes = match &args.set_sizes {
        Some(path) => {
            let Task::Segmentation { num_classes } = task else {
                bail!("--set-sizes needs a segmentation model");
            };
            let cp = calibrate(&models, num_classes, &args, dims)?;
            println!(
                "conformal calibration: α = {}, q̂ = {:.4} from {} labelled pixels",
                cp.alpha(),
                cp.qhat(),
                cp.n_calibration()
            );
            Some((create_writer(path, SampleType::U8, false)?, cp))
        }
        None => None,
    };
    let main_type = match task {
        Task::Segmentation { num_classes } if num_classes <= 256 => SampleType::U8,
        Task::Segmentation { .. } => SampleType::U16,
        Task::Regression => SampleType::F32,
    };
    let sinks = Sinks {
        main: create_writer(&args.output, main_type, false)?,
        std: args
            .std
            .as_ref()
            .map(|p| create_writer(p, SampleType::F32, false))
            .transpose()?,
        probabilities: args
            .probabilities
            .as_ref()
            .map(|p| create_writer(p, SampleType::F32, true))
            .transpose()?,
        set_sizes,
    };
    let mut writer = PredictionWriter::new(task, channels, ensemble, sinks);
    let step: Vec<usize> = lay
        .window
        .iter()
        .map(|&w| if w == 1 { 1 } else { w - args.overlap })
        .collect();
    let cfg = TileConfig {
        window: lay.window.clone(),
        step,
        border: vec![0],
        blend: Blend::Gaussian {
            sigma_fraction: 0.125,
        },
        batch_size: args.batch,
        progress: !args.quiet,
    };
    let stats = run_tiled(&mut &mut *reader, &mut writer, &cfg, &device, |x| {
        let x = if lay.stack { x.squeeze(2)? } else { x.clone() };
        let (mean, std) = ensemble_predict(&models, &x)
            .map_err(|e| dlsia_data::Error::Worker(format!("{e:#}")))?;
        let y = match std {
            Some(s) => Tensor::cat(&[&mean, &s], 1)?,
            None => mean,
        };
        let y = y.to_dtype(DType::F32)?;
        Ok(if lay.stack { y.unsqueeze(2)? } else { y })
    })
    .with_context(|| format!("prediction of {} failed", args.input.display()))?;

    let s = &writer.summary;
    println!(
        "predicted {} voxels of {} in {} windows, {:.1} s ({:.2} Mvoxel/s), {} model{}",
        s.voxels,
        args.input.display(),
        stats.windows,
        stats.seconds,
        s.voxels as f64 / stats.seconds.max(1e-9) / 1e6,
        models.len(),
        if ensemble { "s" } else { "" }
    );
    if let Task::Segmentation { .. } = task {
        let fr: Vec<String> = s
            .class_counts
            .iter()
            .enumerate()
            .map(|(k, &c)| format!("{k}: {:.1} %", 100.0 * c as f64 / s.voxels.max(1) as f64))
            .collect();
        println!("  classes: {}", fr.join(", "));
    }
    if ensemble {
        let per = s.voxels as f64
            * if task == Task::Regression {
                channels as f64
            } else {
                1.0
            };
        println!("  mean ensemble std: {:.4}", s.std_sum / per.max(1.0));
    }
    if !s.set_size_counts.is_empty() {
        let total: u64 = s.set_size_counts.iter().sum();
        let mean = s
            .set_size_counts
            .iter()
            .enumerate()
            .map(|(k, &c)| k as f64 * c as f64)
            .sum::<f64>()
            / total.max(1) as f64;
        println!("  mean conformal set size: {mean:.3}");
    }
    println!("wrote {}", args.output.display());
    Ok(())
}
