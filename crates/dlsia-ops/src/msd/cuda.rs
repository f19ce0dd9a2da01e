//! The fused block on CUDA (crate feature `cuda`): the same layer-by-layer algorithm as the
//! CPU passes, one kernel launch per step (`dlsia-kernels` module `MSD`).
//!
//! Forward: the input is copied into the buffer, then each layer's units are computed from all
//! earlier channels (bias, convolution with the padding mode's source index, ReLU); with
//! normalisation the raw values are stored, their statistics taken (two passes, f64 partial
//! sums added on the host in order), and `relu(a·z + c)` applied in place.
//!
//! Backward: one gradient buffer, layers in reverse; per unit the ReLU mask, the normalisation
//! backward (on recomputed pre-normalisation values), the bias and weight gradients (two-stage
//! f64 sums), then the layer's adjoint convolution is gathered into every channel it read.
//! No atomics: results are bit-identical from run to run.

use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::CudaDevice;
use candle_core::Result;

use super::cpu::{NormRun, StatsMode};
use super::geom::Geom;
use super::norm::Stats;
use crate::cuda::{grid_1d, int, launch, zeros, CudaReal, Dims3, Kernel, BLOCK};
use crate::padding::PaddingMode;

const OP: &str = "MsdBlock (cuda)";
/// The most partial sums (blocks) of one reduction.
const MAX_PARTS: usize = 1024;
/// Positions each block of a reduction covers at least.
const PER_PART: usize = 8 * BLOCK as usize;
/// The most `(channel, tap)` pairs of one weight-gradient launch (grid y limit).
const MAX_ROWS: usize = 65_535;

/// Mirrors `struct MsdGeom` in `kernels/msd.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct CudaMsdGeom {
    n: i32,
    channels: i32,
    cin: i32,
    width: i32,
    taps: i32,
    mode: i32,
    size: Dims3,
    k: Dims3,
}

// SAFETY: plain old data with the layout of the C struct (12 ints).
unsafe impl DeviceRepr for CudaMsdGeom {}

/// The padding mode as `source_index` in `common.cuh` numbers it.
fn mode_code(m: PaddingMode) -> i32 {
    match m {
        PaddingMode::Zeros => 0,
        PaddingMode::Reflect => 1,
        PaddingMode::Replicate => 2,
        PaddingMode::Symmetric => 3,
    }
}

/// Per-call state: geometry, per-unit dilations and weight offsets on the device.
struct Ctx<'a> {
    dev: &'a CudaDevice,
    g: &'a Geom,
    cg: CudaMsdGeom,
    plane: usize,
    dil: CudaSlice<i32>,
    woff: CudaSlice<i64>,
}

impl<'a> Ctx<'a> {
    fn new(dev: &'a CudaDevice, g: &'a Geom) -> Result<Self> {
        let plane = g.plane();
        // Every 32-bit quantity a kernel derives must fit.
        int(OP, "positions per channel", g.n * plane)?;
        int(OP, "weights", g.weight_len())?;
        let cg = CudaMsdGeom {
            n: int(OP, "batch size", g.n)?,
            channels: int(OP, "channels", g.channels)?,
            cin: int(OP, "input channels", g.spec.in_channels)?,
            width: int(OP, "width", g.spec.width)?,
            taps: int(OP, "taps", g.taps())?,
            mode: mode_code(g.spec.padding),
            size: Dims3::new(OP, "spatial size", &g.size)?,
            k: Dims3::new(OP, "kernel size", &g.kernel)?,
        };
        let dil: Vec<i32> = g
            .spec
            .dilations
            .iter()
            .map(|&d| int(OP, "dilation", d))
            .collect::<Result<_>>()?;
        let woff: Vec<i64> = g.units.iter().map(|u| u.w_off as i64).collect();
        Ok(Ctx {
            dev,
            g,
            cg,
            plane,
            dil: dev.clone_htod(&dil)?,
            woff: dev.clone_htod(&woff)?,
        })
    }

