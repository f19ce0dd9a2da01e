//! HDF5 datasets by path (feature `hdf5`, needs the C libhdf5, e.g. Debian `libhdf5-dev`):
//! whole-dataset read and write, and hyperslab readers and writers for tiled processing.

use std::path::{Path, PathBuf};

use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5_metno::{Dataset, File, H5Type, Hyperslab, Selection, SliceOrIndex};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{format_err, invalid, Result};
use crate::tiling::{VolumeReader, VolumeWriter};
use crate::volume::{dispatch, Element, SampleType, Volume, VolumeData};

fn herr(path: &Path, e: impl std::fmt::Display) -> crate::Error {
    format_err(path, format!("HDF5: {e}"))
}

fn sample_type_of(path: &Path, ds: &Dataset, name: &str) -> Result<SampleType> {
    let td = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| herr(path, e))?;
    Ok(match td {
        TypeDescriptor::Unsigned(IntSize::U1) | TypeDescriptor::Boolean => SampleType::U8,
        TypeDescriptor::Unsigned(IntSize::U2) => SampleType::U16,
        TypeDescriptor::Unsigned(IntSize::U4) => SampleType::U32,
        TypeDescriptor::Unsigned(IntSize::U8) => SampleType::U64,
        TypeDescriptor::Integer(IntSize::U1) => SampleType::I8,
        TypeDescriptor::Integer(IntSize::U2) => SampleType::I16,
        TypeDescriptor::Integer(IntSize::U4) => SampleType::I32,
        TypeDescriptor::Integer(IntSize::U8) => SampleType::I64,
        TypeDescriptor::Float(FloatSize::U4) => SampleType::F32,
        TypeDescriptor::Float(FloatSize::U8) => SampleType::F64,
        other => {
            return Err(format_err(
                path,
                format!("dataset `{name}` has type {other:?}; only plain integer and float datasets are supported"),
            ))
        }
    })
}

fn open_dataset(path: &Path, name: &str) -> Result<(Dataset, SampleType)> {
    let file = File::open(path).map_err(|e| herr(path, e))?;
    let ds = file
        .dataset(name)
        .map_err(|e| format_err(path, format!("no dataset `{name}`: {e}")))?;
    let ty = sample_type_of(path, &ds, name)?;
    Ok((ds, ty))
}

fn hyperslab(start: &[usize], size: &[usize]) -> Selection {
    let s: Vec<SliceOrIndex> = start
        .iter()
        .zip(size)
        .map(|(&st, &n)| SliceOrIndex::SliceCount {
            start: st,
            step: 1,
            count: n,
            block: 1,
        })
        .collect();
    Selection::from(Hyperslab::from(s))
}

fn read_box(path: &Path, ds: &Dataset, ty: SampleType, sel: Selection) -> Result<VolumeData> {
    fn get<T: H5Type + Element>(path: &Path, ds: &Dataset, sel: Selection) -> Result<VolumeData> {
        let a: ArrayD<T> = ds
            .read_slice::<T, _, IxDyn>(sel)
            .map_err(|e| herr(path, e))?;
        Ok(T::wrap(a.iter().copied().collect()))
    }
    match ty {
        SampleType::U8 => get::<u8>(path, ds, sel),
        SampleType::I8 => get::<i8>(path, ds, sel),
        SampleType::U16 => get::<u16>(path, ds, sel),
        SampleType::I16 => get::<i16>(path, ds, sel),
        SampleType::U32 => get::<u32>(path, ds, sel),
        SampleType::I32 => get::<i32>(path, ds, sel),
        SampleType::U64 => get::<u64>(path, ds, sel),
        SampleType::I64 => get::<i64>(path, ds, sel),
        SampleType::F32 => get::<f32>(path, ds, sel),
        SampleType::F64 => get::<f64>(path, ds, sel),
    }
}

fn write_box(
    path: &Path,
    ds: &Dataset,
    data: &VolumeData,
    shape: &[usize],
    sel: Selection,
) -> Result<()> {
    dispatch!(data, v => {
        let view = ArrayViewD::from_shape(IxDyn(shape), v.as_slice())
            .map_err(|e| invalid("HDF5 write", e.to_string()))?;
        ds.write_slice(view, sel).map_err(|e| herr(path, e))
    })
}

/// Reads the dataset `name` (a path such as `/exchange/data`) of an HDF5 file.
pub fn read_hdf5(path: impl AsRef<Path>, name: &str) -> Result<Volume> {
    let path = path.as_ref();
    let (ds, ty) = open_dataset(path, name)?;
    let shape = ds.shape();
    let zeros = vec![0; shape.len()];
    let data = if shape.is_empty() {
        return Err(format_err(
            path,
            format!("dataset `{name}` is a scalar, not an image"),
        ));
    } else {
        read_box(path, &ds, ty, hyperslab(&zeros, &shape))?
    };
    Volume::from_data(shape, data)
}

