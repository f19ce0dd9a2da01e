//! Workflow 3: shape clustering with a mixed-scale autoencoder (the DLSIA paper's third
//! application).
//!
//! Random shapes (rectangles, circles, triangles, annuli; rotated, noisy) train a mixed-scale
//! autoencoder (MSAE: depth 4, 16 base channels, a 16-long latent vector) to reconstruct its
//! input, without ever seeing the classes. On held-out shapes the latent vectors are embedded in
//! 2-D with UMAP and PCA and coloured by class; the leave-one-out k-NN accuracy and the
//! silhouette coefficient say in numbers how well the latent space separates the classes
//! (chance k-NN accuracy is about 0.25).
//!
//! [`ClusteringNet::Sparse`] trains dlsia's SMSNet-based `SparseAutoEncoder` instead (SMSNet
//! encoder and decoder around a fully connected bottleneck of the same latent length).
//!
//! ```no_run
//! use dlsia_examples::shape_clustering::{run, ClusteringSettings};
//! let summary = run(&ClusteringSettings::quick(0), std::path::Path::new("runs/shapes"))?;
//! println!("k-NN accuracy in the latent space: {:.3}", summary.latent.knn_accuracy);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use candle_core::{Device, Tensor};
use dlsia_analysis::embed::{knn_accuracy, silhouette, umap, Pca, UmapParams};
use dlsia_analysis::plot::{
    heatmap_png, scatter_svg, training_curves_svg, Colormap, HeatmapOptions, Series,
};
use dlsia_data::synth::random_shape_set;
use dlsia_data::{DataLoader, LoaderConfig, TensorDataset};
use dlsia_nets::{save_model, MsaeConfig, SparseAutoEncoderConfig, Topology};
use dlsia_train::optim::AdamConfig;
use dlsia_train::{OptimizerConfig, TaskConfig, TrainConfig, Trainer};
use serde::Serialize;

use crate::outdir::write_json;
use crate::stats::pearson_where;
use crate::tensors::{predict_batched, to_vec_f32};

/// Which autoencoder the workflow trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ClusteringNet {
    /// The mixed-scale autoencoder of the paper (`msae.MSAE`).
    Msae,
    /// dlsia's `sparsenet.SparseAutoEncoder` (randomly wired SMSNet encoder and decoder).
    Sparse,
}

impl ClusteringNet {
    /// The network's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ClusteringNet::Msae => "MSAE",
            ClusteringNet::Sparse => "SparseAutoEncoder",
        }
    }

    /// The folder the trained model is saved in.
    pub fn model_dir(self) -> &'static str {
        match self {
            ClusteringNet::Msae => "msae-model",
            ClusteringNet::Sparse => "sparse-model",
        }
    }
}

/// A `SparseAutoEncoder` for `n×n` shapes: latent image `n/4`, graphs from `seed`.
fn sparse_config(
    n: usize,
    depth: usize,
    hidden: usize,
    latent: &[usize],
    seed: u64,
) -> SparseAutoEncoderConfig {
    let json = serde_json::json!({
        "in_shape": [n, n], "latent_shape": [n / 4, n / 4], "depth": depth,
        "hidden_channels": hidden, "latent_sequence": latent, "graph_seed": seed,
    });
    serde_json::from_value(json).expect("the example's SparseAutoEncoder settings are well-formed")
}

/// Everything a run needs; build one with [`quick`](Self::quick) or
/// [`standard`](Self::standard) and adjust.
#[derive(Debug, Clone, Serialize)]
pub struct ClusteringSettings {
    /// Side of the square shape images.
    pub image_size: usize,
    /// Shapes trained on.
    pub train_images: usize,
    /// Held-out shapes that are embedded and scored.
    pub test_images: usize,
    /// Noise level of the shape generator.
    pub noise: f64,
    /// Which autoencoder is trained.
    pub net: ClusteringNet,
    /// The autoencoder when `net` is `Msae`.
    pub msae: MsaeConfig,
    /// The autoencoder when `net` is `Sparse`.
    pub sparse: SparseAutoEncoderConfig,
    /// Training epochs.
    pub epochs: usize,
    /// Shapes per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Neighbours of the k-NN score.
    pub knn_k: usize,
    /// UMAP settings (`n_components` must be 2 for the scatter plot).
    pub umap: UmapParams,
    /// Seed of data, weights, batch order and UMAP.
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
}

