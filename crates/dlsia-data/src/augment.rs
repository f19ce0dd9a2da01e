//! Seedable augmentation for 2-D and 3-D samples: the dihedral group (flips, 90° rotations and
//! transposes, applied identically to image, target and mask) and intensity scaling and noise
//! (image only).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_data::augment::{AugmentConfig, Augmentation};
//! use dlsia_data::Sample;
//! let aug = Augmentation::new(AugmentConfig { dihedral: true, scale: Some((0.9, 1.1)), noise_std: Some(0.05) })?;
//! let s = Sample::image_only(Tensor::zeros((1, 8, 8), candle_core::DType::F32, &Device::Cpu)?);
//! let a = aug.apply(&s, 42)?;   // the same seed always gives the same result
//! # Ok::<(), dlsia_data::Error>(())
//! ```

use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, shape_err, Result};
use crate::sample::Sample;

/// One element of the dihedral group on `n` spatial axes: permute the axes, then flip some.
///
/// Output spatial axis `i` is input spatial axis `perm[i]`, reversed if `flip[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DihedralTransform {
    /// Axis permutation (a permutation of `0..n`).
    pub perm: Vec<usize>,
    /// Which output axes are reversed.
    pub flip: Vec<bool>,
}

impl DihedralTransform {
    /// The identity on `n` spatial axes.
    pub fn identity(n: usize) -> Self {
        Self {
            perm: (0..n).collect(),
            flip: vec![false; n],
        }
    }

    /// Every element that keeps `spatial` unchanged (axes are only exchanged with axes of the same
    /// length): 8 for a square image, 48 for a cube, 4 for a non-square image.
    pub fn all(spatial: &[usize]) -> Vec<Self> {
        let n = spatial.len();
        let mut perms = Vec::new();
        permutations(&mut (0..n).collect::<Vec<_>>(), 0, &mut perms);
        let mut out = Vec::new();
        for p in perms {
            if p.iter().enumerate().any(|(i, &j)| spatial[i] != spatial[j]) {
                continue;
            }
            for bits in 0..(1u32 << n) {
                out.push(Self {
                    perm: p.clone(),
                    flip: (0..n).map(|i| bits >> i & 1 == 1).collect(),
                });
            }
        }
        out
    }

    /// A uniformly random shape-preserving element.
    pub fn random(spatial: &[usize], rng: &mut impl Rng) -> Self {
        let all = Self::all(spatial);
        all[rng.random_range(0..all.len())].clone()
    }

    /// The inverse element: `t.inverse().apply(&t.apply(x)) == x`.
    pub fn inverse(&self) -> Self {
        let n = self.perm.len();
        let mut perm = vec![0; n];
        let mut flip = vec![false; n];
        for i in 0..n {
            perm[self.perm[i]] = i;
            flip[self.perm[i]] = self.flip[i];
        }
        Self { perm, flip }
    }

    /// Applies the transform to the trailing `perm.len()` axes of `t`; leading axes (channels,
    /// batch) are untouched.
    pub fn apply(&self, t: &Tensor) -> Result<Tensor> {
        let n = self.perm.len();
        let rank = t.rank();
        if rank < n {
            return Err(shape_err(
                "DihedralTransform::apply",
                format!("at least {n} axes"),
                t.dims(),
            ));
        }
        let lead = rank - n;
        let mut dims: Vec<usize> = (0..lead).collect();
        dims.extend(self.perm.iter().map(|&p| lead + p));
        let mut y = if self.perm.iter().enumerate().all(|(i, &p)| i == p) {
            t.clone()
        } else {
            t.permute(dims)?.contiguous()?
        };
        for (i, &f) in self.flip.iter().enumerate() {
            if f {
                y = flip_axis(&y, lead + i)?;
            }
        }
        Ok(y)
    }
}

/// Reverses `t` along `axis`.
pub fn flip_axis(t: &Tensor, axis: usize) -> Result<Tensor> {
    let len = t.dims()[axis];
    let idx: Vec<u32> = (0..len as u32).rev().collect();
    let idx = Tensor::from_vec(idx, len, t.device())?;
    Ok(t.index_select(&idx, axis)?)
}

