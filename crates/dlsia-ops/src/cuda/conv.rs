//! Convolution forward, input gradient and weight gradient on CUDA (the GPU side of
//! `kernels::conv_gemm`).
//!
//! * Few output channels per group (every MSDNet layer, the 1×1 heads): direct kernels, one
//!   thread per output (forward) or input (input gradient) element, the group's weights in
//!   shared memory; the weight gradient is a per-block sum over a chunk of positions followed
//!   by an ordered sum of the chunks (or atomic adds, see
//!   [`set_deterministic_reductions`](crate::device::set_deterministic_reductions)).
//! * Otherwise: im2col into a column buffer of bounded size (tiles of output positions),
//!   cuBLAS strided-batched GEMM over the groups, and for the input gradient col2im as a
//!   gather (no atomics).

use candle_core::cuda_backend::cudarc::cublas::sys::cublasOperation_t;
use candle_core::cuda_backend::cudarc::cublas::{GemmConfig, StridedBatchedConfig};
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::CudaDevice;
use candle_core::Result;

use super::{blocks, int, launch, sum_chunks, zeros, CudaReal, Dims3, Kernel, BLOCK};
use crate::kernels::conv_gemm::ConvGeom;
use crate::kernels::volume;

/// Output channels per group up to which the direct kernels are used (`DIRECT_MAX_CO`).
const DIRECT_MAX_CO: usize = 8;
/// Output channels per group × taps up to which the direct weight gradient is used.
const DIRECT_MAX_ACC: usize = 64;
/// Shared memory the direct kernels may use for one group's weights.
const MAX_SHARED_BYTES: usize = 48 * 1024;
/// Bytes of the im2col column buffer (tiles of output positions keep it below this).
const COL_BYTES: usize = 256 << 20;
/// Output positions summed by one block of the direct weight gradient.
const WGRAD_CHUNK: usize = 16 * BLOCK as usize;

/// Mirrors `struct ConvGeom` in `kernels/conv.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct CudaConvGeom {
    n: i32,
    groups: i32,
    ci: i32,
    co: i32,
    input: Dims3,
    output: Dims3,
    kernel: Dims3,
    stride: Dims3,
    pad: Dims3,
    dil: Dims3,
}

// SAFETY: plain old data with the layout of the C struct (22 ints).
unsafe impl DeviceRepr for CudaConvGeom {}

const OP: &str = "conv (cuda)";

impl CudaConvGeom {
    fn new(g: &ConvGeom) -> Result<Self> {
        Ok(CudaConvGeom {
            n: int(OP, "batch size", g.n)?,
            groups: int(OP, "groups", g.groups)?,
            ci: int(OP, "input channels", g.c_in / g.groups)?,
            co: int(OP, "output channels", g.c_out / g.groups)?,
            input: Dims3::new(OP, "input size", &g.input)?,
            output: Dims3::new(OP, "output size", &g.output)?,
            kernel: Dims3::new(OP, "kernel size", &g.kernel)?,
            stride: Dims3::new(OP, "stride", &g.stride)?,
            pad: Dims3::new(OP, "padding", &g.pad)?,
            dil: Dims3::new(OP, "dilation", &g.dil)?,
        })
    }
}

/// Sizes derived from a geometry.
struct Sizes {
    ci: usize,
    co: usize,
    taps: usize,
    in_plane: usize,
    out_plane: usize,
}

impl Sizes {
    fn of(g: &ConvGeom) -> Self {
        Sizes {
            ci: g.c_in / g.groups,
            co: g.c_out / g.groups,
            taps: g.kernel_volume(),
            in_plane: volume(&g.input),
            out_plane: volume(&g.output),
        }
    }
    /// Rows of the column buffer per group.
    fn k(&self) -> usize {
        self.ci * self.taps
    }
    /// Elements of one group's weights.
    fn group_weights(&self) -> usize {
        self.co * self.k()
    }
}

