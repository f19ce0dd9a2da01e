//! [`Topology`]: the serialisable description of any network of this crate.
//!
//! In JSON it is the architecture's configuration with an `"architecture"` tag:
//!
//! ```
//! use candle_core::Device;
//! use dlsia_nets::Topology;
//!
//! let topo: Topology = serde_json::from_str(
//!     r#"{"architecture": "tunet", "image_shape": [64, 64], "in_channels": 1,
//!         "out_channels": 2, "depth": 3, "base_channels": 8}"#,
//! )?;
//! let net = topo.build(7, &Device::Cpu)?;
//! assert_eq!((net.spatial_dims(), net.out_channels()), (2, 2));
//! assert_eq!(net.topology(), topo);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Adding an architecture: one variant here (one line), one arm in each `match` below.

use candle_core::{DType, Device};
use dlsia_ops::ParamStore;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::lean_msd::{LeanMsdConfig, LeanMsdNet};
use crate::msae::{MsAutoencoder, MsaeConfig};
use crate::msdnet::{MsdNet, MsdNetConfig};
use crate::network::Network;
use crate::smsnet::{SmsNet, SmsNetConfig};
use crate::sparse::{
    SparseAec, SparseAecConfig, SparseAutoEncoder, SparseAutoEncoderConfig, SparseLabeler,
    SparseLabelerConfig,
};
use crate::tunet::{TuNet, TuNetConfig};
use crate::tunet3plus::{dlsia_unused_prefixes, TuNet3Plus, TuNet3PlusConfig};

/// Everything needed to rebuild a network, tagged by architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "architecture")]
pub enum Topology {
    /// dlsia's `TUNet`.
    #[serde(rename = "tunet")]
    TuNet(TuNetConfig),
    /// dlsia's `TUNet3Plus`.
    #[serde(rename = "tunet3plus")]
    TuNet3Plus(TuNet3PlusConfig),
    /// dlsia's `msae.MSAE`.
    #[serde(rename = "msae")]
    MsAutoencoder(MsaeConfig),
    /// dlsia's `MixedScaleDenseNetwork`.
    #[serde(rename = "msdnet")]
    MsdNet(MsdNetConfig),
    /// dlsia's `SMSNet` / `SMSNet3D` / `SMSNet1D`.
    #[serde(rename = "smsnet")]
    SmsNet(SmsNetConfig),
    /// The lean (fused, memory-linear) mixed-scale dense network.
    #[serde(rename = "lean_msdnet")]
    LeanMsdNet(LeanMsdConfig),
    /// dlsia's `sparsenet.SparseAutoEncoder`.
    #[serde(rename = "sparse_autoencoder")]
    SparseAutoEncoder(SparseAutoEncoderConfig),
    /// dlsia's `sparsenet.SparseAEC`.
    #[serde(rename = "sparse_aec")]
    SparseAec(SparseAecConfig),
    /// dlsia's `sparsenet.SparseLabeler`.
    #[serde(rename = "sparse_labeler")]
    SparseLabeler(SparseLabelerConfig),
}

