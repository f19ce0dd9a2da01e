//! PNG for 2-D previews: grayscale images scaled to 8 bits, label images in distinct colours, and
//! reading 8/16-bit grayscale PNGs back.

use std::path::Path;

use image::{GrayImage, ImageBuffer, Rgb, RgbImage};

use crate::error::{format_err, invalid, Result};
use crate::volume::Volume;

fn check_len(what: &'static str, len: usize, height: usize, width: usize) -> Result<()> {
    if height == 0 || width == 0 || len != height * width {
        return Err(invalid(
            what,
            format!("{len} values for a {height}×{width} image (both sides must be positive)"),
        ));
    }
    if height > u32::MAX as usize || width > u32::MAX as usize {
        return Err(invalid(what, "image sides must fit in 32 bits"));
    }
    Ok(())
}

fn save(path: &Path, img: impl FnOnce(&Path) -> image::ImageResult<()>) -> Result<()> {
    img(path).map_err(|e| format_err(path, format!("cannot write PNG: {e}")))
}

/// Saves a `height × width` image as an 8-bit grayscale PNG, scaled linearly so that the smallest
/// finite value is black and the largest white (a constant image is mid-gray; NaN is black).
pub fn save_png_preview(
    path: impl AsRef<Path>,
    values: &[f32],
    height: usize,
    width: usize,
) -> Result<()> {
    check_len("save_png_preview", values.len(), height, width)?;
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = hi - lo;
    let pixels: Vec<u8> = values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                0
            } else if span > 0.0 {
                (((v - lo) / span) * 255.0).round() as u8
            } else {
                128
            }
        })
        .collect();
    let img = GrayImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| invalid("save_png_preview", "buffer size mismatch"))?;
    save(path.as_ref(), |p| img.save(p))
}

/// A colour for class `k` (`k < 0`, unlabelled, is black): a fixed palette for the first ten
/// classes, then golden-angle hues.
pub fn label_colour(k: i64) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 10] = [
        [68, 68, 68],
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
    ];
    if k < 0 {
        return [0, 0, 0];
    }
    if (k as usize) < PALETTE.len() {
        return PALETTE[k as usize];
    }
    let h = (k as f64 * 137.508) % 360.0;
    let (s, v) = (0.75, 0.95);
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [
        ((r + m) * 255.0) as u8,
        ((g + m) * 255.0) as u8,
        ((b + m) * 255.0) as u8,
    ]
}

/// Saves a `height × width` label image (class ids, negative = unlabelled) as an RGB PNG with one
/// colour per class (see [`label_colour`]).
pub fn save_label_png(
    path: impl AsRef<Path>,
    labels: &[i64],
    height: usize,
    width: usize,
) -> Result<()> {
    check_len("save_label_png", labels.len(), height, width)?;
    let pixels: Vec<u8> = labels.iter().flat_map(|&k| label_colour(k)).collect();
    let img: RgbImage = ImageBuffer::<Rgb<u8>, _>::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| invalid("save_label_png", "buffer size mismatch"))?;
    save(path.as_ref(), |p| img.save(p))
}

/// Reads a PNG. Grayscale images (8 or 16 bit) become `(H, W)` volumes of `u8`/`u16`; colour
/// images become `(H, W, 3)` `u8` volumes (alpha is dropped).
pub fn read_png(path: impl AsRef<Path>) -> Result<Volume> {
    let path = path.as_ref();
    let img = image::ImageReader::open(path)
        .map_err(|e| crate::error::io_err(path, e))?
        .with_guessed_format()
        .map_err(|e| crate::error::io_err(path, e))?
        .decode()
        .map_err(|e| format_err(path, format!("cannot decode PNG: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    use image::DynamicImage as D;
    let is_gray8 = matches!(img, D::ImageLuma8(_) | D::ImageLumaA8(_));
    let is_gray16 = matches!(img, D::ImageLuma16(_) | D::ImageLumaA16(_));
    if is_gray8 {
        Volume::new(vec![h, w], img.into_luma8().into_raw())
    } else if is_gray16 {
        Volume::new(vec![h, w], img.into_luma16().into_raw())
    } else {
        Volume::new(vec![h, w, 3], img.into_rgb8().into_raw())
    }
}
