//! UMAP (McInnes, Healy & Melville 2018) through `umap-rs`, wrapped so that bad input is an
//! error and the result is reproducible.
//!
//! `umap-rs` builds the fuzzy k-NN graph (deterministic) but expects precomputed neighbours and
//! an initial layout, panics on bad input, and optimises the layout with an unseeded, racy
//! (Hogwild) SGD. This wrapper validates everything first, computes exact neighbours
//! ([`nearest_neighbours`]), starts from PCA scaled to ±10 (umap-learn's `init="pca"`), and runs
//! the standard UMAP layout SGD itself, single-threaded with a seeded RNG, so the same seed gives
//! the same embedding.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{check_points, nearest_neighbours, Pca};
use crate::error::{invalid, Error, Result};

/// UMAP settings (umap-learn's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UmapParams {
    /// Output dimension (≥ 1).
    pub n_components: usize,
    /// Neighbours per point (≥ 2, < number of points).
    pub n_neighbors: usize,
    /// Smallest distance between embedded points (0 ≤ min_dist ≤ spread).
    pub min_dist: f32,
    /// Scale of the embedded points (> 0).
    pub spread: f32,
    /// SGD epochs; `None`: 500 up to 10 000 points, else 200.
    pub n_epochs: Option<usize>,
    /// Initial SGD step (> 0), decaying linearly to 0.
    pub learning_rate: f32,
    /// Negative samples per positive sample.
    pub negative_sample_rate: usize,
    /// Weight of the repulsion (≥ 0).
    pub repulsion_strength: f32,
    /// Seed of the initial jitter and the negative sampling.
    pub seed: u64,
}

impl Default for UmapParams {
    fn default() -> Self {
        Self {
            n_components: 2,
            n_neighbors: 15,
            min_dist: 0.1,
            spread: 1.0,
            n_epochs: None,
            learning_rate: 1.0,
            negative_sample_rate: 5,
            repulsion_strength: 1.0,
            seed: 0,
        }
    }
}

impl UmapParams {
    /// Checks the settings for `n` points of dimension `dim`.
    pub fn validate(&self, n: usize, dim: usize) -> Result<()> {
        const OP: &str = "UmapParams";
        let bad = |msg: String| Err(invalid(OP, msg));
        if self.n_components == 0 {
            return bad("n_components must be at least 1".into());
        }
        if self.n_neighbors < 2 {
            return bad(format!(
                "n_neighbors = {} must be at least 2",
                self.n_neighbors
            ));
        }
        if n <= self.n_neighbors {
            return bad(format!(
                "{n} points are too few for n_neighbors = {}; need more points than neighbours",
                self.n_neighbors
            ));
        }
        if !(self.spread.is_finite() && self.spread > 0.0) {
            return bad(format!(
                "spread = {} must be finite and positive",
                self.spread
            ));
        }
        if !(self.min_dist.is_finite() && self.min_dist >= 0.0 && self.min_dist <= self.spread) {
            return bad(format!(
                "min_dist = {} must be in [0, spread = {}]",
                self.min_dist, self.spread
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning_rate = {} must be finite and positive",
                self.learning_rate
            ));
        }
        if !(self.repulsion_strength.is_finite() && self.repulsion_strength >= 0.0) {
            return bad(format!(
                "repulsion_strength = {} must be finite and non-negative",
                self.repulsion_strength
            ));
        }
        if self.n_epochs == Some(0) {
            return bad("n_epochs must be at least 1".into());
        }
        if dim == 0 {
            return bad("dim must be at least 1".into());
        }
        Ok(())
    }
}

