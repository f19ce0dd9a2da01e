//! The element-wise passes of `dlsia-nets`' MSDNet stack operation on CUDA (kernels
//! `kernels/stack.cu`, module `dlsia_kernels::STACK`), public so that the operation (which lives
//! with the network) can launch them; re-exported as `dlsia_ops::stack_cuda`.
//!
//! A stack buffer is `(N, C, S)` (`S` = spatial volume) of f32 or f64 in an owned
//! [`CudaStorage`] whose elements start at offset 0. Every carried channel is read from its
//! raw map `r` through a clamped affine map `z = clamp(a·r + b, lo, hi)` ([`ChannelCoef`]).
//! Per-channel sums are accumulated in f64 in two stages (per-block partials, then an ordered
//! sum), so results are bit-identical from run to run. Each function that returns sums copies
//! them to the host (a synchronisation with the device's stream).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaDevice, CudaStorage};
use candle_core::{DType, Layout, Result};

use super::{blocks, grid_1d, int, launch, sum_chunks, with_cuda_real, CudaReal, Kernel, BLOCK};

const OP: &str = "msd-stack (cuda)";
/// Positions of one channel summed by one block.
const CHUNK: usize = 16 * BLOCK as usize;
/// Doubles per channel in the coefficient array the kernels read.
const PRM: usize = 9;

/// Shape of a stack buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackPlanes {
    /// Batch size.
    pub n: usize,
    /// Channels of the buffer.
    pub c: usize,
    /// Spatial volume.
    pub s: usize,
}

impl StackPlanes {
    /// Elements of the buffer.
    pub fn len(&self) -> usize {
        self.n * self.c * self.s
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn positions(&self) -> usize {
        self.n * self.s
    }

    fn chunks(&self) -> usize {
        self.positions().div_ceil(CHUNK).max(1)
    }
}

/// Mirrors `struct StackPlanes` in `kernels/stack.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct CudaStackPlanes {
    n: i64,
    c: i64,
    s: i64,
}

// SAFETY: plain old data with the layout of the C struct (3 × int64).
unsafe impl DeviceRepr for CudaStackPlanes {}

impl From<StackPlanes> for CudaStackPlanes {
    fn from(p: StackPlanes) -> Self {
        CudaStackPlanes {
            n: p.n as i64,
            c: p.c as i64,
            s: p.s as i64,
        }
    }
}

/// What the passes know about one channel: its map from the raw values, the normalisation the
/// layer applied, and the coefficients of the backward pass
/// `dL/dz = mask(z)·scale·(g − m1 − t̂·m2)` with `t̂ = (act(z) − mean)·inv_std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelCoef {
    /// `[a, b, lo, hi]`: `z = clamp(a·r + b, lo, hi)` (bounds may be infinite).
    pub map: [f64; 4],
    /// Mean the layer normalised with (0 without normalisation).
    pub mean: f64,
    /// `1/√(var + eps)` (1 without normalisation).
    pub inv_std: f64,
    /// `γ·inv_std` (1 without normalisation).
    pub scale: f64,
    /// `Σ g / count` in training mode (else 0).
    pub m1: f64,
    /// `Σ g·t̂ / count` in training mode (else 0).
    pub m2: f64,
}

impl ChannelCoef {
    /// Only a map (no normalisation, no backward coefficients).
    pub fn from_map(map: [f64; 4]) -> Self {
        ChannelCoef {
            map,
            mean: 0.0,
            inv_std: 1.0,
            scale: 1.0,
            m1: 0.0,
            m2: 0.0,
        }
    }

    fn pack(coefs: &[ChannelCoef]) -> Vec<f64> {
        let mut v = Vec::with_capacity(coefs.len() * PRM);
        for c in coefs {
            v.extend_from_slice(&c.map);
            v.extend_from_slice(&[c.mean, c.inv_std, c.scale, c.m1, c.m2]);
        }
        v
    }
}

