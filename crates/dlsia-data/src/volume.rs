//! [`Volume`]: an n-dimensional array that keeps the sample type it was stored with, the common
//! currency of the file readers and writers.
//!
//! Files hold 8/16/32/64-bit integers or floats; networks want `f32` images and `i64` labels.
//! A `Volume` keeps the stored type so that a round trip writes back exactly what was read, and
//! converts to tensors on request.
//!
//! ```
//! use dlsia_data::{Volume, SampleType};
//! let v = Volume::new(vec![2, 3], vec![0u16, 1, 2, 3, 4, 65535])?;
//! assert_eq!(v.sample_type(), SampleType::U16);
//! assert_eq!(v.to_f32_vec()[5], 65535.0);
//! # Ok::<(), dlsia_data::Error>(())
//! ```

use candle_core::{DType, Device, Tensor};

use crate::error::{invalid, shape_err, Result};

/// The type of one stored sample (pixel or voxel value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SampleType {
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 64-bit integer.
    I64,
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
}

impl SampleType {
    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            SampleType::U8 | SampleType::I8 => 1,
            SampleType::U16 | SampleType::I16 => 2,
            SampleType::U32 | SampleType::I32 | SampleType::F32 => 4,
            SampleType::U64 | SampleType::I64 | SampleType::F64 => 8,
        }
    }

    /// Whether the type is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, SampleType::F32 | SampleType::F64)
    }

    /// The NumPy type string (little endian), e.g. `<u2`.
    pub fn numpy_descr(self) -> &'static str {
        match self {
            SampleType::U8 => "|u1",
            SampleType::I8 => "|i1",
            SampleType::U16 => "<u2",
            SampleType::I16 => "<i2",
            SampleType::U32 => "<u4",
            SampleType::I32 => "<i4",
            SampleType::U64 => "<u8",
            SampleType::I64 => "<i8",
            SampleType::F32 => "<f4",
            SampleType::F64 => "<f8",
        }
    }
}

/// A plain numeric type a [`Volume`] can hold.
pub trait Element: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// Its [`SampleType`].
    const TYPE: SampleType;
    /// Converts to `f32` (large 32/64-bit integers lose precision).
    fn to_f32(self) -> f32;
    /// Converts to `f64`.
    fn to_f64(self) -> f64;
    /// Converts from `f64`: rounds to nearest for integers and saturates at the type's range;
    /// NaN becomes 0 for integer types.
    fn from_f64(v: f64) -> Self;
    /// Decodes one little-endian sample from exactly `Self::TYPE.size()` bytes.
    fn from_le_slice(b: &[u8]) -> Self;
    /// Decodes one big-endian sample from exactly `Self::TYPE.size()` bytes.
    fn from_be_slice(b: &[u8]) -> Self;
    /// Appends the little-endian bytes of this sample.
    fn push_le(self, out: &mut Vec<u8>);
    /// Wraps a vector of this type into [`VolumeData`].
    fn wrap(v: Vec<Self>) -> VolumeData;
}

macro_rules! impl_element {
    ($t:ty, $variant:ident, int) => {
        impl Element for $t {
            const TYPE: SampleType = SampleType::$variant;
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                // `as` saturates at the range and maps NaN to 0.
                v.round() as $t
            }
            fn from_le_slice(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().unwrap_or_default())
            }
            fn from_be_slice(b: &[u8]) -> Self {
                <$t>::from_be_bytes(b.try_into().unwrap_or_default())
            }
            fn push_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn wrap(v: Vec<Self>) -> VolumeData {
                VolumeData::$variant(v)
            }
        }
    };
    ($t:ty, $variant:ident, float) => {
        impl Element for $t {
            const TYPE: SampleType = SampleType::$variant;
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn from_le_slice(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().unwrap_or_default())
            }
            fn from_be_slice(b: &[u8]) -> Self {
                <$t>::from_be_bytes(b.try_into().unwrap_or_default())
            }
            fn push_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn wrap(v: Vec<Self>) -> VolumeData {
                VolumeData::$variant(v)
            }
        }
    };
}

impl_element!(u8, U8, int);
impl_element!(i8, I8, int);
impl_element!(u16, U16, int);
impl_element!(i16, I16, int);
impl_element!(u32, U32, int);
impl_element!(i32, I32, int);
impl_element!(u64, U64, int);
impl_element!(i64, I64, int);
impl_element!(f32, F32, float);
impl_element!(f64, F64, float);

