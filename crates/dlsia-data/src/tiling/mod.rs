//! Tiled ("quilted") processing of images and volumes larger than a network's input or than
//! memory.
//!
//! A [`Tiler`] lays overlapping windows over a spatial shape ([`TileConfig`]: window, step =
//! window − overlap, a discarded border, and a uniform or Gaussian [`Blend`] profile).
//! [`run_tiled`] reads the windows from a [`VolumeReader`] in batches on a background thread,
//! runs a closure on each batch (a network, with `C_out` output channels), and a [`Stitcher`]
//! blends the results and writes finished slabs to a [`VolumeWriter`]: memory, `.npy`, TIFF, or
//! Zarr with the `zarr` feature. Only `C_out × window-depth` output planes are held at once.
//!
//! Because windows form a Cartesian grid and blend profiles are separable, the normalising weight
//! at a voxel is a product of per-axis sums: no weight volume is stored.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_data::tiling::{extract_windows, stitch_windows, Blend, TileConfig};
//! let vol = Tensor::arange(0f32, 2.0 * 30.0 * 40.0, &Device::Cpu)?.reshape((2, 30, 40))?;
//! let cfg = TileConfig::new(16, 12, 2).with_blend(Blend::Uniform);
//! let (windows, tiler) = extract_windows(&vol, &cfg)?;   // (N, 2, 16, 16)
//! let back = stitch_windows(&windows, &tiler)?;           // (2, 30, 40), equal to `vol`
//! # Ok::<(), dlsia_data::Error>(())
//! ```

mod files;
mod run;
mod stitch;
mod stream;
mod tiler;

pub use files::{NpyVolumeReader, NpyVolumeWriter, TiffVolumeReader, TiffVolumeWriter};
pub use run::{extract_windows, run_tiled, stitch_windows, TileStats};
pub use stitch::Stitcher;
pub use stream::{ArgmaxWriter, ArrayReader, MemoryWriter, VolumeReader, VolumeWriter};
pub use tiler::{Blend, TileConfig, Tiler, Window};

#[cfg(any(feature = "zarr", feature = "hdf5"))]
pub(crate) use stream::{check_region as check_region_pub, convert_f32 as convert_f32_pub};
