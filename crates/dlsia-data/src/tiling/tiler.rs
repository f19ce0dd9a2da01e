//! [`TileConfig`] and [`Tiler`]: where the windows go and how much each voxel of a window weighs
//! when the results are blended back.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// The weight profile of a window, applied separably along every axis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blend {
    /// Every voxel of a window weighs the same (plain averaging of overlaps).
    Uniform,
    /// A Gaussian centred on the window with standard deviation `sigma_fraction × window`
    /// (0.125 is the usual choice), floored at 10⁻³ of its peak so that every voxel counts.
    Gaussian {
        /// Standard deviation as a fraction of the window length.
        sigma_fraction: f32,
    },
}

impl Default for Blend {
    fn default() -> Self {
        Blend::Gaussian {
            sigma_fraction: 0.125,
        }
    }
}

/// How a volume is cut into windows and blended back.
///
/// All vectors have one entry per spatial axis (a single entry is repeated for every axis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileConfig {
    /// Window size. An axis shorter than its window gets a window of the axis length.
    pub window: Vec<usize>,
    /// Distance between window starts (`window - overlap`); `1 <= step <= window`.
    pub step: Vec<usize>,
    /// Voxels at each window edge whose results are discarded (weight 0) except at the volume
    /// boundary, where nothing else covers them; needs `step <= window - 2 × border`.
    pub border: Vec<usize>,
    /// Weight profile used to blend overlapping windows.
    pub blend: Blend,
    /// Windows handed to the closure at once.
    pub batch_size: usize,
    /// Show a progress bar on standard error.
    pub progress: bool,
}

impl TileConfig {
    /// A configuration with the same window, step and border on every axis, Gaussian blending,
    /// batches of 8 and no progress bar.
    pub fn new(window: usize, step: usize, border: usize) -> Self {
        Self {
            window: vec![window],
            step: vec![step],
            border: vec![border],
            blend: Blend::default(),
            batch_size: 8,
            progress: false,
        }
    }

    /// Sets the blend profile.
    pub fn with_blend(mut self, blend: Blend) -> Self {
        self.blend = blend;
        self
    }

    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Turns the progress bar on or off.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }
}

/// One window: its index in processing order and its start on every spatial axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Position in processing order.
    pub index: usize,
    /// Index of the window's start along each axis (into [`Tiler::starts`]).
    pub grid: Vec<usize>,
    /// First voxel on each spatial axis.
    pub start: Vec<usize>,
}

/// The checked tiling of one spatial shape: window starts per axis and per-axis weights.
///
/// Windows form a Cartesian grid and weights are separable, so the total weight at a voxel is
/// the product over axes of per-axis sums: the stitcher never stores a weight volume.
#[derive(Debug, Clone)]
pub struct Tiler {
    shape: Vec<usize>,
    window: Vec<usize>,
    starts: Vec<Vec<usize>>,
    /// `weights[axis][j]`: profile of the `j`-th window along `axis` (length `window[axis]`).
    weights: Vec<Vec<Vec<f32>>>,
    /// `norm[axis][x]`: sum over windows of their weight at `x`.
    norm: Vec<Vec<f32>>,
    batch_size: usize,
}

fn per_axis(name: &'static str, v: &[usize], n: usize) -> Result<Vec<usize>> {
    match v.len() {
        1 => Ok(vec![v[0]; n]),
        l if l == n => Ok(v.to_vec()),
        l => Err(invalid(
            "TileConfig",
            format!("{name} has {l} entries for {n} spatial axes; give 1 or {n}"),
        )),
    }
}