/// The samples of a [`Volume`], in row-major (C) order, tagged with their type.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum VolumeData {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Runs `$body` with `$v` bound to the typed vector inside a [`VolumeData`].
macro_rules! dispatch {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            VolumeData::U8($v) => $body,
            VolumeData::I8($v) => $body,
            VolumeData::U16($v) => $body,
            VolumeData::I16($v) => $body,
            VolumeData::U32($v) => $body,
            VolumeData::I32($v) => $body,
            VolumeData::U64($v) => $body,
            VolumeData::I64($v) => $body,
            VolumeData::F32($v) => $body,
            VolumeData::F64($v) => $body,
        }
    };
}
pub(crate) use dispatch;

impl VolumeData {
    /// Number of samples.
    pub fn len(&self) -> usize {
        dispatch!(self, v => v.len())
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sample type.
    pub fn sample_type(&self) -> SampleType {
        match self {
            VolumeData::U8(_) => SampleType::U8,
            VolumeData::I8(_) => SampleType::I8,
            VolumeData::U16(_) => SampleType::U16,
            VolumeData::I16(_) => SampleType::I16,
            VolumeData::U32(_) => SampleType::U32,
            VolumeData::I32(_) => SampleType::I32,
            VolumeData::U64(_) => SampleType::U64,
            VolumeData::I64(_) => SampleType::I64,
            VolumeData::F32(_) => SampleType::F32,
            VolumeData::F64(_) => SampleType::F64,
        }
    }

    /// Converts every sample with [`Element::from_f64`] into `ty`.
    pub fn convert(&self, ty: SampleType) -> VolumeData {
        fn conv<T: Element, U: Element>(v: &[T]) -> VolumeData {
            U::wrap(v.iter().map(|x| U::from_f64(x.to_f64())).collect())
        }
        fn to<U: Element>(d: &VolumeData) -> VolumeData {
            dispatch!(d, v => conv::<_, U>(v))
        }
        if ty == self.sample_type() {
            return self.clone();
        }
        match ty {
            SampleType::U8 => to::<u8>(self),
            SampleType::I8 => to::<i8>(self),
            SampleType::U16 => to::<u16>(self),
            SampleType::I16 => to::<i16>(self),
            SampleType::U32 => to::<u32>(self),
            SampleType::I32 => to::<i32>(self),
            SampleType::U64 => to::<u64>(self),
            SampleType::I64 => to::<i64>(self),
            SampleType::F32 => to::<f32>(self),
            SampleType::F64 => to::<f64>(self),
        }
    }

    /// The samples as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.sample_type().size());
        dispatch!(self, v => v.iter().for_each(|x| x.push_le(&mut out)));
        out
    }

    /// Decodes `bytes` (little or big endian) holding samples of type `ty`.
    pub fn from_bytes(ty: SampleType, bytes: &[u8], big_endian: bool) -> VolumeData {
        fn dec<T: Element>(bytes: &[u8], be: bool) -> VolumeData {
            let n = T::TYPE.size();
            T::wrap(
                bytes
                    .chunks_exact(n)
                    .map(|c| {
                        if be {
                            T::from_be_slice(c)
                        } else {
                            T::from_le_slice(c)
                        }
                    })
                    .collect(),
            )
        }
        match ty {
            SampleType::U8 => dec::<u8>(bytes, big_endian),
            SampleType::I8 => dec::<i8>(bytes, big_endian),
            SampleType::U16 => dec::<u16>(bytes, big_endian),
            SampleType::I16 => dec::<i16>(bytes, big_endian),
            SampleType::U32 => dec::<u32>(bytes, big_endian),
            SampleType::I32 => dec::<i32>(bytes, big_endian),
            SampleType::U64 => dec::<u64>(bytes, big_endian),
            SampleType::I64 => dec::<i64>(bytes, big_endian),
            SampleType::F32 => dec::<f32>(bytes, big_endian),
            SampleType::F64 => dec::<f64>(bytes, big_endian),
        }
    }
}

/// An n-dimensional array in row-major order that keeps its stored sample type.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    shape: Vec<usize>,
    data: VolumeData,
}

impl Volume {
    /// Builds a volume from a shape and typed samples; the sample count must match the shape.
    pub fn new<T: Element>(shape: Vec<usize>, data: Vec<T>) -> Result<Self> {
        Self::from_data(shape, T::wrap(data))
    }

