//! The two ends of tiled processing: a [`VolumeReader`] that hands out regions, and a
//! [`VolumeWriter`] that receives finished slabs in order. In-memory implementations live here;
//! file-backed ones in [`super::files`].

use candle_core::{Device, Tensor};

use crate::error::{invalid, shape_err, Result};
use crate::volume::{Element, SampleType, Volume, VolumeData};

/// A `(C, spatial..)` array that can be read one box at a time.
pub trait VolumeReader {
    /// The full shape, channels first: `(C, spatial..)`.
    fn shape(&self) -> Vec<usize>;

    /// Reads every channel of the spatial box `[start, start + size)` as `f32` into `out`, laid
    /// out `(C, size..)` row-major.
    fn read_region(&mut self, start: &[usize], size: &[usize], out: &mut [f32]) -> Result<()>;
}

/// A `(C, spatial..)` array written slab by slab along the first spatial axis.
pub trait VolumeWriter {
    /// Called once, before the first slab, with the full output shape `(C, spatial..)`.
    fn begin(&mut self, shape: &[usize]) -> Result<()>;

    /// Receives the finished planes `[start, start + planes)` of the first spatial axis, laid out
    /// `(C, planes, rest..)` row-major. Slabs arrive in order and cover the axis exactly once.
    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> Result<()>;

    /// Called once after the last slab.
    fn finish(&mut self) -> Result<()>;
}

impl<T: VolumeReader + ?Sized> VolumeReader for &mut T {
    fn shape(&self) -> Vec<usize> {
        (**self).shape()
    }
    fn read_region(&mut self, start: &[usize], size: &[usize], out: &mut [f32]) -> Result<()> {
        (**self).read_region(start, size, out)
    }
}

impl<T: VolumeWriter + ?Sized> VolumeWriter for &mut T {
    fn begin(&mut self, shape: &[usize]) -> Result<()> {
        (**self).begin(shape)
    }
    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> Result<()> {
        (**self).write_slab(start, planes, data)
    }
    fn finish(&mut self) -> Result<()> {
        (**self).finish()
    }
}

/// Checks a region request against a `(C, spatial..)` shape; returns the number of values.
pub(crate) fn check_region(
    what: &'static str,
    shape: &[usize],
    start: &[usize],
    size: &[usize],
    out_len: usize,
) -> Result<()> {
    let n = shape.len() - 1;
    if start.len() != n || size.len() != n {
        return Err(invalid(
            what,
            format!("region of rank {} for {n} spatial axes", start.len()),
        ));
    }
    for ax in 0..n {
        if start[ax] + size[ax] > shape[ax + 1] {
            return Err(invalid(
                what,
                format!(
                    "region {start:?}+{size:?} leaves the volume {shape:?} on spatial axis {ax}"
                ),
            ));
        }
    }
    let need = shape[0] * size.iter().product::<usize>();
    if out_len != need {
        return Err(invalid(
            what,
            format!("output buffer holds {out_len} values, the region has {need}"),
        ));
    }
    Ok(())
}

/// Copies the box `[start, start+size)` of a row-major array of `shape` into `out`.
pub(crate) fn copy_box(
    shape: &[usize],
    data: &[f32],
    start: &[usize],
    size: &[usize],
    out: &mut [f32],
) {
    let n = shape.len();
    let mut strides = vec![1usize; n];
    for i in (0..n.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let inner = size[n - 1];
    let rows: usize = size[..n - 1].iter().product();
    let mut idx = vec![0usize; n - 1];
    for r in 0..rows {
        let mut off = start[n - 1];
        for ax in 0..n - 1 {
            off += (start[ax] + idx[ax]) * strides[ax];
        }
        out[r * inner..(r + 1) * inner].copy_from_slice(&data[off..off + inner]);
        for ax in (0..n - 1).rev() {
            idx[ax] += 1;
            if idx[ax] < size[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
}

/// An in-memory `(C, spatial..)` `f32` array.
#[derive(Debug, Clone)]
pub struct ArrayReader {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl ArrayReader {
    /// From a `(C, spatial..)` shape and row-major values.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        if shape.len() < 2 || shape.iter().product::<usize>() != data.len() {
            return Err(shape_err(
                "ArrayReader::new",
                format!("(C, spatial..) holding {} values", data.len()),
                &shape,
            ));
        }
        Ok(Self { shape, data })
    }

    /// From a `(C, spatial..)` tensor.
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let data = t
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        Self::new(t.dims().to_vec(), data)
    }

    /// From a single-channel volume (`(spatial..)` becomes `(1, spatial..)`).
    pub fn from_volume(v: &Volume) -> Result<Self> {
        let mut shape = vec![1];
        shape.extend(v.shape());
        Self::new(shape, v.to_f32_vec())
    }
}

impl VolumeReader for ArrayReader {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn read_region(&mut self, start: &[usize], size: &[usize], out: &mut [f32]) -> Result<()> {
        check_region(
            "ArrayReader::read_region",
            &self.shape,
            start,
            size,
            out.len(),
        )?;
        let mut full_start = vec![0];
        full_start.extend(start);
        let mut full_size = vec![self.shape[0]];
        full_size.extend(size);
        copy_box(&self.shape, &self.data, &full_start, &full_size, out);
        Ok(())
    }
}

/// Collects the output in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryWriter {
    shape: Vec<usize>,
    data: Vec<f32>,
    written: usize,
}

impl MemoryWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The output shape `(C, spatial..)` (empty before `begin`).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The output as a `(C, spatial..)` tensor.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.data.clone(),
            self.shape.as_slice(),
            device,
        )?)
    }

    /// The output as an `f32` volume.
    pub fn into_volume(self) -> Result<Volume> {
        Volume::from_data(self.shape, VolumeData::F32(self.data))
    }
}

