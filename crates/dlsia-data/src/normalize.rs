//! Intensity normalisation fitted on a dataset and stored with a model, so that prediction
//! applies exactly the transform training used.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_data::Normalization;
//! let images = Tensor::new(&[[[1f32, 2.0], [3.0, 4.0]]], &Device::Cpu)?.unsqueeze(0)?; // (1,1,2,2)
//! let norm = Normalization::fit_mean_std(&images)?;
//! let json = serde_json::to_string(&norm).unwrap();        // store next to the weights
//! let back: Normalization = serde_json::from_str(&json).unwrap();
//! let x = back.apply(&images.get(0)?)?;                     // zero mean, unit variance
//! # Ok::<(), dlsia_data::Error>(())
//! ```

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, shape_err, Result};

/// A per-channel affine intensity transform `y = (x - offset[c]) * scale[c]`, in one of three
/// flavours. Serialisable (serde), so it can be saved with a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalization {
    /// No change.
    Identity,
    /// `(x - mean) / std` per channel (population standard deviation; a constant channel uses
    /// `std = 1`).
    MeanStd {
        /// Per-channel mean.
        mean: Vec<f32>,
        /// Per-channel standard deviation.
        std: Vec<f32>,
    },
    /// `(x - low) / (high - low)` per channel, where `low`/`high` are the `p_low`/`p_high`
    /// percentiles of the fitting data (NumPy's linear interpolation); optionally clipped to
    /// `[0, 1]`.
    Percentile {
        /// Lower percentile in `[0, 100]`.
        p_low: f32,
        /// Upper percentile in `[0, 100]`.
        p_high: f32,
        /// Per-channel value of the lower percentile.
        low: Vec<f32>,
        /// Per-channel value of the upper percentile.
        high: Vec<f32>,
        /// Whether results are clipped to `[0, 1]`.
        clip: bool,
    },
}

/// Splits `(N, C, spatial..)` data into per-channel value lists, rejecting NaN and infinities.
fn per_channel(images: &Tensor) -> Result<Vec<Vec<f32>>> {
    let d = images.dims();
    if d.len() < 3 {
        return Err(shape_err(
            "Normalization::fit",
            "images of shape (N, C, spatial..)",
            d,
        ));
    }
    let (n, c) = (d[0], d[1]);
    let per: usize = d[2..].iter().product();
    if n * per == 0 {
        return Err(shape_err("Normalization::fit", "at least one pixel", d));
    }
    let flat: Vec<f32> = images.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    if let Some(p) = flat.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            "Normalization::fit",
            format!("value {} at flat index {p} is not finite; replace NaN/inf (e.g. by a masked value) before fitting", flat[p]),
        ));
    }
    let mut out = vec![Vec::with_capacity(n * per); c];
    for i in 0..n {
        for (ch, o) in out.iter_mut().enumerate() {
            let s = (i * c + ch) * per;
            o.extend_from_slice(&flat[s..s + per]);
        }
    }
    Ok(out)
}

/// NumPy's default (`linear`) percentile of unsorted values; `values` is reordered.
pub fn percentile(values: &mut [f32], p: f64) -> f32 {
    let n = values.len();
    if n == 0 {
        return f32::NAN;
    }
    let rank = p / 100.0 * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = rank - lo as f64;
    let (_, &mut a, right) = values.select_nth_unstable_by(lo, |x, y| x.total_cmp(y));
    let b = if hi == lo {
        a
    } else {
        right.iter().copied().fold(f32::INFINITY, f32::min)
    };
    (a as f64 + (b as f64 - a as f64) * frac) as f32
}

impl Normalization {
    /// Fits per-channel mean and standard deviation on `(N, C, spatial..)` images.
    pub fn fit_mean_std(images: &Tensor) -> Result<Self> {
        let chans = per_channel(images)?;
        let mut mean = Vec::new();
        let mut std = Vec::new();
        for v in chans {
            let m = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / v.len() as f64;
            let s = var.sqrt();
            mean.push(m as f32);
            std.push(if s > 1e-12 { s as f32 } else { 1.0 });
        }
        Ok(Normalization::MeanStd { mean, std })
    }