fn create_dataset(
    path: &Path,
    name: &str,
    ty: SampleType,
    shape: &[usize],
    append: bool,
) -> Result<Dataset> {
    let file = if append && path.exists() {
        File::append(path)
    } else {
        File::create(path)
    }
    .map_err(|e| herr(path, e))?;
    // create intermediate groups
    let parts: Vec<&str> = name.trim_start_matches('/').split('/').collect();
    let mut group = file.group("/").map_err(|e| herr(path, e))?;
    for g in &parts[..parts.len().saturating_sub(1)] {
        group = match group.group(g) {
            Ok(x) => x,
            Err(_) => group.create_group(g).map_err(|e| herr(path, e))?,
        };
    }
    let leaf = parts.last().copied().unwrap_or(name);
    macro_rules! make {
        ($t:ty) => {
            group
                .new_dataset::<$t>()
                .shape(shape.to_vec())
                .create(leaf)
                .map_err(|e| herr(path, e))
        };
    }
    match ty {
        SampleType::U8 => make!(u8),
        SampleType::I8 => make!(i8),
        SampleType::U16 => make!(u16),
        SampleType::I16 => make!(i16),
        SampleType::U32 => make!(u32),
        SampleType::I32 => make!(i32),
        SampleType::U64 => make!(u64),
        SampleType::I64 => make!(i64),
        SampleType::F32 => make!(f32),
        SampleType::F64 => make!(f64),
    }
}

/// Writes a volume as dataset `name` of an HDF5 file, adding it to the file if it exists.
pub fn write_hdf5(path: impl AsRef<Path>, name: &str, volume: &Volume) -> Result<()> {
    let path = path.as_ref();
    let ds = create_dataset(path, name, volume.sample_type(), volume.shape(), true)?;
    let zeros = vec![0; volume.shape().len()];
    write_box(
        path,
        &ds,
        volume.data(),
        volume.shape(),
        hyperslab(&zeros, volume.shape()),
    )
}

/// Reads regions of an HDF5 dataset by hyperslab.
pub struct Hdf5VolumeReader {
    path: PathBuf,
    ds: Dataset,
    ty: SampleType,
    shape: Vec<usize>,
    channels_first: bool,
}

impl Hdf5VolumeReader {
    /// Opens a single-channel dataset: `(spatial..)` reads as `(1, spatial..)`.
    pub fn open(path: impl AsRef<Path>, name: &str) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (ds, ty) = open_dataset(&path, name)?;
        let shape = ds.shape();
        if shape.is_empty() {
            return Err(format_err(&path, format!("dataset `{name}` is a scalar")));
        }
        Ok(Self {
            path,
            ds,
            ty,
            shape,
            channels_first: false,
        })
    }

    /// Opens a dataset whose first axis is the channel axis.
    pub fn open_channels_first(path: impl AsRef<Path>, name: &str) -> Result<Self> {
        let mut r = Self::open(path, name)?;
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

impl VolumeReader for Hdf5VolumeReader {
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
            "Hdf5VolumeReader::read_region",
            &shape,
            start,
            size,
            out.len(),
        )?;
        let sel = if self.channels_first {
            let mut s = vec![0];
            s.extend(start);
            let mut z = vec![shape[0]];
            z.extend(size);
            hyperslab(&s, &z)
        } else {
            hyperslab(start, size)
        };
        let data = read_box(&self.path, &self.ds, self.ty, sel)?;
        dispatch!(&data, v => {
            for (o, x) in out.iter_mut().zip(v) {
                *o = x.to_f32();
            }
        });
        Ok(())
    }
}

/// Streams output into an HDF5 dataset slab by slab. A single output channel is written as
/// `(spatial..)`.
pub struct Hdf5VolumeWriter {
    path: PathBuf,
    name: String,
    sample_type: SampleType,
    ds: Option<Dataset>,
    shape: Vec<usize>,
}

impl Hdf5VolumeWriter {
    /// A writer creating dataset `name` in a new file at `path` once the output shape is known.
    pub fn create(path: impl AsRef<Path>, name: &str, sample_type: SampleType) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            name: name.to_string(),
            sample_type,
            ds: None,
            shape: Vec::new(),
        }
    }
}

impl VolumeWriter for Hdf5VolumeWriter {
    fn begin(&mut self, shape: &[usize]) -> Result<()> {
        self.shape = shape.to_vec();
        let ds_shape = if shape[0] == 1 { &shape[1..] } else { shape };
        self.ds = Some(create_dataset(
            &self.path,
            &self.name,
            self.sample_type,
            ds_shape,
            false,
        )?);
        Ok(())
    }

    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> Result<()> {
        let ds = self
            .ds
            .as_ref()
            .ok_or_else(|| invalid("Hdf5VolumeWriter", "write_slab before begin"))?;
        let c = self.shape[0];
        let rest = &self.shape[2..];
        let per_c = data.len() / c.max(1);
        for ch in 0..c {
            let (mut st, mut sz) = (Vec::new(), Vec::new());
            if c > 1 {
                st.push(ch);
                sz.push(1);
            }
            st.push(start);
            sz.push(planes);
            st.extend(rest.iter().map(|_| 0));
            sz.extend(rest);
            let vals = crate::tiling::convert_f32_pub(
                &data[ch * per_c..(ch + 1) * per_c],
                self.sample_type,
            );
            write_box(&self.path, ds, &vals, &sz, hyperslab(&st, &sz))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.ds = None;
        Ok(())
    }
}
