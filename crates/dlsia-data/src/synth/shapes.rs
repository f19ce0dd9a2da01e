//! The original's `random_shapes`: a rectangle, circle, triangle or annulus ("donut") on an
//! `n × n` canvas, randomly sized and rotated, with uniform noise — the data of the autoencoder
//! clustering workflow.
//!
//! The canvases and the rotation (bilinear, constant-zero padding, about the canvas centre, as
//! `skimage.transform.rotate`) reproduce the original exactly for the same parameters; the random
//! draws come from a seeded `StdRng` instead of NumPy's global state. The original's
//! `random_rectangle` swaps its width and height ranges; that quirk is kept.

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::dataset::TensorDataset;
use crate::error::{invalid, Result};
use crate::seed::mix_seed;

/// The four shape classes with the original's class ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShapeKind {
    /// Class 1.
    Rectangle = 1,
    /// Class 2.
    Circle = 2,
    /// Class 3.
    Triangle = 3,
    /// Class 4 (an annulus).
    Donut = 4,
}

impl ShapeKind {
    /// All kinds in class order.
    pub const ALL: [ShapeKind; 4] = [
        ShapeKind::Rectangle,
        ShapeKind::Circle,
        ShapeKind::Triangle,
        ShapeKind::Donut,
    ];

    /// The class id (1..=4).
    pub fn class_id(self) -> i64 {
        self as i64
    }

    /// The original's name.
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Rectangle => "rectangle",
            ShapeKind::Circle => "circle",
            ShapeKind::Triangle => "triangle",
            ShapeKind::Donut => "donut",
        }
    }
}

/// Size parameters of one shape, as fractions of the canvas (the original's constructor
/// arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeParams {
    /// `Rectangle(height, width)`: `|x - c| < height·n` and `|y - c| < width·n`.
    Rectangle {
        /// Half-extent along x (columns).
        height: f64,
        /// Half-extent along y (rows).
        width: f64,
    },
    /// `Circle(radius)`: `r < radius·n`.
    Circle {
        /// Radius.
        radius: f64,
    },
    /// `Triangle(height)`: the upper triangle (`col >= row`) of a `height × height` rectangle.
    Triangle {
        /// Half-extent of the square.
        height: f64,
    },
    /// `Donut(radius, width)`: `Circle(radius) - Circle(radius - width)`.
    Donut {
        /// Outer radius.
        radius: f64,
        /// Ring width (absolute, same units as the radius).
        width: f64,
    },
}

impl ShapeParams {
    /// The kind of shape.
    pub fn kind(&self) -> ShapeKind {
        match self {
            ShapeParams::Rectangle { .. } => ShapeKind::Rectangle,
            ShapeParams::Circle { .. } => ShapeKind::Circle,
            ShapeParams::Triangle { .. } => ShapeKind::Triangle,
            ShapeParams::Donut { .. } => ShapeKind::Donut,
        }
    }

    /// Draws parameters with the original's ranges (`random_rectangle`, `random_circle`,
    /// `random_triangle`, `random_donut`).
    pub fn random(kind: ShapeKind, rng: &mut impl Rng) -> Self {
        let u =
            |rng: &mut dyn rand::RngCore, lo: f64, hi: f64| lo + rng.random::<f64>() * (hi - lo);
        match kind {
            ShapeKind::Rectangle => {
                // random_rectangle(width=(0.10,0.20), height=(0.30,0.40)) calls
                // Rectangle(this_width, this_height): the ranges land swapped.
                let this_width = u(rng, 0.10, 0.20);
                let this_height = u(rng, 0.30, 0.40);
                ShapeParams::Rectangle {
                    height: this_width,
                    width: this_height,
                }
            }
            ShapeKind::Circle => ShapeParams::Circle {
                radius: u(rng, 0.10, 0.40),
            },
            ShapeKind::Triangle => ShapeParams::Triangle {
                height: u(rng, 0.10, 0.35),
            },
            ShapeKind::Donut => {
                let radius = u(rng, 0.10, 0.40);
                let frac = u(rng, 0.20, 0.70);
                ShapeParams::Donut {
                    radius,
                    width: radius * frac,
                }
            }
        }
    }
}

/// The unrotated canvas (`n × n`, row-major, values 0/1).
pub fn shape_canvas(params: ShapeParams, n: usize) -> Vec<f64> {
    let c = n as f64 / 2.0;
    let nf = n as f64;
    let circle = |r: f64, x: f64, y: f64| ((x - c).powi(2) + (y - c).powi(2)).sqrt() < r * nf;
    let rect = |h: f64, w: f64, x: f64, y: f64| (x - c).abs() < h * nf && (y - c).abs() < w * nf;
    let mut out = vec![0.0; n * n];
    for row in 0..n {
        for col in 0..n {
            let (x, y) = (col as f64, row as f64);
            let v = match params {
                ShapeParams::Rectangle { height, width } => rect(height, width, x, y) as u8 as f64,
                ShapeParams::Circle { radius } => circle(radius, x, y) as u8 as f64,
                ShapeParams::Triangle { height } => {
                    (col >= row && rect(height, height, x, y)) as u8 as f64
                }
                ShapeParams::Donut { radius, width } => {
                    circle(radius, x, y) as u8 as f64 - circle(radius - width, x, y) as u8 as f64
                }
            };
            out[row * n + col] = v;
        }
    }
    out
}

