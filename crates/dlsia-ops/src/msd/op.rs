//! [`MsdBlock`]: the fused block as a differentiable Candle operation.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::config::MsdSpec;
use super::cpu::{self, NormRun, StatsMode};
use super::geom::Geom;
use super::norm::Stats;
use super::simd::{Float, Level};
use crate::error::{invalid, Error, Result};
use crate::kernels::slice_of;
use crate::ops::{check_float, expect_dims, with_real};

const OP: &str = "MsdBlock";

/// Layers per pass used unless [`MsdBlock::with_layers_per_pass`] says otherwise.
pub const DEFAULT_LAYERS_PER_PASS: usize = 8;

/// Where the normalisation takes its statistics from.
#[derive(Debug, Clone, Copy)]
pub enum MsdStats<'a> {
    /// Statistics of the current batch (training mode).
    Batch,
    /// Running statistics, one mean and variance per new channel (evaluation mode).
    Running {
        /// Per-channel means.
        mean: &'a [f64],
        /// Per-channel variances.
        var: &'a [f64],
    },
}

/// The statistics a normalised forward pass used, one entry per new channel.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats {
    /// Means.
    pub mean: Vec<f64>,
    /// Biased variances (divide by `count`; multiply by `count/(count − 1)` for the unbiased
    /// estimate PyTorch stores in `running_var`).
    pub var: Vec<f64>,
    /// Values per channel (`N ·` spatial size).
    pub count: usize,
}

/// A fused mixed-scale dense block: checked hyperparameters plus the operation.
///
/// The output is the whole buffer `(N, in_channels + depth·width, spatial…)`: the input
/// followed by every layer's new channels. Memory grows linearly with depth: the forward pass
/// keeps only this buffer, the backward pass adds one gradient buffer of the same size.
///
/// Weights are packed into one flat vector, unit (new channel) after unit; unit `u` of layer
/// `i` holds `(in_channels + i·width) × kernel_size^ndim` values in PyTorch's
/// `(1, C_in, k, k[, k])` order ([`MsdBlock::unit_weights`]).
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use dlsia_ops::msd::{MsdBlock, MsdSpec};
///
/// let block = MsdBlock::new(MsdSpec::cyclic(2, 1, 3, 1, 2))?; // depth 3, dilations 1, 2, 1
/// let dev = Device::Cpu;
/// let x = Tensor::ones((2, 1, 8, 8), DType::F32, &dev)?;
/// let w = Tensor::full(0.1f32, block.weight_len(), &dev)?;
/// let b = Tensor::zeros(block.units(), DType::F32, &dev)?;
/// let r = block.forward(&x, &w, &b)?;
/// assert_eq!(r.dims(), &[2, 4, 8, 8]);
/// // the centre of layer 0: nine taps of 0.1 on ones
/// let v = r.get(0)?.get(1)?.get(4)?.get(4)?.to_scalar::<f32>()?;
/// assert!((v - 0.9).abs() < 1e-6);
/// # Ok::<(), dlsia_ops::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MsdBlock {
    spec: MsdSpec,
    lpp: usize,
    offsets: Vec<usize>,
}

impl MsdBlock {
    /// Validates the hyperparameters.
    pub fn new(spec: MsdSpec) -> Result<Self> {
        spec.validate()?;
        let taps = spec.kernel_size.pow(spec.ndim as u32);
        let mut offsets = Vec::with_capacity(spec.dilations.len() + 1);
        let mut off = 0;
        offsets.push(0);
        for u in 0..spec.dilations.len() {
            off += (spec.in_channels + (u / spec.width) * spec.width) * taps;
            offsets.push(off);
        }
        Ok(MsdBlock {
            spec,
            lpp: DEFAULT_LAYERS_PER_PASS,
            offsets,
        })
    }

    /// Processes `lpp` layers per sweep over the earlier channels (≥ 1; a speed setting only:
    /// results agree up to floating-point rounding).
    pub fn with_layers_per_pass(mut self, lpp: usize) -> Self {
        self.lpp = lpp.max(1);
        self
    }

