//! Multi-page TIFF stacks: grayscale 8/16/32/64-bit signed and unsigned integers and 32/64-bit
//! floats, read and written page by page.
//!
//! A stack of `D` pages of `H × W` reads as a `(D, H, W)` [`Volume`]; a single page as `(H, W)`.
//! Colour (RGB, palette) and 1-bit images are rejected with an error that says so.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::encoder::{colortype, TiffEncoder, TiffKind, TiffKindBig};
use tiff::ColorType;

use crate::error::{format_err, invalid, io_err, Result};
use crate::volume::{dispatch, SampleType, Volume, VolumeData};

/// Largest single page this reader decodes (protects against corrupt headers claiming huge pages).
const MAX_PAGE_BYTES: usize = 4 << 30;

/// Opens a TIFF decoder on `path`.
pub(crate) fn open_decoder(path: &Path) -> Result<Decoder<BufReader<File>>> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut limits = Limits::default();
    limits.decoding_buffer_size = MAX_PAGE_BYTES;
    limits.intermediate_buffer_size = MAX_PAGE_BYTES;
    Decoder::new(BufReader::new(file))
        .map(|d| d.with_limits(limits))
        .map_err(|e| tiff_err(path, e))
}

/// Turns a decoder error into an error naming the file.
pub(crate) fn tiff_err(path: &Path, e: tiff::TiffError) -> crate::Error {
    match e {
        tiff::TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format_err(path, format!("truncated TIFF file ({io})"))
        }
        other => format_err(path, format!("cannot decode TIFF: {other}")),
    }
}

/// Decodes the decoder's current page into `(height, width, samples)`.
pub(crate) fn read_page(
    path: &Path,
    dec: &mut Decoder<BufReader<File>>,
    page: usize,
) -> Result<(usize, usize, VolumeData)> {
    let (w, h) = dec.dimensions().map_err(|e| tiff_err(path, e))?;
    let ct = dec.colortype().map_err(|e| tiff_err(path, e))?;
    match ct {
        ColorType::Gray(8 | 16 | 32 | 64) => {}
        ColorType::Multiband {
            bit_depth: 8 | 16 | 32 | 64,
            num_samples: 1,
        } => {}
        other => {
            return Err(format_err(
                path,
                format!(
                    "page {page} has colour type {other:?}; only single-channel (grayscale) 8/16/32/64-bit pages are supported, convert colour images to grayscale first"
                ),
            ))
        }
    }
    let data = match dec.read_image().map_err(|e| tiff_err(path, e))? {
        DecodingResult::U8(v) => VolumeData::U8(v),
        DecodingResult::I8(v) => VolumeData::I8(v),
        DecodingResult::U16(v) => VolumeData::U16(v),
        DecodingResult::I16(v) => VolumeData::I16(v),
        DecodingResult::U32(v) => VolumeData::U32(v),
        DecodingResult::I32(v) => VolumeData::I32(v),
        DecodingResult::U64(v) => VolumeData::U64(v),
        DecodingResult::I64(v) => VolumeData::I64(v),
        DecodingResult::F32(v) => VolumeData::F32(v),
        DecodingResult::F64(v) => VolumeData::F64(v),
        DecodingResult::F16(v) => VolumeData::F32(v.into_iter().map(f32::from).collect()),
    };
    let (h, w) = (h as usize, w as usize);
    if data.len() != h * w {
        return Err(format_err(
            path,
            format!(
                "page {page}: decoded {} samples for a {h}×{w} page (corrupt strip or tile data)",
                data.len()
            ),
        ));
    }
    Ok((h, w, data))
}

fn append(dst: &mut VolumeData, src: VolumeData) -> std::result::Result<(), SampleType> {
    macro_rules! cat {
        ($($v:ident),*) => {
            match (dst, src) {
                $((VolumeData::$v(a), VolumeData::$v(b)) => { a.extend(b); Ok(()) })*
                (_, s) => Err(s.sample_type()),
            }
        };
    }
    cat!(U8, I8, U16, I16, U32, I32, U64, I64, F32, F64)
}

