//! Model directories: `model.json` (format version, [`Topology`], free-form metadata) beside
//! `weights.safetensors` (every tensor under dlsia's `state_dict` name).
//!
//! ```
//! use candle_core::Device;
//! use dlsia_nets::{load_model, save_model, Network, TuNet, TuNetConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let net = TuNet::new(&TuNetConfig::new(&[16, 16], 1, 2, 2, 4), 1, &Device::Cpu)?;
//! let meta = serde_json::json!({"normalisation": {"mean": 0.5, "std": 0.1}});
//! save_model(&net, dir.path(), &meta, false)?;
//! assert!(save_model(&net, dir.path(), &meta, false).is_err()); // refuses to overwrite
//! let (loaded, meta2) = load_model(dir.path(), &Device::Cpu)?;
//! assert_eq!((loaded.num_parameters(), meta2), (net.num_parameters(), meta));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use candle_core::Device;
use dlsia_ops::LoadOptions;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::network::Network;
use crate::topology::Topology;

/// Version of the `model.json` layout this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the topology/metadata file inside a model directory.
pub const MODEL_JSON: &str = "model.json";
/// Name of the weights file inside a model directory.
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// The content of `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The network's hyperparameters.
    pub topology: Topology,
    /// Free-form data stored with the model (input normalisation, tiling, training history…).
    #[serde(default)]
    pub metadata: serde_json::Value,
}

fn io_err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// Writes `bytes` next to `path` and renames it into place, so that a crash never leaves a
/// half-written file under the final name.
fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("partial");
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, format!("cannot rename {tmp:?}: {e}")))
}

/// Saves `net` into the directory `dir` (created if needed) as `model.json` +
/// `weights.safetensors`. Refuses to replace an existing model unless `overwrite`.
pub fn save_model(
    net: &dyn Network,
    dir: &Path,
    metadata: &serde_json::Value,
    overwrite: bool,
) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(io_err(dir, "exists and is not a directory"));
    }
    let (json_path, weights_path) = (dir.join(MODEL_JSON), dir.join(WEIGHTS_FILE));
    if !overwrite {
        for p in [&json_path, &weights_path] {
            if p.exists() {
                return Err(Error::Exists { path: p.clone() });
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, format!("cannot create: {e}")))?;
    let file = ModelFile {
        format_version: FORMAT_VERSION,
        topology: net.topology(),
        metadata: metadata.clone(),
    };
    let json = serde_json::to_string_pretty(&file).map_err(|e| io_err(&json_path, e))?;
    write_atomically(&weights_path, |p| Ok(net.params().save_safetensors(p)?))?;
    write_atomically(&json_path, |p| {
        std::fs::write(p, json + "\n").map_err(|e| io_err(p, format!("cannot write: {e}")))
    })
}

/// Reads and checks `model.json` of the model directory `dir`.
pub fn read_model_file(dir: &Path) -> Result<ModelFile> {
    let path = dir.join(MODEL_JSON);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        io_err(
            &path,
            format!("cannot read ({e}); a model directory holds {MODEL_JSON} and {WEIGHTS_FILE}"),
        )
    })?;
    let file: ModelFile =
        serde_json::from_str(&text).map_err(|e| io_err(&path, format!("malformed: {e}")))?;
    if file.format_version == 0 || file.format_version > FORMAT_VERSION {
        return Err(io_err(
            &path,
            format!(
                "format_version {} is not supported; this build reads versions 1 to {FORMAT_VERSION}",
                file.format_version
            ),
        ));
    }
    file.topology.validate()?;
    Ok(file)
}

/// Loads a model directory: rebuilds the network from its topology, then loads the weights
/// strictly (a missing, unexpected or wrongly shaped tensor is an error naming it and both
/// shapes). Returns the network and the stored metadata.
pub fn load_model(dir: &Path, device: &Device) -> Result<(Box<dyn Network>, serde_json::Value)> {
    let file = read_model_file(dir)?;
    let net = file.topology.build(0, device)?;
    load_weights(net.as_ref(), &file.topology, &dir.join(WEIGHTS_FILE))?;
    Ok((net, file.metadata))
}

/// Loads a safetensors file of dlsia `state_dict` tensors into `net` (strict, except for the
/// unused tensors the topology lists in [`Topology::ignored_weight_prefixes`]).
pub fn load_weights(net: &dyn Network, topology: &Topology, path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(io_err(path, "no such weights file"));
    }
    let opts = LoadOptions {
        ignore_prefixes: topology.ignored_weight_prefixes(),
        ..LoadOptions::default()
    };
    Ok(net.params().load_safetensors(path, &opts)?)
}

/// The paths of a model directory's two files.
pub fn model_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(MODEL_JSON), dir.join(WEIGHTS_FILE))
}