/// A zeroed `(len)` buffer of `dtype` (f32 or f64) on `dev`.
pub fn zeros(dev: &CudaDevice, dtype: DType, len: usize) -> Result<CudaStorage> {
    let len = len.max(1);
    Ok(match dtype {
        DType::F32 => CudaStorage::wrap_cuda_slice(dev.alloc_zeros::<f32>(len)?, dev.clone()),
        DType::F64 => CudaStorage::wrap_cuda_slice(dev.alloc_zeros::<f64>(len)?, dev.clone()),
        other => candle_core::bail!("{OP}: unsupported dtype {other:?}; expected f32 or f64"),
    })
}

/// Elements `[start, start + len)` of the contiguous tensor `(src, layout)`, copied into a new
/// buffer.
pub fn copy_range(
    src: &CudaStorage,
    layout: &Layout,
    start: usize,
    len: usize,
) -> Result<CudaStorage> {
    let dev = src.device();
    with_cuda_real!(OP, src, T => {
        let v = contiguous::<T>(src, layout)?;
        if start + len > v.len() {
            candle_core::bail!("{OP}: range {start}..{} outside {} elements", start + len, v.len());
        }
        let mut out = dev.alloc_zeros::<T>(len.max(1))?;
        if len > 0 {
            dev.memcpy_dtod(&v.slice(start..start + len), &mut out.slice_mut(0..len))?;
        }
        Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
    })
}

/// The contiguous elements of `(s, l)`.
fn contiguous<'a, T: CudaReal>(s: &'a CudaStorage, l: &Layout) -> Result<CudaView<'a, T>> {
    super::view::<T>(s, l, OP)
}

/// The first `len` elements of an owned buffer.
fn whole<T: CudaReal>(s: &CudaStorage, len: usize) -> Result<CudaView<'_, T>> {
    let v = s.as_cuda_slice::<T>()?;
    if v.len() < len {
        candle_core::bail!("{OP}: buffer of {} elements, expected {len}", v.len());
    }
    Ok(v.slice(0..len))
}

/// Adds the partial sums of `chunks` blocks (`2·ch` per block) in order and copies them home.
fn finish_sums(
    dev: &CudaDevice,
    part: &CudaSlice<f64>,
    chunks: usize,
    ch: usize,
) -> Result<Vec<[f64; 2]>> {
    let mut out = dev.alloc_zeros::<f64>(2 * ch.max(1))?;
    sum_chunks(dev, part, &mut out, chunks, 2 * ch, 1.0)?;
    let host = dev.clone_dtoh(&out)?;
    Ok((0..ch).map(|c| [host[c], host[ch + c]]).collect())
}