/// Rotates an `n × n` image by `angle_deg` counter-clockwise about its centre like
/// `skimage.transform.rotate` (bilinear, outside = 0, result clipped to the input's range).
pub fn rotate_bilinear(img: &[f64], n: usize, angle_deg: f64) -> Vec<f64> {
    let c = n as f64 / 2.0 - 0.5;
    let (s, co) = angle_deg.to_radians().sin_cos();
    let px = |r: i64, col: i64| -> f64 {
        if r < 0 || col < 0 || r >= n as i64 || col >= n as i64 {
            0.0
        } else {
            img[r as usize * n + col as usize]
        }
    };
    let (lo, hi) = img
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let mut out = vec![0.0; n * n];
    for row in 0..n {
        for col in 0..n {
            // inverse map: input = R(θ)(output - c) + c on (x=col, y=row)
            let (x, y) = (col as f64 - c, row as f64 - c);
            let xi = co * x - s * y + c;
            let yi = s * x + co * y + c;
            let (r0, c0) = (yi.floor(), xi.floor());
            let (dr, dc) = (yi - r0, xi - c0);
            let (r0, c0) = (r0 as i64, c0 as i64);
            let top = (1.0 - dc) * px(r0, c0) + dc * px(r0, c0 + 1);
            let bottom = (1.0 - dc) * px(r0 + 1, c0) + dc * px(r0 + 1, c0 + 1);
            out[row * n + col] = ((1.0 - dr) * top + dr * bottom).clamp(lo, hi);
        }
    }
    out
}

/// One random shape image and its derived arrays (the original's `get_random_object`).
#[derive(Debug, Clone)]
pub struct ShapeSample {
    /// The shape class.
    pub kind: ShapeKind,
    /// The parameters drawn.
    pub params: ShapeParams,
    /// Rotation angle in degrees.
    pub angle: f64,
    /// Noise-free rotated image (`n × n`).
    pub ground_truth: Vec<f32>,
    /// `ground_truth + U(0, noise)` with `noise ~ U(0, noise_level)` per image.
    pub noisy: Vec<f32>,
    /// `(ground_truth > 0.5) · class_id`.
    pub class_image: Vec<i64>,
    /// `noisy` min–max scaled to `[0, 1]`.
    pub normalized: Vec<f32>,
}

/// Draws one random shape (class uniform over the four kinds, angle uniform in `[0, 360)`).
pub fn random_shape(rng: &mut impl Rng, noise_level: f64, n: usize) -> ShapeSample {
    let kind = ShapeKind::ALL[rng.random_range(0..4)];
    let params = ShapeParams::random(kind, rng);
    let angle = rng.random::<f64>() * 360.0;
    let gt = rotate_bilinear(&shape_canvas(params, n), n, angle);
    let noisy: Vec<f64> = gt
        .iter()
        .map(|&g| g + rng.random::<f64>() * noise_level)
        .collect();
    let class_image = gt
        .iter()
        .map(|&g| if g > 0.5 { kind.class_id() } else { 0 })
        .collect();
    let lo = noisy.iter().copied().fold(f64::INFINITY, f64::min);
    let shifted: Vec<f64> = noisy.iter().map(|v| v - lo).collect();
    let mut div = shifted.iter().copied().fold(0.0, f64::max);
    if div < 1e-12 {
        div = 1.0;
    }
    ShapeSample {
        kind,
        params,
        angle,
        ground_truth: gt.iter().map(|&v| v as f32).collect(),
        noisy: noisy.iter().map(|&v| v as f32).collect(),
        class_image,
        normalized: shifted.iter().map(|&v| (v / div) as f32).collect(),
    }
}

/// A set of random shapes (the original's `build_random_shape_set_numpy`).
#[derive(Debug, Clone)]
pub struct ShapeSet {
    /// Noise-free images `(N, 1, n, n)`.
    pub ground_truth: Tensor,
    /// Noisy images `(N, 1, n, n)`.
    pub noisy: Tensor,
    /// Min–max normalised noisy images `(N, 1, n, n)`.
    pub normalized: Tensor,
    /// Class images `(N, n, n)` `i64` (0 background, 1..=4 shape class).
    pub class_image: Tensor,
    /// Per-image class `(N,)` `i64` (1..=4).
    pub labels: Tensor,
}

