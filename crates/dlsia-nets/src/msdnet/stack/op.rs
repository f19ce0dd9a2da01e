//! [`StackOp`]: the MSDNet stack as a Candle custom operation `(x, weights, norm params) → stack`.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape, Storage, Tensor};
use dlsia_ops::{conv, conv_input_grad, conv_weight_grad, ConvSpec};

use super::affine::ClampAffine;
use super::kernels::{self, ApplyCoef, Elem, LayerGrad, Planes};

const NAME: &str = "dlsia-msd-stack";

/// The structure of the stack (what a checked MSDNet configuration fixes).
#[derive(Debug, Clone)]
pub(crate) struct StackSpec {
    /// Spatial axes.
    pub nd: usize,
    /// Kernel size of the dilated convolutions.
    pub kernel: usize,
    /// `dilations[k][j]`: convolution `j` of layer `k`.
    pub dilations: Vec<Vec<usize>>,
    /// Channels before layer `k` (`channels[L]` = all).
    pub channels: Vec<usize>,
    /// ReLU after every layer (else no activation).
    pub relu: bool,
    /// BatchNorm after every layer (else none), with this epsilon.
    pub norm_eps: Option<f64>,
}

impl StackSpec {
    /// Taps of one kernel.
    pub(crate) fn taps(&self) -> usize {
        self.kernel.pow(self.nd as u32)
    }
    /// Number of layers.
    pub(crate) fn layers(&self) -> usize {
        self.dilations.len()
    }
    /// Channels of the output stack.
    pub(crate) fn total_channels(&self) -> usize {
        *self.channels.last().unwrap_or(&0)
    }
    /// Offset of convolution `(k, j)`'s weight in the packed weights (its bias follows it).
    pub(crate) fn weight_offsets(&self) -> Vec<Vec<usize>> {
        let mut off = 0;
        self.dilations
            .iter()
            .enumerate()
            .map(|(k, d)| {
                d.iter()
                    .map(|_| {
                        let o = off;
                        off += self.channels[k] * self.taps() + 1;
                        o
                    })
                    .collect()
            })
            .collect()
    }
    /// Length of the packed weights (every convolution's weight, then its bias).
    pub(crate) fn weights_len(&self) -> usize {
        self.dilations
            .iter()
            .enumerate()
            .map(|(k, d)| d.len() * (self.channels[k] * self.taps() + 1))
            .sum()
    }
    /// Offset of layer `k`'s normalisation weight in the packed normalisation parameters
    /// (`γ_k` then `β_k`, `channels[k + 1]` each).
    pub(crate) fn norm_offset(&self, k: usize) -> usize {
        2 * self.channels[1..=k].iter().sum::<usize>()
    }
    /// Length of the packed normalisation parameters (0 without normalisation).
    pub(crate) fn norm_len(&self) -> usize {
        if self.norm_eps.is_some() {
            self.norm_offset(self.layers())
        } else {
            0
        }
    }
    /// The (zero-padded, size-preserving) convolution of dilation `d`.
    pub(crate) fn conv_spec(&self, d: usize) -> ConvSpec {
        ConvSpec::uniform(
            self.nd,
            1,
            super::super::config::same_padding(self.kernel, d),
            d,
        )
    }
}

/// `(mean, variance)` of every channel, per normalisation layer.
pub(crate) type LayerStats = Vec<(Vec<f64>, Vec<f64>)>;

/// Where the normalisation statistics come from.
#[derive(Debug, Clone)]
pub(crate) enum StackNorm {
    /// Statistics of the batch (training mode).
    Batch,
    /// Running statistics per layer: `(mean, var)` of `channels[k + 1]` entries (eval mode).
    Running(Arc<LayerStats>),
}

/// What the forward pass leaves for the backward pass.
#[derive(Debug)]
pub(super) struct Saved {
    /// The raw maps `(N, C_L, S)`, on the device of the input.
    pub raw: Storage,
    pub planes: Planes,
    pub spatial: Vec<usize>,
    pub layers: Vec<LayerRecord>,
}