/// A grid of `chunks` blocks along x and `rows` along y.
fn grid_chunks(chunks: usize, rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks(chunks, 1), blocks(rows, 1), 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Copies channels `c0 .. c0 + nch` of `src` (shape `sp`, contiguous layout `src_layout`) into
/// channels `dst_c0 ..` of `dst` (an owned `(sp.n, dst_ch, sp.s)` buffer).
#[allow(clippy::too_many_arguments)]
pub fn copy_channels(
    src: &CudaStorage,
    src_layout: &Layout,
    sp: StackPlanes,
    c0: usize,
    nch: usize,
    dst: &mut CudaStorage,
    dst_ch: usize,
    dst_c0: usize,
) -> Result<()> {
    if c0 + nch > sp.c || dst_c0 + nch > dst_ch {
        candle_core::bail!("{OP}: channel range outside the buffers");
    }
    let total = sp.n * nch * sp.s;
    if total == 0 {
        return Ok(());
    }
    let dev = src.device().clone();
    with_cuda_real!(OP, src, T => {
        let s = contiguous::<T>(src, src_layout)?;
        if s.len() < sp.len() {
            candle_core::bail!("{OP}: source smaller than its shape");
        }
        let d = dst.as_cuda_slice_mut::<T>()?;
        if d.len() < sp.n * dst_ch * sp.s {
            candle_core::bail!("{OP}: destination smaller than its shape");
        }
        let k = Kernel::load::<T>(&dev, &dlsia_kernels::STACK, "stack_copy_channels")?;
        let (cp, c0, nch, dch, d0) = (
            CudaStackPlanes::from(sp),
            int(OP, "channel", c0)?,
            int(OP, "channels", nch)?,
            int(OP, "channels", dst_ch)?,
            int(OP, "channel", dst_c0)?,
        );
        let mut a = k.args();
        a.arg(&s).arg(&cp).arg(&c0).arg(&nch).arg(d).arg(&dch).arg(&d0);
        // SAFETY: both buffers hold their shapes' elements (checked above), the channel ranges
        // are inside them.
        unsafe { launch(a, grid_1d(total)) }
    })
}

/// `out[b, c] = map_c(raw[b, c])` for the first `maps.len()` channels of `raw` (shape `rp`),
/// a new `(N, maps.len(), S)` buffer, and per channel `[Σ t, Σ t²]` of `t = relu(out)` (or of
/// `out` without `relu`).
pub fn materialize(
    raw: &CudaStorage,
    rp: StackPlanes,
    maps: &[[f64; 4]],
    relu: bool,
) -> Result<(CudaStorage, Vec<[f64; 2]>)> {
    let oc = maps.len();
    if oc > rp.c {
        candle_core::bail!("{OP}: {oc} maps for {} channels", rp.c);
    }
    let dev = raw.device().clone();
    with_cuda_real!(OP, raw, T => {
        let r = whole::<T>(raw, rp.len())?;
        let mut out = dev.alloc_zeros::<T>((rp.n * oc * rp.s).max(1))?;
        if oc == 0 || rp.positions() == 0 {
            return Ok((CudaStorage::wrap_cuda_slice(out, dev), vec![[0.0; 2]; oc]));
        }
        let coefs: Vec<ChannelCoef> = maps.iter().map(|&m| ChannelCoef::from_map(m)).collect();
        let prm = dev.clone_htod(&ChannelCoef::pack(&coefs))?;
        let chunks = rp.chunks();
        let mut part = dev.alloc_zeros::<f64>(chunks * 2 * oc)?;
        let k = Kernel::load::<T>(&dev, &dlsia_kernels::STACK, "stack_materialize")?;
        let (cp, oci, relu_i, per) = (
            CudaStackPlanes::from(rp),
            int(OP, "channels", oc)?,
            i32::from(relu),
            CHUNK as i64,
        );
        let mut a = k.args();
        a.arg(&r).arg(&cp).arg(&prm).arg(&oci).arg(&relu_i).arg(&mut out).arg(&mut part).arg(&per);
        // SAFETY: raw holds rp.len() values, out N·oc·S, prm 9·oc, part chunks·2·oc.
        unsafe { launch(a, grid_chunks(chunks, oc))? };
        let sums = finish_sums(&dev, &part, chunks, oc)?;
        Ok((CudaStorage::wrap_cuda_slice(out, dev), sums))
    })
}

/// Writes `y + bias` (`y` is `(N, 1, S)`, `bias` element `bias_index` of `(bias_src,
/// bias_layout)`) into channel `c` of `raw` and returns `[Σ t, Σ t²]` of `t = act(y + bias)`.
#[allow(clippy::too_many_arguments)]
pub fn store_channel(
    raw: &mut CudaStorage,
    rp: StackPlanes,
    c: usize,
    y: &CudaStorage,
    y_layout: &Layout,
    bias_src: &CudaStorage,
    bias_layout: &Layout,
    bias_index: usize,
    relu: bool,
) -> Result<[f64; 2]> {
    if c >= rp.c {
        candle_core::bail!("{OP}: channel {c} of a {}-channel buffer", rp.c);
    }
    let dev = raw.device().clone();
    with_cuda_real!(OP, y, T => {
        let yv = contiguous::<T>(y, y_layout)?;
        let bv = contiguous::<T>(bias_src, bias_layout)?;
        if yv.len() != rp.positions() || bias_index >= bv.len() {
            candle_core::bail!("{OP}: new channel of {} values, expected {}", yv.len(), rp.positions());
        }
        if rp.positions() == 0 {
            return Ok([0.0; 2]);
        }
        let bias = bv.slice(bias_index..bias_index + 1);
        let r = raw.as_cuda_slice_mut::<T>()?;
        if r.len() < rp.len() {
            candle_core::bail!("{OP}: stack buffer smaller than its shape");
        }
        let chunks = rp.chunks();
        let mut part = dev.alloc_zeros::<f64>(chunks * 2)?;
        let k = Kernel::load::<T>(&dev, &dlsia_kernels::STACK, "stack_store_channel")?;
        let (cp, ci, relu_i, per) = (
            CudaStackPlanes::from(rp),
            int(OP, "channel", c)?,
            i32::from(relu),
            CHUNK as i64,
        );
        let mut a = k.args();
        a.arg(r).arg(&cp).arg(&ci).arg(&yv).arg(&bias).arg(&relu_i).arg(&mut part).arg(&per);
        // SAFETY: raw holds rp.len() values, y N·S, bias one, part chunks·2.
        unsafe { launch(a, grid_chunks(chunks, 1))? };
        Ok(finish_sums(&dev, &part, chunks, 1)?[0])
    })
}

/// The pending gradient `D` of a backward step: `(N, coefs.len(), S)` values, contiguous.
pub type Pending<'a> = Option<(&'a CudaStorage, &'a Layout)>;

/// Per channel `c < coefs.len()`: `[Σ g, Σ g·t̂]` with `g = G[b, c] + D[b, c]` (`G` is the
/// gradient buffer of shape `rp`).
pub fn backward_sums(
    raw: &CudaStorage,
    g: &CudaStorage,
    rp: StackPlanes,
    d: Pending<'_>,
    coefs: &[ChannelCoef],
    relu: bool,
) -> Result<Vec<[f64; 2]>> {
    let ch = coefs.len();
    if ch > rp.c {
        candle_core::bail!("{OP}: {ch} channels of a {}-channel buffer", rp.c);
    }
    if ch == 0 || rp.positions() == 0 {
        return Ok(vec![[0.0; 2]; ch]);
    }
    let dev = raw.device().clone();
    with_cuda_real!(OP, raw, T => {
        let r = whole::<T>(raw, rp.len())?;
        let gv = whole::<T>(g, rp.len())?;
        let dv = pending::<T>(d, rp, ch)?;
        let prm = dev.clone_htod(&ChannelCoef::pack(coefs))?;
        let chunks = rp.chunks();
        let mut part = dev.alloc_zeros::<f64>(chunks * 2 * ch)?;
        let k = Kernel::load::<T>(&dev, &dlsia_kernels::STACK, "stack_bwd_sums")?;
        let (cp, chi, relu_i, per, has_d) = (
            CudaStackPlanes::from(rp),
            int(OP, "channels", ch)?,
            i32::from(relu),
            CHUNK as i64,
            i32::from(d.is_some()),
        );
        let dref = dv.as_ref().unwrap_or(&gv);
        let mut a = k.args();
        a.arg(&r).arg(&gv).arg(dref).arg(&has_d).arg(&cp).arg(&prm).arg(&chi).arg(&relu_i)
            .arg(&mut part).arg(&per);
        // SAFETY: raw and g hold rp.len() values, d (read only when has_d) N·ch·S, prm 9·ch,
        // part chunks·2·ch.
        unsafe { launch(a, grid_chunks(chunks, ch))? };
        finish_sums(&dev, &part, chunks, ch)
    })
}

/// The contiguous view of a pending gradient, checked to hold `(N, ch, S)` values.
fn pending<'a, T: CudaReal>(
    d: Pending<'a>,
    rp: StackPlanes,
    ch: usize,
) -> Result<Option<CudaView<'a, T>>> {
    match d {
        None => Ok(None),
        Some((s, l)) => {
            let v = contiguous::<T>(s, l)?;
            if v.len() != rp.n * ch * rp.s {
                candle_core::bail!(
                    "{OP}: pending gradient of {} values, expected {}",
                    v.len(),
                    rp.n * ch * rp.s
                );
            }
            Ok(Some(v))
        }
    }
}

