//! Model files saved by the PyTorch original (`save_network_parameters`), read in pure Rust.
//!
//! A dlsia file is a `torch.save` of `{"topo_dict": OrderedDict, "state_dict": OrderedDict}`.
//! [`read_dlsia_file`] unpickles it ([`crate::pickle`]), recognises the architecture from the
//! `topo_dict` keys, decodes the constructor arguments — Python objects included: activation
//! instances, normalisation classes, numpy arrays and scalars, the networkx graph of an SMSNet —
//! into a [`DlsiaModel`], and reads the `state_dict` tensors. [`DlsiaFile::topology`] turns the
//! model into a dlsia-nets [`Topology`]; [`import_to_model_dir`] writes a dlsia-rs model
//! directory (the weights loaded strictly into the rebuilt network first, so a file whose
//! weights do not fit its topology is refused).
//!
//! ```no_run
//! use std::path::Path;
//! use dlsia_cli::import::{import_to_model_dir, read_dlsia_file};
//! let file = read_dlsia_file(Path::new("tunet.pt"))?;
//! println!("{} with {} tensors", file.model.architecture(), file.state_dict.len());
//! let report = import_to_model_dir(Path::new("tunet.pt"), Path::new("tunet_model"), false)?;
//! println!("{} parameters", report.num_parameters);
//! # Ok::<(), dlsia_cli::Error>(())
//! ```

mod classes;
mod msdnet;
mod smsnet;
mod sparse;
mod topo_dict;
mod tunet;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use dlsia_nets::{save_model, Network, Topology, TuNet3PlusConfig, TuNetConfig};
use dlsia_ops::LoadOptions;
use serde::Serialize;

pub use msdnet::MsdNetSpec;
pub use smsnet::{ScalingEntry, SmsNetSpec};
pub use sparse::SparseSpec;

use crate::error::{format_err, unsupported, Result};

use crate::torch_file::TorchFile;

/// The network a dlsia file describes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "architecture", rename_all = "snake_case")]
pub enum DlsiaModel {
    /// `msdnet.MixedScaleDenseNetwork`.
    MsdNet(MsdNetSpec),
    /// `tunet.TUNet`.
    TuNet(TuNetConfig),
    /// `tunet3plus.TUNet3Plus`.
    TuNet3Plus(TuNet3PlusConfig),
    /// `smsnet.SMSNet` (2-D) or `sms3d.SMSNet3D` (3-D).
    SmsNet(SmsNetSpec),
    /// `sparsenet.SparseAutoEncoder`, `SparseAEC` or `SparseLabeler`.
    Sparse(Box<SparseSpec>),
}

impl DlsiaModel {
    /// dlsia's class name.
    pub fn architecture(&self) -> &'static str {
        match self {
            DlsiaModel::MsdNet(_) => "MixedScaleDenseNetwork",
            DlsiaModel::TuNet(_) => "TUNet",
            DlsiaModel::TuNet3Plus(_) => "TUNet3Plus",
            DlsiaModel::SmsNet(s) if s.spatial_dims == 3 => "SMSNet3D",
            DlsiaModel::SmsNet(_) => "SMSNet",
            DlsiaModel::Sparse(s) => match s.class.as_str() {
                "SparseAEC" => "SparseAEC",
                "SparseLabeler" => "SparseLabeler",
                _ => "SparseAutoEncoder",
            },
        }
    }
}

/// A decoded dlsia file.
#[derive(Debug, Clone)]
pub struct DlsiaFile {
    /// What the `topo_dict` describes.
    pub model: DlsiaModel,
    /// The `state_dict` tensors in file order (f32 weights, i64 `num_batches_tracked`).
    pub state_dict: Vec<(String, Tensor)>,
}

/// Recognises the architecture of a `topo_dict` from its keys.
fn decode_model(topo: &crate::pickle::Value) -> Result<DlsiaModel> {
    let has = |k: &str| topo.get(k).is_some();
    if has("network_graph") {
        Ok(DlsiaModel::SmsNet(smsnet::decode_smsnet(topo)?))
    } else if has("num_layers") && has("custom_msdnet") {
        Ok(DlsiaModel::MsdNet(msdnet::decode_msdnet(topo)?))
    } else if has("depth") && has("carryover_channels") {
        Ok(DlsiaModel::TuNet3Plus(tunet::decode_tunet3plus(topo)?))
    } else if has("depth") && has("kernel_up") {
        Ok(DlsiaModel::TuNet(tunet::decode_tunet(topo)?))
    } else {
        let keys: Vec<String> = topo
            .as_dict("topo_dict")?
            .iter()
            .filter_map(|(k, _)| k.as_str("key").ok())
            .collect();
        Err(unsupported(
            "topo_dict",
            format!(
                "keys [{}] match none of the architectures this importer reads (MSDNet, TUNet, \
                 TUNet3+, SMSNet 2-D/3-D, sparsenet)",
                keys.join(", ")
            ),
        ))
    }
}

