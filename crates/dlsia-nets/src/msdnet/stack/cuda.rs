//! [`StackOp`] on a CUDA device: the algorithm of the CPU path with the element-wise passes of
//! `dlsia_ops::stack_cuda` and the convolutions of `dlsia_ops` on the GPU. Per-channel
//! statistics and maps are computed on the host from sums the kernels return (f64).

use candle_core::backend::BackendStorage;
use candle_core::op::BackpropOp;
use candle_core::{CudaStorage, DType, Device, Layout, Shape, Storage, Tensor};
use dlsia_ops::stack_cuda::{self, ChannelCoef, StackPlanes};
use dlsia_ops::{conv, conv_input_grad, conv_weight_grad};

use super::affine::ClampAffine;
use super::kernels::Planes;
use super::op::{op_err, LayerRecord, Saved, StackOp};

/// A tensor (no autograd history) over an owned device buffer.
fn tensor(s: CudaStorage, dims: Vec<usize>) -> Tensor {
    Tensor::from_storage(Storage::Cuda(s), dims, BackpropOp::none(), false)
}

/// The clamped affine maps as the kernels read them.
fn map_arrays(maps: &[ClampAffine]) -> Vec<[f64; 4]> {
    maps.iter().map(|m| [m.a, m.b, m.lo, m.hi]).collect()
}

fn stack_planes(p: Planes) -> StackPlanes {
    StackPlanes {
        n: p.n,
        c: p.c,
        s: p.s,
    }
}

/// Runs `f` on the CUDA storage and layout of `t`.
fn with_cuda<R>(
    t: &Tensor,
    f: impl FnOnce(&CudaStorage, &Layout) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let (st, l) = t.storage_and_layout();
    match &*st {
        Storage::Cuda(c) => f(c, l),
        _ => Err(op_err("expected a tensor on the CUDA device")),
    }
}

/// The per-channel coefficients of backward layer `rec` (without `m1`, `m2`).
fn layer_coefs(rec: &LayerRecord) -> Vec<ChannelCoef> {
    rec.pre
        .iter()
        .enumerate()
        .map(|(c, m)| {
            let mut k = ChannelCoef::from_map([m.a, m.b, m.lo, m.hi]);
            if !rec.mean.is_empty() {
                k.mean = rec.mean[c];
                k.inv_std = rec.inv_std[c];
            }
            k.scale = rec.scale[c];
            k
        })
        .collect()
}

impl StackOp {
    /// The forward pass on a CUDA device (see the CPU `forward`).
    pub(super) fn forward_cuda(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let sp = &self.spec;
        let d = l1.dims();
        let (w_len, bn_len) = (l2.shape().elem_count(), l3.shape().elem_count());
        self.check_inputs(d, w_len, bn_len)?;
        let dev = s1.device().clone();
        let dtype = s1.dtype();
        let bn: Vec<f64> = tensor(stack_cuda::copy_range(s3, l3, 0, bn_len)?, vec![bn_len])
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        let w_all = tensor(stack_cuda::copy_range(s2, l2, 0, w_len)?, vec![w_len]);
        let spatial = d[2..].to_vec();
        let (n, c0, s) = (d[0], d[1], spatial.iter().product::<usize>());
        let cl = sp.total_channels();
        let rp = Planes { n, c: cl, s };
        let srp = stack_planes(rp);
        let mut raw = stack_cuda::zeros(&dev, dtype, rp.len())?;
        stack_cuda::copy_channels(s1, l1, StackPlanes { n, c: c0, s }, 0, c0, &mut raw, cl, 0)?;
        let mut maps = vec![ClampAffine::IDENTITY; cl];
        let mut layers = Vec::with_capacity(sp.layers());
        let mut batch_stats = Vec::new();
        let offsets = sp.weight_offsets();
        let taps = sp.taps();
        let count = (n * s) as f64;
        let mut wdims = vec![1, 0];
        wdims.extend(std::iter::repeat_n(sp.kernel, sp.nd));
        for (k, dil) in sp.dilations.iter().enumerate() {
            let ck = sp.channels[k];
            let (h, mut sums) =
                stack_cuda::materialize(&raw, srp, &map_arrays(&maps[..ck]), sp.relu)?;
            let h = tensor(h, [vec![n, ck], spatial.clone()].concat());
            wdims[1] = ck;
            for (j, &dl) in dil.iter().enumerate() {
                let o = offsets[k][j];
                let wt = w_all.narrow(0, o, ck * taps)?.reshape(wdims.as_slice())?;
                let y = conv(&h, &wt, None, &sp.conv_spec(dl)).map_err(op_err)?;
                let s_new = with_cuda(&y, |yc, yl| {
                    stack_cuda::store_channel(
                        &mut raw,
                        srp,
                        ck + j,
                        yc,
                        yl,
                        s2,
                        l2,
                        o + ck * taps,
                        sp.relu,
                    )
                })?;
                sums.push(s_new);
                maps[ck + j] = ClampAffine::IDENTITY;
            }
            drop(h);
            layers.push(self.finish_layer(k, &sums, &mut maps, &bn, count, &mut batch_stats));
        }
        let (out, _) = stack_cuda::materialize(&raw, srp, &map_arrays(&maps), false)?;
        let mut st = self.lock();
        st.batch_stats = batch_stats;
        st.saved = Some(Saved {
            raw: Storage::Cuda(raw),
            planes: rp,
            spatial: spatial.clone(),
            layers,
        });
        Ok((out, Shape::from([vec![n, cl], spatial].concat())))
    }