/// The launch of a direct kernel over `total` items per (batch, group), with the group's
/// weights in shared memory when they fit. Returns the config and the shared-memory flag.
fn direct_launch<T>(g: &ConvGeom, s: &Sizes, total: usize) -> (LaunchConfig, i32) {
    let bytes = s.group_weights() * std::mem::size_of::<T>();
    let smem = bytes <= MAX_SHARED_BYTES;
    let mut cfg = super::grid_2d(total, g.n * g.groups);
    if smem {
        cfg.shared_mem_bytes = bytes as u32;
    }
    (cfg, i32::from(smem))
}

/// `y = conv(x, w)`.
pub(crate) fn forward<T: CudaReal>(
    dev: &CudaDevice,
    g: &ConvGeom,
    x: &CudaView<'_, T>,
    w: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let s = Sizes::of(g);
    let mut y = zeros::<T>(dev, g.n * g.c_out * s.out_plane)?;
    if g.n == 0 || s.out_plane == 0 || s.co == 0 {
        return Ok(y);
    }
    let cg = CudaConvGeom::new(g)?;
    if s.co <= DIRECT_MAX_CO {
        let k = Kernel::load::<T>(dev, &dlsia_kernels::CONV, "conv_direct_fwd")?;
        let (cfg, smem) = direct_launch::<T>(g, &s, s.out_plane);
        let mut a = k.args();
        a.arg(x).arg(w).arg(&mut y).arg(&cg).arg(&smem);
        // SAFETY: x, w, y have the geometry's sizes (checked by the op); the kernel bounds
        // every index by the geometry.
        unsafe { launch(a, cfg)? };
        return Ok(y);
    }
    let tile = col_tile::<T>(g, &s);
    let mut col = zeros::<T>(dev, g.groups * s.k() * tile)?;
    let im2col = Kernel::load::<T>(dev, &dlsia_kernels::CONV, "im2col")?;
    let blas = dev.cublas_handle();
    let x_item = g.c_in * s.in_plane;
    let y_item = g.c_out * s.out_plane;
    for b in 0..g.n {
        let xb = x.slice(b * x_item..(b + 1) * x_item);
        for m0 in (0..s.out_plane).step_by(tile) {
            let len = tile.min(s.out_plane - m0);
            run_im2col(&im2col, &xb, &mut col, &cg, g.groups * s.k(), m0, len)?;
            // Row-major Y_g (co × len, ld out_plane) = W_g (co × K) · col_g (K × len); in
            // cuBLAS's column-major terms Y_gᵀ = col_gᵀ · W_gᵀ.
            let cfg = StridedBatchedConfig {
                gemm: GemmConfig {
                    transa: cublasOperation_t::CUBLAS_OP_N,
                    transb: cublasOperation_t::CUBLAS_OP_N,
                    m: int(OP, "tile", len)?,
                    n: int(OP, "output channels", s.co)?,
                    k: int(OP, "reduction length", s.k())?,
                    alpha: T::ONE,
                    lda: int(OP, "tile", len)?,
                    ldb: int(OP, "reduction length", s.k())?,
                    beta: T::ZERO,
                    ldc: int(OP, "output size", s.out_plane)?,
                },
                batch_size: int(OP, "groups", g.groups)?,
                stride_a: (s.k() * len) as i64,
                stride_b: s.group_weights() as i64,
                stride_c: (s.co * s.out_plane) as i64,
            };
            let mut yv = y.slice_mut(b * y_item + m0..(b + 1) * y_item);
            // SAFETY: every matrix lies inside its buffer: col holds groups·K·len, w
            // groups·co·K, and y from (b, 0, m0) holds groups·co·out_plane − m0 ≥ the last
            // group's co rows of len columns.
            unsafe { T::gemm_batched(&blas, cfg, &col, w, &mut yv)? };
        }
    }
    Ok(y)
}

