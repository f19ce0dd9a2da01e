//! PNG plots of 2D images: a segmentation over its image, and heat maps with a colour bar.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::colormap::{class_color, Colormap};
use super::raster::{format_number, text_width, Canvas};
use crate::error::{invalid, Error, Result};

fn check_image(op: &'static str, len: usize, (h, w): (usize, usize)) -> Result<()> {
    if h == 0 || w == 0 || h.checked_mul(w) != Some(len) {
        return Err(Error::ShapeMismatch {
            op,
            shape: vec![h, w],
            expected: h.saturating_mul(w),
            got: len,
        });
    }
    Ok(())
}

/// Finite minimum and maximum of `values` (`(0, 1)` if none is finite; widened if equal).
fn finite_range(values: &[f32]) -> (f64, f64) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
    if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

/// Writes `image` (`h × w`, grey, scaled min–max) with `labels` blended on top: label `l > 0`
/// gets class colour `l − 1` with opacity `alpha`, label 0 shows the image. Each pixel is drawn
/// `scale × scale`.
pub fn segmentation_overlay_png(
    path: impl AsRef<Path>,
    image: &[f32],
    labels: &[u32],
    (h, w): (usize, usize),
    alpha: f32,
    scale: usize,
) -> Result<()> {
    const OP: &str = "segmentation_overlay_png";
    check_image(OP, image.len(), (h, w))?;
    check_image(OP, labels.len(), (h, w))?;
    if !(0.0..=1.0).contains(&alpha) {
        return Err(invalid(OP, format!("alpha = {alpha} must be in [0, 1]")));
    }
    if scale == 0 {
        return Err(invalid(OP, "scale must be at least 1"));
    }
    let (lo, hi) = finite_range(image);
    let mut canvas = Canvas::new(w * scale, h * scale, [255, 255, 255]);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let g = Colormap::Greys.color((image[i] as f64 - lo) / (hi - lo));
            let c = if labels[i] == 0 {
                g
            } else {
                let k = class_color(labels[i] as usize - 1);
                [0, 1, 2].map(|j| (g[j] as f32 * (1.0 - alpha) + k[j] as f32 * alpha).round() as u8)
            };
            canvas.fill_rect(x * scale, y * scale, scale, scale, c);
        }
    }
    canvas.save_png(path.as_ref())
}

/// Settings for [`heatmap_png`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatmapOptions {
    /// The colour map.
    pub colormap: Colormap,
    /// Value range mapped to the colour map's ends (`None`: the data's finite min and max).
    pub range: Option<(f32, f32)>,
    /// Each value is drawn `scale × scale` pixels.
    pub scale: usize,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        Self {
            colormap: Colormap::Viridis,
            range: None,
            scale: 1,
        }
    }
}

/// Writes an `h × w` map of values (a probability or uncertainty map) with a colour bar on its
/// right. Non-finite values are drawn white.
pub fn heatmap_png(
    path: impl AsRef<Path>,
    values: &[f32],
    (h, w): (usize, usize),
    options: &HeatmapOptions,
) -> Result<()> {
    const OP: &str = "heatmap_png";
    check_image(OP, values.len(), (h, w))?;
    if options.scale == 0 {
        return Err(invalid(OP, "scale must be at least 1"));
    }
    let (lo, hi) = match options.range {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => (lo as f64, hi as f64),
        Some((lo, hi)) => {
            return Err(invalid(
                OP,
                format!("range ({lo}, {hi}) must be finite with lo < hi"),
            ))
        }
        None => finite_range(values),
    };
    let s = options.scale;
    let (iw, ih) = (w * s, h * s);
    let bar_h = ih.max(120);
    let labels = [lo, hi, (lo + hi) / 2.0].map(|v| text_width(&format_number(v), 2));
    let width = iw + 12 + 16 + 4 + labels.iter().max().copied().unwrap_or(0) + 6;
    let mut canvas = Canvas::new(width, bar_h.max(ih) + 10, [255, 255, 255]);
    for y in 0..h {
        for x in 0..w {
            let v = values[y * w + x];
            let c = if v.is_finite() {
                options.colormap.color((v as f64 - lo) / (hi - lo))
            } else {
                [255, 255, 255]
            };
            canvas.fill_rect(x * s, 5 + y * s, s, s, c);
        }
    }
    canvas.colorbar(iw + 12, 5, 16, bar_h, lo, hi, options.colormap);
    canvas.save_png(path.as_ref())
}
