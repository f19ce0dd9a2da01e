//! Fused CPU kernels for the hot losses on integer labels: the categorical negative
//! log-likelihood (cross-entropy and focal) and the soft counts behind Dice, Tversky and
//! FocalTversky. Each is a Candle custom op with a backward pass, computing in f64 with
//! deterministic (fixed-chunk) parallel reductions.
//!
//! They replace some thirty elementwise and strided Candle operations per loss. The composed
//! implementations remain for other devices and for soft targets, and serve as the reference
//! in the tests.

use candle_core::{
    CpuStorage, CustomOp3, DType, Device, Layout, Shape, Storage, Tensor, WithDType,
};
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

use crate::error::{invalid_value, shape_error, Result};
use crate::loss::PredictionKind;
use crate::target::check_prediction;

thread_local! {
    static DISABLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the fused kernels disabled on this thread, so that every loss takes its
/// composed (reference) path. For tests and benchmarks comparing the two.
#[doc(hidden)]
pub fn without_fused_kernels<R>(f: impl FnOnce() -> R) -> R {
    let before = DISABLED.with(|d| d.replace(true));
    let r = f();
    DISABLED.with(|d| d.set(before));
    r
}

/// Pixels per parallel work item (fixed, so that sums do not depend on the thread count).
const CHUNK: usize = 4096;

/// Inputs of a fused loss, checked and laid out flat.
pub(crate) struct FusedInputs {
    /// The prediction, contiguous, `(N, C, S)`.
    pub x: Tensor,
    /// Labels, contiguous i64 `(N, S)`.
    pub labels: Tensor,
    /// Mask weights `(N, Cw, S)` in the prediction's dtype, or a 1-element placeholder.
    pub mask: Tensor,
    pub geom: Geom,
}

/// Sizes shared by the kernels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geom {
    pub n: usize,
    pub c: usize,
    pub s: usize,
    /// Mask channels: 0 (no mask), 1 or `c`.
    pub cw: usize,
    pub ignore: i64,
    pub input: PredictionKind,
}

fn with_slice<T: WithDType, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let (st, l) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*st else {
        return Err(invalid_value("fused loss", "expected a CPU tensor"));
    };
    let Some((o1, o2)) = l.contiguous_offsets() else {
        return Err(invalid_value("fused loss", "expected a contiguous tensor"));
    };
    Ok(f(&cpu.as_slice::<T>()?[o1..o2]))
}

/// Checks the arguments and lays them out for the kernels; `None` when the fused path does not
/// apply (not on the CPU, not f32/f64, floating-point targets, unusual shapes), in which case
/// the composed implementation runs and reports any error.
pub(crate) fn prepare(
    what: &'static str,
    prediction: &Tensor,
    target: &Tensor,
    mask: Option<&Tensor>,
    ignore: i64,
    input: PredictionKind,
) -> Result<Option<FusedInputs>> {
    if DISABLED.with(|d| d.get())
        || !matches!(prediction.device(), Device::Cpu)
        || !matches!(prediction.dtype(), DType::F32 | DType::F64)
        || !target.dtype().is_int()
        || prediction.rank() < 2
    {
        return Ok(None);
    }
    check_prediction(what, prediction)?;
    let dims = prediction.dims();
    let (n, c) = (dims[0], dims[1]);
    let sp = &dims[2..];
    let s: usize = sp.iter().product();
    let td = target.dims();
    let labels_ok = (td.len() == sp.len() + 1 && td[0] == n && &td[1..] == sp)
        || (td.len() == sp.len() + 2 && td[0] == n && td[1] == 1 && &td[2..] == sp);
    if !labels_ok {
        return Ok(None);
    }
    let labels = target.to_dtype(DType::I64)?.reshape((n, s))?.contiguous()?;
    let num_labels = c.max(2) as i64;
    with_slice::<i64, _>(&labels, |v| {
        match v
            .iter()
            .find(|&&l| l != ignore && !(0..num_labels).contains(&l))
        {
            Some(bad) => Err(invalid_value(
                what,
                format!(
                    "found label {bad}: labels must lie in 0..{num_labels} or equal the ignore value {ignore}"
                ),
            )),
            None => Ok(()),
        }
    })??;
    let x = prediction.reshape((n, c, s))?.contiguous()?;
    if input == PredictionKind::Probabilities {
        let ok = match x.dtype() {
            DType::F32 => with_slice::<f32, _>(&x, |v| v.iter().all(|p| (0.0..=1.0).contains(p)))?,
            _ => with_slice::<f64, _>(&x, |v| v.iter().all(|p| (0.0..=1.0).contains(p)))?,
        };
        if !ok {
            // The composed path reports the range found.
            return Ok(None);
        }
    }
    let (mask, cw) = match mask {
        None => (Tensor::zeros(1, x.dtype(), x.device())?, 0),
        Some(m) => {
            let md = m.dims();
            let cw = if md.len() == sp.len() + 1 && md[0] == n && &md[1..] == sp {
                1
            } else if md.len() == sp.len() + 2
                && md[0] == n
                && (md[1] == 1 || md[1] == c)
                && &md[2..] == sp
            {
                md[1]
            } else {
                return Err(shape_error(
                    what,
                    format!("a mask of shape (N, 1 or C, spatial…) = ({n}, 1 or {c}, {sp:?}) or (N, spatial…)"),
                    m.shape(),
                ));
            };
            let m = m.to_dtype(x.dtype())?.reshape((n, cw, s))?.contiguous()?;
            let ok = match m.dtype() {
                DType::F32 => {
                    with_slice::<f32, _>(&m, |v| v.iter().all(|w| *w >= 0.0 && w.is_finite()))?
                }
                _ => with_slice::<f64, _>(&m, |v| v.iter().all(|w| *w >= 0.0 && w.is_finite()))?,
            };
            if !ok {
                return Err(invalid_value(
                    what,
                    "mask weights must be finite and non-negative (1 = counts, 0 = ignored)",
                ));
            }
            (m, cw)
        }
    };
    Ok(Some(FusedInputs {
        x,
        labels,
        mask,
        geom: Geom {
            n,
            c,
            s,
            cw,
            ignore,
            input,
        },
    }))
}