    fn kernel<T: CudaReal>(&self, name: &str) -> Result<Kernel> {
        Kernel::load::<T>(self.dev, &dlsia_kernels::MSD, name)
    }

    /// Positions of one channel over the batch.
    fn positions(&self) -> usize {
        self.g.n * self.plane
    }

    /// Copies `nch` channels from `src` (channels `src_ch`, from `src_c0`) to `dst`.
    #[allow(clippy::too_many_arguments)]
    fn copy_channels<T: CudaReal>(
        &self,
        src: &CudaView<'_, T>,
        src_ch: usize,
        src_c0: usize,
        dst: &mut CudaSlice<T>,
        dst_ch: usize,
        dst_c0: usize,
        nch: usize,
    ) -> Result<()> {
        let total = self.positions() * nch;
        if total == 0 {
            return Ok(());
        }
        let k = self.kernel::<T>("msd_copy_channels")?;
        let (sc, s0, dc, d0, nc) = (
            int(OP, "channels", src_ch)?,
            int(OP, "channel", src_c0)?,
            int(OP, "channels", dst_ch)?,
            int(OP, "channel", dst_c0)?,
            int(OP, "channels", nch)?,
        );
        let plane = self.plane as i64;
        let mut a = k.args();
        a.arg(src)
            .arg(&sc)
            .arg(&s0)
            .arg(dst)
            .arg(&dc)
            .arg(&d0)
            .arg(&nc)
            .arg(&plane)
            .arg(&self.cg.n);
        // SAFETY: both buffers hold n·channels·plane values and the ranges are inside them.
        unsafe { launch(a, grid_1d(total)) }
    }

