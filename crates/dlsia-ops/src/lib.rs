//! # dlsia-ops
//!
//! The tensor operations the DLSIA networks need and Candle 0.11 lacks or gets wrong, each with
//! a backward pass that composes with Candle's autograd, the layer types built on them, and the
//! parameter store that gives every network seeded, PyTorch-compatible weights under PyTorch's
//! `state_dict` names.
//!
//! * Functional ops ([`conv`], [`conv_transpose`], [`max_pool`], [`upsample_nearest`],
//!   [`upsample_nearest_scale`], [`pad`], [`softmax_channels`], [`channel_affine`],
//!   [`batch_norm_train`]) on `(N, C, spatial…)` tensors
//!   with 1, 2 or 3 spatial axes, f32 or f64, per-axis geometry ([`ConvSpec`],
//!   [`ConvTransposeSpec`]).
//! * Layers in [`nn`]: `Conv`, `ConvTranspose`, `MaxPool`, `Upsample`, `BatchNorm`,
//!   `GroupNorm`, `InstanceNorm`, `Linear`, `Dropout`, `Activation`.
//! * [`ParamStore`]/[`ParamBuilder`]: named, seeded parameters with strict safetensors I/O.
//! * [`alloc::tune_for_throughput`]: opt-in glibc tuning for training binaries.
//! * [`device`]: `--device cpu|cuda|cuda:N` parsing ([`device_from_str`]), the CUDA
//!   reduction-determinism switch, and [`test_device!`] for tests that run on every device.
//!
//! ## CUDA
//!
//! With the crate feature `cuda` (off by default; needs a CUDA toolkit at build time, see
//! `cargo xtask cuda`), every op also runs on tensors on a CUDA device: Candle dispatches each
//! custom op to its `cuda_fwd`, which launches kernels from `dlsia-kernels` (direct kernels for
//! few output channels — every MSDNet layer —, im2col + cuBLAS otherwise; gathers instead of
//! atomics wherever an adjoint scatters). Results match the CPU kernels to rounding; with
//! [`device::set_deterministic_reductions`] (on by default) they are bit-identical from run
//! to run.
//!
//! ## Speed
//!
//! Stride-1 convolutions in f32 (forward, input gradient, weight gradient; 1-D/2-D/3-D, any
//! dilation, groups) run register-blocked AVX2/FMA kernels that read zero-margined input bands
//! in place — no im2col buffer, so a few-output-channel dilated convolution (every MSDNet layer)
//! costs little more than reading its input. Strided convolutions and f64 use tiled im2col into
//! the `gemm` crate; transposed convolutions with kernel = stride use one GEMM plus a
//! depth-to-space copy; 2-wide max pooling is vectorised; batch normalisation is fused. Work is
//! split with rayon; partial sums are combined in a fixed order, so results are deterministic for
//! a given thread count. Measurements against PyTorch: `cargo xtask bench ops`, `BENCHMARKS.md`.
//! * [`msd`]: the fused, memory-efficient mixed-scale dense block (memory linear in depth).
//!
//! ## Candle 0.11 defects routed around
//!
//! * `max_pool2d` backward scales the gradient by 1/(k·k) and gives every tied maximum the full
//!   gradient; pooling backward exists only when kernel = stride → [`max_pool`] (one winner per
//!   window, any kernel/stride/padding).
//! * conv2d backward fails for stride > 1 when height and width need different output padding;
//!   no per-axis stride/padding/dilation, no 3-D, no per-axis `output_padding` → [`conv`],
//!   [`conv_transpose`] own kernels.
//! * `softmax_last_dim` has no backward → [`softmax_channels`] from differentiable primitives.
//! * The CPU random generator cannot be seeded → [`ParamStore`] and [`nn::Dropout`] own seeded
//!   generators.
//! * `LayerNorm` (fused) has no backward and `binary_cross_entropy_with_logit` overflows: not
//!   used by these layers (the losses crate owns a stable BCE).

pub mod alloc;
#[cfg(feature = "cuda")]
mod cuda;
/// The CUDA passes of `dlsia-nets`' MSDNet stack operation (crate feature `cuda`).
#[cfg(feature = "cuda")]
pub use cuda::stack as stack_cuda;
pub mod device;
pub mod error;
mod kernels;
pub mod msd;
pub mod nn;
mod ops;
pub mod padding;
pub mod params;
pub mod spec;

#[doc(hidden)]
pub use candle_core as __candle;
pub use device::device_from_str;
pub use error::{Error, Result};
#[doc(hidden)]
pub use ops::batch_norm_act_train_composed;
pub use ops::{
    batch_norm_act_train, batch_norm_train, channel_affine, conv, conv_batch_norm_act_train,
    conv_input_grad, conv_transpose, conv_weight_grad, max_pool, pad, softmax_channels,
    upsample_nearest, upsample_nearest_scale, ActOrder, BatchNormOutput, FusedAct, NormActSpec,
};
pub use padding::PaddingMode;
pub use params::{Init, LoadOptions, ParamBuilder, ParamKind, ParamStore};
pub use spec::{ConvSpec, ConvTransposeSpec};
