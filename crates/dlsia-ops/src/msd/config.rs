//! Hyperparameters of a fused mixed-scale dense block and their one-time validation.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::PaddingMode;

const OP: &str = "MsdBlock";

/// Per-layer normalisation of the new channels: `relu(γ·(z − μ)/√(σ² + eps) + β)` with batch
/// statistics in training and running statistics in evaluation, as PyTorch's `BatchNorm`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MsdNorm {
    /// Added to the variance before the square root (PyTorch: 1e-5).
    pub eps: f64,
    /// Weight of a new batch in the running averages (PyTorch: 0.1); `None` = cumulative.
    pub momentum: Option<f64>,
}

impl Default for MsdNorm {
    fn default() -> Self {
        MsdNorm {
            eps: 1e-5,
            momentum: Some(0.1),
        }
    }
}

/// The hyperparameters of a fused mixed-scale dense block: `depth` layers of `width` new
/// channels each; layer `i` convolves all `in_channels + i·width` channels before it with a
/// `kernel_size`-wide kernel (per spatial axis) at its channel's dilation, adds a bias and
/// applies ReLU (after the optional normalisation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsdSpec {
    /// Number of spatial axes (1, 2 or 3).
    pub ndim: usize,
    /// Channels of the input.
    pub in_channels: usize,
    /// New channels per layer.
    pub width: usize,
    /// Dilation of every new channel, layer-major: channel `k` of layer `i` is entry
    /// `i·width + k`. Its length is `depth·width`.
    pub dilations: Vec<usize>,
    /// Kernel size along every axis (odd; 3 in the MSD papers).
    pub kernel_size: usize,
    /// How the image is continued beyond its border (stored with the model).
    pub padding: PaddingMode,
    /// Optional normalisation of the new channels.
    pub norm: Option<MsdNorm>,
}

impl MsdSpec {
    /// A 3×3 (×3) block whose dilations cycle `1, 2, …, max_dilation` as dlsia's
    /// `MixedScaleDenseNetwork` does (channel `k` of layer `i` gets `(i·width + k) % max + 1`),
    /// zero padding, no normalisation.
    pub fn cyclic(
        ndim: usize,
        in_channels: usize,
        depth: usize,
        width: usize,
        max_dilation: usize,
    ) -> Self {
        MsdSpec {
            ndim,
            in_channels,
            width,
            dilations: cyclic_dilations(depth, width, max_dilation),
            kernel_size: 3,
            padding: PaddingMode::Zeros,
            norm: None,
        }
    }

    /// The same block with another padding mode.
    pub fn with_padding(mut self, padding: PaddingMode) -> Self {
        self.padding = padding;
        self
    }

    /// The same block with per-layer normalisation of the new channels.
    pub fn with_norm(mut self, norm: MsdNorm) -> Self {
        self.norm = Some(norm);
        self
    }

    /// Number of layers.
    pub fn depth(&self) -> usize {
        self.dilations.len() / self.width.max(1)
    }

    /// Channels of the output buffer: `in_channels + depth·width`.
    pub fn out_channels(&self) -> usize {
        self.in_channels + self.dilations.len()
    }

