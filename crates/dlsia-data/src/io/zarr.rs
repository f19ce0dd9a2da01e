//! Zarr v3 arrays on the filesystem (feature `zarr`, pure Rust through `zarrs`): whole-array read
//! and write, and chunked readers and writers for tiled processing of volumes larger than memory.
//!
//! An array is stored at the root of a directory store (`path/zarr.json` plus chunk files).
//! Chunks are stored uncompressed unless [`ZarrCompression`] says otherwise.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::array::{data_type, Array, ArrayBuilder, DataType};
use zarrs::filesystem::FilesystemStore;

use crate::error::{format_err, invalid, Result};
use crate::tiling::{VolumeReader, VolumeWriter};
use crate::volume::{dispatch, SampleType, Volume, VolumeData};

/// Chunk compression for written arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZarrCompression {
    /// Raw bytes (fastest).
    #[default]
    None,
    /// gzip at a level 0–9.
    Gzip(u32),
    /// Zstandard at a level (1–22; 1–3 are fast).
    Zstd(i32),
}

fn zarr_type(ty: SampleType) -> DataType {
    match ty {
        SampleType::U8 => data_type::uint8(),
        SampleType::I8 => data_type::int8(),
        SampleType::U16 => data_type::uint16(),
        SampleType::I16 => data_type::int16(),
        SampleType::U32 => data_type::uint32(),
        SampleType::I32 => data_type::int32(),
        SampleType::U64 => data_type::uint64(),
        SampleType::I64 => data_type::int64(),
        SampleType::F32 => data_type::float32(),
        SampleType::F64 => data_type::float64(),
    }
}

fn sample_type_of(path: &Path, dt: &DataType) -> Result<SampleType> {
    let all = [
        SampleType::U8,
        SampleType::I8,
        SampleType::U16,
        SampleType::I16,
        SampleType::U32,
        SampleType::I32,
        SampleType::U64,
        SampleType::I64,
        SampleType::F32,
        SampleType::F64,
    ];
    all.into_iter()
        .find(|&t| zarr_type(t) == *dt)
        .ok_or_else(|| {
            format_err(
                path,
                format!("Zarr data type {dt} is not supported; use (u)int8/16/32/64, float32 or float64"),
            )
        })
}

fn zerr(path: &Path, e: impl std::fmt::Display) -> crate::Error {
    format_err(path, format!("Zarr: {e}"))
}

fn open_store(path: &Path) -> Result<Arc<FilesystemStore>> {
    Ok(Arc::new(
        FilesystemStore::new(path).map_err(|e| zerr(path, e))?,
    ))
}

/// Creates an array of `shape` and `chunk` at the root of the directory `path`.
fn create_array(
    path: &Path,
    ty: SampleType,
    shape: &[usize],
    chunk: &[usize],
    compression: ZarrCompression,
) -> Result<Array<FilesystemStore>> {
    if chunk.len() != shape.len() || chunk.contains(&0) {
        return Err(invalid(
            "Zarr chunk shape",
            format!("chunk {chunk:?} must have one positive entry per axis of {shape:?}"),
        ));
    }
    std::fs::create_dir_all(path).map_err(|e| crate::error::io_err(path, e))?;
    let store = open_store(path)?;
    let shape: Vec<u64> = shape.iter().map(|&v| v as u64).collect();
    let chunk: Vec<u64> = chunk.iter().map(|&v| v as u64).collect();
    macro_rules! builder {
        ($zero:expr) => {
            ArrayBuilder::new(shape.clone(), chunk.clone(), zarr_type(ty), $zero)
        };
    }
    let mut b = match ty {
        SampleType::U8 => builder!(0u8),
        SampleType::I8 => builder!(0i8),
        SampleType::U16 => builder!(0u16),
        SampleType::I16 => builder!(0i16),
        SampleType::U32 => builder!(0u32),
        SampleType::I32 => builder!(0i32),
        SampleType::U64 => builder!(0u64),
        SampleType::I64 => builder!(0i64),
        SampleType::F32 => builder!(0f32),
        SampleType::F64 => builder!(0f64),
    };
    match compression {
        ZarrCompression::None => {}
        ZarrCompression::Gzip(level) => {
            let c = zarrs::array::codec::GzipCodec::new(level).map_err(|e| zerr(path, e))?;
            b.bytes_to_bytes_codecs(vec![Arc::new(c)]);
        }
        ZarrCompression::Zstd(level) => {
            b.bytes_to_bytes_codecs(vec![Arc::new(zarrs::array::codec::ZstdCodec::new(
                level, false,
            ))]);
        }
    }
    let array = b.build(store, "/").map_err(|e| zerr(path, e))?;
    array.store_metadata().map_err(|e| zerr(path, e))?;
    Ok(array)
}

