//! Image and volume files for the commands: streaming readers and writers chosen by extension
//! (TIFF stacks and `.npy` streamed; PNG read whole), and whole-file reads for small data.

use std::path::Path;

use anyhow::{bail, Context, Result};
use dlsia_data::io::{read_png, read_volume};
use dlsia_data::tiling::{
    ArrayReader, NpyVolumeReader, NpyVolumeWriter, TiffVolumeReader, TiffVolumeWriter,
    VolumeReader, VolumeWriter,
};
use dlsia_data::{SampleType, Volume};

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

const FORMATS: &str = ".tif/.tiff (stacks), .npy, or .png (2-D, read only)";

/// A reader of `path` as `(C, spatial…)`. With `channels_first`, the first axis of a `.npy`
/// array is the channel axis; otherwise the file is one channel. TIFF and `.npy` are read
/// region by region (files larger than memory work); PNG is read whole.
pub fn open_reader(
    path: &Path,
    channels_first: bool,
    cache_pages: usize,
) -> Result<Box<dyn VolumeReader + Send>> {
    if !path.is_file() {
        bail!("{}: no such file", path.display());
    }
    let ctx = || format!("cannot read {}", path.display());
    Ok(match extension(path).as_str() {
        "tif" | "tiff" => {
            if channels_first {
                bail!("{}: --channels-first needs a .npy array", path.display());
            }
            Box::new(TiffVolumeReader::open(path, cache_pages).with_context(ctx)?)
        }
        "npy" => {
            if channels_first {
                Box::new(NpyVolumeReader::open_channels_first(path).with_context(ctx)?)
            } else {
                Box::new(NpyVolumeReader::open(path).with_context(ctx)?)
            }
        }
        "png" => {
            let v = read_png(path).with_context(ctx)?;
            Box::new(ArrayReader::from_volume(&v).with_context(ctx)?)
        }
        other => bail!(
            "{}: unknown image format `.{other}`; this build reads {FORMATS}",
            path.display()
        ),
    })
}

/// A streaming writer creating `path` (TIFF or `.npy`, by extension) with `sample_type`.
/// `keep_channel_axis` writes a `.npy` as `(C, spatial…)` even when C = 1.
pub fn create_writer(
    path: &Path,
    sample_type: SampleType,
    keep_channel_axis: bool,
) -> Result<Box<dyn VolumeWriter>> {
    Ok(match extension(path).as_str() {
        "tif" | "tiff" => Box::new(TiffVolumeWriter::create(path, sample_type)),
        "npy" => Box::new(
            NpyVolumeWriter::create(path, sample_type).keep_channel_axis(keep_channel_axis),
        ),
        other => bail!(
            "{}: cannot write `.{other}`; outputs are .tif/.tiff or .npy",
            path.display()
        ),
    })
}

/// Reads a whole file (TIFF, `.npy`, PNG).
pub fn read_whole(path: &Path) -> Result<Volume> {
    if !path.is_file() {
        bail!("{}: no such file", path.display());
    }
    let v = match extension(path).as_str() {
        "png" => read_png(path),
        "tif" | "tiff" | "npy" => read_volume(path),
        other => bail!(
            "{}: unknown image format `.{other}`; this build reads {FORMATS}",
            path.display()
        ),
    };
    v.with_context(|| format!("cannot read {}", path.display()))
}
