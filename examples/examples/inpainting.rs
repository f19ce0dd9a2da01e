//! Inpainting detector gaps in synthetic X-ray scattering patterns with a TUNet and an MSDNet.
//!
//! ```text
//! cargo run --release -p dlsia-examples --example inpainting -- [--quick | --paper] [--out DIR] [--force] [--seed N]
//! ```

use anyhow::Result;
use clap::Parser;
use dlsia_examples::cli::CommonArgs;
use dlsia_examples::inpainting::{describe, run, InpaintingSettings};
use dlsia_examples::outdir::prepare_out_dir;

/// Fill detector gaps in synthetic scattering patterns; report the Pearson correlation on gaps.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// The paper's sizes: 8.56 M-parameter TUNet, 200-layer MSDNet, 256² patterns (hours on a CPU).
    #[arg(long, conflicts_with = "quick")]
    paper: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Training binary: keep freed buffers in the process (much faster steps; see dlsia_ops::alloc).
    dlsia_ops::alloc::tune_for_throughput();
    let c = &cli.common;
    let settings = if c.quick {
        InpaintingSettings::quick(c.seed)
    } else if cli.paper {
        InpaintingSettings::paper(c.seed)
    } else {
        InpaintingSettings::standard(c.seed)
    };
    let out = prepare_out_dir(c.out.as_deref(), "inpainting", c.force)?;
    let summary = run(&settings, &out)?;
    println!("{}", describe(&summary));
    println!("wrote {}", out.display());
    Ok(())
}
