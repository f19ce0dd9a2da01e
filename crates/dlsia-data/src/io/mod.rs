//! Image and volume files: TIFF stacks, NumPy `.npy`, PNG previews, and (behind the `hdf5` and
//! `zarr` features) HDF5 datasets and Zarr arrays.
//!
//! [`read_volume`] and [`write_volume`] pick the format from the file extension. Every error
//! names the file and says what is wrong with it (truncated, corrupt, unsupported sample type).
//!
//! ```no_run
//! use dlsia_data::io::{read_volume, write_volume};
//! let stack = read_volume("scan.tif")?;          // (D, H, W) in its stored sample type
//! write_volume("scan.npy", &stack)?;             // same samples, NumPy format
//! # Ok::<(), dlsia_data::Error>(())
//! ```

#[cfg(feature = "hdf5")]
pub mod hdf5;
pub mod npy;
pub mod png;
pub mod tiff;
#[cfg(feature = "zarr")]
pub mod zarr;

use std::path::Path;

use crate::error::{invalid, Result};
use crate::volume::Volume;

pub use npy::{npy_info, read_npy, write_npy, NpyInfo, NpyMap};
pub use png::{label_colour, read_png, save_label_png, save_png_preview};
pub use tiff::{read_tiff, tiff_info, write_tiff, TiffStackWriter};

#[cfg(feature = "hdf5")]
pub use self::hdf5::{read_hdf5, write_hdf5, Hdf5VolumeReader, Hdf5VolumeWriter};
#[cfg(feature = "zarr")]
pub use zarr::{read_zarr, write_zarr, ZarrCompression, ZarrVolumeReader, ZarrVolumeWriter};

/// The file formats [`read_volume`] and [`write_volume`] recognise by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `.tif`, `.tiff`
    Tiff,
    /// `.npy`
    Npy,
    /// `.png`
    Png,
}

impl FileFormat {
    /// The format of `path` from its extension (case-insensitive).
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("tif" | "tiff") => Ok(FileFormat::Tiff),
            Some("npy") => Ok(FileFormat::Npy),
            Some("png") => Ok(FileFormat::Png),
            _ => Err(invalid(
                "file format",
                format!(
                    "{}: unknown extension; use .tif/.tiff, .npy or .png (HDF5 and Zarr have their own functions)",
                    path.display()
                ),
            )),
        }
    }
}

/// Reads an image or volume, choosing the format from the extension.
pub fn read_volume(path: impl AsRef<Path>) -> Result<Volume> {
    let path = path.as_ref();
    match FileFormat::from_path(path)? {
        FileFormat::Tiff => read_tiff(path),
        FileFormat::Npy => read_npy(path),
        FileFormat::Png => read_png(path),
    }
}

/// Writes an image or volume, choosing the format from the extension. PNG takes only 2-D
/// volumes and writes an 8-bit min–max scaled preview (not a lossless copy).
pub fn write_volume(path: impl AsRef<Path>, volume: &Volume) -> Result<()> {
    let path = path.as_ref();
    match FileFormat::from_path(path)? {
        FileFormat::Tiff => write_tiff(path, volume),
        FileFormat::Npy => write_npy(path, volume),
        FileFormat::Png => {
            volume.expect_rank("write_volume (PNG)", &[2])?;
            let s = volume.shape();
            save_png_preview(path, &volume.to_f32_vec(), s[0], s[1])
        }
    }
}
