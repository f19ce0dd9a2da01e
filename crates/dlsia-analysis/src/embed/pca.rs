//! Principal component analysis through the eigen-decomposition of the covariance (f64).

use serde::{Deserialize, Serialize};

use super::check_points;
use crate::error::{invalid, Result};
use crate::linalg::symmetric_eigen;

/// A fitted PCA: the data mean and the leading principal axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Input dimension.
    pub dim: usize,
    /// Mean of the fitted data.
    pub mean: Vec<f64>,
    /// Unit principal axes, largest variance first (`n_components` rows of `dim`), each
    /// signed so that its largest-magnitude entry is positive.
    pub components: Vec<Vec<f64>>,
    /// Variance along each axis (the covariance's eigenvalues, divided by `n − 1`).
    pub explained_variance: Vec<f64>,
}

impl Pca {
    /// Fits `n_components` axes to `n` points of `dim` values (`n ≥ 2`,
    /// `1 ≤ n_components ≤ dim`). Costs `O(n·dim² + dim³)`.
    pub fn fit(data: &[f32], dim: usize, n_components: usize) -> Result<Self> {
        const OP: &str = "Pca::fit";
        let n = check_points(OP, data, dim)?;
        if n < 2 {
            return Err(invalid(OP, format!("need at least 2 points, got {n}")));
        }
        if n_components == 0 || n_components > dim {
            return Err(invalid(
                OP,
                format!("n_components = {n_components} must be between 1 and dim = {dim}"),
            ));
        }
        let mut mean = vec![0.0f64; dim];
        for row in data.chunks_exact(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0.0f64; dim * dim];
        let mut centred = vec![0.0f64; dim];
        for row in data.chunks_exact(dim) {
            for (c, (&v, m)) in centred.iter_mut().zip(row.iter().zip(&mean)) {
                *c = v as f64 - m;
            }
            for i in 0..dim {
                let ci = centred[i];
                for j in i..dim {
                    cov[i * dim + j] += ci * centred[j];
                }
            }
        }
        cov.iter_mut().for_each(|c| *c /= (n - 1) as f64);
        let (values, vectors) = symmetric_eigen(&cov, dim);
        let components = vectors
            .into_iter()
            .take(n_components)
            .map(|mut v| {
                let big = v
                    .iter()
                    .copied()
                    .fold(0.0f64, |a, x| if x.abs() > a.abs() { x } else { a });
                if big < 0.0 {
                    v.iter_mut().for_each(|x| *x = -*x);
                }
                v
            })
            .collect();
        Ok(Self {
            dim,
            mean,
            components,
            explained_variance: values
                .into_iter()
                .take(n_components)
                .map(|v| v.max(0.0))
                .collect(),
        })
    }

    /// Projects points onto the axes: `n × n_components` row-major.
    pub fn transform(&self, data: &[f32]) -> Result<Vec<f32>> {
        let n = check_points("Pca::transform", data, self.dim)?;
        let k = self.components.len();
        let mut out = Vec::with_capacity(n * k);
        for row in data.chunks_exact(self.dim) {
            for c in &self.components {
                let s: f64 = row
                    .iter()
                    .zip(&self.mean)
                    .zip(c)
                    .map(|((&v, m), a)| (v as f64 - m) * a)
                    .sum();
                out.push(s as f32);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_axis_of_an_elongated_cloud() {
        // Points along (1, 2, 2)/3 with small perpendicular wiggles uncorrelated with the
        // position along the axis (pattern + − − + in blocks of four).
        let axis = [1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0];
        let perp = [0.0, 1.0 / 2f64.sqrt(), -1.0 / 2f64.sqrt()];
        let data: Vec<f32> = (0..48)
            .flat_map(|i| {
                let t = i as f64 - 23.5;
                let e = if i % 4 == 0 || i % 4 == 3 { 0.1 } else { -0.1 };
                (0..3).map(move |k| (1.0 + t * axis[k] + e * perp[k]) as f32)
            })
            .collect();
        let pca = Pca::fit(&data, 3, 2).unwrap();
        for (k, a) in axis.iter().enumerate() {
            assert!((pca.components[0][k] - a).abs() < 1e-6);
            assert!((pca.mean[k] - 1.0).abs() < 1e-5);
        }
        // Variance of t = -23.5..23.5 (n-1 denominator): 48·49/12 = 196.
        assert!((pca.explained_variance[0] - 196.0).abs() < 1e-3);
        assert!((pca.explained_variance[1] - 0.01 * 48.0 / 47.0).abs() < 1e-6);
        let y = pca.transform(&data).unwrap();
        assert!((y[0] as f64 + 23.5).abs() < 1e-4 && (y[1].abs() - 0.1).abs() < 1e-5);
        assert!(Pca::fit(&data, 3, 4).is_err());
        assert!(Pca::fit(&data[..3], 3, 1).is_err());
        assert!(pca.transform(&data[..4]).is_err());
    }
}
