//! File-backed readers and writers for tiled processing: memory-mapped `.npy` and page-cached
//! TIFF stacks in, streamed `.npy` and TIFF out.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tiff::decoder::Decoder;

use super::stream::{check_region, convert_f32, VolumeReader, VolumeWriter};
use crate::error::{format_err, invalid, io_err, Result};
use crate::io::npy::{write_header, NpyMap};
use crate::io::tiff::{open_decoder, read_page, tiff_err, TiffStackWriter};
use crate::volume::SampleType;

/// Reads regions of a memory-mapped `.npy` array; only the pages touched are loaded, so arrays
/// larger than memory work.
pub struct NpyVolumeReader {
    map: NpyMap,
    channels_first: bool,
    released_planes: usize,
}

impl NpyVolumeReader {
    /// Opens a single-channel array: shape `(spatial..)` reads as `(1, spatial..)`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            map: NpyMap::open(path)?,
            channels_first: false,
            released_planes: 0,
        })
    }

    /// Opens an array whose first axis is the channel axis: `(C, spatial..)`.
    pub fn open_channels_first(path: impl AsRef<Path>) -> Result<Self> {
        let map = NpyMap::open(path)?;
        if map.info().shape.len() < 2 {
            return Err(format_err(
                map.path(),
                format!(
                    "shape {:?} has no spatial axis after the channel axis",
                    map.info().shape
                ),
            ));
        }
        Ok(Self {
            map,
            channels_first: true,
            released_planes: 0,
        })
    }

    /// The underlying map.
    pub fn map(&self) -> &NpyMap {
        &self.map
    }
}

impl NpyVolumeReader {
    /// Tiled passes visit planes of the first spatial axis in order: once a window starts at
    /// plane `z`, the planes before it are dropped from the resident set (C order only).
    fn release_planes_before(&mut self, z: usize, shape: &[usize]) {
        let info = self.map.info();
        if info.fortran_order || z < self.released_planes + 8 {
            return;
        }
        let es = info.sample_type.size();
        let plane: usize = shape[2..].iter().product::<usize>() * es;
        let chan = plane * shape[1];
        for c in 0..shape[0] {
            let base = info.data_offset + c * chan;
            self.map
                .release(base + self.released_planes * plane, base + z * plane);
        }
        self.released_planes = z;
    }
}

impl VolumeReader for NpyVolumeReader {
    fn shape(&self) -> Vec<usize> {
        let s = &self.map.info().shape;
        if self.channels_first {
            s.clone()
        } else {
            let mut v = vec![1];
            v.extend(s);
            v
        }
    }

    fn read_region(&mut self, start: &[usize], size: &[usize], out: &mut [f32]) -> Result<()> {
        let shape = self.shape();
        check_region(
            "NpyVolumeReader::read_region",
            &shape,
            start,
            size,
            out.len(),
        )?;
        self.release_planes_before(start[0], &shape);
        if self.channels_first {
            let mut s = vec![0];
            s.extend(start);
            let mut z = vec![shape[0]];
            z.extend(size);
            self.map.read_box_f32(&s, &z, out)
        } else {
            self.map.read_box_f32(start, size, out)
        }
    }
}

/// Streams output into a `.npy` file (little endian, C order) in a chosen sample type.
///
/// Values are rounded and saturated for integer types. A single output channel is written as
/// `(spatial..)` unless [`NpyVolumeWriter::keep_channel_axis`] is set.
pub struct NpyVolumeWriter {
    path: PathBuf,
    sample_type: SampleType,
    keep_channel_axis: bool,
    file: Option<File>,
    shape: Vec<usize>,
    data_offset: u64,
}

impl NpyVolumeWriter {
    /// A writer creating `path` when the output shape is known.
    pub fn create(path: impl AsRef<Path>, sample_type: SampleType) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            sample_type,
            keep_channel_axis: false,
            file: None,
            shape: Vec::new(),
            data_offset: 0,
        }
    }

    /// Always write the channel axis, even for one channel.
    pub fn keep_channel_axis(mut self, keep: bool) -> Self {
        self.keep_channel_axis = keep;
        self
    }
}

impl VolumeWriter for NpyVolumeWriter {
    fn begin(&mut self, shape: &[usize]) -> Result<()> {
        let path = self.path.clone();
        let mut file = File::create(&path).map_err(|e| io_err(&path, e))?;
        let header_shape = if shape[0] == 1 && !self.keep_channel_axis {
            &shape[1..]
        } else {
            shape
        };
        let mut header = Vec::new();
        write_header(&path, &mut header, self.sample_type, header_shape)?;
        file.write_all(&header).map_err(|e| io_err(&path, e))?;
        let total = header.len() as u64
            + (shape.iter().product::<usize>() * self.sample_type.size()) as u64;
        file.set_len(total).map_err(|e| io_err(&path, e))?;
        self.data_offset = header.len() as u64;
        self.shape = shape.to_vec();
        self.file = Some(file);
        Ok(())
    }

    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| invalid("NpyVolumeWriter", "write_slab before begin"))?;
        let (c, d0) = (self.shape[0], self.shape[1]);
        let plane: usize = self.shape[2..].iter().product();
        let es = self.sample_type.size() as u64;
        let per_c = planes * plane;
        for ch in 0..c {
            let bytes =
                convert_f32(&data[ch * per_c..(ch + 1) * per_c], self.sample_type).to_le_bytes();
            let off = self.data_offset + (((ch * d0 + start) * plane) as u64) * es;
            file.seek(SeekFrom::Start(off))
                .and_then(|_| file.write_all(&bytes))
                .map_err(|e| io_err(&self.path, e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_data().map_err(|e| io_err(&self.path, e))?;
        }
        Ok(())
    }
}