impl VolumeWriter for MemoryWriter {
    fn begin(&mut self, shape: &[usize]) -> Result<()> {
        self.shape = shape.to_vec();
        self.data = vec![0.0; shape.iter().product()];
        self.written = 0;
        Ok(())
    }

    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> Result<()> {
        let c = self.shape[0];
        let d0 = self.shape[1];
        let plane: usize = self.shape[2..].iter().product();
        if start + planes > d0 || data.len() != c * planes * plane {
            return Err(invalid(
                "MemoryWriter::write_slab",
                format!(
                    "slab {start}+{planes} with {} values for shape {:?}",
                    data.len(),
                    self.shape
                ),
            ));
        }
        for ch in 0..c {
            let dst = (ch * d0 + start) * plane;
            let src = ch * planes * plane;
            self.data[dst..dst + planes * plane].copy_from_slice(&data[src..src + planes * plane]);
        }
        self.written += planes;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.shape.len() > 1 && self.written != self.shape[1] {
            return Err(invalid(
                "MemoryWriter::finish",
                format!("{} of {} planes were written", self.written, self.shape[1]),
            ));
        }
        Ok(())
    }
}

/// Reduces `C` channels (class probabilities or logits) to one channel holding the index of the
/// largest value, before handing slabs to `inner`: a segmentation is written without ever storing
/// the per-class volume.
#[derive(Debug)]
pub struct ArgmaxWriter<W> {
    inner: W,
    channels: usize,
}

impl<W: VolumeWriter> ArgmaxWriter<W> {
    /// Wraps `inner`, which receives `(1, spatial..)`.
    pub fn new(inner: W) -> Self {
        Self { inner, channels: 0 }
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: VolumeWriter> VolumeWriter for ArgmaxWriter<W> {
    fn begin(&mut self, shape: &[usize]) -> Result<()> {
        self.channels = shape[0];
        let mut s = shape.to_vec();
        s[0] = 1;
        self.inner.begin(&s)
    }

    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> Result<()> {
        let c = self.channels.max(1);
        let n = data.len() / c;
        let mut out = vec![0f32; n];
        for (i, o) in out.iter_mut().enumerate() {
            let mut best = 0;
            let mut bv = f32::NEG_INFINITY;
            for ch in 0..c {
                let v = data[ch * n + i];
                if v > bv {
                    bv = v;
                    best = ch;
                }
            }
            *o = best as f32;
        }
        self.inner.write_slab(start, planes, &out)
    }

    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
}

/// Converts `f32` values to `ty`, rounding and saturating for integer types.
pub(crate) fn convert_f32(values: &[f32], ty: SampleType) -> VolumeData {
    fn conv<T: Element>(values: &[f32]) -> VolumeData {
        T::wrap(values.iter().map(|&v| T::from_f64(v as f64)).collect())
    }
    match ty {
        SampleType::U8 => conv::<u8>(values),
        SampleType::I8 => conv::<i8>(values),
        SampleType::U16 => conv::<u16>(values),
        SampleType::I16 => conv::<i16>(values),
        SampleType::U32 => conv::<u32>(values),
        SampleType::I32 => conv::<i32>(values),
        SampleType::U64 => conv::<u64>(values),
        SampleType::I64 => conv::<i64>(values),
        SampleType::F32 => VolumeData::F32(values.to_vec()),
        SampleType::F64 => conv::<f64>(values),
    }
}
