//! Fibers in concrete: a 3-D volume with a textured cement matrix, aggregate grains and thin,
//! randomly oriented cylinders (the fibers) of known centre lines, plus sparse partial labels of a
//! few fibers and some background as a user would paint them in napari — the data of the
//! SMSNet-ensemble workflow.
//!
//! Fibers are bright (steel in X-ray CT), grains are mid-grey ellipsoids, the matrix is smooth
//! value noise; partial-volume edges and Gaussian noise make the segmentation non-trivial.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// What to generate. Lengths are in voxels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiberConfig {
    /// Volume shape `(D, H, W)`.
    pub shape: [usize; 3],
    /// Number of fibers.
    pub n_fibers: usize,
    /// Fiber radius range.
    pub radius: (f64, f64),
    /// Fiber length range.
    pub length: (f64, f64),
    /// Number of aggregate grains.
    pub n_grains: usize,
    /// Grain semi-axis range.
    pub grain_radius: (f64, f64),
    /// Standard deviation of the additive Gaussian noise (fiber contrast is about 0.6).
    pub noise: f64,
    /// Fibers that receive partial labels.
    pub labelled_fibers: usize,
    /// Slices (along D) in which labels are painted.
    pub labelled_slices: usize,
    /// Background brush strokes (discs) painted per labelled slice.
    pub background_strokes: usize,
    /// Brush radius for background strokes.
    pub brush_radius: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for FiberConfig {
    fn default() -> Self {
        Self {
            shape: [128, 128, 128],
            n_fibers: 40,
            radius: (1.5, 2.5),
            length: (40.0, 100.0),
            n_grains: 25,
            grain_radius: (6.0, 14.0),
            noise: 0.08,
            labelled_fibers: 6,
            labelled_slices: 12,
            background_strokes: 6,
            brush_radius: 4.0,
            seed: 0,
        }
    }
}

/// One fiber: a cylinder of `radius` around the segment `start`–`end` (coordinates `(z, y, x)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fiber {
    /// One end of the centre line.
    pub start: [f64; 3],
    /// The other end.
    pub end: [f64; 3],
    /// Radius.
    pub radius: f64,
}

impl Fiber {
    /// Length of the centre line.
    pub fn length(&self) -> f64 {
        dist(&self.start, &self.end)
    }

    /// Unit direction from `start` to `end`.
    pub fn direction(&self) -> [f64; 3] {
        let l = self.length().max(1e-12);
        [0, 1, 2].map(|i| (self.end[i] - self.start[i]) / l)
    }

    /// Distance from `p` to the centre line.
    pub fn distance(&self, p: &[f64; 3]) -> f64 {
        let d = [0, 1, 2].map(|i| self.end[i] - self.start[i]);
        let l2 = d.iter().map(|v| v * v).sum::<f64>();
        let t = if l2 > 0.0 {
            ((0..3).map(|i| (p[i] - self.start[i]) * d[i]).sum::<f64>() / l2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let q = [0, 1, 2].map(|i| self.start[i] + t * d[i]);
        dist(p, &q)
    }
}

fn dist(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>().sqrt()
}

/// The generated volume and its ground truth, all `(D, H, W)` row-major.
#[derive(Debug, Clone)]
pub struct FiberVolume {
    /// Shape `(D, H, W)`.
    pub shape: [usize; 3],
    /// The observed image (roughly in `[0, 1]`).
    pub image: Vec<f32>,
    /// Ground truth: 1 inside a fiber, 0 elsewhere.
    pub labels: Vec<i64>,
    /// Fiber instance ids: `k + 1` inside fiber `k`, 0 elsewhere.
    pub instances: Vec<u32>,
    /// Sparse labels as painted: 1 (fiber), 0 (background), −1 (unlabelled).
    pub sparse_labels: Vec<i64>,
    /// The fibers' centre lines.
    pub fibers: Vec<Fiber>,
}

impl FiberConfig {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(invalid("FiberConfig", m));
        if self.shape.iter().any(|&s| s < 8) {
            return bad(format!(
                "shape {:?}: every side must be at least 8",
                self.shape
            ));
        }
        for (name, (lo, hi)) in [
            ("radius", self.radius),
            ("length", self.length),
            ("grain_radius", self.grain_radius),
        ] {
            if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
                return bad(format!("{name} range ({lo}, {hi}) needs 0 < lo <= hi"));
            }
        }
        if !(self.noise >= 0.0 && self.noise.is_finite()) {
            return bad(format!("noise {} must be finite and >= 0", self.noise));
        }
        if self.labelled_fibers > self.n_fibers {
            return bad(format!(
                "labelled_fibers {} exceeds n_fibers {}",
                self.labelled_fibers, self.n_fibers
            ));
        }
        Ok(())
    }
}

