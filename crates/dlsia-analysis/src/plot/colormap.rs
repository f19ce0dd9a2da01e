//! Colour maps for continuous values and a palette for classes.

use serde::{Deserialize, Serialize};

/// A perceptually uniform colour map (samples of matplotlib's maps, linearly interpolated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Colormap {
    /// Dark blue → green → yellow (probabilities, autocorrelation).
    #[default]
    Viridis,
    /// Black → purple → orange → pale yellow (uncertainty).
    Magma,
    /// Black → white.
    Greys,
}

const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

const MAGMA: [[u8; 3]; 9] = [
    [0, 0, 4],
    [28, 16, 68],
    [79, 18, 123],
    [129, 37, 129],
    [181, 54, 122],
    [229, 80, 100],
    [251, 135, 97],
    [254, 194, 135],
    [252, 253, 191],
];

/// Ten distinct class colours (matplotlib's `tab10`); class `c` gets `CLASS_COLORS[c % 10]`.
pub const CLASS_COLORS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// The colour of class `c`.
pub fn class_color(c: usize) -> [u8; 3] {
    CLASS_COLORS[c % CLASS_COLORS.len()]
}

impl Colormap {
    /// The colour of `t` in `[0, 1]` (clamped; NaN maps to 0).
    pub fn color(self, t: f64) -> [u8; 3] {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let table: &[[u8; 3]] = match self {
            Self::Viridis => &VIRIDIS,
            Self::Magma => &MAGMA,
            Self::Greys => {
                let v = (t * 255.0).round() as u8;
                return [v, v, v];
            }
        };
        let x = t * (table.len() - 1) as f64;
        let i = (x.floor() as usize).min(table.len() - 2);
        let f = x - i as f64;
        let mut out = [0u8; 3];
        for c in 0..3 {
            out[c] = (table[i][c] as f64 * (1.0 - f) + table[i + 1][c] as f64 * f).round() as u8;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_points_and_interpolation() {
        assert_eq!(Colormap::Viridis.color(0.0), VIRIDIS[0]);
        assert_eq!(Colormap::Viridis.color(1.0), VIRIDIS[8]);
        assert_eq!(Colormap::Viridis.color(2.0), VIRIDIS[8]);
        assert_eq!(Colormap::Magma.color(f64::NAN), MAGMA[0]);
        // Halfway between samples 0 and 1 of viridis.
        assert_eq!(Colormap::Viridis.color(0.0625), [70, 23, 103]);
        assert_eq!(Colormap::Greys.color(0.5), [128, 128, 128]);
        assert_eq!(class_color(12), CLASS_COLORS[2]);
    }
}
