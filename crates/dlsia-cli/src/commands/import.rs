//! `dlsia import FILE.pt --out DIR`: a model saved by the PyTorch original → a dlsia-rs model
//! directory, in pure Rust.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use dlsia_cli::import::import_to_model_dir;

/// Arguments of `dlsia import`.
#[derive(Args)]
pub struct ImportArgs {
    /// A file written by dlsia's `save_network_parameters` (MSDNet, TUNet, TUNet3+, SMSNet,
    /// SparseAutoEncoder, SparseAEC, SparseLabeler).
    pub file: PathBuf,
    /// The model directory to write (model.json + weights.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a model already in the output directory.
    #[arg(long)]
    pub force: bool,
}

/// Runs `dlsia import`.
pub fn run(args: ImportArgs) -> Result<()> {
    if !args.file.is_file() {
        anyhow::bail!("{}: no such file", args.file.display());
    }
    if args.out.join(dlsia_nets::model_dir::MODEL_JSON).exists() && !args.force {
        anyhow::bail!(
            "{} already holds a model; pass --force to replace it",
            args.out.display()
        );
    }
    let report = import_to_model_dir(&args.file, &args.out, args.force)
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    println!(
        "imported {} ({} parameters, {} tensors) from {} into {}",
        report.architecture,
        report.num_parameters,
        report.tensors,
        args.file.display(),
        args.out.display()
    );
    if !report.ignored_tensors.is_empty() {
        println!(
            "  {} tensors the original stores but never uses were left out ({}…)",
            report.ignored_tensors.len(),
            report.ignored_tensors[0]
        );
    }
    Ok(())
}