fn permutations(v: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
    if k == v.len() {
        out.push(v.clone());
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permutations(v, k + 1, out);
        v.swap(k, i);
    }
}

/// What to augment. Validated into an [`Augmentation`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Apply a random shape-preserving dihedral element (flips, 90° rotations, transposes).
    pub dihedral: bool,
    /// Multiply the image by a factor drawn uniformly from `[lo, hi]` (`0 < lo <= hi`).
    pub scale: Option<(f32, f32)>,
    /// Add Gaussian noise whose standard deviation is drawn uniformly from `[0, max]`.
    pub noise_std: Option<f32>,
}

/// A validated augmentation pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmentation {
    config: AugmentConfig,
}

impl Augmentation {
    /// Checks the configuration.
    pub fn new(config: AugmentConfig) -> Result<Self> {
        if let Some((lo, hi)) = config.scale {
            if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
                return Err(invalid(
                    "AugmentConfig::scale",
                    format!("({lo}, {hi}): need 0 < lo <= hi, e.g. (0.9, 1.1)"),
                ));
            }
        }
        if let Some(s) = config.noise_std {
            if !(s >= 0.0 && s.is_finite()) {
                return Err(invalid(
                    "AugmentConfig::noise_std",
                    format!("{s}: need a finite value >= 0"),
                ));
            }
        }
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &AugmentConfig {
        &self.config
    }

