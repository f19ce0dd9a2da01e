//! Random train/validation splits, as in the original's `build_randomized_loader`.
//!
//! **Pixel level** (the default): every labelled pixel goes to exactly one of train or validation,
//! to train with probability `use_fraction`; the other split sees the missing value there. The
//! same images serve both splits. Already-missing pixels stay missing in both. **Image level**:
//! whole images go to train with probability `use_fraction`.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_data::split::pixel_split;
//! let labels = Tensor::new(&[[0i64, 1, -1], [1, 1, 0]], &Device::Cpu)?;
//! let (train, val) = pixel_split(&labels, 0.5, -1, 42)?;
//! // each labelled pixel is in exactly one of `train` and `val`
//! # Ok::<(), dlsia_data::Error>(())
//! ```

use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::dataset::{check_target_mask, TensorDataset};
use crate::error::{invalid, shape_err, Result};

/// Whether pixels or whole images are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SplitLevel {
    /// Each labelled pixel independently.
    #[default]
    Pixel,
    /// Whole images.
    Image,
}

/// A train/validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitConfig {
    /// Probability that a pixel (or image) goes to the training split, in `[0, 1]`.
    pub use_fraction: f64,
    /// Pixel- or image-level split.
    pub level: SplitLevel,
    /// The label value meaning "not labelled".
    pub missing_label: i64,
    /// Seed of the random draw.
    pub seed: u64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            use_fraction: 0.5,
            level: SplitLevel::Pixel,
            missing_label: -1,
            seed: 0,
        }
    }
}

fn check_fraction(f: f64) -> Result<()> {
    if (0.0..=1.0).contains(&f) {
        Ok(())
    } else {
        Err(invalid(
            "use_fraction",
            format!("{f}: must be a probability in [0, 1], e.g. 0.5"),
        ))
    }
}

/// Splits label values in place of a copy: returns `(train, validation)` where each labelled value
/// is kept in exactly one of the two and replaced by `missing` in the other.
pub fn pixel_split_values(
    labels: &[i64],
    use_fraction: f64,
    missing: i64,
    seed: u64,
) -> Result<(Vec<i64>, Vec<i64>)> {
    check_fraction(use_fraction)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut train = labels.to_vec();
    let mut val = labels.to_vec();
    for ((t, v), &l) in train.iter_mut().zip(val.iter_mut()).zip(labels) {
        // One draw per pixel, labelled or not, as the original does.
        let sel = rng.random::<f64>() < use_fraction;
        if l == missing {
            continue;
        }
        if sel {
            *v = missing;
        } else {
            *t = missing;
        }
    }
    Ok((train, val))
}

/// Pixel-level split of an integer label tensor of any shape; returns `(train, validation)` `i64`
/// tensors of the same shape.
pub fn pixel_split(
    labels: &Tensor,
    use_fraction: f64,
    missing: i64,
    seed: u64,
) -> Result<(Tensor, Tensor)> {
    if labels.dtype().is_float() {
        return Err(invalid(
            "pixel_split",
            format!("labels must be an integer tensor, got {:?}", labels.dtype()),
        ));
    }
    let v: Vec<i64> = labels.to_dtype(DType::I64)?.flatten_all()?.to_vec1()?;
    let (t, val) = pixel_split_values(&v, use_fraction, missing, seed)?;
    let d = labels.dims();
    Ok((
        Tensor::from_vec(t, d, labels.device())?,
        Tensor::from_vec(val, d, labels.device())?,
    ))
}

/// Image-level split of `n` images; returns `(train, validation)` index lists.
pub fn image_split(n: usize, use_fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    check_fraction(use_fraction)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for i in 0..n {
        if rng.random::<f64>() < use_fraction {
            train.push(i);
        } else {
            val.push(i);
        }
    }
    Ok((train, val))
}