    /// Builds a volume from a shape and tagged samples; the sample count must match the shape.
    pub fn from_data(shape: Vec<usize>, data: VolumeData) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(invalid(
                "Volume::from_data",
                format!(
                    "shape {shape:?} needs {n} samples, the data has {}",
                    data.len()
                ),
            ));
        }
        Ok(Self { shape, data })
    }

    /// Builds a volume from a tensor of any shape. `f16`/`bf16` become `f32`.
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let shape = t.dims().to_vec();
        let flat = t.flatten_all()?;
        let data = match t.dtype() {
            DType::U8 => VolumeData::U8(flat.to_vec1()?),
            DType::U32 => VolumeData::U32(flat.to_vec1()?),
            DType::I64 => VolumeData::I64(flat.to_vec1()?),
            DType::F64 => VolumeData::F64(flat.to_vec1()?),
            DType::F32 => VolumeData::F32(flat.to_vec1()?),
            _ => VolumeData::F32(flat.to_dtype(DType::F32)?.to_vec1()?),
        };
        Self::from_data(shape, data)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The samples.
    pub fn data(&self) -> &VolumeData {
        &self.data
    }

    /// Consumes the volume, giving its shape and samples.
    pub fn into_parts(self) -> (Vec<usize>, VolumeData) {
        (self.shape, self.data)
    }

    /// The stored sample type.
    pub fn sample_type(&self) -> SampleType {
        self.data.sample_type()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the volume holds no samples.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same samples under another shape with the same number of elements.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Self> {
        Self::from_data(shape, self.data)
    }

    /// A copy converted to `ty` (rounding and saturating for integer targets).
    pub fn convert(&self, ty: SampleType) -> Volume {
        Volume {
            shape: self.shape.clone(),
            data: self.data.convert(ty),
        }
    }

    /// All samples as `f32`.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        dispatch!(&self.data, v => v.iter().map(|x| x.to_f32()).collect())
    }

    /// All samples as `i64` labels. Floating-point samples must hold whole numbers (no NaN).
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        match &self.data {
            VolumeData::F32(v) => floats_to_labels(v.iter().map(|&x| x as f64)),
            VolumeData::F64(v) => floats_to_labels(v.iter().copied()),
            VolumeData::U64(v) => v
                .iter()
                .map(|&x| {
                    i64::try_from(x).map_err(|_| {
                        invalid("Volume::to_i64_vec", format!("label {x} exceeds i64"))
                    })
                })
                .collect(),
            d => Ok(dispatch!(d, v => v.iter().map(|x| x.to_f64() as i64).collect())),
        }
    }

    /// An `f32` tensor of the same shape.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.to_f32_vec(),
            self.shape.as_slice(),
            device,
        )?)
    }

    /// An `i64` label tensor of the same shape (see [`Volume::to_i64_vec`]).
    pub fn to_label_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.to_i64_vec()?,
            self.shape.as_slice(),
            device,
        )?)
    }

    /// Checks that the volume has `rank` dimensions.
    pub(crate) fn expect_rank(&self, what: &'static str, ranks: &[usize]) -> Result<()> {
        if ranks.contains(&self.shape.len()) {
            Ok(())
        } else {
            Err(shape_err(
                what,
                format!("an array with {ranks:?} dimensions"),
                &self.shape,
            ))
        }
    }
}

fn floats_to_labels(it: impl Iterator<Item = f64>) -> Result<Vec<i64>> {
    it.map(|x| {
        if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e18 {
            Ok(x as i64)
        } else {
            Err(invalid(
                "Volume::to_i64_vec",
                format!("label value {x} is not a whole number; labels must be integers (use -1 for unlabelled)"),
            ))
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_rounds_and_saturates() {
        let v = Volume::new(vec![4], vec![-3.6f32, 0.49, 300.0, f32::NAN]).unwrap();
        let u = v.convert(SampleType::U8);
        assert_eq!(u.data(), &VolumeData::U8(vec![0, 0, 255, 0]));
        let i = v.convert(SampleType::I16);
        assert_eq!(i.data(), &VolumeData::I16(vec![-4, 0, 300, 0]));
    }

    #[test]
    fn bytes_round_trip_both_endians() {
        let d = VolumeData::I32(vec![-2, 7, i32::MAX]);
        let le = d.to_le_bytes();
        assert_eq!(VolumeData::from_bytes(SampleType::I32, &le, false), d);
        let be: Vec<u8> = le.chunks(4).flat_map(|c| c.iter().rev().copied()).collect();
        assert_eq!(VolumeData::from_bytes(SampleType::I32, &be, true), d);
    }

    #[test]
    fn labels_must_be_whole() {
        let v = Volume::new(vec![2], vec![1.0f32, 2.5]).unwrap();
        assert!(v.to_i64_vec().is_err());
        let v = Volume::new(vec![2], vec![-1.0f32, 2.0]).unwrap();
        assert_eq!(v.to_i64_vec().unwrap(), vec![-1, 2]);
    }

    #[test]
    fn shape_mismatch_is_error() {
        assert!(Volume::new(vec![2, 2], vec![1u8; 3]).is_err());
    }
}
