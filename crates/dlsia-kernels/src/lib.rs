//! # dlsia-kernels
//!
//! The CUDA kernels of dlsia-rs, as PTX text that `dlsia-ops` loads into Candle's CUDA device
//! (`CudaDevice::get_or_load_custom_func(name, module.name, module.ptx)`).
//!
//! With the `cuda` feature, `build.rs` compiles every `kernels/*.cu` file with nvcc to one PTX
//! module (sm_80 unless `CUDA_COMPUTE_CAP` says otherwise; the driver JIT-compiles it for newer
//! GPUs). Without the feature the crate is empty and the build needs no CUDA toolkit.
//!
//! | module | kernels (each `_f32` and `_f64`) |
//! |---|---|
//! | `CONV` | `im2col`, `col2im`, `conv_direct_fwd`, `conv_direct_dgrad`, `conv_direct_wgrad` |
//! | `POOL` | `max_pool_fwd`, `max_pool_bwd_scatter`, `max_pool_bwd_gather` |
//! | `REMAP` | `remap_gather`, `remap_scatter` |
//! | `CHANNEL` | `channel_affine`, `channel_sums`, `batch_norm_dx` |
//! | `REDUCE` | `sum_chunks_f32`, `sum_chunks_f64`, `sum_chunks_f64_to_f32` |
//! | `STACK` | `stack_materialize`, `stack_store_channel`, `stack_bwd_sums`, `stack_bwd_apply`, `stack_copy_channels`, `stack_channel_sums` (MSDNet's stack operation) |
//! | `MSD` | `msd_copy_channels`, `msd_layer_fwd`, `msd_layer_fwd_inplace`, `msd_affine_relu`, `msd_relu_mask`, `msd_norm_bwd`, `msd_dot_part`, `msd_wgrad_part`, `msd_dx_gather` |
//!
//! Every kernel works on 3-D spatial geometry (1-D and 2-D problems have unit leading axes),
//! takes its geometry as a struct of 32-bit integers passed by value (mirrored by `#[repr(C)]`
//! structs in `dlsia-ops`), and computes 64-bit offsets. Reductions are two-stage (per-block
//! partial sums, then an ordered sum) unless the caller asks for atomics.
//!
//! `cargo xtask cuda` installs a CUDA 13.0 toolkit from PyPI into `~/.cache/dlsia-cuda`,
//! compiles every kernel for sm_80 and sm_90 and type-checks the `cuda` features.

/// One PTX module: the name Candle caches it under and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    /// Module name (unique per process; prefixed with `dlsia_`).
    pub name: &'static str,
    /// PTX source.
    pub ptx: &'static str,
}

#[cfg(feature = "cuda")]
include!(concat!(env!("OUT_DIR"), "/ptx.rs"));

#[cfg(all(test, feature = "cuda"))]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_ptx_with_entry_points() {
        assert!(!ALL.is_empty());
        for m in ALL {
            assert!(m.ptx.contains(".target sm_"), "{}: not PTX", m.name);
            assert!(m.ptx.contains(".entry"), "{}: no kernels", m.name);
        }
        for name in ["conv_direct_fwd_f32", "im2col_f64", "col2im_f32"] {
            assert!(CONV.ptx.contains(name), "conv module lacks {name}");
        }
        for name in [
            "msd_layer_fwd_inplace_f32",
            "msd_dx_gather_f64",
            "msd_wgrad_part_f32",
        ] {
            assert!(MSD.ptx.contains(name), "msd module lacks {name}");
        }
        for name in ["stack_materialize_f32", "stack_bwd_apply_f64"] {
            assert!(STACK.ptx.contains(name), "stack module lacks {name}");
        }
    }
}
