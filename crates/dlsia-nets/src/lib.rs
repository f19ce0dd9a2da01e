//! # dlsia-nets
//!
//! DLSIA's network architectures on Candle, in 2-D and 3-D, weight-compatible with the PyTorch
//! original (same `state_dict` names and shapes, seeded PyTorch-default initialisation):
//!
//! * [`TuNet`] — the tunable U-Net (`dlsia.core.networks.tunet.TUNet`);
//! * [`TuNet3Plus`] — U-Net3+ with full-scale skip connections (`tunet3plus.TUNet3Plus`);
//! * [`MsAutoencoder`] — the mixed-scale autoencoder (`msae.MSAE`), with [`Autoencoder`]'s
//!   separate `encode`/`decode`;
//! * [`MsdNet`] — the mixed-scale dense network (`msdnet.MixedScaleDenseNetwork`), with a
//!   stack operation whose memory grows linearly with depth;
//! * [`SmsNet`] — the sparse mixed-scale network built from a `dlsia-graph` graph
//!   (`smsnet.SMSNet`, `sms3d.SMSNet3D`, `sms1d.SMSNet1D`), and [`SmsEnsemble`], N of them
//!   within a parameter budget (`construct_2dsms_ensembler`).
//! * [`SparseAutoEncoder`], [`SparseAec`], [`SparseLabeler`] — dlsia's SMSNet-based
//!   autoencoders and classifier (`sparsenet`);
//! * [`LeanMsdNet`] — a mixed-scale dense network on the fused block of `dlsia_ops::msd`,
//!   memory linear in depth, convertible to and from dlsia's MSDNet where equivalent.
//!
//! Every network implements [`Network`] (forward in train/eval mode, its [`Topology`], its
//! [`ParamStore`](dlsia_ops::ParamStore)). A [`Topology`] is a serde enum tagged by
//! architecture that rebuilds the network; [`save_model`]/[`load_model`] store it as a model
//! directory (`model.json` + `weights.safetensors`). Configurations are validated once, when
//! they become a network: impossible hyperparameters and inputs are errors that say what would
//! be right, never panics. Normalisation and activation choices share one vocabulary
//! ([`Norm`], [`Act`], [`FinalAct`]).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_nets::{Network, Topology, TuNetConfig};
//!
//! let topo = Topology::TuNet(TuNetConfig::new(&[64, 64], 1, 3, 3, 8));
//! let net = topo.build(42, &Device::Cpu)?;
//! let x = Tensor::rand(0f32, 1., (2, 1, 48, 40), &Device::Cpu)?;
//! let logits = net.forward_t(&x, true)?;
//! assert_eq!(logits.dims(), &[2, 3, 48, 40]);
//! assert!(net.check_input(&[1, 1, 3, 40]).is_err()); // two poolings need sizes ≥ 4
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod blocks;
pub mod choices;
pub mod error;
pub mod lean_msd;
pub mod model_dir;
pub mod msae;
pub mod msdnet;
pub mod network;
pub mod smsnet;
pub mod sparse;
pub mod topology;
pub mod tunet;
pub mod tunet3plus;

pub use choices::{Act, FinalAct, Norm, NormLayer};
pub use error::{Error, Result};
pub use lean_msd::{LeanMsdConfig, LeanMsdNet};
pub use model_dir::{load_model, load_weights, read_model_file, save_model, ModelFile};
pub use msae::{MsAutoencoder, MsaeConfig};
pub use msdnet::{MsdNet, MsdNetConfig};
pub use network::{Autoencoder, Network};
pub use smsnet::{SmsEnsemble, SmsNet, SmsNetConfig};
pub use sparse::{
    SparseAec, SparseAecConfig, SparseAutoEncoder, SparseAutoEncoderConfig, SparseLabeler,
    SparseLabelerConfig,
};
pub use topology::Topology;
pub use tunet::{TuNet, TuNetConfig, UnetChannels};
pub use tunet3plus::{TuNet3Plus, TuNet3PlusConfig, Upsampling};