/// Reads and decodes a file written by dlsia's `save_network_parameters`.
pub fn read_dlsia_file(path: &Path) -> Result<DlsiaFile> {
    let mut file = TorchFile::open(path)?;
    let root = file.root().clone();
    let shown = path.display().to_string();
    if !matches!(root, crate::pickle::Value::Dict(_)) {
        return Err(format_err(
            shown,
            format!(
                "the file holds a {}, not dlsia's {{\"topo_dict\", \"state_dict\"}} dict",
                root.type_name()
            ),
        ));
    }
    let topo = root.get("topo_dict").ok_or_else(|| {
        let hint = if root.get("state_dict").is_none() {
            " (it looks like a bare state_dict: the original's save_network_parameters writes the \
             topology beside it, which this importer needs to rebuild the network)"
        } else {
            ""
        };
        format_err(&shown, format!("no `topo_dict` entry{hint}"))
    })?;
    let state = root
        .get("state_dict")
        .ok_or_else(|| format_err(&shown, "no `state_dict` entry"))?;
    let sparse = sparse::is_sparse(&root);
    let model = if sparse {
        None
    } else {
        Some(decode_model(&topo)?)
    };
    let state_dict = file.tensor_dict(&state, "state_dict")?;
    let model = match model {
        Some(m) => m,
        None => DlsiaModel::Sparse(Box::new(sparse::decode_sparse(&root, &state_dict)?)),
    };
    Ok(DlsiaFile { model, state_dict })
}

impl DlsiaFile {
    /// The dlsia-nets topology of the model.
    pub fn topology(&self) -> Result<Topology> {
        match &self.model {
            DlsiaModel::TuNet(c) => Ok(Topology::TuNet(c.clone())),
            DlsiaModel::TuNet3Plus(c) => Ok(Topology::TuNet3Plus(c.clone())),
            DlsiaModel::MsdNet(spec) => Ok(Topology::MsdNet(spec.to_config()?)),
            DlsiaModel::SmsNet(spec) => Ok(Topology::SmsNet(spec.to_config()?)),
            DlsiaModel::Sparse(spec) => Ok(spec.topology.clone()),
        }
    }

    /// The `state_dict` as a name → tensor map.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.state_dict.iter().cloned().collect()
    }

    /// Rebuilds the network and loads the weights strictly (every network tensor present with
    /// its shape, no unexpected tensors except those the topology declares unused).
    pub fn build_network(&self, device: &Device) -> Result<Box<dyn Network>> {
        let topology = self.topology()?;
        let net = topology.build(0, device)?;
        let opts = LoadOptions {
            ignore_prefixes: topology.ignored_weight_prefixes(),
            ..LoadOptions::default()
        };
        net.params()
            .load_tensors(&self.tensors(), &opts)
            .map_err(dlsia_nets::Error::from)?;
        Ok(net)
    }
}

/// What [`import_to_model_dir`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// dlsia's class name.
    pub architecture: String,
    /// The dlsia-nets architecture tag.
    pub topology: String,
    /// Trainable parameters.
    pub num_parameters: usize,
    /// Tensors read from the file.
    pub tensors: usize,
    /// Tensors in the file the network does not use (e.g. TUNet3+'s unused decoders).
    pub ignored_tensors: Vec<String>,
}

/// Reads a dlsia file and writes it as a dlsia-rs model directory (`model.json` +
/// `weights.safetensors`) under `out`; refuses to replace an existing model unless
/// `overwrite`. The model's metadata records where it came from and dlsia's own arguments.
pub fn import_to_model_dir(path: &Path, out: &Path, overwrite: bool) -> Result<ImportReport> {
    let file = read_dlsia_file(path)?;
    let net = file.build_network(&Device::Cpu)?;
    let topology = file.topology()?;
    let ignored: Vec<String> = file
        .state_dict
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| {
            topology
                .ignored_weight_prefixes()
                .iter()
                .any(|p| n.starts_with(p.as_str()))
        })
        .collect();
    let metadata = serde_json::json!({
        "imported_from": path.file_name().map(|f| f.to_string_lossy().to_string()),
        "dlsia_architecture": file.model.architecture(),
        "dlsia": serde_json::to_value(&file.model).unwrap_or(serde_json::Value::Null),
        "importer": format!("dlsia-cli {}", env!("CARGO_PKG_VERSION")),
    });
    save_model(net.as_ref(), out, &metadata, overwrite)?;
    Ok(ImportReport {
        architecture: file.model.architecture().to_string(),
        topology: topology.architecture().to_string(),
        num_parameters: net.num_parameters(),
        tensors: file.state_dict.len(),
        ignored_tensors: ignored,
    })
}