/// Reads regions of a TIFF stack `(D, H, W)` (or a single page `(H, W)`), decoding pages on
/// demand and keeping the most recent ones in a cache.
pub struct TiffVolumeReader {
    path: PathBuf,
    decoder: Decoder<BufReader<File>>,
    pages: usize,
    height: usize,
    width: usize,
    cache: VecDeque<(usize, Vec<f32>)>,
    capacity: usize,
}

impl TiffVolumeReader {
    /// Opens a stack; `cache_pages` decoded pages are kept (use at least the window depth).
    pub fn open(path: impl AsRef<Path>, cache_pages: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (pages, height, width, _) = crate::io::tiff::tiff_info(&path)?;
        let decoder = open_decoder(&path)?;
        Ok(Self {
            path,
            decoder,
            pages,
            height,
            width,
            cache: VecDeque::new(),
            capacity: cache_pages.max(1),
        })
    }

    fn page(&mut self, z: usize) -> Result<&[f32]> {
        if let Some(pos) = self.cache.iter().position(|(k, _)| *k == z) {
            let item = self.cache.remove(pos).expect("position is valid");
            self.cache.push_back(item);
        } else {
            self.decoder
                .seek_to_image(z)
                .map_err(|e| tiff_err(&self.path, e))?;
            let (h, w, data) = read_page(&self.path, &mut self.decoder, z)?;
            if (h, w) != (self.height, self.width) {
                return Err(format_err(
                    &self.path,
                    format!(
                        "page {z} is {h}×{w}, page 0 is {}×{}",
                        self.height, self.width
                    ),
                ));
            }
            let vals = crate::Volume::from_data(vec![h * w], data)?.to_f32_vec();
            if self.cache.len() >= self.capacity {
                self.cache.pop_front();
            }
            self.cache.push_back((z, vals));
        }
        Ok(&self.cache.back().expect("just pushed").1)
    }
}

impl VolumeReader for TiffVolumeReader {
    fn shape(&self) -> Vec<usize> {
        if self.pages == 1 {
            vec![1, self.height, self.width]
        } else {
            vec![1, self.pages, self.height, self.width]
        }
    }

    fn read_region(&mut self, start: &[usize], size: &[usize], out: &mut [f32]) -> Result<()> {
        let shape = self.shape();
        check_region(
            "TiffVolumeReader::read_region",
            &shape,
            start,
            size,
            out.len(),
        )?;
        let (z0, nz, y0, ny, x0, nx) = if self.pages == 1 {
            (0, 1, start[0], size[0], start[1], size[1])
        } else {
            (start[0], size[0], start[1], size[1], start[2], size[2])
        };
        let w = self.width;
        for dz in 0..nz {
            let page = self.page(z0 + dz)?;
            for dy in 0..ny {
                let src = &page[(y0 + dy) * w + x0..(y0 + dy) * w + x0 + nx];
                let o = (dz * ny + dy) * nx;
                out[o..o + nx].copy_from_slice(src);
            }
        }
        Ok(())
    }
}

/// Streams output into a TIFF stack in a chosen sample type.
///
/// 3-D output `(C, D, H, W)` is written as `D × C` pages (page `z·C + c`), each plane as soon as
/// it is final; 2-D output `(C, H, W)` is held until the end and written as `C` pages.
pub struct TiffVolumeWriter {
    path: PathBuf,
    sample_type: SampleType,
    shape: Vec<usize>,
    stack: Option<TiffStackWriter>,
    pending: Vec<f32>,
}

impl TiffVolumeWriter {
    /// A writer creating `path` when the output shape is known.
    pub fn create(path: impl AsRef<Path>, sample_type: SampleType) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            sample_type,
            shape: Vec::new(),
            stack: None,
            pending: Vec::new(),
        }
    }
}

impl VolumeWriter for TiffVolumeWriter {
    fn begin(&mut self, shape: &[usize]) -> Result<()> {
        if shape.len() != 3 && shape.len() != 4 {
            return Err(invalid(
                "TiffVolumeWriter",
                format!("TIFF holds 2-D or 3-D output, got shape {shape:?}"),
            ));
        }
        let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let bytes = (shape.iter().product::<usize>() * self.sample_type.size()) as u64;
        self.stack = Some(TiffStackWriter::create_with_size_hint(
            &self.path,
            self.sample_type,
            h,
            w,
            bytes,
        )?);
        self.shape = shape.to_vec();
        if shape.len() == 3 {
            self.pending = vec![0.0; shape.iter().product()];
        }
        Ok(())
    }

    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> Result<()> {
        let stack = self
            .stack
            .as_mut()
            .ok_or_else(|| invalid("TiffVolumeWriter", "write_slab before begin"))?;
        let c = self.shape[0];
        if self.shape.len() == 3 {
            // 2-D: slabs are rows; keep them until the pages are complete.
            let (h, w) = (self.shape[1], self.shape[2]);
            for ch in 0..c {
                let dst = (ch * h + start) * w;
                let src = ch * planes * w;
                self.pending[dst..dst + planes * w].copy_from_slice(&data[src..src + planes * w]);
            }
            return Ok(());
        }
        let plane = self.shape[2] * self.shape[3];
        for i in 0..planes {
            for ch in 0..c {
                let off = (ch * planes + i) * plane;
                stack.write_page(&convert_f32(&data[off..off + plane], self.sample_type))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(mut stack) = self.stack.take() {
            if self.shape.len() == 3 {
                let plane = self.shape[1] * self.shape[2];
                for ch in 0..self.shape[0] {
                    stack.write_page(&convert_f32(
                        &self.pending[ch * plane..(ch + 1) * plane],
                        self.sample_type,
                    ))?;
                }
                self.pending = Vec::new();
            }
            stack.finish()?;
        }
        Ok(())
    }
}
