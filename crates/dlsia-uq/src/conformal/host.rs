//! Moving probability and label tiles to the host, with the checks conformal methods need.

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use crate::error::{invalid_value, shape_error, Result};

/// Pixels per parallel work item.
pub(crate) const CHUNK: usize = 4096;

/// A tile of class probabilities on the host, `(N, C, spatial…)` row-major.
pub(crate) struct HostProbs {
    pub n: usize,
    pub c: usize,
    pub spatial: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostProbs {
    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.spatial.iter().product()
    }

    /// The probabilities of pixel `s` of image `b`, gathered into `out` (length C).
    pub fn gather(&self, b: usize, s: usize, out: &mut [f64]) {
        let p = self.pixels();
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.data[(b * self.c + k) * p + s] as f64;
        }
    }
}

/// Copies `probs` to the host, checking the shape and that every pixel's probabilities lie in
/// `[0, 1]` and sum to 1 within `tolerance`.
pub(crate) fn host_probs(
    what: &'static str,
    probs: &Tensor,
    num_classes: Option<usize>,
    tolerance: f64,
) -> Result<HostProbs> {
    if probs.rank() < 2
        || probs.elem_count() == 0
        || num_classes.is_some_and(|c| probs.dim(1).ok() != Some(c))
    {
        return Err(shape_error(
            what,
            match num_classes {
                Some(c) => format!("non-empty probabilities (N, C = {c}, spatial…)"),
                None => "non-empty probabilities (N, C, spatial…)".to_string(),
            },
            probs.shape(),
        ));
    }
    let dims = probs.dims();
    let hp = HostProbs {
        n: dims[0],
        c: dims[1],
        spatial: dims[2..].to_vec(),
        data: probs
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?,
    };
    // Check every pixel in parallel; report the first offending one.
    let pixels = hp.pixels();
    let bad = (0..hp.n * pixels)
        .into_par_iter()
        .with_min_len(CHUNK)
        .find_first(|&pix| {
            let (b, s) = (pix / pixels, pix % pixels);
            let mut sum = 0.0;
            let mut in_range = true;
            for k in 0..hp.c {
                let p = hp.data[(b * hp.c + k) * pixels + s] as f64;
                sum += p;
                in_range &= (0.0..=1.0 + tolerance).contains(&p);
            }
            !in_range || (sum - 1.0).abs() > tolerance
        });
    if let Some(pix) = bad {
        let (b, s) = (pix / pixels, pix % pixels);
        let mut buf = vec![0.0; hp.c];
        hp.gather(b, s, &mut buf);
        let sum: f64 = buf.iter().sum();
        return Err(invalid_value(
            what,
            format!(
                "the class probabilities of pixel {s} of image {b} are {buf:?} (sum {sum}); \
                 they must lie in [0, 1] and sum to 1 over the channel axis (within {tolerance}) — \
                 pass softmax outputs, or wrap a network returning logits in a LogitsFn"
            ),
        ));
    }
    Ok(hp)
}

/// Copies labels `(N, spatial…)` or `(N, 1, spatial…)` to the host as i64, checking their shape
/// against the probabilities and their values (`ignore` or `0..num_classes`).
pub(crate) fn host_labels(
    what: &'static str,
    labels: &Tensor,
    probs: &HostProbs,
    ignore: i64,
) -> Result<Vec<i64>> {
    let dims = labels.dims();
    let sp = &probs.spatial;
    let ok_shape =
        (dims.len() == sp.len() + 1 && dims[0] == probs.n && &dims[1..] == sp.as_slice())
            || (dims.len() == sp.len() + 2
                && dims[0] == probs.n
                && dims[1] == 1
                && &dims[2..] == sp.as_slice());
    if !ok_shape {
        return Err(shape_error(
            what,
            format!("labels (N, spatial…) = ({}, {sp:?})", probs.n),
            labels.shape(),
        ));
    }
    if !labels.dtype().is_int() {
        return Err(invalid_value(
            what,
            format!("labels must be integers, got {:?}", labels.dtype()),
        ));
    }
    let v = labels
        .flatten_all()?
        .to_dtype(DType::I64)?
        .to_vec1::<i64>()?;
    let c = probs.c as i64;
    if let Some(bad) = v.iter().find(|&&l| l != ignore && !(0..c).contains(&l)) {
        return Err(invalid_value(
            what,
            format!(
                "found label {bad}: labels must lie in 0..{c} or equal the ignore label {ignore}"
            ),
        ));
    }
    Ok(v)
}

/// Spatial coordinates of pixel `s` (row-major over `spatial`), plus `origin`.
pub(crate) fn global_coords(s: usize, spatial: &[usize], origin: &[usize], out: &mut [usize]) {
    let mut rem = s;
    for a in (0..spatial.len()).rev() {
        out[a] = rem % spatial[a] + origin.get(a).copied().unwrap_or(0);
        rem /= spatial[a];
    }
}

/// A uniform number in `[0, 1)` determined by a key and a sequence of integers (splitmix64).
pub(crate) fn hash_uniform(key: u64, parts: &[u64]) -> f64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let mut h = mix(key);
    for &p in parts {
        h = mix(h ^ p);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}