fn ranges(start: &[usize], size: &[usize]) -> Vec<Range<u64>> {
    start
        .iter()
        .zip(size)
        .map(|(&s, &n)| s as u64..(s + n) as u64)
        .collect()
}

fn retrieve(
    path: &Path,
    array: &Array<FilesystemStore>,
    ty: SampleType,
    subset: Vec<Range<u64>>,
) -> Result<VolumeData> {
    macro_rules! get {
        ($t:ty, $v:ident) => {
            VolumeData::$v(
                array
                    .retrieve_array_subset::<Vec<$t>>(&subset)
                    .map_err(|e| zerr(path, e))?,
            )
        };
    }
    Ok(match ty {
        SampleType::U8 => get!(u8, U8),
        SampleType::I8 => get!(i8, I8),
        SampleType::U16 => get!(u16, U16),
        SampleType::I16 => get!(i16, I16),
        SampleType::U32 => get!(u32, U32),
        SampleType::I32 => get!(i32, I32),
        SampleType::U64 => get!(u64, U64),
        SampleType::I64 => get!(i64, I64),
        SampleType::F32 => get!(f32, F32),
        SampleType::F64 => get!(f64, F64),
    })
}

fn store(
    path: &Path,
    array: &Array<FilesystemStore>,
    subset: Vec<Range<u64>>,
    data: &VolumeData,
) -> Result<()> {
    dispatch!(data, v => array.store_array_subset(&subset, v.as_slice())).map_err(|e| zerr(path, e))
}

/// Writes a volume as a Zarr v3 array (root of the directory `path`) with chunks of `chunk`.
pub fn write_zarr(
    path: impl AsRef<Path>,
    volume: &Volume,
    chunk: &[usize],
    compression: ZarrCompression,
) -> Result<()> {
    let path = path.as_ref();
    let array = create_array(
        path,
        volume.sample_type(),
        volume.shape(),
        chunk,
        compression,
    )?;
    let zeros = vec![0; volume.shape().len()];
    store(path, &array, ranges(&zeros, volume.shape()), volume.data())
}

fn open_array(path: &Path) -> Result<(Array<FilesystemStore>, SampleType, Vec<usize>)> {
    let store = open_store(path)?;
    let array = Array::open(store, "/").map_err(|e| zerr(path, e))?;
    let ty = sample_type_of(path, array.data_type())?;
    let shape = array
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format_err(path, "dimension too large")))
        .collect::<Result<Vec<_>>>()?;
    Ok((array, ty, shape))
}

/// Reads a whole Zarr array stored at the root of the directory `path`.
pub fn read_zarr(path: impl AsRef<Path>) -> Result<Volume> {
    let path = path.as_ref();
    let (array, ty, shape) = open_array(path)?;
    let zeros = vec![0; shape.len()];
    let data = retrieve(path, &array, ty, ranges(&zeros, &shape))?;
    Volume::from_data(shape, data)
}

/// Reads regions of a Zarr array chunk by chunk.
pub struct ZarrVolumeReader {
    path: PathBuf,
    array: Array<FilesystemStore>,
    sample_type: SampleType,
    shape: Vec<usize>,
    channels_first: bool,
}

impl ZarrVolumeReader {
    /// Opens a single-channel array: `(spatial..)` reads as `(1, spatial..)`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (array, sample_type, shape) = open_array(&path)?;
        Ok(Self {
            path,
            array,
            sample_type,
            shape,
            channels_first: false,
        })
    }

    /// Opens an array whose first axis is the channel axis.
    pub fn open_channels_first(path: impl AsRef<Path>) -> Result<Self> {
        let mut r = Self::open(path)?;
        if r.shape.len() < 2 {
            return Err(format_err(
                &r.path,
                "no spatial axis after the channel axis",
            ));
        }
        r.channels_first = true;
        Ok(r)
    }
}

