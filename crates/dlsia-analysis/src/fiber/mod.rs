//! Fiber statistics for segmented fiber-reinforced materials (the concrete workflow of the DLSIA
//! paper): per-fiber end-to-end length and direction from each component's principal axis
//! ([`measure_fibers`]), and the distribution of directions from the autocorrelation of the
//! segmentation sampled on a sphere ([`orientation_distribution`]), drawn as an equal-area
//! Hammer projection ([`crate::plot::hammer_png`], [`crate::plot::hammer_svg`]).
//!
//! Coordinates and directions are `[z, y, x]`; `spacing` is the voxel size along each axis.

mod lengths;
mod orientation;
mod sphere;

pub use lengths::{fibers_to_csv, measure_fibers, FiberMeasurement};
pub use orientation::{orientation_distribution, OrientationDistribution, OrientationOptions};
pub use sphere::{hammer_forward, hammer_inverse, SphereGrid};