/// Embeds `n` points of dimension `dim` (row-major) into `params.n_components` dimensions;
/// returns `n × n_components` row-major.
pub fn umap(data: &[f32], dim: usize, params: &UmapParams) -> Result<Vec<f32>> {
    const OP: &str = "umap";
    let n = check_points(OP, data, dim)?;
    params.validate(n, dim)?;
    let k = params.n_neighbors;
    let (idx, dist) = nearest_neighbours(data, dim, k, true)?;
    if dist.iter().all(|&d| d == 0.0) {
        return Err(invalid(
            OP,
            "all points are identical; there is nothing to embed",
        ));
    }

    let config = umap_rs::UmapConfig {
        n_components: params.n_components,
        manifold: umap_rs::ManifoldParams {
            min_dist: params.min_dist,
            spread: params.spread,
            a: None,
            b: None,
        },
        graph: umap_rs::GraphParams {
            n_neighbors: k,
            ..Default::default()
        },
        optimization: umap_rs::OptimizationParams::default(),
    };
    let data_a =
        ndarray::ArrayView2::from_shape((n, dim), data).map_err(|e| invalid(OP, e.to_string()))?;
    let idx_a = ndarray::ArrayView2::from_shape((n, k), &idx[..])
        .map_err(|e| invalid(OP, e.to_string()))?;
    let dist_a = ndarray::ArrayView2::from_shape((n, k), &dist[..])
        .map_err(|e| invalid(OP, e.to_string()))?;
    let manifold = catch_unwind(AssertUnwindSafe(|| {
        umap_rs::Umap::new(config).learn_manifold(data_a, idx_a, dist_a)
    }))
    .map_err(|p| Error::Embedding {
        op: OP,
        msg: format!(
            "umap-rs failed building the neighbour graph: {}",
            panic_text(&p)
        ),
    })?;
    let (a, b) = manifold.curve_params();
    let mut edges: Vec<(u32, u32, f32)> = Vec::new();
    for (i, row) in manifold.graph().outer_iterator().enumerate() {
        for (j, &w) in row.iter() {
            if w > 0.0 && i != j {
                edges.push((i as u32, j as u32, w));
            }
        }
    }
    // A fixed edge order keeps the seeded SGD reproducible whatever order the graph comes in.
    edges.sort_unstable_by_key(|e| (e.0, e.1));
    if edges.is_empty() {
        return Err(Error::Embedding {
            op: OP,
            msg: "the neighbour graph has no edges".into(),
        });
    }

    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut y = initial_layout(data, dim, n, params.n_components, &mut rng)?;
    let n_epochs = params
        .n_epochs
        .unwrap_or(if n <= 10_000 { 500 } else { 200 });
    optimize_layout(&mut y, n, params, &edges, (a, b), n_epochs, &mut rng);
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::Embedding {
            op: OP,
            msg: format!(
                "point {} got a non-finite coordinate; try more neighbours or a smaller learning rate",
                i / params.n_components
            ),
        });
    }
    Ok(y)
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// PCA coordinates scaled so the largest magnitude is 10, plus ±1e-4 seeded jitter; axes beyond
/// the data's dimension are uniform in ±10.
fn initial_layout(
    data: &[f32],
    dim: usize,
    n: usize,
    n_components: usize,
    rng: &mut StdRng,
) -> Result<Vec<f32>> {
    let k = n_components.min(dim);
    let pca = Pca::fit(data, dim, k)?;
    let proj = pca.transform(data)?;
    let max = proj.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { 10.0 / max } else { 1.0 };
    let mut y = vec![0.0f32; n * n_components];
    for i in 0..n {
        for c in 0..n_components {
            y[i * n_components + c] = if c < k {
                proj[i * k + c] * scale + rng.random_range(-1e-4..1e-4)
            } else {
                rng.random_range(-10.0..10.0)
            };
        }
    }
    Ok(y)
}

/// The UMAP layout SGD (umap-learn's `optimize_layout_euclidean` algorithm): each edge is
/// sampled in proportion to its weight, pulls its ends together and pushes its head away from
/// `negative_sample_rate` random points; steps are clipped to ±4 and the rate decays linearly.
fn optimize_layout(
    y: &mut [f32],
    n: usize,
    params: &UmapParams,
    edges: &[(u32, u32, f32)],
    (a, b): (f32, f32),
    n_epochs: usize,
    rng: &mut StdRng,
) {
    let dim = params.n_components;
    let w_max = edges.iter().fold(0.0f32, |m, e| m.max(e.2));
    // Edges too weak to be sampled once in n_epochs are dropped, as umap-learn does.
    let kept: Vec<(usize, usize, f64)> = edges
        .iter()
        .filter(|e| (e.2 as f64) >= w_max as f64 / n_epochs as f64)
        .map(|e| (e.0 as usize, e.1 as usize, w_max as f64 / e.2 as f64))
        .collect();
    let neg_rate = params.negative_sample_rate.max(1) as f64;
    let mut next_sample: Vec<f64> = kept.iter().map(|e| e.2).collect();
    let mut next_negative: Vec<f64> = kept.iter().map(|e| e.2 / neg_rate).collect();
    let clip = |v: f32| v.clamp(-4.0, 4.0);
    let gamma = params.repulsion_strength;
    let mut diff = vec![0.0f32; dim];
    for epoch in 0..n_epochs {
        let alpha = params.learning_rate * (1.0 - epoch as f32 / n_epochs as f32);
        let now = epoch as f64;
        for (e, &(j, k, eps)) in kept.iter().enumerate() {
            if next_sample[e] > now {
                continue;
            }
            let d2 = sq_dist(y, j, k, dim, &mut diff);
            if d2 > 0.0 {
                let pw = d2.powf(b);
                let coeff = -2.0 * a * b * pw / d2 / (a * pw + 1.0);
                for d in 0..dim {
                    let g = clip(coeff * diff[d]) * alpha;
                    y[j * dim + d] += g;
                    y[k * dim + d] -= g;
                }
            }
            next_sample[e] += eps;
            if params.negative_sample_rate == 0 {
                continue;
            }
            let eps_neg = eps / neg_rate;
            let n_neg = ((now - next_negative[e]) / eps_neg).max(0.0) as usize;
            for _ in 0..n_neg {
                let other = rng.random_range(0..n);
                if other == j {
                    continue;
                }
                let d2 = sq_dist(y, j, other, dim, &mut diff);
                if d2 > 0.0 {
                    let coeff = 2.0 * gamma * b / ((0.001 + d2) * (a * d2.powf(b) + 1.0));
                    for d in 0..dim {
                        y[j * dim + d] += clip(coeff * diff[d]) * alpha;
                    }
                }
            }
            next_negative[e] += n_neg as f64 * eps_neg;
        }
    }
}

fn sq_dist(y: &[f32], j: usize, k: usize, dim: usize, diff: &mut [f32]) -> f32 {
    let mut s = 0.0;
    for d in 0..dim {
        diff[d] = y[j * dim + d] - y[k * dim + d];
        s += diff[d] * diff[d];
    }
    s
}