impl ClusteringSettings {
    /// A few seconds: 32×32 shapes and a depth-2 autoencoder (what the tests run).
    pub fn quick(seed: u64) -> Self {
        let n = 24;
        Self {
            image_size: n,
            train_images: 96,
            test_images: 80,
            noise: 0.1,
            net: ClusteringNet::Msae,
            msae: MsaeConfig::new(&[1, n, n], 2, 6, 2.0, 8, 2, 1),
            sparse: sparse_config(n, 6, 4, &[32, 8], seed),
            epochs: 6,
            batch_size: 16,
            learning_rate: 2e-3,
            knn_k: 5,
            umap: UmapParams {
                n_neighbors: 10,
                n_epochs: Some(200),
                seed,
                ..Default::default()
            },
            seed,
            progress: false,
        }
    }

    /// The default run (a few minutes on 2 cores): 64×64 shapes and the paper's autoencoder
    /// (depth 4, 16 base channels, growth 2, latent 16, dilations up to 5; workload W5).
    pub fn standard(seed: u64) -> Self {
        let n = 64;
        Self {
            image_size: n,
            train_images: 512,
            test_images: 400,
            noise: 0.1,
            net: ClusteringNet::Msae,
            msae: MsaeConfig::new(&[1, n, n], 4, 16, 2.0, 16, 5, 1),
            sparse: sparse_config(n, 20, 10, &[64, 16], seed),
            epochs: 15,
            batch_size: 32,
            learning_rate: 1e-3,
            knn_k: 5,
            umap: UmapParams {
                seed,
                ..Default::default()
            },
            seed,
            progress: true,
        }
    }

    /// Checks the values the generator and network do not check themselves.
    pub fn check(&self) -> Result<()> {
        let n = self.image_size;
        match self.net {
            ClusteringNet::Msae => ensure!(
                self.msae.input_shape == [1, n, n],
                "the autoencoder's input_shape {:?} must be [1, {n}, {n}]",
                self.msae.input_shape
            ),
            ClusteringNet::Sparse => ensure!(
                self.sparse.in_shape == [n, n] && self.sparse.in_channels == 1,
                "the sparse autoencoder's in_shape {:?} ({} channels) must be [{n}, {n}] (1 channel)",
                self.sparse.in_shape,
                self.sparse.in_channels
            ),
        }
        ensure!(
            self.train_images >= 8 && self.test_images >= 8,
            "need at least 8 training and 8 test shapes (every class must occur), got {} and {}",
            self.train_images,
            self.test_images
        );
        ensure!(
            self.knn_k >= 1 && self.knn_k < self.test_images,
            "knn_k = {} must be between 1 and the number of test shapes − 1",
            self.knn_k
        );
        ensure!(
            self.umap.n_components == 2,
            "the scatter plot needs a 2-D UMAP, got n_components = {}",
            self.umap.n_components
        );
        ensure!(
            self.epochs >= 1 && self.batch_size >= 1,
            "epochs and batch_size must be at least 1"
        );
        Ok(())
    }
}

/// Separation scores of one embedding of the held-out latent vectors.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingScores {
    /// Dimension of the embedding.
    pub dim: usize,
    /// Leave-one-out k-NN accuracy of the shape class (chance ≈ 0.25).
    pub knn_accuracy: f64,
    /// Mean silhouette coefficient of the classes (−1 … 1).
    pub silhouette: f64,
}