/// The input gradient `dx` for the output gradient `dy`.
pub(crate) fn data_grad<T: CudaReal>(
    dev: &CudaDevice,
    g: &ConvGeom,
    dy: &CudaView<'_, T>,
    w: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let s = Sizes::of(g);
    let mut dx = zeros::<T>(dev, g.n * g.c_in * s.in_plane)?;
    if g.n == 0 || s.in_plane == 0 || s.ci == 0 || s.out_plane == 0 {
        return Ok(dx);
    }
    let cg = CudaConvGeom::new(g)?;
    if s.co <= DIRECT_MAX_CO {
        let k = Kernel::load::<T>(dev, &dlsia_kernels::CONV, "conv_direct_dgrad")?;
        let (cfg, smem) = direct_launch::<T>(g, &s, s.ci * s.in_plane);
        let mut a = k.args();
        a.arg(dy).arg(w).arg(&mut dx).arg(&cg).arg(&smem);
        // SAFETY: sizes match the geometry; the kernel bounds every index by it.
        unsafe { launch(a, cfg)? };
        return Ok(dx);
    }
    let tile = col_tile::<T>(g, &s);
    let mut col = zeros::<T>(dev, g.groups * s.k() * tile)?;
    let col2im = Kernel::load::<T>(dev, &dlsia_kernels::CONV, "col2im")?;
    let blas = dev.cublas_handle();
    let x_item = g.c_in * s.in_plane;
    let y_item = g.c_out * s.out_plane;
    for b in 0..g.n {
        for m0 in (0..s.out_plane).step_by(tile) {
            let len = tile.min(s.out_plane - m0);
            // Row-major col_g (K × len) = W_gᵀ (K × co) · dY_g (co × len); column-major:
            // col_gᵀ (len × K) = dY_gᵀ (len × co) · W_g (co × K), W_g read transposed.
            let cfg = StridedBatchedConfig {
                gemm: GemmConfig {
                    transa: cublasOperation_t::CUBLAS_OP_N,
                    transb: cublasOperation_t::CUBLAS_OP_T,
                    m: int(OP, "tile", len)?,
                    n: int(OP, "reduction length", s.k())?,
                    k: int(OP, "output channels", s.co)?,
                    alpha: T::ONE,
                    lda: int(OP, "output size", s.out_plane)?,
                    ldb: int(OP, "reduction length", s.k())?,
                    beta: T::ZERO,
                    ldc: int(OP, "tile", len)?,
                },
                batch_size: int(OP, "groups", g.groups)?,
                stride_a: (s.co * s.out_plane) as i64,
                stride_b: s.group_weights() as i64,
                stride_c: (s.k() * len) as i64,
            };
            let dyb = dy.slice(b * y_item + m0..(b + 1) * y_item);
            // SAFETY: matrices inside their buffers (see `forward`, roles of y and col swapped).
            unsafe { T::gemm_batched(&blas, cfg, &dyb, w, &mut col)? };
            let mut dxb = dx.slice_mut(b * x_item..(b + 1) * x_item);
            let mut a = col2im.args();
            let (m0i, leni) = (m0 as i64, int(OP, "tile", len)?);
            a.arg(&col).arg(&mut dxb).arg(&cg).arg(&m0i).arg(&leni);
            // SAFETY: col holds groups·K·len values, dxb one batch item of dx.
            unsafe { launch(a, super::grid_1d(x_item))? };
        }
    }
    Ok(dx)
}

