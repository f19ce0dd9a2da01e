//! Index-map gathers (padding, nearest-neighbour resizing) and their adjoints on CUDA (the
//! GPU side of `kernels::remap`). The adjoint gathers through inverse maps, so it needs no
//! atomics and sums in the CPU kernel's order.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, PushKernelArg};
use candle_core::cuda_backend::CudaDevice;
use candle_core::Result;

use super::{grid_1d, launch, zeros, CudaReal, Dims3, Kernel};
use crate::kernels::remap::Remap;
use crate::kernels::volume;

const OP: &str = "remap (cuda)";

/// `y[p, d, h, w] = x[p, map(d, h, w)]` (zero where a map entry is absent).
pub(crate) fn gather<T: CudaReal>(
    dev: &CudaDevice,
    r: &Remap,
    x: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let total = r.planes * volume(&r.output());
    let mut y = zeros::<T>(dev, total)?;
    if total == 0 || volume(&r.input) == 0 {
        return Ok(y);
    }
    let maps = dev.clone_htod(&r.packed_maps().map_err(candle_core::Error::wrap)?)?;
    let (input, output) = (
        Dims3::new(OP, "input size", &r.input)?,
        Dims3::new(OP, "output size", &r.output())?,
    );
    let planes = r.planes as i64;
    let k = Kernel::load::<T>(dev, &dlsia_kernels::REMAP, "remap_gather")?;
    let mut a = k.args();
    a.arg(x)
        .arg(&mut y)
        .arg(&maps)
        .arg(&input)
        .arg(&output)
        .arg(&planes);
    // SAFETY: x holds planes·in and y planes·out values; map entries are valid input indices.
    unsafe { launch(a, grid_1d(total))? };
    Ok(y)
}

/// The adjoint of [`gather`]: `dx[p, i] = Σ_{map(o) = i} dy[p, o]`.
pub(crate) fn scatter_add<T: CudaReal>(
    dev: &CudaDevice,
    r: &Remap,
    dy: &CudaView<'_, T>,
) -> Result<CudaSlice<T>> {
    let total = r.planes * volume(&r.input);
    let mut dx = zeros::<T>(dev, total)?;
    if total == 0 || volume(&r.output()) == 0 {
        return Ok(dx);
    }
    let (inv, start) = r.inverse_maps().map_err(candle_core::Error::wrap)?;
    let inv = dev.clone_htod(&inv)?;
    let (start, input, output) = (
        Dims3::new(OP, "map offset", &start)?,
        Dims3::new(OP, "input size", &r.input)?,
        Dims3::new(OP, "output size", &r.output())?,
    );
    let planes = r.planes as i64;
    let k = Kernel::load::<T>(dev, &dlsia_kernels::REMAP, "remap_scatter")?;
    let mut a = k.args();
    a.arg(dy)
        .arg(&mut dx)
        .arg(&inv)
        .arg(&start)
        .arg(&input)
        .arg(&output)
        .arg(&planes);
    // SAFETY: dy holds planes·out and dx planes·in values; the inverse maps list valid output
    // coordinates.
    unsafe { launch(a, grid_1d(total))? };
    Ok(dx)
}
