//! Per-channel operations on CUDA (the GPU side of `kernels::channel`): the affine map,
//! per-channel sums in f64 (two-stage, or atomic adds when determinism is switched off), batch
//! statistics and the batch-norm input gradient.

use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::CudaDevice;
use candle_core::Result;

use super::{blocks, grid_1d, launch, sum_chunks, zeros, CudaReal, Kernel, BLOCK};
use crate::kernels::channel::Planes;

/// Elements of one channel summed by one block.
const CHUNK: usize = 16 * BLOCK as usize;

/// Mirrors `struct Planes` in `kernels/channel.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct CudaPlanes {
    n: i64,
    c: i64,
    s: i64,
}

// SAFETY: plain old data with the layout of the C struct (3 × int64).
unsafe impl DeviceRepr for CudaPlanes {}

impl From<Planes> for CudaPlanes {
    fn from(p: Planes) -> Self {
        CudaPlanes {
            n: p.n as i64,
            c: p.c as i64,
            s: p.s as i64,
        }
    }
}

/// `y = x·a[c] + b[c]` with `a`, `b` device vectors of `C` values.
pub(crate) fn affine<T: CudaReal>(
    dev: &CudaDevice,
    p: Planes,
    x: &CudaView<'_, T>,
    a: &CudaView<'_, T>,
    b: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let total = p.n * p.c * p.s;
    let mut y = zeros::<T>(dev, total)?;
    if total == 0 {
        return Ok(y);
    }
    let k = Kernel::load::<T>(dev, &dlsia_kernels::CHANNEL, "channel_affine")?;
    let cp = CudaPlanes::from(p);
    let mut args = k.args();
    args.arg(x).arg(a).arg(b).arg(&mut y).arg(&cp);
    // SAFETY: x and y hold N·C·S values, a and b C values.
    unsafe { launch(args, grid_1d(total))? };
    Ok(y)
}

/// What [`sums`] adds up per channel.
#[derive(Debug, Clone, Copy)]
enum SumMode<'a> {
    /// `Σ x`.
    Values,
    /// `Σ (x − mean[c])²` with the means on the device.
    SquaredDeviations(&'a CudaSlice<f64>),
    /// `Σ g` and `Σ g·x`.
    Gradient,
}

/// Per-channel sums in f64 scaled by `scale`, as `K·C` values of type `Out` (row k = k-th sum).
fn sums<T: CudaReal, Out: CudaReal + super::SumChunks<f64>>(
    dev: &CudaDevice,
    p: Planes,
    x: &CudaView<'_, T>,
    g: Option<&CudaView<'_, T>>,
    mode: SumMode<'_>,
    scale: f64,
) -> Result<CudaSlice<Out>> {
    let (mode_id, nk) = match mode {
        SumMode::Values => (0i32, 1usize),
        SumMode::SquaredDeviations(_) => (1, 1),
        SumMode::Gradient => (2, 2),
    };
    let count = nk * p.c;
    let mut out = zeros::<Out>(dev, count)?;
    let per_channel = p.n * p.s;
    if per_channel == 0 || p.c == 0 {
        return Ok(out);
    }
    let chunks = per_channel.div_ceil(CHUNK);
    let atomic = !crate::device::deterministic_reductions();
    let k = Kernel::load::<T>(dev, &dlsia_kernels::CHANNEL, "channel_sums")?;
    let cfg = LaunchConfig {
        grid_dim: (blocks(chunks, 1), blocks(p.c, 1), 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    let cp = CudaPlanes::from(p);
    let (per_chunk, flag) = (CHUNK as i64, i32::from(atomic));
    // Placeholders for the pointers a mode does not read (never dereferenced).
    let unused_mean = zeros::<f64>(dev, 1)?;
    let mean = match mode {
        SumMode::SquaredDeviations(m) => m,
        _ => &unused_mean,
    };
    let stage_chunks = if atomic { 1 } else { chunks };
    let mut part = zeros::<f64>(dev, stage_chunks * count)?;
    let mut args = k.args();
    args.arg(x);
    match g {
        Some(g) => args.arg(g),
        None => args.arg(x),
    };
    args.arg(mean)
        .arg(&mut part)
        .arg(&cp)
        .arg(&mode_id)
        .arg(&per_chunk)
        .arg(&flag);
    // SAFETY: x (and g) hold N·C·S values; part holds `stage_chunks` rows of K·C sums, the
    // layout the kernel writes (or atomically adds to) for this mode.
    unsafe { launch(args, cfg)? };
    sum_chunks(dev, &part, &mut out, stage_chunks, count, scale)?;
    Ok(out)
}

/// Per-channel `[Σ g; Σ g·x]` as a `(2, C)` buffer of `T`.
pub(crate) fn grad_sums<T: CudaReal>(
    dev: &CudaDevice,
    p: Planes,
    x: &CudaView<'_, T>,
    g: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    sums::<T, T>(dev, p, x, Some(g), SumMode::Gradient, 1.0)
}

/// Mean and biased variance of every channel (two passes, f64), copied to the host.
pub(crate) fn stats<T: CudaReal>(
    dev: &CudaDevice,
    p: Planes,
    x: &CudaView<'_, T>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let inv_m = 1.0 / (p.n * p.s).max(1) as f64;
    let mean = sums::<T, f64>(dev, p, x, None, SumMode::Values, inv_m)?;
    let var = sums::<T, f64>(dev, p, x, None, SumMode::SquaredDeviations(&mean), inv_m)?;
    let mut mean = dev.clone_dtoh(&mean)?;
    let mut var = dev.clone_dtoh(&var)?;
    mean.truncate(p.c);
    var.truncate(p.c);
    Ok((mean, var))
}

/// Batch-norm input gradient from `prm = [μ; r; k; Σg; Σg·x̂]` (`5 × C` values of `T`).
pub(crate) fn batch_norm_dx<T: CudaReal>(
    dev: &CudaDevice,
    p: Planes,
    x: &CudaView<'_, T>,
    g: &CudaView<'_, T>,
    prm: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let total = p.n * p.c * p.s;
    let mut dx = zeros::<T>(dev, total)?;
    if total == 0 {
        return Ok(dx);
    }
    let k = Kernel::load::<T>(dev, &dlsia_kernels::CHANNEL, "batch_norm_dx")?;
    let cfg = super::grid_2d(p.s, p.n * p.c);
    let cp = CudaPlanes::from(p);
    let mut args = k.args();
    args.arg(x).arg(g).arg(prm).arg(&mut dx).arg(&cp);
    // SAFETY: x, g, dx hold N·C·S values and prm 5·C.
    unsafe { launch(args, cfg)? };
    Ok(dx)
}