    /// Σ over the batch of `(a[c_a] − sa)·(b[c_b] − sb)` (or of `a[c_a] − sa` without `b`),
    /// in f64, deterministic.
    #[allow(clippy::too_many_arguments)]
    fn dot<T: CudaReal>(
        &self,
        a: &CudaView<'_, T>,
        a_ch: usize,
        a_c: usize,
        sa: f64,
        b: Option<(&CudaView<'_, T>, usize, usize, f64)>,
    ) -> Result<f64> {
        let total = self.positions();
        if total == 0 {
            return Ok(0.0);
        }
        let parts = total.div_ceil(PER_PART).clamp(1, MAX_PARTS);
        let mut part = zeros::<f64>(self.dev, parts)?;
        let k = self.kernel::<T>("msd_dot_part")?;
        let (bv, b_ch, b_c, sb, with_b) = match b {
            Some((v, ch, c, s)) => (v, ch, c, s, 1i32),
            None => (a, a_ch, a_c, 0.0, 0i32),
        };
        let (ac, a0, bc, b0) = (
            int(OP, "channels", a_ch)?,
            int(OP, "channel", a_c)?,
            int(OP, "channels", b_ch)?,
            int(OP, "channel", b_c)?,
        );
        let plane = self.plane as i64;
        let mut l = k.args();
        l.arg(a)
            .arg(&ac)
            .arg(&a0)
            .arg(&sa)
            .arg(bv)
            .arg(&bc)
            .arg(&b0)
            .arg(&sb)
            .arg(&with_b)
            .arg(&self.cg.n)
            .arg(&plane)
            .arg(&mut part);
        let cfg = LaunchConfig {
            grid_dim: (parts as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: a and b hold n·channels·plane values, part `parts` (one per block).
        unsafe { launch(l, cfg)? };
        Ok(self.dev.clone_dtoh(&part)?.iter().sum())
    }

    /// Mean and biased variance of channel `c` of a buffer with `ch` channels (two passes).
    fn stats<T: CudaReal>(&self, v: &CudaView<'_, T>, ch: usize, c: usize) -> Result<Stats> {
        let m = self.positions() as f64;
        let mean = self.dot(v, ch, c, 0.0, None)? / m;
        let var = self.dot(v, ch, c, mean, Some((v, ch, c, mean)))? / m;
        Ok(Stats { mean, var })
    }

    /// Units of layer `l` into the buffer itself (`relu`: apply the ReLU).
    fn layer_inplace<T: CudaReal>(
        &self,
        buf: &mut CudaSlice<T>,
        w: &CudaView<'_, T>,
        bias: &CudaView<'_, T>,
        l: usize,
        relu: bool,
    ) -> Result<()> {
        let total = self.positions() * self.g.spec.width;
        if total == 0 {
            return Ok(());
        }
        let k = self.kernel::<T>("msd_layer_fwd_inplace")?;
        let (u0, prefix, relu) = (
            int(OP, "unit", l * self.g.spec.width)?,
            int(OP, "channels", self.g.layer_prefix(l))?,
            i32::from(relu),
        );
        let mut a = k.args();
        a.arg(buf)
            .arg(w)
            .arg(bias)
            .arg(&self.dil)
            .arg(&self.woff)
            .arg(&self.cg)
            .arg(&u0)
            .arg(&prefix)
            .arg(&relu);
        // SAFETY: buf holds n·channels·plane values, w the packed weights, bias one per unit.
        unsafe { launch(a, grid_1d(total)) }
    }

    /// Pre-normalisation values of layer `l` read from `buf`, into `z` (`(N, width, plane)`).
    fn layer_into<T: CudaReal>(
        &self,
        buf: &CudaView<'_, T>,
        z: &mut CudaSlice<T>,
        w: &CudaView<'_, T>,
        bias: &CudaView<'_, T>,
        l: usize,
    ) -> Result<()> {
        let total = self.positions() * self.g.spec.width;
        if total == 0 {
            return Ok(());
        }
        let k = self.kernel::<T>("msd_layer_fwd")?;
        let (out_ch, out_c0, u0, prefix, relu) = (
            self.cg.width,
            0i32,
            int(OP, "unit", l * self.g.spec.width)?,
            int(OP, "channels", self.g.layer_prefix(l))?,
            0i32,
        );
        let mut a = k.args();
        a.arg(buf)
            .arg(z)
            .arg(&out_ch)
            .arg(&out_c0)
            .arg(w)
            .arg(bias)
            .arg(&self.dil)
            .arg(&self.woff)
            .arg(&self.cg)
            .arg(&u0)
            .arg(&prefix)
            .arg(&relu);
        // SAFETY: buf holds n·channels·plane values, z n·width·plane.
        unsafe { launch(a, grid_1d(total)) }
    }

    /// `buf[channel] ← relu(a·v + s)`.
    fn affine_relu<T: CudaReal>(
        &self,
        buf: &mut CudaSlice<T>,
        channel: usize,
        a: f64,
        s: f64,
    ) -> Result<()> {
        let k = self.kernel::<T>("msd_affine_relu")?;
        let c = int(OP, "channel", channel)?;
        let plane = self.plane as i64;
        let mut l = k.args();
        l.arg(buf)
            .arg(&self.cg.channels)
            .arg(&c)
            .arg(&self.cg.n)
            .arg(&plane)
            .arg(&a)
            .arg(&s);
        // SAFETY: buf holds n·channels·plane values.
        unsafe { launch(l, grid_1d(self.positions())) }
    }
}

/// The forward buffer and, with normalisation, the statistics used per unit.
pub(crate) fn forward<T: CudaReal>(
    dev: &CudaDevice,
    g: &Geom,
    x: &CudaView<'_, T>,
    w: &CudaView<'_, T>,
    p: &CudaView<'_, T>,
    norm: Option<&NormRun>,
) -> Result<(CudaSlice<T>, Vec<Stats>)> {
    let cx = Ctx::new(dev, g)?;
    let (ch, cin, nu, wd) = (g.channels, g.spec.in_channels, g.units.len(), g.spec.width);
    let mut buf = zeros::<T>(dev, g.n * ch * cx.plane)?;
    cx.copy_channels(x, cin, 0, &mut buf, ch, 0, cin)?;
    let bias = p.slice(0..nu);
    let host_p: Vec<f64> = if norm.is_some() {
        dev.clone_dtoh(p)?.iter().map(|v| v.to_f64()).collect()
    } else {
        Vec::new()
    };
    let mut stats = Vec::new();
    for l in 0..g.spec.depth() {
        cx.layer_inplace(&mut buf, w, &bias, l, norm.is_none())?;
        if let Some(nr) = norm {
            for u in g.layer(l) {
                let i = u.channel - cin;
                let s = match &nr.mode {
                    StatsMode::Batch => cx.stats(&buf.slice(..), ch, u.channel)?,
                    StatsMode::Running(r) => r[i],
                };
                let a = host_p[nu + i] / (s.var + nr.eps).sqrt();
                cx.affine_relu(&mut buf, u.channel, a, host_p[2 * nu + i] - a * s.mean)?;
                stats.push(s);
            }
        }
    }
    debug_assert!(norm.is_none() || stats.len() == wd * g.spec.depth());
    Ok((buf, stats))
}

/// `[∂x | ∂weights | ∂params]` as one vector, from the forward buffer `res`, its gradient
/// `grad`, the weights and the parameters (and the statistics the forward pass used).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: CudaReal>(
    dev: &CudaDevice,
    g: &Geom,
    res: &CudaView<'_, T>,
    grad: &CudaView<'_, T>,
    w: &CudaView<'_, T>,
    p: &CudaView<'_, T>,
    norm: Option<(&NormRun, &[Stats])>,
) -> Result<CudaSlice<T>> {
    let cx = Ctx::new(dev, g)?;
    let (ch, cin, nu, wd) = (g.channels, g.spec.in_channels, g.units.len(), g.spec.width);
    let taps = g.taps();
    let plane = cx.plane as i64;
    let mut gb = zeros::<T>(dev, g.n * ch * cx.plane)?;
    cx.copy_channels(grad, ch, 0, &mut gb, ch, 0, ch)?;
    let bias = p.slice(0..nu);
    let host_p: Vec<f64> = dev.clone_dtoh(p)?.iter().map(|v| v.to_f64()).collect();
    let mut dw = vec![0.0f64; g.weight_len()];
    let mut dp = vec![0.0f64; host_p.len()];
    let mut z = match norm {
        Some(_) => Some(zeros::<T>(dev, g.n * wd * cx.plane)?),
        None => None,
    };
    let positions = cx.positions();
    let parts = positions.div_ceil(PER_PART).clamp(1, MAX_PARTS);
    for l in (0..g.spec.depth()).rev() {
        let prefix = g.layer_prefix(l);
        if let Some(z) = z.as_mut() {
            cx.layer_into(res, z, w, &bias, l)?;
        }
        for (k, u) in g.layer(l).iter().enumerate() {
            let i = u.channel - cin;
            let c = int(OP, "channel", u.channel)?;
            if positions > 0 {
                let km = cx.kernel::<T>("msd_relu_mask")?;
                let mut a = km.args();
                a.arg(&mut gb)
                    .arg(res)
                    .arg(&cx.cg.channels)
                    .arg(&c)
                    .arg(&cx.cg.n)
                    .arg(&plane);
                // SAFETY: gb and res hold n·channels·plane values.
                unsafe { launch(a, grid_1d(positions))? };
            }
            if let (Some(z), Some((nr, st))) = (z.as_ref(), norm) {
                let s = st[i];
                let inv = 1.0 / (s.var + nr.eps).sqrt();
                let gv = gb.slice(..);
                let zv = z.slice(..);
                let dbeta = cx.dot(&gv, ch, u.channel, 0.0, None)?;
                let dgamma = cx.dot(&gv, ch, u.channel, 0.0, Some((&zv, wd, k, s.mean)))? * inv;
                dp[nu + i] += dgamma;
                dp[2 * nu + i] += dbeta;
                let m = positions as f64;
                let (mb, mg) = if nr.mode == StatsMode::Batch {
                    (dbeta / m, dgamma / m)
                } else {
                    (0.0, 0.0)
                };
                let kk = host_p[nu + i] * inv;
                if positions > 0 {
                    let kn = cx.kernel::<T>("msd_norm_bwd")?;
                    let (zc, zk) = (cx.cg.width, int(OP, "unit", k)?);
                    let mut a = kn.args();
                    a.arg(&mut gb)
                        .arg(&cx.cg.channels)
                        .arg(&c)
                        .arg(z)
                        .arg(&zc)
                        .arg(&zk)
                        .arg(&cx.cg.n)
                        .arg(&plane)
                        .arg(&s.mean)
                        .arg(&inv)
                        .arg(&kk)
                        .arg(&mb)
                        .arg(&mg);
                    // SAFETY: gb holds n·channels·plane values, z n·width·plane.
                    unsafe { launch(a, grid_1d(positions))? };
                }
            }
            dp[i] += cx.dot(&gb.slice(..), ch, u.channel, 0.0, None)?;
            // Weight gradient of this unit: (channel, tap) rows, chunks of positions.
            let rows = prefix * taps;
            if rows > MAX_ROWS {
                candle_core::bail!(
                    "{OP}: {prefix} channels × {taps} taps = {rows} weight rows exceed the CUDA grid limit ({MAX_ROWS})"
                );
            }
            if positions > 0 && rows > 0 {
                let mut part = zeros::<f64>(dev, parts * rows)?;
                let kw = cx.kernel::<T>("msd_wgrad_part")?;
                let dil = int(OP, "dilation", g.spec.dilations[i])?;
                let pre = int(OP, "channels", prefix)?;
                let mut a = kw.args();
                a.arg(res)
                    .arg(&gb)
                    .arg(&cx.cg)
                    .arg(&c)
                    .arg(&dil)
                    .arg(&pre)
                    .arg(&mut part);
                let cfg = LaunchConfig {
                    grid_dim: (parts as u32, rows as u32, 1),
                    block_dim: (BLOCK, 1, 1),
                    shared_mem_bytes: 0,
                };
                // SAFETY: res, gb hold n·channels·plane values; part parts·rows.
                unsafe { launch(a, cfg)? };
                let host = dev.clone_dtoh(&part)?;
                let dst = &mut dw[u.w_off..u.w_off + rows];
                for chunk in host.chunks_exact(rows) {
                    for (d, v) in dst.iter_mut().zip(chunk) {
                        *d += v;
                    }
                }
            }
        }
        // The layer's adjoint convolution into the channels it read.
        let total = positions * prefix;
        if total > 0 {
            let kd = cx.kernel::<T>("msd_dx_gather")?;
            let (u0, pre) = (int(OP, "unit", l * wd)?, int(OP, "channels", prefix)?);
            let mut a = kd.args();
            a.arg(&mut gb)
                .arg(w)
                .arg(&cx.dil)
                .arg(&cx.woff)
                .arg(&cx.cg)
                .arg(&u0)
                .arg(&pre);
            // SAFETY: gb holds n·channels·plane values; units' channels ≥ prefix.
            unsafe { launch(a, grid_1d(total))? };
        }
    }
    let nx = g.n * cin * cx.plane;
    let mut out = zeros::<T>(dev, nx + dw.len() + dp.len())?;
    cx.copy_channels(&gb.slice(..), ch, 0, &mut out, cin, 0, cin)?;
    let tail: Vec<T> = dw.iter().chain(&dp).map(|&v| T::from_f64(v)).collect();
    if !tail.is_empty() {
        let mut dst = out.slice_mut(nx..nx + tail.len());
        dev.memcpy_htod(&tail, &mut dst)?;
    }
    Ok(out)
}