    /// Checks every hyperparameter, saying what is wrong and what would be right.
    pub fn validate(&self) -> Result<()> {
        if !(1..=3).contains(&self.ndim) {
            return Err(invalid(
                OP,
                format!("ndim = {}; expected 1, 2 or 3 spatial axes", self.ndim),
            ));
        }
        if self.in_channels == 0 {
            return Err(invalid(OP, "in_channels must be at least 1"));
        }
        if self.width == 0 {
            return Err(invalid(
                OP,
                "width (new channels per layer) must be at least 1",
            ));
        }
        if self.dilations.is_empty() || self.dilations.len() % self.width != 0 {
            return Err(invalid(
                OP,
                format!(
                    "{} dilations for width {}: expected depth·width ≥ 1 entries, one per new channel",
                    self.dilations.len(),
                    self.width
                ),
            ));
        }
        if let Some(i) = self.dilations.iter().position(|&d| d == 0) {
            return Err(invalid(
                OP,
                format!(
                    "dilation of layer {} channel {} is 0; dilations start at 1",
                    i / self.width,
                    i % self.width
                ),
            ));
        }
        if self.kernel_size == 0 || self.kernel_size % 2 == 0 {
            return Err(invalid(
                OP,
                format!(
                    "kernel_size = {}; expected an odd size ≥ 1 (3 in the MSD papers)",
                    self.kernel_size
                ),
            ));
        }
        if let Some(n) = &self.norm {
            if !(n.eps.is_finite() && n.eps > 0.0) {
                return Err(invalid(
                    OP,
                    format!(
                        "normalisation eps must be finite and positive, got {}",
                        n.eps
                    ),
                ));
            }
            if let Some(m) = n.momentum {
                if !(0.0..=1.0).contains(&m) {
                    return Err(invalid(
                        OP,
                        format!("normalisation momentum must be in [0, 1], got {m}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The largest padding a layer needs: `max dilation · (kernel_size − 1)/2`.
    pub fn max_reach(&self) -> usize {
        self.dilations.iter().max().copied().unwrap_or(0) * (self.kernel_size / 2)
    }

    /// Checks that the padding mode can serve every dilation on an image of spatial size
    /// `dims` (one entry per spatial axis): reflect needs reach ≤ n − 1, symmetric ≤ n on every
    /// axis (a single reflection); zeros and replicate serve any reach.
    pub fn check_spatial(&self, dims: &[usize]) -> Result<()> {
        if dims.len() != self.ndim {
            return Err(invalid(
                OP,
                format!(
                    "spatial size {dims:?} has {} axes; the block has {}",
                    dims.len(),
                    self.ndim
                ),
            ));
        }
        if let Some(a) = dims.iter().position(|&n| n == 0) {
            return Err(invalid(
                OP,
                format!("spatial axis {a} of {dims:?} is empty"),
            ));
        }
        let reach = self.max_reach();
        for (a, &n) in dims.iter().enumerate() {
            let max = self.padding.max_padding(n);
            if reach > max {
                let dmax = self.dilations.iter().max().copied().unwrap_or(0);
                return Err(invalid(
                    OP,
                    format!(
                        "dilation {dmax} with kernel size {} reaches {reach} pixels beyond the border, but {} padding on spatial axis {a} of length {n} can serve at most {max} (one reflection); use dilations ≤ {}, images of at least {} pixels on that axis, or zeros/replicate padding",
                        self.kernel_size,
                        self.padding.as_str(),
                        max / (self.kernel_size / 2).max(1),
                        self.min_size(),
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The smallest image side the padding mode can serve with these dilations.
    pub fn min_size(&self) -> usize {
        let reach = self.max_reach();
        match self.padding {
            PaddingMode::Reflect => reach + 1,
            PaddingMode::Symmetric => reach.max(1),
            PaddingMode::Zeros | PaddingMode::Replicate => 1,
        }
    }
}

/// dlsia's dilation schedule: channel `k` of layer `i` gets `((i·width + k) mod max) + 1`.
pub fn cyclic_dilations(depth: usize, width: usize, max_dilation: usize) -> Vec<usize> {
    (0..depth * width)
        .map(|u| {
            if max_dilation == 0 {
                0
            } else {
                u % max_dilation + 1
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclic_matches_dlsia_schedule() {
        // dlsia docstring: num_layers=5, layer_width=2, max_dilation=5 → columns
        // [1,2],[3,4],[5,1],[2,3],[4,5] (layer-major).
        assert_eq!(
            cyclic_dilations(5, 2, 5),
            vec![1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
        );
        // reference/dlsia.md: MSDNet(…, num_layers=3, layer_width=2, max_dilation=3)
        assert_eq!(cyclic_dilations(3, 2, 3), vec![1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = MsdSpec::cyclic(2, 1, 4, 2, 3);
        ok.validate().unwrap();
        let mut s = ok.clone();
        s.kernel_size = 4;
        assert!(s.validate().unwrap_err().to_string().contains("odd"));
        let mut s = ok.clone();
        s.dilations.pop();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("depth·width"));
        assert!(MsdSpec::cyclic(2, 1, 4, 1, 0)
            .validate()
            .unwrap_err()
            .to_string()
            .contains("dilation of layer 0"));
    }

    #[test]
    fn reflect_rejects_dilations_needing_two_bounces() {
        let s = MsdSpec::cyclic(2, 1, 4, 1, 4).with_padding(PaddingMode::Reflect);
        s.check_spatial(&[5, 5]).unwrap();
        let e = s.check_spatial(&[5, 4]).unwrap_err().to_string();
        assert!(e.contains("reflect") && e.contains("length 4"), "{e}");
        let sym = s.clone().with_padding(PaddingMode::Symmetric);
        sym.check_spatial(&[4, 4]).unwrap();
        assert!(sym.check_spatial(&[3, 9]).is_err());
        let z = s.with_padding(PaddingMode::Zeros);
        z.check_spatial(&[1, 2]).unwrap();
    }
}