    /// Fits per-channel percentile scaling on `(N, C, spatial..)` images; `0 <= p_low < p_high
    /// <= 100`.
    pub fn fit_percentile(images: &Tensor, p_low: f32, p_high: f32, clip: bool) -> Result<Self> {
        if !(0.0..=100.0).contains(&p_low) || !(0.0..=100.0).contains(&p_high) || p_low >= p_high {
            return Err(invalid(
                "Normalization::fit_percentile",
                format!("percentiles {p_low}, {p_high}: need 0 <= p_low < p_high <= 100 (e.g. 1 and 99)"),
            ));
        }
        let mut low = Vec::new();
        let mut high = Vec::new();
        for mut v in per_channel(images)? {
            low.push(percentile(&mut v, p_low as f64));
            high.push(percentile(&mut v, p_high as f64));
        }
        Ok(Normalization::Percentile {
            p_low,
            p_high,
            low,
            high,
            clip,
        })
    }

    /// Number of channels the transform expects (`None` for [`Normalization::Identity`]).
    pub fn channels(&self) -> Option<usize> {
        match self {
            Normalization::Identity => None,
            Normalization::MeanStd { mean, .. } => Some(mean.len()),
            Normalization::Percentile { low, .. } => Some(low.len()),
        }
    }

    /// `(offset, scale)` of channel `c`: `y = (x - offset) * scale`.
    pub fn affine(&self, c: usize) -> (f32, f32) {
        match self {
            Normalization::Identity => (0.0, 1.0),
            Normalization::MeanStd { mean, std } => (mean[c], 1.0 / std[c]),
            Normalization::Percentile { low, high, .. } => {
                let span = high[c] - low[c];
                (low[c], if span > 0.0 { 1.0 / span } else { 1.0 })
            }
        }
    }

    fn clips(&self) -> bool {
        matches!(self, Normalization::Percentile { clip: true, .. })
    }

    /// Checks that `channels` matches the fitted channel count.
    fn check_channels(&self, channels: usize, dims: &[usize]) -> Result<()> {
        match self.channels() {
            Some(c) if c != channels => Err(shape_err(
                "Normalization::apply",
                format!("{c} channels (the count the normalisation was fitted on)"),
                dims,
            )),
            _ => Ok(()),
        }
    }

    fn apply_at(&self, x: &Tensor, channel_axis: usize) -> Result<Tensor> {
        let d = x.dims().to_vec();
        if d.len() <= channel_axis + 1 {
            return Err(shape_err(
                "Normalization::apply",
                "a channel axis followed by at least one spatial axis",
                &d,
            ));
        }
        let c = d[channel_axis];
        self.check_channels(c, &d)?;
        if matches!(self, Normalization::Identity) {
            return Ok(x.to_dtype(DType::F32)?);
        }
        let mut bshape = vec![1usize; d.len()];
        bshape[channel_axis] = c;
        let (off, sc): (Vec<f32>, Vec<f32>) = (0..c).map(|i| self.affine(i)).unzip();
        let off = Tensor::from_vec(off, bshape.as_slice(), x.device())?;
        let sc = Tensor::from_vec(sc, bshape.as_slice(), x.device())?;
        let y = x
            .to_dtype(DType::F32)?
            .broadcast_sub(&off)?
            .broadcast_mul(&sc)?;
        Ok(if self.clips() {
            y.clamp(0f32, 1f32)?
        } else {
            y
        })
    }

    /// Applies the transform to one sample `(C, spatial..)`.
    pub fn apply(&self, image: &Tensor) -> Result<Tensor> {
        self.apply_at(image, 0)
    }

    /// Applies the transform to a batch `(N, C, spatial..)`.
    pub fn apply_batch(&self, images: &Tensor) -> Result<Tensor> {
        self.apply_at(images, 1)
    }

