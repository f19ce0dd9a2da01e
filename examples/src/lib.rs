//! # dlsia-examples
//!
//! The three applications of the DLSIA paper, each as a short program on data it generates
//! itself, so that they run on a fresh machine with nothing but the repository:
//!
//! * [`inpainting`]: fill detector gaps in synthetic X-ray scattering patterns with a TUNet and
//!   an MSDNet (masked L1 on the gaps), scored by the Pearson correlation on gap pixels;
//! * [`fibers`]: segment fibers in a synthetic concrete tomogram from sparse labels with an
//!   ensemble of five SMSNets, keep voxels where mean − std > 0.5, label the fibers in 3-D and
//!   measure their lengths and orientations;
//! * [`shape_clustering`]: train a mixed-scale autoencoder on random shapes and show that its
//!   latent space separates the four shape classes (UMAP/PCA scatter, k-NN accuracy,
//!   silhouette).
//!
//! Each workflow is a library function taking a checked settings struct and an output folder, so
//! that the `cargo run --example` programs are thin command-line wrappers and the integration
//! tests run the same code in its `--quick` form.

pub mod cli;
pub mod fibers;
pub mod inpainting;
pub mod outdir;
pub mod shape_clustering;
pub mod stats;
pub mod tensors;