impl VolumeReader for ZarrVolumeReader {
    fn shape(&self) -> Vec<usize> {
        if self.channels_first {
            self.shape.clone()
        } else {
            let mut s = vec![1];
            s.extend(&self.shape);
            s
        }
    }

    fn read_region(&mut self, start: &[usize], size: &[usize], out: &mut [f32]) -> Result<()> {
        let shape = self.shape();
        crate::tiling::check_region_pub(
            "ZarrVolumeReader::read_region",
            &shape,
            start,
            size,
            out.len(),
        )?;
        let subset = if self.channels_first {
            let mut r = Vec::with_capacity(start.len() + 1);
            r.push(0..shape[0] as u64);
            r.extend(ranges(start, size));
            r
        } else {
            ranges(start, size)
        };
        let data = retrieve(&self.path, &self.array, self.sample_type, subset)?;
        dispatch!(&data, v => {
            for (o, x) in out.iter_mut().zip(v) {
                *o = crate::Element::to_f32(*x);
            }
        });
        Ok(())
    }
}

/// Streams output into a Zarr array, one slab (a chunk row along the first spatial axis) at a
/// time. A single output channel is written as `(spatial..)` unless the channel axis is kept.
pub struct ZarrVolumeWriter {
    path: PathBuf,
    sample_type: SampleType,
    chunk: Vec<usize>,
    compression: ZarrCompression,
    keep_channel_axis: bool,
    array: Option<Array<FilesystemStore>>,
    shape: Vec<usize>,
}

impl ZarrVolumeWriter {
    /// A writer creating an array at `path` with spatial chunks `chunk` (one entry, repeated,
    /// or one per spatial axis) once the output shape is known.
    pub fn create(path: impl AsRef<Path>, sample_type: SampleType, chunk: &[usize]) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            sample_type,
            chunk: chunk.to_vec(),
            compression: ZarrCompression::None,
            keep_channel_axis: false,
            array: None,
            shape: Vec::new(),
        }
    }

    /// Sets the chunk compression.
    pub fn with_compression(mut self, compression: ZarrCompression) -> Self {
        self.compression = compression;
        self
    }

    /// Always write the channel axis, even for one channel.
    pub fn keep_channel_axis(mut self, keep: bool) -> Self {
        self.keep_channel_axis = keep;
        self
    }

    fn squeeze(&self) -> bool {
        self.shape[0] == 1 && !self.keep_channel_axis
    }
}

impl VolumeWriter for ZarrVolumeWriter {
    fn begin(&mut self, shape: &[usize]) -> Result<()> {
        self.shape = shape.to_vec();
        let spatial = &shape[1..];
        let chunk: Vec<usize> = match self.chunk.len() {
            1 => vec![self.chunk[0]; spatial.len()],
            n if n == spatial.len() => self.chunk.clone(),
            n => {
                return Err(invalid(
                    "ZarrVolumeWriter",
                    format!("{n} chunk sizes for {} spatial axes", spatial.len()),
                ))
            }
        };
        let chunk: Vec<usize> = chunk
            .iter()
            .zip(spatial)
            .map(|(&c, &s)| c.min(s).max(1))
            .collect();
        let (ashape, achunk) = if self.squeeze() {
            (spatial.to_vec(), chunk)
        } else {
            let mut c = vec![1];
            c.extend(chunk);
            (shape.to_vec(), c)
        };
        self.array = Some(create_array(
            &self.path,
            self.sample_type,
            &ashape,
            &achunk,
            self.compression,
        )?);
        Ok(())
    }

    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> Result<()> {
        let array = self
            .array
            .as_ref()
            .ok_or_else(|| invalid("ZarrVolumeWriter", "write_slab before begin"))?;
        let c = self.shape[0];
        let rest = &self.shape[2..];
        let per_c = data.len() / c.max(1);
        for ch in 0..c {
            let mut subset = Vec::new();
            if !self.squeeze() {
                subset.push(ch as u64..ch as u64 + 1);
            }
            subset.push(start as u64..(start + planes) as u64);
            subset.extend(rest.iter().map(|&r| 0..r as u64));
            let vals = crate::tiling::convert_f32_pub(
                &data[ch * per_c..(ch + 1) * per_c],
                self.sample_type,
            );
            store(&self.path, array, subset, &vals)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.array = None;
        Ok(())
    }
}
