//! MSAE hyperparameters (dlsia's `msae.MSAE(...)` vocabulary; the original has no defaults).

use serde::{Deserialize, Serialize};

use crate::blocks::min_size;
use crate::choices::FinalAct;
use crate::error::{config_error, Result};

pub(crate) const NET: &str = "MSAE";

/// Hyperparameters of the mixed-scale autoencoder.
///
/// ```
/// use dlsia_nets::MsaeConfig;
///
/// // Workload W5 of the benchmarks.
/// let cfg = MsaeConfig::new(&[1, 64, 64], 4, 16, 2.0, 16, 5, 1);
/// assert_eq!(cfg.channel_sequence()?, [(1, 16), (16, 32), (32, 64), (64, 128)]);
/// assert_eq!(cfg.level_sizes()[4], [4, 4]);
/// # Ok::<(), dlsia_nets::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsaeConfig {
    /// `(C, Y, X)` (or `(C, Z, Y, X)` for the 3-D extension): the one input shape the network
    /// takes, since the latent layer is fully connected.
    pub input_shape: Vec<usize>,
    /// Number of mixed-scale blocks, each followed by a 2× max pooling (≥ 1).
    pub depth: usize,
    /// Output channels of the first block.
    pub base_channels: usize,
    /// Channel growth per block (truncated like Python's `int()`).
    pub growth_rate: f64,
    /// Length of the latent vector.
    pub latent_dimension: usize,
    /// Number of parallel dilated stacks per block, with dilations `1 … max_dilation`.
    pub max_dilation: usize,
    /// Convolutions per dilated stack (dlsia's `MS_depth`).
    #[serde(alias = "MS_depth")]
    pub ms_depth: usize,
    /// Transform of the output (dlsia's `final_action`, e.g. `"Sigmoid"`).
    #[serde(default)]
    pub final_action: Option<FinalAct>,
}

impl MsaeConfig {
    /// A configuration from the original's positional arguments, without final action.
    pub fn new(
        input_shape: &[usize],
        depth: usize,
        base_channels: usize,
        growth_rate: f64,
        latent_dimension: usize,
        max_dilation: usize,
        ms_depth: usize,
    ) -> Self {
        MsaeConfig {
            input_shape: input_shape.to_vec(),
            depth,
            base_channels,
            growth_rate,
            latent_dimension,
            max_dilation,
            ms_depth,
            final_action: None,
        }
    }

    /// Number of spatial axes.
    pub fn spatial_dims(&self) -> usize {
        self.input_shape.len().saturating_sub(1)
    }

    /// dlsia's `channel_sequence`: `(in, out)` channels of each encoder block,
    /// `[(C, base), (base, int(base·g)), …]`.
    pub fn channel_sequence(&self) -> Result<Vec<(usize, usize)>> {
        let c = self.input_shape.first().copied().unwrap_or(0);
        let mut seq = vec![(c, self.base_channels)];
        for i in 1..self.depth {
            let prev = seq[i - 1].1;
            let next = (prev as f64 * self.growth_rate) as usize;
            if next == 0 {
                return Err(config_error(
                    NET,
                    format!(
                        "block {i} would have 0 channels ({prev} × growth_rate {} truncated); use a larger base_channels or growth_rate",
                        self.growth_rate
                    ),
                ));
            }
            seq.push((prev, next));
        }
        Ok(seq)
    }

    /// Spatial sizes before each block and after the last pooling (`depth + 1` entries).
    pub fn level_sizes(&self) -> Vec<Vec<usize>> {
        let spatial = self.input_shape.get(1..).unwrap_or(&[]);
        crate::blocks::level_sizes(spatial, self.depth + 1, 2)
    }

    /// Checks every hyperparameter once.
    pub fn validate(&self) -> Result<()> {
        let nd = self.spatial_dims();
        if !(2..=3).contains(&nd) {
            return Err(config_error(
                NET,
                format!(
                    "input_shape {:?} must be (C, Y, X) or (C, Z, Y, X)",
                    self.input_shape
                ),
            ));
        }
        for (name, v) in [
            ("input channels (input_shape[0])", self.input_shape[0]),
            ("depth", self.depth),
            ("base_channels", self.base_channels),
            ("latent_dimension", self.latent_dimension),
            ("max_dilation", self.max_dilation),
            ("ms_depth", self.ms_depth),
        ] {
            if v == 0 {
                return Err(config_error(NET, format!("{name} must be at least 1")));
            }
        }
        if !(self.growth_rate.is_finite() && self.growth_rate > 0.0) {
            return Err(config_error(
                NET,
                format!(
                    "growth_rate must be finite and positive, got {}",
                    self.growth_rate
                ),
            ));
        }
        let min = min_size(2, self.depth);
        if self.input_shape[1..].iter().any(|&n| n < min) {
            return Err(config_error(
                NET,
                format!(
                    "depth {} is too deep for input_shape {:?}: {} poolings by 2 need every spatial size ≥ {min}",
                    self.depth, self.input_shape, self.depth
                ),
            ));
        }
        self.channel_sequence()?;
        Ok(())
    }
}
