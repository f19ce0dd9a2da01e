//! Connected-component labelling of 2D images (4/8-connected) and 3D volumes (6/18/26-connected).
//!
//! Multilabel in one pass, like cc3d: two touching voxels belong to the same component when they
//! carry the same non-zero value; zero (or `false`) is background. Components get `u32` labels
//! `1..=n` in raster order of their first voxel (x fastest, then y, then z), background stays 0.
//! The algorithm is the classic two-pass scan with union-find equivalences (see `scan`), split
//! into z-blocks that rayon labels in parallel and whose seams are merged afterwards; the same
//! blocks, read one at a time from a closure, label volumes larger than memory
//! ([`label_slabs`]).
//!
//! ```
//! use dlsia_analysis::ccl::{connected_components, Connectivity};
//! // Two 1-pixel diagonal neighbours of value 3 and a lone 5.
//! let image = [3u8, 0, 5,
//!              0, 3, 0];
//! let four = connected_components(&image, &[2, 3], Connectivity::Four).unwrap();
//! assert_eq!(four.labels(), &[1, 0, 2, 0, 3, 0]);
//! let eight = connected_components(&image, &[2, 3], Connectivity::Eight).unwrap();
//! assert_eq!(eight.labels(), &[1, 0, 2, 0, 1, 0]);
//! assert_eq!(eight.n_components(), 2);
//! ```

mod connectivity;
mod filter;
mod label;
mod labeling;
mod scan;
mod slabs;
mod stats;
mod union_find;

#[cfg(test)]
mod oracle_tests;

pub use connectivity::Connectivity;
pub use label::connected_components;
pub use labeling::Labeling;
pub use slabs::{label_slabs, SlabLabeling, SlabOptions};
pub use stats::{ComponentStats, Statistics, StatisticsBuilder};

/// A voxel value that can be labelled: integers and `bool`; zero / `false` is background.
pub trait LabelValue: Copy + PartialEq + Default + Send + Sync {
    /// Whether this value is background (never part of a component).
    fn is_background(self) -> bool;
}

macro_rules! impl_label_value {
    ($($t:ty),*) => {$(
        impl LabelValue for $t {
            #[inline(always)]
            fn is_background(self) -> bool {
                self == 0
            }
        }
    )*};
}
impl_label_value!(u8, u16, u32, u64, i8, i16, i32, i64, usize);

impl LabelValue for bool {
    #[inline(always)]
    fn is_background(self) -> bool {
        !self
    }
}

/// Checks a shape against a connectivity and a buffer length; returns `[d, h, w]` (d = 1 in 2D).
pub(crate) fn volume_dims(
    op: &'static str,
    shape: &[usize],
    len: usize,
    connectivity: Connectivity,
) -> crate::error::Result<[usize; 3]> {
    use crate::error::{invalid, Error};
    let dims = match (shape.len(), connectivity.is_2d()) {
        (2, true) => [1, shape[0], shape[1]],
        (3, false) => [shape[0], shape[1], shape[2]],
        (2, false) => {
            return Err(invalid(
                op,
                format!("{connectivity:?} is a 3D connectivity but the shape {shape:?} is 2D; use Four or Eight, or a [depth, height, width] shape"),
            ))
        }
        (3, true) => {
            return Err(invalid(
                op,
                format!("{connectivity:?} is a 2D connectivity but the shape {shape:?} is 3D; use Six, Eighteen or TwentySix"),
            ))
        }
        _ => {
            return Err(invalid(
                op,
                format!("shape {shape:?} must be [height, width] or [depth, height, width]"),
            ))
        }
    };
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| invalid(op, format!("shape {shape:?} overflows usize")))?;
    if expected != len {
        return Err(Error::ShapeMismatch {
            op,
            shape: shape.to_vec(),
            expected,
            got: len,
        });
    }
    Ok(dims)
}