impl Tiler {
    /// Checks `config` against a spatial shape and lays out the windows.
    pub fn new(shape: &[usize], config: &TileConfig) -> Result<Self> {
        let n = shape.len();
        if n == 0 || shape.contains(&0) {
            return Err(invalid(
                "Tiler::new",
                format!("spatial shape {shape:?} must have at least one axis and no empty axis"),
            ));
        }
        if config.batch_size == 0 {
            return Err(invalid("TileConfig::batch_size", "must be at least 1"));
        }
        let win = per_axis("window", &config.window, n)?;
        let step = per_axis("step", &config.step, n)?;
        let border = per_axis("border", &config.border, n)?;
        if let Blend::Gaussian { sigma_fraction } = config.blend {
            if !(sigma_fraction > 0.0 && sigma_fraction.is_finite()) {
                return Err(invalid(
                    "Blend::Gaussian",
                    format!("sigma_fraction {sigma_fraction} must be positive, e.g. 0.125"),
                ));
            }
        }
        let mut window = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n);
        let mut weights = Vec::with_capacity(n);
        let mut norm = Vec::with_capacity(n);
        for ax in 0..n {
            if win[ax] == 0 || step[ax] == 0 || step[ax] > win[ax] {
                return Err(invalid(
                    "TileConfig",
                    format!(
                        "axis {ax}: window {} and step {} need 1 <= step <= window (overlap = window - step)",
                        win[ax], step[ax]
                    ),
                ));
            }
            if 2 * border[ax] >= win[ax] || step[ax] + 2 * border[ax] > win[ax] {
                return Err(invalid(
                    "TileConfig",
                    format!(
                        "axis {ax}: border {} with window {} and step {} leaves voxels uncovered; need step <= window - 2 × border",
                        border[ax], win[ax], step[ax]
                    ),
                ));
            }
            let w = win[ax].min(shape[ax]);
            let s = axis_starts(shape[ax], w, step[ax]);
            let base = profile(w, config.blend);
            let mut ws = Vec::with_capacity(s.len());
            let mut nm = vec![0f32; shape[ax]];
            for &p in &s {
                let mut prof = base.clone();
                let b = border[ax].min(w);
                if p > 0 {
                    prof[..b].iter_mut().for_each(|x| *x = 0.0);
                }
                if p + w < shape[ax] {
                    prof[w - b..].iter_mut().for_each(|x| *x = 0.0);
                }
                for (t, &v) in prof.iter().enumerate() {
                    nm[p + t] += v;
                }
                ws.push(prof);
            }
            if let Some(x) = nm.iter().position(|&v| v <= 0.0) {
                return Err(invalid(
                    "TileConfig",
                    format!("axis {ax}: voxel {x} gets no weight; reduce the step or the border"),
                ));
            }
            window.push(w);
            starts.push(s);
            weights.push(ws);
            norm.push(nm);
        }
        Ok(Self {
            shape: shape.to_vec(),
            window,
            starts,
            weights,
            norm,
            batch_size: config.batch_size,
        })
    }

    /// The spatial shape being tiled.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The window actually used (clipped to the shape).
    pub fn window(&self) -> &[usize] {
        &self.window
    }

    /// Window starts along each axis.
    pub fn starts(&self) -> &[Vec<usize>] {
        &self.starts
    }

    /// Windows per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Total number of windows.
    pub fn len(&self) -> usize {
        self.starts.iter().map(|s| s.len()).product()
    }

    /// Whether there are no windows (never, for a checked tiler).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Window number `index` in processing order (row-major over the grid, so windows are sorted
    /// by their start on the first axis).
    pub fn window_at(&self, index: usize) -> Window {
        let n = self.shape.len();
        let mut grid = vec![0; n];
        let mut r = index;
        for ax in (0..n).rev() {
            let k = self.starts[ax].len();
            grid[ax] = r % k;
            r /= k;
        }
        let start = grid
            .iter()
            .enumerate()
            .map(|(ax, &g)| self.starts[ax][g])
            .collect();
        Window { index, grid, start }
    }

    /// All windows in processing order.
    pub fn windows(&self) -> impl Iterator<Item = Window> + '_ {
        (0..self.len()).map(|i| self.window_at(i))
    }

    /// Windows in batches of [`Tiler::batch_size`].
    pub fn batches(&self) -> impl Iterator<Item = Vec<Window>> + '_ {
        let b = self.batch_size;
        (0..self.len().div_ceil(b)).map(move |k| {
            (k * b..((k + 1) * b).min(self.len()))
                .map(|i| self.window_at(i))
                .collect()
        })
    }

    /// Weight profile along `axis` of the window with grid index `j` on that axis.
    pub fn weights(&self, axis: usize, j: usize) -> &[f32] {
        &self.weights[axis][j]
    }

    /// Total weight along `axis` at each position.
    pub fn norm(&self, axis: usize) -> &[f32] {
        &self.norm[axis]
    }
}

