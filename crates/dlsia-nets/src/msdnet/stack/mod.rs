//! The whole MSDNet stack as one differentiable operation whose memory grows linearly with depth.
//!
//! dlsia's MSDNet (`cat` → activation → BatchNorm over the *whole* concatenated stack after every
//! layer) keeps, through autograd, several copies of every intermediate stack: about
//! `3·Σᵢ Cᵢ ≈ 1.5·L²` feature maps for `L` layers. This operation computes exactly the same
//! function for the common configurations (activation ReLU or none; BatchNorm with batch or
//! running statistics, or no normalisation; zero padding) while storing only:
//!
//! * the raw map of every channel (the input and each convolution output), `C_L` maps;
//! * per (layer, channel) the [`ClampAffine`] map that gives the channel's value at that layer
//!   from its raw map, and the normalisation statistics (a few numbers).
//!
//! Forward, layer `k`: the convolution input (the current value of every channel) is written
//! from the raw maps in one pass that also accumulates the BatchNorm sums of the carried
//! channels; the new channels' maps are stored with their sums. Backward walks the layers in
//! reverse with one gradient buffer: per layer one reduction pass (`Σ g`, `Σ g·t̂`) and one
//! pass that applies the BatchNorm and activation backward and rewrites the convolution input,
//! then the convolution's weight and input gradients (`dlsia_ops::conv_weight_grad`,
//! `conv_input_grad`). Activations are recomputed, never stored.
//!
//! On a CUDA device (crate feature `cuda`) the same algorithm runs with the element-wise passes
//! of `dlsia_ops::stack_cuda` and the convolutions of `dlsia_ops` on the GPU; only the
//! per-channel statistics and maps (a few numbers per channel and layer) visit the host.

mod affine;
#[cfg(feature = "cuda")]
mod cuda;
mod kernels;
mod op;

pub(crate) use op::{StackNorm, StackOp, StackSpec};
