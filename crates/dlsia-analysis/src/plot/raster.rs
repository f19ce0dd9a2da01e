//! A small RGB canvas for the PNG plots: pixels, rectangles, a 3×5 bitmap font for numbers, a
//! colour bar, and PNG output through the `image` crate.

use std::path::Path;

use super::colormap::Colormap;
use crate::error::{Error, Result};

/// An RGB image, row-major.
pub(crate) struct Canvas {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<[u8; 3]>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: [u8; 3]) -> Self {
        Self {
            width,
            height,
            pixels: vec![background; width * height],
        }
    }

    /// Sets one pixel (ignored outside the canvas).
    pub fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            self.pixels[y * self.width + x] = c;
        }
    }

    /// Fills the rectangle `[x0, x0 + w) × [y0, y0 + h)`.
    pub fn fill_rect(&mut self, x0: usize, y0: usize, w: usize, h: usize, c: [u8; 3]) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, c);
            }
        }
    }

    /// Draws `text` (digits, `. - + E`) with its top-left corner at `(x, y)`, each font pixel
    /// `scale × scale`; returns the width drawn.
    pub fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, c: [u8; 3]) -> usize {
        let mut cx = x;
        for ch in text.chars() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        self.fill_rect(cx + col * scale, y + row * scale, scale, scale, c);
                    }
                }
            }
            cx += 4 * scale;
        }
        cx - x
    }

    /// A vertical colour bar `w × h` at `(x, y)` from `hi` (top) to `lo` (bottom), with the
    /// values of its ends and middle written to its right.
    #[allow(clippy::too_many_arguments)]
    pub fn colorbar(
        &mut self,
        x: usize,
        y: usize,
        w: usize,
        h: usize,
        lo: f64,
        hi: f64,
        cmap: Colormap,
    ) {
        for row in 0..h {
            let t = 1.0 - row as f64 / (h.max(2) - 1) as f64;
            self.fill_rect(x, y + row, w, 1, cmap.color(t));
        }
        let black = [0, 0, 0];
        let tx = x + w + 4;
        self.text(tx, y, &format_number(hi), 2, black);
        self.text(tx, y + h / 2 - 5, &format_number((lo + hi) / 2.0), 2, black);
        self.text(tx, (y + h).saturating_sub(10), &format_number(lo), 2, black);
    }

    /// Writes the canvas as an 8-bit RGB PNG.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let raw: Vec<u8> = self.pixels.iter().flatten().copied().collect();
        let img = image::RgbImage::from_raw(self.width as u32, self.height as u32, raw)
            .expect("canvas buffer matches its size");
        img.save_with_format(path, image::ImageFormat::Png)
            .map_err(|e| Error::Plot {
                path: path.to_path_buf(),
                msg: e.to_string(),
            })
    }
}

/// Width in pixels of `text` drawn at `scale`.
pub(crate) fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * 4 * scale
}

/// A short label for a number: fixed-point with up to 3 decimals between 1e-3 and 1e4,
/// otherwise scientific (`1.5E-5`).
pub(crate) fn format_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    if (1e-3..1e4).contains(&v.abs()) {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:.1e}").to_uppercase()
    }
}

fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0, 0, 0, 0, 0b010],
        '-' => [0, 0, 0b111, 0, 0],
        '+' => [0, 0b010, 0b111, 0b010, 0],
        'E' => [0b111, 0b100, 0b111, 0b100, 0b111],
        _ => [0; 5],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_labels() {
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(-2.25), "-2.25");
        assert_eq!(format_number(1.5e-5), "1.5E-5");
        assert_eq!(format_number(123456.0), "1.2E5");
        assert_eq!(text_width("0.5", 2), 24);
    }
}