    /// The hyperparameters.
    pub fn spec(&self) -> &MsdSpec {
        &self.spec
    }
    /// Number of new channels (`depth·width`).
    pub fn units(&self) -> usize {
        self.spec.dilations.len()
    }
    /// Channels of the output buffer.
    pub fn out_channels(&self) -> usize {
        self.spec.out_channels()
    }
    /// Taps of one kernel (`kernel_size^ndim`).
    pub fn taps(&self) -> usize {
        self.spec.kernel_size.pow(self.spec.ndim as u32)
    }
    /// Input channels of unit `u` (`in_channels + layer·width`).
    pub fn unit_in_channels(&self, u: usize) -> usize {
        self.spec.in_channels + (u / self.spec.width) * self.spec.width
    }
    /// The range of unit `u`'s weights in the packed vector.
    pub fn unit_weights(&self, u: usize) -> Range<usize> {
        self.offsets[u]..self.offsets[u + 1]
    }
    /// Length of the packed weight vector.
    pub fn weight_len(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }
    /// The shape of unit `u`'s weight as a PyTorch convolution: `(1, C_in, k, k[, k])`.
    pub fn unit_weight_shape(&self, u: usize) -> Vec<usize> {
        let mut s = vec![1, self.unit_in_channels(u)];
        s.extend(std::iter::repeat_n(self.spec.kernel_size, self.spec.ndim));
        s
    }

    /// Packs per-unit weights (each `unit_weight_shape(u)` or flat) into one vector.
    pub fn pack_weights(&self, per_unit: &[Tensor]) -> Result<Tensor> {
        if per_unit.len() != self.units() {
            return Err(invalid(
                OP,
                format!(
                    "{} unit weights given; the block has {} new channels",
                    per_unit.len(),
                    self.units()
                ),
            ));
        }
        let mut flat = Vec::with_capacity(per_unit.len());
        for (u, t) in per_unit.iter().enumerate() {
            let want = self.unit_weights(u).len();
            if t.elem_count() != want {
                return Err(Error::Shape {
                    op: OP,
                    expected: format!(
                        "unit {u} weight with {want} elements {:?}",
                        self.unit_weight_shape(u)
                    ),
                    got: t.shape().clone(),
                });
            }
            flat.push(t.flatten_all()?);
        }
        Ok(Tensor::cat(&flat, 0)?)
    }

    /// Unit `u`'s weight, shaped `(1, C_in, k, k[, k])`, from a packed vector.
    pub fn unpack_weight(&self, packed: &Tensor, u: usize) -> Result<Tensor> {
        self.check_weight(packed)?;
        let r = self.unit_weights(u);
        Ok(packed
            .narrow(0, r.start, r.len())?
            .reshape(self.unit_weight_shape(u))?)
    }

    fn check_weight(&self, w: &Tensor) -> Result<()> {
        if w.dims() != [self.weight_len()] {
            return Err(Error::Shape {
                op: OP,
                expected: format!("packed weights of shape ({},)", self.weight_len()),
                got: w.shape().clone(),
            });
        }
        Ok(())
    }

    fn check_args(&self, x: &Tensor, w: &Tensor, p: &Tensor, rows: usize) -> Result<Geom> {
        let nd = self.spec.ndim;
        let d = x.dims();
        if d.len() != nd + 2 || d[1] != self.spec.in_channels {
            return Err(Error::Shape {
                op: OP,
                expected: format!(
                    "input (N, {}, …) with {nd} spatial axes",
                    self.spec.in_channels
                ),
                got: x.shape().clone(),
            });
        }
        check_float(OP, x, Some(w))?;
        check_float(OP, x, Some(p))?;
        self.check_weight(w)?;
        let pd = if rows == 1 {
            vec![self.units()]
        } else {
            vec![rows, self.units()]
        };
        if p.dims() != pd.as_slice() {
            return Err(Error::Shape {
                op: OP,
                expected: if rows == 1 {
                    format!("biases of shape ({},)", self.units())
                } else {
                    format!(
                        "(bias, γ, β) of shape (3, {}) for a normalised block",
                        self.units()
                    )
                },
                got: p.shape().clone(),
            });
        }
        Geom::new(&self.spec, d[0], &d[2..])
    }

