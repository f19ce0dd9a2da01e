//! The `dlsia train` configuration file (`run.toml`): data, model topology and training
//! settings. Unknown keys and invalid values are errors that name the key (serde's
//! `deny_unknown_fields` everywhere; values checked by the topology and `TrainConfig::check`
//! before anything is read or trained).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dlsia_data::SplitLevel;
use dlsia_nets::Topology;
use dlsia_train::TrainConfig;
use serde::{Deserialize, Serialize};

fn default_fraction() -> f64 {
    0.8
}
fn default_batch() -> usize {
    8
}
fn yes() -> bool {
    true
}

/// How the data are split into training and validation (`"image"` or `"pixel"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitChoice {
    /// Whole images.
    #[default]
    Image,
    /// Labelled pixels (for one sparsely labelled image).
    Pixel,
}

impl SplitChoice {
    /// dlsia-data's split level.
    pub fn level(self) -> SplitLevel {
        match self {
            SplitChoice::Image => SplitLevel::Image,
            SplitChoice::Pixel => SplitLevel::Pixel,
        }
    }
}

/// Where the training images come from and how they are split and batched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Images: `.tif`/`.tiff`, `.npy` or `.png`; `(H, W)`, `(N, H, W)` or `(N, C, H, W)` for
    /// 2-D models, `(D, H, W)`, `(N, D, H, W)` or `(N, C, D, H, W)` for 3-D ones.
    pub images: PathBuf,
    /// Targets of the same layout without the channel axis: class labels (segmentation, −1 =
    /// unlabelled) or values (regression). Not used by autoencoders.
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// Fraction of images (or labelled pixels) used for training; the rest validates.
    #[serde(default = "default_fraction")]
    pub train_fraction: f64,
    /// Split whole images (`image`) or labelled pixels (`pixel`, for one sparsely labelled image).
    #[serde(default)]
    pub split: SplitChoice,
    /// Images per batch.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Standardise the images (mean 0, std 1 per channel, fitted on the training images and
    /// stored with the model so `dlsia predict` applies it too).
    #[serde(default = "yes")]
    pub normalize: bool,
}

/// A whole `run.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The model directory written at the end (refused if it exists, unless `--force`).
    pub model_dir: PathBuf,
    /// The data.
    pub data: DataSection,
    /// The network (`architecture = "tunet"`, `"tunet3plus"`, `"msdnet"`, `"lean_msdnet"`,
    /// `"smsnet"`, `"msae"` with that architecture's hyperparameters).
    pub model: Topology,
    /// dlsia-train's settings (`epochs`, `task`, `optimizer`, `scheduler`, …).
    pub train: TrainConfig,
}

impl RunConfig {
    /// Parses and checks a configuration; paths in it are relative to `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<RunConfig> {
        let mut cfg: RunConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        cfg.model.validate().context("[model]")?;
        cfg.train.check().context("[train]")?;
        let d = &cfg.data;
        if !(d.train_fraction > 0.0 && d.train_fraction < 1.0) {
            bail!(
                "data.train_fraction = {}: must be between 0 and 1 (exclusive)",
                d.train_fraction
            );
        }
        if d.batch_size == 0 {
            bail!("data.batch_size = 0: must be at least 1");
        }
        for p in [
            Some(&mut cfg.data.images),
            cfg.data.labels.as_mut(),
            Some(&mut cfg.model_dir),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    /// Reads and checks a configuration file.
    pub fn from_file(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        RunConfig::from_toml(&text, base).with_context(|| format!("{} is invalid", path.display()))
    }
}