/// What a run reports (also written as `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ClusteringSummary {
    /// The settings of the run.
    pub settings: ClusteringSettings,
    /// Trainable parameters of the autoencoder.
    pub parameters: usize,
    /// Pearson correlation of the held-out reconstructions with their inputs.
    pub reconstruction_pearson: f64,
    /// Training loss (MSE) per epoch.
    pub train_loss: Vec<f64>,
    /// Scores in the latent space itself.
    pub latent: EmbeddingScores,
    /// Scores of the 2-D PCA of the latent vectors.
    pub pca: EmbeddingScores,
    /// Scores of the 2-D UMAP of the latent vectors.
    pub umap: EmbeddingScores,
    /// Held-out shapes per class (rectangle, circle, triangle, annulus).
    pub class_counts: [usize; 4],
    /// Wall-clock training time in seconds.
    pub train_seconds: f64,
    /// Wall-clock time of the whole run in seconds.
    pub seconds: f64,
}

fn scores(points: &[f32], dim: usize, classes: &[u32], k: usize) -> Result<EmbeddingScores> {
    Ok(EmbeddingScores {
        dim,
        knn_accuracy: knn_accuracy(points, dim, classes, k)?,
        silhouette: silhouette(points, dim, classes)?,
    })
}

/// Inputs (top row) and reconstructions (bottom row) of the first `cols` held-out shapes as one
/// grey image.
fn montage(inputs: &[f32], recon: &[f32], n: usize, cols: usize) -> (Vec<f32>, usize, usize) {
    let (h, w) = (2 * n + 1, cols * (n + 1));
    let mut img = vec![f32::NAN; h * w];
    for c in 0..cols {
        for (row, src) in [inputs, recon].iter().enumerate() {
            for y in 0..n {
                for x in 0..n {
                    img[(row * (n + 1) + y) * w + c * (n + 1) + x] = src[c * n * n + y * n + x];
                }
            }
        }
    }
    (img, h, w)
}