    /// The block without normalisation: `x` is `(N, in_channels, spatial…)`, `weight` the packed
    /// weights, `bias` one value per new channel. Differentiable with respect to all three.
    pub fn forward(&self, x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
        if self.spec.norm.is_some() {
            return Err(invalid(
                OP,
                "this block normalises its new channels; call forward_normalized",
            ));
        }
        let geom = self.check_args(x, weight, bias, 1)?;
        self.apply(geom, None, x, weight, bias, true)
            .map(|(t, _)| t)
    }

    /// [`MsdBlock::forward`] without gradient tracking (inference: the buffer is the only
    /// allocation, nothing is kept for a backward pass).
    pub fn infer(&self, x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
        if self.spec.norm.is_some() {
            return Err(invalid(
                OP,
                "this block normalises its new channels; call infer_normalized",
            ));
        }
        let geom = self.check_args(x, weight, bias, 1)?;
        self.apply(geom, None, x, weight, bias, false)
            .map(|(t, _)| t)
    }

    /// The block with normalisation. `params` is `(3, units)`: rows bias, γ, β. With
    /// [`MsdStats::Batch`] the batch statistics are used and returned (update running
    /// statistics from them); with [`MsdStats::Running`] the given ones.
    pub fn forward_normalized(
        &self,
        x: &Tensor,
        weight: &Tensor,
        params: &Tensor,
        stats: MsdStats<'_>,
    ) -> Result<(Tensor, BatchStats)> {
        self.normalized(x, weight, params, stats, true)
    }

    /// [`MsdBlock::forward_normalized`] without gradient tracking.
    pub fn infer_normalized(
        &self,
        x: &Tensor,
        weight: &Tensor,
        params: &Tensor,
        stats: MsdStats<'_>,
    ) -> Result<(Tensor, BatchStats)> {
        self.normalized(x, weight, params, stats, false)
    }

    fn normalized(
        &self,
        x: &Tensor,
        weight: &Tensor,
        params: &Tensor,
        stats: MsdStats<'_>,
        track: bool,
    ) -> Result<(Tensor, BatchStats)> {
        let Some(cfg) = self.spec.norm else {
            return Err(invalid(
                OP,
                "this block has no normalisation; call forward (set MsdSpec::norm to normalise)",
            ));
        };
        let geom = self.check_args(x, weight, params, 3)?;
        let mode = match stats {
            MsdStats::Batch => StatsMode::Batch,
            MsdStats::Running { mean, var } => {
                if mean.len() != self.units() || var.len() != self.units() {
                    return Err(invalid(
                        OP,
                        format!(
                            "running statistics of lengths {} and {}; expected {} each",
                            mean.len(),
                            var.len(),
                            self.units()
                        ),
                    ));
                }
                if var.iter().any(|v| !(v.is_finite() && *v >= 0.0))
                    || mean.iter().any(|m| !m.is_finite())
                {
                    return Err(invalid(
                        OP,
                        "running statistics must be finite with variances ≥ 0",
                    ));
                }
                StatsMode::Running(
                    mean.iter()
                        .zip(var)
                        .map(|(&mean, &var)| Stats { mean, var })
                        .collect(),
                )
            }
        };
        let count = x.dims()[0] * x.dims()[2..].iter().product::<usize>();
        let run = NormRun { eps: cfg.eps, mode };
        let (t, s) = self.apply(geom, Some(run), x, weight, params, track)?;
        Ok((
            t,
            BatchStats {
                mean: s.iter().map(|s| s.mean).collect(),
                var: s.iter().map(|s| s.var).collect(),
                count,
            },
        ))
    }

