//! NumPy `.npy` files: whole-array read and write, and a memory-mapped view for reading regions
//! of arrays larger than memory.
//!
//! Headers are parsed and written with `npyz`; the raw data is read through `memmap2` so that a
//! region read touches only the pages it needs. Little- and big-endian data and C and Fortran
//! order are read; files are written little-endian in C order.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use npyz::{DType, Order, TypeChar, WriterBuilder};

use crate::error::{format_err, invalid, io_err, Result};
use crate::volume::{SampleType, Volume, VolumeData};

/// A reader that counts the bytes it hands out (to learn where the data starts).
struct Counting<R> {
    inner: R,
    count: usize,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n;
        Ok(n)
    }
}

/// What an `.npy` header says about the array that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyInfo {
    /// Array shape.
    pub shape: Vec<usize>,
    /// Sample type.
    pub sample_type: SampleType,
    /// Whether samples are stored big endian.
    pub big_endian: bool,
    /// Whether the array is stored in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Byte offset of the first sample.
    pub data_offset: usize,
}

impl NpyInfo {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element strides (in samples) of each axis in the file.
    pub fn strides(&self) -> Vec<usize> {
        let n = self.shape.len();
        let mut s = vec![1usize; n];
        if self.fortran_order {
            for i in 1..n {
                s[i] = s[i - 1] * self.shape[i - 1];
            }
        } else {
            for i in (0..n.saturating_sub(1)).rev() {
                s[i] = s[i + 1] * self.shape[i + 1];
            }
        }
        s
    }
}

/// Parses the header at the start of `bytes` (a whole file or its first few kilobytes).
pub(crate) fn parse_header(path: &Path, bytes: &[u8]) -> Result<NpyInfo> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format_err(
            path,
            "not a NumPy .npy file (the magic string \\x93NUMPY is missing)",
        ));
    }
    let mut counting = Counting {
        inner: bytes,
        count: 0,
    };
    let header = npyz::NpyHeader::from_reader(&mut counting)
        .map_err(|e| format_err(path, format!("corrupt or truncated .npy header: {e}")))?;
    let ts = match header_dtype(&header) {
        DType::Plain(ts) => ts,
        other => {
            return Err(format_err(
                path,
                format!(
                    "structured dtype {} is not supported; store a plain numeric array",
                    other.descr()
                ),
            ))
        }
    };
    let size = ts.size_field();
    let sample_type = match (ts.type_char(), size) {
        (TypeChar::Uint, 1) => SampleType::U8,
        (TypeChar::Uint, 2) => SampleType::U16,
        (TypeChar::Uint, 4) => SampleType::U32,
        (TypeChar::Uint, 8) => SampleType::U64,
        (TypeChar::Int, 1) => SampleType::I8,
        (TypeChar::Int, 2) => SampleType::I16,
        (TypeChar::Int, 4) => SampleType::I32,
        (TypeChar::Int, 8) => SampleType::I64,
        (TypeChar::Bool, 1) => SampleType::U8,
        (TypeChar::Float, 4) => SampleType::F32,
        (TypeChar::Float, 8) => SampleType::F64,
        _ => {
            return Err(format_err(
                path,
                format!("dtype {ts} is not supported; use (u)int8/16/32/64, float32 or float64"),
            ))
        }
    };
    let big_endian = matches!(ts.endianness(), npyz::Endianness::Big);
    let shape = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| format_err(path, "array dimension does not fit in memory addresses"))?;
    Ok(NpyInfo {
        shape,
        sample_type,
        big_endian,
        fortran_order: header.order() == Order::Fortran,
        data_offset: counting.count,
    })
}

fn header_dtype(h: &npyz::NpyHeader) -> DType {
    // `NpyHeader` exposes its dtype through an `NpyFile` built on an empty reader.
    npyz::NpyFile::with_header(h.clone(), std::io::empty()).dtype()
}

