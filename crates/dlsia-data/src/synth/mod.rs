//! Synthetic data with ground truth, generated in Rust and seedable, for the paper's three
//! workflows: [`shapes`] (autoencoder clustering), [`fibers`] (SMSNet-ensemble segmentation of
//! fibers in concrete) and [`scattering`] (inpainting detector gaps).

pub mod fibers;
pub mod scattering;
pub mod shapes;

pub use fibers::{fibers_in_concrete, Fiber, FiberConfig, FiberVolume};
pub use scattering::{
    add_artificial_gaps, scattering_pattern, GapAugmented, ScatteringConfig, ScatteringPattern,
};
pub use shapes::{random_shape, random_shape_set, ShapeKind, ShapeParams, ShapeSample, ShapeSet};
