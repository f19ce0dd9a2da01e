//! CUDA launches of the `dlsia-kernels` PTX (crate feature `cuda`): one module per CPU kernel
//! module in `kernels/`, with the same entry points, called from the ops' `cuda_fwd`.
//!
//! Kernels are loaded once per device (Candle caches each PTX module by name) and launched on
//! the device's stream, so they order with Candle's own kernels without synchronisation.
//! Geometry travels as `#[repr(C)]` structs of 32-bit integers that mirror the structs in the
//! `.cu` sources; sizes that do not fit are reported as errors.

pub(crate) mod channel;
pub(crate) mod conv;
pub(crate) mod pool;
pub(crate) mod remap;
pub mod stack;

use std::sync::Arc;

use candle_core::cuda_backend::cudarc::cublas::{CudaBlas, Gemm, StridedBatchedConfig};
use candle_core::cuda_backend::cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, CudaView, DevicePtr, DevicePtrMut, DeviceRepr, LaunchArgs,
    LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use candle_core::cuda_backend::{CudaDType, CudaDevice, CudaStorage, WrapErr};
use candle_core::{Layout, Result};
use dlsia_kernels::Module;

use crate::kernels::Real;

/// Threads per block of the element-wise and gather kernels.
pub(crate) const BLOCK: u32 = 256;
/// The most blocks along one grid axis the launches ask for (the kernels loop over the rest).
const MAX_BLOCKS: usize = 65_535;

/// The element types the CUDA kernels run on (f32, f64).
pub(crate) trait CudaReal:
    Real + DeviceRepr + ValidAsZeroBits + CudaDType + SumChunks<Self> + SumChunks<f64>
{
    /// Suffix of the kernels' entry points (`_f32`, `_f64`).
    const SUFFIX: &'static str;

    /// cuBLAS strided-batched GEMM for this element type.
    ///
    /// # Safety
    /// The configuration must describe matrices inside the given buffers.
    unsafe fn gemm_batched<A: DevicePtr<Self>, B: DevicePtr<Self>, C: DevicePtrMut<Self>>(
        blas: &CudaBlas,
        cfg: StridedBatchedConfig<Self>,
        a: &A,
        b: &B,
        c: &mut C,
    ) -> Result<()>;
}

macro_rules! impl_cuda_real {
    ($t:ty, $suffix:literal) => {
        impl CudaReal for $t {
            const SUFFIX: &'static str = $suffix;
            unsafe fn gemm_batched<
                A: DevicePtr<Self>,
                B: DevicePtr<Self>,
                C: DevicePtrMut<Self>,
            >(
                blas: &CudaBlas,
                cfg: StridedBatchedConfig<Self>,
                a: &A,
                b: &B,
                c: &mut C,
            ) -> Result<()> {
                // SAFETY: forwarded from the caller's contract.
                unsafe { blas.gemm_strided_batched(cfg, a, b, c) }.w()
            }
        }
    };
}
impl_cuda_real!(f32, "f32");
impl_cuda_real!(f64, "f64");

/// A loaded kernel and the stream it launches on.
pub(crate) struct Kernel {
    func: CudaFunction,
    stream: Arc<CudaStream>,
}

impl Kernel {
    /// Entry point `{name}_{f32|f64}` of `module`.
    pub(crate) fn load<T: CudaReal>(dev: &CudaDevice, module: &Module, name: &str) -> Result<Self> {
        Self::load_exact(dev, module, &format!("{name}_{}", T::SUFFIX))
    }

    /// Entry point `name` of `module` (for kernels not stamped out per element type).
    pub(crate) fn load_exact(dev: &CudaDevice, module: &Module, name: &str) -> Result<Self> {
        let func = dev
            .get_or_load_custom_func(name, module.name, module.ptx)?
            .into_cuda_function();
        Ok(Kernel {
            func,
            stream: dev.cuda_stream(),
        })
    }

    /// A launch builder; add the arguments in the kernel's order, then `launch`.
    pub(crate) fn args(&self) -> LaunchArgs<'_> {
        self.stream.launch_builder(&self.func)
    }
}

/// Launches a prepared builder, mapping the driver error.
///
/// # Safety
/// The arguments must match the kernel's signature and the grid must stay inside the buffers
/// (every kernel bounds-checks its indices against the geometry it receives).
pub(crate) unsafe fn launch(mut args: LaunchArgs<'_>, cfg: LaunchConfig) -> Result<()> {
    // SAFETY: forwarded from the caller's contract.
    unsafe { args.launch(cfg) }.w().map(|_| ())
}

