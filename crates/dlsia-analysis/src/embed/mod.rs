//! Latent-space embeddings for the shape-clustering workflow: PCA, UMAP (feature `umap`), and
//! scores that turn "the clusters are clearly separated" into numbers (leave-one-out k-NN
//! accuracy and the silhouette coefficient).
//!
//! Points are rows of a row-major `&[f32]` with `dim` columns.
//!
//! ```
//! use dlsia_analysis::embed::{knn_accuracy, silhouette, Pca};
//! // Two tight groups on a line in 3D.
//! let x = [0.0, 0.0, 0.0,  0.1, 0.0, 0.0,  5.0, 5.0, 5.0,  5.1, 5.0, 5.0f32];
//! let pca = Pca::fit(&x, 3, 1).unwrap();
//! let y = pca.transform(&x).unwrap();
//! let classes = [0, 0, 1, 1];
//! assert_eq!(knn_accuracy(&y, 1, &classes, 1).unwrap(), 1.0);
//! assert!(silhouette(&y, 1, &classes).unwrap() > 0.9);
//! ```

mod knn;
mod pca;
mod score;
#[cfg(feature = "umap")]
mod umap;

pub use knn::nearest_neighbours;
pub use pca::Pca;
pub use score::{knn_accuracy, silhouette};
#[cfg(feature = "umap")]
pub use umap::{umap, UmapParams};

use crate::error::{invalid, Result};

/// Checks a point matrix; returns the number of points.
pub(crate) fn check_points(op: &'static str, data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(invalid(op, "dim must be at least 1"));
    }
    if data.len() % dim != 0 {
        return Err(invalid(
            op,
            format!(
                "{} values are not a whole number of rows of {dim}",
                data.len()
            ),
        ));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            op,
            format!(
                "point {} coordinate {} is {}; all values must be finite",
                i / dim,
                i % dim,
                data[i]
            ),
        ));
    }
    Ok(data.len() / dim)
}