/// The smallest value a probability's logarithm is taken of (as [`crate::ops::clamped_log`]).
fn log_floor<T: WithDType>() -> f64 {
    if T::DTYPE == DType::F64 {
        f64::MIN_POSITIVE
    } else {
        f32::MIN_POSITIVE as f64
    }
}

/// `(ln p, d ln p / d p)` with the clamping of [`crate::ops::clamped_log`].
fn clamped_log_d(p: f64, floor: f64) -> (f64, f64) {
    if p < floor {
        (floor.ln().max(-100.0), 0.0)
    } else {
        let l = p.ln();
        if l < -100.0 {
            (-100.0, 0.0)
        } else {
            (l, 1.0 / p)
        }
    }
}

/// Fills `p` with the class probabilities of one pixel (softmax, sigmoid or as given) and
/// returns the log-sum-exp of the logits (softmax case; 0 otherwise).
fn pixel_probs<T: WithDType>(x: &[T], g: &Geom, b: usize, i: usize, p: &mut [f64]) -> f64 {
    let base = b * g.c * g.s + i;
    for (k, pk) in p.iter_mut().enumerate() {
        *pk = x[base + k * g.s].to_f64();
    }
    match (g.input, g.c) {
        (PredictionKind::Probabilities, _) => 0.0,
        (PredictionKind::Logits, 1) => {
            p[0] = 1.0 / (1.0 + (-p[0]).exp());
            0.0
        }
        (PredictionKind::Logits, _) => {
            let m = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut z = 0.0;
            for pk in p.iter_mut() {
                *pk = (*pk - m).exp();
                z += *pk;
            }
            let inv = 1.0 / z;
            p.iter_mut().for_each(|pk| *pk *= inv);
            m + z.ln()
        }
    }
}

/// The mask weight of class `k` at a pixel (1 without a mask).
fn mask_weight<T: WithDType>(mask: &[T], g: &Geom, b: usize, i: usize, k: usize) -> f64 {
    match g.cw {
        0 => 1.0,
        1 => mask[b * g.s + i].to_f64(),
        _ => mask[(b * g.c + k) * g.s + i].to_f64(),
    }
}

/// Runs `f(b, i, acc, scratch)` over all pixels in fixed chunks (`scratch` holds `C` values)
/// and sums the per-chunk accumulators in order.
fn reduce_pixels(
    g: &Geom,
    width: usize,
    f: impl Fn(usize, usize, &mut [f64], &mut [f64]) + Sync,
) -> Vec<f64> {
    let total = g.n * g.s;
    let partials: Vec<Vec<f64>> = (0..total.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let mut acc = vec![0.0; width];
            let mut scratch = vec![0.0; g.c];
            for pix in chunk * CHUNK..((chunk + 1) * CHUNK).min(total) {
                f(pix / g.s, pix % g.s, &mut acc, &mut scratch);
            }
            acc
        })
        .collect();
    let mut out = vec![0.0; width];
    for p in partials {
        out.iter_mut().zip(p).for_each(|(o, v)| *o += v);
    }
    out
}

