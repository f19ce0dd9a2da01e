//! X-ray scattering-like detector images for the inpainting workflow: a power-law background,
//! Debye–Scherrer rings with azimuthal texture, Bragg peaks, a beam stop with its holder arm, and
//! horizontal and vertical detector-module gaps.
//!
//! [`add_artificial_gaps`] is the gap augmentation of the original inpainting study: it blanks
//! new gap-shaped bands where the ground truth is known, so a network learns to fill gaps from
//! examples whose answer is known. The loss mask marks exactly those new gap pixels. (The study's
//! code is not part of the dlsia package; this follows the paper's description.)

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// What to generate. Lengths are in pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScatteringConfig {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Number of rings (range).
    pub rings: (usize, usize),
    /// Number of Bragg peaks (range).
    pub peaks: (usize, usize),
    /// Detector module size `(rows, cols)`; gaps lie between modules.
    pub module: (usize, usize),
    /// Gap width between modules, in pixels.
    pub gap: usize,
    /// Beam-stop radius.
    pub beamstop_radius: f64,
    /// Expected photon count at the brightest ring (sets the Poisson noise; 0 = no noise).
    pub photons: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for ScatteringConfig {
    fn default() -> Self {
        Self {
            height: 256,
            width: 256,
            rings: (2, 5),
            peaks: (0, 6),
            module: (60, 120),
            gap: 5,
            beamstop_radius: 8.0,
            photons: 1000.0,
            seed: 0,
        }
    }
}

/// One detector image, all row-major `height × width`.
#[derive(Debug, Clone)]
pub struct ScatteringPattern {
    /// Height and width.
    pub shape: [usize; 2],
    /// Noise-free intensity everywhere (the ground truth), scaled so the brightest ring is 1.
    pub truth: Vec<f32>,
    /// What the detector records: noisy intensity, 0 in gaps and behind the beam stop.
    pub observed: Vec<f32>,
    /// 1 where the detector records, 0 in gaps and behind the beam stop.
    pub valid: Vec<f32>,
    /// Beam centre `(row, col)`.
    pub centre: [f64; 2],
}

impl ScatteringConfig {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(invalid("ScatteringConfig", m));
        if self.height < 16 || self.width < 16 {
            return bad(format!(
                "image {}×{} must be at least 16×16",
                self.height, self.width
            ));
        }
        if self.rings.0 > self.rings.1 || self.peaks.0 > self.peaks.1 {
            return bad("ring and peak count ranges need lo <= hi".into());
        }
        if self.module.0 == 0 || self.module.1 == 0 {
            return bad("module size must be positive".into());
        }
        if !(self.photons >= 0.0 && self.photons.is_finite() && self.beamstop_radius >= 0.0) {
            return bad("photons and beamstop_radius must be finite and >= 0".into());
        }
        Ok(())
    }
}

/// Rows (or columns) of module gaps along an axis of `len` pixels.
fn gap_lines(len: usize, module: usize, gap: usize) -> Vec<bool> {
    let mut g = vec![false; len];
    let mut p = module;
    while p < len {
        for v in g.iter_mut().skip(p).take(gap) {
            *v = true;
        }
        p += module + gap;
    }
    g
}