    /// The backward pass on a CUDA device: `(dx, dweights, dnorm_params)`.
    pub(super) fn backward_cuda(
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
        let Storage::Cuda(raw) = &saved.raw else {
            return Err(op_err("the saved forward pass is not on a CUDA device"));
        };
        let rp = saved.planes;
        let srp = stack_planes(rp);
        let (n, s) = (rp.n, rp.s);
        let spatial = &saved.spatial;
        let dims = |c: usize| -> Vec<usize> { [vec![n, c], spatial.clone()].concat() };
        let dtype = grad.dtype();
        let device: Device = grad.device().clone();
        let grad = grad.contiguous()?;
        if grad.elem_count() != rp.len() {
            return Err(op_err("gradient of the wrong shape"));
        }
        let mut g = with_cuda(&grad, |c, l| stack_cuda::copy_range(c, l, 0, rp.len()))?;
        let w_all = weights.flatten_all()?.contiguous()?;
        let mut dbn = vec![0f64; norm_params.elem_count()];
        let offsets = sp.weight_offsets();
        let taps = sp.taps();
        let count = (n * s) as f64;
        let kern = vec![sp.kernel; sp.nd];
        let mut wdims = vec![1, 0];
        wdims.extend(std::iter::repeat_n(sp.kernel, sp.nd));
        // Per convolution (k, j): its weight gradient and bias gradient.
        let mut gw: Vec<Vec<Option<Tensor>>> =
            sp.dilations.iter().map(|d| vec![None; d.len()]).collect();
        let mut gb: Vec<Vec<f64>> = sp.dilations.iter().map(|d| vec![0.0; d.len()]).collect();
        let mut pending: Option<Tensor> = None;
        for k in (0..sp.layers()).rev() {
            let ck = sp.channels[k];
            let rec = &saved.layers[k];
            let mut coefs = layer_coefs(rec);
            let pend = pending.take();
            let pend_guard = pend.as_ref().map(|t| t.storage_and_layout());
            let d = match &pend_guard {
                Some((stor, lay)) => match &**stor {
                    Storage::Cuda(c) => Some((c, *lay)),
                    _ => return Err(op_err("expected a tensor on the CUDA device")),
                },
                None => None,
            };
            if sp.norm_eps.is_some() {
                let sums = stack_cuda::backward_sums(raw, &g, srp, d, &coefs, sp.relu)?;
                let (m1, m2) = self.norm_grads(k, &sums, &mut dbn, count);
                for (c, coef) in coefs.iter_mut().enumerate() {
                    coef.m1 = m1[c];
                    coef.m2 = m2[c];
                }
            }
            let h = stack_cuda::backward_apply(raw, &mut g, srp, d, &coefs, sp.relu, ck)?;
            drop(pend_guard);
            drop(pend);
            let h = tensor(h, dims(ck));
            wdims[1] = ck;
            let mut acc: Option<Tensor> = None;
            for (j, &dl) in sp.dilations[k].iter().enumerate() {
                let o = offsets[k][j];
                let mut gu = stack_cuda::zeros(raw.device(), dtype, n * s)?;
                let full = Layout::contiguous(rp.len());
                stack_cuda::copy_channels(&g, &full, srp, ck + j, 1, &mut gu, 1, 0)?;
                gb[k][j] = stack_cuda::channel_sums(&g, srp, ck + j)?[0];
                let gu = tensor(gu, dims(1));
                let cs = sp.conv_spec(dl);
                gw[k][j] = Some(
                    conv_weight_grad(&h, &gu, &kern, &cs)
                        .map_err(op_err)?
                        .flatten_all()?,
                );
                let wt = w_all.narrow(0, o, ck * taps)?.reshape(wdims.as_slice())?;
                let dx = conv_input_grad(&gu, &wt, spatial, &cs).map_err(op_err)?;
                acc = Some(match acc {
                    None => dx,
                    Some(a) => (a + dx)?,
                });
            }
            pending = acc;
        }
        let c0 = sp.channels[0];
        let mut dx = stack_cuda::zeros(raw.device(), dtype, n * c0 * s)?;
        stack_cuda::copy_channels(
            &g,
            &Layout::contiguous(rp.len()),
            srp,
            0,
            c0,
            &mut dx,
            c0,
            0,
        )?;
        let mut dx = tensor(dx, dims(c0));
        if let Some(p) = pending {
            dx = (dx + p)?;
        }
        let biases: Vec<f64> = gb.iter().flatten().copied().collect();
        let num_convs = biases.len();
        let biases = Tensor::from_vec(biases, num_convs, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(&device)?;
        let mut pieces = Vec::with_capacity(2 * num_convs);
        let mut i = 0;
        for row in gw {
            for w in row {
                pieces.push(w.ok_or_else(|| op_err("a weight gradient was not computed"))?);
                pieces.push(biases.narrow(0, i, 1)?);
                i += 1;
            }
        }
        let dw = Tensor::cat(&pieces, 0)?.reshape(weights.shape())?;
        let dbn = Tensor::from_vec(dbn, norm_params.shape(), &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(&device)?;
        Ok((dx, dw, dbn))
    }
}