/// Smooth value noise: random values on a coarse grid, trilinearly interpolated.
fn value_noise(shape: [usize; 3], cell: f64, rng: &mut StdRng) -> Vec<f32> {
    let g = shape.map(|s| (s as f64 / cell).ceil() as usize + 2);
    let grid: Vec<f32> = (0..g[0] * g[1] * g[2])
        .map(|_| rng.random::<f32>())
        .collect();
    let at = |i: usize, j: usize, k: usize| grid[(i * g[1] + j) * g[2] + k];
    let axis = |n: usize| -> Vec<(usize, f32)> {
        (0..n)
            .map(|x| {
                let f = x as f64 / cell;
                (f.floor() as usize, (f - f.floor()) as f32)
            })
            .collect()
    };
    let (az, ay, ax) = (axis(shape[0]), axis(shape[1]), axis(shape[2]));
    let mut out = vec![0f32; shape[0] * shape[1] * shape[2]];
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    for (z, &(iz, fz)) in az.iter().enumerate() {
        let fz = smooth(fz);
        for (y, &(iy, fy)) in ay.iter().enumerate() {
            let fy = smooth(fy);
            let row = &mut out[(z * shape[1] + y) * shape[2]..(z * shape[1] + y + 1) * shape[2]];
            for (o, &(ix, fx)) in row.iter_mut().zip(&ax) {
                let fx = smooth(fx);
                let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
                let c00 = lerp(at(iz, iy, ix), at(iz, iy, ix + 1), fx);
                let c01 = lerp(at(iz, iy + 1, ix), at(iz, iy + 1, ix + 1), fx);
                let c10 = lerp(at(iz + 1, iy, ix), at(iz + 1, iy, ix + 1), fx);
                let c11 = lerp(at(iz + 1, iy + 1, ix), at(iz + 1, iy + 1, ix + 1), fx);
                *o = lerp(lerp(c00, c01, fy), lerp(c10, c11, fy), fz);
            }
        }
    }
    out
}

fn random_unit(rng: &mut StdRng) -> [f64; 3] {
    loop {
        let v = [0, 1, 2].map(|_| rng.random_range(-1.0..1.0f64));
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        if n > 0.1 && n <= 1.0 {
            return v.map(|x| x / n);
        }
    }
}