/// Per layer `k`, for every channel `c < channels[k + 1]`.
#[derive(Debug, Clone)]
pub(super) struct LayerRecord {
    /// The channel's value entering the layer's activation, from its raw map.
    pub pre: Vec<ClampAffine>,
    /// Mean and `1/√(var + eps)` the layer normalised with (empty without normalisation).
    pub mean: Vec<f64>,
    pub inv_std: Vec<f64>,
    /// `γ·inv_std`: the normalisation's scale.
    pub scale: Vec<f64>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub saved: Option<Saved>,
    /// Batch `(mean, biased var)` per layer of a training-mode forward pass.
    pub batch_stats: LayerStats,
}

/// The stack operation: `(x, packed weights, packed normalisation parameters) → stack`.
///
/// `x` is the stack's input `(N, C_0, spatial…)` (the network input after the activation
/// dlsia applies to it); the output is the final stack `(N, C_L, spatial…)`, the input of the
/// final 1×1 convolution.
#[derive(Debug, Clone)]
pub(crate) struct StackOp {
    pub(super) spec: Arc<StackSpec>,
    pub(super) norm: StackNorm,
    state: Arc<Mutex<State>>,
}

/// Converts any displayable error into a Candle error inside an op.
pub(super) fn op_err(e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{NAME}: {e}"))
}

/// Runs `f` on the contiguous elements of a CPU tensor.
fn with_slice<T: Elem, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(op_err("only CPU tensors are supported"));
    };
    let data = T::cpu_storage_as_slice(cpu)?;
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(f(&data[a..b])),
        None => Err(op_err("internal tensor is not contiguous")),
    }
}

fn contiguous<'a, T: Elem>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    let data = T::cpu_storage_as_slice(s)?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(op_err("inputs must be contiguous")),
    }
}