    /// Augments one sample; the result depends only on the sample and `seed`.
    pub fn apply(&self, sample: &Sample, seed: u64) -> Result<Sample> {
        let mut rng = StdRng::seed_from_u64(seed);
        let img_dims = sample.image.dims().to_vec();
        if img_dims.len() < 2 {
            return Err(shape_err(
                "Augmentation::apply",
                "an image of shape (C, spatial..)",
                &img_dims,
            ));
        }
        let spatial = &img_dims[1..];
        let mut out = sample.clone();
        if self.config.dihedral {
            let t = DihedralTransform::random(spatial, &mut rng);
            out.image = t.apply(&out.image)?;
            out.target = out.target.as_ref().map(|x| t.apply(x)).transpose()?;
            out.mask = out.mask.as_ref().map(|x| t.apply(x)).transpose()?;
        }
        if let Some((lo, hi)) = self.config.scale {
            let s = if hi > lo {
                rng.random_range(lo..=hi)
            } else {
                lo
            };
            out.image = (out.image * s as f64)?;
        }
        if let Some(max) = self.config.noise_std {
            if max > 0.0 {
                let sigma = rng.random_range(0.0..=max);
                let normal = Normal::new(0.0f32, sigma)
                    .map_err(|e| invalid("Augmentation::apply", e.to_string()))?;
                let n = out.image.elem_count();
                let noise: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
                let noise = Tensor::from_vec(noise, out.image.dims(), out.image.device())?;
                let noise = noise.to_dtype(out.image.dtype())?;
                out.image = (out.image + noise)?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn naive_apply(x: &[f32], shape: &[usize], t: &DihedralTransform) -> Vec<f32> {
        // out[o] = in[i] with i[perm[k]] = flip[k] ? shape[perm[k]]-1-o[k] : o[k]
        let n = shape.len();
        let oshape: Vec<usize> = t.perm.iter().map(|&p| shape[p]).collect();
        let total: usize = shape.iter().product();
        let mut out = vec![0.0; total];
        for (o_flat, slot) in out.iter_mut().enumerate() {
            let mut o = vec![0; n];
            let mut r = o_flat;
            for k in (0..n).rev() {
                o[k] = r % oshape[k];
                r /= oshape[k];
            }
            let mut i = vec![0; n];
            for k in 0..n {
                i[t.perm[k]] = if t.flip[k] {
                    oshape[k] - 1 - o[k]
                } else {
                    o[k]
                };
            }
            let mut flat = 0;
            for k in 0..n {
                flat = flat * shape[k] + i[k];
            }
            *slot = x[flat];
        }
        out
    }

    #[test]
    fn group_sizes() {
        assert_eq!(DihedralTransform::all(&[4, 4]).len(), 8);
        assert_eq!(DihedralTransform::all(&[4, 4, 4]).len(), 48);
        assert_eq!(DihedralTransform::all(&[4, 5]).len(), 4);
        assert_eq!(DihedralTransform::all(&[3, 4, 4]).len(), 16);
    }

    #[test]
    fn every_element_matches_naive_and_inverts() {
        for shape in [vec![3usize, 3], vec![2, 2, 2], vec![2, 3, 3]] {
            let total: usize = shape.iter().product();
            let x: Vec<f32> = (0..total).map(|v| v as f32).collect();
            let mut tshape = vec![2usize];
            tshape.extend(&shape);
            // two channels: second is the first plus 100
            let mut xx = x.clone();
            xx.extend(x.iter().map(|v| v + 100.0));
            let tx = Tensor::from_vec(xx, tshape.as_slice(), &Device::Cpu).unwrap();
            for t in DihedralTransform::all(&shape) {
                let y = t.apply(&tx).unwrap();
                let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
                let want = naive_apply(&x, &shape, &t);
                assert_eq!(&y[..total], &want[..]);
                assert_eq!(y[total], want[0] + 100.0);
                let back = t.inverse().apply(&t.apply(&tx).unwrap()).unwrap();
                let back: Vec<f32> = back.flatten_all().unwrap().to_vec1().unwrap();
                assert_eq!(&back[..total], &x[..]);
            }
        }
    }

    #[test]
    fn image_target_mask_move_together_and_seed_repeats() {
        let dev = Device::Cpu;
        let img = Tensor::arange(0f32, 16.0, &dev)
            .unwrap()
            .reshape((1, 4, 4))
            .unwrap();
        let tgt = Tensor::arange(0i64, 16, &dev)
            .unwrap()
            .reshape((4, 4))
            .unwrap();
        let s = Sample {
            image: img,
            target: Some(tgt),
            mask: None,
        };
        let aug = Augmentation::new(AugmentConfig {
            dihedral: true,
            ..Default::default()
        })
        .unwrap();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..64 {
            let a = aug.apply(&s, seed).unwrap();
            let i: Vec<f32> = a.image.flatten_all().unwrap().to_vec1().unwrap();
            let t: Vec<i64> = a.target.unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert!(i.iter().zip(&t).all(|(a, b)| *a as i64 == *b));
            seen.insert(t);
            let again = aug.apply(&s, seed).unwrap();
            let i2: Vec<f32> = again.image.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(i, i2);
        }
        assert_eq!(seen.len(), 8, "64 seeds should reach all 8 elements");
    }

    #[test]
    fn intensity_scale_and_noise_statistics() {
        let dev = Device::Cpu;
        let s = Sample::image_only(Tensor::ones((1, 64, 64), DType::F32, &dev).unwrap());
        let aug = Augmentation::new(AugmentConfig {
            dihedral: false,
            scale: Some((2.0, 2.0)),
            noise_std: None,
        })
        .unwrap();
        let v: Vec<f32> = aug
            .apply(&s, 1)
            .unwrap()
            .image
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(v.iter().all(|&x| x == 2.0));
        let aug = Augmentation::new(AugmentConfig {
            dihedral: false,
            scale: None,
            noise_std: Some(0.5),
        })
        .unwrap();
        let v: Vec<f32> = aug
            .apply(&s, 3)
            .unwrap()
            .image
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let m = v.iter().sum::<f32>() / v.len() as f32;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
        assert!((m - 1.0).abs() < 0.03, "mean {m}");
        assert!(sd > 0.0 && sd <= 0.52, "sd {sd}");
        assert!(Augmentation::new(AugmentConfig {
            scale: Some((1.0, 0.5)),
            ..Default::default()
        })
        .is_err());
        assert!(Augmentation::new(AugmentConfig {
            noise_std: Some(f32::NAN),
            ..Default::default()
        })
        .is_err());
    }
}