/// Generates a fibers-in-concrete volume.
pub fn fibers_in_concrete(config: &FiberConfig) -> Result<FiberVolume> {
    config.check()?;
    let [d, h, w] = config.shape;
    let n = d * h * w;
    let idx = |z: usize, y: usize, x: usize| (z * h + y) * w + x;
    let mut rng = StdRng::seed_from_u64(config.seed);

    // Matrix: two octaves of value noise around 0.30.
    let coarse = value_noise(config.shape, 16.0, &mut rng);
    let fine = value_noise(config.shape, 4.0, &mut rng);
    let mut image: Vec<f32> = coarse
        .iter()
        .zip(&fine)
        .map(|(c, f)| 0.22 + 0.12 * c + 0.06 * f)
        .collect();

    // Aggregate grains: random ellipsoids, mid-grey with their own texture.
    for _ in 0..config.n_grains {
        let centre = [d, h, w].map(|s| rng.random_range(0.0..s as f64));
        let semi =
            [0, 1, 2].map(|_| rng.random_range(config.grain_radius.0..=config.grain_radius.1));
        let level = rng.random_range(0.42..0.52f32);
        let lo = [0, 1, 2].map(|i| (centre[i] - semi[i]).floor().max(0.0) as usize);
        let hi =
            [0, 1, 2].map(|i| ((centre[i] + semi[i]).ceil() as usize + 1).min(config.shape[i]));
        for z in lo[0]..hi[0] {
            for y in lo[1]..hi[1] {
                for x in lo[2]..hi[2] {
                    let p = [z as f64, y as f64, x as f64];
                    let q: f64 = (0..3).map(|i| ((p[i] - centre[i]) / semi[i]).powi(2)).sum();
                    if q < 1.0 {
                        let i = idx(z, y, x);
                        // soft edge over the outer 10 % of the radius
                        let t = ((1.0 - q.sqrt()) / 0.1).min(1.0) as f32;
                        image[i] = image[i] * (1.0 - t) + (level + 0.05 * fine[i]) * t;
                    }
                }
            }
        }
    }

    // Fibers: segments with a random centre inside the volume and a random direction.
    let mut fibers = Vec::with_capacity(config.n_fibers);
    let mut instances = vec![0u32; n];
    let mut labels = vec![0i64; n];
    for k in 0..config.n_fibers {
        let centre = [d, h, w].map(|s| rng.random_range(0.15 * s as f64..0.85 * s as f64));
        let dir = random_unit(&mut rng);
        let len = rng.random_range(config.length.0..=config.length.1);
        let radius = rng.random_range(config.radius.0..=config.radius.1);
        let mut start = [0, 1, 2].map(|i| centre[i] - dir[i] * len / 2.0);
        let mut end = [0, 1, 2].map(|i| centre[i] + dir[i] * len / 2.0);
        for i in 0..3 {
            let top = config.shape[i] as f64 - 1.0;
            start[i] = start[i].clamp(0.0, top);
            end[i] = end[i].clamp(0.0, top);
        }
        let fiber = Fiber { start, end, radius };
        let reach = radius + 1.0;
        let lo = [0, 1, 2].map(|i| (start[i].min(end[i]) - reach).floor().max(0.0) as usize);
        let hi = [0, 1, 2]
            .map(|i| ((start[i].max(end[i]) + reach).ceil() as usize + 1).min(config.shape[i]));
        // March along the fiber, visiting only voxels near the centre line.
        let steps = (fiber.length() * 2.0).ceil() as usize + 1;
        let r = reach.ceil() as i64;
        let mut visit = |z: usize, y: usize, x: usize| {
            let p = [z as f64, y as f64, x as f64];
            let dd = fiber.distance(&p);
            if dd < reach {
                let i = idx(z, y, x);
                // partial-volume edge: full inside radius - 0.5, fading to 0 at radius + 0.5
                let t = (radius + 0.5 - dd).clamp(0.0, 1.0) as f32;
                let bright = 0.85 + 0.05 * fine[i];
                if t > 0.0 && image[i] < bright {
                    image[i] = image[i] * (1.0 - t) + bright * t;
                }
                if dd <= radius {
                    labels[i] = 1;
                    instances[i] = k as u32 + 1;
                }
            }
        };
        let mut last = [usize::MAX; 3];
        for s in 0..steps {
            let t = s as f64 / (steps - 1).max(1) as f64;
            let c = [0, 1, 2].map(|i| (start[i] + t * (end[i] - start[i])).round() as i64);
            let ci = c.map(|v| v as usize);
            if ci == last {
                continue;
            }
            last = ci;
            for dz in -r..=r {
                for dy in -r..=r {
                    for dx in -r..=r {
                        let (z, y, x) = (c[0] + dz, c[1] + dy, c[2] + dx);
                        if z < lo[0] as i64 || y < lo[1] as i64 || x < lo[2] as i64 {
                            continue;
                        }
                        let (z, y, x) = (z as usize, y as usize, x as usize);
                        if z >= hi[0] || y >= hi[1] || x >= hi[2] {
                            continue;
                        }
                        visit(z, y, x);
                    }
                }
            }
        }
        fibers.push(fiber);
    }

    // Noise.
    if config.noise > 0.0 {
        let normal = Normal::new(0.0f32, config.noise as f32)
            .map_err(|e| invalid("FiberConfig::noise", e.to_string()))?;
        for v in image.iter_mut() {
            *v += normal.sample(&mut rng);
        }
    }

    // Sparse labels: a few fibers in a few slices, and background discs away from fibers.
    let mut sparse = vec![-1i64; n];
    let mut chosen: Vec<usize> = (0..config.n_fibers).collect();
    for i in 0..config.labelled_fibers {
        let j = rng.random_range(i..chosen.len());
        chosen.swap(i, j);
    }
    let chosen: Vec<u32> = chosen[..config.labelled_fibers]
        .iter()
        .map(|&k| k as u32 + 1)
        .collect();
    let mut slices: Vec<usize> = (0..d).collect();
    let n_slices = config.labelled_slices.min(d);
    for i in 0..n_slices {
        let j = rng.random_range(i..d);
        slices.swap(i, j);
    }
    let br = config.brush_radius;
    for &z in &slices[..n_slices] {
        for y in 0..h {
            for x in 0..w {
                let i = idx(z, y, x);
                if chosen.contains(&instances[i]) {
                    sparse[i] = 1;
                }
            }
        }
        for _ in 0..config.background_strokes {
            let (cy, cx) = (
                rng.random_range(0.0..h as f64),
                rng.random_range(0.0..w as f64),
            );
            let ylo = (cy - br).floor().max(0.0) as usize;
            let yhi = ((cy + br).ceil() as usize + 1).min(h);
            let xlo = (cx - br).floor().max(0.0) as usize;
            let xhi = ((cx + br).ceil() as usize + 1).min(w);
            for y in ylo..yhi {
                for x in xlo..xhi {
                    let i = idx(z, y, x);
                    // a painter avoids the fibers' surroundings
                    let near = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2) <= br * br;
                    if near && labels[i] == 0 && image[i] < 0.7 {
                        sparse[i] = 0;
                    }
                }
            }
        }
    }

    Ok(FiberVolume {
        shape: config.shape,
        image,
        labels,
        instances,
        sparse_labels: sparse,
        fibers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FiberConfig {
        FiberConfig {
            shape: [48, 40, 44],
            n_fibers: 10,
            length: (20.0, 40.0),
            n_grains: 6,
            grain_radius: (4.0, 8.0),
            labelled_fibers: 3,
            labelled_slices: 6,
            seed: 3,
            ..Default::default()
        }
    }

    #[test]
    fn labels_agree_with_centre_lines() {
        let v = fibers_in_concrete(&small()).unwrap();
        let [d, h, w] = v.shape;
        let mut count = 0;
        for z in 0..d {
            for y in 0..h {
                for x in 0..w {
                    let i = (z * h + y) * w + x;
                    let p = [z as f64, y as f64, x as f64];
                    let inside = v.fibers.iter().any(|f| f.distance(&p) <= f.radius);
                    assert_eq!(inside, v.labels[i] == 1, "voxel {p:?}");
                    if v.instances[i] > 0 {
                        let f = &v.fibers[v.instances[i] as usize - 1];
                        assert!(f.distance(&p) <= f.radius);
                        count += 1;
                    }
                }
            }
        }
        assert!(count > 500, "fibers should occupy voxels, got {count}");
    }

    #[test]
    fn sparse_labels_are_subset_of_truth_and_seeded() {
        let v = fibers_in_concrete(&small()).unwrap();
        let mut ones = 0;
        let mut zeros = 0;
        for (s, t) in v.sparse_labels.iter().zip(&v.labels) {
            match s {
                1 => {
                    assert_eq!(*t, 1);
                    ones += 1
                }
                0 => {
                    assert_eq!(*t, 0);
                    zeros += 1
                }
                -1 => {}
                _ => panic!("unexpected label {s}"),
            }
        }
        assert!(ones > 0 && zeros > 0, "ones {ones} zeros {zeros}");
        assert!(
            (ones + zeros) * 20 < v.labels.len(),
            "labels must be sparse"
        );
        let again = fibers_in_concrete(&small()).unwrap();
        assert_eq!(again.image, v.image);
        let other = fibers_in_concrete(&FiberConfig { seed: 4, ..small() }).unwrap();
        assert_ne!(other.image, v.image);
    }

    #[test]
    fn fibers_are_brighter_than_the_rest() {
        let v = fibers_in_concrete(&small()).unwrap();
        let mean = |want: i64| {
            let (s, n) = v
                .image
                .iter()
                .zip(&v.labels)
                .filter(|(_, &l)| l == want)
                .fold((0.0, 0), |(s, n), (&x, _)| (s + x as f64, n + 1));
            s / n as f64
        };
        assert!(
            mean(1) - mean(0) > 0.3,
            "fiber {} vs rest {}",
            mean(1),
            mean(0)
        );
    }

    #[test]
    fn bad_config_is_error() {
        assert!(fibers_in_concrete(&FiberConfig {
            shape: [4, 40, 40],
            ..small()
        })
        .is_err());
        assert!(fibers_in_concrete(&FiberConfig {
            radius: (2.0, 1.0),
            ..small()
        })
        .is_err());
        assert!(fibers_in_concrete(&FiberConfig {
            labelled_fibers: 11,
            ..small()
        })
        .is_err());
        assert!(fibers_in_concrete(&FiberConfig {
            noise: f64::NAN,
            ..small()
        })
        .is_err());
    }
}