impl Topology {
    /// The architecture's name as it appears in the `"architecture"` tag.
    pub fn architecture(&self) -> &'static str {
        match self {
            Topology::TuNet(_) => "tunet",
            Topology::TuNet3Plus(_) => "tunet3plus",
            Topology::MsAutoencoder(_) => "msae",
            Topology::MsdNet(_) => "msdnet",
            Topology::SmsNet(_) => "smsnet",
            Topology::LeanMsdNet(_) => "lean_msdnet",
            Topology::SparseAutoEncoder(_) => "sparse_autoencoder",
            Topology::SparseAec(_) => "sparse_aec",
            Topology::SparseLabeler(_) => "sparse_labeler",
        }
    }

    /// Checks the hyperparameters without building anything.
    pub fn validate(&self) -> Result<()> {
        match self {
            Topology::TuNet(c) => c.validate(),
            Topology::TuNet3Plus(c) => c.validate(),
            Topology::MsAutoencoder(c) => c.validate(),
            Topology::MsdNet(c) => c.validate(),
            Topology::SmsNet(c) => c.validate(),
            Topology::LeanMsdNet(c) => c.validate(),
            Topology::SparseAutoEncoder(c) => c.validate(),
            Topology::SparseAec(c) => c.validate(),
            Topology::SparseLabeler(c) => c.validate(),
        }
    }

    /// Builds the network with f32 weights initialised like PyTorch's defaults from `seed`.
    pub fn build(&self, seed: u64, device: &Device) -> Result<Box<dyn Network>> {
        Ok(match self {
            Topology::TuNet(c) => Box::new(TuNet::new(c, seed, device)?),
            Topology::TuNet3Plus(c) => Box::new(TuNet3Plus::new(c, seed, device)?),
            Topology::MsAutoencoder(c) => Box::new(MsAutoencoder::new(c, seed, device)?),
            Topology::MsdNet(c) => Box::new(MsdNet::new(c, seed, device)?),
            Topology::SmsNet(c) => Box::new(SmsNet::new(c, seed, device)?),
            Topology::LeanMsdNet(c) => Box::new(LeanMsdNet::new(c, seed, device)?),
            Topology::SparseAutoEncoder(c) => Box::new(SparseAutoEncoder::new(c, seed, device)?),
            Topology::SparseAec(c) => Box::new(SparseAec::new(c, seed, device)?),
            Topology::SparseLabeler(c) => Box::new(SparseLabeler::new(c, seed, device)?),
        })
    }

    /// Builds the network with parameters of `dtype` (f32, f64, or bf16/f16 for the compute
    /// copy of mixed-precision training), initialised from `seed` like [`Topology::build`]
    /// (the same values, rounded to `dtype`). `LeanMsdNet` builds in f32 only.
    pub fn build_in(&self, seed: u64, device: &Device, dtype: DType) -> Result<Box<dyn Network>> {
        if dtype == DType::F32 {
            return self.build(seed, device);
        }
        let store = || ParamStore::with_dtype(seed, device, dtype);
        Ok(match self {
            Topology::TuNet(c) => Box::new(TuNet::from_store(c, store())?),
            Topology::TuNet3Plus(c) => Box::new(TuNet3Plus::from_store(c, store())?),
            Topology::MsAutoencoder(c) => Box::new(MsAutoencoder::from_store(c, store())?),
            Topology::MsdNet(c) => Box::new(MsdNet::from_store(c, store())?),
            Topology::SmsNet(c) => Box::new(SmsNet::from_store(c, store())?),
            Topology::SparseAutoEncoder(c) => {
                Box::new(SparseAutoEncoder::from_store(c, store())?)
            }
            Topology::SparseAec(c) => Box::new(SparseAec::from_store(c, store())?),
            Topology::SparseLabeler(c) => Box::new(SparseLabeler::from_store(c, store())?),
            Topology::LeanMsdNet(_) => {
                return Err(crate::error::config_error(
                    "LeanMsdNet",
                    format!("builds in f32 only, not {dtype:?}; use MsdNet (the same function) for other dtypes"),
                ))
            }
        })
    }

    /// Prefixes of tensors a dlsia `state_dict` holds but the network does not use, skipped
    /// when loading weights.
    pub fn ignored_weight_prefixes(&self) -> Vec<String> {
        match self {
            Topology::TuNet3Plus(c) => dlsia_unused_prefixes(c),
            Topology::TuNet(_)
            | Topology::MsAutoencoder(_)
            | Topology::MsdNet(_)
            | Topology::SmsNet(_)
            | Topology::LeanMsdNet(_)
            | Topology::SparseAutoEncoder(_)
            | Topology::SparseAec(_)
            | Topology::SparseLabeler(_) => vec![],
        }
    }
}