/// Reads every page of a TIFF file. `D > 1` pages give a `(D, H, W)` volume, one page `(H, W)`.
/// All pages must have the same size and sample type.
pub fn read_tiff(path: impl AsRef<Path>) -> Result<Volume> {
    let path = path.as_ref();
    let mut dec = open_decoder(path)?;
    let (h, w, mut all) = read_page(path, &mut dec, 0)?;
    let mut pages = 1;
    while dec.more_images() {
        dec.next_image().map_err(|e| tiff_err(path, e))?;
        let (ph, pw, data) = read_page(path, &mut dec, pages)?;
        if (ph, pw) != (h, w) {
            return Err(format_err(
                path,
                format!("page {pages} is {ph}×{pw} but page 0 is {h}×{w}; a stack needs pages of one size"),
            ));
        }
        let first = all.sample_type();
        append(&mut all, data).map_err(|t| {
            format_err(
                path,
                format!("page {pages} holds {t:?} samples but page 0 holds {first:?}"),
            )
        })?;
        pages += 1;
    }
    let shape = if pages == 1 {
        vec![h, w]
    } else {
        vec![pages, h, w]
    };
    Volume::from_data(shape, all)
}

/// Writes a `(H, W)` image or a `(D, H, W)` stack as an uncompressed multi-page TIFF in the
/// volume's own sample type. Files over 3.5 GiB are written as BigTIFF.
pub fn write_tiff(path: impl AsRef<Path>, volume: &Volume) -> Result<()> {
    let path = path.as_ref();
    volume.expect_rank("write_tiff", &[2, 3])?;
    let s = volume.shape();
    let (d, h, w) = if s.len() == 2 {
        (1, s[0], s[1])
    } else {
        (s[0], s[1], s[2])
    };
    let bytes = (volume.len() * volume.sample_type().size()) as u64;
    let mut writer =
        TiffStackWriter::create_with_size_hint(path, volume.sample_type(), h, w, bytes)?;
    for z in 0..d {
        let page = dispatch!(volume.data(), v => crate::Element::wrap(v[z * h * w..(z + 1) * h * w].to_vec()));
        writer.write_page(&page)?;
    }
    writer.finish()
}

/// A buffered file shared between the encoder and the writer, so that `finish` can flush it and
/// report errors (the encoder has no `into_inner`).
#[derive(Clone)]
struct SharedFile(Arc<Mutex<BufWriter<File>>>);

impl SharedFile {
    fn lock(&self) -> std::io::Result<std::sync::MutexGuard<'_, BufWriter<File>>> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("TIFF writer poisoned by an earlier panic"))
    }
}

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock()?.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.lock()?.flush()
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.lock()?.seek(pos)
    }
}

/// The encoder of either TIFF flavour.
enum AnyEncoder {
    Standard(TiffEncoder<SharedFile>),
    Big(TiffEncoder<SharedFile, TiffKindBig>),
}

/// Writes a TIFF stack one `H × W` page at a time, so a volume need never be held in memory.
pub struct TiffStackWriter {
    path: std::path::PathBuf,
    file: SharedFile,
    encoder: Option<AnyEncoder>,
    sample_type: SampleType,
    height: usize,
    width: usize,
}

impl TiffStackWriter {
    /// Creates the file for pages of `height × width` samples of type `sample_type`.
    pub fn create(
        path: impl AsRef<Path>,
        sample_type: SampleType,
        height: usize,
        width: usize,
    ) -> Result<Self> {
        Self::create_with_size_hint(path, sample_type, height, width, 0)
    }

    /// Like [`TiffStackWriter::create`], choosing BigTIFF when `total_bytes` exceeds 3.5 GiB.
    pub fn create_with_size_hint(
        path: impl AsRef<Path>,
        sample_type: SampleType,
        height: usize,
        width: usize,
        total_bytes: u64,
    ) -> Result<Self> {
        let path = path.as_ref();
        if height == 0 || width == 0 || height > u32::MAX as usize || width > u32::MAX as usize {
            return Err(invalid(
                "TiffStackWriter",
                format!("page size {height}×{width} must be positive and fit in 32 bits"),
            ));
        }
        let file = SharedFile(Arc::new(Mutex::new(BufWriter::new(
            File::create(path).map_err(|e| io_err(path, e))?,
        ))));
        let encoder = if total_bytes > (7u64 << 29) {
            AnyEncoder::Big(TiffEncoder::new_big(file.clone()).map_err(|e| tiff_err(path, e))?)
        } else {
            AnyEncoder::Standard(TiffEncoder::new(file.clone()).map_err(|e| tiff_err(path, e))?)
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            encoder: Some(encoder),
            sample_type,
            height,
            width,
        })
    }

    /// Page height and width.
    pub fn page_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// The sample type pages are stored in.
    pub fn sample_type(&self) -> SampleType {
        self.sample_type
    }

    /// Writes one page given as `f32`, converted to the writer's sample type (rounding and
    /// saturating for integer types).
    pub fn write_page_f32(&mut self, page: &[f32]) -> Result<()> {
        self.write_page(&VolumeData::F32(page.to_vec()).convert(self.sample_type))
    }

    /// Writes one page of samples, which must be of the writer's sample type.
    pub fn write_page(&mut self, page: &VolumeData) -> Result<()> {
        if page.sample_type() != self.sample_type {
            return Err(invalid(
                "TiffStackWriter::write_page",
                format!(
                    "page of {:?} samples for a {:?} stack",
                    page.sample_type(),
                    self.sample_type
                ),
            ));
        }
        if page.len() != self.height * self.width {
            return Err(invalid(
                "TiffStackWriter::write_page",
                format!(
                    "page has {} samples, expected {}×{}",
                    page.len(),
                    self.height,
                    self.width
                ),
            ));
        }
        let (w, h) = (self.width as u32, self.height as u32);
        let enc = self
            .encoder
            .as_mut()
            .ok_or_else(|| invalid("TiffStackWriter", "the writer was already finished"))?;
        match enc {
            AnyEncoder::Standard(e) => write_generic(e, w, h, page),
            AnyEncoder::Big(e) => write_generic(e, w, h, page),
        }
        .map_err(|e| tiff_err(&self.path, e))
    }

    /// Flushes the file; pages written after this are an error.
    pub fn finish(&mut self) -> Result<()> {
        if self.encoder.take().is_some() {
            self.file.flush().map_err(|e| io_err(&self.path, e))?;
        }
        Ok(())
    }
}

