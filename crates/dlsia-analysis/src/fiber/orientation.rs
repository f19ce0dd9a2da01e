//! The direction distribution of a segmentation from its autocorrelation sampled on a sphere.
//!
//! For a foreground mask `f`, `A(u) = P(f(x + r·u) = 1 | f(x) = 1)`: the probability that the
//! voxel at distance `r` in direction `u` from a foreground voxel is foreground too. For fibers
//! longer than `r`, `A` peaks along the fiber directions (the DLSIA paper uses `r = 30` voxels).
//! It is estimated from a seeded random sample of foreground voxels (reservoir sampling) with the
//! offset `r·u` rounded to the nearest voxel, on every cell of an equal-area [`SphereGrid`], and
//! symmetrised (`A(u) = A(−u)` for the exact autocorrelation).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::sphere::SphereGrid;
use crate::ccl::LabelValue;
use crate::error::{invalid, Error, Result};

/// Settings for [`orientation_distribution`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrientationOptions {
    /// Sphere radius in voxels (the paper: 30).
    pub radius: f64,
    /// The directions sampled.
    pub grid: SphereGrid,
    /// At most this many foreground voxels are used (a seeded random subset).
    pub max_samples: usize,
    /// Seed of the subset.
    pub seed: u64,
}

impl Default for OrientationOptions {
    /// Radius 30, a 36 × 72 grid (5° in longitude), 20 000 samples, seed 0.
    fn default() -> Self {
        Self {
            radius: 30.0,
            grid: SphereGrid {
                n_lat: 36,
                n_lon: 72,
            },
            max_samples: 20_000,
            seed: 0,
        }
    }
}

/// Autocorrelation values on a sphere grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrientationDistribution {
    /// The grid the values live on.
    pub grid: SphereGrid,
    /// The radius used.
    pub radius: f64,
    /// How many foreground voxels were sampled.
    pub samples: usize,
    /// `values[row * n_lon + col]`: the autocorrelation in the direction of cell `(row, col)`.
    pub values: Vec<f64>,
}

impl OrientationDistribution {
    /// The direction `[z, y, x]` (unit, `z ≥ 0`) of the largest value.
    pub fn peak_direction(&self) -> [f64; 3] {
        let k = (0..self.values.len())
            .max_by(|&a, &b| self.values[a].total_cmp(&self.values[b]))
            .unwrap_or(0);
        let (lon, lat) = self
            .grid
            .cell_centre(k / self.grid.n_lon, k % self.grid.n_lon);
        let d = SphereGrid::direction(lon, lat);
        if d[0] < 0.0 {
            d.map(|x| -x)
        } else {
            d
        }
    }

    /// The values as CSV: `longitude_deg,latitude_deg,value` per cell.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("longitude_deg,latitude_deg,value\n");
        for r in 0..self.grid.n_lat {
            for c in 0..self.grid.n_lon {
                let (lon, lat) = self.grid.cell_centre(r, c);
                s.push_str(&format!(
                    "{},{},{}\n",
                    lon.to_degrees(),
                    lat.to_degrees(),
                    self.values[r * self.grid.n_lon + c]
                ));
            }
        }
        s
    }
}

