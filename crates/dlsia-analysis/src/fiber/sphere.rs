//! An equal-area grid on the unit sphere and the Hammer (Hammer–Aitoff) equal-area projection.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// A cylindrical equal-area grid: `n_lat` rows equally spaced in `sin(latitude)` by `n_lon`
/// columns equally spaced in longitude, so every cell covers the same solid angle. Direction
/// `[z, y, x] = [sin lat, cos lat · sin lon, cos lat · cos lon]`: latitude is measured from the
/// y–x plane towards +z, longitude from +x towards +y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SphereGrid {
    /// Rows (latitude bands).
    pub n_lat: usize,
    /// Columns (longitude sectors); even, so that every cell has an antipodal cell.
    pub n_lon: usize,
}

impl SphereGrid {
    /// A grid of `n_lat × n_lon` cells; `n_lat ≥ 1`, `n_lon ≥ 2` and even.
    pub fn new(n_lat: usize, n_lon: usize) -> Result<Self> {
        if n_lat == 0 || n_lon < 2 || n_lon % 2 != 0 {
            return Err(invalid(
                "SphereGrid::new",
                format!("need n_lat >= 1 and an even n_lon >= 2, got {n_lat} × {n_lon}"),
            ));
        }
        Ok(Self { n_lat, n_lon })
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.n_lat * self.n_lon
    }

    /// Whether the grid has no cells (never, for a checked grid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(longitude, latitude)` in radians of the centre of cell `(row, col)`.
    pub fn cell_centre(&self, row: usize, col: usize) -> (f64, f64) {
        let z = -1.0 + (row as f64 + 0.5) * 2.0 / self.n_lat as f64;
        let lon = -PI + (col as f64 + 0.5) * 2.0 * PI / self.n_lon as f64;
        (lon, z.asin())
    }

    /// Unit direction `[z, y, x]` of `(longitude, latitude)`.
    pub fn direction(lon: f64, lat: f64) -> [f64; 3] {
        [lat.sin(), lat.cos() * lon.sin(), lat.cos() * lon.cos()]
    }

    /// `(longitude, latitude)` of a (not necessarily unit) direction `[z, y, x]`.
    pub fn lon_lat(dir: [f64; 3]) -> (f64, f64) {
        let r = (dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]).sqrt();
        ((dir[1]).atan2(dir[2]), (dir[0] / r).clamp(-1.0, 1.0).asin())
    }

    /// The `(row, col)` of the cell containing `(longitude, latitude)`.
    pub fn cell_of(&self, lon: f64, lat: f64) -> (usize, usize) {
        let z = lat.sin();
        let row = (((z + 1.0) * 0.5 * self.n_lat as f64) as usize).min(self.n_lat - 1);
        let u = (lon + PI).rem_euclid(2.0 * PI) / (2.0 * PI);
        let col = ((u * self.n_lon as f64) as usize).min(self.n_lon - 1);
        (row, col)
    }

    /// The cell diametrically opposite `(row, col)`.
    pub fn antipode(&self, row: usize, col: usize) -> (usize, usize) {
        (self.n_lat - 1 - row, (col + self.n_lon / 2) % self.n_lon)
    }
}

/// Hammer projection of `(longitude, latitude)` (radians) to `(x, y)` with
/// `x ∈ [-2√2, 2√2]`, `y ∈ [-√2, √2]`; equal-area, the whole sphere inside an ellipse.
pub fn hammer_forward(lon: f64, lat: f64) -> (f64, f64) {
    let d = (1.0 + lat.cos() * (lon / 2.0).cos()).sqrt();
    (
        2.0 * 2f64.sqrt() * lat.cos() * (lon / 2.0).sin() / d,
        2f64.sqrt() * lat.sin() / d,
    )
}

/// Inverse Hammer projection: `(longitude, latitude)` of the point `(x, y)`, or `None` outside
/// the ellipse `x²/8 + y²/2 ≤ 1`.
pub fn hammer_inverse(x: f64, y: f64) -> Option<(f64, f64)> {
    if x * x / 8.0 + y * y / 2.0 > 1.0 {
        return None;
    }
    let z = (1.0 - (x / 4.0).powi(2) - (y / 2.0).powi(2)).sqrt();
    let lon = 2.0 * (z * x).atan2(2.0 * (2.0 * z * z - 1.0));
    let lat = (z * y).clamp(-1.0, 1.0).asin();
    Some((lon, lat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hammer_round_trips_and_hits_known_points() {
        let (x, y) = hammer_forward(0.0, 0.0);
        assert!(x.abs() < 1e-15 && y.abs() < 1e-15);
        let (x, y) = hammer_forward(PI, 0.0);
        assert!((x - 2.0 * 2f64.sqrt()).abs() < 1e-12 && y.abs() < 1e-12);
        let (x, y) = hammer_forward(0.3, PI / 2.0);
        assert!(x.abs() < 1e-12 && (y - 2f64.sqrt()).abs() < 1e-12);
        for &(lon, lat) in &[(0.5, 0.2), (-2.9, -1.2), (3.0, 1.4), (-0.1, 0.0)] {
            let (x, y) = hammer_forward(lon, lat);
            let (l2, b2) = hammer_inverse(x, y).unwrap();
            assert!(
                (l2 - lon).abs() < 1e-9 && (b2 - lat).abs() < 1e-9,
                "{lon},{lat}"
            );
        }
        assert!(hammer_inverse(2.9, 0.0).is_none());
    }

    #[test]
    fn grid_cells_are_consistent() {
        let g = SphereGrid::new(10, 20).unwrap();
        for r in 0..10 {
            for c in 0..20 {
                let (lon, lat) = g.cell_centre(r, c);
                assert_eq!(g.cell_of(lon, lat), (r, c));
                let (ar, ac) = g.antipode(r, c);
                let d = SphereGrid::direction(lon, lat);
                let (alon, alat) = g.cell_centre(ar, ac);
                let a = SphereGrid::direction(alon, alat);
                assert!((0..3).all(|k| (d[k] + a[k]).abs() < 1e-9));
                let (l2, b2) = SphereGrid::lon_lat(d);
                assert!((l2 - lon).abs() < 1e-9 && (b2 - lat).abs() < 1e-9);
            }
        }
        assert!(SphereGrid::new(3, 5).is_err());
        assert!(SphereGrid::new(0, 4).is_err());
    }
}