/// For `c < coefs.len()`: `G[b, c] ← mask(z)·scale·(G + D − m1 − t̂·m2)` in place, and returns
/// the layer's convolution input `h[b, c] = z` for `c < in_ch` (a new `(N, in_ch, S)` buffer).
pub fn backward_apply(
    raw: &CudaStorage,
    g: &mut CudaStorage,
    rp: StackPlanes,
    d: Pending<'_>,
    coefs: &[ChannelCoef],
    relu: bool,
    in_ch: usize,
) -> Result<CudaStorage> {
    let ch = coefs.len();
    if ch > rp.c || in_ch > ch {
        candle_core::bail!(
            "{OP}: {ch} channels ({in_ch} inputs) of a {}-channel buffer",
            rp.c
        );
    }
    let dev = raw.device().clone();
    with_cuda_real!(OP, raw, T => {
        let r = whole::<T>(raw, rp.len())?;
        let dv = pending::<T>(d, rp, ch)?;
        let mut h = dev.alloc_zeros::<T>((rp.n * in_ch * rp.s).max(1))?;
        let total = rp.n * ch * rp.s;
        if total == 0 {
            return Ok(CudaStorage::wrap_cuda_slice(h, dev));
        }
        let prm = dev.clone_htod(&ChannelCoef::pack(coefs))?;
        let gs = g.as_cuda_slice_mut::<T>()?;
        if gs.len() < rp.len() {
            candle_core::bail!("{OP}: gradient buffer smaller than its shape");
        }
        let k = Kernel::load::<T>(&dev, &dlsia_kernels::STACK, "stack_bwd_apply")?;
        let (cp, chi, relu_i, in_i, has_d) = (
            CudaStackPlanes::from(rp),
            int(OP, "channels", ch)?,
            i32::from(relu),
            int(OP, "channels", in_ch)?,
            i32::from(d.is_some()),
        );
        let dref = dv.as_ref().unwrap_or(&r);
        let mut a = k.args();
        a.arg(&r).arg(gs).arg(dref).arg(&has_d).arg(&cp).arg(&prm).arg(&chi).arg(&relu_i)
            .arg(&mut h).arg(&in_i);
        // SAFETY: raw and g hold rp.len() values, d (read only when has_d) N·ch·S, h N·in_ch·S,
        // prm 9·ch.
        unsafe { launch(a, grid_1d(total))? };
        Ok(CudaStorage::wrap_cuda_slice(h, dev))
    })
}

/// `[Σ v, Σ v²]` of channel `c` of the buffer `src` (shape `rp`).
pub fn channel_sums(src: &CudaStorage, rp: StackPlanes, c: usize) -> Result<[f64; 2]> {
    if c >= rp.c {
        candle_core::bail!("{OP}: channel {c} of a {}-channel buffer", rp.c);
    }
    if rp.positions() == 0 {
        return Ok([0.0; 2]);
    }
    let dev = src.device().clone();
    with_cuda_real!(OP, src, T => {
        let v = whole::<T>(src, rp.len())?;
        let chunks = rp.chunks();
        let mut part = dev.alloc_zeros::<f64>(chunks * 2)?;
        let k = Kernel::load::<T>(&dev, &dlsia_kernels::STACK, "stack_channel_sums")?;
        let (cp, ci, per) = (CudaStackPlanes::from(rp), int(OP, "channel", c)?, CHUNK as i64);
        let mut a = k.args();
        a.arg(&v).arg(&cp).arg(&ci).arg(&mut part).arg(&per);
        // SAFETY: src holds rp.len() values, part chunks·2.
        unsafe { launch(a, grid_chunks(chunks, 1))? };
        Ok(finish_sums(&dev, &part, chunks, 1)?[0])
    })
}