/// Splits images `(N, C, spatial..)` and targets into training and validation datasets.
///
/// * Integer labels `(N, spatial..)`: pixel level gives both datasets all images, with labels
///   split by [`pixel_split`]; image level splits whole images.
/// * Float targets `(N, C_out, spatial..)` (regression): pixel level gives both datasets all
///   images and targets with complementary masks `(N, 1, spatial..)` (multiplied into `masks` if
///   given); image level splits whole images.
pub fn randomized_split(
    images: &Tensor,
    targets: &Tensor,
    masks: Option<&Tensor>,
    config: &SplitConfig,
) -> Result<(TensorDataset, TensorDataset)> {
    check_fraction(config.use_fraction)?;
    let d = images.dims().to_vec();
    if d.len() < 3 {
        return Err(shape_err(
            "randomized_split",
            "images of shape (N, C, spatial..)",
            &d,
        ));
    }
    check_target_mask("randomized_split", &d, Some(targets), masks)?;
    match config.level {
        SplitLevel::Image => {
            let (tr, va) = image_split(d[0], config.use_fraction, config.seed)?;
            let pick = |idx: &[usize]| -> Result<TensorDataset> {
                if idx.is_empty() {
                    return Err(invalid(
                        "randomized_split",
                        format!(
                            "{} images with use_fraction {} left one split empty; use more images or a fraction further from 0 and 1",
                            d[0], config.use_fraction
                        ),
                    ));
                }
                let ix = Tensor::from_vec(
                    idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                    idx.len(),
                    images.device(),
                )?;
                TensorDataset::new(
                    images.index_select(&ix, 0)?,
                    Some(targets.index_select(&ix, 0)?),
                    masks.map(|m| m.index_select(&ix, 0)).transpose()?,
                )
            };
            Ok((pick(&tr)?, pick(&va)?))
        }
        SplitLevel::Pixel if !targets.dtype().is_float() => {
            let (tr, va) = pixel_split(
                targets,
                config.use_fraction,
                config.missing_label,
                config.seed,
            )?;
            Ok((
                TensorDataset::new(images.clone(), Some(tr), masks.cloned())?,
                TensorDataset::new(images.clone(), Some(va), masks.cloned())?,
            ))
        }
        SplitLevel::Pixel => {
            let mut mshape = d.clone();
            mshape[1] = 1;
            let n: usize = mshape.iter().product();
            let mut rng = StdRng::seed_from_u64(config.seed);
            let sel: Vec<f32> = (0..n)
                .map(|_| (rng.random::<f64>() < config.use_fraction) as u8 as f32)
                .collect();
            let tm = Tensor::from_vec(sel, mshape.as_slice(), images.device())?;
            let vm = tm.affine(-1.0, 1.0)?;
            let (tm, vm) = match masks {
                Some(m) => (
                    m.to_dtype(DType::F32)?.broadcast_mul(&tm)?,
                    m.to_dtype(DType::F32)?.broadcast_mul(&vm)?,
                ),
                None => (tm, vm),
            };
            Ok((
                TensorDataset::new(images.clone(), Some(targets.clone()), Some(tm))?,
                TensorDataset::new(images.clone(), Some(targets.clone()), Some(vm))?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Dataset;
    use candle_core::Device;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn pixel_split_is_a_partition(
            labels in proptest::collection::vec(-1i64..4, 0..400),
            frac in 0.0f64..=1.0,
            seed in any::<u64>(),
        ) {
            let (t, v) = pixel_split_values(&labels, frac, -1, seed).unwrap();
            for ((&l, &a), &b) in labels.iter().zip(&t).zip(&v) {
                if l == -1 {
                    prop_assert!(a == -1 && b == -1);
                } else {
                    // disjoint and union equals the original
                    prop_assert!((a == l && b == -1) || (a == -1 && b == l));
                }
            }
            let (t2, _) = pixel_split_values(&labels, frac, -1, seed).unwrap();
            prop_assert_eq!(t, t2);
        }

        #[test]
        fn pixel_split_fraction_is_close(frac in 0.05f64..0.95, seed in any::<u64>()) {
            let n = 20_000;
            let labels: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
            let (t, _) = pixel_split_values(&labels, frac, -1, seed).unwrap();
            let got = t.iter().filter(|&&x| x != -1).count() as f64 / n as f64;
            // 5 standard deviations of a binomial proportion
            let tol = 5.0 * (frac * (1.0 - frac) / n as f64).sqrt();
            prop_assert!((got - frac).abs() < tol, "fraction {} vs {}", got, frac);
        }

        #[test]
        fn image_split_is_a_partition(n in 0usize..200, frac in 0.0f64..=1.0, seed in any::<u64>()) {
            let (a, b) = image_split(n, frac, seed).unwrap();
            let mut all = a.clone();
            all.extend(&b);
            all.sort();
            prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn bad_fraction_is_error() {
        assert!(pixel_split_values(&[1, 2], 1.5, -1, 0).is_err());
        assert!(image_split(3, -0.1, 0).is_err());
    }

    #[test]
    fn randomized_split_datasets() {
        let dev = Device::Cpu;
        let img = Tensor::zeros((4, 1, 8, 8), DType::F32, &dev).unwrap();
        let lab = Tensor::ones((4, 8, 8), DType::I64, &dev).unwrap();
        let (tr, va) = randomized_split(&img, &lab, None, &SplitConfig::default()).unwrap();
        assert_eq!((tr.len(), va.len()), (4, 4));
        let a: Vec<i64> = tr
            .targets()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let b: Vec<i64> = va
            .targets()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| (*x == 1) != (*y == 1)));

        let cfg = SplitConfig {
            level: SplitLevel::Image,
            use_fraction: 0.5,
            seed: 3,
            ..Default::default()
        };
        let img = Tensor::arange(0f32, 20.0, &dev)
            .unwrap()
            .reshape((20, 1, 1, 1))
            .unwrap();
        let lab = Tensor::zeros((20, 1, 1), DType::I64, &dev).unwrap();
        let (tr, va) = randomized_split(&img, &lab, None, &cfg).unwrap();
        assert_eq!(tr.len() + va.len(), 20);

        let reg = Tensor::ones((20, 2, 1, 1), DType::F32, &dev).unwrap();
        let pix = SplitConfig::default();
        let (tr, va) = randomized_split(&img, &reg, None, &pix).unwrap();
        let a: Vec<f32> = tr
            .masks()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let b: Vec<f32> = va
            .masks()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x + y == 1.0));
    }
}