impl ShapeSet {
    /// A segmentation dataset: normalised images with class images as targets.
    pub fn segmentation_dataset(&self) -> Result<TensorDataset> {
        TensorDataset::new(
            self.normalized.clone(),
            Some(self.class_image.clone()),
            None,
        )
    }
}

/// Builds `n_imgs` random shapes of `n_xy × n_xy`. Like the original, fails if a class is
/// missing (generate a larger set).
pub fn random_shape_set(
    n_imgs: usize,
    noise_level: f64,
    n_xy: usize,
    seed: u64,
) -> Result<ShapeSet> {
    if n_xy < 4 || !(noise_level >= 0.0 && noise_level.is_finite()) {
        return Err(invalid(
            "random_shape_set",
            format!("canvas {n_xy} (need >= 4) and noise level {noise_level} (need finite >= 0)"),
        ));
    }
    // One independent stream per image: the set is the same however many threads draw it.
    let samples: Vec<ShapeSample> = (0..n_imgs)
        .into_par_iter()
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(mix_seed(seed, i as u64));
            random_shape(&mut rng, noise_level, n_xy)
        })
        .collect();
    let (mut gt, mut noisy, mut norm, mut cls, mut lab) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in samples {
        gt.extend(s.ground_truth);
        noisy.extend(s.noisy);
        norm.extend(s.normalized);
        lab.push(s.class_image.iter().copied().max().unwrap_or(0));
        cls.extend(s.class_image);
    }
    for k in 1..=4 {
        if !lab.contains(&k) {
            return Err(invalid(
                "random_shape_set",
                format!("class {k} is missing from {n_imgs} images; generate a larger set"),
            ));
        }
    }
    let dev = Device::Cpu;
    let img_shape = (n_imgs, 1, n_xy, n_xy);
    Ok(ShapeSet {
        ground_truth: Tensor::from_vec(gt, img_shape, &dev)?,
        noisy: Tensor::from_vec(noisy, img_shape, &dev)?,
        normalized: Tensor::from_vec(norm, img_shape, &dev)?,
        class_image: Tensor::from_vec(cls, (n_imgs, n_xy, n_xy), &dev)?,
        labels: Tensor::from_vec(lab, n_imgs, &dev)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canvases_match_definitions() {
        let n = 64;
        let c = shape_canvas(ShapeParams::Circle { radius: 0.25 }, n);
        // r < 16 around (32, 32): (32, 47) inside, (32, 48) outside
        assert_eq!(c[32 * n + 47], 1.0);
        assert_eq!(c[32 * n + 48], 0.0);
        let t = shape_canvas(ShapeParams::Triangle { height: 0.25 }, n);
        assert_eq!(t[20 * n + 40], 1.0);
        assert_eq!(t[40 * n + 20], 0.0);
        let r = shape_canvas(
            ShapeParams::Rectangle {
                height: 0.2,
                width: 0.05,
            },
            n,
        );
        // |x-32| < 12.8 and |y-32| < 3.2
        assert_eq!(r[34 * n + 44], 1.0);
        assert_eq!(r[36 * n + 44], 0.0);
        let d = shape_canvas(
            ShapeParams::Donut {
                radius: 0.4,
                width: 0.2,
            },
            n,
        );
        assert_eq!(d[32 * n + 32], 0.0);
        assert_eq!(d[32 * n + 32 + 20], 1.0);
    }

    #[test]
    fn rotation_by_zero_and_full_turn_is_identity() {
        let n = 16;
        let img: Vec<f64> = (0..n * n).map(|v| (v % 7) as f64).collect();
        let r = rotate_bilinear(&img, n, 0.0);
        assert!(img.iter().zip(&r).all(|(a, b)| (a - b).abs() < 1e-9));
        let r = rotate_bilinear(&img, n, 90.0);
        // 90° counter-clockwise: output (row, col) = input (col, n-1-row)
        for row in 0..n {
            for col in 0..n {
                assert!((r[row * n + col] - img[col * n + (n - 1 - row)]).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn set_has_all_classes_and_is_seeded() {
        let a = random_shape_set(40, 0.1, 32, 1).unwrap();
        let b = random_shape_set(40, 0.1, 32, 1).unwrap();
        let va: Vec<f32> = a.noisy.flatten_all().unwrap().to_vec1().unwrap();
        let vb: Vec<f32> = b.noisy.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(va, vb);
        assert!(random_shape_set(1, 0.1, 32, 1).is_err());
        let n: Vec<f32> = a.normalized.flatten_all().unwrap().to_vec1().unwrap();
        assert!(n.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert_eq!(
            a.segmentation_dataset().unwrap().images().dims(),
            &[40, 1, 32, 32]
        );
    }
}