    fn apply(
        &self,
        geom: Geom,
        norm: Option<NormRun>,
        x: &Tensor,
        w: &Tensor,
        p: &Tensor,
        track: bool,
    ) -> Result<(Tensor, Vec<Stats>)> {
        let op = FwdOp {
            geom: Arc::new(geom),
            norm,
            lpp: self.lpp,
            stats: Arc::new(Mutex::new(Vec::new())),
        };
        let stats = op.stats.clone();
        let (x, w, p) = (x.contiguous()?, w.contiguous()?, p.contiguous()?);
        let r = if track {
            x.apply_op3(&w, &p, op)?
        } else {
            x.apply_op3_no_bwd(&w, &p, &op)?
        };
        let s = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok((r, s))
    }
}

/// The forward op: `(x, packed weights, params) → buffer`.
struct FwdOp {
    geom: Arc<Geom>,
    norm: Option<NormRun>,
    lpp: usize,
    /// The statistics the forward pass used (for the caller and the backward pass).
    stats: Arc<Mutex<Vec<Stats>>>,
}

impl FwdOp {
    fn run<T: Float>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = "msd-block";
        let (x, w, p) = (
            slice_of::<T>(s1, l1, name)?,
            slice_of::<T>(s2, l2, name)?,
            slice_of::<T>(s3, l3, name)?,
        );
        let g = &self.geom;
        expect_dims(name, "weights", l2, &[g.weight_len()])?;
        let (buf, st) = cpu::forward(g, x, w, p, self.norm.as_ref(), self.lpp, Level::detect());
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = st;
        let mut dims = vec![g.n, g.channels];
        dims.extend_from_slice(&l1.dims()[2..]);
        Ok((T::to_cpu_storage_owned(buf), Shape::from(dims)))
    }
}

impl CustomOp3 for FwdOp {
    fn name(&self) -> &'static str {
        "msd-block"
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
            candle_core::bail!("msd-block: inputs have different dtypes");
        }
        with_real!(self.name(), s1, T => self.run::<T>(s1, l1, s2, l2, s3, l3))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        p: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (nw, np) = (w.elem_count(), p.elem_count());
        let packed = Tensor::cat(&[w.flatten_all()?, p.flatten_all()?], 0)?;
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let op = BwdOp {
            geom: self.geom.clone(),
            norm: self.norm.clone().map(|n| (n, stats)),
            lpp: self.lpp,
            nw,
        };
        let out = res.apply_op3_no_bwd(&grad, &packed, &op)?;
        let nx = x.elem_count();
        let dx = out.narrow(0, 0, nx)?.reshape(x.shape())?;
        let dw = out.narrow(0, nx, nw)?.reshape(w.shape())?;
        let dp = out.narrow(0, nx + nw, np)?.reshape(p.shape())?;
        Ok((Some(dx), Some(dw), Some(dp)))
    }
}

/// The backward op: `(buffer, ∂L/∂buffer, [weights | params]) → [∂x | ∂weights | ∂params]`.
struct BwdOp {
    geom: Arc<Geom>,
    norm: Option<(NormRun, Vec<Stats>)>,
    lpp: usize,
    nw: usize,
}

impl BwdOp {
    fn run<T: Float>(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = "msd-block-backward";
        let (r, g, wp) = (
            slice_of::<T>(s1, l1, name)?,
            slice_of::<T>(s2, l2, name)?,
            slice_of::<T>(s3, l3, name)?,
        );
        if l1.dims() != l2.dims() {
            candle_core::bail!(
                "{name}: gradient shape {:?} differs from buffer shape {:?}",
                l2.dims(),
                l1.dims()
            );
        }
        let (w, p) = wp.split_at(self.nw);
        let norm = self.norm.as_ref().map(|(n, s)| (n, s.as_slice()));
        let (dx, dw, dp) = cpu::backward(&self.geom, r, g, w, p, norm, self.lpp, Level::detect());
        let mut out = dx;
        out.extend_from_slice(&dw);
        out.extend_from_slice(&dp);
        let len = out.len();
        Ok((T::to_cpu_storage_owned(out), Shape::from(len)))
    }
}

impl CustomOp3 for BwdOp {
    fn name(&self) -> &'static str {
        "msd-block-backward"
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
            candle_core::bail!("msd-block-backward: inputs have different dtypes");
        }
        with_real!(self.name(), s1, T => self.run::<T>(s1, l1, s2, l2, s3, l3))
    }
}