/// A 1-D grid for `total` independent items.
pub(crate) fn grid_1d(total: usize) -> LaunchConfig {
    grid_2d(total, 1)
}

/// A grid of `total` items along x (blocks of [`BLOCK`]) and `rows` along y.
pub(crate) fn grid_2d(total: usize, rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            blocks(total, BLOCK as usize),
            rows.clamp(1, MAX_BLOCKS) as u32,
            1,
        ),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Blocks of `per_block` items needed for `total`, clamped to the grid limit.
pub(crate) fn blocks(total: usize, per_block: usize) -> u32 {
    total.div_ceil(per_block.max(1)).clamp(1, MAX_BLOCKS) as u32
}

/// The contiguous elements of a CUDA tensor of type `T`.
pub(crate) fn view<'a, T: CudaReal>(
    s: &'a CudaStorage,
    l: &Layout,
    op: &str,
) -> Result<CudaView<'a, T>> {
    let slice = s.as_cuda_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(slice.slice(a..b)),
        None => candle_core::bail!(
            "{op}: input is not contiguous (internal error: the op wrapper makes inputs contiguous)"
        ),
    }
}

/// A zeroed device buffer of `n` elements (at least one, since the driver rejects empty
/// allocations; the tensor's shape says how many are used).
pub(crate) fn zeros<T: DeviceRepr + ValidAsZeroBits>(
    dev: &CudaDevice,
    n: usize,
) -> Result<CudaSlice<T>> {
    dev.alloc_zeros::<T>(n.max(1))
}

/// Converts a size to the 32-bit integer a kernel or cuBLAS takes.
pub(crate) fn int(op: &str, what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        candle_core::Error::Msg(format!(
            "{op}: {what} = {v} exceeds the CUDA kernels' 32-bit limit ({})",
            i32::MAX
        ))
    })
}

/// A spatial size `[d, h, w]` as the kernels' `Dims3`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims3 {
    d: i32,
    h: i32,
    w: i32,
}

// SAFETY: plain old data, layout identical to `struct Dims3 { int d, h, w; }`.
unsafe impl DeviceRepr for Dims3 {}

impl Dims3 {
    /// Converts, checking that every entry fits in 32 bits.
    pub(crate) fn new(op: &str, what: &str, s: &[usize; 3]) -> Result<Self> {
        Ok(Dims3 {
            d: int(op, what, s[0])?,
            h: int(op, what, s[1])?,
            w: int(op, what, s[2])?,
        })
    }
}

/// Element types a stage-2 sum can turn partial sums of type `In` into.
pub(crate) trait SumChunks<In> {
    /// The kernel of `REDUCE` that does it.
    const KERNEL: &'static str;
}
impl SumChunks<f32> for f32 {
    const KERNEL: &'static str = "sum_chunks_f32";
}
impl SumChunks<f64> for f64 {
    const KERNEL: &'static str = "sum_chunks_f64";
}
impl SumChunks<f64> for f32 {
    const KERNEL: &'static str = "sum_chunks_f64_to_f32";
}

/// Stage 2 of a two-stage reduction: `out[i] = scale · Σ_c part[c·count + i]`, summed in chunk
/// order in f64.
pub(crate) fn sum_chunks<In: DeviceRepr, Out: DeviceRepr + SumChunks<In>>(
    dev: &CudaDevice,
    part: &CudaSlice<In>,
    out: &mut CudaSlice<Out>,
    chunks: usize,
    count: usize,
    scale: f64,
) -> Result<()> {
    if part.len() < chunks * count || out.len() < count {
        candle_core::bail!("sum_chunks: buffers smaller than {chunks} x {count} partial sums");
    }
    let k = Kernel::load_exact(dev, &dlsia_kernels::REDUCE, Out::KERNEL)?;
    let (chunks, count) = (chunks as i64, count as i64);
    let mut a = k.args();
    a.arg(part).arg(out).arg(&chunks).arg(&count).arg(&scale);
    // SAFETY: part holds chunks·count elements and out count (checked above).
    unsafe { launch(a, grid_1d(count as usize)) }
}

/// Runs `$body` with `$t` bound to the element type of a `CudaStorage` (f32 or f64).
macro_rules! with_cuda_real {
    ($op:expr, $storage:expr, $t:ident => $body:expr) => {
        match candle_core::backend::BackendStorage::dtype($storage) {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $t = f64;
                $body
            }
            other => candle_core::bail!(
                "{}: unsupported dtype {:?} on CUDA; expected f32 or f64",
                $op,
                other
            ),
        }
    };
}
pub(crate) use with_cuda_real;