/// Runs the workflow and writes into `out` (which must exist): `summary.json`, `loss.svg`,
/// `umap_scatter.svg`, `pca_scatter.svg`, `reconstructions.png` (inputs above reconstructions)
/// and the trained autoencoder as the model folder `msae-model/` (`sparse-model/` for
/// [`ClusteringNet::Sparse`]).
pub fn run(s: &ClusteringSettings, out: &Path) -> Result<ClusteringSummary> {
    s.check()?;
    let t0 = Instant::now();
    let dev = Device::Cpu;
    let train_set = random_shape_set(s.train_images, s.noise, s.image_size, s.seed)?;
    let test_set = random_shape_set(s.test_images, s.noise, s.image_size, s.seed ^ 0x5eed)?;

    let topology = match s.net {
        ClusteringNet::Msae => Topology::MsAutoencoder(s.msae.clone()),
        ClusteringNet::Sparse => Topology::SparseAutoEncoder(s.sparse.clone()),
    };
    let net = topology.build(s.seed, &dev)?;
    let loader = DataLoader::new(
        TensorDataset::new(train_set.normalized.clone(), None, None)?,
        LoaderConfig {
            batch_size: s.batch_size,
            shuffle: true,
            seed: s.seed,
            drop_last: false,
            prefetch: 0,
        },
    )?;
    let mut cfg = TrainConfig::new(s.epochs, TaskConfig::Autoencoder);
    cfg.seed = s.seed;
    cfg.optimizer = OptimizerConfig::Adam(AdamConfig {
        lr: s.learning_rate,
        ..Default::default()
    });
    cfg.progress = s.progress;
    if s.progress {
        eprintln!(
            "training the autoencoder ({} parameters)",
            net.num_parameters()
        );
    }
    let t_train = Instant::now();
    let report = Trainer::new(&cfg, net.as_ref())?.fit(&loader, None)?;
    let train_seconds = t_train.elapsed().as_secs_f64();
    save_model(
        net.as_ref(),
        &out.join(s.net.model_dir()),
        &serde_json::json!({"workflow": "shape_clustering"}),
        true,
    )?;

    // Reconstructions and latent vectors of the held-out shapes.
    let x = &test_set.normalized;
    let recon = to_vec_f32(&predict_batched(net.as_ref(), x, s.batch_size)?)?;
    let inputs = to_vec_f32(x)?;
    let everywhere = vec![true; inputs.len()];
    let reconstruction_pearson =
        pearson_where(&recon, &inputs, &everywhere).context("constant reconstruction")?;
    let ae = net
        .as_autoencoder()
        .context("the network is an autoencoder")?;
    let mut latents = Vec::new();
    let n_test = x.dim(0)?;
    for i in (0..n_test).step_by(s.batch_size) {
        let len = s.batch_size.min(n_test - i);
        latents.push(ae.encode(&x.narrow(0, i, len)?.detach(), false)?.detach());
    }
    let latent = to_vec_f32(&Tensor::cat(&latents, 0)?)?;
    let ld = ae.latent_dim();
    let classes: Vec<u32> = test_set
        .labels
        .to_vec1::<i64>()?
        .iter()
        .map(|&c| (c - 1) as u32)
        .collect();
    let mut class_counts = [0usize; 4];
    for &c in &classes {
        class_counts[c as usize] += 1;
    }

    let pca2 = Pca::fit(&latent, ld, 2)?.transform(&latent)?;
    let umap2 = umap(&latent, ld, &s.umap)?;
    let summary = ClusteringSummary {
        settings: s.clone(),
        parameters: net.num_parameters(),
        reconstruction_pearson,
        train_loss: report
            .history
            .iter()
            .map(|r| r.train.loss.unwrap_or(f64::NAN))
            .collect(),
        latent: scores(&latent, ld, &classes, s.knn_k)?,
        pca: scores(&pca2, 2, &classes, s.knn_k)?,
        umap: scores(&umap2, 2, &classes, s.knn_k)?,
        class_counts,
        train_seconds,
        seconds: t0.elapsed().as_secs_f64(),
    };

    // Pictures. Classes in the legend are 0 rectangle, 1 circle, 2 triangle, 3 annulus.
    scatter_svg(
        out.join("umap_scatter.svg"),
        "UMAP of the latent vectors (0 rectangle, 1 circle, 2 triangle, 3 annulus)",
        &umap2,
        &classes,
    )?;
    scatter_svg(
        out.join("pca_scatter.svg"),
        "PCA of the latent vectors (0 rectangle, 1 circle, 2 triangle, 3 annulus)",
        &pca2,
        &classes,
    )?;
    let loss: Vec<(f64, f64)> = summary
        .train_loss
        .iter()
        .enumerate()
        .map(|(i, &l)| ((i + 1) as f64, l))
        .collect();
    training_curves_svg(
        out.join("loss.svg"),
        "Autoencoder training",
        ("epoch", "MSE"),
        &[Series {
            name: "train",
            points: &loss,
        }],
        true,
    )?;
    let n = s.image_size;
    let (img, h, w) = montage(&inputs, &recon, n, 8.min(n_test));
    heatmap_png(
        out.join("reconstructions.png"),
        &img,
        (h, w),
        &HeatmapOptions {
            colormap: Colormap::Greys,
            range: None,
            scale: (768 / w).max(1),
        },
    )?;
    write_json(out, "summary.json", &summary)?;
    Ok(summary)
}

/// The summary as a few lines of text.
pub fn describe(s: &ClusteringSummary) -> String {
    let mut t = format!(
        "shape clustering: {} with {} parameters, trained {:.1} s; reconstruction Pearson {:.4}\n",
        s.settings.net.name(),
        s.parameters,
        s.train_seconds,
        s.reconstruction_pearson
    );
    for (name, e) in [("latent", &s.latent), ("PCA", &s.pca), ("UMAP", &s.umap)] {
        t += &format!(
            "  {name:<6} ({:>2}-D): {}-NN accuracy {:.3} (chance ≈ 0.25), silhouette {:.3}\n",
            e.dim, s.settings.knn_k, e.knn_accuracy, e.silhouette
        );
    }
    t += &format!("  total {:.1} s", s.seconds);
    t
}