/// Computes per-pixel gradients `f(b, i, d, scratch)` (`d` receives the `C` channel values of
/// one pixel, zeroed beforehand) in parallel over fixed chunks of pixels, each into its own
/// buffer, then writes them into an `(N, C, S)` tensor.
fn pixel_gradients<T: WithDType>(
    g: &Geom,
    device: &Device,
    f: impl Fn(usize, usize, &mut [f64], &mut [f64]) + Sync,
) -> candle_core::Result<Tensor> {
    let total = g.n * g.s;
    let blocks: Vec<Vec<f64>> = (0..total.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let start = chunk * CHUNK;
            let len = CHUNK.min(total - start);
            // Channel-major within the chunk: block[k * len + j].
            let mut block = vec![0.0; g.c * len];
            let mut d = vec![0.0; g.c];
            let mut scratch = vec![0.0; g.c];
            for j in 0..len {
                let pix = start + j;
                d.iter_mut().for_each(|v| *v = 0.0);
                f(pix / g.s, pix % g.s, &mut d, &mut scratch);
                for (k, v) in d.iter().enumerate() {
                    block[k * len + j] = *v;
                }
            }
            block
        })
        .collect();
    let mut out = vec![T::from_f64(0.0); total * g.c];
    for (chunk, block) in blocks.iter().enumerate() {
        let start = chunk * CHUNK;
        let len = block.len() / g.c;
        // A chunk may span images: copy runs of pixels that stay within one image.
        let mut j = 0;
        while j < len {
            let pix = start + j;
            let (b, i) = (pix / g.s, pix % g.s);
            let run = (g.s - i).min(len - j);
            for k in 0..g.c {
                let dst = (b * g.c + k) * g.s + i;
                let src = &block[k * len + j..k * len + j + run];
                for (o, v) in out[dst..dst + run].iter_mut().zip(src) {
                    *o = T::from_f64(*v);
                }
            }
            j += run;
        }
    }
    Tensor::from_vec(out, (g.n, g.c, g.s), device)
}

fn storage_slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    let v = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("fused loss: non-contiguous input"),
    }
}

/// Dispatches a kernel on the dtype of the prediction.
macro_rules! by_dtype {
    ($s1:expr, $l1:expr, $s2:expr, $l2:expr, $s3:expr, $l3:expr, |$x:ident, $lab:ident, $m:ident, $T:ident| $body:expr) => {{
        let $lab = storage_slice::<i64>($s2, $l2)?;
        match $s1 {
            CpuStorage::F32(_) => {
                type $T = f32;
                let $x = storage_slice::<f32>($s1, $l1)?;
                let $m = storage_slice::<f32>($s3, $l3)?;
                $body
            }
            CpuStorage::F64(_) => {
                type $T = f64;
                let $x = storage_slice::<f64>($s1, $l1)?;
                let $m = storage_slice::<f64>($s3, $l3)?;
                $body
            }
            _ => candle_core::bail!("fused loss: unsupported dtype"),
        }
    }};
}

/// The storage and shape of a CPU tensor (a kernel's output computed as a tensor).
fn cpu_storage_of(t: &Tensor) -> candle_core::Result<(CpuStorage, Shape)> {
    let (st, _) = t.storage_and_layout();
    match &*st {
        Storage::Cpu(c) => Ok((c.clone(), t.shape().clone())),
        _ => candle_core::bail!("fused loss: expected a CPU tensor"),
    }
}

// ---------------------------------------------------------------------------------------------
// Categorical negative log-likelihood (cross-entropy, focal)

/// `Σ pw·ℓ / Σ pw` over labelled pixels with `ℓ = −(1 − p_y)^γ ln p_y` and
/// `pw = class_weight[y]·mask`.
#[derive(Debug, Clone)]
struct PixelNll {
    g: Geom,
    class_weights: Option<Vec<f64>>,
    gamma: f64,
    /// `Some(scale)`: the gradient op, multiplying the gradient by `scale`.
    grad_scale: Option<f64>,
    /// `Σ pw`, recorded by the forward pass for the backward pass.
    den: Arc<OnceLock<f64>>,
}

impl PixelNll {
    fn class_weight(&self, y: usize) -> f64 {
        self.class_weights.as_ref().map_or(1.0, |w| w[y])
    }