/// Reads the header of an `.npy` file.
pub fn npy_info(path: impl AsRef<Path>) -> Result<NpyInfo> {
    let path = path.as_ref();
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut head = Vec::with_capacity(4096);
    (&mut f)
        .take(1 << 20)
        .read_to_end(&mut head)
        .map_err(|e| io_err(path, e))?;
    parse_header(path, &head)
}

/// Reads a whole `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Volume> {
    let map = NpyMap::open(path.as_ref())?;
    let info = map.info();
    let bytes = &map.map[info.data_offset..info.data_offset + info.len() * info.sample_type.size()];
    let data = VolumeData::from_bytes(info.sample_type, bytes, info.big_endian);
    let volume = Volume::from_data(info.shape.clone(), data)?;
    if info.fortran_order {
        Ok(fortran_to_c(&volume))
    } else {
        Ok(volume)
    }
}

fn fortran_to_c(v: &Volume) -> Volume {
    let shape = v.shape().to_vec();
    let n = shape.len();
    // Fortran strides, then visit in C order.
    let mut fs = vec![1usize; n];
    for i in 1..n {
        fs[i] = fs[i - 1] * shape[i - 1];
    }
    let total = v.len();
    let mut src_index = Vec::with_capacity(total);
    let mut idx = vec![0usize; n];
    for _ in 0..total {
        src_index.push(idx.iter().zip(&fs).map(|(i, s)| i * s).sum::<usize>());
        for ax in (0..n).rev() {
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    let data = crate::volume::dispatch!(v.data(), d => crate::Element::wrap(src_index.iter().map(|&i| d[i]).collect()));
    Volume::from_data(shape, data).expect("same length")
}

/// Writes a volume as a little-endian, C-order `.npy` file in its own sample type.
pub fn write_npy(path: impl AsRef<Path>, volume: &Volume) -> Result<()> {
    let path = path.as_ref();
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    let mut w = BufWriter::new(file);
    write_header(path, &mut w, volume.sample_type(), volume.shape())?;
    w.write_all(&volume.data().to_le_bytes())
        .and_then(|_| w.flush())
        .map_err(|e| io_err(path, e))
}

/// Writes an `.npy` header for a C-order little-endian array; returns nothing, the data follows.
pub(crate) fn write_header(
    path: &Path,
    w: &mut impl Write,
    ty: SampleType,
    shape: &[usize],
) -> Result<()> {
    let dtype = DType::parse(&format!("'{}'", ty.numpy_descr()))
        .map_err(|e| invalid("write_npy", format!("dtype: {e}")))?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    npyz::WriteOptions::new_header_only()
        .dtype(dtype)
        .shape(&shape)
        .writer(w)
        .write_header_only()
        .map(|_| ())
        .map_err(|e| io_err(path, e))
}

/// A memory-mapped `.npy` file whose samples are read on demand.
pub struct NpyMap {
    path: PathBuf,
    map: Mmap,
    info: NpyInfo,
}

impl NpyMap {
    /// Maps the file and checks that it holds as many bytes as its header promises.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        // SAFETY: the map is read-only; another process truncating the file while it is mapped
        // would fault, which is the documented limitation of memory-mapped I/O.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io_err(path, e))?;
        let info = parse_header(path, &map)?;
        let need = info
            .len()
            .checked_mul(info.sample_type.size())
            .and_then(|b| b.checked_add(info.data_offset))
            .ok_or_else(|| format_err(path, "array size overflows"))?;
        if map.len() < need {
            return Err(format_err(
                path,
                format!(
                    "truncated .npy file: the header describes {:?} {:?} samples ({need} bytes with the header) but the file has {} bytes",
                    info.shape, info.sample_type, map.len()
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            map,
            info,
        })
    }

    /// Tells the kernel that the mapped bytes `[from, to)` (file offsets) will not be read again
    /// soon, so their pages leave this process's resident set (they are re-read from the file if
    /// touched again). Keeps the resident memory of a streaming pass bounded.
    pub fn release(&self, from: usize, to: usize) {
        let page = 4096;
        let from = from.div_ceil(page) * page;
        let to = (to / page * page).min(self.map.len() / page * page);
        if to > from {
            // SAFETY: the map is a read-only view of a file: dropping its pages only makes later
            // reads fault them in again from the file, with the same content, and no reference
            // into the released range is held across this call.
            #[cfg(unix)]
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    }

    /// The header.
    pub fn info(&self) -> &NpyInfo {
        &self.info
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the box `[start, start + size)` (in array coordinates, all axes) as `f32` into `out`,
    /// row-major over the box.
    pub fn read_box_f32(&self, start: &[usize], size: &[usize], out: &mut [f32]) -> Result<()> {
        let info = &self.info;
        let n = info.shape.len();
        if n == 0 {
            return Err(invalid(
                "NpyMap::read_box_f32",
                "the file holds a 0-dimensional (scalar) array, not an image",
            ));
        }
        if start.len() != n || size.len() != n {
            return Err(invalid(
                "NpyMap::read_box_f32",
                format!("box of rank {} for an array of rank {n}", start.len()),
            ));
        }
        for ax in 0..n {
            if start[ax] + size[ax] > info.shape[ax] {
                return Err(invalid(
                    "NpyMap::read_box_f32",
                    format!(
                        "box {start:?}+{size:?} leaves the array {:?} on axis {ax}",
                        info.shape
                    ),
                ));
            }
        }
        let total: usize = size.iter().product();
        if out.len() != total {
            return Err(invalid(
                "NpyMap::read_box_f32",
                format!("output has {} slots for {total} samples", out.len()),
            ));
        }
        if total == 0 {
            return Ok(());
        }
        let strides = info.strides();
        let es = info.sample_type.size();
        let data = &self.map[info.data_offset..];
        let decode = decoder(info.sample_type, info.big_endian);
        let inner = size[n - 1];
        let inner_stride = strides[n - 1];
        let mut idx = vec![0usize; n.saturating_sub(1)];
        let mut o = 0;
        loop {
            let mut base = start[n - 1] * inner_stride;
            for ax in 0..n - 1 {
                base += (start[ax] + idx[ax]) * strides[ax];
            }
            if inner_stride == 1 {
                let bytes = &data[base * es..(base + inner) * es];
                for (dst, chunk) in out[o..o + inner].iter_mut().zip(bytes.chunks_exact(es)) {
                    *dst = decode(chunk);
                }
            } else {
                for (k, dst) in out[o..o + inner].iter_mut().enumerate() {
                    let p = (base + k * inner_stride) * es;
                    *dst = decode(&data[p..p + es]);
                }
            }
            o += inner;
            // Advance the outer index (row-major over the box without its last axis).
            let mut ax = n - 1;
            loop {
                if ax == 0 {
                    return Ok(());
                }
                ax -= 1;
                idx[ax] += 1;
                if idx[ax] < size[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
    }
}

/// A function decoding one sample of `ty` from bytes into `f32`.
fn decoder(ty: SampleType, be: bool) -> fn(&[u8]) -> f32 {
    macro_rules! pick {
        ($t:ty) => {
            if be {
                |b: &[u8]| <$t>::from_be_bytes(b.try_into().unwrap_or_default()) as f32
            } else {
                |b: &[u8]| <$t>::from_le_bytes(b.try_into().unwrap_or_default()) as f32
            }
        };
    }
    match ty {
        SampleType::U8 => |b: &[u8]| b[0] as f32,
        SampleType::I8 => |b: &[u8]| b[0] as i8 as f32,
        SampleType::U16 => pick!(u16),
        SampleType::I16 => pick!(i16),
        SampleType::U32 => pick!(u32),
        SampleType::I32 => pick!(i32),
        SampleType::U64 => pick!(u64),
        SampleType::I64 => pick!(i64),
        SampleType::F32 => pick!(f32),
        SampleType::F64 => pick!(f64),
    }
}