    /// Applies the transform in place to raw values of channel `c` (for streaming tiled
    /// prediction).
    pub fn apply_slice(&self, values: &mut [f32], c: usize) -> Result<()> {
        if let Some(n) = self.channels() {
            if c >= n {
                return Err(invalid(
                    "Normalization::apply_slice",
                    format!("channel {c} of a normalisation fitted on {n} channels"),
                ));
            }
        }
        let (off, sc) = self.affine(c);
        let clip = self.clips();
        for v in values {
            let y = (*v - off) * sc;
            *v = if clip { y.clamp(0.0, 1.0) } else { y };
        }
        Ok(())
    }

    /// Undoes the transform on one sample `(C, spatial..)` (clipping cannot be undone).
    pub fn invert(&self, image: &Tensor) -> Result<Tensor> {
        let d = image.dims().to_vec();
        if d.len() < 2 {
            return Err(shape_err("Normalization::invert", "(C, spatial..)", &d));
        }
        self.check_channels(d[0], &d)?;
        if matches!(self, Normalization::Identity) {
            return Ok(image.clone());
        }
        let mut bshape = vec![1usize; d.len()];
        bshape[0] = d[0];
        let (off, sc): (Vec<f32>, Vec<f32>) = (0..d[0]).map(|i| self.affine(i)).unzip();
        let inv: Vec<f32> = sc.iter().map(|s| 1.0 / s).collect();
        let off = Tensor::from_vec(off, bshape.as_slice(), image.device())?;
        let inv = Tensor::from_vec(inv, bshape.as_slice(), image.device())?;
        Ok(image.broadcast_mul(&inv)?.broadcast_add(&off)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn mean_std_matches_hand_values() {
        // channel 0: 1,2,3,4 (mean 2.5, std sqrt(1.25)); channel 1: constant 7.
        let x = t(vec![1.0, 2.0, 7.0, 7.0, 3.0, 4.0, 7.0, 7.0], &[2, 2, 2]);
        let n = Normalization::fit_mean_std(&x).unwrap();
        let Normalization::MeanStd { mean, std } = &n else {
            panic!()
        };
        assert!((mean[0] - 2.5).abs() < 1e-6 && (std[0] - 1.25f32.sqrt()).abs() < 1e-6);
        assert_eq!((mean[1], std[1]), (7.0, 1.0));
        let y: Vec<f32> = n
            .apply(&x.get(0).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!((y[0] - (-1.5 / 1.25f32.sqrt())).abs() < 1e-6);
        assert_eq!(y[2], 0.0);
        let back: Vec<f32> = n
            .invert(&n.apply(&x.get(1).unwrap()).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in back.iter().zip([3.0, 4.0, 7.0, 7.0]) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([0..=9], 25) == 2.25; 99 -> 8.91
        let mut v: Vec<f32> = (0..10).rev().map(|i| i as f32).collect();
        assert!((percentile(&mut v, 25.0) - 2.25).abs() < 1e-6);
        assert!((percentile(&mut v, 99.0) - 8.91).abs() < 1e-5);
        assert_eq!(percentile(&mut v, 100.0), 9.0);
        assert_eq!(percentile(&mut v, 0.0), 0.0);
    }

    #[test]
    fn fit_rejects_nan_and_bad_percentiles() {
        let x = t(vec![1.0, f32::NAN, 2.0, 3.0], &[1, 1, 4]);
        assert!(Normalization::fit_mean_std(&x).is_err());
        let x = t(vec![1.0, 2.0, 2.0, 3.0], &[1, 1, 4]);
        assert!(Normalization::fit_percentile(&x, 99.0, 1.0, true).is_err());
        let n = Normalization::fit_percentile(&x, 0.0, 100.0, true).unwrap();
        let y: Vec<f32> = n
            .apply(&t(vec![0.0, 1.0, 3.0, 5.0], &[1, 4]))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(y, vec![0.0, 0.0, 1.0, 1.0]);
        assert!(n.apply(&t(vec![0.0; 8], &[2, 4])).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let n = Normalization::MeanStd {
            mean: vec![1.5],
            std: vec![2.0],
        };
        let s = serde_json::to_string(&n).unwrap();
        assert!(s.contains("\"kind\":\"mean_std\""));
        assert_eq!(serde_json::from_str::<Normalization>(&s).unwrap(), n);
    }
}
