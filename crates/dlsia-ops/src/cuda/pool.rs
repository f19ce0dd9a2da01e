//! Max pooling on CUDA (the GPU side of `kernels::pool`): one thread per window forward;
//! backward stores into the winners when windows do not overlap, and otherwise either
//! gathers per input element (deterministic, the CPU kernel's summation order) or adds
//! atomically (see [`set_deterministic_reductions`](crate::device::set_deterministic_reductions)).

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr, PushKernelArg};
use candle_core::cuda_backend::CudaDevice;
use candle_core::Result;

use super::{grid_1d, launch, zeros, CudaReal, Dims3, Kernel};
use crate::kernels::pool::PoolGeom;
use crate::kernels::volume;

/// Mirrors `struct PoolGeom` in `kernels/pool.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct CudaPoolGeom {
    input: Dims3,
    output: Dims3,
    kernel: Dims3,
    stride: Dims3,
    pad: Dims3,
}

// SAFETY: plain old data with the layout of the C struct (15 ints).
unsafe impl DeviceRepr for CudaPoolGeom {}

const OP: &str = "max_pool (cuda)";

impl CudaPoolGeom {
    fn new(g: &PoolGeom) -> Result<Self> {
        Ok(CudaPoolGeom {
            input: Dims3::new(OP, "input size", &g.input)?,
            output: Dims3::new(OP, "output size", &g.output)?,
            kernel: Dims3::new(OP, "kernel size", &g.kernel)?,
            stride: Dims3::new(OP, "stride", &g.stride)?,
            pad: Dims3::new(OP, "padding", &g.pad)?,
        })
    }
}

/// `y = max_pool(x)`.
pub(crate) fn forward<T: CudaReal>(
    dev: &CudaDevice,
    g: &PoolGeom,
    x: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let planes = g.n * g.c;
    let total = planes * volume(&g.output);
    let mut y = zeros::<T>(dev, total)?;
    if total == 0 {
        return Ok(y);
    }
    let cg = CudaPoolGeom::new(g)?;
    let k = Kernel::load::<T>(dev, &dlsia_kernels::POOL, "max_pool_fwd")?;
    let planes = planes as i64;
    let mut a = k.args();
    a.arg(x).arg(&mut y).arg(&cg).arg(&planes);
    // SAFETY: x holds planes·in, y planes·out values; the kernel bounds indices by them.
    unsafe { launch(a, grid_1d(total))? };
    Ok(y)
}

/// The input gradient of [`forward`] for the output gradient `dy`.
pub(crate) fn backward<T: CudaReal>(
    dev: &CudaDevice,
    g: &PoolGeom,
    x: &CudaView<'_, T>,
    dy: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let planes = g.n * g.c;
    let (ip, op) = (volume(&g.input), volume(&g.output));
    let mut dx = zeros::<T>(dev, planes * ip)?;
    if planes * ip == 0 || op == 0 {
        return Ok(dx);
    }
    let cg = CudaPoolGeom::new(g)?;
    let exclusive = (0..3).all(|i| g.kernel[i] <= g.stride[i]);
    let gather = !exclusive && crate::device::deterministic_reductions();
    let planes_i = planes as i64;
    if gather {
        let k = Kernel::load::<T>(dev, &dlsia_kernels::POOL, "max_pool_bwd_gather")?;
        let mut a = k.args();
        a.arg(x).arg(dy).arg(&mut dx).arg(&cg).arg(&planes_i);
        // SAFETY: x, dx hold planes·in values, dy planes·out.
        unsafe { launch(a, grid_1d(planes * ip))? };
    } else {
        let k = Kernel::load::<T>(dev, &dlsia_kernels::POOL, "max_pool_bwd_scatter")?;
        let flag = i32::from(exclusive);
        let mut a = k.args();
        a.arg(x)
            .arg(dy)
            .arg(&mut dx)
            .arg(&cg)
            .arg(&planes_i)
            .arg(&flag);
        // SAFETY: as above; winners lie inside their plane.
        unsafe { launch(a, grid_1d(planes * op))? };
    }
    Ok(dx)
}