/// Generates one pattern.
pub fn scattering_pattern(config: &ScatteringConfig) -> Result<ScatteringPattern> {
    config.check()?;
    let (h, w) = (config.height, config.width);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let centre = [
        h as f64 * rng.random_range(0.35..0.65),
        w as f64 * rng.random_range(0.35..0.65),
    ];
    let rmax = ((h * h + w * w) as f64).sqrt() / 2.0;
    struct Ring {
        r: f64,
        width: f64,
        amp: f64,
        aniso: f64,
        phase: f64,
    }
    let n_rings = rng.random_range(config.rings.0..=config.rings.1);
    let rings: Vec<Ring> = (0..n_rings)
        .map(|_| Ring {
            r: rng.random_range(0.12..0.9) * rmax,
            width: rng.random_range(0.8..3.5),
            amp: rng.random_range(0.3..1.0),
            aniso: rng.random_range(0.0..0.6),
            phase: rng.random_range(0.0..std::f64::consts::PI),
        })
        .collect();
    let n_peaks = rng.random_range(config.peaks.0..=config.peaks.1);
    let peaks: Vec<([f64; 2], f64, f64)> = (0..n_peaks)
        .map(|_| {
            (
                [
                    rng.random_range(0.0..h as f64),
                    rng.random_range(0.0..w as f64),
                ],
                rng.random_range(1.0..3.0),
                rng.random_range(0.3..1.2),
            )
        })
        .collect();
    let bg_amp = rng.random_range(0.2..0.5);
    let bg_q = rng.random_range(6.0..20.0);
    let mut truth = vec![0f64; h * w];
    for y in 0..h {
        for x in 0..w {
            let (dy, dx) = (y as f64 - centre[0], x as f64 - centre[1]);
            let r = (dy * dy + dx * dx).sqrt();
            let phi = dy.atan2(dx);
            let mut v = bg_amp / (1.0 + (r / bg_q).powi(2));
            for ring in &rings {
                let az = 1.0 + ring.aniso * (2.0 * (phi - ring.phase)).cos();
                v += ring.amp * az * (-0.5 * ((r - ring.r) / ring.width).powi(2)).exp();
            }
            for (p, s, a) in &peaks {
                let d2 = (y as f64 - p[0]).powi(2) + (x as f64 - p[1]).powi(2);
                v += a * (-0.5 * d2 / (s * s)).exp();
            }
            truth[y * w + x] = v;
        }
    }
    let peak = truth.iter().copied().fold(0.0, f64::max).max(1e-12);
    truth.iter_mut().for_each(|v| *v /= peak);

    // Detector validity: module gaps, beam stop and its holder arm (to the left edge).
    let rows = gap_lines(h, config.module.0, config.gap);
    let cols = gap_lines(w, config.module.1, config.gap);
    let arm_half = (config.beamstop_radius / 3.0).max(1.0);
    let mut valid = vec![1f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let (dy, dx) = (y as f64 - centre[0], x as f64 - centre[1]);
            let stop = dy * dy + dx * dx <= config.beamstop_radius.powi(2);
            let arm = config.beamstop_radius > 0.0 && dx <= 0.0 && dy.abs() <= arm_half;
            if rows[y] || cols[x] || stop || arm {
                valid[y * w + x] = 0.0;
            }
        }
    }
    let observed: Vec<f32> = truth
        .iter()
        .zip(&valid)
        .map(|(&t, &m)| {
            if m == 0.0 {
                return 0.0;
            }
            if config.photons > 0.0 {
                let lambda = t * config.photons;
                let counts = if lambda > 0.0 {
                    Poisson::new(lambda)
                        .map(|p| p.sample(&mut rng))
                        .unwrap_or(lambda)
                } else {
                    0.0
                };
                (counts / config.photons) as f32
            } else {
                t as f32
            }
        })
        .collect();
    Ok(ScatteringPattern {
        shape: [h, w],
        truth: truth.iter().map(|&v| v as f32).collect(),
        observed,
        valid,
        centre,
    })
}

/// The result of [`add_artificial_gaps`].
#[derive(Debug, Clone)]
pub struct GapAugmented {
    /// The input with the new gaps blanked (0).
    pub input: Vec<f32>,
    /// 1 where a new gap hides known data: where an inpainting loss should count.
    pub loss_mask: Vec<f32>,
    /// 1 where the input still holds data (old and new gaps excluded).
    pub valid: Vec<f32>,
}