/// The weight gradient `dw` (`c_out × c_in/g × kernel`) for input `x` and output gradient `dy`.
pub(crate) fn weight_grad<T: CudaReal>(
    dev: &CudaDevice,
    g: &ConvGeom,
    x: &CudaView<'_, T>,
    dy: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let s = Sizes::of(g);
    let w_len = g.groups * s.group_weights();
    let mut dw = zeros::<T>(dev, w_len)?;
    if g.n == 0 || s.out_plane == 0 || w_len == 0 {
        return Ok(dw);
    }
    let cg = CudaConvGeom::new(g)?;
    if s.co * s.taps <= DIRECT_MAX_ACC {
        let positions = g.n * s.out_plane;
        let chunks = positions.div_ceil(WGRAD_CHUNK);
        let atomic = !crate::device::deterministic_reductions();
        let k = Kernel::load::<T>(dev, &dlsia_kernels::CONV, "conv_direct_wgrad")?;
        let cfg = LaunchConfig {
            grid_dim: (blocks(chunks, 1), blocks(g.groups * s.ci, 1), 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let (per_chunk, flag) = (WGRAD_CHUNK as i64, i32::from(atomic));
        if atomic {
            let mut a = k.args();
            a.arg(x)
                .arg(dy)
                .arg(&mut dw)
                .arg(&cg)
                .arg(&per_chunk)
                .arg(&flag);
            // SAFETY: with `atomic` the kernel adds into dw (w_len values).
            unsafe { launch(a, cfg)? };
        } else {
            let mut part = zeros::<T>(dev, chunks * w_len)?;
            let mut a = k.args();
            a.arg(x)
                .arg(dy)
                .arg(&mut part)
                .arg(&cg)
                .arg(&per_chunk)
                .arg(&flag);
            // SAFETY: part holds one row of w_len values per chunk.
            unsafe { launch(a, cfg)? };
            sum_chunks(dev, &part, &mut dw, chunks, w_len, 1.0)?;
        }
        return Ok(dw);
    }
    let tile = col_tile::<T>(g, &s);
    let mut col = zeros::<T>(dev, g.groups * s.k() * tile)?;
    let im2col = Kernel::load::<T>(dev, &dlsia_kernels::CONV, "im2col")?;
    let blas = dev.cublas_handle();
    let x_item = g.c_in * s.in_plane;
    let y_item = g.c_out * s.out_plane;
    for b in 0..g.n {
        let xb = x.slice(b * x_item..(b + 1) * x_item);
        for m0 in (0..s.out_plane).step_by(tile) {
            let len = tile.min(s.out_plane - m0);
            run_im2col(&im2col, &xb, &mut col, &cg, g.groups * s.k(), m0, len)?;
            // Row-major dW_g (co × K) += dY_g (co × len) · col_gᵀ (len × K); column-major:
            // dW_gᵀ (K × co) += col_g (K × len, col read transposed) · dY_gᵀ (len × co).
            let cfg = StridedBatchedConfig {
                gemm: GemmConfig {
                    transa: cublasOperation_t::CUBLAS_OP_T,
                    transb: cublasOperation_t::CUBLAS_OP_N,
                    m: int(OP, "reduction length", s.k())?,
                    n: int(OP, "output channels", s.co)?,
                    k: int(OP, "tile", len)?,
                    alpha: T::ONE,
                    lda: int(OP, "tile", len)?,
                    ldb: int(OP, "output size", s.out_plane)?,
                    beta: T::ONE,
                    ldc: int(OP, "reduction length", s.k())?,
                },
                batch_size: int(OP, "groups", g.groups)?,
                stride_a: (s.k() * len) as i64,
                stride_b: (s.co * s.out_plane) as i64,
                stride_c: s.group_weights() as i64,
            };
            let dyb = dy.slice(b * y_item + m0..(b + 1) * y_item);
            // SAFETY: matrices inside their buffers (see `forward`).
            unsafe { T::gemm_batched(&blas, cfg, &col, &dyb, &mut dw)? };
        }
    }
    Ok(dw)
}

/// Output positions per im2col tile: all of them if the column buffer stays below
/// [`COL_BYTES`], else as many as fit (at least one).
fn col_tile<T>(g: &ConvGeom, s: &Sizes) -> usize {
    let per_position = (g.groups * s.k() * std::mem::size_of::<T>()).max(1);
    (COL_BYTES / per_position).clamp(1, s.out_plane.max(1))
}

/// Fills the column buffer for output positions `m0..m0 + len` of one batch item.
fn run_im2col<T: CudaReal>(
    k: &Kernel,
    xb: &CudaView<'_, T>,
    col: &mut CudaSlice<T>,
    cg: &CudaConvGeom,
    rows: usize,
    m0: usize,
    len: usize,
) -> Result<()> {
    let (m0, leni) = (m0 as i64, int(OP, "tile", len)?);
    let mut a = k.args();
    a.arg(xb).arg(col).arg(cg).arg(&m0).arg(&leni);
    // SAFETY: col holds rows·len values (rows = groups·K), xb one batch item of x.
    unsafe { launch(a, super::grid_1d(rows * len)) }
}
