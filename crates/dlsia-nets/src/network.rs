//! The traits every network of this crate implements.

use candle_core::Tensor;
use dlsia_ops::ParamStore;

use crate::error::Result;
use crate::topology::Topology;

/// A network of this crate: forward in train or eval mode, its topology, its tensors.
///
/// Train mode uses batch statistics in BatchNorm layers (and updates their running statistics)
/// and enables dropout; eval mode uses the running statistics. Weights and buffers live in
/// [`Network::params`] under the names dlsia's PyTorch `state_dict()` gives them, so an
/// optimiser takes `params().trainable_vars()` and a checkpoint is `params().snapshot()`.
pub trait Network: Send + Sync {
    /// Runs the network on `x` (`(N, C, H, W)` or `(N, C, D, H, W)`).
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor>;
    /// Eval-mode output for inference: the values of `forward_t(x, false)`, computed without
    /// recording the autograd graph, so that each intermediate tensor is freed as soon as it has
    /// been used (much lower peak memory; no gradients).
    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_t(&x.detach(), false)?.detach())
    }
    /// Everything needed to rebuild the network (serialised as `model.json`'s `topology`).
    fn topology(&self) -> Topology;
    /// Weights and buffers under dlsia's `state_dict` names.
    fn params(&self) -> &ParamStore;
    /// Number of spatial axes of the input: 2 or 3.
    fn spatial_dims(&self) -> usize;
    /// Channels of the input.
    fn in_channels(&self) -> usize;
    /// Channels of the output.
    fn out_channels(&self) -> usize;
    /// Checks that an input of this shape can be run, with an error naming the sizes that
    /// would work.
    fn check_input(&self, shape: &[usize]) -> Result<()>;
    /// Number of trainable scalars (PyTorch's `sum(p.numel() for p in net.parameters())`).
    fn num_parameters(&self) -> usize {
        self.params().num_trainable()
    }
    /// The network as an autoencoder, if it is one (so that a model loaded as
    /// `Box<dyn Network>` can still give its latent vectors).
    fn as_autoencoder(&self) -> Option<&dyn Autoencoder> {
        None
    }
}

/// A network with a latent bottleneck whose two halves can be run separately.
pub trait Autoencoder: Network {
    /// Image batch → latent vectors `(N, latent_dim)`.
    fn encode(&self, x: &Tensor, train: bool) -> Result<Tensor>;
    /// Latent vectors `(N, latent_dim)` → image batch.
    fn decode(&self, z: &Tensor, train: bool) -> Result<Tensor>;
    /// Length of a latent vector.
    fn latent_dim(&self) -> usize;
}
