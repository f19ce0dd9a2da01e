//! `dlsia info MODEL`: architecture, hyperparameters, parameter count of a model directory or
//! of a file saved by the PyTorch original.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Args;
use dlsia_cli::import::read_dlsia_file;
use dlsia_nets::{load_model, read_model_file};
use serde_json::{json, Value};

/// Arguments of `dlsia info`.
#[derive(Args)]
pub struct InfoArgs {
    /// A model directory (model.json + weights.safetensors) or a dlsia `.pt` file.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Whether a state_dict name is a buffer (not a trainable parameter) in dlsia's networks.
fn is_buffer(name: &str) -> bool {
    ["running_mean", "running_var", "num_batches_tracked"]
        .iter()
        .any(|b| name.ends_with(b))
}

/// The description of a model directory.
fn describe_dir(dir: &Path) -> Result<Value> {
    let file = read_model_file(dir)?;
    let (net, _) = load_model(dir, &Device::Cpu)?;
    let entries = net.params().entries();
    Ok(json!({
        "source": dir.display().to_string(),
        "format": "dlsia-rs model directory",
        "architecture": file.topology.architecture(),
        "spatial_dims": net.spatial_dims(),
        "in_channels": net.in_channels(),
        "out_channels": net.out_channels(),
        "parameters": net.num_parameters(),
        "tensors": entries.len(),
        "topology": file.topology,
        "metadata": file.metadata,
    }))
}

/// The description of a dlsia `.pt` file.
fn describe_pt(path: &Path) -> Result<Value> {
    let file = read_dlsia_file(path)?;
    let counted: usize = file
        .state_dict
        .iter()
        .filter(|(n, _)| !is_buffer(n))
        .map(|(_, t)| t.elem_count())
        .sum();
    let (parameters, loadable) = match file.build_network(&Device::Cpu) {
        Ok(net) => (net.num_parameters(), Value::Bool(true)),
        Err(e) => (counted, Value::String(e.to_string())),
    };
    Ok(json!({
        "source": path.display().to_string(),
        "format": "PyTorch file saved by dlsia's save_network_parameters",
        "architecture": file.model.architecture(),
        "parameters": parameters,
        "tensors": file.state_dict.len(),
        "dlsia": file.model,
        "importable": loadable,
    }))
}

/// Runs `dlsia info`.
pub fn run(args: InfoArgs) -> Result<()> {
    let info = if args.model.is_dir() {
        describe_dir(&args.model)
    } else if args.model.is_file() {
        describe_pt(&args.model)
    } else {
        bail!("{}: no such model directory or file", args.model.display())
    }
    .with_context(|| format!("cannot read {}", args.model.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("{}", info["source"].as_str().unwrap_or_default());
    println!(
        "  format:       {}",
        info["format"].as_str().unwrap_or_default()
    );
    println!(
        "  architecture: {}",
        info["architecture"].as_str().unwrap_or_default()
    );
    if let Some(d) = info.get("spatial_dims") {
        println!(
            "  channels:     {} in, {} out ({}-D)",
            info["in_channels"], info["out_channels"], d
        );
    }
    println!("  parameters:   {}", info["parameters"]);
    println!("  tensors:      {}", info["tensors"]);
    if let Some(Value::String(why)) = info.get("importable") {
        println!("  import:       not possible in this build: {why}");
    }
    let hyper = info.get("topology").or_else(|| info.get("dlsia"));
    if let Some(Value::Object(map)) = hyper {
        println!("  hyperparameters:");
        for (k, v) in map {
            let text = v.to_string();
            let text = if text.chars().count() > 100 {
                let head: String = text.chars().take(100).collect();
                format!("{head}… ({} characters)", text.chars().count())
            } else {
                text
            };
            println!("    {k}: {text}");
        }
    }
    Ok(())
}