    /// The focal factor `m = (1 − p_y)^γ` and `dm/d(1 − p_y)`, with the base kept above
    /// `1e-12` as [`crate::ops::safe_pow`] does.
    fn modulating(&self, p: f64) -> (f64, f64) {
        let q = 1.0 - p;
        if self.gamma == 0.0 {
            (1.0, 0.0)
        } else if q < 1e-12 {
            (1e-12f64.powf(self.gamma), 0.0)
        } else if self.gamma == 2.0 {
            (q * q, 2.0 * q)
        } else if self.gamma == 1.0 {
            (q, 1.0)
        } else {
            let qg = q.powf(self.gamma);
            (qg, self.gamma * qg / q)
        }
    }

    /// The pixel weight of a labelled pixel, `None` for an unlabelled one.
    fn pixel_weight<T: WithDType>(
        &self,
        labels: &[i64],
        mask: &[T],
        b: usize,
        i: usize,
    ) -> Option<(usize, f64)> {
        let g = &self.g;
        let y = labels[b * g.s + i];
        if y == g.ignore {
            return None;
        }
        let y = y as usize;
        let pw = self.class_weight(y) * mask_weight(mask, g, b, i, y);
        (pw != 0.0).then_some((y, pw))
    }

    fn forward<T: WithDType>(&self, x: &[T], labels: &[i64], mask: &[T]) -> (f64, f64) {
        let g = &self.g;
        let floor = log_floor::<T>();
        let sums = reduce_pixels(g, 2, |b, i, acc, p| {
            let Some((y, pw)) = self.pixel_weight(labels, mask, b, i) else {
                return;
            };
            let (log_p, py) = match g.input {
                PredictionKind::Logits => {
                    let lse = pixel_probs(x, g, b, i, p);
                    (x[(b * g.c + y) * g.s + i].to_f64() - lse, p[y])
                }
                PredictionKind::Probabilities => {
                    let py = x[(b * g.c + y) * g.s + i].to_f64();
                    (clamped_log_d(py, floor).0, py)
                }
            };
            acc[0] += pw * -self.modulating(py).0 * log_p;
            acc[1] += pw;
        });
        (sums[0], sums[1])
    }

    fn gradient<T: WithDType>(
        &self,
        x: &[T],
        labels: &[i64],
        mask: &[T],
        scale: f64,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let g = &self.g;
        let floor = log_floor::<T>();
        let den = match self.den.get() {
            Some(d) => *d,
            None => self.forward(x, labels, mask).1,
        };
        let scale = scale / den.max(floor);
        pixel_gradients::<T>(g, device, |b, i, d, p| {
            let Some((y, pw)) = self.pixel_weight(labels, mask, b, i) else {
                return;
            };
            let s = pw * scale;
            match g.input {
                PredictionKind::Logits => {
                    let lse = pixel_probs(x, g, b, i, p);
                    let lp = x[(b * g.c + y) * g.s + i].to_f64() - lse;
                    let py = p[y];
                    let (m, dm) = self.modulating(py);
                    // dℓ/dx_k = dℓ/dp_y · p_y · (δ_ky − p_k), dℓ/dp_y · p_y = dm·p_y·ln p_y − m.
                    let f = s * (dm * py * lp - m);
                    for (k, dk) in d.iter_mut().enumerate() {
                        let delta = if k == y { 1.0 } else { 0.0 };
                        *dk = f * (delta - p[k]);
                    }
                }
                PredictionKind::Probabilities => {
                    let py = x[(b * g.c + y) * g.s + i].to_f64();
                    let (lp, dlp) = clamped_log_d(py, floor);
                    let (m, dm) = self.modulating(py);
                    // ℓ = −m(1 − p)·ln p: dℓ/dp = dm·ln p − m/p.
                    d[y] = s * (dm * lp - m * dlp);
                }
            }
        })
    }
}