/// Blanks `n_horizontal` horizontal and `n_vertical` vertical bands of `gap` pixels at random
/// positions where data is valid, as new artificial detector gaps.
pub fn add_artificial_gaps(
    image: &[f32],
    valid: &[f32],
    shape: [usize; 2],
    n_horizontal: usize,
    n_vertical: usize,
    gap: usize,
    seed: u64,
) -> Result<GapAugmented> {
    let [h, w] = shape;
    if image.len() != h * w || valid.len() != h * w {
        return Err(invalid(
            "add_artificial_gaps",
            format!(
                "image ({}) and valid ({}) must both hold {h}×{w} values",
                image.len(),
                valid.len()
            ),
        ));
    }
    if gap == 0 || gap >= h.min(w) {
        return Err(invalid(
            "add_artificial_gaps",
            format!(
                "gap {gap} must be between 1 and the image's shorter side {}",
                h.min(w)
            ),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut hidden = vec![false; h * w];
    for _ in 0..n_horizontal {
        let y0 = rng.random_range(0..=h - gap);
        for y in y0..y0 + gap {
            hidden[y * w..(y + 1) * w]
                .iter_mut()
                .for_each(|v| *v = true);
        }
    }
    for _ in 0..n_vertical {
        let x0 = rng.random_range(0..=w - gap);
        for y in 0..h {
            for x in x0..x0 + gap {
                hidden[y * w + x] = true;
            }
        }
    }
    let mut out = GapAugmented {
        input: image.to_vec(),
        loss_mask: vec![0.0; h * w],
        valid: valid.to_vec(),
    };
    for i in 0..h * w {
        if hidden[i] {
            out.input[i] = 0.0;
            out.valid[i] = 0.0;
            if valid[i] > 0.0 {
                out.loss_mask[i] = 1.0;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_has_gaps_beamstop_and_truth_everywhere() {
        let cfg = ScatteringConfig {
            height: 128,
            width: 160,
            module: (40, 50),
            gap: 3,
            seed: 5,
            ..Default::default()
        };
        let p = scattering_pattern(&cfg).unwrap();
        // gap rows at 40..43 and 83..86; columns 50..53, 103..106, 156..159
        for x in 0..160 {
            assert_eq!(p.valid[41 * 160 + x], 0.0);
        }
        for y in 0..128 {
            assert_eq!(p.valid[y * 160 + 104], 0.0);
        }
        let [cy, cx] = p.centre;
        assert_eq!(
            p.valid[cy.round() as usize * 160 + cx.round() as usize],
            0.0
        );
        assert!(p.truth.iter().all(|&v| v > 0.0 && v <= 1.0));
        assert!(p
            .observed
            .iter()
            .zip(&p.valid)
            .all(|(&o, &m)| m == 1.0 || o == 0.0));
        let frac = p.valid.iter().sum::<f32>() / p.valid.len() as f32;
        assert!(frac > 0.8 && frac < 0.98, "valid fraction {frac}");
        // Poisson noise is unbiased: observed ≈ truth on average where valid
        let (mut so, mut st) = (0.0, 0.0);
        for i in 0..p.truth.len() {
            if p.valid[i] == 1.0 {
                so += p.observed[i] as f64;
                st += p.truth[i] as f64;
            }
        }
        assert!((so / st - 1.0).abs() < 0.02);
    }

    #[test]
    fn artificial_gaps_only_count_where_truth_is_known() {
        let p = scattering_pattern(&ScatteringConfig {
            seed: 2,
            ..Default::default()
        })
        .unwrap();
        let g = add_artificial_gaps(&p.observed, &p.valid, p.shape, 2, 2, 4, 9).unwrap();
        let mut n = 0;
        for i in 0..p.valid.len() {
            if g.loss_mask[i] == 1.0 {
                assert_eq!(p.valid[i], 1.0);
                assert_eq!(g.input[i], 0.0);
                assert_eq!(g.valid[i], 0.0);
                n += 1;
            } else if g.valid[i] == 1.0 {
                assert_eq!(g.input[i], p.observed[i]);
            }
        }
        assert!(n > 2 * 4 * 200, "new gap pixels: {n}");
        assert!(add_artificial_gaps(&p.observed, &p.valid, [10, 10], 1, 1, 2, 0).is_err());
    }
}