/// Window starts: every `step` from 0, plus a last window flush with the end.
pub(crate) fn axis_starts(len: usize, window: usize, step: usize) -> Vec<usize> {
    if len <= window {
        return vec![0];
    }
    let mut s: Vec<usize> = (0..)
        .map(|k| k * step)
        .take_while(|&p| p + window < len)
        .collect();
    s.push(len - window);
    s
}

fn profile(w: usize, blend: Blend) -> Vec<f32> {
    match blend {
        Blend::Uniform => vec![1.0; w],
        Blend::Gaussian { sigma_fraction } => {
            let sigma = (sigma_fraction as f64 * w as f64).max(1e-6);
            let c = (w as f64 - 1.0) / 2.0;
            (0..w)
                .map(|t| {
                    let d = (t as f64 - c) / sigma;
                    ((-0.5 * d * d).exp()).max(1e-3) as f32
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_cover_and_end_flush() {
        assert_eq!(axis_starts(10, 4, 3), vec![0, 3, 6]);
        assert_eq!(axis_starts(11, 4, 3), vec![0, 3, 6, 7]);
        assert_eq!(axis_starts(3, 4, 2), vec![0]);
        assert_eq!(axis_starts(4, 4, 2), vec![0]);
        assert_eq!(axis_starts(5, 4, 4), vec![0, 1]);
    }

    #[test]
    fn config_errors() {
        let mk = |w, s, b| Tiler::new(&[32, 32], &TileConfig::new(w, s, b));
        assert!(mk(8, 0, 0).is_err());
        assert!(mk(8, 9, 0).is_err());
        assert!(mk(8, 6, 2).is_err());
        assert!(mk(8, 4, 2).is_ok());
        assert!(Tiler::new(&[32, 0], &TileConfig::new(8, 4, 0)).is_err());
        let mut c = TileConfig::new(8, 4, 0);
        c.window = vec![8, 8, 8];
        assert!(Tiler::new(&[32, 32], &c).is_err());
    }

    #[test]
    fn borders_are_zero_inside_and_kept_at_edges() {
        let t = Tiler::new(&[20], &TileConfig::new(8, 4, 2).with_blend(Blend::Uniform)).unwrap();
        assert_eq!(t.starts()[0], vec![0, 4, 8, 12]);
        assert_eq!(t.weights(0, 0), &[1., 1., 1., 1., 1., 1., 0., 0.]);
        assert_eq!(t.weights(0, 1), &[0., 0., 1., 1., 1., 1., 0., 0.]);
        assert_eq!(t.weights(0, 3), &[0., 0., 1., 1., 1., 1., 1., 1.]);
        assert!(t.norm(0).iter().all(|&v| v > 0.0));
    }

    #[test]
    fn windows_are_row_major_and_batched() {
        let t = Tiler::new(&[10, 7], &TileConfig::new(4, 3, 0).with_batch_size(4)).unwrap();
        assert_eq!(t.starts()[0], vec![0, 3, 6]);
        assert_eq!(t.starts()[1], vec![0, 3]);
        let w: Vec<Vec<usize>> = t.windows().map(|w| w.start).collect();
        assert_eq!(w[0], vec![0, 0]);
        assert_eq!(w[1], vec![0, 3]);
        assert_eq!(w[2], vec![3, 0]);
        let b: Vec<usize> = t.batches().map(|b| b.len()).collect();
        assert_eq!(b, vec![4, 2]);
    }
}