impl StackOp {
    /// An operation for `spec` with statistics from `norm` (ignored without normalisation).
    pub(crate) fn new(spec: Arc<StackSpec>, norm: StackNorm) -> Self {
        StackOp {
            spec,
            norm,
            state: Arc::default(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies the operation (tracked by autograd when any argument is) and returns the stack
    /// with, in training mode, the batch `(mean, biased var)` of every normalisation layer.
    pub(crate) fn apply(
        self,
        x: &Tensor,
        weights: &Tensor,
        norm_params: &Tensor,
    ) -> candle_core::Result<(Tensor, LayerStats)> {
        if matches!(x.dtype(), DType::BF16 | DType::F16) {
            // Half precision (the compute copy of mixed-precision training): the passes run
            // in f32, autograd differentiates through the casts.
            let d = x.dtype();
            let f32 = |t: &Tensor| t.to_dtype(DType::F32);
            let (y, stats) = self.apply(&f32(x)?, &f32(weights)?, &f32(norm_params)?)?;
            return Ok((y.to_dtype(d)?, stats));
        }
        let state = self.state.clone();
        let y =
            x.contiguous()?
                .apply_op3(&weights.contiguous()?, &norm_params.contiguous()?, self)?;
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        if !y.track_op() {
            st.saved = None;
        }
        Ok((y, std::mem::take(&mut st.batch_stats)))
    }

    /// Checks the input's shape and the packed parameters' lengths.
    pub(super) fn check_inputs(
        &self,
        d: &[usize],
        w_len: usize,
        bn_len: usize,
    ) -> candle_core::Result<()> {
        let sp = &self.spec;
        if d.len() != sp.nd + 2 || d[1] != sp.channels[0] {
            return Err(op_err(format!(
                "input of shape {d:?}; expected (N, {}, …) with {} spatial axes",
                sp.channels[0], sp.nd
            )));
        }
        if w_len != sp.weights_len() || bn_len < sp.norm_len() {
            return Err(op_err("packed parameters of the wrong length"));
        }
        Ok(())
    }

    /// Ends forward layer `k`: from the per-channel `[Σ t, Σ t²]` of the layer's activations
    /// (`count` values each), the normalisation statistics (recorded in `batch_stats` in
    /// training mode) and the channels' new maps; returns what the backward pass needs.
    pub(super) fn finish_layer(
        &self,
        k: usize,
        sums: &[[f64; 2]],
        maps: &mut [ClampAffine],
        bn: &[f64],
        count: f64,
        batch_stats: &mut LayerStats,
    ) -> LayerRecord {
        let sp = &self.spec;
        let ck1 = sp.channels[k + 1];
        let pre = maps[..ck1].to_vec();
        match sp.norm_eps {
            None => {
                for m in &mut maps[..ck1] {
                    if sp.relu {
                        *m = m.relu();
                    }
                }
                LayerRecord {
                    pre,
                    mean: vec![],
                    inv_std: vec![],
                    scale: vec![1.0; ck1],
                }
            }
            Some(eps) => {
                let (mean, var): (Vec<f64>, Vec<f64>) = match &self.norm {
                    StackNorm::Batch => {
                        let mv: (Vec<f64>, Vec<f64>) = sums
                            .iter()
                            .map(|s| {
                                let m = s[0] / count;
                                (m, (s[1] / count - m * m).max(0.0))
                            })
                            .unzip();
                        batch_stats.push(mv.clone());
                        mv
                    }
                    StackNorm::Running(r) => r[k].clone(),
                };
                let off = sp.norm_offset(k);
                let (gamma, beta) = (&bn[off..off + ck1], &bn[off + ck1..off + 2 * ck1]);
                let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
                let scale: Vec<f64> = (0..ck1).map(|c| gamma[c] * inv_std[c]).collect();
                for c in 0..ck1 {
                    let m = if sp.relu { maps[c].relu() } else { maps[c] };
                    maps[c] = m.then_affine(scale[c], beta[c] - mean[c] * scale[c]);
                }
                LayerRecord {
                    pre,
                    mean,
                    inv_std,
                    scale,
                }
            }
        }
    }

    /// Backward, layer `k` with normalisation: writes the γ and β gradients from the
    /// per-channel `[Σ g, Σ g·t̂]` into `dbn` and returns the coefficients `(m1, m2)` of the
    /// normalisation's input gradient.
    pub(super) fn norm_grads(
        &self,
        k: usize,
        sums: &[[f64; 2]],
        dbn: &mut [f64],
        count: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let ck1 = self.spec.channels[k + 1];
        let off = self.spec.norm_offset(k);
        for c in 0..ck1 {
            dbn[off + c] = sums[c][1];
            dbn[off + ck1 + c] = sums[c][0];
        }
        match self.norm {
            StackNorm::Batch => (
                sums.iter().map(|v| v[0] / count).collect(),
                sums.iter().map(|v| v[1] / count).collect(),
            ),
            StackNorm::Running(_) => (vec![0.0; ck1], vec![0.0; ck1]),
        }
    }

    fn forward<T: Elem>(
        &self,
        x: &[T],
        xl: &Layout,
        w: &[T],
        bn: &[T],
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let sp = &self.spec;
        let d = xl.dims();
        self.check_inputs(d, w.len(), bn.len())?;
        let bn: Vec<f64> = bn.iter().map(|v| v.to_f64()).collect();
        let spatial = d[2..].to_vec();
        let (n, c0, s) = (d[0], d[1], spatial.iter().product::<usize>());
        let cl = sp.total_channels();
        let rp = Planes { n, c: cl, s };
        let mut raw = vec![T::zero(); rp.len()];
        for b in 0..n {
            raw[rp.plane(b, 0).start..rp.plane(b, c0 - 1).end]
                .copy_from_slice(&x[b * c0 * s..(b + 1) * c0 * s]);
        }
        let mut maps = vec![ClampAffine::IDENTITY; cl];
        let mut layers = Vec::with_capacity(sp.layers());
        let mut batch_stats = Vec::new();
        let offsets = sp.weight_offsets();
        let taps = sp.taps();
        let count = (n * s) as f64;
        for (k, dil) in sp.dilations.iter().enumerate() {
            let ck = sp.channels[k];
            // The convolution input (current value of every channel) and the sums of the
            // carried channels' activations.
            let (h, mut sums) = kernels::materialize(&raw, rp, &maps[..ck], sp.relu);
            let mut hdims = vec![n, ck];
            hdims.extend_from_slice(&spatial);
            let h = Tensor::from_vec(h, hdims, &Device::Cpu)?;
            for (j, &dl) in dil.iter().enumerate() {
                let o = offsets[k][j];
                let mut wdims = vec![1, ck];
                wdims.extend(std::iter::repeat_n(sp.kernel, sp.nd));
                let wt = Tensor::from_slice(&w[o..o + ck * taps], wdims, &Device::Cpu)?;
                let y = conv(&h, &wt, None, &sp.conv_spec(dl)).map_err(op_err)?;
                let bias = w[o + ck * taps];
                let s_new = with_slice::<T, _>(&y, |y| {
                    kernels::store_new_channel(&mut raw, rp, ck + j, y, bias, sp.relu)
                })?;
                sums.push(s_new);
                maps[ck + j] = ClampAffine::IDENTITY;
            }
            drop(h);
            let rec = self.finish_layer(k, &sums, &mut maps, &bn, count, &mut batch_stats);
            layers.push(rec);
        }
        let (out, _) = kernels::materialize(&raw, rp, &maps, false);
        let mut st = self.lock();
        st.batch_stats = batch_stats;
        st.saved = Some(Saved {
            raw: Storage::Cpu(T::to_cpu_storage_owned(raw)),
            planes: rp,
            spatial: spatial.clone(),
            layers,
        });
        let mut odims = vec![n, cl];
        odims.extend_from_slice(&spatial);
        Ok((T::to_cpu_storage_owned(out), Shape::from(odims)))
    }

    fn backward<T: Elem>(
        &self,
        weights: &Tensor,
        norm_params: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let sp = &self.spec;
        let st = self.lock();
        let Some(saved) = &st.saved else {
            return Err(op_err(
                "backward without a saved forward pass (the forward ran untracked)",
            ));
        };
        let Storage::Cpu(raw) = &saved.raw else {
            return Err(op_err("the saved forward pass is not on the CPU"));
        };
        let raw = contiguous::<T>(raw, &Layout::contiguous(saved.planes.len()))?;
        let rp = saved.planes;
        let (n, s) = (rp.n, rp.s);
        let spatial = &saved.spatial;
        let w: Vec<T> = weights.flatten_all()?.to_vec1::<T>()?;
        let bn_len = norm_params.elem_count();
        let mut g: Vec<T> = grad.contiguous()?.flatten_all()?.to_vec1::<T>()?;
        if g.len() != rp.len() {
            return Err(op_err("gradient of the wrong shape"));
        }
        let mut dw = vec![T::zero(); w.len()];
        let mut dbn = vec![0f64; bn_len];
        let offsets = sp.weight_offsets();
        let taps = sp.taps();
        let count = (n * s) as f64;
        let mut pending: Option<Tensor> = None;
        let dims = |c: usize| -> Vec<usize> { [vec![n, c], spatial.clone()].concat() };
        for k in (0..sp.layers()).rev() {
            let (ck, ck1) = (sp.channels[k], sp.channels[k + 1]);
            let rec = &saved.layers[k];
            let lg = LayerGrad {
                pre: &rec.pre,
                relu: sp.relu,
                norm: sp
                    .norm_eps
                    .map(|_| (rec.mean.as_slice(), rec.inv_std.as_slice())),
            };
            let pend = pending.take();
            let pend_guard = pend.as_ref().map(|t| t.storage_and_layout());
            let d: Option<&[T]> = match &pend_guard {
                Some((stor, lay)) => match &**stor {
                    Storage::Cpu(cpu) => Some(contiguous::<T>(cpu, lay)?),
                    _ => return Err(op_err("only CPU tensors are supported")),
                },
                None => None,
            };
            let (m1, m2) = if sp.norm_eps.is_some() {
                let sums = kernels::backward_sums(raw, &g, rp, d, &lg);
                self.norm_grads(k, &sums, &mut dbn, count)
            } else {
                (vec![0.0; ck1], vec![0.0; ck1])
            };
            let coef = ApplyCoef {
                scale: &rec.scale,
                m1: &m1,
                m2: &m2,
            };
            let h = kernels::backward_apply(raw, &mut g, rp, d, &lg, &coef, ck);
            drop(pend_guard);
            drop(pend);
            let h = Tensor::from_vec(h, dims(ck), &Device::Cpu)?;
            let mut acc: Option<Tensor> = None;
            for (j, &dl) in sp.dilations[k].iter().enumerate() {
                let o = offsets[k][j];
                let (gu, gsum) = kernels::gather_channel(&g, rp, ck + j);
                let gu = Tensor::from_vec(gu, dims(1), &Device::Cpu)?;
                let cs = sp.conv_spec(dl);
                let kern = vec![sp.kernel; sp.nd];
                let gw = conv_weight_grad(&h, &gu, &kern, &cs).map_err(op_err)?;
                with_slice::<T, _>(&gw, |v| dw[o..o + ck * taps].copy_from_slice(v))?;
                dw[o + ck * taps] = T::from_f64(gsum);
                let mut wdims = vec![1, ck];
                wdims.extend(std::iter::repeat_n(sp.kernel, sp.nd));
                let wt = Tensor::from_slice(&w[o..o + ck * taps], wdims, &Device::Cpu)?;
                let dx = conv_input_grad(&gu, &wt, spatial, &cs).map_err(op_err)?;
                acc = Some(match acc {
                    None => dx,
                    Some(a) => (a + dx)?,
                });
            }
            pending = acc;
        }
        let c0 = sp.channels[0];
        let mut dx = vec![T::zero(); n * c0 * s];
        let pend_guard = pending.as_ref().map(|t| t.storage_and_layout());
        let d: Option<&[T]> = match &pend_guard {
            Some((stor, lay)) => match &**stor {
                Storage::Cpu(cpu) => Some(contiguous::<T>(cpu, lay)?),
                _ => return Err(op_err("only CPU tensors are supported")),
            },
            None => None,
        };
        for b in 0..n {
            for c in 0..c0 {
                let dst = &mut dx[(b * c0 + c) * s..][..s];
                dst.copy_from_slice(&g[rp.plane(b, c)]);
                if let Some(d) = d {
                    for (o, &v) in dst.iter_mut().zip(&d[(b * c0 + c) * s..][..s]) {
                        *o += v;
                    }
                }
            }
        }
        Ok((
            Tensor::from_vec(dx, dims(c0), &Device::Cpu)?,
            Tensor::from_vec(dw, weights.shape(), &Device::Cpu)?,
            Tensor::from_vec(
                dbn.into_iter().map(T::from_f64).collect::<Vec<T>>(),
                norm_params.shape(),
                &Device::Cpu,
            )?,
        ))
    }
}

impl CustomOp3 for StackOp {
    fn name(&self) -> &'static str {
        NAME
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
        if s1.dtype() != s2.dtype() || s1.dtype() != s3.dtype() {
            return Err(op_err(
                "input, weights and normalisation parameters differ in dtype",
            ));
        }
        match s1 {
            CpuStorage::F32(_) => self.forward::<f32>(
                contiguous(s1, l1)?,
                l1,
                contiguous(s2, l2)?,
                contiguous(s3, l3)?,
            ),
            CpuStorage::F64(_) => self.forward::<f64>(
                contiguous(s1, l1)?,
                l1,
                contiguous(s2, l2)?,
                contiguous(s3, l3)?,
            ),
            other => Err(op_err(format!(
                "unsupported dtype {:?}; expected f32 or f64",
                other.dtype()
            ))),
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        if s1.dtype() != s2.dtype() || s1.dtype() != s3.dtype() {
            return Err(op_err(
                "input, weights and normalisation parameters differ in dtype",
            ));
        }
        self.forward_cuda(s1, l1, s2, l2, s3, l3)
    }

    fn bwd(
        &self,
        _x: &Tensor,
        weights: &Tensor,
        norm_params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        #[cfg(feature = "cuda")]
        if grad.device().is_cuda() {
            let (dx, dw, dbn) = self.backward_cuda(weights, norm_params, grad)?;
            return Ok((Some(dx), Some(dw), Some(dbn)));
        }
        let (dx, dw, dbn) = match grad.dtype() {
            candle_core::DType::F32 => self.backward::<f32>(weights, norm_params, grad)?,
            candle_core::DType::F64 => self.backward::<f64>(weights, norm_params, grad)?,
            other => return Err(op_err(format!("unsupported dtype {other:?}"))),
        };
        Ok((Some(dx), Some(dw), Some(dbn)))
    }
}
