//! The fused, memory-efficient mixed-scale dense (MSD) block.
//!
//! A mixed-scale dense network of depth `d` and width `w` lets layer `i` read every channel
//! before it. Built from ordinary ops (`cat` at every layer, autograd keeping every conv input)
//! it stores about `w·d²/2` feature maps for the backward pass; here the block is one operation
//! whose output is a single buffer `(N, c_in + d·w, spatial…)` that every layer appends to,
//! and whose backward pass sweeps the layers in reverse with one gradient buffer. Memory grows
//! linearly with depth (Pelt & Sethian, PNAS 2018; the buffer layout and scatter-form backward
//! follow the description in the project's `reference/anchors.md` §3).
//!
//! * Forward: per layer, convolution (kernel `k^ndim`, per-channel dilation) of all earlier
//!   channels + bias + ReLU on the new channels only; optionally a per-channel normalisation
//!   before the ReLU ([`MsdNorm`], batch or running statistics).
//! * Borders: zeros, reflect, symmetric or replicate padding ([`crate::PaddingMode`]), with
//!   the exact adjoint at the border in the backward pass. Dilations that would need more
//!   than one reflection are rejected ([`MsdSpec::check_spatial`]).
//! * CPU kernels with rayon; inner loops vectorise (AVX-512 / AVX2+FMA chosen at run time).
//!   Each kernel sits in its own function ([`forward`](self) and backward jobs) so that device
//!   versions can be added beside them.
//!
//! ```
//! use candle_core::{DType, Device, Tensor, Var};
//! use dlsia_ops::msd::{MsdBlock, MsdSpec};
//! use dlsia_ops::PaddingMode;
//!
//! let spec = MsdSpec::cyclic(2, 1, 4, 2, 3).with_padding(PaddingMode::Reflect);
//! let block = MsdBlock::new(spec)?;
//! let dev = Device::Cpu;
//! let x = Tensor::rand(0f32, 1., (2, 1, 12, 10), &dev)?;
//! let w = Var::from_tensor(&(Tensor::rand(-0.3f32, 0.3, block.weight_len(), &dev)?))?;
//! let b = Var::zeros(block.units(), DType::F32, &dev)?;
//! let r = block.forward(&x, &w, &b)?;              // (2, 9, 12, 10)
//! let grads = r.sum_all()?.backward()?;
//! assert_eq!(grads.get(&w).unwrap().dims(), &[block.weight_len()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backward;
mod buf;
mod config;
mod cpu;
mod forward;
mod geom;
mod norm;
mod op;
mod plan;
pub(crate) mod simd;

pub use config::{cyclic_dilations, MsdNorm, MsdSpec};
pub use op::{BatchStats, MsdBlock, MsdStats, DEFAULT_LAYERS_PER_PASS};