fn write_generic<W: Write + Seek, K: TiffKind>(
    enc: &mut TiffEncoder<W, K>,
    w: u32,
    h: u32,
    page: &VolumeData,
) -> tiff::TiffResult<()> {
    match page {
        VolumeData::U8(v) => enc.write_image::<colortype::Gray8>(w, h, v),
        VolumeData::I8(v) => enc.write_image::<colortype::GrayI8>(w, h, v),
        VolumeData::U16(v) => enc.write_image::<colortype::Gray16>(w, h, v),
        VolumeData::I16(v) => enc.write_image::<colortype::GrayI16>(w, h, v),
        VolumeData::U32(v) => enc.write_image::<colortype::Gray32>(w, h, v),
        VolumeData::I32(v) => enc.write_image::<colortype::GrayI32>(w, h, v),
        VolumeData::U64(v) => enc.write_image::<colortype::Gray64>(w, h, v),
        VolumeData::I64(v) => enc.write_image::<colortype::GrayI64>(w, h, v),
        VolumeData::F32(v) => enc.write_image::<colortype::Gray32Float>(w, h, v),
        VolumeData::F64(v) => enc.write_image::<colortype::Gray64Float>(w, h, v),
    }
}

/// Counts the pages of a TIFF file and gives the size and sample type of the first.
pub fn tiff_info(path: impl AsRef<Path>) -> Result<(usize, usize, usize, SampleType)> {
    let path = path.as_ref();
    let mut dec = open_decoder(path)?;
    let (w, h) = dec.dimensions().map_err(|e| tiff_err(path, e))?;
    let ty = page_sample_type(path, &mut dec)?;
    let mut pages = 1;
    while dec.more_images() {
        dec.next_image().map_err(|e| tiff_err(path, e))?;
        pages += 1;
    }
    Ok((pages, h as usize, w as usize, ty))
}

fn page_sample_type(path: &Path, dec: &mut Decoder<BufReader<File>>) -> Result<SampleType> {
    use tiff::tags::{SampleFormat, Tag};
    let ct = dec.colortype().map_err(|e| tiff_err(path, e))?;
    let bits = ct.bit_depth();
    let fmt = dec
        .find_tag_unsigned::<u16>(Tag::SampleFormat)
        .map_err(|e| tiff_err(path, e))?
        .map(SampleFormat::from_u16_exhaustive)
        .unwrap_or(SampleFormat::Uint);
    Ok(match (fmt, bits) {
        (SampleFormat::Uint, 8) => SampleType::U8,
        (SampleFormat::Uint, 16) => SampleType::U16,
        (SampleFormat::Uint, 32) => SampleType::U32,
        (SampleFormat::Uint, 64) => SampleType::U64,
        (SampleFormat::Int, 8) => SampleType::I8,
        (SampleFormat::Int, 16) => SampleType::I16,
        (SampleFormat::Int, 32) => SampleType::I32,
        (SampleFormat::Int, 64) => SampleType::I64,
        (SampleFormat::IEEEFP, 16 | 32) => SampleType::F32,
        (SampleFormat::IEEEFP, 64) => SampleType::F64,
        (f, b) => {
            return Err(format_err(
                path,
                format!("unsupported TIFF sample format {f:?} with {b} bits per sample"),
            ))
        }
    })
}