impl CustomOp3 for PixelNll {
    fn name(&self) -> &'static str {
        "dlsia-pixel-nll"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        by_dtype!(s1, l1, s2, l2, s3, l3, |x, labels, mask, T| {
            match self.grad_scale {
                None => {
                    let (num, den) = self.forward(x, labels, mask);
                    let _ = self.den.set(den);
                    let v = num / den.max(log_floor::<T>());
                    Ok((
                        <T>::to_cpu_storage_owned(vec![<T>::from_f64(v)]),
                        Shape::from(()),
                    ))
                }
                Some(scale) => {
                    let t = self.gradient(x, labels, mask, scale, &Device::Cpu)?;
                    cpu_storage_of(&t)
                }
            }
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        labels: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let scale = grad.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let op = PixelNll {
            grad_scale: Some(scale),
            ..self.clone()
        };
        let dx = x.apply_op3_no_bwd(labels, mask, &op)?;
        Ok((Some(dx), None, None))
    }
}

/// The fused categorical negative log-likelihood (`C ≥ 2`): cross-entropy for `gamma = 0`,
/// focal loss otherwise.
pub(crate) fn pixel_nll(
    inputs: &FusedInputs,
    class_weights: Option<&[f64]>,
    gamma: f64,
) -> Result<Tensor> {
    let op = PixelNll {
        g: inputs.geom,
        class_weights: class_weights.map(<[f64]>::to_vec),
        gamma,
        grad_scale: None,
        den: Arc::new(OnceLock::new()),
    };
    Ok(inputs.x.apply_op3(&inputs.labels, &inputs.mask, op)?)
}

// ---------------------------------------------------------------------------------------------
// Soft counts (Dice, Tversky, FocalTversky)

/// Per-class soft counts `[TP; FP; FN]`, a `(3, C)` tensor; the gradient op takes the
/// upstream gradient of those counts.
#[derive(Debug, Clone)]
struct SoftCounts {
    g: Geom,
    upstream: Option<Vec<f64>>,
}

impl SoftCounts {
    fn target(&self, label: i64, k: usize) -> f64 {
        if self.g.c == 1 {
            (label == 1) as i32 as f64
        } else {
            (label == k as i64) as i32 as f64
        }
    }

    fn forward<T: WithDType>(&self, x: &[T], labels: &[i64], mask: &[T]) -> Vec<f64> {
        let g = &self.g;
        reduce_pixels(g, 3 * g.c, |b, i, acc, p| {
            let y = labels[b * g.s + i];
            if y == g.ignore {
                return;
            }
            pixel_probs(x, g, b, i, p);
            for k in 0..g.c {
                let w = mask_weight(mask, g, b, i, k);
                let t = self.target(y, k);
                acc[k] += w * p[k] * t;
                acc[g.c + k] += w * p[k] * (1.0 - t);
                acc[2 * g.c + k] += w * (1.0 - p[k]) * t;
            }
        })
    }

    fn gradient<T: WithDType>(
        &self,
        x: &[T],
        labels: &[i64],
        mask: &[T],
        up: &[f64],
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let g = &self.g;
        pixel_gradients::<T>(g, device, |b, i, d, p| {
            let y = labels[b * g.s + i];
            if y == g.ignore {
                return;
            }
            pixel_probs(x, g, b, i, p);
            // dL/dp_k into d.
            for (k, dk) in d.iter_mut().enumerate() {
                let w = mask_weight(mask, g, b, i, k);
                let t = self.target(y, k);
                *dk = w * (t * (up[k] - up[2 * g.c + k]) + (1.0 - t) * up[g.c + k]);
            }
            match (g.input, g.c) {
                (PredictionKind::Probabilities, _) => {}
                (PredictionKind::Logits, 1) => d[0] *= p[0] * (1.0 - p[0]),
                (PredictionKind::Logits, _) => {
                    let dot: f64 = p.iter().zip(d.iter()).map(|(a, b)| a * b).sum();
                    for (k, dk) in d.iter_mut().enumerate() {
                        *dk = p[k] * (*dk - dot);
                    }
                }
            }
        })
    }
}

impl CustomOp3 for SoftCounts {
    fn name(&self) -> &'static str {
        "dlsia-soft-counts"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        by_dtype!(s1, l1, s2, l2, s3, l3, |x, labels, mask, T| {
            match &self.upstream {
                None => {
                    let v: Vec<T> = self
                        .forward(x, labels, mask)
                        .into_iter()
                        .map(<T>::from_f64)
                        .collect();
                    Ok((<T>::to_cpu_storage_owned(v), Shape::from((3, self.g.c))))
                }
                Some(up) => {
                    let t = self.gradient(x, labels, mask, up, &Device::Cpu)?;
                    cpu_storage_of(&t)
                }
            }
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        labels: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let up = grad.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let op = SoftCounts {
            upstream: Some(up),
            ..self.clone()
        };
        Ok((Some(x.apply_op3_no_bwd(labels, mask, &op)?), None, None))
    }
}

/// The fused soft counts `(3, C)`: rows TP, FP, FN.
pub(crate) fn soft_counts(inputs: &FusedInputs) -> Result<Tensor> {
    let op = SoftCounts {
        g: inputs.geom,
        upstream: None,
    };
    Ok(inputs.x.apply_op3(&inputs.labels, &inputs.mask, op)?)
}
