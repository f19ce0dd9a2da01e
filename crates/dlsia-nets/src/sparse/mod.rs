//! The SMSNet-based autoencoders and classifier of dlsia's `sparsenet` module
//! (dlsia.md §2.9), weight-compatible with the original:
//!
//! * [`SparseAutoEncoder`] — SMSNet encoder, fully connected bottleneck (`latent_sequence`),
//!   SMSNet decoder; implements [`Autoencoder`](crate::Autoencoder) (latent vectors);
//! * [`SparseAec`] — SMS autoencoder plus a classifier on the latent image
//!   ([`SparseAec::forward_both`] gives both outputs);
//! * [`SparseLabeler`] — SMSNet encoder plus a classifier (logits).
//!
//! The encoder's graph has node sizes `−power … 0` (strided edges) and the decoder's
//! `0 … power` (transposed-convolution edges), with `power = floor(log(in/latent) /
//! log(stride_base) + 0.5)`; both share one draw of alpha and gamma. Graphs come from the
//! configuration (exported from an original network) or are sampled from its `graph_seed`.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_nets::{Autoencoder, Network, SparseAutoEncoder, SparseAutoEncoderConfig};
//!
//! let cfg: SparseAutoEncoderConfig = serde_json::from_str(
//!     r#"{"in_shape": [16, 16], "latent_shape": [4, 4], "depth": 4, "hidden_channels": 2,
//!         "latent_sequence": [8, 3], "graph_seed": 5}"#,
//! )?;
//! let net = SparseAutoEncoder::new(&cfg, 0, &Device::Cpu)?;
//! let x = Tensor::ones((2, 1, 16, 16), DType::F32, &Device::Cpu)?;
//! assert_eq!(net.encode(&x, false)?.dims(), &[2, 3]);
//! assert_eq!(net.forward_t(&x, true)?.dims(), &[2, 1, 16, 16]);
//! // The topology holds the sampled graphs: it rebuilds the same network.
//! let again = net.topology().build(0, &Device::Cpu)?;
//! assert_eq!(again.num_parameters(), net.num_parameters());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aec;
mod autoencoder;
mod config;
mod fc;
mod labeler;

pub use aec::SparseAec;
pub use autoencoder::SparseAutoEncoder;
pub use config::{SparseAecConfig, SparseAutoEncoderConfig, SparseLabelerConfig};
pub use labeler::SparseLabeler;

use candle_core::Tensor;

use crate::error::{config_error, input_error, Error, Result};
use crate::network::Network;
use crate::smsnet::SmsNet;

/// Checks an image batch `(N ≥ 2 … , C, Y, X)` against the one shape the network takes.
fn check_image(
    net: &'static str,
    shape: &[usize],
    channels: usize,
    in_shape: [usize; 2],
) -> Result<()> {
    if shape.len() != 4 || shape[0] == 0 || shape[1..] != [channels, in_shape[0], in_shape[1]] {
        return Err(input_error(
            net,
            shape,
            format!(
                "its fully connected layers fix the input to (N, {channels}, {}, {}) with N ≥ 1",
                in_shape[0], in_shape[1]
            ),
        ));
    }
    Ok(())
}

/// Checks a batch of latent vectors `(N ≥ 1, len)`.
fn check_vectors(net: &'static str, z: &Tensor, len: usize) -> Result<()> {
    if z.rank() != 2 || z.dim(1)? != len || z.dim(0)? == 0 {
        return Err(input_error(
            net,
            z.dims(),
            format!("expected latent vectors of shape (N, {len}) with N ≥ 1"),
        ));
    }
    Ok(())
}

/// Checks once, at build time, that the SMSNets can run on the configured shapes (reflect
/// padding of dilated strided edges needs large enough nodes).
fn check_buildable(
    net: &'static str,
    encoder: &SmsNet,
    decoder: Option<&SmsNet>,
    in_shape: [usize; 2],
    latent_shape: [usize; 2],
) -> Result<()> {
    let as_config = |which: &str, e: Error| match e {
        Error::Input { msg, .. } => config_error(net, format!("{which}: {msg}")),
        other => other,
    };
    let enc = [2, encoder.in_channels(), in_shape[0], in_shape[1]];
    encoder
        .check_input(&enc)
        .map_err(|e| as_config("encoder", e))?;
    if let Some(d) = decoder {
        let dec = [2, d.in_channels(), latent_shape[0], latent_shape[1]];
        d.check_input(&dec).map_err(|e| as_config("decoder", e))?;
    }
    Ok(())
}
