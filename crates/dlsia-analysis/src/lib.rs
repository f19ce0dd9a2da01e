//! # dlsia-analysis
//!
//! Post-processing for scientific segmentations, independent of the networks:
//!
//! * [`ccl`]: multilabel connected components in 2D (4/8) and 3D (6/18/26), `u32` labels,
//!   dusting, largest-k, statistics, and slab-by-slab labelling of volumes larger than memory.
//! * [`fiber`]: per-fiber length and direction, and the direction distribution from the
//!   autocorrelation of a segmentation sampled on a sphere, drawn as a Hammer projection.
//! * [`embed`]: PCA, UMAP (feature `umap`), k-NN accuracy and silhouette scores.
//! * [`plot`]: the project's one plotting module (training curves, overlays, heat maps with a
//!   colour bar, histograms, scatter plots, Hammer maps) as SVG or PNG.

pub mod ccl;
pub mod embed;
pub mod error;
pub mod fiber;
pub mod histogram;
mod linalg;
pub mod plot;

pub use error::{Error, Result};