/// The autocorrelation direction distribution of the foreground (non-zero) voxels of a
/// `[d, h, w]` volume. Errors if the volume has no foreground or the radius leaves no sampled
/// voxel inside the volume in some direction.
pub fn orientation_distribution<T: LabelValue>(
    volume: &[T],
    shape: [usize; 3],
    options: &OrientationOptions,
) -> Result<OrientationDistribution> {
    const OP: &str = "orientation_distribution";
    let [d, h, w] = shape;
    let n = d
        .checked_mul(h)
        .and_then(|x| x.checked_mul(w))
        .ok_or_else(|| invalid(OP, format!("shape {shape:?} overflows")))?;
    if n != volume.len() {
        return Err(Error::ShapeMismatch {
            op: OP,
            shape: shape.to_vec(),
            expected: n,
            got: volume.len(),
        });
    }
    let grid = SphereGrid::new(options.grid.n_lat, options.grid.n_lon)?;
    if !(options.radius.is_finite() && options.radius >= 1.0) {
        return Err(invalid(
            OP,
            format!("radius {} must be at least 1 voxel", options.radius),
        ));
    }
    if options.max_samples == 0 {
        return Err(invalid(OP, "max_samples must be at least 1"));
    }

    // Reservoir sample of foreground voxel indices.
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut sample: Vec<usize> = Vec::with_capacity(options.max_samples.min(n));
    let mut seen = 0usize;
    for (i, v) in volume.iter().enumerate() {
        if v.is_background() {
            continue;
        }
        seen += 1;
        if sample.len() < options.max_samples {
            sample.push(i);
        } else {
            let j = rng.random_range(0..seen);
            if j < options.max_samples {
                sample[j] = i;
            }
        }
    }
    if sample.is_empty() {
        return Err(invalid(OP, "the volume has no foreground voxel"));
    }
    let coords: Vec<[i64; 3]> = sample
        .iter()
        .map(|&i| [(i / (h * w)) as i64, ((i / w) % h) as i64, (i % w) as i64])
        .collect();

    let raw: Vec<Option<f64>> = (0..grid.len())
        .into_par_iter()
        .map(|k| {
            let (lon, lat) = grid.cell_centre(k / grid.n_lon, k % grid.n_lon);
            let u = SphereGrid::direction(lon, lat);
            let off = u.map(|c| (c * options.radius).round() as i64);
            let (mut inside, mut hits) = (0u64, 0u64);
            for p in &coords {
                let q = [p[0] + off[0], p[1] + off[1], p[2] + off[2]];
                if q[0] < 0 || q[1] < 0 || q[2] < 0 {
                    continue;
                }
                let (qz, qy, qx) = (q[0] as usize, q[1] as usize, q[2] as usize);
                if qz >= d || qy >= h || qx >= w {
                    continue;
                }
                inside += 1;
                if !volume[(qz * h + qy) * w + qx].is_background() {
                    hits += 1;
                }
            }
            (inside > 0).then(|| hits as f64 / inside as f64)
        })
        .collect();
    let mut values = Vec::with_capacity(grid.len());
    for r in 0..grid.n_lat {
        for c in 0..grid.n_lon {
            let (ar, ac) = grid.antipode(r, c);
            let v = match (raw[r * grid.n_lon + c], raw[ar * grid.n_lon + ac]) {
                (Some(a), Some(b)) => (a + b) / 2.0,
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => {
                    return Err(invalid(
                        OP,
                        format!(
                            "radius {} leaves no sampled voxel inside the {shape:?} volume in some \
                             direction; use a smaller radius",
                            options.radius
                        ),
                    ))
                }
            };
            values.push(v);
        }
    }
    Ok(OrientationDistribution {
        grid,
        radius: options.radius,
        samples: coords.len(),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every foreground voxel sampled, the estimate equals a direct f64 computation of
    /// hits / inside for the same rounded offsets, averaged over the two antipodal directions.
    #[test]
    fn full_sample_matches_a_direct_computation() {
        let shape = [12usize, 11, 13];
        let [d, h, w] = shape;
        let mut rng = StdRng::seed_from_u64(4);
        let vol: Vec<u8> = (0..d * h * w).map(|_| rng.random_bool(0.3) as u8).collect();
        let opts = OrientationOptions {
            radius: 4.0,
            grid: SphereGrid { n_lat: 6, n_lon: 8 },
            max_samples: usize::MAX,
            seed: 0,
        };
        let got = orientation_distribution(&vol, shape, &opts).unwrap();
        let direct = |lon: f64, lat: f64| -> (f64, f64) {
            let off = SphereGrid::direction(lon, lat).map(|c| (c * 4.0).round() as i64);
            let (mut inside, mut hits) = (0.0, 0.0);
            for z in 0..d as i64 {
                for y in 0..h as i64 {
                    for x in 0..w as i64 {
                        if vol[((z as usize) * h + y as usize) * w + x as usize] == 0 {
                            continue;
                        }
                        let (qz, qy, qx) = (z + off[0], y + off[1], x + off[2]);
                        if qz < 0
                            || qy < 0
                            || qx < 0
                            || qz >= d as i64
                            || qy >= h as i64
                            || qx >= w as i64
                        {
                            continue;
                        }
                        inside += 1.0;
                        hits += vol[((qz as usize) * h + qy as usize) * w + qx as usize] as f64;
                    }
                }
            }
            (hits, inside)
        };
        for r in 0..6 {
            for c in 0..8 {
                let (lon, lat) = got.grid.cell_centre(r, c);
                let (ar, ac) = got.grid.antipode(r, c);
                let (alon, alat) = got.grid.cell_centre(ar, ac);
                let (h1, i1) = direct(lon, lat);
                let (h2, i2) = direct(alon, alat);
                let expected = (h1 / i1 + h2 / i2) / 2.0;
                assert!(
                    (got.values[r * 8 + c] - expected).abs() < 1e-12,
                    "cell {r},{c}"
                );
            }
        }
        assert_eq!(got.samples, vol.iter().filter(|&&v| v != 0).count());
    }
}
